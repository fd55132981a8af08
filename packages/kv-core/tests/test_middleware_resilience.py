"""Timeout, Retry and Fallback with scripted faults (the Redis fault tests are in kv-redis).

Stalls are calls that wait on an event the test never sets: the deadlines here are what
end them, never the scheduler's timing.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kv_core import (
    BackendUnavailableError,
    Capability,
    MemoryDriver,
    OutcomeUnknownError,
    PreconditionFailedError,
    SerializationError,
    Store,
    UnsupportedOperationError,
)
from kv_core.middleware import Fallback, Retry, Timeout

from ._middleware_support import FaultyDriver

DEADLINE = 0.05


def unavailable(key: str = "k") -> BackendUnavailableError:
    return BackendUnavailableError("connection refused", key=key, store="faulty://")


# -- Timeout ------------------------------------------------------------------------------


async def test_a_stalled_read_raises_backend_unavailable_chaining_the_timeout() -> None:
    faulty = FaultyDriver()
    faulty.stall = {"get", "get_many", "exists"}
    store: Store[Any] = Store(Timeout(faulty, read=DEADLINE, write=DEADLINE))
    for call in (store.get("k"), store.get_many(["k", "j"]), store.exists("k")):
        with pytest.raises(BackendUnavailableError) as info:
            await call
        assert isinstance(info.value.__cause__, TimeoutError | asyncio.TimeoutError)
        assert not isinstance(info.value, OutcomeUnknownError)
    with pytest.raises(BackendUnavailableError) as info:
        await store.get("named")
    assert "named" in str(info.value)
    assert f"{DEADLINE}s" in str(info.value)


async def test_a_late_write_raises_outcome_unknown_because_it_may_have_landed() -> None:
    faulty = FaultyDriver()
    faulty.stall = {"set", "delete"}
    faulty.after_inner = {"set", "delete"}  # the write lands, then the answer never comes
    store: Store[Any] = Store(Timeout(faulty, read=DEADLINE, write=DEADLINE))
    with pytest.raises(OutcomeUnknownError) as info:
        await store.set("k", "landed")
    assert "may or may not" in str(info.value)
    assert "'k'" in str(info.value)
    assert await Store(faulty.inner).get("k") == "landed"  # it did happen
    with pytest.raises(OutcomeUnknownError):
        await store.delete("k")
    assert not await Store(faulty.inner).exists("k")


async def test_a_write_that_fails_fast_keeps_its_own_error() -> None:
    faulty = FaultyDriver()
    faulty.failures["set"] = [unavailable(), PreconditionFailedError("stale", key="k")]
    store: Store[Any] = Store(Timeout(faulty, read=DEADLINE, write=DEADLINE))
    with pytest.raises(BackendUnavailableError) as info:
        await store.set("k", 1)
    assert not isinstance(info.value, OutcomeUnknownError)
    with pytest.raises(PreconditionFailedError):
        await store.set("k", 1)


async def test_a_listing_step_that_stalls_is_a_read_timeout() -> None:
    faulty = FaultyDriver()
    await Store(faulty.inner).set_many({"a": 1, "b": 2})
    faulty.stall = {"keys+1"}  # the first key comes, the next step never does
    store: Store[Any] = Store(Timeout(faulty, read=DEADLINE))
    seen: list[str] = []

    async def listing() -> None:
        async for key in store.keys():
            seen.append(key)

    with pytest.raises(BackendUnavailableError):
        await listing()
    assert len(seen) == 1


async def test_write_stream_deadline_counts_backend_stalls_not_the_callers_pace() -> None:
    faulty = FaultyDriver()
    store: Store[Any] = Store(Timeout(faulty, write=DEADLINE))

    async def slow_caller() -> AsyncIterator[bytes]:
        for part in (b"a", b"b", b"c"):
            await asyncio.sleep(DEADLINE * 2)  # the caller's own time: not the backend's
            yield part

    await store.write_stream("slow", slow_caller())
    assert (await faulty.inner.get("slow")).value == b"abc"  # type: ignore[union-attr]

    faulty.stall = {"write_stream+chunk"}  # the backend takes one chunk, then hangs
    with pytest.raises(OutcomeUnknownError):
        await store.write_stream("stalled", [b"x", b"y"])


async def test_timeout_rejects_nonsense_deadlines() -> None:
    for bad in (0, -1, float("nan"), "1", True):
        with pytest.raises(ValueError, match="positive"):
            Timeout(MemoryDriver(), read=bad)  # type: ignore[arg-type]
    assert Timeout(MemoryDriver(), read=float("inf")).read is None


# -- Retry --------------------------------------------------------------------------------


class RecordingRandom(random.Random):
    """Returns 0 (no real waiting) and records each jitter range asked for."""

    def __init__(self) -> None:
        super().__init__(0)
        self.ranges: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        self.ranges.append((a, b))
        return 0.0


async def test_retry_repeats_reads_and_unreached_writes_with_full_jitter() -> None:
    faulty = FaultyDriver()
    rng = RecordingRandom()
    retry = Retry(faulty, attempts=4, base_delay=0.1, max_delay=0.25, rng=rng)
    store: Store[Any] = Store(retry)
    faulty.failures["set"] = [unavailable(), unavailable(), unavailable()]
    await store.set("k", "v")
    assert faulty.calls["set"] == 4
    # Full jitter: uniform(0, min(cap, base * 2**n)) before attempt n+1.
    assert rng.ranges == [(0, 0.1), (0, 0.2), (0, 0.25)]
    faulty.failures["get"] = [unavailable(), unavailable()]
    assert await store.get("k") == "v"
    assert faulty.calls["get"] == 3
    assert retry.retries == 5


async def test_retry_gives_up_after_its_attempts_with_the_last_error() -> None:
    faulty = FaultyDriver()
    store: Store[Any] = Store(Retry(faulty, attempts=2, base_delay=0))
    last = unavailable("last")
    faulty.failures["get"] = [unavailable(), last, unavailable()]
    with pytest.raises(BackendUnavailableError) as info:
        await store.get("k")
    assert info.value is last
    assert faulty.calls["get"] == 2


@pytest.mark.parametrize(
    "error",
    [
        OutcomeUnknownError("timed out mid-write", key="k"),
        PreconditionFailedError("stale etag", key="k"),
        SerializationError("bad", key="k"),
        UnsupportedOperationError("no", key="k"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_retry_never_repeats_what_may_have_happened_or_cannot_succeed(
    error: Exception,
) -> None:
    faulty = FaultyDriver()
    store: Store[Any] = Store(Retry(faulty, attempts=5, base_delay=0))
    faulty.failures["set"] = [error]
    faulty.failures["delete"] = [error]
    with pytest.raises(type(error)):
        await store.set("k", 1, if_absent=True)
    with pytest.raises(type(error)):
        await store.delete("k")
    assert faulty.calls == {"set": 1, "delete": 1}


async def test_retry_restarts_a_listing_only_before_its_first_key() -> None:
    faulty = FaultyDriver()
    await Store(faulty.inner).set_many({"a": 1, "b": 2})
    store: Store[Any] = Store(Retry(faulty, attempts=3, base_delay=0))
    faulty.failures["keys"] = [unavailable()]
    assert sorted([k async for k in store.keys()]) == ["a", "b"]
    assert faulty.calls["keys"] == 2
    faulty.failures["keys+1"] = [unavailable()]  # fails after yielding a key
    with pytest.raises(BackendUnavailableError):
        [k async for k in store.keys()]
    assert faulty.calls["keys"] == 3  # not restarted: it would repeat keys


async def test_retry_repeats_a_write_stream_only_if_no_chunk_was_taken() -> None:
    faulty = FaultyDriver()
    store: Store[Any] = Store(Retry(faulty, attempts=3, base_delay=0))
    faulty.failures["write_stream"] = [unavailable()]
    await store.write_stream("s", [b"1", b"2"])
    assert faulty.calls["write_stream"] == 2
    assert (await faulty.inner.get("s")).value == b"12"  # type: ignore[union-attr]
    faulty.failures["write_stream+chunk"] = [unavailable()]  # fails after taking a chunk
    with pytest.raises(BackendUnavailableError):
        await store.write_stream("t", [b"1", b"2"])
    assert faulty.calls["write_stream"] == 3


async def test_retry_validates_its_options() -> None:
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="attempts"):
            Retry(MemoryDriver(), attempts=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="delay"):
        Retry(MemoryDriver(), base_delay=-1)


async def test_retry_over_timeout_retries_a_late_read_but_not_a_late_write() -> None:
    faulty = FaultyDriver()
    faulty.stall = {"get", "set"}
    store: Store[Any] = Store(Retry(Timeout(faulty, read=DEADLINE, write=DEADLINE), base_delay=0))
    with pytest.raises(BackendUnavailableError):
        await store.get("k")
    assert faulty.calls["get"] == 3
    with pytest.raises(OutcomeUnknownError):
        await store.set("k", 1)
    assert faulty.calls["set"] == 1


# -- Fallback -----------------------------------------------------------------------------


async def _pair() -> tuple[FaultyDriver, MemoryDriver, Fallback, Store[Any]]:
    primary, secondary = FaultyDriver(), MemoryDriver()
    await Store(primary.inner).set("k", "primary")
    await Store(secondary).set_many({"k": "secondary", "only/secondary": 1})
    fallback = Fallback(primary, secondary)
    return primary, secondary, fallback, Store(fallback)


async def test_fallback_reads_the_secondary_only_when_the_primary_is_unavailable() -> None:
    primary, _, fallback, store = await _pair()
    assert await store.get("k") == "primary"
    primary.failures["get"] = [unavailable()]
    assert await store.get("k") == "secondary"
    primary.failures["get_many"] = [unavailable()]
    assert await store.get_many(["k", "only/secondary"]) == {"k": "secondary", "only/secondary": 1}
    primary.failures["exists"] = [unavailable()]
    assert await store.exists("only/secondary")
    primary.failures["keys"] = [unavailable()]
    assert sorted([k async for k in store.keys()]) == ["k", "only/secondary"]
    assert fallback.fallbacks == 4


@pytest.mark.parametrize(
    "error",
    [
        OutcomeUnknownError("late", key="k"),
        PreconditionFailedError("stale", key="k"),
        SerializationError("bad", key="k"),
        ValueError("validation"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_fallback_does_not_hide_other_errors(error: Exception) -> None:
    primary, _, fallback, store = await _pair()
    primary.failures["get"] = [error]
    with pytest.raises(type(error)):
        await store.get("k")
    assert fallback.fallbacks == 0


async def test_fallback_writes_only_to_the_primary_even_when_it_is_down() -> None:
    primary, secondary, _, store = await _pair()
    await store.set("new", 1)
    await store.delete("k")
    assert not await Store(secondary).exists("new")
    assert await Store(secondary).get("k") == "secondary"
    primary.failures["set"] = [unavailable()]
    with pytest.raises(BackendUnavailableError):
        await store.set("down", 1)
    assert not await Store(secondary).exists("down")  # no split brain
    assert not await Store(primary.inner).exists("down")


async def test_fallback_does_not_switch_a_listing_midway() -> None:
    primary, _, _, store = await _pair()
    await Store(primary.inner).set("k2", 1)
    primary.failures["keys+1"] = [unavailable()]
    with pytest.raises(BackendUnavailableError):
        [k async for k in store.keys()]


async def test_an_etag_read_from_the_secondary_cannot_overwrite_the_primary() -> None:
    primary, _, _, store = await _pair()
    primary.failures["get"] = [unavailable()]
    stale = await store.get_entry("k")
    assert stale.value == "secondary"
    with pytest.raises(PreconditionFailedError):
        await store.set("k", "from a stale read", if_match=stale.etag)
    assert await store.get("k") == "primary"


async def test_fallback_closes_both_drivers() -> None:
    primary, secondary, _, store = await _pair()
    await store.aclose()
    for driver in (primary.inner, secondary):
        with pytest.raises(Exception, match="closed"):
            await driver.get("k")
    same = MemoryDriver()
    await Fallback(same, same).aclose()  # one driver on both sides: closed once


# -- the watchdog behind Timeout ------------------------------------------------------------


async def test_only_the_stalled_calls_of_many_concurrent_ones_time_out() -> None:
    faulty = FaultyDriver()
    await faulty.inner.set("fast", b"1")
    timeout = Timeout(faulty, read=DEADLINE)
    stalled = FaultyDriver(faulty.inner)
    stalled.stall = {"get"}
    slow = Timeout(stalled, read=DEADLINE)
    results = await asyncio.gather(
        *(timeout.get("fast") for _ in range(25)),
        *(slow.get("fast") for _ in range(25)),
        return_exceptions=True,
    )
    assert all(r is not None and not isinstance(r, BaseException) for r in results[:25])
    assert all(isinstance(r, BackendUnavailableError) for r in results[25:])


async def test_a_caller_cancelling_its_own_call_gets_cancelled_not_a_timeout() -> None:
    faulty = FaultyDriver()
    faulty.stall = {"get"}
    call = asyncio.ensure_future(Timeout(faulty, read=60).get("k"))
    await asyncio.sleep(0)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call


async def test_a_timeout_leaves_no_pending_cancellation_on_the_task() -> None:
    faulty = FaultyDriver()
    faulty.stall = {"get"}
    timeout = Timeout(faulty, read=DEADLINE)
    with pytest.raises(BackendUnavailableError):
        await timeout.get("k")
    task = asyncio.current_task()
    assert task is not None
    if hasattr(task, "cancelling"):  # 3.11+
        assert task.cancelling() == 0
    await asyncio.sleep(0)  # not cancelled by a leftover request
    faulty.stall = set()
    assert await timeout.get("k") is None  # and the layer still works


async def test_retry_repeats_a_collected_write_stream_over_a_driver_that_does_not_stream() -> None:
    faulty = FaultyDriver()
    faulty.capabilities &= ~Capability.STREAM
    retry = Retry(faulty, attempts=3, base_delay=0)
    faulty.failures["set"] = [unavailable(), unavailable()]

    async def chunks() -> AsyncIterator[bytes]:
        yield b"1"
        yield b"2"

    # Called directly, as a layer above (Stats, Router...) would: the Store itself collects.
    await retry.write_stream("s", chunks())
    assert faulty.calls["set"] == 3
    assert (await faulty.inner.get("s")).value == b"12"  # type: ignore[union-attr]
