"""Store behaviour that the conformance suite does not pin: locks, warnings, repr, views."""

from __future__ import annotations

import asyncio
import gc
import warnings
from datetime import timedelta
from typing import Any

import pytest
from kv_core import (
    BYTES,
    TEXT,
    KeyGate,
    MemoryDriver,
    PreconditionFailedError,
    Store,
    StoreClosedError,
)


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class ConflictingDriver(MemoryDriver):
    """Every conditional write loses a race, as if another process always wrote first."""

    def __init__(self) -> None:
        super().__init__()
        self.gets = 0

    async def get(self, key: str) -> Any:
        self.gets += 1
        return await super().get(key)

    async def set(self, key: str, value: bytes, **kwargs: Any) -> str:
        if kwargs.get("if_match") is not None or kwargs.get("if_absent"):
            raise PreconditionFailedError("lost the race", key=key, store=self.name)
        return await super().set(key, value, **kwargs)


# -- KeyGate --------------------------------------------------------------------------------


async def test_key_locks_are_freed_after_50_concurrent_holders() -> None:
    locks = KeyGate()
    inside = 0
    most = 0

    async def hold(key: str) -> None:
        nonlocal inside, most
        async with locks.hold(key):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0)
            inside -= 1

    await asyncio.gather(*(hold("k") for _ in range(50)), *(hold(f"k{i}") for i in range(10)))
    assert len(locks) == 0
    assert most > 1  # the distinct keys ran side by side...


async def test_key_locks_serialise_one_key() -> None:
    locks = KeyGate()
    inside = 0
    most = 0

    async def hold() -> None:
        nonlocal inside, most
        async with locks.hold("k"):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0)
            inside -= 1

    await asyncio.gather(*(hold() for _ in range(50)))
    assert most == 1  # ...while one key never had two holders
    assert len(locks) == 0


async def test_key_locks_are_freed_after_errors_and_cancellation() -> None:
    locks = KeyGate()
    with pytest.raises(RuntimeError):
        async with locks.hold("k"):
            raise RuntimeError
    assert len(locks) == 0

    entered = asyncio.Event()

    async def holder() -> None:
        async with locks.hold("k"):
            entered.set()
            await asyncio.sleep(3600)

    async def waiter() -> None:
        async with locks.hold("k"):
            pass  # pragma: no cover (cancelled while waiting)

    first = asyncio.create_task(holder())
    await entered.wait()
    second = asyncio.create_task(waiter())
    await asyncio.sleep(0)
    assert len(locks) == 1
    for task in (second, first):
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert len(locks) == 0


# -- ResourceWarning -------------------------------------------------------------------------


def _drop(holder: list[Store[Any]]) -> None:
    holder.clear()  # refcounting frees the store here; gc.collect() covers reference cycles
    gc.collect()


def _resource_warnings_when_dropped(store: list[Store[Any]]) -> list[warnings.WarningMessage]:
    """Drop the only reference to a store and collect, recording ResourceWarnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _drop(store)
    return [w for w in caught if issubclass(w.category, ResourceWarning)]


async def test_unclosed_used_store_warns_on_garbage_collection() -> None:
    holder: list[Store[Any]] = [Store(MemoryDriver())]
    await holder[0].set("k", 1)
    holder.append(holder[0].namespace("ns"))  # a view keeps the shared state alive too
    with pytest.warns(ResourceWarning, match=r"kv Store over memory:// was never closed"):
        _drop(holder)


async def test_store_in_a_reference_cycle_warns_on_gc_collect() -> None:
    holder: list[Store[Any]] = [Store(MemoryDriver())]
    await holder[0].get("k", None)
    cycle: list[Any] = [holder[0]]
    cycle.append(cycle)
    caught = _resource_warnings_when_dropped(holder)
    assert len(caught) == 0  # still referenced by the cycle
    del cycle
    with pytest.warns(ResourceWarning, match="never closed"):
        gc.collect()


async def test_closed_store_does_not_warn() -> None:
    holder: list[Store[Any]] = [Store(MemoryDriver())]
    async with holder[0]:
        await holder[0].set("k", 1)
    assert _resource_warnings_when_dropped(holder) == []


def test_unused_store_does_not_warn() -> None:
    assert _resource_warnings_when_dropped([Store(MemoryDriver())]) == []


# -- repr, ttl, update ----------------------------------------------------------------------


def test_repr_shows_driver_name_namespace_and_codec() -> None:
    store: Store[Any] = Store(MemoryDriver())
    assert repr(store) == "Store(memory://, codec=json)"
    assert (
        repr(store.namespace("a").namespace("b")) == "Store(memory://, namespace='a/b', codec=json)"
    )
    assert repr(store.with_codec(BYTES)) == "Store(memory://, codec=bytes)"


async def test_ttl_accepts_timedelta_and_reports_seconds_left() -> None:
    clock = Clock()
    async with Store[Any](MemoryDriver(clock=clock)) as store:
        await store.set("k", "v", ttl=timedelta(minutes=1, milliseconds=500))
        assert await store.ttl("k") == 60.5
        assert (await store.get_entry("k")).expires_at == 1_060.5
        clock.now += 60
        assert await store.ttl("k") == 0.5
        await store.set_many({"a": 1}, ttl=timedelta(seconds=2))
        assert await store.ttl("a") == 2.0
        await store.set("forever", 1)
        assert await store.ttl("forever") is None


@pytest.mark.parametrize("ttl", [0, -1, timedelta(0), timedelta(seconds=-5), float("nan")])
async def test_non_positive_ttl_is_rejected(ttl: Any) -> None:
    async with Store[Any](MemoryDriver()) as store:
        with pytest.raises(ValueError, match="ttl must be positive"):
            await store.set("k", 1, ttl=ttl)
        assert not await store.exists("k")


@pytest.mark.parametrize("attempts", [1, 3])
async def test_update_makes_exactly_attempts_tries_then_raises(attempts: int) -> None:
    driver = ConflictingDriver()
    async with Store[Any](driver, update_attempts=50) as store:
        await store.set("n", 1)
        driver.gets = 0
        with pytest.raises(PreconditionFailedError, match=f"gave up after {attempts} conflicting"):
            await store.update("n", lambda old: old + 1, attempts=attempts)
        assert driver.gets == attempts
        assert await store.get("n") == 1


async def test_update_uses_store_default_attempts() -> None:
    driver = ConflictingDriver()
    async with Store[Any](driver, update_attempts=4) as store:
        with pytest.raises(PreconditionFailedError, match="after 4"):
            await store.update("n", lambda old: old + 1, default=0)
        assert driver.gets == 4


async def test_update_keeps_ttl_and_does_not_mutate_default() -> None:
    clock = Clock()
    default: list[int] = []
    async with Store[Any](MemoryDriver(clock=clock)) as store:
        await store.update("l", lambda old: [*old, 1], default=default, ttl=10)
        await store.update("l", lambda old: [*old, 2])  # KEEP_TTL by default
        assert await store.get("l") == [1, 2]
        assert await store.ttl("l") == 10
        await store.update("m", lambda old: old.append(1) or old, default=default)
        assert default == []


async def test_update_accepts_an_async_function() -> None:
    async def double(old: int) -> int:
        await asyncio.sleep(0)
        return old * 2

    async with Store[Any](MemoryDriver()) as store:
        await store.set("n", 21)
        assert await store.update("n", double) == 42


def test_invalid_store_settings() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Store(MemoryDriver(), update_attempts=0)
    with pytest.raises(ValueError, match="at least 1"):
        Store(MemoryDriver(), batch_concurrency=0)


# -- views share the driver and its closing --------------------------------------------------


async def test_with_codec_and_namespace_share_closing() -> None:
    driver = MemoryDriver()
    store: Store[Any] = Store(driver)
    users = store.namespace("users")
    text = users.with_codec(TEXT)
    await text.set("1", "Ada")
    assert await store.with_codec(BYTES).get("users/1") == b"Ada"
    assert text.driver is store.driver is driver
    await text.aclose()
    assert store.closed
    assert users.closed
    for view in (store, users, text):
        with pytest.raises(StoreClosedError):
            await view.get("1")
    await store.aclose()  # idempotent


async def test_views_close_the_driver_once() -> None:
    closes = 0

    class Counting(MemoryDriver):
        async def aclose(self) -> None:
            nonlocal closes
            closes += 1
            await super().aclose()

    store: Store[Any] = Store(Counting())
    await store.namespace("a").aclose()
    await store.with_codec(BYTES).aclose()
    await store.aclose()
    assert closes == 1


# -- reported bugs in _store.py (not ours to fix) ---------------------------------------------


@pytest.mark.parametrize("attempts", [0, -1])
async def test_update_rejects_attempts_below_one(attempts: int) -> None:
    async with Store[Any](MemoryDriver()) as store:
        await store.set("n", 1)
        with pytest.raises(ValueError, match="attempts"):
            await store.update("n", lambda old: old + 1, attempts=attempts)


async def test_batch_methods_reject_a_single_str() -> None:
    async with Store[Any](MemoryDriver()) as store:
        await store.set_many({"a": 1, "b": 2, "ab": 3})
        with pytest.raises(TypeError):
            await store.get_many("ab")
        with pytest.raises(TypeError):
            await store.delete_many("ab")
        assert await store.get_many(["a", "b", "ab"]) == {"a": 1, "b": 2, "ab": 3}


async def test_read_stream_rejects_non_positive_chunk_size() -> None:
    async with Store[Any](MemoryDriver(), BYTES) as store:
        await store.set("blob", b"data")
        with pytest.raises(ValueError, match="chunk_size"):
            _ = [c async for c in store.read_stream("blob", chunk_size=-1)]


async def test_a_cancelled_waiter_raises_cancelled_error_when_released_in_the_same_turn() -> None:
    # Issue 10 item 8: the holder releases between the waiter's cancellation and the
    # waiter resuming; the waiter used to raise ValueError('... is not in deque').
    gate = KeyGate()
    await gate.acquire("k")
    waiter = asyncio.ensure_future(gate.acquire("k"))
    await asyncio.sleep(0)  # the waiter is now queued
    waiter.cancel()
    gate.release("k")  # same loop turn: the cancelled waiter is skipped
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert not gate.held("k")
    assert len(gate) == 0
    await gate.acquire("k")  # the key is free again
    gate.release("k")


async def test_update_cancelled_while_waiting_for_its_key_is_a_clean_cancellation() -> None:
    store: Store[Any] = Store(MemoryDriver())
    release = asyncio.Event()

    async def slow(n: int) -> int:
        await release.wait()
        return n + 1

    holder = asyncio.ensure_future(store.update("n", slow, default=0))
    await asyncio.sleep(0)
    waiter = asyncio.ensure_future(store.update("n", lambda n: n + 1, default=0))
    await asyncio.sleep(0)
    waiter.cancel()
    release.set()
    assert await holder == 1
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert await store.update("n", lambda n: n + 1) == 2
    await store.aclose()


async def test_set_many_takes_a_mapping_or_pairs_and_rejects_anything_else() -> None:
    store: Store[Any] = Store(MemoryDriver())
    await store.set_many([("x", 1), ("y", 2), ("x", 3)])
    assert await store.get_many(["x", "y"]) == {"x": 3, "y": 2}
    for bad in (None, 5, "ab", b"ab", [("only-one",)], [["k", 1]]):
        with pytest.raises(TypeError, match="set_many"):
            await store.set_many(bad)
    assert sorted([k async for k in store.keys()]) == ["x", "y"]
    await store.aclose()
