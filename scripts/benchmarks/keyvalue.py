"""kv-keyvalue: the adapter next to py-key-value-aio's own stores, same run, same workloads.

The baseline row (``× raw``) of each table is py-key-value's store for that backend, so
the ratio column is how many times faster the adapter is:

- ``keyvalue memory``: ``KeyValueAdapter(Store(MemoryDriver()))`` vs ``MemoryStore()``;
- ``keyvalue redis``: ``KeyValueAdapter(Store(RedisDriver))`` vs ``RedisStore`` on the
  same ``redis-server`` (started here on loopback).

Both are called through the ``AsyncKeyValue`` protocol (``put/get/put_many/get_many``)
with the 1 KiB dict of every benchmark; every get is checked. Not the same work on
memory: MemoryStore keeps the dict object and returns a shallow copy, the adapter encodes
to JSON bytes and decodes a new dict (what a shared or persistent backend must do).
Targets (issue 13): >= 3x on memory, >= 1.5x on Redis.

Run: ``cd scripts && uv run python -m benchmarks.keyvalue [--quick]``.
"""

from __future__ import annotations

import asyncio
import sys
import warnings
from typing import Any

from kv_core import MemoryDriver, Store
from kv_core.testing import start_redis
from kv_keyvalue import KeyValueAdapter
from kv_redis import RedisDriver

from benchmarks.common import Row, add_ratios, make_value
from benchmarks.peers import pykv_contender
from benchmarks.suite import Contender, run_workloads, standard_workloads, unavailable

__all__ = ["run"]

ADAPTER = "kv KeyValueAdapter"


def _baseline(name: str, make: Any) -> Contender:
    try:
        with warnings.catch_warnings():  # "unstable store" warnings from py-key-value
            warnings.simplefilter("ignore")
            store = make()
    except ImportError as exc:
        return unavailable(name, exc)
    contender = pykv_contender(name, store)
    contender.raw = True
    return contender


def _memory_store() -> Any:
    from key_value.aio.stores.memory import MemoryStore

    return MemoryStore()


def _redis_store(url: str) -> Any:
    from key_value.aio.stores.redis import RedisStore

    return RedisStore(url=url, default_collection="pykv")


async def _run_one(
    backend: str, contenders: list[Contender], quick: bool, *, seq: int, conc: int
) -> list[Row]:
    workloads = standard_workloads(
        contenders,
        value=make_value(),
        seq=seq // 4 if quick else seq,
        conc=conc // 4 if quick else conc,
        batches=40 if quick else 150,
    )
    return await run_workloads(backend, list(workloads.values()), repeats=3 if quick else 7)


async def run(quick: bool = False) -> list[Row]:
    """Memory, then Redis; ratios are against py-key-value's store of the same backend."""
    rows: list[Row] = []
    memory: Store[Any] = Store(MemoryDriver())
    adapter = KeyValueAdapter(memory)
    rows += await _run_one(
        "keyvalue memory",
        [
            _baseline("py-key-value-aio MemoryStore", _memory_store),
            pykv_contender(f"{ADAPTER}(MemoryDriver)", adapter),
        ],
        quick,
        seq=10_000,
        conc=64 * 100,
    )
    await memory.aclose()

    server = start_redis()
    store: Store[Any] = Store(RedisDriver.from_url(server.url, prefix="kv:"))
    try:
        rows += await _run_one(
            "keyvalue redis",
            [
                _baseline("py-key-value-aio RedisStore", lambda: _redis_store(server.url)),
                pykv_contender(f"{ADAPTER}(RedisDriver)", KeyValueAdapter(store)),
            ],
            quick,
            seq=3_000,
            conc=64 * 80,
        )
    finally:
        await store.aclose()
        server.stop()
    return add_ratios(rows)


if __name__ == "__main__":
    from benchmarks.report import print_rows

    print_rows(asyncio.run(run("--quick" in sys.argv)))
