"""Cache: a cache hit next to the inner backend's own read, write-back next to write-through.

For each inner backend (MemoryDriver always; Redis on a throw-away loopback server when
kv-redis and ``redis-server`` are available) and in the same run:

- ``get 1 KiB JSON``: the baseline (``raw=True``) is ``Store(inner).get``, the backend's
  read; the contender is ``Store(CachedDriver(inner)).get`` on a warm cache (every get a
  hit). The ratio is how many times faster a hit is than a backend read.
- ``set 1 KiB JSON``: the baseline is a write-through cache (one backend write per set);
  the contender is write-back (sets stay in the cache; the flush at the end is measured
  as part of every repeat, so the rate counts the backend writes too).

Every get checks it returned what was put. Run: ``cd scripts && uv run python -m
benchmarks.cache``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

from kv_cache import CachedDriver, CacheMode
from kv_core import Driver, MemoryDriver, Store

from benchmarks.common import Row, add_ratios, make_value, measure


def _keys(n: int) -> list[str]:
    return [f"bench/{i}" for i in range(n)]


async def _get_rows(backend: str, inner: Driver, n: int, repeats: int) -> list[Row]:
    value = make_value()
    keys = _keys(n)
    plain: Store[Any] = Store(inner)
    for key in keys:
        await plain.set(key, value)
    cached: Store[Any] = Store(
        CachedDriver(inner, mode=CacheMode.WRITE_THROUGH, max_staleness=None, owns_inner=False)
    )
    rows = []
    for name, store, raw, note in (
        (f"Store({backend}).get (backend read)", plain, True, ""),
        ("Store(CachedDriver).get (hit)", cached, False, "warm cache"),
    ):

        async def do_get(i: int, store: Store[Any] = store, name: str = name) -> None:
            if await store.get(keys[i]) != value:
                raise AssertionError(f"{name} returned wrong data for {keys[i]}")

        await measure(do_get, n, repeats=1)  # warm the cache (and the connection)
        ops, p50, p99 = await measure(do_get, n, repeats=repeats)
        rows.append(Row(backend, "get 1 KiB JSON", name, ops, p50, p99, raw=raw, note=note))
    # The same at the driver level (bytes, no codec): the cache's own cost.
    data = (await inner.get(keys[0])).value  # type: ignore[union-attr]
    cache = cast(CachedDriver, cached.driver)
    for name, driver, raw in (
        (f"{backend} driver.get (backend read)", inner, True),
        ("CachedDriver.get (hit)", cache, False),
    ):

        async def raw_get(i: int, driver: Any = driver, name: str = name) -> None:
            got = await driver.get(keys[i])
            if got is None or got.value != data:
                raise AssertionError(f"{name} returned wrong data for {keys[i]}")

        ops, p50, p99 = await measure(raw_get, n, repeats=repeats)
        rows.append(Row(backend, "get 1 KiB bytes (driver)", name, ops, p50, p99, raw=raw))
    await cached.aclose()
    return rows


async def _set_rows(backend: str, inner: Driver, n: int, repeats: int) -> list[Row]:
    value = make_value()
    keys = _keys(n)
    rows = []
    for mode, raw in ((CacheMode.WRITE_THROUGH, True), (CacheMode.WRITE_BACK, False)):
        driver = CachedDriver(inner, mode=mode, owns_inner=False, flush_concurrency=64)
        store: Store[Any] = Store(driver)
        rates: list[float] = []
        p50 = p99 = 0.0

        async def do_set(i: int, store: Store[Any] = store) -> None:
            await store.set(keys[i], value)

        for _ in range(repeats):
            t0 = time.perf_counter()
            _, p50, p99 = await measure(do_set, n, repeats=1)
            result = await driver.flush()
            if mode is CacheMode.WRITE_BACK and len(result.written) != n:
                raise AssertionError(f"flush wrote {len(result.written)} of {n} keys")
            rates.append(n / (time.perf_counter() - t0))
        rates.sort()
        check: Any = await Store(inner).get(keys[-1])
        if check != value:
            raise AssertionError(f"{mode.value} did not reach the backend")
        note = "incl. flush" if mode is CacheMode.WRITE_BACK else ""
        name = f"CachedDriver({mode.value}).set"
        rate = rates[len(rates) // 2]
        rows.append(Row(backend, "set 1 KiB JSON", name, rate, p50, p99, raw=raw, note=note))
        await store.aclose()
    return rows


async def _redis_rows(n: int, repeats: int) -> list[Row]:
    try:
        from kv_core.testing import start_redis
        from kv_redis import RedisDriver
    except ImportError as exc:
        return [Row("cache/redis", "get 1 KiB JSON", "skipped", 0, 0, 0, note=f"{exc}")]
    try:
        server = start_redis()
    except FileNotFoundError as exc:
        return [Row("cache/redis", "get 1 KiB JSON", "skipped", 0, 0, 0, note=f"{exc}")]
    try:
        inner = RedisDriver.from_url(server.url)
        try:
            rows = await _get_rows("cache/redis", inner, n, repeats)
            rows += await _set_rows("cache/redis", inner, n, repeats)
        finally:
            await inner.aclose()
    finally:
        server.stop()
    return rows


async def run(quick: bool = False) -> list[Row]:
    """Measure cache hits against backend reads and write-back against write-through."""
    n = 2_000 if quick else 10_000
    repeats = 3 if quick else 5
    memory = MemoryDriver()
    rows = await _get_rows("cache/memory", memory, n, repeats)
    rows += await _set_rows("cache/memory", memory, n, repeats)
    rows += await _redis_rows(n // 2, repeats)  # a Redis round trip is ~100 µs
    return add_ratios(rows)


if __name__ == "__main__":
    from benchmarks.report import print_rows

    print_rows(asyncio.run(run()))
