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
    """One cached key. Changed only by the holder of the key's gate (see ``_core``).

    ``raw`` None means absent: a negative entry when clean, a tombstone when dirty.
    ``raw.etag`` is what callers see; for a value written locally it is a cache-made,
    content-derived etag (``kvc-…``) that stays valid after the flush. ``remote`` is the
    backend's own etag and nothing else: it is only ever set from what the backend
    returned, and it is the only etag the cache sends to the backend. A dirty entry's
    ``remote`` is the state its write is based on, and the flush is conditional on it.
    """

    raw: RawEntry | None
    remote: Remote
    validated_at: float
    dirty: bool = False
    size: int = 0
    #: The state (value or None for a delete, expires_at) of a flush whose outcome was
    #: unknown (OutcomeUnknownError): the next flush first looks whether it landed.
    in_doubt: tuple[bytes | None, float | None] | None = None


def entry_size(key: str, raw: RawEntry | bytes | None) -> int:
    """Bytes counted against ``max_bytes``: the value plus the key."""
    if raw is None:
        return len(key)
    return len(key) + len(raw if isinstance(raw, bytes) else raw.value)


class EntryTable:
    """An LRU-ordered dict of entries with running totals (no I/O, no awaits)."""

    __slots__ = (
        "_entries",
        "max_bytes",
        "max_items",
        "reserved_bytes",
        "reserved_items",
        "total_bytes",
    )

    def __init__(self, max_items: int, max_bytes: int) -> None:
        self._entries: OrderedDict[str, CacheEntry] = OrderedDict()
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.total_bytes = 0
        # Room promised to local writes that have not committed yet (see Flusher._reserve):
        # counted as used, so that concurrent writers never promise the same room twice.
        self.reserved_items = 0
        self.reserved_bytes = 0

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

    def within_bounds(self) -> bool:
        """True if the entries (reservations aside) respect both bounds."""
        return len(self._entries) <= self.max_items and self.total_bytes <= self.max_bytes

    def pop(self, key: str) -> CacheEntry | None:
        """Remove ``key``; return its entry or None."""
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.total_bytes -= entry.size
        return entry

    def over(self, extra_items: int = 0, extra_bytes: int = 0) -> bool:
        """True if the table, with its reservations, would exceed a bound after adding this."""
        return (
            len(self._entries) + self.reserved_items + extra_items > self.max_items
            or self.total_bytes + self.reserved_bytes + extra_bytes > self.max_bytes
        )

    def shortfall(self, key: str, size: int) -> tuple[int, int]:
        """(items, bytes) missing before ``key`` can hold an entry of ``size`` bytes.

        The key's own entry counts as free: the new one replaces it.
        """
        own = self._entries.get(key)
        items = len(self._entries) - (own is not None) + self.reserved_items + 1
        nbytes = self.total_bytes - (own.size if own is not None else 0) + self.reserved_bytes
        return max(0, items - self.max_items), max(0, nbytes + size - self.max_bytes)

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
