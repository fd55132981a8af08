"""Cache: kv-cache in front of Redis (and of MemoryDriver) next to the backend's own reads.

``cache/redis`` runs the standard workloads (set, get, mixed x64, set_many, get_many of
the 1 KiB JSON dict) for raw redis-py (the baseline), Store over RedisDriver, and Store
over ``CachedDriver(RedisDriver)`` in write-through mode: gets are hits (the sets and a
warm-up round fill the cache). Two cache settings: ``max_staleness=None`` (a hit never asks
Redis) and the default ``max_staleness=1.0`` (an entry older than 1 s is revalidated with
a conditional read). ``set 1 KiB write-back`` compares write-back (sets stay in the cache;
the flush at the end of every repetition is timed with it) with write-through.

``cache/memory`` keeps the cache's own cost visible: a hit next to a MemoryDriver read,
through Store and at the driver level (bytes, no codec).

Target (issue 6): a hit >= 10x faster than a Redis read. Every get checks it returned
what was put. Run: ``cd scripts && uv run python -m benchmarks.cache [--quick]``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Mapping
from typing import Any

from kv_cache import CachedDriver, CacheMode
from kv_core import Driver, MemoryDriver, Store

from benchmarks.common import Row, add_ratios, make_value
from benchmarks.suite import Contender, Workload, run_workloads, standard_workloads

__all__ = ["run"]


def _store_contender(name: str, store: Store[Any], note: str = "") -> Contender:
    return Contender(name, store.set, store.get, store.set_many, store.get_many, note=note)


def _cached(inner: Driver, mode: CacheMode, **options: Any) -> Store[Any]:
    return Store(CachedDriver(inner, mode=mode, owns_inner=False, **options))


def _write_modes(inner: Driver, value: Any, n: int) -> tuple[Workload, list[Store[Any]]]:
    """Write-back (flush timed within every repetition) next to write-through."""
    keys = [f"wb-{i:06d}" for i in range(n)]
    w = Workload("set 1 KiB write-back vs write-through", n)
    stores = []
    for mode in (CacheMode.WRITE_THROUGH, CacheMode.WRITE_BACK):
        store = _cached(inner, mode, flush_concurrency=64)
        stores.append(store)
        driver = store.driver
        assert isinstance(driver, CachedDriver)

        async def op(i: int, store: Store[Any] = store, driver: CachedDriver = driver) -> None:
            await store.set(keys[i], value)
            if i == n - 1:
                result = await driver.flush()
                if driver.mode is CacheMode.WRITE_BACK and len(result.written) != n:
                    raise AssertionError(f"flush wrote {len(result.written)} of {n} keys")
                if await Store(inner).get(keys[-1]) != value:
                    raise AssertionError("the last write did not reach the backend")

        note = "incl. the flush of every key" if mode is CacheMode.WRITE_BACK else ""
        w.add(f"kv CachedDriver({mode.value})", op, raw=mode is CacheMode.WRITE_THROUGH, note=note)
    return w, stores


def _driver_level(backend: str, inner: Driver, value: Any, n: int) -> tuple[Workload, Store[Any]]:
    """get of bytes through the drivers themselves: the cache's own cost, no codec."""
    keys = [f"bench-{i:06d}" for i in range(n)]
    cached = _cached(inner, CacheMode.WRITE_THROUGH, max_staleness=None)
    cache = cached.driver
    w = Workload("get 1 KiB bytes (driver level)", n)
    for name, driver, raw in (
        (f"{backend} driver.get (backend read)", inner, True),
        ("CachedDriver.get (hit)", cache, False),
    ):

        async def op(i: int, driver: Driver = driver, name: str = name) -> None:
            got = await driver.get(keys[i])
            if got is None or json.loads(got.value) != value:
                raise AssertionError(f"{name} returned wrong data for {keys[i]}")

        w.add(name, op, raw=raw)
    return w, cached


async def _memory(quick: bool, repeats: int) -> list[Row]:
    value = make_value()
    inner = MemoryDriver()
    n = 2_000 if quick else 8_000
    plain: Store[Any] = Store(inner)
    hit = _cached(inner, CacheMode.WRITE_THROUGH, max_staleness=None)
    workloads = standard_workloads(
        [
            Contender(
                "kv Store(MemoryDriver)",
                plain.set,
                plain.get,
                plain.set_many,
                plain.get_many,
                raw=True,
            ),
            _store_contender("kv Store(CachedDriver(MemoryDriver))", hit, "max_staleness=None"),
        ],
        value=value,
        seq=n,
        conc=64 * (20 if quick else 80),
        batches=50 if quick else 200,
    )
    level, cached = _driver_level("MemoryDriver", inner, value, n)
    writes, stores = _write_modes(inner, value, n)
    try:
        order = [*workloads.values(), level, writes]
        return await run_workloads("cache/memory", order, repeats=repeats)
    finally:
        for store in (hit, cached, *stores):
            await store.aclose()


def _raw_redis(client: Any) -> Contender:
    async def put(key: str, value: Any) -> None:
        await client.set(key, json.dumps(value))

    async def get(key: str) -> Any:
        data = await client.get(key)
        return None if data is None else json.loads(data)

    async def put_many(mapping: dict[str, Any]) -> None:
        await client.mset({k: json.dumps(v) for k, v in mapping.items()})

    async def get_many(keys: list[str]) -> Mapping[str, Any]:
        got = await client.mget(keys)
        return {k: json.loads(v) for k, v in zip(keys, got, strict=True) if v is not None}

    return Contender("raw redis-py", put, get, put_many, get_many, raw=True)


async def _redis(quick: bool, repeats: int) -> list[Row]:
    from kv_core.testing import start_redis
    from kv_redis import RedisDriver
    from redis.asyncio import Redis

    value = make_value()
    server = start_redis()
    client = Redis.from_url(server.url)
    inner = RedisDriver.from_url(server.url, prefix="kv:")
    plain: Store[Any] = Store(inner)
    hit = _cached(inner, CacheMode.WRITE_THROUGH, max_staleness=None)
    fresh = _cached(inner, CacheMode.WRITE_THROUGH)
    n = 500 if quick else 3_000
    workloads = standard_workloads(
        [
            _raw_redis(client),
            _store_contender("kv Store(RedisDriver)", plain),
            _store_contender("kv Store(CachedDriver(RedisDriver))", hit, "max_staleness=None"),
            _store_contender(
                "kv Store(CachedDriver(RedisDriver)) default", fresh, "max_staleness=1.0"
            ),
        ],
        value=value,
        seq=n,
        conc=64 * (16 if quick else 80),
        batches=30 if quick else 150,
    )
    writes, stores = _write_modes(inner, value, n)
    try:
        rows = await run_workloads("cache/redis", [*workloads.values(), writes], repeats=repeats)
    finally:
        for store in (hit, fresh, *stores):
            await store.aclose()
        await plain.aclose()
        await client.aclose()
        server.stop()
    return rows


async def run(quick: bool = False) -> list[Row]:
    """Cache hits against backend reads; write-back against write-through."""
    repeats = 3 if quick else 5
    rows = await _memory(quick, repeats)
    try:
        rows += await _redis(quick, repeats)
    except (ImportError, FileNotFoundError) as exc:
        note = f"unavailable: {type(exc).__name__}: {exc}"
        rows.append(Row("cache/redis", "get 1 KiB seq", "kv-redis", 0, 0, 0, note=note))
    return add_ratios(rows)


if __name__ == "__main__":
    from benchmarks.report import print_rows

    print_rows(asyncio.run(run("--quick" in sys.argv)))
