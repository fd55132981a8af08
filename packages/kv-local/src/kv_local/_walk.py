"""Listing keys by walking only the folders under a prefix (runs on the worker thread).

Names are decoded from directory entries; no value file is opened. Only a key with a
metadata file (one with a TTL) costs an extra small read to check its expiry.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from ._fs import MetaError, open_chain, read_state
from ._layout import META, PIECE, decode_name, segment_dirs, unescape_full
from ._tree import Navigator, read_folder

__all__ = ["walk_keys"]


def _state(dir_fd: int, name: str, now: float, exact: bool) -> str:
    """ "live", "expired", or "stale" (live, with a metadata file left from an older value)."""
    try:
        os.stat(name + META, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return "live"
    try:
        state = read_state(dir_fd, name, exact=exact, with_value=False, with_etag=False)
    except MetaError:
        return "live"  # a key with broken metadata is listed; get() reports the error
    if state is None:
        return "gone"
    at = state[2]
    if at is None:
        return "stale"
    return "expired" if now >= at else "live"


def walk_keys(
    root_fd: int, prefix: str, now: float, *, marked: bool, expired: bool = False
) -> Iterator[str]:
    """Yield every live key starting with ``prefix``.

    With ``expired``, yield instead the keys whose files ``purge_expired`` should clean:
    expired ones and live ones with stale metadata. ``marked``: the file system keeps
    exact mtimes (see ``expiry_of``).

    A generator advanced page by page from the worker thread. It holds one descriptor
    whatever the depth of the tree, and each folder's names are read whole before its
    keys are yielded (see ``read_folder``). Closing it closes that descriptor.
    """
    *levels, partial = prefix.split("/")
    start = tuple(name for segment in levels for name in segment_dirs(segment))
    # The prefix's own folders must be folders kv-local made (a link there is refused).
    chain = open_chain(root_fd, start, create=False)
    if chain is None:
        return
    chain.close()
    # Folders still to visit: (names from the root, key text above, long-segment pieces
    # gathered so far, the prefix's last segment at the prefix's level).
    todo: list[tuple[tuple[str, ...], str, str, str]] = [
        (start, "".join(s + "/" for s in levels), "", partial)
    ]
    nav = Navigator(root_fd)
    try:
        while todo:
            path, base, acc, part = todo.pop()
            fd = nav.go(path)
            if fd is None:
                continue
            subfolders = []
            for entry in read_folder(fd):
                decoded = decode_name(entry.name)
                if decoded is None:
                    continue
                kind, text = decoded
                if kind == "continued":
                    if entry.is_dir(follow_symlinks=False):
                        subfolders.append(((*path, entry.name), base, acc + text, part))
                    continue
                if not text or len(text) > PIECE:
                    continue
                segment = unescape_full(acc + text)
                if segment is None or not segment.startswith(part):
                    continue
                if kind == "level":
                    if entry.is_dir(follow_symlinks=False):
                        subfolders.append(((*path, entry.name), base + segment + "/", "", ""))
                elif entry.is_file(follow_symlinks=False):
                    state = _state(fd, entry.name, now, marked)
                    if state == "gone":
                        continue
                    if (state != "expired") if not expired else (state != "live"):
                        yield base + segment
            todo.extend(reversed(subfolders))
    finally:
        nav.close()
