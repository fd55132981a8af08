"""Conformance: files over keys, ``Store.open`` (DESIGN §10), on every driver."""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Awaitable
from typing import Any

import pytest

from .._codecs import BYTES
from .._driver import Capability
from .._errors import KeyNotFoundError, PreconditionFailedError
from .._store import Store
from ._fixtures import StoreFixtures

__all__ = ["FilesConformance"]


class _Boom(Exception):
    pass


async def _write(
    store: Store[Any],
    key: str,
    mode: str,
    data: bytes,
    *,
    meanwhile: Awaitable[object] | None = None,
    fail: bool = False,
) -> None:
    """Open ``key`` in ``mode``, write ``data``; run ``meanwhile`` inside; raise if ``fail``."""
    async with store.open(key, mode) as f:
        await f.write(data)
        if meanwhile is not None:
            await meanwhile
        if fail:
            raise _Boom


class FilesConformance(StoreFixtures):
    """rb, wb, xb, ab and r+b with io's meanings and kv's atomic commit."""

    #: The traced peak allowed while an 8 MiB file is written and read on a driver that
    #: streams. A driver whose transfers hold several blocks at once (Azure: up to
    #: ``(max_concurrency + 1) * block_size``) sets its own bound, or a smaller block size
    #: in its harness.
    file_peak_limit = 4 << 20

    async def test_file_written_appears_at_once_on_a_clean_exit(
        self, store: Store[Any], other: Store[Any]
    ) -> None:
        async with store.open("logs/app.log", "wb") as f:
            assert await f.write(b"line 1\n") == 7
            await f.write(memoryview(b"line 2\n"))
            assert f.tell() == 14
            assert not await other.exists("logs/app.log")  # nothing visible before the exit
        assert f.closed
        assert await other.with_codec(BYTES).get("logs/app.log") == b"line 1\nline 2\n"

    async def test_file_is_discarded_when_the_block_raises(self, store: Store[Any]) -> None:
        raw = store.with_codec(BYTES)
        await raw.set("k", b"before")
        for mode in ("wb", "ab", "r+b"):
            with pytest.raises(_Boom):
                await _write(store, "k", mode, b"half-written", fail=True)
            assert await raw.get("k") == b"before", mode
        with pytest.raises(_Boom):
            await _write(store, "new", "xb", b"x", fail=True)
        assert not await store.exists("new")

    async def test_reading_follows_io(self, store: Store[Any]) -> None:
        await store.with_codec(BYTES).set("text", b"alpha\nbeta\n\ngamma")
        async with store.open("text") as f:  # "rb" is the default
            assert f.readable()
            assert not f.writable()
            assert await f.read(3) == b"alp"
            assert f.tell() == 3
            assert await f.readline() == b"ha\n"
            assert [line async for line in f] == [b"beta\n", b"\n", b"gamma"]
            assert await f.read() == b""
            assert f.seek(0) == 0
            assert await f.read(5) == b"alpha"
            assert f.seek(2, io.SEEK_CUR) == 7
            assert await f.readline() == b"eta\n"
            f.seek(1)
            assert await f.read() == b"lpha\nbeta\n\ngamma"
            with pytest.raises(io.UnsupportedOperation):
                await f.write(b"x")

    async def test_a_missing_key_opened_for_reading_raises_key_not_found(
        self, store: Store[Any]
    ) -> None:
        for mode in ("rb", "r+b"):
            with pytest.raises(KeyNotFoundError) as info:
                async with store.open("missing", mode):
                    pass
            assert isinstance(info.value, KeyError)

    async def test_xb_creates_only(self, store: Store[Any], other: Store[Any]) -> None:
        async with store.open("once", "xb") as f:
            await f.write(b"first")
        with pytest.raises(PreconditionFailedError):
            await _write(store, "once", "xb", b"second")
        assert await store.with_codec(BYTES).get("once") == b"first"
        with pytest.raises(PreconditionFailedError):  # checked at commit, atomically
            await _write(store, "race", "xb", b"mine", meanwhile=other.set("race", "someone else"))
        assert await store.get("race") == "someone else"

    async def test_ab_appends_and_commits_only_if_nobody_wrote_meanwhile(
        self, store: Store[Any], other: Store[Any]
    ) -> None:
        raw = store.with_codec(BYTES)
        async with store.open("log", "ab") as f:  # a missing key is created
            await f.write(b"one\n")
        async with store.open("log", "ab") as f:
            assert f.tell() == 4
            await f.write(b"two\n")
        assert await raw.get("log") == b"one\ntwo\n"
        rewrite = other.with_codec(BYTES).set("log", b"rewritten\n")
        with pytest.raises(PreconditionFailedError):
            await _write(store, "log", "ab", b"three\n", meanwhile=rewrite)
        assert await raw.get("log") == b"rewritten\n"
        with pytest.raises(PreconditionFailedError):  # created by someone else meanwhile
            await _write(store, "fresh", "ab", b"x", meanwhile=other.set("fresh", 1))
        assert await store.get("fresh") == 1

    async def test_r_plus_b_edits_in_place(self, store: Store[Any], other: Store[Any]) -> None:
        raw = store.with_codec(BYTES)
        await raw.set("doc", b"hello world")
        async with store.open("doc", "r+b") as f:
            assert await f.read(5) == b"hello"
            f.seek(6)
            await f.write(b"WORLD!")
            f.seek(0)
            assert await f.read() == b"hello WORLD!"
            assert f.seek(0, io.SEEK_END) == 12
        assert await raw.get("doc") == b"hello WORLD!"
        change = other.with_codec(BYTES).set("doc", b"changed")
        with pytest.raises(PreconditionFailedError):
            await _write(store, "doc", "r+b", b"J", meanwhile=change)
        assert await raw.get("doc") == b"changed"

    async def test_files_carry_raw_bytes_whatever_the_codec(self, store: Store[Any]) -> None:
        await store.set("json", {"a": 1})  # a JSON store
        async with store.open("json") as f:
            assert await f.read() == b'{"a":1}'
        async with store.open("json", "wb") as f:
            await f.write(b"[1, 2]")
        assert await store.get("json") == [1, 2]

    async def test_files_and_expiry(self, store: Store[Any]) -> None:
        async with store.open("t", "wb", ttl=3600) as f:
            await f.write(b"1")
        async with store.open("t", "ab") as f:  # ab and r+b keep the key's expiry
            await f.write(b"2")
        left = await store.ttl("t")
        assert left is not None
        assert left > 3000
        async with store.open("t", "wb") as f:  # wb without ttl: never expires
            await f.write(b"3")
        assert await store.ttl("t") is None
        with pytest.raises(ValueError, match="mode"):
            store.open("t", "w")
        with pytest.raises(ValueError, match="ttl"):
            store.open("t", "rb", ttl=5)

    async def test_large_files_keep_memory_bounded_where_the_driver_streams(
        self, store: Store[Any]
    ) -> None:
        size, piece = 8 << 20, b"0123456789abcdef" * 4096  # 8 MiB in 64 KiB writes
        tracemalloc.start()
        try:
            async with store.open("big", "wb") as f:
                for _ in range(size // len(piece)):
                    await f.write(piece)
            read = 0
            async with store.open("big", "rb") as f:
                while chunk := await f.read(len(piece)):
                    assert chunk == piece
                    read += len(chunk)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert read == size
        if store.driver.capabilities & Capability.STREAM:
            limit = self.file_peak_limit
            assert peak < limit, f"peak {peak / 2**20:.1f} MiB for an 8 MiB file (limit {limit})"
