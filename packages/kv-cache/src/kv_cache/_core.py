"""State and read path of the cache: freshness, single-flight loads, clean inserts.

One rule makes the cache's state easy to reason about: an entry is changed only by the
task that holds its key's gate (``self._gate``), or, for clean entries, when nobody holds
it (a read filling the cache, an eviction dropping a clean entry). Local writes, deletes,
flushes of a key, write-through writes and streamed writes all hold the gate for their
whole duration, backend round trip included, so the operations on one key happen one
after another, in the order they got the gate. See the state table in the README.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import deque
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

from ._entries import CacheEntry, EntryTable, Remote, entry_size
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
    #: Flushes whose outcome was unknown (the backend failed mid-write) that a later
    #: flush found had landed, so it did not send them again.
    confirmed: int = 0


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


def content_etag(value: bytes, expires_at: float | None) -> str:
    """The cache-made etag of a local write: derived from the state it identifies.

    Content-derived (DESIGN §6 allows it), so that it can still be checked against the
    backend's state after the entry was flushed and evicted.
    """
    digest = hashlib.blake2b(value, digest_size=12)
    digest.update(repr(expires_at).encode())
    return f"kvc-{digest.hexdigest()}"


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
        # Writers waiting for room (see Flusher._reserve), first come first served; one is
        # woken whenever room may have appeared (a gate released, a reservation given
        # back), and a woken writer that finds room wakes the next one.
        self._room_waiters: deque[asyncio.Future[None]] = deque()
        # Dirty keys being flushed to make room, so that two writers do not pick the same.
        self._evicting: set[str] = set()
        self._conditional_get = Capability.CONDITIONAL_GET in inner.capabilities
        self._batch_get = Capability.GET_MANY in inner.capabilities
        self._closed = False
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
            | (inner.capabilities & (Capability.NATIVE_TTL | Capability.STREAM))
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

    async def _acquire(self, key: str) -> None:
        await self._gate.acquire(key)

    def _release(self, key: str) -> None:
        """Give the key's gate back; writers waiting for room look again."""
        self._gate.release(key)
        self._wake_room()

    def _wake_room(self) -> None:
        waiters = self._room_waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

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

    def _base_of(self, entry: CacheEntry) -> Remote:
        """What a new local write to this entry's key is based on (a backend state)."""
        if entry.dirty:
            return entry.remote  # the base of the pending write stays the base
        if entry.raw is not None and self._expired(entry.raw):
            return None  # drivers treat an expired key as absent for conditions
        return entry.remote

    def _matches(self, etag: str, entry: CacheEntry) -> bool:
        """True if ``etag`` identifies the live state ``entry`` holds."""
        live = self._live(entry)
        if live is None:
            return False
        if etag == live.etag or (not entry.dirty and etag == entry.remote):
            return True
        # A cache-made etag names a state by its content: it still identifies it after
        # the entry was flushed, evicted and read back with the backend's etag.
        return etag.startswith("kvc-") and etag == content_etag(live.value, live.expires_at)

    def _touched(self, key: str) -> None:
        """``key`` changed here or in the backend: a read in flight may predate that, so
        its result must not be cached, and later readers must not join it."""
        flight = self._flights.get(key)
        if flight is not None:
            flight.stale = True

    # -- clean inserts -------------------------------------------------------------------

    def _store_clean(self, key: str, view: RawEntry | None, *, holder: bool = False) -> None:
        """Cache what the backend said about ``key``.

        Never over a dirty entry, and, unless the caller holds the key's gate
        (``holder``), never while someone else holds it: that someone is changing the key.
        """
        if not holder and self._gate.held(key):
            return
        table = self._table
        current = table.peek(key)
        if current is not None and current.dirty:
            return
        if (
            view is not None
            and current is not None
            and current.raw is not None
            and current.remote == view.etag
        ):
            # Same backend state: keep the etag callers already hold for it.
            current.validated_at = self._timer()
            table.get(key)
            return
        if view is None and not self._negative_caching:
            table.pop(key)
            return
        if not table.fits(key, view.value if view is not None else None):
            table.pop(key)
            return
        table.pop(key)
        size = entry_size(key, view)
        if table.over(1, size):
            self._evict_clean(1, size, keep=key)
            if table.over(1, size):
                return  # only dirty or busy entries in the way: a read never overfills
        table.put(key, CacheEntry(view, view.etag if view is not None else None, self._timer()))

    def _evict_clean(self, items: int, nbytes: int, keep: str | None = None) -> None:
        """Drop clean, idle entries (least recently used first) until ``items`` more
        entries and ``nbytes`` more bytes fit, or nothing else can be dropped."""
        table = self._table
        for k, e in table.lru():
            if not table.over(items, nbytes):
                return
            if k != keep and not e.dirty and not self._gate.held(k):
                table.pop(k)
                self.stats.evictions += 1

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
        return self._as_seen(key, await self._load(key))

    def _as_seen(self, key: str, view: RawEntry | None) -> RawEntry | None:
        """What a caller sees for a backend ``view``: the cached entry's etag when the
        cache holds that very backend state (so etags stay stable), else the view."""
        if view is None:
            return None
        entry = self._table.peek(key)
        if entry is not None and not entry.dirty and entry.remote == view.etag:
            return entry.raw if entry.raw is not None else view
        return view

    async def _known(self, key: str) -> CacheEntry:
        """The cache's up-to-date knowledge of ``key``; the caller holds its gate.

        The entry returned may be detached from the table (when it could not be cached);
        callers only read it.
        """
        entry = self._table.get(key)
        if (
            entry is not None
            and self._is_fresh(entry)
            and (entry.dirty or entry.raw is None or not self._expired(entry.raw))
        ):
            return entry
        view = await self._load(key)
        self._store_clean(key, view, holder=True)
        entry = self._table.peek(key)
        if entry is not None and (entry.dirty or entry.remote == (view.etag if view else None)):
            return entry
        return CacheEntry(view, view.etag if view is not None else None, self._timer())

    async def _load(self, key: str) -> RawEntry | None:
        """The backend's entry for ``key`` (its own etag), read once for every caller."""
        flight = self._flights.get(key)
        if flight is None or flight.stale:
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
        # What the backend held when the cache last looked, captured now: the entry
        # object may change while the read is in flight (a local write, a flush).
        base: RawEntry | None = None
        old = self._table.peek(key)
        if (
            self._conditional_get
            and old is not None
            and not old.dirty
            and old.raw is not None
            and isinstance(old.remote, str)
        ):
            base = RawEntry(old.raw.value, old.remote, old.raw.expires_at)
        try:
            result: RawEntry | NotModified | None
            if base is not None:
                inner = cast(BatchDriver, self._inner)
                result = await inner.get_if_changed(key, base.etag)
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
            # The backend still holds the state ``base`` describes (with the backend's
            # own etag, never the cache's).
            self.stats.not_modified += 1
            assert base is not None
            view = None if self._expired(base) else base
            current = self._table.peek(key)
            if (
                not flight.stale
                and current is not None
                and not current.dirty
                and current.remote == base.etag
                and not self._gate.held(key)
            ):
                current.validated_at = self._timer()
            flight.future.set_result(view)
            return
        if not flight.stale:
            self._store_clean(key, result)
        flight.future.set_result(result)

    async def _load_many(self, keys: Sequence[str]) -> list[RawEntry | None]:
        """Read ``keys`` from the backend: one batch for the keys nobody is reading yet."""
        loop = asyncio.get_running_loop()
        fresh: dict[str, _Flight] = {}
        for key in keys:
            current = self._flights.get(key)
            if (current is None or current.stale) and key not in fresh:
                flight = _Flight(loop.create_future())
                flight.future.add_done_callback(_retrieve)
                fresh[key] = flight
        if len(fresh) > 1 and self._batch_get:
            self._flights.update(fresh)
            task = loop.create_task(self._fetch_batch(fresh))
            for flight in fresh.values():
                flight.task = task
            self.stats.misses += len(fresh)
            futures = [(fresh.get(k) or self._flights[k]).future for k in keys]
            views = await asyncio.gather(*(asyncio.shield(f) for f in futures))
        else:
            views = await asyncio.gather(*(self._load(k) for k in keys))
        return [self._as_seen(k, v) for k, v in zip(keys, views, strict=True)]

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
