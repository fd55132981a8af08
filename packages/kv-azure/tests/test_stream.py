"""Large values: 64 MiB up and down through the Store with the process's memory bounded."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import psutil
from kv_azure import AzureBlobDriver
from kv_core import BYTES, Store

MIB = 1 << 20
SIZE = 64 * MIB
# The driver holds at most (max_concurrency + 1) blocks of 4 MiB per transfer (20 MiB by
# default); the bound leaves room for the SDK's and aiohttp's buffers and the allocator.
RSS_GROWTH_LIMIT = 48 * MIB


def _piece(i: int) -> bytes:
    return hashlib.sha256(i.to_bytes(8, "big")).digest() * (MIB // 32)


async def _source(total: int, digest: Any) -> AsyncIterator[bytes]:
    for i in range(total // MIB):
        piece = _piece(i)
        digest.update(piece)
        yield piece


class PeakRSS:
    """Samples this process's resident memory while a transfer runs."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.baseline = self.process.memory_info().rss
        self.peak = self.baseline
        self._task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, self.process.memory_info().rss)
            await asyncio.sleep(0.005)

    async def __aenter__(self) -> PeakRSS:
        self._task = asyncio.ensure_future(self._sample())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        self.peak = max(self.peak, self.process.memory_info().rss)

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


async def test_64_mib_streams_up_and_down_in_bounded_memory(driver: AzureBlobDriver) -> None:
    store: Store[bytes] = Store(driver).with_codec(BYTES)
    # Warm up imports, the connection pool and the allocator with a small multi-block value.
    await store.write_stream("warm", _source(20 * MIB, hashlib.sha256()))
    [_ async for _ in store.read_stream("warm", chunk_size=4 * MIB)]
    await store.delete("warm")

    sent = hashlib.sha256()
    async with PeakRSS() as upload:
        etag = await store.write_stream("big", _source(SIZE, sent))
    assert upload.growth < RSS_GROWTH_LIMIT, f"upload grew RSS by {upload.growth / MIB:.1f} MiB"

    received = hashlib.sha256()
    size = 0
    async with PeakRSS() as download:
        async for chunk in store.read_stream("big", chunk_size=4 * MIB):
            assert len(chunk) <= 4 * MIB
            received.update(chunk)
            size += len(chunk)
    assert download.growth < RSS_GROWTH_LIMIT, (
        f"download grew RSS by {download.growth / MIB:.1f} MiB"
    )
    assert size == SIZE
    assert received.digest() == sent.digest()
    entry = await store.get_entry("big")
    assert entry.etag == etag


async def test_small_streams_and_empty_values(driver: AzureBlobDriver) -> None:
    store: Store[bytes] = Store(driver).with_codec(BYTES)
    await store.write_stream("empty", [])
    assert [c async for c in store.read_stream("empty")] == []
    assert await store.get("empty") == b""
    await store.write_stream("small", [b"ab", b"cd"], ttl=60)
    assert b"".join([c async for c in store.read_stream("small", chunk_size=3)]) == b"abcd"


async def test_a_stream_of_one_block_plus_a_bit_reads_back_in_order(
    connection_string: str, container: str
) -> None:
    driver = AzureBlobDriver(
        container, connection_string=connection_string, create_container=True, block_size=1000
    )
    async with Store(driver).with_codec(BYTES) as store:
        data = bytes(range(256)) * 20  # 5,120 bytes: 6 blocks, the last one partial
        await store.write_stream("k", [data[i : i + 333] for i in range(0, len(data), 333)])
        assert await store.get("k") == data
        chunks = [c async for c in store.read_stream("k", chunk_size=700)]
        assert b"".join(chunks) == data
        assert max(len(c) for c in chunks) == 700
