"""kv_core.sync beyond the conformance cases: URLs, threads, loops, lifecycle."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from kv_core import MemoryDriver, StoreClosedError
from kv_core.sync import SyncStore, open_store
from kv_core.testing import MemoryHarness, SyncConformance


class TestSyncOverMemory(SyncConformance):
    sync_increments = 200  # the figure: 8 threads × 200 update() calls, exact

    @pytest.fixture
    def kv_harness(self) -> MemoryHarness:
        return MemoryHarness()


def test_open_store_by_url_and_use_as_a_context_manager() -> None:
    with open_store("memory://") as store:
        store.set("a", [1, 2])
        assert store.get("a") == [1, 2]
        assert list(store.keys()) == ["a"]
        assert repr(store).startswith("SyncStore(")
    assert store.closed
    with pytest.raises((StoreClosedError, RuntimeError)):
        store.get("a")


def test_a_bad_url_fails_at_open_and_leaves_no_thread_behind() -> None:
    before = threading.active_count()
    with pytest.raises(ValueError):
        open_store("nonsense")
    assert threading.active_count() == before


def test_the_loop_thread_stops_on_close() -> None:
    before = {t.ident for t in threading.enumerate()}
    store: SyncStore[Any] = SyncStore(MemoryDriver())
    started = [t for t in threading.enumerate() if t.ident not in before]
    assert [t.name for t in started] == ["kv-sync-loop"]
    store.close()
    assert not started[0].is_alive()


def test_an_async_update_function_runs_on_the_private_loop() -> None:
    async def bump(n: int) -> int:
        await asyncio.sleep(0)
        return n + 1

    with SyncStore(MemoryDriver()) as store:
        assert store.update("n", bump, default=0) == 1


def test_calling_from_inside_an_update_function_is_refused_not_deadlocked() -> None:
    with SyncStore(MemoryDriver()) as store:

        def nested(n: int) -> int:
            store.get("other", None)  # runs on the loop thread: would wait for itself
            return n

        with pytest.raises(RuntimeError, match="async"):
            store.update("n", nested, default=0)


def test_iterators_stopped_early_release_the_listing() -> None:
    with SyncStore(MemoryDriver()) as store:
        store.set_many({f"k{i}": i for i in range(10)})
        it = store.keys()
        assert next(it).startswith("k")
        it.close()  # runs the async generator's aclose() on the loop
        assert len(list(store.keys())) == 10
