"""Big values through the multiplexer: a timeout means "no progress", not "a big batch"
(issue 11 item 4). Counts errors on a healthy server; nothing here is timed."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest
from kv_core import BYTES, KVError, Store
from kv_core.testing import RedisServer, start_redis
from kv_redis import RedisDriver

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(
        bool(os.environ.get("KV_TEST_REDIS_URL")),
        reason="moves a gigabyte: only on servers the tests start",
    ),
]

MIB = 1 << 20


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    server = start_redis()
    yield server
    server.stop()


async def test_a_thousand_concurrent_1mib_sets_within_a_1s_timeout(server: RedisServer) -> None:
    # Before: the whole pipelined batch (1 GiB) had one 1 s deadline: 999 of 1,000 writes
    # failed with OutcomeUnknownError although every one of them landed.
    store = Store(RedisDriver.from_url(server.url, prefix="big:", timeout=1.0), codec=BYTES)
    values = [bytes([i % 251]) * MIB for i in range(4)]
    try:
        await store.set("warm", b"")  # the first caller goes alone; the rest queue
        results = await asyncio.gather(
            *(store.set("big", values[i % 4]) for i in range(1000)), return_exceptions=True
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        print(f"\nBIG kv-redis 1,000 x 1 MiB sets, timeout 1 s: {len(errors)} errors")
        assert errors == []
        assert await store.get("big") == values[999 % 4]  # issue order is kept

        reads = await asyncio.gather(*(store.get("big") for _ in range(64)), return_exceptions=True)
        failed = [r for r in reads if isinstance(r, KVError)]
        assert failed == []
        assert all(r == values[999 % 4] for r in reads)
    finally:
        await store.clear()
        await store.aclose()


async def test_a_value_bigger_than_a_slice_round_trips(server: RedisServer) -> None:
    store = Store(RedisDriver.from_url(server.url, prefix="big:", timeout=1.0), codec=BYTES)
    value = os.urandom(5 * MIB + 7)  # written in 1 MiB slices, never joined
    try:
        await store.set("odd", value)
        assert await store.get("odd") == value
    finally:
        await store.clear()
        await store.aclose()
