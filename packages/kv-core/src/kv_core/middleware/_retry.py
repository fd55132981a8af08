"""Retry and Fallback: what to do when the backend cannot be reached."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeVar

from .. import _driver_ops as _ops
from .._driver import Capability, Driver, NotModified, RawEntry
from .._errors import BackendUnavailableError
from ._base import Middleware, close_all

__all__ = ["Fallback", "Retry"]

U = TypeVar("U")


class Retry(Middleware):
    """Retries what provably did not reach the backend: BackendUnavailableError only.

    Reads and writes alike are retried on BackendUnavailableError, which a driver raises
    only when nothing was done. OutcomeUnknownError (a write that may have landed),
    PreconditionFailedError and every other error pass straight through: a
    non-idempotent write is never repeated blindly. Attempts are bounded; between them
    the layer sleeps with full jitter, ``uniform(0, min(max_delay, base_delay * 2**n))``,
    so many clients do not retry in lockstep. After the last attempt the last
    BackendUnavailableError is raised.

    A listing or a read stream is retried only before its first item (restarting later
    would repeat items); a write stream only if the backend failed before taking its
    first chunk (the chunks cannot be replayed).

    Args:
        inner: The wrapped driver.
        attempts: Calls in all, including the first (at least 1).
        base_delay: Seconds; the cap of the first backoff.
        max_delay: Seconds; no backoff is longer.
        rng: Random source of the jitter (tests inject a seeded one).
    """

    def __init__(
        self,
        inner: Driver,
        *,
        attempts: int = 3,
        base_delay: float = 0.05,
        max_delay: float = 1.0,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(inner)
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise ValueError(f"attempts must be an int of at least 1, got {attempts!r}")
        if not (base_delay >= 0 and max_delay >= 0):
            raise ValueError("base_delay and max_delay must be non-negative seconds")
        self.attempts = attempts
        self.base_delay = float(base_delay)
        self.max_delay = float(max_delay)
        self._rng = rng or random.Random()
        #: Retries done so far (calls beyond the first), for tests and metrics.
        self.retries = 0

    def __repr__(self) -> str:
        return f"Retry({self.inner!r}, attempts={self.attempts})"

    async def _backoff(self, attempt: int) -> None:
        self.retries += 1
        delay = self._rng.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))
        await asyncio.sleep(delay)

    async def _again(self, call: Callable[[], Awaitable[U]]) -> U:
        """The first attempt failed with BackendUnavailableError: the remaining ones."""
        for attempt in range(1, self.attempts):
            await self._backoff(attempt - 1)
            try:
                return await call()
            except BackendUnavailableError:
                if attempt + 1 >= self.attempts:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _call(self, call: Callable[[], Awaitable[U]]) -> U:
        try:
            return await call()
        except BackendUnavailableError:
            if self.attempts == 1:
                raise
            return await self._again(call)

    async def get(self, key: str) -> RawEntry | None:
        """Read ``key``, retrying while the backend is unreachable."""
        try:  # the first attempt inline: no closure on the fast path
            return await self.inner.get(key)
        except BackendUnavailableError:
            if self.attempts == 1:
                raise
            return await self._again(lambda: self.inner.get(key))

    async def set(
        self,
        key: str,
        value: bytes,
        *,
        expires_at: float | None = None,
        if_match: str | None = None,
        if_absent: bool = False,
    ) -> str:
        """Write ``value``, retrying only while the backend is unreachable."""

        def call() -> Awaitable[str]:
            return self.inner.set(
                key, value, expires_at=expires_at, if_match=if_match, if_absent=if_absent
            )

        try:
            return await call()
        except BackendUnavailableError:
            if self.attempts == 1:
                raise
            return await self._again(call)

    async def delete(self, key: str, *, if_match: str | None = None) -> bool:
        """Delete ``key``, retrying only while the backend is unreachable."""
        return await self._call(lambda: self.inner.delete(key, if_match=if_match))

    async def get_many(self, keys: Sequence[str]) -> list[RawEntry | None]:
        """Read ``keys``, retrying while the backend is unreachable."""
        return await self._call(lambda: _ops.get_many(self.inner, keys))

    async def set_many(
        self, items: Sequence[tuple[str, bytes]], *, expires_at: float | None = None
    ) -> Sequence[str]:
        """Write the batch, retrying only while the backend is unreachable."""
        return await self._call(lambda: _ops.set_many(self.inner, items, expires_at))

    async def delete_many(self, keys: Sequence[str]) -> int:
        """Delete the batch, retrying only while the backend is unreachable."""
        return await self._call(lambda: _ops.delete_many(self.inner, keys))

    async def clear(self, prefix: str = "") -> int:
        """Clear, retrying only while the backend is unreachable."""
        return await self._call(lambda: _ops.clear(self.inner, prefix))

    async def exists(self, key: str) -> bool:
        """Check ``key``, retrying while the backend is unreachable."""
        return await self._call(lambda: _ops.exists(self.inner, key))

    async def get_value(self, key: str) -> bytes | None:
        """Read ``key``'s value, retrying while the backend is unreachable."""
        return await self._call(lambda: _ops.get_value(self.inner, key))

    async def get_values(self, keys: Sequence[str]) -> list[bytes | None]:
        """Read values, retrying while the backend is unreachable."""
        return await self._call(lambda: _ops.get_values(self.inner, keys))

    async def get_if_changed(self, key: str, etag: str) -> RawEntry | NotModified | None:
        """Revalidate ``key``, retrying while the backend is unreachable."""
        return await self._call(lambda: _ops.get_if_changed(self.inner, key, etag))

    async def keys(self, prefix: str = "") -> AsyncIterator[str]:
        """List keys; retried only before the first key."""
        async for key in self._until_first(lambda: self.inner.keys(prefix)):
            yield key

    async def read_stream(self, key: str, *, chunk_size: int = 256 * 1024) -> AsyncIterator[bytes]:
        """Stream ``key``; retried only before the first chunk."""
        async for chunk in self._until_first(lambda: _ops.read_stream(self.inner, key, chunk_size)):
            yield chunk

    async def _until_first(self, make: Callable[[], AsyncIterator[U]]) -> AsyncIterator[U]:
        for attempt in range(self.attempts):
            started = False
            try:
                async for item in make():
                    started = True
                    yield item
                return
            except BackendUnavailableError:
                if started or attempt + 1 >= self.attempts:
                    raise
            await self._backoff(attempt)

    async def write_stream(
        self, key: str, chunks: AsyncIterable[bytes], *, expires_at: float | None = None
    ) -> str:
        """Stream a write; retried only if the backend failed before taking a chunk.

        Over a driver that does not stream, the chunks are collected first (as the Store
        would), and the single write is retried like any other.
        """
        if not self.inner.capabilities & Capability.STREAM:
            data = b"".join([bytes(c) async for c in chunks])
            return await self._call(lambda: self.inner.set(key, data, expires_at=expires_at))
        taken = False

        async def feed() -> AsyncIterator[bytes]:
            nonlocal taken
            async for chunk in chunks:
                taken = True
                yield chunk

        for attempt in range(self.attempts):
            try:
                return await _ops.write_stream(self.inner, key, feed(), expires_at)
            except BackendUnavailableError:
                if taken or attempt + 1 >= self.attempts:
                    raise
            await self._backoff(attempt)
        raise AssertionError("unreachable")  # pragma: no cover


class Fallback(Middleware):
    """Reads from ``secondary`` when ``primary`` cannot be reached; writes only to ``primary``.

    A read goes to the secondary only when the primary raised BackendUnavailableError
    (never on a validation error, a precondition failure, a decoding error or an unknown
    outcome). Writes go to the primary only, so the two never diverge by this layer's
    doing (no split brain): while the primary is down, writes fail. Listings and read
    streams fall back only before their first item. Entries read from the secondary carry
    the secondary's etags, so a conditional write built on them fails on the primary
    (PreconditionFailedError) instead of overwriting newer data.

    ``name``, ``clock`` and ``capabilities`` are the primary's; closing closes both.

    Args:
        primary: The driver every call goes to first.
        secondary: The driver that serves reads while the primary is unreachable (a
            replica, a snapshot, a read-through cache...).
    """

    def __init__(self, primary: Driver, secondary: Driver) -> None:
        super().__init__(primary)
        self.secondary = secondary
        #: Reads served by the secondary so far.
        self.fallbacks = 0

    def __repr__(self) -> str:
        return f"Fallback({self.inner!r}, {self.secondary!r})"

    @property
    def primary(self) -> Driver:
        """The driver every call goes to first."""
        return self.inner

    async def _read(self, first: Awaitable[U], second: Callable[[], Awaitable[U]]) -> U:
        try:
            return await first
        except BackendUnavailableError:
            self.fallbacks += 1
            return await second()

    async def get(self, key: str) -> RawEntry | None:
        """Read ``key`` from the primary, or from the secondary if it is unreachable."""
        try:
            return await self.inner.get(key)
        except BackendUnavailableError:
            self.fallbacks += 1
            return await self.secondary.get(key)

    async def get_many(self, keys: Sequence[str]) -> list[RawEntry | None]:
        """Read ``keys`` (one side or the other, never mixed)."""
        return await self._read(
            _ops.get_many(self.inner, keys), lambda: _ops.get_many(self.secondary, keys)
        )

    async def exists(self, key: str) -> bool:
        """Check ``key`` on the primary, or on the secondary."""
        return await self._read(
            _ops.exists(self.inner, key), lambda: _ops.exists(self.secondary, key)
        )

    async def get_value(self, key: str) -> bytes | None:
        """Read ``key``'s value from the primary, or from the secondary."""
        return await self._read(
            _ops.get_value(self.inner, key), lambda: _ops.get_value(self.secondary, key)
        )

    async def get_values(self, keys: Sequence[str]) -> list[bytes | None]:
        """Read values from the primary, or from the secondary."""
        return await self._read(
            _ops.get_values(self.inner, keys), lambda: _ops.get_values(self.secondary, keys)
        )

    async def get_if_changed(self, key: str, etag: str) -> RawEntry | NotModified | None:
        """Revalidate on the primary, or on the secondary."""
        return await self._read(
            _ops.get_if_changed(self.inner, key, etag),
            lambda: _ops.get_if_changed(self.secondary, key, etag),
        )

    async def keys(self, prefix: str = "") -> AsyncIterator[str]:
        """List the primary's keys, or the secondary's if the primary fails before the first."""
        started = False
        try:
            async for key in self.inner.keys(prefix):
                started = True
                yield key
            return
        except BackendUnavailableError:
            if started:
                raise
        self.fallbacks += 1
        async for key in self.secondary.keys(prefix):
            yield key

    async def read_stream(self, key: str, *, chunk_size: int = 256 * 1024) -> AsyncIterator[bytes]:
        """Stream from the primary, or from the secondary if it fails before the first chunk."""
        started = False
        try:
            async for chunk in _ops.read_stream(self.inner, key, chunk_size):
                started = True
                yield chunk
            return
        except BackendUnavailableError:
            if started:
                raise
        self.fallbacks += 1
        async for chunk in _ops.read_stream(self.secondary, key, chunk_size):
            yield chunk

    async def aclose(self) -> None:
        """Close both drivers (once each, even if they are the same)."""
        self._closed = True
        await close_all([self.inner, self.secondary])
