"""The cache's table: entries in LRU order, bounded by count and by bytes."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Union

if TYPE_CHECKING:
    from collections.abc import Iterator

    from kv_core import RawEntry

__all__ = ["UNKNOWN", "CacheEntry", "EntryTable", "Remote", "Unknown"]


class Unknown:
    """Marker type of :data:`UNKNOWN`: the cache never saw the key in the backend."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNKNOWN"


#: The backend state of a key the cache never read: a write-back of it is unconditional.
UNKNOWN: Final = Unknown()

#: What the cache believes the backend holds: an etag, None (absent) or UNKNOWN.
Remote = Union[str, None, Unknown]  # noqa: UP007 (evaluated at runtime on 3.10)


@dataclass(eq=False)
class CacheEntry:
    """One cached key.

    ``raw`` None means absent: a negative entry when clean, a tombstone when dirty.
    ``raw.etag`` is what callers see; for a value written locally it is a cache-made
    etag that stays valid after the flush (so a caller's ``if_match`` survives it), and
    ``remote`` is then the backend's own etag. A dirty entry's ``remote`` is the state its
    write is based on, and the flush is conditional on it.
    """

    raw: RawEntry | None
    remote: Remote
    validated_at: float
    dirty: bool = False
    #: Bumped by every local write: a flush only marks the entry clean if no write
    #: happened while it was talking to the backend.
    version: int = 0
    size: int = 0


def entry_size(key: str, raw: RawEntry | bytes | None) -> int:
    """Bytes counted against ``max_bytes``: the value plus the key."""
    if raw is None:
        return len(key)
    return len(key) + len(raw if isinstance(raw, bytes) else raw.value)


class EntryTable:
    """An LRU-ordered dict of entries with running totals (no I/O, no awaits)."""

    __slots__ = ("_entries", "max_bytes", "max_items", "total_bytes")

    def __init__(self, max_items: int, max_bytes: int) -> None:
        self._entries: OrderedDict[str, CacheEntry] = OrderedDict()
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.total_bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def get(self, key: str) -> CacheEntry | None:
        """The entry for ``key`` (marked most recently used), or None."""
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def peek(self, key: str) -> CacheEntry | None:
        """The entry for ``key`` without touching the LRU order."""
        return self._entries.get(key)

    def put(self, key: str, entry: CacheEntry) -> None:
        """Insert or replace ``key`` as most recently used (bounds are enforced by callers)."""
        entry.size = entry_size(key, entry.raw)
        old = self._entries.pop(key, None)
        if old is not None:
            self.total_bytes -= old.size
        self._entries[key] = entry
        self.total_bytes += entry.size

    def resize(self, key: str, entry: CacheEntry) -> None:
        """Recount ``entry`` after its value changed in place."""
        new_size = entry_size(key, entry.raw)
        self.total_bytes += new_size - entry.size
        entry.size = new_size
        self._entries.move_to_end(key)

    def pop(self, key: str) -> CacheEntry | None:
        """Remove ``key``; return its entry or None."""
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.total_bytes -= entry.size
        return entry

    def over(self, extra_items: int = 0, extra_bytes: int = 0) -> bool:
        """True if the table would exceed a bound after adding this much."""
        return (
            len(self._entries) + extra_items > self.max_items
            or self.total_bytes + extra_bytes > self.max_bytes
        )

    def fits(self, key: str, value: bytes | None) -> bool:
        """True if one entry of this size can be cached at all."""
        return self.max_items > 0 and entry_size(key, value) <= self.max_bytes

    def lru(self) -> Iterator[tuple[str, CacheEntry]]:
        """Entries from least to most recently used (a snapshot: safe to mutate meanwhile)."""
        return iter(list(self._entries.items()))

    def dirty_keys(self) -> list[str]:
        """Keys of dirty entries, least recently used first."""
        return [k for k, e in self._entries.items() if e.dirty]

    def items_with_prefix(self, prefix: str) -> list[tuple[str, CacheEntry]]:
        """A snapshot of the entries whose key starts with ``prefix``."""
        return [(k, e) for k, e in self._entries.items() if k.startswith(prefix)]

    def clear(self) -> None:
        """Drop everything."""
        self._entries.clear()
        self.total_bytes = 0
