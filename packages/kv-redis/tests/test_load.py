"""Load (issue 12): 10,000 concurrent tasks on one Redis Store, memory flat.

Prints ``FAULT kv-redis load: ...`` (run with ``-s``); packages/kv-redis/README.md
("Faults") records the figure. The work is a fixed number of operations, not a fixed
time, and nothing is asserted about speed: ops/s is printed for the record only.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
from typing import Any

import psutil
import pytest
from kv_core import Store
from kv_redis import RedisDriver

# Processes, servers and file systems, not Python: scripts/test runs these on the default
# interpreter only (pyproject: the "system" marker).
pytestmark = pytest.mark.system

TASKS = 10_000
OPS = 10  # per task and round: 5 x (set, then get of the same key)
ROUNDS = 3  # one warm-up, then two measured rounds


class Round:
    """One round: every task sets its own key and reads it back, OPS operations each."""

    def __init__(self, store: Store[Any], number: int) -> None:
        self.store = store
        self.number = number
        self.errors: dict[str, int] = {}
        self.wrong = 0

    async def _task(self, t: int) -> None:
        key = f"t/{t}"
        for i in range(OPS // 2):
            value = [t, self.number, i]
            try:
                await self.store.set(key, value)
                got = await self.store.get(key)
            except Exception as exc:
                name = type(exc).__name__
                self.errors[name] = self.errors.get(name, 0) + 1
                continue
            # Each key has one writer, so a read right after its own write sees it.
            if got != value:
                self.wrong += 1

    async def run(self) -> float:
        """Run every task to the end; return the seconds it took."""
        start = time.perf_counter()
        await asyncio.gather(*(self._task(t) for t in range(TASKS)))
        return time.perf_counter() - start


def footprint() -> tuple[int, int]:
    """(RSS bytes, live Python memory blocks) after a full collection."""
    gc.collect()
    return psutil.Process().memory_info().rss, sys.getallocatedblocks()


async def test_ten_thousand_tasks_on_one_store(redis_url: str, prefix: str) -> None:
    rounds: list[Round] = []
    seconds: list[float] = []
    async with Store(RedisDriver.from_url(redis_url, prefix=prefix)) as store:
        try:
            for number in range(ROUNDS):
                if number == 1:
                    # After the warm-up: connections open, scripts loaded, caches and the
                    # allocator's arenas at their working size.
                    rss_before, blocks_before = footprint()
                rounds.append(Round(store, number))
                seconds.append(await rounds[-1].run())
            rss_after, blocks_after = footprint()
        finally:
            await store.clear()
    ops = TASKS * OPS * (ROUNDS - 1)
    ops_per_s = ops / sum(seconds[1:])
    errors: dict[str, int] = {}
    for r in rounds:
        for name, n in r.errors.items():
            errors[name] = errors.get(name, 0) + n
    wrong = sum(r.wrong for r in rounds)
    rss_growth = rss_after - rss_before
    block_growth = blocks_after - blocks_before
    print(
        f"\nFAULT kv-redis load: tasks={TASKS} ops={ops} (+{TASKS * OPS} warm-up) "
        f"ops_per_s={ops_per_s:,.0f} errors={errors} wrong_reads={wrong} "
        f"rss_mib={rss_before / 2**20:.1f}->{rss_after / 2**20:.1f} "
        f"python_blocks={blocks_before}->{blocks_after}"
    )
    assert errors == {}
    assert wrong == 0
    # Flat: 200,000 more operations after the warm-up leave no Python object behind (a
    # leak of one object per operation would add 200,000 blocks; measured: about 10).
    assert block_growth < 20_000
    # RSS also moves with the C allocator's fragmentation: measured +5 to +10 MiB over
    # these two rounds, levelling off near +14 MiB after seven. A generous bound that a
    # leak of a few hundred bytes per operation would still cross:
    assert rss_growth < 32 * 2**20
