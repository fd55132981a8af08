"""Cross-process conformance: update() keeps every increment across processes."""

from __future__ import annotations

import asyncio
import multiprocessing
import uuid
from typing import Any

import pytest

from .._errors import BackendUnavailableError, KVError
from .._store import Store
from ._harness import Harness

__all__ = ["CrossProcessConformance", "UnreachableConformance", "cross_process_increments"]


async def _increment(harness: Harness, key: str, tasks: int, increments: int) -> None:
    store: Store[Any] = Store(harness.make_driver())
    async with store:

        async def one_task() -> None:
            for _ in range(increments):
                await store.update(key, lambda n: n + 1, default=0, attempts=1000)

        await asyncio.gather(*(one_task() for _ in range(tasks)))


def _worker(harness: Harness, key: str, tasks: int, increments: int) -> None:
    asyncio.run(_increment(harness, key, tasks, increments))


def cross_process_increments(
    harness: Harness, *, processes: int = 2, tasks: int = 4, increments: int = 125
) -> int:
    """Run ``processes × tasks × increments`` update() increments of one key; return the total.

    Processes are spawned (not forked) so each builds its own client from the pickled
    harness, exactly as separate programs would.
    """
    key = f"xproc/{uuid.uuid4().hex}"
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_worker, args=(harness, key, tasks, increments))
        for _ in range(processes)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=600)
    codes = [p.exitcode for p in procs]
    if codes != [0] * processes:
        raise AssertionError(f"worker processes failed with exit codes {codes}")

    async def read() -> int:
        store: Store[Any] = Store(harness.make_driver())
        async with store:
            total: int = await store.get(key)
            await store.delete(key)
            return total

    return asyncio.run(read())


class CrossProcessConformance:
    """2 processes × 4 tasks × 125 update() increments of one key → exactly 1,000.

    Needs a picklable ``kv_harness`` fixture (e.g. :class:`~kv_core.testing.UrlHarness`).
    """

    def test_update_loses_nothing_across_processes(self, kv_harness: Harness) -> None:
        assert cross_process_increments(kv_harness) == 1000


class UnreachableConformance:
    """A backend that cannot be reached fails with BackendUnavailableError."""

    async def test_unreachable_backend_raises_backend_unavailable(
        self, kv_harness: Harness
    ) -> None:
        driver = kv_harness.make_unreachable_driver()
        assert driver is not None, "the harness must give an unreachable driver"
        store: Store[Any] = Store(driver)
        async with store:
            for call in (
                lambda: store.get("k"),
                lambda: store.set("k", 1),
                lambda: store.delete("k"),
                lambda: store.get_many(["k"]),
            ):
                with pytest.raises(BackendUnavailableError) as info:
                    await call()
                assert isinstance(info.value, KVError)
                assert info.value.__cause__ is not None
            with pytest.raises(BackendUnavailableError):
                [k async for k in store.keys()]
