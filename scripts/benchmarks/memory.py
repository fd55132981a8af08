"""Memory: Store over MemoryDriver next to a plain dict of ``json.dumps`` bytes (the floor).

The floor does the least any JSON key-value store must do: encode on set, decode on get.
Every contender runs inside the same async harness (one coroutine call per operation),
so the ratio shows what the Store adds: key checks, namespacing, etags, expiry, codecs.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from kv_core import MemoryDriver, Store

from benchmarks.common import Row, add_ratios, make_value, measure

BACKEND = "memory"


async def _contender(  # noqa: PLR0917 - reads as a table row at each call
    rows: list[Row],
    name: str,
    put: Any,
    get: Any,
    n: int,
    repeats: int,
    *,
    raw: bool = False,
    note: str = "",
) -> None:
    value = make_value()
    keys = [f"bench/{i}" for i in range(n)]

    async def do_set(i: int) -> None:
        await put(keys[i], value)

    async def do_get(i: int) -> None:
        got = await get(keys[i])
        if got != value:
            raise AssertionError(f"{name} returned wrong data for {keys[i]}")

    ops, p50, p99 = await measure(do_set, n, repeats=repeats)
    rows.append(Row(BACKEND, "set 1 KiB JSON", name, ops, p50, p99, raw=raw, note=note))
    ops, p50, p99 = await measure(do_get, n, repeats=repeats)
    rows.append(Row(BACKEND, "get 1 KiB JSON", name, ops, p50, p99, raw=raw, note=note))


async def run(quick: bool = False) -> list[Row]:
    """Measure every memory contender; ratios are against the dict floor."""
    n = 2_000 if quick else 20_000
    repeats = 3 if quick else 7
    rows: list[Row] = []

    floor: dict[str, bytes] = {}

    async def floor_put(key: str, value: Any) -> None:
        floor[key] = json.dumps(value).encode()

    async def floor_get(key: str) -> Any:
        return json.loads(floor[key])

    await _contender(rows, "dict + json (floor)", floor_put, floor_get, n, repeats, raw=True)

    store: Store[Any] = Store(MemoryDriver())
    async with store:
        await _contender(rows, "kv Store(MemoryDriver)", store.set, store.get, n, repeats)

    try:
        from key_value.aio.stores.memory import MemoryStore
    except ImportError:
        rows.append(
            Row(BACKEND, "set 1 KiB JSON", "py-key-value-aio", 0, 0, 0, note="not installed")
        )
    else:
        kvstore = MemoryStore()
        await _contender(rows, "py-key-value-aio MemoryStore", kvstore.put, kvstore.get, n, repeats)

    try:
        from aiocache import SimpleMemoryCache
        from aiocache.serializers import JsonSerializer
    except ImportError:
        rows.append(Row(BACKEND, "set 1 KiB JSON", "aiocache", 0, 0, 0, note="not installed"))
    else:
        cache = SimpleMemoryCache(serializer=JsonSerializer())
        await _contender(rows, "aiocache SimpleMemoryCache", cache.set, cache.get, n, repeats)

    return add_ratios(rows)


if __name__ == "__main__":
    from benchmarks.report import print_rows

    print_rows(asyncio.run(run()))
