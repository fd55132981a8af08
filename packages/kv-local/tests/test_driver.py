"""LocalDriver behaviour beyond the shared suites: etags, TTL files, URLs, streams."""

from __future__ import annotations

import asyncio
import gc
import os
import warnings
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from kv_core import (
    NOT_MODIFIED,
    KeyNotFoundError,
    PreconditionFailedError,
    SerializationError,
    Store,
    StoreClosedError,
    open_store,
)
from kv_local import LocalDriver

from ._helpers import Clock, temp_files


@pytest.fixture
async def driver(tmp_path: Path) -> AsyncIterator[LocalDriver]:
    d = LocalDriver(tmp_path, clock=Clock())
    yield d
    await d.aclose()


async def test_etag_changes_on_every_write_even_with_same_size_and_tick(
    driver: LocalDriver,
) -> None:
    etags = [await driver.set("k", b"AB"[i % 2 : i % 2 + 1] * 8) for i in range(300)]
    assert len(set(etags)) == len(etags)
    stale = etags[-3]  # same value and size as the current one (ABA)
    with pytest.raises(PreconditionFailedError):
        await driver.set("k", b"x", if_match=stale)
    entry = await driver.get("k")
    assert entry is not None
    assert entry.etag == etags[-1]


async def test_concurrent_if_absent_lets_exactly_one_writer_win(driver: LocalDriver) -> None:
    async def attempt(i: int) -> bool:
        try:
            await driver.set("once", str(i).encode(), if_absent=True)
        except PreconditionFailedError:
            return False
        return True

    wins = await asyncio.gather(*(attempt(i) for i in range(50)))
    assert wins.count(True) == 1
    entry = await driver.get("once")
    assert entry is not None
    assert entry.value == str(wins.index(True)).encode()


async def test_get_if_changed_reads_nothing_when_unchanged(driver: LocalDriver) -> None:
    etag = await driver.set("k", b"v")
    assert await driver.get_if_changed("k", etag) is NOT_MODIFIED
    new = await driver.set("k", b"w")
    entry = await driver.get_if_changed("k", etag)
    assert entry is not None
    assert entry is not NOT_MODIFIED
    assert (entry.value, entry.etag) == (b"w", new)  # type: ignore[union-attr]
    assert await driver.get_if_changed("missing", etag) is None


async def test_expiry_files_exist_only_while_needed(tmp_path: Path) -> None:
    clock = Clock()
    driver = LocalDriver(tmp_path, clock=clock)
    try:
        await driver.set("t", b"1", expires_at=clock.now + 10)
        assert (tmp_path / "t#meta").exists()
        entry = await driver.get("t")
        assert entry is not None
        assert entry.expires_at == clock.now + 10
        await driver.set("t", b"2")  # no expiry any more
        entry = await driver.get("t")
        assert entry is not None
        assert entry.expires_at is None
        clock.now += 100
        assert await driver.get("t") is not None
        assert await driver.purge_expired() == 0  # nothing expired, stale metadata removed
        assert not (tmp_path / "t#meta").exists()
        assert [k async for k in driver.keys()] == ["t"]
    finally:
        await driver.aclose()


async def test_expired_keys_are_invisible_and_purged(tmp_path: Path) -> None:
    clock = Clock()
    driver = LocalDriver(tmp_path, clock=clock)
    try:
        await driver.set("dir/a", b"1", expires_at=clock.now + 5)
        await driver.set("dir/b", b"2", expires_at=clock.now + 50)
        await driver.set("c", b"3")
        clock.now += 10
        assert await driver.get("dir/a") is None
        assert not await driver.exists("dir/a")
        assert sorted([k async for k in driver.keys()]) == ["c", "dir/b"]
        with pytest.raises(PreconditionFailedError):
            await driver.delete("dir/a", if_match="anything")
        assert await driver.purge_expired() == 1
        assert sorted(os.listdir(tmp_path / "dir%2F")) == ["b", "b#meta"]
        await driver.set("dir/a", b"again", if_absent=True)  # expired counts as absent
        clock.now += 100
        assert await driver.purge_expired() == 1
        assert sorted(os.listdir(tmp_path / "dir%2F")) == ["a"]
        assert sorted([k async for k in driver.keys()]) == ["c", "dir/a"]
    finally:
        await driver.aclose()


async def test_expiry_without_exact_mtimes_reads_and_removes_metadata(tmp_path: Path) -> None:
    clock = Clock()
    driver = LocalDriver(tmp_path, clock=clock)
    try:
        await driver.set("warm", b"")  # opens the root (and probes the file system)
        driver._root.exact_mtime = False  # as on a file system that rounds mtimes
        await driver.set("t", b"1", expires_at=clock.now + 10)
        entry = await driver.get("t")
        assert entry is not None
        assert entry.expires_at == clock.now + 10
        await driver.set("t", b"2")
        assert not (tmp_path / "t#meta").exists()  # removed at once: parity cannot be trusted
        await driver.set("u", b"3", expires_at=clock.now + 10)
        clock.now += 20
        assert await driver.get("u") is None
        assert sorted([k async for k in driver.keys()]) == ["t", "warm"]
    finally:
        await driver.aclose()


async def test_unreadable_metadata_raises_serialization_error_naming_the_key(
    tmp_path: Path,
) -> None:
    clock = Clock()
    driver = LocalDriver(tmp_path, clock=clock)
    store: Store[object] = Store(driver)
    async with store:
        await store.set("user/7", {"a": 1}, ttl=60)
        (tmp_path / "user%2F" / "7#meta").write_bytes(b"{not json")
        with pytest.raises(SerializationError) as info:
            await store.get("user/7")
        assert info.value.key == "user/7"
        assert "user/7" in str(info.value)
        with pytest.raises(SerializationError):
            await driver.set("user/7", b"1", if_absent=True)
        await store.set("user/7", {"fixed": True})  # a plain write repairs it
        assert await store.get("user/7") == {"fixed": True}


async def test_streams_round_trip_in_bounded_chunks(driver: LocalDriver) -> None:
    blob = os.urandom(3 << 20)

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(blob), 1 << 16):
            yield blob[i : i + (1 << 16)]

    etag = await driver.write_stream("big/blob", chunks())
    parts = [c async for c in driver.read_stream("big/blob", chunk_size=1 << 16)]
    assert max(len(p) for p in parts) <= 1 << 16
    assert b"".join(parts) == blob
    entry = await driver.get("big/blob")
    assert entry is not None
    assert entry.etag == etag
    with pytest.raises(KeyNotFoundError):
        [c async for c in driver.read_stream("missing")]


async def test_a_failed_stream_keeps_the_old_value_and_no_temp_file(tmp_path: Path) -> None:
    driver = LocalDriver(tmp_path)
    try:
        await driver.set("k", b"old")

        async def broken() -> AsyncIterator[bytes]:
            yield b"partial"
            raise RuntimeError("source failed")

        with pytest.raises(RuntimeError):
            await driver.write_stream("k", broken())
        entry = await driver.get("k")
        assert entry is not None
        assert entry.value == b"old"
    finally:
        await driver.aclose()
    assert temp_files(tmp_path) == []


async def test_temp_files_of_a_dead_writer_are_removed_but_live_ones_kept(
    tmp_path: Path,
) -> None:
    live = LocalDriver(tmp_path)
    await live.set("sub/k", b"1")
    started = asyncio.Event()
    release = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield b"in flight"
        started.set()
        await release.wait()

    writing = asyncio.create_task(live.write_stream("sub/slow", slow()))
    await started.wait()
    # A writer that died: an owner file nobody holds a lock on, and its temp files.
    (tmp_path / "#owners" / "deadbeef0000").write_bytes(b"")
    (tmp_path / "sub%2F" / "#tmp.deadbeef0000.1").write_bytes(b"partial")
    (tmp_path / "#tmp.deadbeef0000.2").write_bytes(b"partial")
    other = LocalDriver(tmp_path)
    try:
        assert await other.get("sub/k") is not None  # first use sweeps
        remaining = temp_files(tmp_path)
        assert len(remaining) == 1
        assert remaining[0].startswith(f"#tmp.{live._root.token}.")
        assert not (tmp_path / "#owners" / "deadbeef0000").exists()
        release.set()
        await writing
        entry = await other.get("sub/slow")
        assert entry is not None
        assert entry.value == b"in flight"
    finally:
        await other.aclose()
        await live.aclose()
    assert temp_files(tmp_path) == []
    assert os.listdir(tmp_path / "#owners") == []


async def test_non_durable_mode_stores_the_same_way(tmp_path: Path) -> None:
    driver = LocalDriver(tmp_path, durable=False)
    try:
        etag = await driver.set("k", b"v")
        entry = await driver.get("k")
        assert entry is not None
        assert (entry.value, entry.etag) == (b"v", etag)
    finally:
        await driver.aclose()


async def test_closed_driver_raises_and_close_is_idempotent(tmp_path: Path) -> None:
    driver = LocalDriver(tmp_path)
    await driver.set("k", b"v")
    await driver.aclose()
    await driver.aclose()
    with pytest.raises(StoreClosedError):
        await driver.get("k")
    with pytest.raises(StoreClosedError):
        await driver.set("k", b"v")
    with pytest.raises(StoreClosedError):
        [k async for k in driver.keys()]


async def test_an_unclosed_driver_warns(tmp_path: Path) -> None:
    driver = LocalDriver(tmp_path)
    await driver.set("k", b"v")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del driver
        gc.collect()
    assert any(issubclass(w.category, ResourceWarning) for w in caught)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("file:./data", "{cwd}/data"),
        ("file:data/sub", "{cwd}/data/sub"),
        ("file:///srv/kv", "/srv/kv"),
        ("file://localhost/srv/kv", "/srv/kv"),
        ("file:/srv/my%20kv", "/srv/my kv"),
        ("file:~/kv", "{home}/kv"),
    ],
)
def test_from_url_paths(url: str, expected: str) -> None:
    driver = LocalDriver.from_url(url)
    want = expected.format(cwd=os.getcwd(), home=os.path.expanduser("~"))
    assert str(driver.root) == os.path.abspath(want)
    assert driver.durable is True


def test_from_url_options() -> None:
    assert LocalDriver.from_url("file:./d?durable=false").durable is False
    assert LocalDriver.from_url("file:./d?durable=false", durable=True).durable is True
    for bad in ("file://example.com/x", "file:", "file:./d?fast=1", "redis://x"):
        with pytest.raises(ValueError, match="file"):
            LocalDriver.from_url(bad)


async def test_open_store_finds_the_driver_by_scheme(tmp_path: Path) -> None:
    async with open_store(f"file:{tmp_path}") as store:
        await store.set("k", {"v": 1})
        assert await store.get("k") == {"v": 1}
    assert (tmp_path / "k").read_bytes() == b'{"v":1}'


async def test_large_concurrent_groups_commit_every_write(tmp_path: Path) -> None:
    driver = LocalDriver(tmp_path)
    try:

        async def writer(t: int) -> list[str]:
            return [await driver.set(f"w/{t}/{i % 3}", f"{t}-{i}".encode()) for i in range(9)]

        etags = await asyncio.gather(*(writer(t) for t in range(64)))
        for t in range(64):
            for i in (6, 7, 8):  # the last write of each key
                entry = await driver.get(f"w/{t}/{i % 3}")
                assert entry is not None
                assert (entry.value, entry.etag) == (f"{t}-{i}".encode(), etags[t][i])
        items = [(f"many/{i}", str(i).encode()) for i in range(200)]
        assert len(set(await driver.set_many(items))) == 200
        got = await driver.get_many([k for k, _ in items])
        assert [e.value if e else None for e in got] == [v for _, v in items]
        assert temp_files(tmp_path) == []
    finally:
        await driver.aclose()


async def test_conditional_writes_in_large_groups_lose_nothing(tmp_path: Path) -> None:
    driver = LocalDriver(tmp_path)
    try:
        await driver.set("n", b"0")

        async def increment() -> None:
            for _ in range(5):
                while True:
                    entry = await driver.get("n")
                    assert entry is not None
                    try:
                        await driver.set("n", b"%d" % (int(entry.value) + 1), if_match=entry.etag)
                        break
                    except PreconditionFailedError:
                        continue

        await asyncio.gather(*(increment() for _ in range(40)))
        entry = await driver.get("n")
        assert entry is not None
        assert entry.value == b"200"
    finally:
        await driver.aclose()
