"""Write-back: making room, flushing dirty entries and resolving conflicts."""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import TYPE_CHECKING

from kv_core import (
    KVError,
    OutcomeUnknownError,
    PreconditionFailedError,
    RawEntry,
)

from ._core import CacheCore
from ._entries import UNKNOWN, CacheEntry, Remote, Unknown
from ._result import FlushFailedError, FlushResult, FlushStatus, KeyOutcome

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["Flusher"]

logger = logging.getLogger("kv_cache")

#: A merge callable is retried this many times when the key keeps changing under it.
MERGE_ATTEMPTS = 5


class Flusher(CacheCore):
    """Write-back machinery on top of :class:`CacheCore`."""

    # -- pushing one entry ---------------------------------------------------------------

    async def _push(
        self, key: str, value: bytes | None, expires_at: float | None, remote: Remote
    ) -> str | None:
        """Write ``value`` (None: delete) conditioned on ``remote``; return the new remote."""
        inner = self._inner
        if value is None:
            if remote is None:
                return None  # seen absent, meant absent: nothing to send
            if isinstance(remote, Unknown):
                await inner.delete(key)
            else:
                await inner.delete(key, if_match=remote)
            return None
        if isinstance(remote, Unknown):
            return await inner.set(key, value, expires_at=expires_at)
        if remote is None:
            return await inner.set(key, value, expires_at=expires_at, if_absent=True)
        return await inner.set(key, value, expires_at=expires_at, if_match=remote)

    async def _flush_one(self, key: str) -> KeyOutcome | None:
        """Write ``key``'s dirty entry to the backend, holding its gate throughout."""
        await self._acquire(key)
        try:
            return await self._flush_held(key)
        finally:
            self._release(key)

    async def _flush_held(self, key: str) -> KeyOutcome | None:
        """:meth:`_flush_one` for a caller that already holds the key's gate."""
        entry = self._table.peek(key)
        if entry is None or not entry.dirty:
            return None  # flushed meanwhile by someone else
        raw = entry.raw
        # A local write whose expiry passed is a delete: the value it replaced must
        # not come back.
        value = None if raw is None or self._expired(raw) else raw.value
        expires_at = raw.expires_at if raw is not None else None
        try:
            if entry.in_doubt is not None:
                # The last flush of this key may or may not have landed: look before
                # writing, so that nothing is written twice and the base stays true.
                current = await self._inner.get(key)
                if _same(current, *entry.in_doubt):
                    entry.remote = current.etag if current is not None else None
                    entry.in_doubt = None
                    if _same(current, value, expires_at):
                        self._settle(key, entry, entry.remote)
                        self.stats.flushed += 1
                        self.stats.confirmed += 1
                        return KeyOutcome(key, FlushStatus.WRITTEN, local=value)
                entry.in_doubt = None
            if value is None and entry.remote is None:
                # Seen absent, meant absent (created here and deleted before any flush):
                # nothing to send, nothing to report.
                self._settle(key, entry, None)
                return None
            new_remote = await self._push(key, value, expires_at, entry.remote)
        except PreconditionFailedError:
            return await self._resolve(key, entry, value, expires_at)
        except asyncio.CancelledError:
            # Cancelled mid-write (a timeout around flush() or aclose()): it may have
            # landed, so the next flush looks first.
            if entry.in_doubt is None:
                entry.in_doubt = (value, expires_at)
            raise
        except KVError as exc:
            # The key stays dirty and the next flush retries it.
            if isinstance(exc, OutcomeUnknownError):
                entry.in_doubt = (value, expires_at)
            else:
                logger.debug("flush of %r failed: %s", key, exc)
            return KeyOutcome(key, FlushStatus.ERROR, local=value, error=exc)
        finally:
            self._touched(key)  # a read in flight may predate the write
        self._settle(key, entry, new_remote)
        self.stats.flushed += 1
        return KeyOutcome(key, FlushStatus.WRITTEN, local=value)

    def _settle(self, key: str, entry: CacheEntry, new_remote: str | None) -> None:
        """The backend now holds the entry's state as ``new_remote``: the entry is clean."""
        if self._table.peek(key) is not entry:
            return
        entry.remote = new_remote
        entry.dirty = False
        entry.in_doubt = None
        entry.validated_at = self._timer()
        if entry.raw is not None and (new_remote is None or self._expired(entry.raw)):
            entry.raw = None
            self._table.resize(key, entry)
        if entry.raw is None and not self._negative_caching:
            self._table.pop(key)

    async def _resolve(
        self,
        key: str,
        entry: CacheEntry,
        value: bytes | None,
        expires_at: float | None,
    ) -> KeyOutcome:
        """The backend changed since the cache last saw ``key``: apply the policy.

        The caller holds the key's gate.
        """
        try:
            current = await self._inner.get(key)
            if _same(current, value, expires_at):
                # Already what we meant to write (an earlier write of ours whose outcome
                # was unknown landed after all, or another writer agreed).
                self._settle(key, entry, current.etag if current else None)
                self.stats.flushed += 1
                self.stats.confirmed += 1
                return KeyOutcome(key, FlushStatus.WRITTEN, local=value)
            policy = self._on_conflict
            if policy == "overwrite":
                new_remote = await self._push(key, value, expires_at, UNKNOWN)
                self._settle(key, entry, new_remote)
                self.stats.flushed += 1
                return KeyOutcome(key, FlushStatus.OVERWRITTEN, local=value, remote=current)
            if callable(policy):
                return await self._merge(
                    key, entry=entry, value=value, expires_at=expires_at, current=current
                )
        except KVError as exc:
            return KeyOutcome(key, FlushStatus.ERROR, local=value, error=exc)
        finally:
            self._touched(key)
        # "raise" and "skip": the remote value wins in the cache; the local change lives
        # on only in the outcome (and, for "raise", in the error flush() raises).
        if self._table.peek(key) is entry:
            self._table.pop(key)
            self._store_clean(key, current, holder=True)
        status = FlushStatus.CONFLICT if policy == "raise" else FlushStatus.SKIPPED
        logger.warning("kv-cache: %s for key %r (policy %r)", status.value, key, policy)
        return KeyOutcome(key, status, local=value, remote=current)

    async def _merge(
        self,
        key: str,
        *,
        entry: CacheEntry,
        value: bytes | None,
        expires_at: float | None,
        current: RawEntry | None,
    ) -> KeyOutcome:
        policy = self._on_conflict
        assert callable(policy)
        first_remote = current
        for _ in range(MERGE_ATTEMPTS):
            merged = policy(key, value, current)
            if inspect.isawaitable(merged):
                merged = await merged
            assert merged is None or isinstance(merged, bytes)
            remote: Remote = current.etag if current is not None else None
            try:
                new_remote = await self._push(key, merged, expires_at, remote)
            except PreconditionFailedError:
                current = await self._inner.get(key)
                continue
            if self._table.peek(key) is entry:
                entry.raw = (
                    RawEntry(merged, new_remote, expires_at)
                    if merged is not None and new_remote is not None
                    else None
                )
                self._table.resize(key, entry)
                self._settle(key, entry, new_remote)
                if not self._table.within_bounds():
                    self._table.pop(key)  # the merge grew it: clean now, so just drop it
            self.stats.flushed += 1
            return KeyOutcome(key, FlushStatus.MERGED, local=merged, remote=first_remote)
        error = PreconditionFailedError(
            f"merge lost the race {MERGE_ATTEMPTS} times", key=key, store=self.name
        )
        return KeyOutcome(key, FlushStatus.ERROR, local=value, remote=current, error=error)

    # -- flushing many -------------------------------------------------------------------

    async def _flush_keys(self, keys: Iterable[str]) -> list[KeyOutcome]:
        """Flush ``keys`` with bounded concurrency; return their outcomes in key order."""
        pending = list(keys)
        results: list[KeyOutcome | None] = [None] * len(pending)
        indices = iter(range(len(pending)))

        # A few workers pulling keys, not one task per key: a flush of thousands of
        # keys then costs little more than the backend writes themselves.
        async def worker() -> None:
            for i in indices:
                results[i] = await self._flush_one(pending[i])

        workers = min(self._flush_concurrency, len(pending))
        if workers == 1:
            await worker()
        elif workers > 1:
            await asyncio.gather(*(worker() for _ in range(workers)))
        return [r for r in results if r is not None]

    def _keep_pending(self, outcomes: list[KeyOutcome]) -> None:
        """Keep what a background flush found for the next ``flush()`` to report."""
        for outcome in outcomes:
            if outcome.status not in (FlushStatus.WRITTEN, FlushStatus.ERROR):
                self._pending.append(outcome)

    async def _reserve(self, key: str, size: int) -> None:
        """Reserve room for ``key`` holding an entry of ``size`` bytes; the caller must
        :meth:`_unreserve` it once its entry is in the table (or the write failed).

        Called before taking the key's gate, so that a writer waiting for room never
        holds a gate another writer's room depends on. Clean idle entries are dropped
        first; if dirty entries stand in the way, the least recently used idle ones are
        flushed (a batch of at least ``max_items // 16``) and dropped; if every one of them
        is busy (being written or flushed by someone else), the writer waits until one is
        not. Reservations count as used room, so concurrent writers never get the same
        room twice and ``max_items``/``max_bytes`` hold under any concurrency.

        Raises:
            FlushFailedError: Dirty entries stand in the way and the backend refused them;
                nothing was reserved.
        """
        table = self._table
        while True:
            items, nbytes = table.shortfall(key, size)
            if items or nbytes:
                own = table.peek(key)  # replaced by the new entry: its room counts as free
                self._evict_clean(
                    0 if own is not None else 1,
                    size - (own.size if own is not None else 0),
                    keep=key,
                )
                items, nbytes = table.shortfall(key, size)
            if not items and not nbytes:
                table.reserved_items += 1
                table.reserved_bytes += size
                if self._room_waiters and not table.over(1, 0):
                    self._wake_room()  # room for more than this writer: pass it on
                return
            victims = self._victims(key, items, nbytes)
            if not victims:
                # Every entry in the way is busy; its owner wakes a waiter when done.
                waiter = asyncio.get_running_loop().create_future()
                self._room_waiters.append(waiter)
                try:
                    await waiter
                except asyncio.CancelledError:
                    if waiter.done() and not waiter.cancelled():
                        self._wake_room()  # woken just as cancelled: pass the turn on
                    raise
                continue
            self._evicting.update(victims)
            try:
                outcomes = await self._flush_keys(victims)
            finally:
                self._evicting.difference_update(victims)
            self._keep_pending(outcomes)
            for k in victims:
                victim = table.peek(k)
                if victim is not None and not victim.dirty and not self._gate.held(k):
                    table.pop(k)
                    self.stats.evictions += 1
            self._wake_room()
            failed = [o for o in outcomes if o.status is FlushStatus.ERROR]
            if failed:
                error = FlushFailedError(FlushResult(failed), store=self.name)
                raise error from failed[0].error

    def _unreserve(self, size: int) -> None:
        table = self._table
        table.reserved_items -= 1
        table.reserved_bytes -= size
        self._wake_room()

    def _victims(self, key: str, items: int, nbytes: int) -> list[str]:
        """Idle dirty entries to flush so that ``items`` and ``nbytes`` become free."""
        victims: list[str] = []
        batch = max(1, self._table.max_items // 16)
        for k, e in self._table.lru():
            if items <= 0 and nbytes <= 0 and len(victims) >= batch:
                break
            if k == key or not e.dirty or k in self._evicting or self._gate.held(k):
                continue
            victims.append(k)
            items -= 1
            nbytes -= e.size
        return victims  # possibly fewer than needed: flushing them is still progress

    # -- the timer -----------------------------------------------------------------------

    def _start_timer(self) -> None:
        if self._flush_interval is None or self._timer_task is not None:
            return
        self._timer_task = asyncio.get_running_loop().create_task(self._timer_loop())

    async def _timer_loop(self) -> None:
        assert self._flush_interval is not None
        while True:
            await asyncio.sleep(self._flush_interval)
            try:
                self._keep_pending(await self._flush_keys(self._table.dirty_keys()))
            except Exception:  # never let the timer die; the next flush() reports
                logger.exception("kv-cache: background flush failed")


def _same(current: RawEntry | None, value: bytes | None, expires_at: float | None) -> bool:
    """True if the backend holds exactly the state the cache meant to write."""
    if current is None:
        return value is None
    if value is None or current.value != value:
        return False
    if current.expires_at is None or expires_at is None:
        return current.expires_at is None and expires_at is None
    return abs(current.expires_at - expires_at) < 0.001  # backends keep milliseconds
