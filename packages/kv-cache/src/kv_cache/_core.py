"""State and read path of the cache: freshness, single-flight loads, clean inserts."""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from kv_core import (
    BatchDriver,
    Capability,
    Driver,
    KeyGate,
    NotModified,
    RawEntry,
    StoreClosedError,
)

from ._entries import CacheEntry, EntryTable, Remote
from ._options import CacheMode, ConflictPolicy, check_policy

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ._result import KeyOutcome

__all__ = ["CacheCore", "CacheStats"]


@dataclass
class CacheStats:
    """Counters a caller can inspect (``driver.stats``); they never affect behaviour."""

    #: Reads answered from the cache without contacting the backend.
    hits: int = 0
    #: Reads that went to the backend (misses, expired or stale entries).
    misses: int = 0
    #: Stale entries revalidated with a conditional read that found them unchanged.
    not_modified: int = 0
    #: Entries dropped to respect ``max_items`` / ``max_bytes``.
    evictions: int = 0
    #: Dirty entries written to the backend (any status but ERROR and CONFLICT/SKIPPED).
    flushed: int = 0


class _Flight:
    """One backend read in progress, shared by every caller that misses the same key."""

    __slots__ = ("future", "stale", "task")

    def __init__(self, future: asyncio.Future[RawEntry | None]) -> None:
        self.future = future
        # The event loop keeps only a weak reference to tasks: hold the reader here.
        self.task: asyncio.Task[None] | None = None
        # Set when the key is written locally while the read is in flight: its result
        # may predate that write, so it is handed to the waiting readers (their reads
        # overlapped the write) but never stored in the cache.
        self.stale = False


def _retrieve(future: asyncio.Future[RawEntry | None]) -> None:
    # Every waiter may have been cancelled; mark the exception as seen so asyncio does
    # not log "exception was never retrieved" for an error that was delivered elsewhere.
    if not future.cancelled():
        future.exception()


class CacheCore:
    """Everything the modes share; :class:`~kv_cache.CachedDriver` adds the public API."""

    def __init__(
        self,
        inner: Driver,
        *,
        mode: CacheMode | str = CacheMode.WRITE_BACK,
        max_items: int = 10_000,
        max_bytes: int = 64 << 20,
        on_conflict: ConflictPolicy = "raise",
        max_staleness: float | None = 1.0,
        negative_caching: bool = True,
        flush_interval: float | None = None,
        flush_concurrency: int = 32,
        owns_inner: bool = True,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_items < 0 or max_bytes < 0:
            raise ValueError("max_items and max_bytes must be >= 0")
        if max_staleness is not None and max_staleness < 0:
            raise ValueError("max_staleness must be >= 0 or None")
        if flush_interval is not None and flush_interval <= 0:
            raise ValueError("flush_interval must be > 0 or None")
        if flush_concurrency < 1:
            raise ValueError("flush_concurrency must be >= 1")
        self._inner = inner
        self.mode = CacheMode.parse(mode)
        self.name = f"cache+{inner.name}"
        self.clock: Callable[[], float] = inner.clock
        self.stats = CacheStats()
        self._on_conflict = check_policy(on_conflict)
        self._max_staleness = max_staleness
        self._negative_caching = negative_caching
        self._flush_interval = flush_interval
        self._flush_concurrency = flush_concurrency
        self._owns_inner = owns_inner
        self._timer = timer
        self._table = EntryTable(max_items, max_bytes)
        self._gate = KeyGate()
        self._flights: dict[str, _Flight] = {}
        self._conditional_get = Capability.CONDITIONAL_GET in inner.capabilities
        self._batch_get = Capability.GET_MANY in inner.capabilities
        self._closed = False
        # Cache-made etags: a random per-instance prefix keeps them distinct from any
        # backend etag and from another cache's, a counter keeps them cheap.
        self._etag_prefix = f"kvc-{secrets.token_hex(6)}-"
        self._etag_counter = itertools.count(1)
        # The optional methods this class implements (whatever the inner driver has; in
        # NONE mode they pass through or fall back to single calls).
        self._write_back = self.mode is CacheMode.WRITE_BACK
        self._passthrough = self.mode is CacheMode.NONE
        # set_many: one backend batch when writing through to a driver that has one;
        # in write-back a loop of local writes (no I/O) beats the Store's generic fallback.
        self._batch_set = Capability.SET_MANY in inner.capabilities
        self.capabilities = (
            Capability.GET_MANY
            | Capability.EXISTS
            | Capability.CONDITIONAL_GET
            | (inner.capabilities & Capability.NATIVE_TTL)
        )
        if self._batch_set or self._write_back:
            self.capabilities |= Capability.SET_MANY
        # Flush state (see _flush.Flusher): outcomes not yet reported, the timer task.
        self._pending: list[KeyOutcome] = []
        self._timer_task: asyncio.Task[None] | None = None

    @property
    def inner(self) -> Driver:
        """The wrapped driver (for native access; writing through it bypasses the cache)."""
        return self._inner

    # -- small helpers -------------------------------------------------------------------

    def _check_open(self, key: str | None = None) -> None:
        if self._closed:
            raise StoreClosedError("cache is closed", key=key, store=self.name)

    def _new_etag(self) -> str:
        return f"{self._etag_prefix}{next(self._etag_counter)}"

    def _is_fresh(self, entry: CacheEntry) -> bool:
        """Dirty entries are the truth; clean ones are trusted for ``max_staleness``."""
        if entry.dirty or self._max_staleness is None:
            return True
        return self._timer() - entry.validated_at < self._max_staleness

    def _expired(self, raw: RawEntry) -> bool:
        return raw.expires_at is not None and raw.expires_at <= self.clock()

    def _live(self, entry: CacheEntry) -> RawEntry | None:
        raw = entry.raw
        if raw is None or (raw.expires_at is not None and raw.expires_at <= self.clock()):
            return None
        return raw

    def _remote_of(self, entry: CacheEntry) -> Remote:
        """What a new local write to this entry's key should be conditioned on."""
        if entry.dirty:
            return entry.remote  # the base of the pending write stays the base
        if entry.raw is not None and self._expired(entry.raw):
            return None  # drivers treat an expired key as absent for conditions
        return entry.remote

    def _touched(self, key: str) -> None:
        """Note a local write: an in-flight read of ``key`` must not be stored."""
        flight = self._flights.get(key)
        if flight is not None:
            flight.stale = True

    # -- clean inserts -------------------------------------------------------------------

    def _store_clean(self, key: str, raw: RawEntry | None) -> None:
        """Cache what the backend said about ``key`` (never over a dirty entry)."""
        current = self._table.peek(key)
        if current is not None and current.dirty:
            return
        if (raw is None and not self._negative_caching) or not self._table.fits(
            key, raw.value if raw is not None else None
        ):
            self._table.pop(key)
            return
        remote: Remote = raw.etag if raw is not None else None
        self._table.put(key, CacheEntry(raw, remote, self._timer()))
        self._evict_clean(keep=key)

    def _evict_clean(self, keep: str) -> None:
        """Drop clean LRU entries until within bounds; dirty ones are left to the flusher.

        If only dirty entries stand in the way, ``keep`` itself is dropped (when clean):
        a read never makes the cache exceed its bounds.
        """
        table = self._table
        if not table.over():
            return
        for k, e in table.lru():
            if not table.over():
                return
            if k != keep and not e.dirty:
                table.pop(k)
                self.stats.evictions += 1
        kept = table.peek(keep)
        if table.over() and kept is not None and not kept.dirty:
            table.pop(keep)

    # -- reads ---------------------------------------------------------------------------

    async def _cached_get(self, key: str) -> RawEntry | None:
        entry = self._table.get(key)
        if entry is not None and self._is_fresh(entry):
            raw = entry.raw
            if raw is None or raw.expires_at is None or raw.expires_at > self.clock():
                self.stats.hits += 1
                return raw
            if entry.dirty:
                self.stats.hits += 1
                return None  # a local write that expired: logically deleted
        return await self._load(key)

    async def _known(self, key: str) -> CacheEntry:
        """The cache's up-to-date knowledge of ``key`` (read from the backend if needed).

        The returned entry may be detached from the table (when it could not be cached);
        callers only read it.
        """
        entry = self._table.get(key)
        if (
            entry is not None
            and self._is_fresh(entry)
            and (entry.dirty or entry.raw is None or not self._expired(entry.raw))
        ):
            return entry
        raw = await self._load(key)
        entry = self._table.peek(key)
        if entry is not None and (entry.dirty or (entry.raw is raw)):
            return entry
        remote: Remote = raw.etag if raw is not None else None
        return CacheEntry(raw, remote, self._timer())

    async def _load(self, key: str) -> RawEntry | None:
        flight = self._flights.get(key)
        if flight is None:
            loop = asyncio.get_running_loop()
            flight = _Flight(loop.create_future())
            flight.future.add_done_callback(_retrieve)
            self._flights[key] = flight
            # The read runs as its own task so that a cancelled caller does not cancel
            # the read every other caller is waiting for.
            flight.task = loop.create_task(self._fetch(key, flight))
        self.stats.misses += 1
        return await asyncio.shield(flight.future)

    async def _fetch(self, key: str, flight: _Flight) -> None:
        try:
            old = self._table.peek(key)
            result: RawEntry | NotModified | None
            if (
                self._conditional_get
                and old is not None
                and not old.dirty
                and old.raw is not None
                and isinstance(old.remote, str)
            ):
                inner = cast(BatchDriver, self._inner)
                result = await inner.get_if_changed(key, old.remote)
            else:
                result = await self._inner.get(key)
        except asyncio.CancelledError:
            flight.future.cancel()
            raise
        except BaseException as exc:
            flight.future.set_exception(exc)
            return
        finally:
            if self._flights.get(key) is flight:
                del self._flights[key]
        if isinstance(result, NotModified):
            self.stats.not_modified += 1
            assert old is not None
            current = self._table.peek(key)
            if not flight.stale and current is old:
                old.validated_at = self._timer()
            raw = old.raw
            flight.future.set_result(None if raw is None or self._expired(raw) else raw)
            return
        if not flight.stale:
            self._store_clean(key, result)
        flight.future.set_result(result)

    async def _load_many(self, keys: Sequence[str]) -> list[RawEntry | None]:
        """Read ``keys`` from the backend: one batch for the keys nobody is reading yet."""
        loop = asyncio.get_running_loop()
        fresh: dict[str, _Flight] = {}
        for key in keys:
            if key not in self._flights and key not in fresh:
                flight = _Flight(loop.create_future())
                flight.future.add_done_callback(_retrieve)
                fresh[key] = flight
        if len(fresh) > 1 and self._batch_get:
            self._flights.update(fresh)
            task = loop.create_task(self._fetch_batch(fresh))
            for flight in fresh.values():
                flight.task = task
            self.stats.misses += len(fresh)
            return list(
                await asyncio.gather(*(asyncio.shield(self._flights_or(k, fresh)) for k in keys))
            )
        return list(await asyncio.gather(*(self._load(k) for k in keys)))

    def _flights_or(self, key: str, fresh: dict[str, _Flight]) -> asyncio.Future[RawEntry | None]:
        flight = fresh.get(key) or self._flights[key]
        return flight.future

    async def _fetch_batch(self, flights: dict[str, _Flight]) -> None:
        keys = list(flights)
        try:
            inner = cast(BatchDriver, self._inner)
            results = await inner.get_many(keys)
        except asyncio.CancelledError:
            for flight in flights.values():
                flight.future.cancel()
            raise
        except BaseException as exc:
            for flight in flights.values():
                flight.future.set_exception(exc)
            return
        finally:
            for key, flight in flights.items():
                if self._flights.get(key) is flight:
                    del self._flights[key]
        for key, raw in zip(keys, results, strict=False):
            flight = flights[key]
            if not flight.stale:
                self._store_clean(key, raw)
            flight.future.set_result(raw)
