"""Listing keys by walking only the folders under a prefix (runs on the worker thread).

Names are decoded from directory entries; no value file is opened. Only a key with a
metadata file (one with a TTL) costs an extra small read to check its expiry.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from ._fs import MetaError, expiry_of, open_chain
from ._layout import META, PIECE, decode_name, segment_dirs, unescape_full

__all__ = ["walk_keys"]


def _state(dir_fd: int, name: str, entry: os.DirEntry[str], now: float, marked: bool) -> str:
    """ "live", "expired", or "stale" (live, with a metadata file left from an older value)."""
    try:
        os.stat(name + META, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return "live"
    try:
        st = entry.stat(follow_symlinks=False)
        at = expiry_of(dir_fd, name, st, marked=marked)
    except (MetaError, FileNotFoundError):
        return "live"  # a key with broken metadata is listed; get() reports the error
    if at is None:
        return "stale"
    return "expired" if now >= at else "live"


class _Frame:
    __slots__ = ("acc", "base", "entries", "fd", "partial")

    def __init__(self, fd: int, base: str, acc: str, partial: str) -> None:
        self.fd = fd
        self.base = base  # the key text of the levels above, ending with "/" (or "")
        self.acc = acc  # escaped pieces of a long segment gathered so far
        self.partial = partial  # the last segment of the prefix, at the prefix's level
        self.entries = os.scandir(fd)


def walk_keys(
    root_fd: int, prefix: str, now: float, *, marked: bool, expired: bool = False
) -> Iterator[str]:
    """Yield every live key starting with ``prefix``.

    With ``expired``, yield instead the keys whose files ``purge_expired`` should clean:
    expired ones and live ones with stale metadata. ``marked``: see ``expiry_of``.

    A generator advanced page by page from the worker thread; closing it closes every
    descriptor it holds.
    """
    *levels, partial = prefix.split("/")
    names = tuple(name for segment in levels for name in segment_dirs(segment))
    chain = open_chain(root_fd, names, create=False)
    if chain is None:
        return
    stack: list[_Frame] = []
    try:
        stack.append(_Frame(os.dup(chain.fd), "".join(s + "/" for s in levels), "", partial))
        while stack:
            frame = stack[-1]
            entry = next(frame.entries, None)
            if entry is None:
                frame.entries.close()
                os.close(frame.fd)
                stack.pop()
                continue
            decoded = decode_name(entry.name)
            if decoded is None:
                continue
            kind, text = decoded
            if kind == "continued":
                if entry.is_dir(follow_symlinks=False):
                    sub = _open_dir(frame.fd, entry.name)
                    if sub is not None:
                        stack.append(_Frame(sub, frame.base, frame.acc + text, frame.partial))
                continue
            if not text or len(text) > PIECE:
                continue
            segment = unescape_full(frame.acc + text)
            if segment is None or not segment.startswith(frame.partial):
                continue
            if kind == "level":
                if entry.is_dir(follow_symlinks=False):
                    sub = _open_dir(frame.fd, entry.name)
                    if sub is not None:
                        stack.append(_Frame(sub, frame.base + segment + "/", "", ""))
            elif entry.is_file(follow_symlinks=False):
                state = _state(frame.fd, entry.name, entry, now, marked)
                if (state != "expired") if not expired else (state != "live"):
                    yield frame.base + segment
    finally:
        for frame in stack:
            frame.entries.close()
            os.close(frame.fd)
        chain.close()


def _open_dir(parent: int, name: str) -> int | None:
    # A folder removed by a concurrent delete is simply not listed.
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
    return None
