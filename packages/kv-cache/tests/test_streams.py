"""Streams through the cache: the STREAM capability is kept, the order of writes too."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

import pytest
from kv_cache import CachedDriver, FlushFailedError
from kv_core import (
    BYTES,
    BackendUnavailableError,
    Capability,
    KeyNotFoundError,
    MemoryDriver,
    Store,
)


class StreamingMemory(MemoryDriver):
    """A MemoryDriver with the stream methods (joined in memory: only the semantics of
    the cache are under test here; the bounded-memory test runs over kv-local in the
    repository's cross-package tests) and a log of the writes that reach it."""

    capabilities = MemoryDriver.capabilities | Capability.STREAM

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[str, str, bytes | None]] = []
        self.fail_next: Exception | None = None

    async def set(self, key: str, value: bytes, **kwargs: Any) -> str:
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        self.log.append(("set", key, value))
        return await super().set(key, value, **kwargs)

    async def delete(self, key: str, *, if_match: str | None = None) -> bool:
        self.log.append(("delete", key, None))
        return await super().delete(key, if_match=if_match)

    async def write_stream(
        self, key: str, chunks: AsyncIterable[bytes], *, expires_at: float | None = None
    ) -> str:
        data = b"".join([c async for c in chunks])
        self.log.append(("write_stream", key, data))
        return await super().set(key, data, expires_at=expires_at)

    async def read_stream(self, key: str, *, chunk_size: int = 1 << 16) -> AsyncIterator[bytes]:
        entry = await self.get(key)
        if entry is None:
            raise KeyNotFoundError("missing", key=key)
        for i in range(0, len(entry.value), chunk_size):
            yield entry.value[i : i + chunk_size]


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


@pytest.mark.parametrize("mode", ["none", "write_through", "write_back"])
async def test_the_cache_keeps_the_inner_stream_capability(mode: str) -> None:
    inner = StreamingMemory()
    cache = CachedDriver(inner, mode=mode, owns_inner=False)
    assert Capability.STREAM in cache.capabilities
    assert Capability.STREAM not in CachedDriver(MemoryDriver(), mode=mode).capabilities
    blobs = Store(cache, codec=BYTES)
    await blobs.set("k", b"cached")
    assert await blobs.get("k") == b"cached"
    await blobs.write_stream("k", _chunks(b"str", b"eamed"))
    assert await blobs.get("k") == b"streamed"  # the cached value was dropped
    assert b"".join([c async for c in blobs.read_stream("k", chunk_size=3)]) == b"streamed"
    await blobs.aclose()
    assert (await inner.get("k")).value == b"streamed"  # type: ignore[union-attr]


async def test_write_back_flushes_the_dirty_entry_before_the_stream() -> None:
    inner = StreamingMemory()
    cache = CachedDriver(inner, mode="write_back", owns_inner=False)
    await cache.set("k", b"local")
    await cache.set("gone", b"x")
    await inner.set("gone", b"x")
    inner.log.clear()
    await cache.write_stream("k", _chunks(b"streamed"))
    assert inner.log == [("set", "k", b"local"), ("write_stream", "k", b"streamed")]
    assert cache.dirty_count == 1  # "gone" only
    assert (await cache.get("k")).value == b"streamed"  # type: ignore[union-attr]
    await cache.aclose()


async def test_a_failed_flush_before_a_stream_streams_nothing() -> None:
    inner = StreamingMemory()
    cache = CachedDriver(inner, mode="write_back", owns_inner=False)
    await cache.set("k", b"local")
    inner.fail_next = BackendUnavailableError("down", store="test")
    with pytest.raises(FlushFailedError):
        await cache.write_stream("k", _chunks(b"streamed"))
    assert [op for op, _, _ in inner.log] == []
    assert cache.dirty_count == 1
    assert (await cache.get("k")).value == b"local"  # type: ignore[union-attr]
    await cache.aclose()
    assert (await inner.get("k")).value == b"local"  # type: ignore[union-attr]


async def test_read_stream_serves_unflushed_writes_and_deletes() -> None:
    inner = StreamingMemory()
    await inner.set("doomed", b"remote")
    cache = CachedDriver(inner, mode="write_back", owns_inner=False)
    await cache.set("k", b"0123456789")
    assert [c async for c in cache.read_stream("k", chunk_size=4)] == [b"0123", b"4567", b"89"]
    await cache.delete("doomed")
    with pytest.raises(KeyNotFoundError):
        _ = [c async for c in cache.read_stream("doomed")]
    await cache.aclose()
