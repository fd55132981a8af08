"""Reads: single flight, staleness and revalidation, expiry, negative caching."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kv_cache import CachedDriver
from kv_core import BackendUnavailableError, MemoryDriver, Store
from kv_core.testing import TestClock

MODES = ["write_through", "write_back"]


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.parametrize("negative_caching", [True, False])
async def test_1000_concurrent_gets_of_a_missing_key_make_one_backend_read(
    counting: Any, mode: str, negative_caching: bool
) -> None:
    cache = CachedDriver(counting, mode=mode, negative_caching=negative_caching)
    results = await asyncio.gather(*(cache.get("missing") for _ in range(1000)))
    assert results == [None] * 1000
    assert counting.reads == 1


async def test_1000_concurrent_gets_of_a_present_key_make_one_backend_read(
    counting: Any, mode: str
) -> None:
    await counting.inner.set("k", b"v")
    cache = CachedDriver(counting, mode=mode)
    results = await asyncio.gather(*(cache.get("k") for _ in range(1000)))
    assert {r.value for r in results if r is not None} == {b"v"}
    assert len(results) == 1000
    assert counting.reads == 1
    assert cache.stats.misses == 1000  # all missed the cache, one read served them


async def test_a_cancelled_reader_does_not_cancel_the_shared_read() -> None:
    gate = asyncio.Event()

    class Slow(MemoryDriver):
        async def get(self, key: str) -> Any:
            await gate.wait()
            return await super().get(key)

    inner = Slow()
    await inner.set("k", b"v")
    cache = CachedDriver(inner, mode="write_through")
    first = asyncio.create_task(cache.get("k"))
    second = asyncio.create_task(cache.get("k"))
    await asyncio.sleep(0.01)
    first.cancel()
    gate.set()
    got = await second
    assert got is not None
    assert got.value == b"v"
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_a_failed_read_reaches_every_waiter_and_is_not_cached(counting: Any) -> None:
    cache = CachedDriver(counting, mode="write_through")
    counting.fail_next = BackendUnavailableError("down", store="test")
    results = await asyncio.gather(*(cache.get("k") for _ in range(10)), return_exceptions=True)
    assert all(isinstance(r, BackendUnavailableError) for r in results)
    await counting.inner.set("k", b"v")
    assert (await cache.get("k")).value == b"v"  # type: ignore[union-attr]
    assert counting.reads == 2


async def test_hits_do_not_touch_the_backend(counting: Any, mode: str) -> None:
    await counting.inner.set("k", b"v")
    cache = CachedDriver(counting, mode=mode)
    for _ in range(100):
        assert (await cache.get("k")).value == b"v"  # type: ignore[union-attr]
    assert counting.reads == 1
    assert cache.stats.hits == 99


@pytest.mark.parametrize("conditional", [True, False])
async def test_a_write_behind_the_cache_is_seen_after_the_staleness_bound_not_before(
    mode: str, conditional: bool, counting_cls: Any
) -> None:
    timer = TestClock()
    counting = counting_cls(conditional_get=conditional)
    other = Store(counting.inner)  # another process, writing straight to the backend
    cache = Store(CachedDriver(counting, mode=mode, max_staleness=30, timer=timer))
    await other.set("k", "v1")
    assert await cache.get("k") == "v1"
    await other.set("k", "v2")
    timer.advance(29)
    assert await cache.get("k") == "v1"  # within the documented bound: may be stale
    timer.advance(2)
    assert await cache.get("k") == "v2"  # past it: revalidated
    if conditional:
        assert counting.count("get_if_changed") == 1
    # An unchanged entry is revalidated without transferring it again.
    timer.advance(31)
    assert await cache.get("k") == "v2"
    assert cache.driver.stats.not_modified == (1 if conditional else 0)  # type: ignore[attr-defined]
    await other.delete("k")
    timer.advance(31)
    assert await cache.get("k", default=None) is None


async def test_absence_is_cached_for_the_staleness_bound_too(counting: Any, mode: str) -> None:
    timer = TestClock()
    cache = CachedDriver(counting, mode=mode, max_staleness=10, timer=timer)
    assert await cache.get("k") is None
    await counting.inner.set("k", b"created elsewhere")
    assert await cache.get("k") is None
    timer.advance(11)
    assert (await cache.get("k")).value == b"created elsewhere"  # type: ignore[union-attr]


async def test_without_negative_caching_absence_is_never_cached(counting: Any) -> None:
    cache = CachedDriver(counting, mode="write_through", negative_caching=False)
    assert await cache.get("k") is None
    await counting.inner.set("k", b"v")
    assert (await cache.get("k")).value == b"v"  # type: ignore[union-attr]


async def test_expiry_follows_the_inner_drivers_clock(mode: str) -> None:
    now = [5000.0]
    inner = MemoryDriver(clock=lambda: now[0])
    await inner.set("k", b"v", expires_at=5010.0)
    cache = CachedDriver(inner, mode=mode, max_staleness=None)
    assert cache.clock is inner.clock
    assert (await cache.get("k")).value == b"v"  # type: ignore[union-attr]
    now[0] = 5010.0
    assert await cache.get("k") is None
    assert await cache.get_many(["k"]) == [None]
    assert not await cache.exists("k")


async def test_get_many_batches_the_misses_into_one_read(counting: Any, mode: str) -> None:
    for i in range(10):
        await counting.inner.set(f"k{i}", str(i).encode())
    cache = CachedDriver(counting, mode=mode)
    await cache.get("k0")
    got = await cache.get_many([f"k{i}" for i in range(10)] + ["nope"])
    assert [g.value if g else None for g in got] == [str(i).encode() for i in range(10)] + [None]
    assert counting.calls == {"get": 1, "get_many": 1}
    await cache.get_many([f"k{i}" for i in range(10)])
    assert counting.calls == {"get": 1, "get_many": 1}


async def test_a_read_overlapping_a_local_write_never_caches_the_older_value(mode: str) -> None:
    gate, entered = asyncio.Event(), asyncio.Event()

    class Slow(MemoryDriver):
        async def get(self, key: str) -> Any:
            entered.set()
            await gate.wait()
            return await super().get(key)

    inner = Slow()
    await inner.set("k", b"old")
    cache = CachedDriver(inner, mode=mode)
    reading = asyncio.create_task(cache.get("k"))
    await entered.wait()
    await cache.set("k", b"new")
    gate.set()
    await reading  # either value is fine for the overlapping read...
    assert (await cache.get("k")).value == b"new"  # type: ignore[union-attr]  # ...not later
