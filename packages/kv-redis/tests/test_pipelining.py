"""Automatic pipelining: coalescing, ordering, isolation, cancellation, bounded concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from kv_core import Store
from kv_redis import RedisDriver


@pytest.fixture
async def driver(kv_url: str, prefix: str) -> AsyncIterator[RedisDriver]:
    d = RedisDriver.from_url(kv_url, prefix=prefix)
    yield d
    await d.clear()
    await d.aclose()


async def test_concurrent_commands_share_round_trips(driver: RedisDriver) -> None:
    await driver.set("k", b"v")
    trips, commands = driver.stats()
    entries = await asyncio.gather(*(driver.get("k") for _ in range(200)))
    assert all(e is not None and e.value == b"v" for e in entries)
    trips2, commands2 = driver.stats()
    assert commands2 - commands == 200
    assert trips2 - trips <= 50  # at least 4 commands per round trip on average


async def test_commands_reach_the_server_in_issue_order(driver: RedisDriver) -> None:
    async def write_then_read(i: int) -> bytes | None:
        write = asyncio.ensure_future(driver.set("k", str(i).encode()))
        read = asyncio.ensure_future(driver.get("k"))
        await write
        entry = await read
        return entry.value if entry else None

    # Every pair is issued back to back, before any reply: each read sees its own write.
    tasks = [asyncio.ensure_future(write_then_read(i)) for i in range(100)]
    seen = await asyncio.gather(*tasks)
    last = await driver.get("k")
    assert last is not None
    assert last.value == b"99"
    # Reads are issued right after their write and before the next task's write.
    assert seen == [str(i).encode() for i in range(100)]


async def test_cancelled_callers_do_not_desynchronise_replies(driver: RedisDriver) -> None:
    await driver.set_many([(f"k{i}", f"v{i}".encode()) for i in range(100)])
    for _ in range(5):
        tasks = [asyncio.ensure_future(driver.get(f"k{i}")) for i in range(100)]
        await asyncio.sleep(0)
        for t in tasks[::3]:
            t.cancel()
        done = await asyncio.gather(*tasks, return_exceptions=True)
        for i, result in enumerate(done):
            if not isinstance(result, BaseException):
                assert result is not None
                assert result.value == f"v{i}".encode()
    # And afterwards every reply still matches its command.
    entries = await asyncio.gather(*(driver.get(f"k{i}") for i in range(100)))
    assert [e.value if e else None for e in entries] == [f"v{i}".encode() for i in range(100)]


async def test_two_thousand_concurrent_operations_succeed(kv_url: str, prefix: str) -> None:
    driver = RedisDriver.from_url(kv_url, prefix=prefix)
    async with Store(driver) as store:

        async def op(i: int) -> object:
            await store.set(f"c/{i}", {"i": i})
            return await store.get(f"c/{i}")

        results = await asyncio.gather(*(op(i) for i in range(2000)))
        assert results == [{"i": i} for i in range(2000)]
        trips, commands = driver.stats()
        assert commands >= 4000
        assert trips < commands / 4
        values = await store.get_many([f"c/{i}" for i in range(2000)])
        assert len(values) == 2000
        assert await store.delete_many([f"c/{i}" for i in range(2000)]) == 2000
        assert await store.clear() == 0
