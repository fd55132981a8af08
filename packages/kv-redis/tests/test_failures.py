"""Crashes, stalls and failovers against real redis-server processes."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator

import pytest
from kv_core import BackendError, BackendUnavailableError, OutcomeUnknownError
from kv_core.testing import RedisServer, start_redis, start_redis_cluster
from kv_redis import RedisDriver
from redis.exceptions import TimeoutError as RedisTimeoutError

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("KV_TEST_REDIS_URL")),
    reason="kills and pauses server processes, which only works on servers the tests start",
)

# A write is acknowledged when set() returned; these errors mean "not acknowledged".
_UNACKED = (BackendUnavailableError, OutcomeUnknownError)


@pytest.fixture
def aof_server() -> Iterator[RedisServer]:
    server = start_redis(appendonly=True)  # appendfsync always
    yield server
    server.stop()


async def test_acknowledged_writes_survive_kill_and_restart(aof_server: RedisServer) -> None:
    driver = RedisDriver.from_url(aof_server.url, prefix="crash:", timeout=2)
    acked: dict[str, bytes] = {}
    failures: list[BaseException] = []
    killed = asyncio.Event()
    enough = asyncio.Event()
    after_restart = 0

    async def writer(t: int) -> None:
        nonlocal after_restart
        i = 0
        while after_restart < 400:
            key, value = f"w/{t}/{i}", f"value {t} {i}".encode()
            i += 1
            try:
                await driver.set(key, value)
            except _UNACKED as exc:
                failures.append(exc)
                await asyncio.sleep(0.01)
                continue
            acked[key] = value
            if len(acked) >= 400:
                enough.set()
            if killed.is_set():
                after_restart += 1

    async def crash() -> None:
        await enough.wait()
        await asyncio.to_thread(aof_server.kill)  # SIGKILL while writers are running
        killed.set()
        await asyncio.sleep(0.1)
        await asyncio.to_thread(aof_server.restart)

    await asyncio.wait_for(asyncio.gather(crash(), *(writer(t) for t in range(8))), 60)
    await driver.aclose()

    # The same driver object kept working after the restart: no manual reconnect.
    assert after_restart >= 400
    checker = RedisDriver.from_url(aof_server.url, prefix="crash:")
    try:
        keys = list(acked)
        entries = await checker.get_many(keys)
        lost = [k for k, e in zip(keys, entries, strict=True) if e is None or e.value != acked[k]]
        assert lost == []
    finally:
        await checker.aclose()
    assert all(isinstance(f, _UNACKED) for f in failures)


async def test_a_stalled_server_times_out_with_the_right_error() -> None:
    server = start_redis()
    driver = RedisDriver.from_url(server.url, prefix="stall:", timeout=0.3)
    try:
        await driver.set("k", b"before")
        server.pause()  # SIGSTOP: the socket stays open, nothing answers
        try:
            # 20 concurrent writes: the first is on the wire when the deadline passes, so
            # its outcome is unknown; the others were queued behind it, and the reconnect
            # for them times out in the handshake, so they were never sent.
            results = await asyncio.gather(
                *(driver.set("k" if i == 0 else f"c{i}", b"during") for i in range(20)),
                return_exceptions=True,
            )
            assert isinstance(results[0], OutcomeUnknownError)
            assert isinstance(results[0].__cause__, RedisTimeoutError)
            assert all(isinstance(r, BackendUnavailableError) for r in results[1:])
            with pytest.raises(BackendUnavailableError):
                await driver.get("k")
            fresh = RedisDriver.from_url(server.url, prefix="stall:", timeout=0.3)
            with pytest.raises(BackendUnavailableError):
                await fresh.set("k", b"never")
            await fresh.aclose()
        finally:
            server.resume()
        # The write that timed out was sent before the pause ended: it lands afterwards.
        entry = await driver.get("k")
        assert entry is not None
        assert entry.value in (b"before", b"during")
        await driver.set("k", b"after")
        entry = await driver.get("k")
        assert entry is not None
        assert entry.value == b"after"
    finally:
        await driver.aclose()
        server.stop()


async def test_cluster_failover_under_load(record_property: pytest.RecordProperty) -> None:
    cluster = start_redis_cluster(masters=3, replicas=1)
    driver = RedisDriver.from_url(cluster.url, prefix="failover:", timeout=1)
    acked: dict[str, bytes] = {}
    errors: list[BaseException] = []
    killed_at: list[float] = []
    enough = asyncio.Event()
    acked_after_kill = 0
    try:
        victim = cluster.primaries()[1]

        async def writer(t: int) -> None:
            nonlocal acked_after_kill
            i = 0
            deadline = time.monotonic() + 40
            while acked_after_kill < 1500 and time.monotonic() < deadline:
                key, value = f"f/{t}/{i}", f"v{i}".encode()
                i += 1
                try:
                    await driver.set(key, value)
                except BackendError as exc:
                    errors.append(exc)
                    await asyncio.sleep(0.05)
                    continue
                acked[key] = value
                if len(acked) >= 1000:
                    enough.set()
                if killed_at:
                    acked_after_kill += 1

        async def kill() -> None:
            await enough.wait()
            await asyncio.to_thread(victim.kill)
            killed_at.append(time.monotonic())

        await asyncio.gather(kill(), *(writer(t) for t in range(16)))
        assert killed_at
        # Every writer's keys spread over all slots, so 1,500 writes acknowledged after the
        # kill include writes to the failed-over slots: the cluster recovered.
        assert acked_after_kill >= 1500
        await asyncio.to_thread(cluster.wait_ok)

        checker = RedisDriver.from_url(cluster.url, prefix="failover:", timeout=2)
        try:
            keys = list(acked)
            entries = await checker.get_many(keys)
        finally:
            await checker.aclose()
        lost = [k for k, e in zip(keys, entries, strict=True) if e is None or e.value != acked[k]]
        record_property("acknowledged_writes", len(acked))
        record_property("acknowledged_writes_lost", len(lost))
        print(f"\nfailover: {len(acked)} acked writes, {len(lost)} lost, {len(errors)} errors")
        # Replication is asynchronous: only writes acknowledged in the last moments before
        # the kill can be missing from the promoted replica.
        assert len(lost) < len(acked) * 0.05
        odd = {str(e) for e in errors if not isinstance(e, _UNACKED)}
        assert not odd
    finally:
        await driver.aclose()
        cluster.stop()


async def test_a_restart_while_idle_costs_no_error(aof_server: RedisServer) -> None:
    driver = RedisDriver.from_url(aof_server.url, prefix="idle:", timeout=2)
    try:
        await driver.set("k", b"v1")
        trips = driver.stats()[0]
        await asyncio.to_thread(aof_server.restart)  # the loop sees the old socket's EOF
        # Nothing is written on the dead connection: a new one is opened first.
        await driver.set("k", b"v2")
        entry = await driver.get("k")
        assert entry is not None
        assert entry.value == b"v2"
        assert driver.stats()[0] - trips == 2
    finally:
        await driver.aclose()


async def test_a_connection_killed_while_idle_is_replaced_before_writing() -> None:
    # Issue 12 item 6: a set issued right after CLIENT KILL got OutcomeUnknownError 6 times
    # in 6 although nothing ran. The kill is sent by a blocking client, so the event loop
    # has not run since and the reader has not seen the EOF: only the socket knows.
    import redis

    server = start_redis()
    driver = RedisDriver.from_url(f"{server.url}?client_name=kv-idle-victim", prefix="kill:")
    killer = redis.Redis.from_url(server.url)
    try:
        for i in range(6):
            await driver.set("k", b"%d" % i)
            victims = [c for c in killer.client_list() if c["name"] == "kv-idle-victim"]
            assert len(victims) == 1
            killer.client_kill_filter(_id=victims[0]["id"])  # blocks the loop meanwhile
            trips = driver.stats()[0]
            await driver.set("k", b"after %d" % i)  # not OutcomeUnknownError
            assert driver.stats()[0] - trips == 1  # sent once, on a new connection
            entry = await driver.get("k")
            assert entry is not None
            assert entry.value == b"after %d" % i
    finally:
        killer.close()
        await driver.aclose()
        server.stop()
