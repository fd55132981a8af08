"""Memory: Store over MemoryDriver next to a plain dict of ``json.dumps`` bytes (the floor).

The floor does the least any JSON key-value store must do: encode on set, decode on get.
Every contender runs inside the same async harness (one coroutine call per operation), and
contenders take turns in every repetition, so the ratio shows what each adds on top.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from kv_core import MemoryDriver, Store

from benchmarks.common import Row, add_ratios, make_value, measure_interleaved

BACKEND = "memory"
FLOOR = "dict + json.dumps bytes (floor)"

Put = Callable[[str, Any], Awaitable[object]]
Get = Callable[[str], Awaitable[Any]]


def _contenders() -> dict[str, tuple[Put, Get]]:
    floor: dict[str, bytes] = {}

    async def floor_put(key: str, value: Any) -> None:
        floor[key] = json.dumps(value).encode()

    async def floor_get(key: str) -> Any:
        return json.loads(floor[key])

    store: Store[Any] = Store(MemoryDriver())
    found: dict[str, tuple[Put, Get]] = {
        FLOOR: (floor_put, floor_get),
        "kv Store(MemoryDriver)": (store.set, store.get),
    }
    try:
        from key_value.aio.stores.memory import MemoryStore
    except ImportError:
        pass
    else:
        peer = MemoryStore()
        found["py-key-value-aio MemoryStore"] = (peer.put, peer.get)
    try:
        from aiocache import SimpleMemoryCache
        from aiocache.serializers import JsonSerializer
    except ImportError:
        pass
    else:
        cache = SimpleMemoryCache(serializer=JsonSerializer())
        found["aiocache SimpleMemoryCache (JSON)"] = (cache.set, cache.get)
    return found


async def run(quick: bool = False) -> list[Row]:
    """Set then get of a 1 KiB JSON dict; ratios are against the dict floor."""
    n = 2_000 if quick else 10_000
    repeats = 3 if quick else 9
    value = make_value()
    keys = [f"bench/{i}" for i in range(n)]
    contenders = _contenders()

    def setter(put: Put) -> Callable[[int], Awaitable[object]]:
        async def op(i: int) -> None:
            await put(keys[i], value)

        return op

    def getter(name: str, get: Get) -> Callable[[int], Awaitable[object]]:
        async def op(i: int) -> None:
            if await get(keys[i]) != value:
                raise AssertionError(f"{name} returned wrong data for {keys[i]}")

        return op

    rows: list[Row] = []
    sets = await measure_interleaved(
        {name: setter(put) for name, (put, _) in contenders.items()}, n, repeats=repeats
    )
    gets = await measure_interleaved(
        {name: getter(name, get) for name, (_, get) in contenders.items()}, n, repeats=repeats
    )
    for workload, results in (("set 1 KiB JSON", sets), ("get 1 KiB JSON", gets)):
        for name, (ops, p50, p99) in results.items():
            rows.append(Row(BACKEND, workload, name, ops, p50, p99, raw=name == FLOOR))
    return add_ratios(rows)


if __name__ == "__main__":
    from benchmarks.report import print_rows

    print_rows(asyncio.run(run()))
