"""Reads, as plain functions the worker thread runs (no lock: replaces are atomic)."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator, Sequence

from kv_core import NOT_MODIFIED, NotModified, RawEntry

from ._errors import map_error
from ._fs import O_READ, UnsafePathError, expiry_of, hash_fd, open_chain, read_state, stat_ident
from ._layout import locate
from ._root import Root

__all__ = ["exists", "get", "get_if_changed", "get_many", "open_for_stream", "take"]


def _state(
    root: Root, key: str, now: float, *, with_value: bool, with_etag: bool = True
) -> tuple[bytes | None, str, float | None] | None:
    """(value if asked, etag, expires_at) of the live state of ``key``, or None."""
    loc = locate(key)
    if not loc.dirs:
        # A top-level key needs no folder chain: read straight from the root's descriptor.
        state = read_state(
            root.fd, loc.leaf, exact=root.exact_mtime, with_value=with_value, with_etag=with_etag
        )
    else:
        chain = open_chain(root.fd, loc.dirs, create=False)
        if chain is None:
            return None
        try:
            state = read_state(
                chain.fd,
                loc.leaf,
                exact=root.exact_mtime,
                with_value=with_value,
                with_etag=with_etag,
            )
        finally:
            chain.close()
    if state is None or (state[2] is not None and now >= state[2]):
        return None
    return state


def _get(root: Root, key: str, now: float) -> RawEntry | None:
    state = _state(root, key, now, with_value=True)
    if state is None:
        return None
    data, etag, at = state
    assert data is not None
    return RawEntry(data, etag, at)


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
    state = _state(root, key, now, with_value=False)
    return None if state is None else (state[1], state[2])


def exists(root: Root, key: str, now: float, store: str) -> bool:
    """True if ``key`` is live (a stat, no read)."""
    try:
        return _state(root, key, now, with_value=False, with_etag=False) is not None
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
                ident = stat_ident(st) if root.exact_mtime else hash_fd(fd)
                at = expiry_of(chain.fd, loc.leaf, ident, st, marked=root.exact_mtime)
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
