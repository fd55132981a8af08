"""How keys map to names on disk, reversibly and without collisions.

A key is split on ``/``. Each segment is escaped with :func:`kv_core._keys.escape_segment`
into ``[a-z0-9-_.~]`` plus ``%XX`` tokens (upper-case hex), so escaped names are safe on
every file system, never ``.``/``..``, and distinct even where names are case-insensitive.

On disk, under the root:

- ``<esc>``          the value file of a key whose last segment escapes to ``<esc>``;
- ``<esc>%2F``       the directory of the keys that continue with ``<esc>/`` (``%2F`` is
  an escaped ``/``, which no escaped segment contains, so a key ``a`` and a key ``a/b``
  never collide);
- ``%``              stands for an empty segment (``a//b``, ``/x``, ``x/``);
- ``<piece>%``       a directory holding the rest of an escaped segment longer than
  :data:`PIECE` characters (file systems allow 255 bytes per name), split into pieces;
  no escaped name ends with a lone ``%``;
- ``<leaf>#meta``    expiry metadata beside a value file, only for keys with a TTL;
- other names containing ``#`` (``#lock``, ``#owners``, ``#tmp.*``) belong to the driver.

Escaped names never contain ``#``, so nothing the driver keeps can be taken for a key.
"""

from __future__ import annotations

from kv_core._keys import escape_segment, unescape_segment

__all__ = [
    "LEVEL",
    "META",
    "PIECE",
    "Location",
    "decode_name",
    "is_internal",
    "unescape_full",
    "locate",
    "segment_dirs",
]

#: Longest piece of an escaped segment kept in one name (255-byte limit, room for suffixes).
PIECE = 200
#: Suffix of a directory that holds the keys continuing after a segment.
LEVEL = "%2F"
#: Suffix of a directory that holds the rest of a long segment.
CONTINUED = "%"
#: Name of an empty segment.
EMPTY = "%"
#: Suffix of the metadata file beside a value file.
META = "#meta"


class Location:
    """Where a key lives: the directory names from the root, and the value file name."""

    __slots__ = ("dirs", "leaf")

    def __init__(self, dirs: tuple[str, ...], leaf: str) -> None:
        self.dirs = dirs
        self.leaf = leaf

    def __repr__(self) -> str:
        return f"Location({'/'.join(self.dirs)!r}, {self.leaf!r})"


def _pieces(segment: str) -> list[str]:
    escaped = escape_segment(segment) or EMPTY
    if len(escaped) <= PIECE:
        return [escaped]
    chunks = [escaped[i : i + PIECE] for i in range(0, len(escaped), PIECE)]
    return [c + CONTINUED for c in chunks[:-1]] + [chunks[-1]]


def segment_dirs(segment: str) -> list[str]:
    """Directory names leading to the level directory of ``segment`` (the ``a`` in ``a/b``)."""
    names = _pieces(segment)
    names[-1] += LEVEL
    return names


def locate(key: str) -> Location:
    """Return where ``key`` is stored."""
    if "/" not in key and len(key) <= PIECE // 3 and key.isascii():
        # Fast path for short flat ASCII keys: each character escapes to at most 3.
        return Location((), escape_segment(key) or EMPTY)
    *levels, last = key.split("/")
    dirs: list[str] = []
    for segment in levels:
        dirs.extend(segment_dirs(segment))
    tail = _pieces(last)
    dirs.extend(tail[:-1])
    return Location(tuple(dirs), tail[-1])


def is_internal(name: str) -> bool:
    """True for the driver's own files (locks, temp files, metadata)."""
    return "#" in name


def decode_name(name: str) -> tuple[str, str] | None:
    """Classify a directory entry as ``("value"|"level"|"continued", escaped_text)``.

    Returns None for names the driver never writes (foreign files are not keys).
    The escaped text of a ``continued`` piece is partial: join pieces before unescaping.
    """
    if is_internal(name):
        return None
    if name.endswith(LEVEL):
        return "level", name[: -len(LEVEL)]
    if name.endswith(CONTINUED) and len(name) == PIECE + 1:
        return "continued", name[:-1]
    return "value", name


def unescape_full(escaped: str) -> str | None:
    """Unescape a whole segment, or None if ``escaped`` is not something we write."""
    if escaped == EMPTY:
        return ""
    try:
        segment = unescape_segment(escaped)
    except (ValueError, UnicodeDecodeError):
        return None
    if escape_segment(segment) != escaped or not segment:
        return None  # not canonical: a file someone else put here
    return segment
