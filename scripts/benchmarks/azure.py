"""kv-azure benchmark: Store over AzureBlobDriver next to the raw azure-storage-blob SDK.

Starts its own Azurite on a free loopback port (so absolute numbers measure Azurite, a
Node.js process sharing the machine, far more than the network). Every contender does
the same work: JSON-encode the 1 KiB value on write, decode it on read, and every read is
checked against what was written. The raw rows are what a careful SDK user writes:

- set / get: ``container.get_blob_client(k).upload_blob(json.dumps(v), overwrite=True)`` /
  ``json.loads(await (await container.download_blob(k)).readall())``;
- 64 concurrent mixed tasks (1 get : 1 set) over 256 keys, same calls;
- one 8 MiB value: upload then download, raw bytes (``Store.with_codec(BYTES)``).

Target (issue 5): every workload >= 0.95x raw.

Run: ``cd scripts && uv run python -m benchmarks.azure [--quick]``.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from azure.storage.blob.aio import ContainerClient
from kv_azure import AzureBlobDriver
from kv_core import BYTES, Store
from kv_core.testing._azurite import start_azurite

from benchmarks.common import Row, add_ratios, make_value, measure, measure_concurrent

__all__ = ["run"]

BACKEND = "azure"
TASKS = 64
BIG = 8 << 20


async def _pair(
    rows: list[Row],
    workload: str,
    raw_op: Callable[[int], Awaitable[object]],
    store_op: Callable[[int], Awaitable[object]],
    n: int,
    *,
    concurrent: bool = False,
    rounds: int,
) -> None:
    """Measure raw and Store alternately in many short rounds, and keep the medians.

    Short alternating rounds expose both contenders to the same background load: Azurite
    shares the machine's cores with the benchmark and with whatever else runs, and stalls
    while it saves its metadata every few seconds. (Interleaving single operations gives
    the same medians, within 1%.)
    """
    samples: dict[bool, list[tuple[float, float, float]]] = {True: [], False: []}
    for r in range(rounds):
        # Swap who goes first each round, so neither always runs on a warmer Azurite.
        order = ((True, raw_op), (False, store_op))
        for is_raw, op in order if r % 2 == 0 else order[::-1]:
            if concurrent:
                sample = await measure_concurrent(op, n, tasks=TASKS, repeats=1)
            else:
                sample = await measure(op, n, repeats=1)
            samples[is_raw].append(sample)
    for is_raw in (True, False):
        rate, p50, p99 = (statistics.median(x) for x in zip(*samples[is_raw], strict=True))
        who = "raw azure-storage-blob" if is_raw else "Store(AzureBlobDriver)"
        rows.append(Row(BACKEND, workload, who, rate, p50, p99, raw=is_raw))
        print(f"  {workload:<22} {who:<24} {rate:>9.0f} ops/s", file=sys.stderr)


async def _workloads(rows: list[Row], connection_string: str, quick: bool) -> None:
    value = make_value()
    n = 50 if quick else 100
    n_conc = TASKS * 4
    n_big = 2
    rounds = 4 if quick else 16
    # One container for both: Azurite's cost per request then cannot differ between them.
    raw = ContainerClient.from_connection_string(connection_string, "bench")
    driver = AzureBlobDriver("bench", connection_string=connection_string)
    store: Store[Any] = Store(driver)
    blobs: Store[bytes] = store.with_codec(BYTES)
    keys = [f"bench/{i}" for i in range(256)]
    big = os.urandom(BIG)
    try:
        await raw.create_container()
        raw_keys = [f"raw/{i}" for i in range(256)]

        async def raw_set(i: int) -> None:
            blob = raw.get_blob_client(raw_keys[i % len(keys)])
            await blob.upload_blob(json.dumps(value).encode(), overwrite=True)

        async def store_set(i: int) -> None:
            await store.set(keys[i % len(keys)], value)

        async def raw_get(i: int) -> None:
            downloader = await raw.download_blob(raw_keys[i % len(keys)])
            assert json.loads(await downloader.readall()) == value

        async def store_get(i: int) -> None:
            assert await store.get(keys[i % len(keys)]) == value

        for i in range(len(keys)):  # every key exists before any read
            await raw_set(i)
            await store_set(i)
        await _pair(rows, "set 1KiB seq", raw_set, store_set, n, rounds=rounds)
        await _pair(rows, "get 1KiB seq", raw_get, store_get, n, rounds=rounds)

        async def raw_mixed(i: int) -> None:
            await (raw_set(i) if i % 2 else raw_get(i))

        async def store_mixed(i: int) -> None:
            await (store_set(i) if i % 2 else store_get(i))

        await _pair(
            rows, "mixed 1:1 x64", raw_mixed, store_mixed, n_conc, concurrent=True, rounds=rounds
        )

        async def raw_big(i: int) -> None:
            blob = raw.get_blob_client("raw-big")
            await blob.upload_blob(big, overwrite=True)
            assert await (await blob.download_blob()).readall() == big

        async def store_big(i: int) -> None:
            await blobs.set("big", big)
            assert await blobs.get("big") == big

        await _pair(rows, "8MiB set+get", raw_big, store_big, n_big, rounds=rounds)
    finally:
        await store.aclose()
        await raw.delete_container()
        await raw.close()


async def run(quick: bool) -> list[Row]:
    """Start Azurite, run every workload for Store and the raw SDK, stop Azurite."""
    rows: list[Row] = []
    with start_azurite() as server:
        await _workloads(rows, server.connection_string, quick)
    return add_ratios(rows)


if __name__ == "__main__":
    result = asyncio.run(run("--quick" in sys.argv))
    print(f"{'workload':<22} {'contender':<24} {'ops/s':>10} {'p50 us':>8} {'p99 us':>8} ratio")
    for r in result:
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else ""
        print(
            f"{r.workload:<22} {r.contender:<24} {r.ops_per_s:>10.0f} "
            f"{r.p50_us:>8.0f} {r.p99_us:>8.0f} {ratio}"
        )
