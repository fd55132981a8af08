"""SQLiteDriver beyond the shared suites: the file's layout, group commit, locks, streams."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import warnings
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from kv_core import (
    BYTES,
    NOT_MODIFIED,
    BackendError,
    BackendUnavailableError,
    PreconditionFailedError,
    RawEntry,
    Store,
    open_store,
)
from kv_core._registry import INSTALL_HINTS
from kv_local import SQLiteDriver, _sqlite_threads
from kv_local._sqlite_schema import CHUNK, begin_immediate, connect_readonly, prefix_successor
from kv_local._sqlite_url import parse_sqlite_url

from ._helpers import Clock

KEY_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=6
) | st.sampled_from(["", "a", "\U0010ffff", "a\U0010ffff", "\ud7ff", "\ue000", "\x00"])


def _utf8_between(low: str, key: str, high: str | None) -> bool:
    return low.encode() <= key.encode() and (high is None or key.encode() < high.encode())


@given(prefix=KEY_TEXT, rest=KEY_TEXT, other=KEY_TEXT)
@example(prefix="a\U0010ffff", rest="", other="b")
@example(prefix="\U0010ffff\U0010ffff", rest="x", other="\U0010ffff")
@example(prefix="\ud7ff", rest="", other="\ue000")
@example(prefix="", rest="", other="")
def test_prefix_range_is_exactly_startswith(prefix: str, rest: str, other: str) -> None:
    """prefix <= key < successor(prefix), in SQLite's (UTF-8) order, iff key starts with prefix."""
    high = prefix_successor(prefix)
    assert _utf8_between(prefix, prefix + rest, high)
    assert _utf8_between(prefix, other, high) == other.startswith(prefix)


async def test_listing_by_prefix_at_the_edges_of_unicode(tmp_path: Path) -> None:
    keys = ["a", "a\U0010ffff", "a\U0010ffffz", "b", "a\ud7ff", "a\ud7ffq", "a\ue000", "\U0010ffff"]
    async with SQLiteDriver(tmp_path / "s.db") as driver:
        for key in keys:
            await driver.set(key, b"v")
        for prefix in ["", "a", "a\U0010ffff", "a\ud7ff", "a\ue000", "\U0010ffff", "c"]:
            listed = [k async for k in driver.keys(prefix)]
            assert sorted(listed) == sorted(k for k in keys if k.startswith(prefix)), prefix


async def test_listing_pages_through_many_keys(tmp_path: Path) -> None:
    async with SQLiteDriver(tmp_path / "s.db") as driver:
        await driver.set_many([(f"p/{i:05d}", b"x") for i in range(1300)])
        await driver.set_many([(f"q/{i}", b"x") for i in range(10)])
        assert [k async for k in driver.keys("p/")] == [f"p/{i:05d}" for i in range(1300)]
        assert await driver.clear("p/") == 1300
        assert len([k async for k in driver.keys()]) == 10


async def test_values_are_verbatim_in_the_file_with_etag_and_expiry(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    clock = Clock()
    key = "u/" + "é😀\x00/" * 250 + "x" * 22  # 1,024 characters, a NUL among them
    assert len(key) == 1024
    async with Store(SQLiteDriver(path, clock=clock)) as store:
        etag = await store.set(key, {"name": "Ada"}, ttl=60)
        await store.with_codec(BYTES).set("raw", b"\x00\xff")
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT key, value, etag, expires_at, chunks FROM kv ORDER BY key")
        got = rows.fetchall()
    conn.close()
    assert got == [
        ("raw", b"\x00\xff", got[0][2], None, 0),
        (key, b'{"name":"Ada"}', etag, clock.now + 60, 0),
    ]


async def test_query_plans_use_the_indexes(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    async with SQLiteDriver(path) as driver:
        await driver.set("k", b"v")
    conn = sqlite3.connect(path)
    try:
        purge = conn.execute(
            "EXPLAIN QUERY PLAN SELECT rowid FROM kv WHERE expires_at <= 5 LIMIT 10"
        ).fetchall()
        listing = conn.execute(
            "EXPLAIN QUERY PLAN SELECT key FROM kv WHERE key >= 'a' AND key < 'b' "
            "AND (expires_at IS NULL OR expires_at > 1) ORDER BY key LIMIT 5"
        ).fetchall()
    finally:
        conn.close()
    assert "kv_expiry" in str(purge)
    assert "sqlite_autoindex_kv_1" in str(listing)
    assert "key>? AND key<?" in str(listing)


async def test_purge_expired_removes_only_expired_rows(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    clock = Clock()
    async with SQLiteDriver(path, clock=clock) as driver:
        await driver.set_many([(f"e/{i}", b"x") for i in range(2500)], expires_at=clock.now + 5)
        await driver.set("keep", b"x", expires_at=clock.now + 100)
        await driver.set("forever", b"x")
        clock.now += 10
        assert await driver.purge_expired() == 2500
        assert await driver.purge_expired() == 0
        assert sorted([k async for k in driver.keys()]) == ["forever", "keep"]
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM kv").fetchall() == [(2,)]
    conn.close()


def _hold_write_lock(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN IMMEDIATE")
    return conn


async def test_concurrent_writes_share_a_transaction_and_a_failed_condition_fails_alone(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    async with SQLiteDriver(path) as driver:
        stale = await driver.set("c", b"0")
        await driver.set("c", b"1")
        commits_before = _commit_count(path)
        # Another connection holds the write lock: the writer waits in its first group
        # while every other write queues up behind it.
        blocker = await asyncio.to_thread(_hold_write_lock, path)
        writes = [asyncio.ensure_future(driver.set(f"k{i}", b"v")) for i in range(40)]
        conditional = asyncio.ensure_future(driver.set("c", b"2", if_match=stale))
        absent = asyncio.ensure_future(driver.set("k0", b"again", if_absent=True))
        await asyncio.sleep(0)  # every task has queued its write
        assert not any(t.done() for t in writes)
        await asyncio.to_thread(blocker.execute, "COMMIT")
        await asyncio.to_thread(blocker.close)
        etags = await asyncio.gather(*writes)
        with pytest.raises(PreconditionFailedError):
            await conditional
        with pytest.raises(PreconditionFailedError):
            await absent
        assert len(set(etags)) == 40
        assert (await driver.get("c")) is not None
        assert (await driver.get("c")).value == b"1"  # type: ignore[union-attr]
        assert (await driver.get("k0")).value == b"v"  # type: ignore[union-attr]
        # 42 writes, in at most two transactions (the one that waited, and the rest).
        assert _commit_count(path) - commits_before <= 2


def _commit_count(path: Path) -> int:
    """Transactions committed to the file so far (each commit ends with one commit frame)."""
    conn = sqlite3.connect(path)
    try:
        # data_version changes for another connection's commits only: count via the WAL
        # instead, one salt-checked commit frame per transaction, by walking frames.
        return _wal_commits(Path(f"{path}-wal"))
    finally:
        conn.close()


def _wal_commits(wal: Path) -> int:
    data = wal.read_bytes() if wal.exists() else b""
    if len(data) < 32:
        return 0
    page = int.from_bytes(data[8:12], "big")
    salt = data[16:24]
    commits, offset = 0, 32
    while offset + 24 + page <= len(data):
        header = data[offset : offset + 24]
        if header[8:16] != salt:
            break
        commits += int.from_bytes(header[4:8], "big") != 0  # "size after commit" is set
        offset += 24 + page
    return commits


async def test_a_lock_held_past_busy_timeout_is_backend_unavailable_and_writes_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    async with SQLiteDriver(path, busy_timeout=0.2) as driver:
        await driver.set("k", b"old")
        blocker = await asyncio.to_thread(_hold_write_lock, path)
        try:
            with pytest.raises(BackendUnavailableError) as info:
                await driver.set("k", b"new")
        finally:
            await asyncio.to_thread(blocker.execute, "ROLLBACK")
            await asyncio.to_thread(blocker.close)
        message = str(info.value)
        assert "locked by another connection" in message
        assert "busy_timeout=0.2" in message
        assert "try again" in message
        assert info.value.key == "k"
        assert isinstance(info.value.__cause__, sqlite3.OperationalError)
        assert (await driver.get("k")).value == b"old"  # type: ignore[union-attr]
        await driver.set("k", b"new")  # the lock is gone: it works again


async def test_fast_reads_fall_back_to_the_reader_thread(tmp_path: Path) -> None:
    async with SQLiteDriver(tmp_path / "s.db") as driver:
        await driver.set("small", b"s")
        await driver.set("large", b"L" * 100_000)  # above the fast path's limit
        assert driver._fast is not None
        # A read-only connection to another, empty file: every fast read fails there
        # (no such table), and the reader thread must answer instead.
        sqlite3.connect(tmp_path / "empty.db").close()
        driver._fast = connect_readonly(str(tmp_path / "empty.db"))
        try:
            assert (await driver.get("small")).value == b"s"  # type: ignore[union-attr]
            assert await driver.exists("small")
            assert [e and e.value for e in await driver.get_many(["small", "x"])] == [b"s", None]
            assert [k async for k in driver.keys()] == ["large", "small"]
        finally:
            driver._fast.close()
            driver._fast = None
        assert (await driver.get("large")).value == b"L" * 100_000  # type: ignore[union-attr]


async def test_a_read_sees_every_write_acknowledged_before_it(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    async with SQLiteDriver(path) as one, SQLiteDriver(path) as two:
        for i in range(50):
            await (one if i % 2 else two).set("k", str(i).encode())
            for reader in (one, two):
                assert (await reader.get("k")).value == str(i).encode()  # type: ignore[union-attr]


async def _chunks(parts: list[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_a_stream_reads_one_write_even_if_the_key_is_rewritten_meanwhile(
    tmp_path: Path,
) -> None:
    async with SQLiteDriver(tmp_path / "s.db") as driver:
        first = [bytes([i]) * 300_000 for i in range(10)]  # 3 MB: chunk rows
        await driver.write_stream("big", _chunks(first))
        path = tmp_path / "s.db"
        conn = sqlite3.connect(path)
        rows = conn.execute("SELECT value IS NULL, chunks FROM kv WHERE key = 'big'").fetchall()
        chunk_rows = conn.execute("SELECT count(*), max(length(data)) FROM kv_chunks").fetchall()
        conn.close()
        assert rows == [(1, -(-3_000_000 // CHUNK))]
        assert chunk_rows == [(rows[0][1], CHUNK)]
        stream = driver.read_stream("big", chunk_size=100_000)
        got = [await anext(stream)]
        await driver.set("big", b"replaced")  # the chunk rows of the first write go away
        got += [chunk async for chunk in stream]
        assert b"".join(got) == b"".join(first)
        assert all(len(c) <= 100_000 for c in got)
        assert (await driver.get("big")).value == b"replaced"  # type: ignore[union-attr]
        conn = sqlite3.connect(path)
        assert conn.execute("SELECT count(*) FROM kv_chunks").fetchall() == [(0,)]
        conn.close()
        # A value stored whole streams too, in bounded pieces.
        await driver.set("whole", b"w" * 1_500_000)
        pieces = [c async for c in driver.read_stream("whole", chunk_size=1 << 20)]
        assert b"".join(pieces) == b"w" * 1_500_000
        assert max(map(len, pieces)) <= 1 << 20


async def test_write_stream_that_raises_writes_nothing(tmp_path: Path) -> None:
    async def failing() -> AsyncIterator[bytes]:
        yield b"x" * (CHUNK + 1)
        raise RuntimeError("producer failed")

    async with SQLiteDriver(tmp_path / "s.db") as driver:
        await driver.set("k", b"old")
        with pytest.raises(RuntimeError):
            await driver.write_stream("k", failing())
        assert (await driver.get("k")).value == b"old"  # type: ignore[union-attr]
    assert [p.name for p in os.scandir(tmp_path) if "kv-stream" in p.name] == []


@pytest.mark.parametrize(("durable", "level"), [(True, 2), (False, 1)])
async def test_durable_is_synchronous_full_and_not_durable_is_normal_in_wal(
    tmp_path: Path, durable: bool, level: int
) -> None:
    async with SQLiteDriver(tmp_path / "s.db", durable=durable) as driver:
        await driver.set("k", b"v")
        conn = driver._writer.conn
        assert conn is not None
        assert conn.execute("PRAGMA synchronous").fetchall() == [(level,)]
        assert conn.execute("PRAGMA journal_mode").fetchall() == [("wal",)]


def test_sqlite_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_sqlite_url("sqlite:./state.db") == ("./state.db", {})
    assert parse_sqlite_url("sqlite:state.db") == ("state.db", {})
    assert parse_sqlite_url("sqlite:///srv/a%20b.db") == ("/srv/a b.db", {})
    assert parse_sqlite_url("sqlite://localhost/srv/x.db")[0] == "/srv/x.db"
    monkeypatch.setenv("HOME", str(tmp_path))
    assert parse_sqlite_url("sqlite:~/x.db")[0] == str(tmp_path / "x.db")
    assert parse_sqlite_url("sqlite:x.db?durable=false&fast_reads=0&busy_timeout=2.5") == (
        "x.db",
        {"durable": False, "fast_reads": False, "busy_timeout": 2.5},
    )
    for bad in ("sqlite:", "sqlite://host/x.db", "sqlite:x.db?nope=1", "sqlite:x.db?durable=maybe"):
        with pytest.raises(ValueError):
            parse_sqlite_url(bad)
    # Without kv-local installed, open_store("sqlite:...") names the package to install.
    assert INSTALL_HINTS["sqlite"] == "kv-local"
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:./sub/state.db?durable=false")
    assert isinstance(store.driver, SQLiteDriver)
    assert store.driver.path == str(tmp_path / "sub" / "state.db")
    assert not store.driver.durable


async def test_a_file_that_is_not_a_database_fails_clearly(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a database, " * 100)
    async with SQLiteDriver(path) as driver:
        with pytest.raises(BackendError) as info:
            await driver.set("k", b"v")
        assert "not a SQLite database" in str(info.value)
        assert str(path) in str(info.value)
    assert path.read_text() == "not a database, " * 100
    async with SQLiteDriver(tmp_path) as driver:  # a folder
        with pytest.raises(BackendError, match="cannot open the database file"):
            await driver.get("k")


async def test_a_file_from_a_newer_layout_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version=99")
    conn.close()
    async with SQLiteDriver(path) as driver:
        with pytest.raises(BackendError, match="newer kv-local"):
            await driver.get("k")


async def test_other_tables_in_the_file_are_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO users VALUES (1, 'Ada')")
    conn.commit()
    conn.close()
    async with Store(SQLiteDriver(path)) as store:
        await store.set("k", [1])
        assert await store.clear() == 1
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT name FROM users").fetchall() == [("Ada",)]
    conn.close()


def test_threads_do_not_keep_an_unclosed_driver_alive(tmp_path: Path) -> None:
    import gc
    import weakref

    async def use() -> weakref.ref[SQLiteDriver]:
        driver = SQLiteDriver(tmp_path / "s.db")
        await driver.set("k", b"v")
        return weakref.ref(driver)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ref = asyncio.run(use())
        gc.collect()
    assert ref() is None
    assert any("unclosed SQLiteDriver" in str(w.message) for w in caught)


async def test_drivers_of_one_file_group_their_writes_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s.db"
    waiting = threading.Event()  # set when the writer starts waiting for the lock

    def begin(conn: sqlite3.Connection, busy_timeout: float) -> None:
        waiting.set()
        begin_immediate(conn, busy_timeout)

    monkeypatch.setattr(_sqlite_threads, "begin_immediate", begin)
    one, two = SQLiteDriver(path), SQLiteDriver(path)
    other_mode = SQLiteDriver(path, durable=False)
    try:
        await one.set("warm", b"v")
        await two.set("warm", b"v")
        await other_mode.set("warm", b"v")
        before = _commit_count(path)
        blocker = await asyncio.to_thread(_hold_write_lock, path)
        # A first write takes the writer, which then waits for the lock ...
        waiting.clear()
        first = asyncio.ensure_future(one.set("first", b"v"))
        await asyncio.to_thread(waiting.wait)
        # ... while both drivers queue 40 more.
        writes = [
            asyncio.ensure_future((one if i % 2 else two).set(f"k{i}", b"v")) for i in range(40)
        ]
        await asyncio.sleep(0)  # every task has queued its write
        await asyncio.to_thread(blocker.execute, "COMMIT")
        await asyncio.to_thread(blocker.close)
        await asyncio.gather(first, *writes)
        # The first write, then the 40 of both drivers together (with a writer per
        # driver, each driver's writes would be a transaction of their own: 3).
        assert _commit_count(path) - before == 2
    finally:
        await one.aclose()
    # The writer outlives the driver that closed while another one still uses it.
    await two.set("after", b"v")
    assert (await two.get("after")).value == b"v"  # type: ignore[union-attr]
    await two.aclose()
    await other_mode.aclose()
    async with SQLiteDriver(path) as again:  # a new writer once every driver closed
        await again.set("again", b"v")
        assert sorted([k async for k in again.keys()]) == sorted(
            ["after", "again", "first", "warm", *(f"k{i}" for i in range(40))]
        )


async def test_get_if_changed_compares_the_etag_without_reading_the_value(tmp_path: Path) -> None:
    clock = Clock()
    async with SQLiteDriver(tmp_path / "s.db", clock=clock) as driver:
        assert await driver.get_if_changed("k", "nothing") is None
        etag = await driver.set("k", b"v1", expires_at=clock.now + 10)
        assert await driver.get_if_changed("k", etag) is NOT_MODIFIED
        same_bytes = await driver.set("k", b"v1", expires_at=clock.now + 20)  # TTL only
        assert same_bytes != etag
        entry = await driver.get_if_changed("k", etag)
        assert entry == RawEntry(b"v1", same_bytes, clock.now + 20)
        clock.now += 30
        assert await driver.get_if_changed("k", same_bytes) is None  # expired


async def test_a_write_that_fails_fails_alone_in_its_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key SQLite cannot store (a lone surrogate, which the Store would have refused)
    fails its own write only, not the other writes committed in the same transaction."""
    path = tmp_path / "s.db"
    waiting = threading.Event()

    def begin(conn: sqlite3.Connection, busy_timeout: float) -> None:
        waiting.set()
        begin_immediate(conn, busy_timeout)

    monkeypatch.setattr(_sqlite_threads, "begin_immediate", begin)
    async with SQLiteDriver(path) as driver:
        await driver.set("warm", b"v")
        blocker = await asyncio.to_thread(_hold_write_lock, path)
        waiting.clear()
        first = asyncio.ensure_future(driver.set("first", b"v"))
        await asyncio.to_thread(waiting.wait)  # the writer waits at the lock
        good = [asyncio.ensure_future(driver.set(f"good{i}", b"v")) for i in range(5)]
        bad = asyncio.ensure_future(driver.set("bad\ud800", b"v"))
        await asyncio.sleep(0)  # all queued: they form the next group
        await asyncio.to_thread(blocker.execute, "COMMIT")
        await asyncio.to_thread(blocker.close)
        await asyncio.gather(first, *good)
        with pytest.raises(UnicodeEncodeError):
            await bad
        assert sorted([k async for k in driver.keys("good")]) == [f"good{i}" for i in range(5)]
