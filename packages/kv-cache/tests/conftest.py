"""Harnesses that put a CachedDriver over MemoryDriver storage, one per cache setup.

See :mod:`kv_cache.testing` for the two shapes (cold caches, one shared cache). The model
test uses cold caches: after ``flush()`` a fresh cache must read back exactly what the
model holds, which proves the flush wrote the backend correctly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from kv_cache import CacheMode
from kv_cache.testing import CachedHarness
from kv_core import Capability, MemoryDriver, NotModified, RawEntry
from kv_core.testing import MemoryHarness


class CountingDriver:
    """Wraps a MemoryDriver and counts the calls that reach it (not a mock: the memory
    driver behind it does the real work)."""

    def __init__(self, inner: MemoryDriver | None = None, *, conditional_get: bool = True):
        self.inner = inner if inner is not None else MemoryDriver()
        self.name = "counting+memory://"
        self.clock = self.inner.clock
        self.capabilities = self.inner.capabilities
        if not conditional_get:
            self.capabilities &= ~Capability.CONDITIONAL_GET
        self.calls: dict[str, int] = {}
        self.fail_next: Exception | None = None

    def _count(self, op: str) -> None:
        self.calls[op] = self.calls.get(op, 0) + 1
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error

    def count(self, *ops: str) -> int:
        return sum(self.calls.get(op, 0) for op in ops)

    @property
    def reads(self) -> int:
        return self.count("get", "get_many", "get_if_changed")

    @property
    def writes(self) -> int:
        return self.count("set", "delete")

    async def get(self, key: str) -> RawEntry | None:
        self._count("get")
        return await self.inner.get(key)

    async def get_many(self, keys: Sequence[str]) -> list[RawEntry | None]:
        self._count("get_many")
        return await self.inner.get_many(keys)

    async def get_if_changed(self, key: str, etag: str) -> RawEntry | NotModified | None:
        self._count("get_if_changed")
        return await self.inner.get_if_changed(key, etag)

    async def set(self, key: str, value: bytes, **kwargs: Any) -> str:
        self._count("set")
        return await self.inner.set(key, value, **kwargs)

    async def set_many(
        self, items: Sequence[tuple[str, bytes]], *, expires_at: float | None = None
    ) -> list[str]:
        self._count("set_many")
        return await self.inner.set_many(items, expires_at=expires_at)

    async def delete(self, key: str, *, if_match: str | None = None) -> bool:
        self._count("delete")
        return await self.inner.delete(key, if_match=if_match)

    async def keys(self, prefix: str = "") -> AsyncIterator[str]:
        self._count("keys")
        async for key in self.inner.keys(prefix):
            yield key

    async def exists(self, key: str) -> bool:
        self._count("exists")
        return await self.inner.exists(key)

    async def aclose(self) -> None:
        self._count("aclose")
        await self.inner.aclose()


HARNESSES = {
    "none": lambda: CachedHarness(MemoryHarness(), mode=CacheMode.NONE),
    # Independent caches must revalidate every read to see each other's writes.
    "write_through-cold": lambda: CachedHarness(
        MemoryHarness(), mode="write_through", max_staleness=0
    ),
    # One shared cache, small enough that the suite also runs eviction and the
    # uncacheable-value path (the 3 MiB values exceed max_bytes).
    "write_through-shared": lambda: CachedHarness(
        MemoryHarness(), shared=True, mode="write_through", max_items=64, max_bytes=1 << 20
    ),
    "write_back-shared": lambda: CachedHarness(
        MemoryHarness(), shared=True, mode="write_back", max_items=64, max_bytes=1 << 20
    ),
    "write_back-roomy": lambda: CachedHarness(
        MemoryHarness(), shared=True, mode="write_back", max_staleness=None
    ),
}


@pytest.fixture(params=sorted(HARNESSES))
def kv_harness(request: pytest.FixtureRequest) -> Any:
    """A fresh harness (fresh storage) for each test, once per cache setup."""
    return HARNESSES[request.param]()


@pytest.fixture
def counting() -> CountingDriver:
    """A counting driver over a fresh MemoryDriver."""
    return CountingDriver()


COLD = {
    "none": {"mode": "none"},
    "write_through": {"mode": "write_through"},
    "write_back": {"mode": "write_back"},
    # Tiny caches: nearly every write evicts, so write-back flushes on eviction all the time.
    "write_through-tiny": {"mode": "write_through", "max_items": 3, "max_bytes": 200},
    "write_back-tiny": {"mode": "write_back", "max_items": 3, "max_bytes": 200},
}


@pytest.fixture(params=sorted(COLD))
def cold_harness(request: pytest.FixtureRequest) -> CachedHarness:
    """A cold-cache harness per setup (used by the model test)."""
    return CachedHarness(MemoryHarness(), **COLD[request.param])


@pytest.fixture
def counting_cls() -> type[CountingDriver]:
    """The counting driver class, for tests that build their own."""
    return CountingDriver
