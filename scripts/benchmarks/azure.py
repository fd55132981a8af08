"""Azure Blob: Store over AzureBlobDriver next to the raw SDK and asyncblobdict, in one run.

Starts its own Azurite on a free loopback port, so absolute numbers measure Azurite (a
Node.js process sharing the machine's cores, about 4 ms per request) far more than any
network. Each contender has its own container in that one Azurite. Every contender does
the same work: JSON-encode the 1 KiB value on write, decode it on read, and every read is
checked against what was written. The raw rows are what a careful user of
azure-storage-blob's aio client writes by hand:

- set / get: ``container.get_blob_client(k).upload_blob(json.dumps(v), overwrite=True)`` /
  ``json.loads(await (await container.download_blob(k)).readall())``;
- set_many / get_many of 100 keys: the same calls through ``asyncio.gather`` with at most
  32 in flight (Blob Storage has no multi-get or multi-put; 32 is the driver's default
  ``batch_concurrency``);
- 64 concurrent mixed tasks: the same single calls over the SDK's connection pool;
- one 8 MiB value: ``upload_blob`` / ``download_blob().readall()`` of the bytes (kv through
  ``Store.with_codec(BYTES)``).

Peer: asyncblobdict's ``AzureBlobAdapter`` (``.json`` view, ``.binary`` for 8 MiB; no
batch call, so its batches are an unbounded ``asyncio.gather``). It cannot create a
container, so the benchmark creates its container first.
Target (issue 5): every workload >= 0.95x raw.

Run: ``cd scripts && uv run python -m benchmarks azure`` (``--quick`` for fewer ops), or
``uv run python -m benchmarks.azure [--quick]`` for this table alone.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob.aio import ContainerClient
from kv_azure import AzureBlobDriver
from kv_core import BYTES, Store
from kv_core.testing import start_azurite

from benchmarks.common import Row, add_ratios, make_value
from benchmarks.peers import blobdict_contender
from benchmarks.suite import (
    TASKS,
    Contender,
    Workload,
    run_workloads,
    standard_workloads,
    unavailable,
)

__all__ = ["run"]

BACKEND = "azure"
BIG = 8 << 20
LIMIT = 32  # requests in flight per raw batch: AzureBlobDriver's default batch_concurrency
RAW = "raw azure-storage-blob aio"
BLOBDICT = "asyncblobdict AzureBlobAdapter"


async def _bounded(calls: list[Awaitable[Any]]) -> list[Any]:
    """``asyncio.gather`` of ``calls`` with at most :data:`LIMIT` running at once."""
    semaphore = asyncio.Semaphore(LIMIT)

    async def one(call: Awaitable[Any]) -> Any:
        async with semaphore:
            return await call

    return list(await asyncio.gather(*(one(c) for c in calls)))


def _raw(container: ContainerClient) -> Contender:
    async def put_bytes(key: str, data: bytes) -> None:
        await container.get_blob_client(key).upload_blob(data, overwrite=True)

    async def get_bytes(key: str) -> bytes | None:
        try:
            downloader = await container.download_blob(key)
        except ResourceNotFoundError:
            return None
        return await downloader.readall()

    async def put(key: str, value: Any) -> None:
        await put_bytes(key, json.dumps(value).encode())

    async def get(key: str) -> Any:
        data = await get_bytes(key)
        return None if data is None else json.loads(data)

    async def put_many(mapping: dict[str, Any]) -> None:
        await _bounded([put(k, v) for k, v in mapping.items()])

    async def get_many(keys: list[str]) -> Mapping[str, Any]:
        values = await _bounded([get(k) for k in keys])
        return {k: v for k, v in zip(keys, values, strict=True) if v is not None}

    return Contender(
        RAW,
        put,
        get,
        put_many,
        get_many,
        put_bytes,
        get_bytes,
        raw=True,
    )


async def _blobdict(connection_string: str) -> tuple[Contender, Any]:
    """asyncblobdict over Azurite, or an unavailable contender saying why."""
    try:
        from asyncblobdict import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
            AsyncBlobStore,
            AzureBlobAdapter,
        )

        async with ContainerClient.from_connection_string(connection_string, "blobdict") as c:
            await c.create_container()  # asyncblobdict has no call that creates one
        adapter = AzureBlobAdapter.from_connection_string(connection_string)
        store = AsyncBlobStore(adapter, "blobdict")
    except Exception as exc:  # reported as a row, the others still run
        return unavailable(BLOBDICT, exc), None
    return blobdict_contender(BLOBDICT, store, note="container made by the benchmark"), store


def _fill_first(workload: Workload, contenders: list[Contender], value: Any, count: int) -> None:
    """Replace the mixed workload's setup with a fill of only the keys it touches.

    The standard setup writes all 1,000 hot keys one by one (4 s per contender at
    Azurite's speed); the 64 tasks touch only ``hot[i % 1000]`` for ``i < count``.
    """
    keys = [f"bench-{i:06d}" for i in range(count)]
    for c in contenders:
        put = c.set
        if put is None or c.name not in workload.setup:
            continue

        async def fill(put: Callable[[str, Any], Awaitable[object]] = put) -> None:
            await _bounded([put(k, value) for k in keys])

        workload.setup[c.name] = fill


async def run(quick: bool) -> list[Row]:
    """Start Azurite, run every workload for every contender, stop Azurite."""
    with start_azurite() as server:
        cs = server.connection_string
        raw = ContainerClient.from_connection_string(cs, "raw-sdk")
        store: Store[Any] = Store(
            AzureBlobDriver("kv-store", connection_string=cs, create_container=True)
        )
        blobs = store.with_codec(BYTES)
        kv = Contender(
            "kv Store(AzureBlobDriver)",
            store.set,
            store.get,
            store.set_many,
            store.get_many,
            blobs.set,
            blobs.get,
        )
        peer_store: Any = None
        value = make_value()
        # Azurite serves ~300 requests/s whatever the concurrency: small counts keep a full
        # run near 2 minutes and --quick near 25 s.
        conc = TASKS * (2 if quick else 4)
        try:
            await raw.create_container()
            peer, peer_store = await _blobdict(cs)
            contenders = [_raw(raw), kv, peer]
            workloads = standard_workloads(
                contenders,
                value=value,
                seq=40 if quick else 100,
                conc=conc,
                batches=1 if quick else 2,
                big=os.urandom(BIG),
                big_calls=2,
            )
            _fill_first(workloads["mixed"], contenders, value, conc)
            for kind in ("set_many", "get_many"):
                workloads[kind].notes[RAW] = f"asyncio.gather, {LIMIT} in flight"
            rows = await run_workloads(BACKEND, list(workloads.values()), repeats=3 if quick else 9)
        finally:
            await store.aclose()
            if peer_store is not None:
                await peer_store.close()
            await raw.close()
    return add_ratios(rows)


if __name__ == "__main__":
    from benchmarks.report import print_rows

    print_rows(asyncio.run(run("--quick" in sys.argv)))
