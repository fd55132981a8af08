"""kv-redis benchmark: Store over RedisDriver next to raw redis-py, in one run.

Starts its own ``redis-server`` on a free loopback port (no persistence). Every
contender does the same work: JSON-encode the 1 KiB value on write, decode it on read,
and every read is checked against what was written. The raw rows are what a careful
redis-py user writes by hand:

- set / get: ``await r.set(k, json.dumps(v))`` / ``json.loads(await r.get(k))``;
- set_many / get_many of 100 keys: one ``MSET`` / one ``MGET`` (also with pre-encoded
  bytes, to show the driver without the JSON codec);
- 64 concurrent mixed tasks (3 gets : 1 set): the same calls from 64 tasks over redis-py's
  connection pool (one connection per task, one command per round trip).

Targets (issue 4): single ops and batches >= 0.95x raw, 64-concurrent >= 2x raw.

Run: ``cd scripts && uv run python -m benchmarks.redis [--quick]``.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from kv_core import BYTES, Store
from kv_core.testing import start_redis
from kv_redis import RedisDriver
from redis.asyncio import Redis

from benchmarks.common import Row, add_ratios, make_value, measure, measure_concurrent

__all__ = ["run"]

BACKEND = "redis"
TASKS = 64
BATCH = 100


async def _pair(
    rows: list[Row],
    workload: str,
    raw_op: Callable[[int], Awaitable[object]],
    store_op: Callable[[int], Awaitable[object]],
    n: int,
    *,
    concurrent: bool = False,
    ops_per_call: int = 1,
    rounds: int = 5,
) -> None:
    """Measure raw and Store alternately, ``rounds`` times, and keep the medians.

    Alternating keeps both contenders exposed to the same background load (the machine
    is shared), which a block of raw runs followed by a block of Store runs would not.
    """
    samples: dict[bool, list[tuple[float, float, float]]] = {True: [], False: []}
    for _ in range(rounds):
        for is_raw, op in ((True, raw_op), (False, store_op)):
            if concurrent:
                sample = await measure_concurrent(op, n, tasks=TASKS, repeats=1)
            else:
                sample = await measure(op, n, repeats=1, ops_per_call=ops_per_call)
            samples[is_raw].append(sample)
    for is_raw in (True, False):
        rate, p50, p99 = (statistics.median(x) for x in zip(*samples[is_raw], strict=True))
        who = "raw redis-py" if is_raw else "Store(RedisDriver)"
        rows.append(Row(BACKEND, workload, who, rate, p50, p99, raw=is_raw))
        print(f"  {workload:<26} {who:<28} {rate:>9.0f} ops/s", file=sys.stderr)


async def _workloads(rows: list[Row], url: str, quick: bool) -> None:
    value = make_value()
    n = 300 if quick else 2000
    n_batch = 20 if quick else 100
    n_conc = 64 * (20 if quick else 80)
    raw = Redis.from_url(url)
    store: Store[Any] = Store(RedisDriver.from_url(url, prefix=""))
    keys = [f"bench/{i}" for i in range(max(n, BATCH))]
    try:
        # Sequential set, then get (raw first, then Store, so neither warms the other).
        async def raw_set(i: int) -> None:
            await raw.set(keys[i % len(keys)], json.dumps(value))

        async def store_set(i: int) -> None:
            await store.set(keys[i % len(keys)], value)

        async def raw_get(i: int) -> None:
            data = await raw.get(keys[i % len(keys)])
            assert data is not None
            assert json.loads(data) == value

        async def store_get(i: int) -> None:
            assert await store.get(keys[i % len(keys)]) == value

        await _pair(rows, "set 1KiB seq", raw_set, store_set, n)
        await _pair(rows, "get 1KiB seq", raw_get, store_get, n)

        batch_keys = keys[:BATCH]
        mapping = dict.fromkeys(batch_keys, value)

        async def raw_set_many(i: int) -> None:
            await raw.mset({k: json.dumps(v) for k, v in mapping.items()})

        async def store_set_many(i: int) -> None:
            await store.set_many(mapping)

        async def raw_get_many(i: int) -> None:
            got = [json.loads(d) for d in await raw.mget(batch_keys) if d is not None]
            assert got == [value] * BATCH

        async def store_get_many(i: int) -> None:
            assert await store.get_many(batch_keys) == mapping

        await _pair(rows, "set_many 100", raw_set_many, store_set_many, n_batch, ops_per_call=BATCH)
        await _pair(rows, "get_many 100", raw_get_many, store_get_many, n_batch, ops_per_call=BATCH)

        # The same batches with pre-encoded bytes (BYTES codec): the driver without the
        # JSON codec's cost, which dominates the rows above.
        data = json.dumps(value).encode()
        blob_map = dict.fromkeys(batch_keys, data)
        blobs = store.with_codec(BYTES)

        async def raw_set_many_b(i: int) -> None:
            await raw.mset(blob_map)

        async def store_set_many_b(i: int) -> None:
            await blobs.set_many(blob_map)

        async def raw_get_many_b(i: int) -> None:
            assert await raw.mget(batch_keys) == [data] * BATCH

        async def store_get_many_b(i: int) -> None:
            assert await blobs.get_many(batch_keys) == blob_map

        await _pair(
            rows, "set_many 100 bytes", raw_set_many_b, store_set_many_b, n_batch,
            ops_per_call=BATCH,
        )  # fmt: skip
        await _pair(
            rows, "get_many 100 bytes", raw_get_many_b, store_get_many_b, n_batch,
            ops_per_call=BATCH,
        )  # fmt: skip

        # 64 concurrent tasks, 3 gets : 1 set, over 1,000 keys.
        hot = keys[:1000] if len(keys) >= 1000 else keys

        async def raw_mixed(i: int) -> None:
            key = hot[i % len(hot)]
            if i % 4 == 0:
                await raw.set(key, json.dumps(value))
            else:
                data = await raw.get(key)
                assert data is not None
                assert json.loads(data) == value

        async def store_mixed(i: int) -> None:
            key = hot[i % len(hot)]
            if i % 4 == 0:
                await store.set(key, value)
            else:
                assert await store.get(key) == value

        await store.set_many(dict.fromkeys(hot, value))
        await _pair(rows, "mixed 3:1 get:set x64", raw_mixed, store_mixed, n_conc, concurrent=True)
    finally:
        await store.clear()
        await store.aclose()
        await raw.aclose()


async def run(quick: bool) -> list[Row]:
    """Start a server, run every workload for Store and raw redis-py, stop the server."""
    server = start_redis()
    rows: list[Row] = []
    try:
        await _workloads(rows, server.url, quick)
    finally:
        server.stop()
    return add_ratios(rows)


if __name__ == "__main__":
    result = asyncio.run(run("--quick" in sys.argv))
    print(f"{'workload':<26} {'contender':<22} {'ops/s':>10} {'p50 us':>8} {'p99 us':>8} ratio")
    for r in result:
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else ""
        print(
            f"{r.workload:<26} {r.contender:<22} {r.ops_per_s:>10.0f} "
            f"{r.p50_us:>8.0f} {r.p99_us:>8.0f} {ratio}"
        )
