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
from ._entries import UNKNOWN, CacheEntry, Remote, Unknown, entry_size
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
        await self._gate.acquire(key)
        try:
            entry = self._table.peek(key)
            if entry is None or not entry.dirty:
                return None  # flushed meanwhile by someone else
            version = entry.version
            raw = entry.raw
            # A local write whose expiry passed is a delete: the value it replaced must
            # not come back.
            value = None if raw is None or self._expired(raw) else raw.value
            expires_at = raw.expires_at if raw is not None else None
            try:
                new_remote = await self._push(key, value, expires_at, entry.remote)
            except PreconditionFailedError:
                return await self._resolve(key, entry, version, value, expires_at)
            except KVError as exc:
                # The key stays dirty. After OutcomeUnknownError the write may have
                # landed: the next flush then sees a "conflict" with identical bytes,
                # which _resolve reports as WRITTEN.
                if not isinstance(exc, OutcomeUnknownError):
                    logger.debug("flush of %r failed: %s", key, exc)
                return KeyOutcome(key, FlushStatus.ERROR, local=value, error=exc)
            self._settle(key, entry, version, new_remote)
            self.stats.flushed += 1
            return KeyOutcome(key, FlushStatus.WRITTEN, local=value)
        finally:
            self._gate.release(key)

    def _settle(self, key: str, entry: CacheEntry, version: int, new_remote: str | None) -> None:
        """Record that the backend now holds ``new_remote`` for the entry's flushed state."""
        if self._table.peek(key) is not entry:
            return
        entry.remote = new_remote
        if entry.version != version:
            entry.dirty = True  # written again meanwhile: still ahead of the backend
            return
        entry.dirty = False
        entry.validated_at = self._timer()
        if entry.raw is not None and self._expired(entry.raw):
            entry.raw = None
            self._table.resize(key, entry)
        if entry.raw is None and not self._negative_caching:
            self._table.pop(key)

    async def _resolve(
        self,
        key: str,
        entry: CacheEntry,
        version: int,
        value: bytes | None,
        expires_at: float | None,
    ) -> KeyOutcome:
        """The backend changed since the cache last saw ``key``: apply the policy."""
        try:
            current = await self._inner.get(key)
            if _same(current, value):
                # Already what we meant to write (another writer agreed, or an earlier
                # write of ours whose outcome was unknown landed after all).
                self._settle(key, entry, version, current.etag if current else None)
                self.stats.flushed += 1
                return KeyOutcome(key, FlushStatus.WRITTEN, local=value)
            policy = self._on_conflict
            if policy == "overwrite":
                new_remote = await self._push(key, value, expires_at, UNKNOWN)
                self._settle(key, entry, version, new_remote)
                self.stats.flushed += 1
                return KeyOutcome(key, FlushStatus.OVERWRITTEN, local=value, remote=current)
            if callable(policy):
                return await self._merge(
                    key,
                    entry=entry,
                    version=version,
                    value=value,
                    expires_at=expires_at,
                    current=current,
                )
        except KVError as exc:
            return KeyOutcome(key, FlushStatus.ERROR, local=value, error=exc)
        # "raise" and "skip": the remote value wins in the cache; the local change lives
        # on only in the outcome (and, for "raise", in the error flush() raises).
        if self._table.peek(key) is entry and entry.version == version:
            self._table.pop(key)
            self._store_clean(key, current)
        status = FlushStatus.CONFLICT if policy == "raise" else FlushStatus.SKIPPED
        logger.warning("kv-cache: %s for key %r (policy %r)", status.value, key, policy)
        return KeyOutcome(key, status, local=value, remote=current)

    async def _merge(
        self,
        key: str,
        *,
        entry: CacheEntry,
        version: int,
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
                if entry.version == version:
                    entry.raw = (
                        RawEntry(merged, new_remote, expires_at)
                        if merged is not None and new_remote is not None
                        else None
                    )
                    self._table.resize(key, entry)
                self._settle(key, entry, version, new_remote)
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

    async def _reserve(self, key: str, value: bytes | None) -> None:
        """Make room for ``key`` holding ``value``, flushing dirty LRU entries if needed.

        Raises:
            FlushFailedError: Dirty entries stand in the way and the backend refused them;
                nothing was changed for ``key``.
        """
        table = self._table
        entry = table.peek(key)
        extra_items = 0 if entry is not None else 1
        extra_bytes = entry_size(key, value) - (entry.size if entry is not None else 0)
        if not table.over(extra_items, extra_bytes):
            return
        items = len(table) + extra_items
        nbytes = table.total_bytes + extra_bytes
        victims: list[str] = []
        for k, e in table.lru():
            if items <= table.max_items and nbytes <= table.max_bytes:
                break
            if k == key:
                continue
            if e.dirty:
                victims.append(k)
            else:
                table.pop(k)
                self.stats.evictions += 1
            items -= 1
            nbytes -= e.size
        if not victims:
            return
        # Flush a batch, not one key per write: the next writes then find clean entries.
        batch = max(len(victims), table.max_items // 16)
        chosen = {*victims, key}
        extra = [k for k in table.dirty_keys() if k not in chosen]
        outcomes = await self._flush_keys(victims + extra[: batch - len(victims)])
        self._keep_pending(outcomes)
        failed = [o for o in outcomes if o.status is FlushStatus.ERROR]
        for k in victims:
            victim = table.peek(k)
            if victim is not None and not victim.dirty:
                table.pop(k)
                self.stats.evictions += 1
        if failed:
            error = FlushFailedError(FlushResult(failed), store=self.name)
            raise error from failed[0].error

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


def _same(current: RawEntry | None, value: bytes | None) -> bool:
    if current is None:
        return value is None
    return value is not None and current.value == value
