"""Memory: Store over MemoryDriver next to a plain dict of ``json.dumps`` bytes (the floor).

The floor does the least any JSON key-value store must do: encode on set, decode on get.
Every contender runs inside the same async harness (one coroutine call per operation), and
contenders take turns in every repetition, so the ratio shows what each adds on top.
Peers: py-key-value-aio ``MemoryStore`` and aiocache ``SimpleMemoryCache`` (JSON
serializer). Target (issue 2): Store >= 0.8x the floor.

Run: ``cd scripts && uv run python -m benchmarks.memory [--quick]``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Mapping
from typing import Any

from kv_core import MemoryDriver, Store

from benchmarks.common import Row, add_ratios, make_value
from benchmarks.peers import aiocache_contender, pykv_contender
from benchmarks.suite import Contender, run_workloads, standard_workloads, unavailable

__all__ = ["run"]

BACKEND = "memory"
FLOOR = "dict + json.dumps bytes (floor)"


def _floor() -> Contender:
    data: dict[str, bytes] = {}

    async def put(key: str, value: Any) -> None:
        data[key] = json.dumps(value).encode()

    async def get(key: str) -> Any:
        return json.loads(data[key])

    async def put_many(mapping: dict[str, Any]) -> None:
        for key, value in mapping.items():
            data[key] = json.dumps(value).encode()

    async def get_many(keys: list[str]) -> Mapping[str, Any]:
        return {key: json.loads(data[key]) for key in keys if key in data}

    return Contender(FLOOR, put, get, put_many, get_many, raw=True)


def _kv() -> Contender:
    store: Store[Any] = Store(MemoryDriver())
    return Contender("kv Store(MemoryDriver)", store.set, store.get, store.set_many, store.get_many)


def _contenders() -> list[Contender]:
    found = [_floor(), _kv()]
    try:
        from key_value.aio.stores.memory import MemoryStore
    except ImportError as exc:
        found.append(unavailable("py-key-value-aio MemoryStore", exc))
    else:
        found.append(pykv_contender("py-key-value-aio MemoryStore", MemoryStore()))
    try:
        from aiocache import SimpleMemoryCache
        from aiocache.serializers import JsonSerializer
    except ImportError as exc:
        found.append(unavailable("aiocache SimpleMemoryCache", exc))
    else:
        cache = SimpleMemoryCache(serializer=JsonSerializer())
        found.append(aiocache_contender("aiocache SimpleMemoryCache (JSON)", cache))
    return found


async def run(quick: bool = False) -> list[Row]:
    """Every standard workload (no 8 MiB value); ratios are against the dict floor."""
    workloads = standard_workloads(
        _contenders(),
        value=make_value(),
        seq=2_000 if quick else 10_000,
        conc=64 * (30 if quick else 100),
        batches=60 if quick else 150,
    )
    rows = await run_workloads(BACKEND, list(workloads.values()), repeats=3 if quick else 7)
    return add_ratios(rows)


if __name__ == "__main__":
    from benchmarks.report import print_rows

    print_rows(asyncio.run(run("--quick" in sys.argv)))
