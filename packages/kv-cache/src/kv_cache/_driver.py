"""CachedDriver: a Driver that keeps a bounded, in-process cache in front of another."""

from __future__ import annotations

import asyncio
import warnings
from typing import TYPE_CHECKING, Any, cast

from kv_core import (
    NOT_MODIFIED,
    BackendUnavailableError,
    BatchDriver,
    NotModified,
    PreconditionFailedError,
    RawEntry,
)

from ._core import content_etag
from ._entries import UNKNOWN, CacheEntry, Remote, entry_size
from ._result import FlushConflictError, FlushFailedError, FlushResult, FlushStatus
from ._stream import Streams

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

__all__ = ["CachedDriver"]


class CachedDriver(Streams):
    """A driver that caches another driver's entries in this process.

    ``Store(CachedDriver(inner, ...))`` is used like any store; see the package README
    for the exact guarantees of each mode.

    Args:
        inner: The driver to cache (any backend).
        mode: :class:`CacheMode` (or its name): NONE, WRITE_THROUGH or WRITE_BACK.
        max_items: At most this many entries are kept (negative entries count).
        max_bytes: At most this many bytes of keys and values are kept.
        on_conflict: Write-back only: what a flush does when the backend changed since the
            cache last saw a dirty key: ``"raise"`` (write the others, then raise
            :class:`FlushConflictError`), ``"skip"`` (keep the remote value, report it),
            ``"overwrite"`` (write anyway) or a merge callable (see :data:`MergeFunction`).
        max_staleness: Seconds a clean entry is served without asking the backend; after
            that it is revalidated by etag (a conditional read where the backend has one).
            0 revalidates on every read; None never does (single-writer setups only).
        negative_caching: Also cache "this key is absent" (for ``max_staleness``).
        flush_interval: Write-back only: also flush dirty entries every this many seconds.
        flush_concurrency: At most this many backend writes in flight during a flush.
        owns_inner: ``aclose()`` also closes ``inner``. Pass False when ``inner`` is shared.
        timer: Monotonic seconds used for staleness (tests inject a manual clock). Key
            expiry uses ``inner.clock``.
    """

    @classmethod
    def from_url(cls, url: str, **options: Any) -> CachedDriver:
        """Open ``cache+<inner-url>``; see :func:`kv_cache.parse_cache_url` for the options."""
        from ._url import open_cached

        return open_cached(cls, url, options)

    def __repr__(self) -> str:
        return (
            f"CachedDriver({self._inner.name}, mode={self.mode.value}, "
            f"{len(self._table)} entries, {self.dirty_count} dirty)"
        )

    @property
    def dirty_count(self) -> int:
        """How many entries wait for a flush."""
        return len(self._table.dirty_keys())

    # -- reads ---------------------------------------------------------------------------

    async def get(self, key: str) -> RawEntry | None:
        """Return the live entry for ``key`` (from the cache while fresh), or None."""
        if self._closed:
            self._check_open(key)
        if self._passthrough:
            return await self._inner.get(key)
        return await self._cached_get(key)

    async def exists(self, key: str) -> bool:
        """True if ``key`` is live (as the cache knows it)."""
        return await self.get(key) is not None

    async def get_if_changed(self, key: str, etag: str) -> RawEntry | NotModified | None:
        """NOT_MODIFIED if the entry's etag is still ``etag``, else the entry or None."""
        if self._passthrough and self._conditional_get:
            return await cast(BatchDriver, self._inner).get_if_changed(key, etag)
        raw = await self.get(key)
        if raw is not None and raw.etag == etag:
            return NOT_MODIFIED
        return raw

    async def get_many(self, keys: Sequence[str]) -> list[RawEntry | None]:
        """Entries for ``keys`` in order: cached ones directly, the rest in one batch."""
        self._check_open()
        if self._passthrough:
            if self._batch_get:
                return await cast(BatchDriver, self._inner).get_many(keys)
            return list(await asyncio.gather(*(self._inner.get(k) for k in keys)))
        results: list[RawEntry | None] = [None] * len(keys)
        missing: list[int] = []
        for i, key in enumerate(keys):
            entry = self._table.get(key)
            if entry is not None and self._is_fresh(entry):
                raw = entry.raw
                if raw is None or not self._expired(raw):
                    results[i] = raw
                    self.stats.hits += 1
                    continue
                if entry.dirty:
                    continue
            missing.append(i)
        if missing:
            loaded = await self._load_many([keys[i] for i in missing])
            for i, raw in zip(missing, loaded, strict=False):
                results[i] = raw
        return results

    async def keys(self, prefix: str = "") -> AsyncIterator[str]:
        """Yield every live key with ``prefix``, unflushed writes and deletes included."""
        self._check_open()
        if not self._write_back:
            async for key in self._inner.keys(prefix):
                yield key
            return
        # Dirty entries are bounded by max_items, so this snapshot is too.
        now = self.clock()
        local: dict[str, bool] = {}
        for key, entry in self._table.items_with_prefix(prefix):
            if entry.dirty:
                raw = entry.raw
                local[key] = raw is not None and (raw.expires_at is None or raw.expires_at > now)
        async for key in self._inner.keys(prefix):
            live = local.pop(key, None)
            if live is None or live:
                yield key
        for key, live in local.items():
            if live:
                yield key

    # -- writes --------------------------------------------------------------------------

    async def set(
        self,
        key: str,
        value: bytes,
        *,
        expires_at: float | None = None,
        if_match: str | None = None,
        if_absent: bool = False,
    ) -> str:
        """Store ``value``; in write-back mode in the cache only, until the next flush."""
        self._check_open(key)
        if self._passthrough:
            return await self._inner.set(
                key, value, expires_at=expires_at, if_match=if_match, if_absent=if_absent
            )
        if not self._write_back or not self._table.fits(key, value):
            return await self._write_through(key, value, expires_at, if_match, if_absent)
        size = entry_size(key, value)
        await self._reserve(key, size)
        try:
            await self._acquire(key)
            try:
                base: Remote = UNKNOWN  # never seen: the flush writes unconditionally
                if if_match is not None or if_absent:
                    known = await self._known(key)
                    self._check_condition(key, known, if_match, if_absent)
                    base = self._base_of(known)
                entry = self._table.peek(key)
                if entry is not None:
                    base = self._base_of(entry)
                raw = RawEntry(value, content_etag(value, expires_at), expires_at)
                self._write_local(key, entry, raw, base)
                return raw.etag
            finally:
                self._release(key)
        finally:
            self._unreserve(size)

    async def set_many(
        self, items: Sequence[tuple[str, bytes]], *, expires_at: float | None = None
    ) -> Sequence[str]:
        """Store every item unconditionally.

        Write-back: local writes, flushed later. Write-through: one batch to the backend,
        then the cache takes the values it accepted. If the batch fails the outcome of
        each key is unknown, so those keys are dropped from the cache instead.
        """
        self._check_open()
        if self._write_back:
            return [await self.set(key, value, expires_at=expires_at) for key, value in items]
        inner = cast("BatchDriver", self._inner)
        if self._passthrough:
            return await inner.set_many(items, expires_at=expires_at)
        keys = sorted({key for key, _ in items})  # one order for everyone: no deadlock
        held: list[str] = []
        try:
            for key in keys:
                await self._acquire(key)
                held.append(key)
            try:
                etags = list(await inner.set_many(items, expires_at=expires_at))
            except BaseException:
                for key in keys:
                    self._table.pop(key)
                    self._touched(key)
                raise
            for key in keys:
                self._touched(key)
                self._table.pop(key)
            for (key, value), etag in zip(items, etags, strict=True):
                self._store_clean(key, RawEntry(value, etag, expires_at), holder=True)
            return etags
        finally:
            for key in held:
                self._release(key)

    async def delete(self, key: str, *, if_match: str | None = None) -> bool:
        """Remove ``key``; in write-back mode a tombstone until the next flush."""
        self._check_open(key)
        if self._passthrough:
            return await self._inner.delete(key, if_match=if_match)
        if not self._write_back:
            return await self._delete_through(key, if_match)
        size = entry_size(key, None)
        await self._reserve(key, size)
        try:
            await self._acquire(key)
            try:
                known = await self._known(key)
                self._check_condition(key, known, if_match, False)
                if self._live(known) is None:
                    return False
                entry = self._table.peek(key)
                base = self._base_of(entry if entry is not None else known)
                # Even a key created here and never flushed (base None) gets a tombstone:
                # its flush then sends nothing. No shortcut marks anything clean.
                self._write_local(key, entry, None, base)
                return True
            finally:
                self._release(key)
        finally:
            self._unreserve(size)

    def _check_condition(
        self, key: str, known: CacheEntry, if_match: str | None, if_absent: bool
    ) -> None:
        if if_absent and self._live(known) is not None:
            raise PreconditionFailedError("key already exists", key=key, store=self.name)
        if if_match is not None and not self._matches(if_match, known):
            raise PreconditionFailedError("etag does not match", key=key, store=self.name)

    def _write_local(
        self, key: str, entry: CacheEntry | None, raw: RawEntry | None, base: Remote
    ) -> None:
        """Record a dirty write (``raw`` None: a tombstone) based on ``base``.

        The caller holds the key's gate and a reservation of room for it.
        """
        if entry is None:
            self._table.put(key, CacheEntry(raw, base, self._timer(), dirty=True))
        else:
            entry.raw = raw
            entry.remote = base
            entry.dirty = True
            self._table.resize(key, entry)
        self._touched(key)
        if self._flush_interval is not None:
            self._start_timer()

    async def _write_through(
        self,
        key: str,
        value: bytes,
        expires_at: float | None,
        if_match: str | None,
        if_absent: bool,
    ) -> str:
        await self._acquire(key)
        try:
            entry = self._table.peek(key)
            if entry is not None and entry.dirty:
                # Write-back value too large to cache: it replaces the dirty entry, so it
                # goes out conditioned on what that entry was based on.
                self._check_condition(key, entry, if_match, if_absent)
                base = UNKNOWN if self._on_conflict == "overwrite" else entry.remote
                try:
                    etag = await self._push(key, value, expires_at, base)
                finally:
                    self._touched(key)
                assert etag is not None
                self._table.pop(key)
                return etag
            if if_match is not None and if_match.startswith("kvc-"):
                # A cache-made etag: the backend never saw it. Check it here and send
                # the backend's own etag for the same state instead.
                known = await self._known(key)
                if not self._matches(if_match, known) or not isinstance(known.remote, str):
                    raise PreconditionFailedError("etag does not match", key=key, store=self.name)
                if_match = known.remote
            try:
                etag = await self._inner.set(
                    key, value, expires_at=expires_at, if_match=if_match, if_absent=if_absent
                )
            except PreconditionFailedError:
                self._touched(key)
                self._refused(key)
                raise
            except BaseException as exc:
                if not isinstance(exc, BackendUnavailableError):
                    # The write may or may not have happened: forget what the cache knew.
                    self._table.pop(key)
                    self._touched(key)
                raise
            self._touched(key)
            self._table.pop(key)
            self._store_clean(key, RawEntry(value, etag, expires_at), holder=True)
            return etag
        finally:
            self._release(key)

    async def _delete_through(self, key: str, if_match: str | None) -> bool:
        await self._acquire(key)
        try:
            if if_match is not None and if_match.startswith("kvc-"):
                known = await self._known(key)
                if not self._matches(if_match, known) or not isinstance(known.remote, str):
                    raise PreconditionFailedError("etag does not match", key=key, store=self.name)
                if_match = known.remote
            try:
                existed = await self._inner.delete(key, if_match=if_match)
            except PreconditionFailedError:
                self._touched(key)
                self._refused(key)
                raise
            except BaseException as exc:
                if not isinstance(exc, BackendUnavailableError):
                    self._table.pop(key)
                    self._touched(key)
                raise
            self._touched(key)
            self._table.pop(key)
            self._store_clean(key, None, holder=True)
            return existed
        finally:
            self._release(key)

    def _refused(self, key: str) -> None:
        """The backend refused a conditional write: the cache keeps its value but will ask
        the backend on the next read, since the refusal shows it may be out of date."""
        entry = self._table.peek(key)
        if entry is not None and not entry.dirty:
            entry.validated_at = float("-inf")

    # -- flush and close -----------------------------------------------------------------

    async def flush(self) -> FlushResult:
        """Write every dirty entry to the backend and report what happened to each key.

        Conflicts are handled per ``on_conflict``; outcomes of eviction and timer flushes
        since the previous call are included. In write-through and NONE modes there is
        nothing to flush and the result is empty.

        Raises:
            FlushConflictError: Policy ``"raise"`` and some keys changed in the backend;
                raised after every other key was written. ``.result`` has the details.
            FlushFailedError: The backend failed for some keys; they stay dirty.
        """
        self._check_open()
        return await self._flush_all()

    async def _flush_all(self, *, closing: bool = False) -> FlushResult:
        outcomes = await self._flush_keys(self._table.dirty_keys())
        result = FlushResult([*self._pending, *outcomes])
        self._pending = []
        if self._on_conflict == "raise" and result.by_status(FlushStatus.CONFLICT):
            raise FlushConflictError(result, store=self.name)
        if result.errors:
            error = FlushFailedError(result, store=self.name, closed=closing)
            raise error from result.errors[0].error
        return result

    async def aclose(self) -> None:
        """Flush (write-back), then close the inner driver if this cache owns it.

        The cache is closed even if the final flush fails; the error raised then carries
        every unwritten value in ``.result``. Idempotent.
        """
        if self._closed:
            return
        try:
            if self._timer_task is not None:
                self._timer_task.cancel()
                self._timer_task = None
            if self._write_back:
                await self._flush_all(closing=True)
        finally:
            self._closed = True
            self._table.clear()
            if self._owns_inner:
                await self._inner.aclose()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True) and self._table.dirty_keys():
            warnings.warn(
                f"{self!r} was never closed: its unflushed writes are lost",
                ResourceWarning,
                stacklevel=2,
            )
