"""Redis: Store over RedisDriver next to raw redis-py and the peer libraries, in one run.

Starts its own ``redis-server`` on a free loopback port (no persistence). Every contender
does the same work: JSON-encode the 1 KiB value on write, decode it on read, and every
read is checked against what was written. The raw rows are what a careful redis-py user
writes by hand:

- set / get: ``await r.set(k, json.dumps(v))`` / ``json.loads(await r.get(k))``;
- set_many / get_many of 100 keys: one ``MSET`` / one ``MGET`` (reference rows: the same
  through a pipeline of 100 SET / GET, and with pre-encoded bytes to show the driver
  without the JSON codec);
- 64 concurrent tasks: the same calls over redis-py's connection pool (one connection per
  task, one command per round trip).

Large values (issue 11 item 4): set / get of a 1 MiB bytes value, sequential and from 64
concurrent tasks (64 keys), Store with the BYTES codec against raw redis-py's ``SET`` /
``GET`` over its connection pool (its defaults; kv: its default 5 s timeout).

Peers: py-key-value-aio ``RedisStore`` and aiocache ``RedisCache`` (JSON serializer).
Targets (issue 4): single ops and batches >= 0.95x raw, 64-concurrent >= 2x raw.

Run: ``cd scripts && uv run python -m benchmarks.redis [--quick]``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Mapping
from typing import Any

from kv_core import BYTES, Store
from kv_core.testing import start_redis
from kv_redis import RedisDriver
from redis.asyncio import Redis

from benchmarks.common import Row, add_ratios, make_value
from benchmarks.peers import aiocache_contender, pykv_contender
from benchmarks.suite import (
    BATCH,
    TASKS,
    Contender,
    Workload,
    run_workloads,
    standard_workloads,
    unavailable,
)

__all__ = ["run"]

BACKEND = "redis"
RAW = "raw redis-py"


def _raw(r: Redis) -> Contender:
    async def put(key: str, value: Any) -> None:
        await r.set(key, json.dumps(value))

    async def get(key: str) -> Any:
        data = await r.get(key)
        return None if data is None else json.loads(data)

    async def put_many(mapping: dict[str, Any]) -> None:
        await r.mset({k: json.dumps(v) for k, v in mapping.items()})

    async def get_many(keys: list[str]) -> Mapping[str, Any]:
        values = await r.mget(keys)
        return {k: json.loads(v) for k, v in zip(keys, values, strict=True) if v is not None}

    return Contender(RAW, put, get, put_many, get_many, raw=True, note="GET/SET, MGET/MSET")


def _peers(url: str, port: int) -> list[Contender]:
    found: list[Contender] = []
    try:
        from key_value.aio.stores.redis import RedisStore
    except ImportError as exc:
        found.append(unavailable("py-key-value-aio RedisStore", exc))
    else:
        store = RedisStore(url=url, default_collection="pykv")
        found.append(pykv_contender("py-key-value-aio RedisStore", store))
    try:
        from aiocache import RedisCache
        from aiocache.serializers import JsonSerializer
    except ImportError as exc:
        found.append(unavailable("aiocache RedisCache", exc))
    else:
        cache = RedisCache(
            endpoint="127.0.0.1", port=port, namespace="aioc", serializer=JsonSerializer()
        )
        found.append(aiocache_contender("aiocache RedisCache (JSON)", cache))
    return found


def _reference_batches(
    workloads: dict[str, Workload], r: Redis, store: Store[Any], value: Any, batches: int
) -> list[Workload]:
    """Pipelines beside MSET/MGET, and the batches with pre-encoded bytes (no codec)."""
    keys = [f"batch-{i:03d}" for i in range(BATCH)]
    mapping = dict.fromkeys(keys, value)

    async def pipe_set(i: int) -> None:
        async with r.pipeline(transaction=False) as pipe:
            for k, v in mapping.items():
                pipe.set(k, json.dumps(v))
            await pipe.execute()

    async def pipe_get(i: int) -> None:
        async with r.pipeline(transaction=False) as pipe:
            for k in keys:
                pipe.get(k)
            got = [json.loads(d) for d in await pipe.execute()]
        if got != [value] * BATCH:
            raise AssertionError("pipelined GET returned other values")

    note = "reference: pipeline of 100 commands"
    workloads["set_many"].add("raw redis-py pipeline SET", pipe_set, note=note)
    workloads["get_many"].add("raw redis-py pipeline GET", pipe_get, note=note)

    data = json.dumps(value).encode()
    blob_map = dict.fromkeys(keys, data)
    blobs = store.with_codec(BYTES)
    set_b = Workload(f"set_many {BATCH} bytes (no codec)", batches, per_call=BATCH)
    get_b = Workload(f"get_many {BATCH} bytes (no codec)", batches, per_call=BATCH)

    async def raw_set_b(i: int) -> None:
        await r.mset(blob_map)

    async def kv_set_b(i: int) -> None:
        await blobs.set_many(blob_map)

    async def raw_get_b(i: int) -> None:
        if await r.mget(keys) != [data] * BATCH:
            raise AssertionError("MGET returned other bytes")

    async def kv_get_b(i: int) -> None:
        if await blobs.get_many(keys) != blob_map:
            raise AssertionError("get_many returned other bytes")

    set_b.add(RAW, raw_set_b, raw=True, note="MSET")
    set_b.add("kv Store(RedisDriver, BYTES)", kv_set_b)
    get_b.add(RAW, raw_get_b, raw=True, note="MGET")
    get_b.add("kv Store(RedisDriver, BYTES)", kv_get_b)
    return [set_b, get_b]


def _big_values(r: Redis, store: Store[Any], quick: bool) -> list[Workload]:
    """1 MiB bytes: set and get, sequential and 64 concurrent tasks, kv against raw."""
    data = bytes(range(256)) * 4096  # 1 MiB
    blobs = store.with_codec(BYTES)
    keys = [f"big-{i:02d}" for i in range(TASKS)]
    seq, conc = (40, TASKS * 2) if quick else (200, TASKS * 6)
    out = []
    for concurrent, calls in ((False, seq), (True, conc)):
        tag = f"x{TASKS}" if concurrent else "seq"
        set_w = Workload(f"set 1 MiB bytes {tag}", calls, concurrent=concurrent)
        get_w = Workload(f"get 1 MiB bytes {tag}", calls, concurrent=concurrent)

        async def raw_set(i: int) -> None:
            await r.set(keys[i % TASKS], data)

        async def kv_set(i: int) -> None:
            await blobs.set(keys[i % TASKS], data)

        async def raw_get(i: int) -> None:
            if await r.get(keys[i % TASKS]) != data:
                raise AssertionError("GET returned other bytes")

        async def kv_get(i: int) -> None:
            if await blobs.get(keys[i % TASKS]) != data:
                raise AssertionError("get returned other bytes")

        async def fill() -> None:
            for key in keys:
                await r.set(key, data)

        set_w.add(RAW, raw_set, raw=True, note="SET, connection pool")
        set_w.add("kv Store(RedisDriver, BYTES)", kv_set)
        get_w.add(RAW, raw_get, raw=True, note="GET, connection pool")
        get_w.add("kv Store(RedisDriver, BYTES)", kv_get)
        get_w.setup[RAW] = fill
        out += [set_w, get_w]
    return out


async def run(quick: bool) -> list[Row]:
    """Start a server, run every workload for every contender, stop the server."""
    server = start_redis()
    value = make_value()
    raw = Redis.from_url(server.url)
    store: Store[Any] = Store(RedisDriver.from_url(server.url, prefix="kv:"))
    kv = Contender("kv Store(RedisDriver)", store.set, store.get, store.set_many, store.get_many)
    peers = _peers(server.url, server.port)
    batches = 30 if quick else 150
    try:
        workloads = standard_workloads(
            [_raw(raw), kv, *peers],
            value=value,
            seq=500 if quick else 3_000,
            conc=64 * (16 if quick else 80),
            batches=batches,
        )
        extra = _reference_batches(workloads, raw, store, value, batches)
        extra += _big_values(raw, store, quick)
        rows = await run_workloads(
            BACKEND, [*workloads.values(), *extra], repeats=3 if quick else 5
        )
    finally:
        await store.aclose()
        await raw.aclose()
        server.stop()
    return add_ratios(rows)


if __name__ == "__main__":
    from benchmarks.report import print_rows

    print_rows(asyncio.run(run("--quick" in sys.argv)))
