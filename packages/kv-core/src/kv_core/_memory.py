"""MemoryDriver: a dict in this process, for tests, caches and the conformance baseline."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from ._driver import NOT_MODIFIED, Capability, NotModified, RawEntry
from ._errors import PreconditionFailedError, StoreClosedError

__all__ = ["MemoryDriver"]

# One counter per process: etags stay unique even across drivers sharing one dict.
_etags = itertools.count(1)
# RawEntry's generated __new__ is a Python frame; building the tuple directly skips it
# on the hottest path of the in-memory store.
_entry = tuple.__new__


def _own(value: bytes) -> bytes:
    # bytearray/memoryview would let the caller mutate what is stored.
    return value if type(value) is bytes else bytes(value)


class MemoryDriver:
    """Stores entries in a dict. Fast, not persistent, not shared across processes.

    Args:
        clock: Wall-clock seconds used for expiry (tests inject a manual clock).
        data: A dict to store entries in; pass the same dict to several drivers to
            let them see the same storage (the conformance harness does this).
    """

    capabilities = (
        Capability.GET_MANY
        | Capability.SET_MANY
        | Capability.DELETE_MANY
        | Capability.CLEAR
        | Capability.EXISTS
        | Capability.CONDITIONAL_GET
    )

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        data: dict[str, RawEntry] | None = None,
    ) -> None:
        self.clock = clock
        self.name = "memory://"
        self._data: dict[str, RawEntry] = {} if data is None else data
        self._closed = False

    @classmethod
    def from_url(cls, url: str, **options: Any) -> MemoryDriver:
        """Open ``memory://`` (a new, empty store)."""
        return cls(**options)

    def __repr__(self) -> str:
        return f"MemoryDriver({len(self._data)} entries)"

    def _live(self, key: str) -> RawEntry | None:
        entry = self._data.get(key)
        if entry is not None and entry.expires_at is not None and entry.expires_at <= self.clock():
            del self._data[key]
            return None
        return entry

    async def get(self, key: str) -> RawEntry | None:
        """Return the live entry or None."""
        if self._closed:
            raise StoreClosedError("memory driver is closed", key=key, store=self.name)
        entry = self._data.get(key)
        if entry is not None and entry.expires_at is not None and entry.expires_at <= self.clock():
            del self._data[key]
            return None
        return entry

    async def set(
        self,
        key: str,
        value: bytes,
        *,
        expires_at: float | None = None,
        if_match: str | None = None,
        if_absent: bool = False,
    ) -> str:
        """Store ``value``; conditional writes are atomic because nothing awaits in between."""
        if self._closed:
            raise StoreClosedError("memory driver is closed", key=key, store=self.name)
        if if_match is not None or if_absent:
            current = self._live(key)
            if if_absent and current is not None:
                raise PreconditionFailedError("key already exists", key=key, store=self.name)
            if if_match is not None and (current is None or current.etag != if_match):
                raise PreconditionFailedError("etag does not match", key=key, store=self.name)
        etag = str(next(_etags))
        self._data[key] = _entry(RawEntry, (_own(value), etag, expires_at))
        return etag

    async def delete(self, key: str, *, if_match: str | None = None) -> bool:
        """Remove ``key``; True if a live key was removed."""
        if self._closed:
            raise StoreClosedError("memory driver is closed", key=key, store=self.name)
        current = self._live(key)
        if if_match is not None and (current is None or current.etag != if_match):
            raise PreconditionFailedError("etag does not match", key=key, store=self.name)
        if current is None:
            return False
        del self._data[key]
        return True

    async def keys(self, prefix: str = "") -> AsyncIterator[str]:
        """Yield live keys starting with ``prefix`` (a snapshot taken at the first step)."""
        if self._closed:
            raise StoreClosedError("memory driver is closed", store=self.name)
        now = self.clock()
        matching = [
            k
            for k, e in list(self._data.items())
            if k.startswith(prefix) and (e.expires_at is None or e.expires_at > now)
        ]
        for k in matching:
            yield k

    async def exists(self, key: str) -> bool:
        """True if ``key`` is live."""
        return await self.get(key) is not None

    async def get_many(self, keys: Sequence[str]) -> list[RawEntry | None]:
        """Entries for ``keys``, in order, None where missing."""
        if self._closed:
            raise StoreClosedError("memory driver is closed", store=self.name)
        return [self._live(k) for k in keys]

    async def set_many(
        self, items: Sequence[tuple[str, bytes]], *, expires_at: float | None = None
    ) -> list[str]:
        """Store every item unconditionally; return their etags."""
        if self._closed:
            raise StoreClosedError("memory driver is closed", store=self.name)
        etags = []
        for key, value in items:
            etag = str(next(_etags))
            self._data[key] = _entry(RawEntry, (_own(value), etag, expires_at))
            etags.append(etag)
        return etags

    async def delete_many(self, keys: Sequence[str]) -> int:
        """Delete ``keys``; return how many were live."""
        if self._closed:
            raise StoreClosedError("memory driver is closed", store=self.name)
        count = 0
        for key in keys:
            if self._live(key) is not None:
                del self._data[key]
                count += 1
        return count

    async def clear(self, prefix: str = "") -> int:
        """Delete every live key starting with ``prefix``; return how many."""
        return await self.delete_many([k async for k in self.keys(prefix)])

    async def get_if_changed(self, key: str, etag: str) -> RawEntry | NotModified | None:
        """NOT_MODIFIED if the live etag is ``etag``, else the entry (or None)."""
        entry = await self.get(key)
        if entry is not None and entry.etag == etag:
            return NOT_MODIFIED
        return entry

    async def aclose(self) -> None:
        """Mark closed. The data stays in the dict for drivers sharing it."""
        self._closed = True
