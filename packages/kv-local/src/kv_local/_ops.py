"""Reads, as plain functions the worker thread runs (no lock: replaces are atomic)."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator, Sequence

from kv_core import NOT_MODIFIED, NotModified, RawEntry

from ._errors import map_error
from ._fs import O_READ, UnsafePathError, etag_of, expiry_of, open_chain, read_value
from ._layout import locate
from ._root import Root

__all__ = ["exists", "get", "get_if_changed", "get_many", "open_for_stream", "take"]


def _read_entry(fd: int, leaf: str, marked: bool) -> RawEntry | None:
    """The value file ``leaf`` in folder ``fd`` with its etag and expiry, if it exists."""
    found = read_value(fd, leaf)
    if found is None:
        return None
    data, st = found
    return RawEntry(data, etag_of(st), expiry_of(fd, leaf, st, marked=marked))


def _get(root: Root, key: str, now: float) -> RawEntry | None:
    loc = locate(key)
    if not loc.dirs:
        # A top-level key needs no folder chain: read straight from the root's descriptor.
        entry = _read_entry(root.fd, loc.leaf, root.exact_mtime)
    else:
        chain = open_chain(root.fd, loc.dirs, create=False)
        if chain is None:
            return None
        try:
            entry = _read_entry(chain.fd, loc.leaf, root.exact_mtime)
        finally:
            chain.close()
    if entry is None or (entry.expires_at is not None and now >= entry.expires_at):
        return None
    return entry


def get(root: Root, key: str, now: float, store: str) -> RawEntry | None:
    """The live entry of ``key`` or None."""
    try:
        return _get(root, key, now)
    except Exception as exc:
        raise map_error(exc, key=key, store=store, action="reading") from exc


def get_many(root: Root, keys: Sequence[str], now: float, store: str) -> list[RawEntry | None]:
    """``get`` for each key, in one trip to the worker."""
    return [get(root, key, now, store) for key in keys]


def _head(root: Root, key: str, now: float) -> tuple[str, float | None] | None:
    loc = locate(key)
    chain = open_chain(root.fd, loc.dirs, create=False)
    if chain is None:
        return None
    try:
        try:
            st = os.stat(loc.leaf, dir_fd=chain.fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        etag = etag_of(st)
        at = expiry_of(chain.fd, loc.leaf, st, marked=root.exact_mtime)
    finally:
        chain.close()
    if at is not None and now >= at:
        return None
    return etag, at


def exists(root: Root, key: str, now: float, store: str) -> bool:
    """True if ``key`` is live (a stat, no read)."""
    try:
        return _head(root, key, now) is not None
    except Exception as exc:
        raise map_error(exc, key=key, store=store, action="reading") from exc


def get_if_changed(
    root: Root, key: str, etag: str, now: float, store: str
) -> RawEntry | NotModified | None:
    """NOT_MODIFIED if the stored etag is still ``etag`` (without reading), else ``get``."""
    try:
        head = _head(root, key, now)
        if head is None:
            return None
        if head[0] == etag:
            return NOT_MODIFIED
        return _get(root, key, now)
    except Exception as exc:
        raise map_error(exc, key=key, store=store, action="reading") from exc


def open_for_stream(root: Root, key: str, now: float, store: str) -> int | None:
    """An open descriptor on the live value of ``key`` (caller closes it), or None."""
    try:
        loc = locate(key)
        chain = open_chain(root.fd, loc.dirs, create=False)
        if chain is None:
            return None
        try:
            try:
                fd = os.open(loc.leaf, O_READ, dir_fd=chain.fd)
            except FileNotFoundError:
                return None
            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode):
                    raise UnsafePathError(errno.ELOOP, f"{loc.leaf!r} is not a regular file")
                at = expiry_of(chain.fd, loc.leaf, st, marked=root.exact_mtime)
                if at is not None and now >= at:
                    os.close(fd)
                    return None
                os.set_blocking(fd, True)
            except BaseException:
                os.close(fd)
                raise
            return fd
        finally:
            chain.close()
    except Exception as exc:
        raise map_error(exc, key=key, store=store, action="reading") from exc


def take(it: Iterator[str], n: int, store: str) -> list[str]:
    """Advance a listing generator by up to ``n`` keys."""
    out: list[str] = []
    try:
        for key in it:
            out.append(key)
            if len(out) >= n:
                break
    except Exception as exc:
        raise map_error(exc, key=None, store=store, action="listing") from exc
    return out
