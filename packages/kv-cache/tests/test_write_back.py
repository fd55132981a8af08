"""Write-back: dirty tracking, flush reports, conflict policies, tombstones, bounds."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kv_cache import (
    CachedDriver,
    CacheMode,
    FlushConflictError,
    FlushFailedError,
    FlushStatus,
)
from kv_core import (
    BackendUnavailableError,
    Capability,
    MemoryDriver,
    OutcomeUnknownError,
    PreconditionFailedError,
    RawEntry,
    Store,
    StoreClosedError,
)
from kv_core.testing import GatedDriver, InterceptingDriver, SeededDelayDriver


def make(inner: Any, **options: Any) -> CachedDriver:
    return CachedDriver(inner, mode=CacheMode.WRITE_BACK, owns_inner=False, **options)


async def _turns(n: int = 20) -> None:
    """Let every ready task run (event-loop turns, no wall-clock time)."""
    for _ in range(n):
        await asyncio.sleep(0)


async def test_writes_stay_local_until_flush(counting: Any) -> None:
    cache = make(counting)
    await cache.set("a", b"1")
    await cache.set("b", b"2")
    assert counting.writes == 0
    assert await counting.inner.get("a") is None
    result = await cache.flush()
    assert sorted(result.written) == ["a", "b"]
    assert result.ok
    assert (await counting.inner.get("a")).value == b"1"  # type: ignore[union-attr]
    assert counting.writes == 2
    assert cache.dirty_count == 0
    assert len(await cache.flush()) == 0  # nothing left to write


async def test_an_entry_only_read_is_never_uploaded(counting: Any) -> None:
    # asyncblobdict regression: sync re-uploaded entries that were only read, clobbering
    # newer remote data.
    await counting.inner.set("k", b"old")
    cache = make(counting)
    assert (await cache.get("k")).value == b"old"  # type: ignore[union-attr]
    await counting.inner.set("k", b"newer, written by someone else")
    result = await cache.flush()
    await cache.aclose()
    assert len(result) == 0
    assert counting.writes == 0
    assert (await counting.inner.get("k")).value == b"newer, written by someone else"  # type: ignore[union-attr]


async def test_a_stale_etag_is_refused(counting: Any) -> None:
    # asyncblobdict regression: a write with a stale etag was accepted.
    cache = make(counting)
    first = await cache.set("k", b"1")
    await cache.set("k", b"2")
    with pytest.raises(PreconditionFailedError):
        await cache.set("k", b"3", if_match=first)
    with pytest.raises(PreconditionFailedError):
        await cache.delete("k", if_match=first)
    assert (await cache.get("k")).value == b"2"  # type: ignore[union-attr]


async def test_a_conflict_raises_after_the_other_keys_were_written(counting: Any) -> None:
    # asyncblobdict regression: conflicts were never raised.
    await counting.inner.set("contested", b"v0")
    cache = make(counting)
    await cache.get("contested")  # the cache now knows etag of v0
    await cache.set("contested", b"mine")
    await cache.set("other1", b"x")
    await cache.set("other2", b"y")
    await counting.inner.set("contested", b"theirs")  # behind the cache's back
    with pytest.raises(FlushConflictError) as info:
        await cache.flush()
    assert isinstance(info.value, PreconditionFailedError)
    assert info.value.key == "contested"
    result = info.value.result
    assert result.status_of("contested") is FlushStatus.CONFLICT
    assert sorted(result.written) == ["other1", "other2"]
    (conflict,) = result.conflicts
    assert conflict.local == b"mine"  # the local change survives in the report
    assert conflict.remote is not None
    assert conflict.remote.value == b"theirs"
    assert (await counting.inner.get("other1")).value == b"x"  # type: ignore[union-attr]
    assert (await counting.inner.get("contested")).value == b"theirs"  # type: ignore[union-attr]
    # The cache now shows the remote value, and the conflict is not reported twice.
    assert (await cache.get("contested")).value == b"theirs"  # type: ignore[union-attr]
    assert len(await cache.flush()) == 0


async def test_conflict_policy_skip_reports_without_raising(counting: Any) -> None:
    await counting.inner.set("k", b"v0")
    cache = make(counting, on_conflict="skip")
    await cache.set("k", b"mine", if_match=(await cache.get("k")).etag)  # type: ignore[union-attr]
    await counting.inner.set("k", b"theirs")
    result = await cache.flush()
    assert result.status_of("k") is FlushStatus.SKIPPED
    assert result.conflicts[0].local == b"mine"
    assert (await counting.inner.get("k")).value == b"theirs"  # type: ignore[union-attr]
    assert (await cache.get("k")).value == b"theirs"  # type: ignore[union-attr]


async def test_conflict_policy_overwrite_writes_anyway(counting: Any) -> None:
    await counting.inner.set("k", b"v0")
    cache = make(counting, on_conflict="overwrite")
    await cache.get("k")
    await cache.set("k", b"mine")
    await counting.inner.set("k", b"theirs")
    result = await cache.flush()
    assert result.status_of("k") is FlushStatus.OVERWRITTEN
    assert result.outcomes[0].remote.value == b"theirs"  # type: ignore[union-attr]
    assert (await counting.inner.get("k")).value == b"mine"  # type: ignore[union-attr]


async def test_conflict_policy_merge_callable(counting: Any) -> None:
    seen: list[tuple[str, bytes | None, RawEntry | None]] = []

    async def merge(key: str, local: bytes | None, remote: RawEntry | None) -> bytes | None:
        seen.append((key, local, remote))
        assert local is not None
        assert remote is not None
        return remote.value + b"+" + local

    await counting.inner.set("k", b"v0")
    cache = make(counting, on_conflict=merge)
    await cache.get("k")
    await cache.set("k", b"mine")
    await counting.inner.set("k", b"theirs")
    result = await cache.flush()
    assert result.status_of("k") is FlushStatus.MERGED
    assert [(k, loc) for k, loc, _ in seen] == [("k", b"mine")]
    stored = await counting.inner.get("k")
    assert stored is not None
    assert stored.value == b"theirs+mine"
    cached = await cache.get("k")
    assert cached is not None
    assert cached.value == b"theirs+mine"
    assert cache.dirty_count == 0


async def test_a_key_seen_absent_is_created_only_if_still_absent(counting: Any) -> None:
    cache = make(counting)
    assert await cache.get("k") is None
    await cache.set("k", b"mine")
    await counting.inner.set("k", b"someone created it")
    with pytest.raises(FlushConflictError):
        await cache.flush()
    assert (await counting.inner.get("k")).value == b"someone created it"  # type: ignore[union-attr]


async def test_a_key_never_seen_is_written_unconditionally(counting: Any) -> None:
    cache = make(counting)
    await cache.set("k", b"mine")  # no read first: the cache knows nothing of "k"
    await counting.inner.set("k", b"theirs")
    result = await cache.flush()
    assert result.status_of("k") is FlushStatus.WRITTEN
    assert (await counting.inner.get("k")).value == b"mine"  # type: ignore[union-attr]


async def test_deletes_are_tombstones_until_flushed(counting: Any) -> None:
    await counting.inner.set("k", b"v")
    await counting.inner.set("keep", b"v")
    cache = make(counting)
    assert await cache.delete("k") is True
    assert await cache.get("k") is None
    assert not await cache.exists("k")
    assert [k async for k in cache.keys()] == ["keep"]
    assert await counting.inner.get("k") is not None  # not sent yet
    result = await cache.flush()
    assert result.status_of("k") is FlushStatus.WRITTEN
    assert await counting.inner.get("k") is None


async def test_a_delete_of_a_key_changed_remotely_is_a_conflict(counting: Any) -> None:
    await counting.inner.set("k", b"v0")
    cache = make(counting)
    await cache.delete("k")
    await counting.inner.set("k", b"v1")
    with pytest.raises(FlushConflictError):
        await cache.flush()
    assert (await counting.inner.get("k")).value == b"v1"  # type: ignore[union-attr]


async def test_create_then_delete_before_flush_sends_nothing(counting: Any) -> None:
    cache = make(counting)
    await cache.set("k", b"v", if_absent=True)
    assert await cache.delete("k") is True
    assert len(await cache.flush()) == 0
    assert counting.writes == 0


async def test_keys_get_many_and_exists_see_unflushed_writes(counting: Any) -> None:
    await counting.inner.set("p/remote", b"r")
    await counting.inner.set("p/doomed", b"d")
    cache = make(counting)
    await cache.set("p/local", b"l")
    await cache.set("p/remote", b"changed")
    await cache.delete("p/doomed")
    assert sorted([k async for k in cache.keys("p/")]) == ["p/local", "p/remote"]
    got = await cache.get_many(["p/local", "p/remote", "p/doomed", "p/none"])
    assert [e.value if e else None for e in got] == [b"l", b"changed", None, None]
    assert await cache.exists("p/local")
    assert not await cache.exists("p/doomed")


async def test_etags_given_by_the_cache_stay_valid_after_the_flush(counting: Any) -> None:
    cache = make(counting)
    etag = await cache.set("k", b"1")
    await cache.flush()
    entry = await cache.get("k")
    assert entry is not None
    assert entry.etag == etag
    await cache.set("k", b"2", if_match=etag)
    await cache.flush()
    assert (await counting.inner.get("k")).value == b"2"  # type: ignore[union-attr]


async def test_a_write_during_a_flush_waits_for_it_and_stays_dirty() -> None:
    gated = GatedDriver(MemoryDriver())
    cache = make(gated)
    await cache.set("k", b"1")
    flushing = asyncio.create_task(cache.flush())
    upload = await gated.next_call("set", key="k")
    writing = asyncio.create_task(cache.set("k", b"2"))  # while "1" is on its way
    await _turns()
    assert not writing.done()  # one state machine per key: it waits for the upload
    upload.release()
    assert (await flushing).written == ["k"]
    await writing
    assert cache.dirty_count == 1
    gated.gating = False
    await cache.flush()
    assert (await gated.inner.get("k")).value == b"2"  # type: ignore[union-attr]


async def test_an_expired_local_write_flushes_as_a_delete() -> None:
    now = [1000.0]
    inner = MemoryDriver(clock=lambda: now[0])
    await inner.set("k", b"old")
    cache = make(inner)
    await cache.get("k")
    await cache.set("k", b"short-lived", expires_at=1010.0)
    now[0] = 1020.0
    assert await cache.get("k") is None
    await cache.flush()
    assert "k" not in inner._data  # the old value must not come back


async def test_backend_failure_keeps_entries_dirty_and_reports_them(counting: Any) -> None:
    cache = make(counting)
    await cache.set("k", b"v")
    counting.fail_next = BackendUnavailableError("down", store="test")
    with pytest.raises(FlushFailedError) as info:
        await cache.flush()
    assert isinstance(info.value.__cause__, BackendUnavailableError)
    assert info.value.result.status_of("k") is FlushStatus.ERROR
    assert info.value.result.errors[0].local == b"v"
    assert cache.dirty_count == 1
    assert (await cache.flush()).written == ["k"]


async def test_memory_is_bounded_and_eviction_flushes(counting: Any) -> None:
    # asyncblobdict regression: memory grew without bound.
    cache = make(counting, max_items=50, max_bytes=4096)
    for i in range(2000):
        await cache.set(f"k{i}", b"x" * 30)
        assert len(cache._table) <= 50
        assert cache._table.total_bytes <= 4096
    assert counting.writes >= 1900  # evicted entries reached the backend
    await cache.flush()
    assert len(counting.inner._data) == 2000
    for i in range(2000):
        got = await cache.get(f"k{i}")
        assert got is not None
        assert got.value == b"x" * 30
        assert len(cache._table) <= 50


async def test_bytes_bound_holds_for_reads_too(counting: Any) -> None:
    for i in range(100):
        await counting.inner.set(f"k{i}", b"y" * 100)
    cache = make(counting, max_bytes=1000)
    for i in range(100):
        await cache.get(f"k{i}")
        assert cache._table.total_bytes <= 1000
    assert cache.stats.evictions > 80


async def test_a_value_larger_than_the_cache_goes_straight_to_the_backend(counting: Any) -> None:
    cache = make(counting, max_bytes=100)
    await cache.set("big", b"z" * 1000)
    assert counting.writes == 1
    assert (await cache.get("big")).value == b"z" * 1000  # type: ignore[union-attr]
    assert "big" not in cache._table


async def test_aclose_flushes_and_closes(counting: Any) -> None:
    cache = CachedDriver(counting, mode="write_back")
    await cache.set("k", b"v")
    await cache.aclose()
    await cache.aclose()
    assert (await MemoryDriver(data=counting.inner._data).get("k")).value == b"v"  # type: ignore[union-attr]
    assert counting.calls["aclose"] == 1
    with pytest.raises(StoreClosedError):
        await cache.get("k")


async def test_aclose_keeps_a_shared_inner_open(counting: Any) -> None:
    cache = make(counting)
    await cache.set("k", b"v")
    await cache.aclose()
    assert "aclose" not in counting.calls
    assert (await counting.get("k")).value == b"v"  # type: ignore[union-attr]


async def test_aclose_reports_a_conflict_and_still_closes(counting: Any) -> None:
    await counting.inner.set("k", b"v0")
    cache = make(counting)
    await cache.get("k")
    await cache.set("k", b"mine")
    await counting.inner.set("k", b"theirs")
    with pytest.raises(FlushConflictError):
        await cache.aclose()
    with pytest.raises(StoreClosedError):
        await cache.get("k")


async def test_timer_flushes_in_the_background(counting: Any) -> None:
    cache = make(counting, flush_interval=0.01)
    await cache.set("k", b"v")
    for _ in range(500):
        if counting.writes:
            break
        await asyncio.sleep(0.01)
    assert (await counting.inner.get("k")).value == b"v"  # type: ignore[union-attr]
    await cache.aclose()


async def test_conflicts_found_by_eviction_are_reported_by_the_next_flush(counting: Any) -> None:
    await counting.inner.set("k", b"v0")
    cache = make(counting, max_items=2)
    await cache.get("k")
    await cache.set("k", b"mine")
    await counting.inner.set("k", b"theirs")
    await cache.set("a", b"1")
    await cache.set("b", b"2")  # evicts "k": its flush conflicts
    with pytest.raises(FlushConflictError) as info:
        await cache.flush()
    assert info.value.result.status_of("k") is FlushStatus.CONFLICT
    assert info.value.result.conflicts[0].local == b"mine"


async def test_nothing_is_printed(counting: Any, capsys: pytest.CaptureFixture[str]) -> None:
    await counting.inner.set("k", b"v0")
    cache = make(counting, on_conflict="skip")
    await cache.get("k")
    await cache.set("k", b"mine")
    await counting.inner.set("k", b"theirs")
    await cache.flush()
    assert capsys.readouterr() == ("", "")


async def test_store_update_over_write_back_loses_nothing(counting: Any) -> None:
    store: Store[int] = Store(make(counting))
    await asyncio.gather(*(store.update("n", lambda n: n + 1, default=0) for _ in range(100)))
    assert await store.get("n") == 100
    await store.aclose()
    assert (await counting.inner.get("n")).value == b"100"  # type: ignore[union-attr]


async def test_dropping_a_cache_with_dirty_entries_warns(counting: Any) -> None:
    cache = make(counting)
    await cache.set("k", b"v")
    with pytest.warns(ResourceWarning, match="unflushed"):
        cache.__del__()
    await cache.aclose()


async def test_a_merge_that_keeps_losing_the_race_is_reported_as_an_error(counting: Any) -> None:
    def merge(key: str, local: bytes | None, remote: RawEntry | None) -> bytes:
        # Someone writes between every merge read and write: the merge can never land.
        counting.inner._data[key] = RawEntry(b"meddled", f"m{id(remote)}-{len(seen)}")
        seen.append(key)
        return b"merged"

    seen: list[str] = []
    await counting.inner.set("k", b"v0")
    cache = make(counting, on_conflict=merge)
    await cache.get("k")
    await cache.set("k", b"mine")
    await counting.inner.set("k", b"theirs")
    with pytest.raises(FlushFailedError) as info:
        await cache.flush()
    assert info.value.result.status_of("k") is FlushStatus.ERROR
    assert len(seen) == 5
    assert cache.dirty_count == 1  # kept for the next flush


@pytest.mark.parametrize("max_items", [2, 1000])
async def test_concurrent_updates_with_evictions_and_timer_lose_nothing(
    counting: Any, max_items: int
) -> None:
    # Eviction flushes, timer flushes and local writes race on the same keys.
    cache = make(counting, max_items=max_items, flush_interval=0.001)
    store: Store[int] = Store(cache)
    keys = [f"n{i}" for i in range(5)]

    async def worker(w: int) -> None:
        for step in range(40):
            await store.update(keys[(w + step) % 5], lambda n: n + 1, default=0)
            if step % 7 == 0:
                await asyncio.sleep(0)

    await asyncio.gather(*(worker(w) for w in range(10)))
    await store.aclose()
    totals = {k: int((await counting.inner.get(k)).value) for k in keys}  # type: ignore[union-attr]
    assert totals == dict.fromkeys(keys, 80)


# -- issue 10, items 1-4: defects of the first write-back, as controlled interleavings --------


async def test_issue10_1_a_delete_during_the_flush_of_an_if_absent_key_is_not_lost() -> None:
    backend = MemoryDriver()
    for name in ("x", "y"):
        await backend.set(name, b"other")
    gated = GatedDriver(backend, methods=["set", "delete"])
    cache = make(gated, max_items=2)
    await cache.set("k", b"v", if_absent=True)
    flushing = asyncio.create_task(cache.flush())
    upload = await gated.next_call("set", key="k")  # the if_absent upload, in flight
    deleting = asyncio.create_task(cache.delete("k"))
    await _turns()
    await cache.get("x")  # reads that would push a "clean" k out of the two-entry cache
    await cache.get("y")
    upload.release()
    assert (await flushing).written == ["k"]
    assert await deleting is True
    assert await cache.get("k") is None
    flushing = asyncio.create_task(cache.flush())
    removal = await gated.next_call("delete", key="k")  # the delete does go out
    removal.release()
    assert (await flushing).written == ["k"]
    assert await gated.inner.get("k") is None  # the value does not come back
    assert await cache.get("k") is None
    await cache.aclose()


class _RecordsConditions(MemoryDriver):
    """A MemoryDriver that remembers every etag it is asked to match."""

    def __init__(self) -> None:
        super().__init__()
        self.if_matches: list[str] = []

    async def set(self, key: str, value: bytes, **kwargs: Any) -> str:
        if kwargs.get("if_match") is not None:
            self.if_matches.append(kwargs["if_match"])
        return await super().set(key, value, **kwargs)

    async def delete(self, key: str, *, if_match: str | None = None) -> bool:
        if if_match is not None:
            self.if_matches.append(if_match)
        return await super().delete(key, if_match=if_match)


async def test_issue10_2_an_eviction_during_a_revalidation_never_sends_a_cache_etag() -> None:
    backend = _RecordsConditions()
    for name in ("x", "y"):
        await backend.set(name, b"filler")
    gated = GatedDriver(backend, methods=["get_if_changed"])
    cache = make(gated, max_items=2, max_staleness=0)
    await cache.set("k", b"mine")
    await cache.flush()  # clean now: caller etag kvc-..., backend etag remembered apart
    deleting = asyncio.create_task(cache.delete("k"))  # revalidates first (staleness 0)
    revalidation = await gated.next_call("get_if_changed", key="k")
    gated.gating = False
    await cache.get("x")  # reads that push "k" out of a two-entry cache, if they can
    await cache.get("y")
    revalidation.release()  # answers NOT_MODIFIED
    assert await deleting is True
    assert (await cache.flush()).written == ["k"]
    assert await backend.get("k") is None
    assert backend.if_matches
    assert not [etag for etag in backend.if_matches if etag.startswith("kvc-")]


async def test_a_cache_etag_is_still_accepted_after_flush_and_eviction(counting: Any) -> None:
    cache = make(counting, max_items=1)
    etag = await cache.set("k", b"1")
    await cache.set("other", b"pushes k out")  # flushes and evicts "k"
    assert "k" not in cache._table
    await cache.set("k", b"2", if_match=etag)  # same state: the content etag still names it
    await cache.flush()
    assert (await counting.inner.get("k")).value == b"2"  # type: ignore[union-attr]
    with pytest.raises(PreconditionFailedError):
        await cache.set("k", b"3", if_match=etag)


class _ChecksBounds(InterceptingDriver):
    """Asserts the cache's bounds at every backend call, i.e. at every interleaving point."""

    cache: CachedDriver | None = None
    checks = 0

    async def around(self, method: str, keys: tuple[str, ...], call: Any) -> Any:
        if self.cache is not None:
            table = self.cache._table
            assert len(table) <= table.max_items
            assert table.total_bytes <= table.max_bytes
            self.checks += 1
        return await call()


async def test_issue10_4_bounds_hold_under_1000_concurrent_if_absent_writes() -> None:
    inner = MemoryDriver()
    checking = _ChecksBounds(SeededDelayDriver(inner, seed=4))
    cache = make(checking, max_items=10, max_bytes=10_000)
    checking.cache = cache
    value = b"v" * 490
    await asyncio.gather(*(cache.set(f"k{i}", value, if_absent=True) for i in range(1000)))
    assert len(cache._table) <= 10
    assert cache._table.total_bytes <= 10_000
    assert cache._table.reserved_items == 0
    assert checking.checks > 1000
    await cache.flush()
    assert len(inner._data) == 1000
    assert {e.value for e in inner._data.values()} == {value}


async def test_when_every_entry_is_busy_a_writer_waits_for_room() -> None:
    gated = GatedDriver(MemoryDriver(), methods=["set"])
    cache = make(gated, max_items=1)
    await cache.set("a", b"1")
    flushing = asyncio.create_task(cache.flush())
    upload = await gated.next_call("set", key="a")  # "a" is busy: it cannot be evicted
    writing = asyncio.create_task(cache.set("b", b"2"))
    await _turns()
    assert not writing.done()  # backpressure: no room, nothing idle to flush
    assert len(cache._table) == 1
    upload.release()
    await flushing
    await writing
    assert len(cache._table) == 1
    assert cache._table.peek("b") is not None
    gated.gating = False
    await cache.aclose()


async def test_aclose_that_cannot_flush_says_the_values_are_only_in_the_error(
    counting: Any,
) -> None:
    cache = make(counting)
    await cache.set("k", b"v")
    counting.fail_next = BackendUnavailableError("down", store="test")
    with pytest.raises(FlushFailedError) as info:
        await cache.aclose()
    assert info.value.closed
    assert "stay" not in str(info.value)
    assert "only in this error's .result" in str(info.value)
    assert info.value.result.errors[0].local == b"v"
    with pytest.raises(StoreClosedError):
        await cache.get("k")


async def test_flush_failed_error_from_flush_says_the_keys_stay_dirty(counting: Any) -> None:
    cache = make(counting)
    await cache.set("k", b"v")
    counting.fail_next = BackendUnavailableError("down", store="test")
    with pytest.raises(FlushFailedError) as info:
        await cache.flush()
    assert not info.value.closed
    assert "stay dirty in the cache" in str(info.value)
    assert cache.dirty_count == 1
    await cache.aclose()


def test_capabilities_keep_the_inner_stream() -> None:
    assert Capability.STREAM not in make(MemoryDriver()).capabilities


class _LosesOneReply(InterceptingDriver):
    """The write reaches the backend, but its caller hears OutcomeUnknownError (a reply
    lost with the connection): fault injection around a real MemoryDriver."""

    armed = True

    async def around(self, method: str, keys: tuple[str, ...], call: Any) -> Any:
        result = await call()
        if self.armed and method in ("set", "delete"):
            self.armed = False
            raise OutcomeUnknownError("reply lost", key=keys[0])
        return result


@pytest.mark.parametrize("conditional", [False, True])
async def test_a_flush_whose_outcome_was_unknown_is_not_sent_twice(conditional: bool) -> None:
    inner = _RecordsConditions()
    lossy = _LosesOneReply(inner)
    cache = make(lossy)
    if conditional:
        assert await cache.get("k") is None  # seen absent: the flush is an if_absent create
    await cache.set("k", b"v")
    with pytest.raises(FlushFailedError):
        await cache.flush()
    writes = len(inner._data)
    assert (await cache.flush()).written == ["k"]
    assert cache.stats.confirmed == 1  # found landed, not sent again
    assert len(inner._data) == writes == 1
    await cache.set("k", b"w")  # based on the state that landed: no spurious conflict
    assert (await cache.flush()).written == ["k"]
    assert (await inner.get("k")).value == b"w"  # type: ignore[union-attr]


async def test_a_delete_after_an_unknown_create_still_removes_the_key() -> None:
    inner = MemoryDriver()
    cache = make(_LosesOneReply(inner))
    await cache.set("k", b"v", if_absent=True)
    with pytest.raises(FlushFailedError):
        await cache.flush()  # the create landed; the cache cannot know
    assert await cache.delete("k") is True
    await cache.flush()
    assert await inner.get("k") is None  # a deleted key never comes back


async def test_a_flush_cancelled_mid_write_is_looked_up_not_lost() -> None:
    inner = MemoryDriver()
    gated = GatedDriver(inner, methods=["set"])
    cache = make(gated)
    await cache.set("k", b"v")
    flushing = asyncio.create_task(cache.flush())
    await gated.next_call("set", key="k")  # the upload is held at the gate
    flushing.cancel()  # e.g. asyncio.timeout around flush(): the write is in doubt
    with pytest.raises(asyncio.CancelledError):
        await flushing
    assert cache.dirty_count == 1
    gated.gating = False
    assert (await cache.flush()).written == ["k"]
    assert (await inner.get("k")).value == b"v"  # type: ignore[union-attr]
    await cache.aclose()


async def test_a_write_into_a_full_cache_evicts_only_what_it_needs(counting: Any) -> None:
    for i in range(10):
        await counting.inner.set(f"r{i}", b"x" * 10)
    cache = make(counting, max_items=10)
    for i in range(10):
        await cache.get(f"r{i}")
    await cache.set("new", b"y")
    assert cache.stats.evictions == 1
    assert len(cache._table) == 10
    await cache.set("r9", b"rewritten")  # its own entry's room is reused: no eviction
    assert cache.stats.evictions == 1
    await cache.aclose()
