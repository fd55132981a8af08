"""Harnesses that put middleware around MemoryDrivers, for the conformance suite."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeVar

from kv_core import Capability, Driver, MemoryDriver, RawEntry
from kv_core.middleware import Middleware
from kv_core.testing import MemoryHarness

T = TypeVar("T")

KEY_A = bytes(range(32))
KEY_B = bytes(range(100, 132))


class WrappedHarness:
    """Every driver is ``wrap(MemoryDriver)`` over one shared dict."""

    def __init__(self, wrap: Callable[[Driver], Driver]) -> None:
        self.base = MemoryHarness()
        self.wrap = wrap

    def make_driver(self, *, clock: Callable[[], float] | None = None) -> Driver:
        return self.wrap(self.base.make_driver(clock=clock))

    def make_unreachable_driver(self) -> Driver | None:
        return None


class StoragesHarness:
    """Drivers built from several MemoryDrivers, each over its own shared dict.

    ``build(drivers)`` gets one MemoryDriver per dict (all on the test's clock) and
    returns the driver under test (a Router, a Fallback...).
    """

    def __init__(self, count: int, build: Callable[[list[Driver]], Driver]) -> None:
        self.datas: list[dict[str, RawEntry]] = [{} for _ in range(count)]
        self.build = build

    def make_driver(self, *, clock: Callable[[], float] | None = None) -> Driver:
        drivers: list[Driver] = [
            MemoryDriver(clock=clock or time.time, data=data) for data in self.datas
        ]
        return self.build(drivers)

    def make_unreachable_driver(self) -> Driver | None:
        return None


class FaultyDriver(Middleware):
    """A MemoryDriver wrapper whose calls fail or stall as a test scripts them.

    ``failures[method]`` is a list of exceptions raised by the next calls of that method
    (one per call, before reaching the inner driver unless ``after_inner`` lists the
    method: then the call reaches the inner driver first). ``stall`` names methods whose
    calls wait on ``release`` (an event the test may never set) before the inner call,
    or after it for methods in ``after_inner``. ``calls`` counts calls per method.
    """

    def __init__(self, inner: Driver | None = None) -> None:
        super().__init__(inner or MemoryDriver())
        self.failures: dict[str, list[BaseException]] = {}
        self.stall: set[str] = set()
        self.after_inner: set[str] = set()
        self.release = asyncio.Event()
        self.calls: dict[str, int] = {}
        # Streams are offered (whole values underneath) so stream paths can be scripted.
        self.capabilities |= Capability.STREAM

    async def _gate(self, method: str, when: str) -> None:
        if (method in self.after_inner) != (when == "after"):
            return
        if method in self.stall:
            await self.release.wait()
        queued = self.failures.get(method)
        if queued:
            raise queued.pop(0)

    async def _around(self, method: str, call: Callable[[], Awaitable[T]]) -> T:
        self.calls[method] = self.calls.get(method, 0) + 1
        await self._gate(method, "before")
        result = await call()
        await self._gate(method, "after")
        return result

    async def get(self, key: str) -> RawEntry | None:
        return await self._around("get", lambda: self.inner.get(key))

    async def set(
        self,
        key: str,
        value: bytes,
        *,
        expires_at: float | None = None,
        if_match: str | None = None,
        if_absent: bool = False,
    ) -> str:
        return await self._around(
            "set",
            lambda: self.inner.set(
                key, value, expires_at=expires_at, if_match=if_match, if_absent=if_absent
            ),
        )

    async def delete(self, key: str, *, if_match: str | None = None) -> bool:
        return await self._around("delete", lambda: self.inner.delete(key, if_match=if_match))

    async def get_many(self, keys: Sequence[str]) -> list[RawEntry | None]:
        return await self._around("get_many", lambda: super(FaultyDriver, self).get_many(keys))

    async def exists(self, key: str) -> bool:
        return await self._around("exists", lambda: super(FaultyDriver, self).exists(key))

    async def keys(self, prefix: str = "") -> AsyncIterator[str]:
        """Fails or stalls at the first step, or after the first key for ``keys+1``."""
        self.calls["keys"] = self.calls.get("keys", 0) + 1
        await self._gate("keys", "before")
        first = True
        async for key in self.inner.keys(prefix):
            yield key
            if first:
                first = False
                await self._gate("keys+1", "before")

    async def write_stream(
        self, key: str, chunks: AsyncIterable[bytes], *, expires_at: float | None = None
    ) -> str:
        async def call() -> str:
            data = b""
            async for chunk in chunks:
                data += chunk
                await self._gate("write_stream+chunk", "before")
            return await self.inner.set(key, data, expires_at=expires_at)

        return await self._around("write_stream", call)
