"""Write-through: the cache changes only after the backend accepted a write."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kv_cache import CachedDriver
from kv_core import (
    BackendUnavailableError,
    MemoryDriver,
    OutcomeUnknownError,
    PreconditionFailedError,
    Store,
)
from kv_core.testing import TestClock


def make(inner: Any, **options: Any) -> CachedDriver:
    return CachedDriver(inner, mode="write_through", owns_inner=False, **options)


async def test_a_refused_write_leaves_the_cache_as_it_was(counting: Any) -> None:
    # asyncblobdict regression: the cache was updated before the backend refused.
    cache = make(counting)
    etag = await cache.set("k", b"v1")
    await counting.inner.set("k", b"v2")  # someone else: etag is now stale
    with pytest.raises(PreconditionFailedError):
        await cache.set("k", b"refused", if_match=etag)
    with pytest.raises(PreconditionFailedError):
        await cache.set("k", b"refused", if_absent=True)
    got = await cache.get("k")
    assert got is not None
    assert got.value != b"refused"
    assert (await counting.inner.get("k")).value == b"v2"  # type: ignore[union-attr]


async def test_a_refusal_makes_the_next_read_ask_the_backend(counting: Any) -> None:
    timer = TestClock()
    cache = make(counting, max_staleness=3600, timer=timer)
    etag = await cache.set("k", b"v1")
    await counting.inner.set("k", b"v2")
    with pytest.raises(PreconditionFailedError):
        await cache.delete("k", if_match=etag)
    assert (await cache.get("k")).value == b"v2"  # type: ignore[union-attr]  # no waiting an hour


async def test_a_backend_error_leaves_the_cache_as_it_was(counting: Any) -> None:
    cache = make(counting)
    await cache.set("k", b"v1")
    counting.fail_next = BackendUnavailableError("down", store="test")
    with pytest.raises(BackendUnavailableError):
        await cache.set("k", b"lost")
    assert (await cache.get("k")).value == b"v1"  # type: ignore[union-attr]
    assert counting.reads == 0  # served from the cache, unchanged


async def test_an_unknown_outcome_drops_the_entry(counting: Any) -> None:
    cache = make(counting)
    await cache.set("k", b"v1")
    counting.fail_next = OutcomeUnknownError("timeout mid-write", store="test")
    with pytest.raises(OutcomeUnknownError):
        await cache.set("k", b"maybe")
    assert "k" not in cache._table
    assert (await cache.get("k")).value == b"v1"  # type: ignore[union-attr]  # asked the backend
    assert counting.reads == 1


async def test_a_value_is_not_served_before_the_backend_accepted_it() -> None:
    gate, entered = asyncio.Event(), asyncio.Event()

    class Slow(MemoryDriver):
        async def set(self, key: str, value: bytes, **kwargs: Any) -> str:
            entered.set()
            await gate.wait()
            return await super().set(key, value, **kwargs)

    inner = Slow()
    cache = make(inner)
    writing = asyncio.create_task(cache.set("k", b"v"))
    await entered.wait()
    assert await cache.get("k") is None
    gate.set()
    etag = await writing
    got = await cache.get("k")
    assert got is not None
    assert got.etag == etag


async def test_writes_reach_the_backend_and_the_cache(counting: Any) -> None:
    cache = make(counting)
    etag = await cache.set("k", b"v")
    assert (await counting.inner.get("k")).etag == etag  # type: ignore[union-attr]
    assert (await cache.get("k")).etag == etag  # type: ignore[union-attr]
    assert counting.reads == 0
    assert await cache.delete("k") is True
    assert await cache.get("k") is None
    assert await counting.inner.get("k") is None
    assert counting.reads == 0


async def test_concurrent_writes_of_one_key_leave_the_cache_equal_to_the_backend(
    counting: Any,
) -> None:
    cache = make(counting, max_staleness=None)
    await asyncio.gather(*(cache.set("k", str(i).encode()) for i in range(50)))
    cached, stored = await cache.get("k"), await counting.inner.get("k")
    assert cached == stored


async def test_flush_is_a_no_op(counting: Any) -> None:
    cache = make(counting)
    await cache.set("k", b"v")
    assert len(await cache.flush()) == 0


async def test_update_across_two_caches_loses_nothing() -> None:
    # Two processes with their own cache over one backend: update()'s compare-and-set
    # must go through the backend, and a refusal must refresh the cache.
    inner = MemoryDriver()
    a = Store(make(inner, max_staleness=3600))
    b = Store(make(inner, max_staleness=3600))
    await asyncio.gather(*(s.update("n", lambda n: n + 1, default=0) for s in (a, b) * 25))
    assert await Store(inner).get("n") == 50


async def test_set_many_is_one_backend_batch_and_fills_the_cache(counting: Any) -> None:
    cache = make(counting)
    etags = await cache.set_many([(f"k{i}", b"v%d" % i) for i in range(100)])
    assert counting.count("set_many") == 1
    assert counting.count("set") == 0
    reads = counting.reads
    for i in range(100):
        got = await cache.get(f"k{i}")
        assert got is not None
        assert (got.value, got.etag) == (b"v%d" % i, etags[i])
    assert counting.reads == reads  # every value was served from the cache


async def test_a_failed_set_many_caches_nothing(counting: Any) -> None:
    cache = make(counting)
    await cache.set("k1", b"old")
    counting.fail_next = OutcomeUnknownError("lost the connection mid-batch")
    with pytest.raises(OutcomeUnknownError):
        await cache.set_many([("k1", b"new"), ("k2", b"new")])
    reads = counting.reads
    got = await cache.get("k1")  # the outcome is unknown: the cache must ask the backend
    assert counting.reads == reads + 1
    assert got is not None
    assert got.value == (await counting.inner.get("k1")).value  # type: ignore[union-attr]


async def test_write_back_set_many_writes_nothing_until_flush(counting: Any) -> None:
    cache = CachedDriver(counting, mode="write_back", owns_inner=False)
    await cache.set_many([("a", b"1"), ("b", b"2")])
    assert counting.writes + counting.count("set_many") == 0
    await cache.flush()
    assert await counting.inner.get("a") is not None
    assert (await counting.inner.get("b")).value == b"2"  # type: ignore[union-attr]
    await cache.aclose()
