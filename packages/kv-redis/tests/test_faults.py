"""Faults as permanent tests (issue 12), each printing its figure as ``FAULT kv-redis ...``.

Run with ``-s`` to see the figures; packages/kv-redis/README.md ("Faults") records them.

- a redis-server with ``appendfsync always`` killed with SIGKILL and restarted on the same
  port and folder, twice, under 16 writer and 4 reader tasks sharing one Store;
- the connection killed (``CLIENT KILL``) while a batch of writes is in flight, repeatedly,
  under the same load;
- ``update()`` from several processes x several tasks on one counter: the exact total, on a
  single node and on a 3-master cluster.

Every write is judged by what its caller was told: acknowledged (``set`` returned),
``OutcomeUnknownError`` (may or may not have happened) or ``BackendUnavailableError``
(did not happen). Each key is written by one task only, with increasing versions, so
every read and the final state can be checked against that record exactly.
"""

from __future__ import annotations

import asyncio
import collections
import os
import random
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kv_core import BackendUnavailableError, OutcomeUnknownError, Store
from kv_core.testing import RedisServer, UrlHarness, cross_process_increments, start_redis
from kv_redis import RedisDriver
from redis.asyncio import Redis

# The only errors a caller may see while the server or its connection is gone: a write
# was either not sent or has an unknown outcome; a read has no outcome to be unsure of.
OUTAGE_ERRORS = {
    "set:BackendUnavailableError",
    "set:OutcomeUnknownError",
    "get:BackendUnavailableError",
}

own_server = pytest.mark.skipif(
    bool(os.environ.get("KV_TEST_REDIS_URL")),
    reason="kills or pauses the server, which only works on servers the tests start",
)

# Processes, servers and file systems, not Python: scripts/test runs these on the default
# interpreter only (pyproject: the "system" marker).
pytestmark = pytest.mark.system


class Ledger:
    """What each write's caller was told, per key, to judge every read and the final state.

    Each key is written by one task only, with strictly increasing versions, so:

    - a read started after version ``a`` was acknowledged must return a version in
      ``[a, last version sent when the read returned]``, never one refused with
      BackendUnavailableError (that write never reached the server);
    - the final value of a key is its last acknowledged version, or a later version
      whose write ended in OutcomeUnknownError; absent only if nothing was acknowledged.
    """

    def __init__(self) -> None:
        self.acked: dict[str, int] = {}
        self.sent: dict[str, int] = {}
        self.unknown: collections.defaultdict[str, set[int]] = collections.defaultdict(set)
        self.refused: collections.defaultdict[str, set[int]] = collections.defaultdict(set)
        self.errors: collections.Counter[str] = collections.Counter()
        self.n_acked = 0
        self.n_failed = 0
        self.unknown_applied = 0
        # (key, version read or None, version known acknowledged before, last sent after)
        self.reads: list[tuple[str, int | None, int, int]] = []
        self._progress = asyncio.Event()

    async def write(self, store: Store[Any], key: str, version: int) -> bool:
        """Set ``key`` to ``version`` and record the outcome; True if acknowledged."""
        self.sent[key] = version
        try:
            await store.set(key, {"key": key, "v": version})
        except Exception as exc:
            self._failed("set", exc)
            if isinstance(exc, BackendUnavailableError):
                self.refused[key].add(version)
            else:  # OutcomeUnknownError (anything else fails the test on its own)
                self.unknown[key].add(version)
            return False
        self.acked[key] = version
        self.n_acked += 1
        self._progress.set()
        return True

    async def read(self, store: Store[Any], key: str) -> bool:
        """Read ``key`` and record what came back; True if the read succeeded."""
        floor = self.acked.get(key, 0)
        try:
            value = await store.get(key, default=None)
        except Exception as exc:
            self._failed("get", exc)
            return False
        version = None if value is None else _version(key, value)
        self.reads.append((key, version, floor, self.sent.get(key, 0)))
        return True

    def _failed(self, operation: str, exc: Exception) -> None:
        self.errors[f"{operation}:{type(exc).__name__}"] += 1
        self.n_failed += 1
        self._progress.set()

    async def wait(self, *, acked: int = 0, failed: int = 0) -> None:
        """Wait (no polling) for ``acked`` acknowledged writes and ``failed`` failures in all."""
        while self.n_acked < acked or self.n_failed < failed:
            self._progress.clear()
            # Not a timed assertion: a safety net so a broken store fails instead of hanging.
            await asyncio.wait_for(self._progress.wait(), 120)

    def wrong_reads(self) -> list[tuple[str, int | None, int, int]]:
        """Reads that returned a value no correct store could have returned."""
        wrong = []
        for key, version, floor, ceiling in self.reads:
            if version is None:
                ok = floor == 0
            else:
                ok = floor <= version <= ceiling and version not in self.refused[key]
            if not ok:
                wrong.append((key, version, floor, ceiling))
        return wrong

    def judge(self, final: dict[str, Any]) -> tuple[list[str], list[str]]:
        """Compare the final ``{key: value}`` with the record: (lost keys, wrong keys).

        Also counts ``unknown_applied``: keys whose final value came from a write that
        ended in OutcomeUnknownError (it did happen after all).
        """
        lost, wrong = [], []
        self.unknown_applied = 0
        for key in self.sent:
            version = None if key not in final else _version(key, final[key])
            acked = self.acked.get(key)
            unknown = {u for u in self.unknown[key] if acked is None or u > acked}
            if version in unknown:
                self.unknown_applied += 1
                continue
            if version == acked:
                continue
            if acked is not None and (version is None or version < acked):
                lost.append(key)
            else:
                wrong.append(key)
        return lost, wrong


def _version(key: str, value: Any) -> int:
    # A value stored under another key would be a wrong read too: -1 is never allowed.
    if isinstance(value, dict) and value.get("key") == key and isinstance(value.get("v"), int):
        return int(value["v"])
    return -1


class Load:
    """16 writers and 4 readers on one Store until :meth:`stop`.

    Writer ``w`` alternates a fresh key ``w<w>/n/<i>`` (so every acknowledged write can
    be checked individually at the end) with its own ``w<w>/latest`` (overwritten with
    increasing versions). Readers pick a writer's ``latest`` or one of its fresh keys.
    After a failure a task backs off 5 ms, so a dead server is not hammered in a loop.
    """

    def __init__(self, store: Store[Any], ledger: Ledger, writers: int = 16, readers: int = 4):
        self.store = store
        self.ledger = ledger
        self.counts = [0] * writers
        self._stopping = False
        self._tasks = [asyncio.ensure_future(self._writer(w)) for w in range(writers)]
        self._tasks += [asyncio.ensure_future(self._reader(r)) for r in range(readers)]

    async def _writer(self, w: int) -> None:
        while not self._stopping:
            self.counts[w] += 1
            i = self.counts[w]
            ok = await self.ledger.write(self.store, f"w{w}/n/{i}", i)
            ok = await self.ledger.write(self.store, f"w{w}/latest", i) and ok
            if not ok:
                await asyncio.sleep(0.005)

    async def _reader(self, r: int) -> None:
        rng = random.Random(r)
        while not self._stopping:
            w = rng.randrange(len(self.counts))
            count = self.counts[w]
            key = (
                f"w{w}/latest"
                if count == 0 or rng.random() < 0.5
                else f"w{w}/n/{rng.randint(1, count)}"
            )
            if not await self.ledger.read(self.store, key):
                await asyncio.sleep(0.005)

    async def stop(self) -> None:
        """Stop every task after its current operation; re-raise anything a task raised."""
        self._stopping = True
        await asyncio.gather(*self._tasks)


async def final_state(url: str, prefix: str, keys: list[str]) -> dict[str, Any]:
    """Read ``keys`` with a fresh Store (nothing carried over from the one under test)."""
    async with Store(RedisDriver.from_url(url, prefix=prefix)) as checker:
        return await checker.get_many(keys)


def figure(name: str, ledger: Ledger, lost: int, wrong: int, **extra: object) -> str:
    """The one-line figure a fault test prints."""
    parts = [
        f"acknowledged={ledger.n_acked}",
        f"lost={lost}",
        f"wrong_reads={wrong}",
        f"reads={len(ledger.reads)}",
        f"unknown_outcome={sum(len(v) for v in ledger.unknown.values())}",
        f"unknown_applied={ledger.unknown_applied}",
        *(f"{k}={v}" for k, v in extra.items()),
        f"errors={dict(sorted(ledger.errors.items()))}",
    ]
    return f"FAULT kv-redis {name}: " + " ".join(parts)


# -- 1. kill -9 and restart ------------------------------------------------------------


@pytest.fixture
def aof_server() -> Iterator[RedisServer]:
    server = start_redis(appendonly=True)  # appendonly yes, appendfsync always
    yield server
    server.stop()


@own_server
async def test_kill9_restart_twice_under_writers_and_readers(aof_server: RedisServer) -> None:
    phase = 20_000  # acknowledged writes before each kill and after the last restart
    prefix = "kill9:"
    ledger = Ledger()
    start = time.monotonic()
    async with Store(RedisDriver.from_url(aof_server.url, prefix=prefix)) as store:
        load = Load(store, ledger)
        try:
            for _ in range(2):
                await ledger.wait(acked=ledger.n_acked + phase)
                await asyncio.to_thread(aof_server.kill)  # SIGKILL, mid-traffic
                # Restart only once every writer has had time to notice: 16 refusals.
                await ledger.wait(failed=ledger.n_failed + 16)
                await asyncio.to_thread(aof_server.restart)  # same port, same folder
            # Recovery without intervention: the same Store acknowledges a full phase more.
            await ledger.wait(acked=ledger.n_acked + phase)
        finally:
            await load.stop()
    elapsed = time.monotonic() - start
    # One more SIGKILL with nothing in flight: every write acknowledged during the whole
    # run, including after the last restart, must come back from the AOF.
    await asyncio.to_thread(aof_server.restart)
    lost, wrong = ledger.judge(await final_state(aof_server.url, prefix, list(ledger.sent)))
    wrong_reads = ledger.wrong_reads()
    print(
        "\n"
        + figure(
            "kill9-restart",
            ledger,
            len(lost),
            len(wrong_reads),
            wrong_final=len(wrong),
            kills=3,
            seconds=round(elapsed, 1),
        )
    )
    assert lost == []
    assert wrong == []
    assert wrong_reads == []
    assert set(ledger.errors) <= OUTAGE_ERRORS
    assert ledger.n_failed > 0  # the outages were seen, not slept through


# -- 4. CLIENT KILL while a batch is in flight ---------------------------------------------


@pytest.fixture
def plain_server() -> Iterator[RedisServer]:
    server = start_redis()
    yield server
    server.stop()


async def wait_for_blocked_client(admin: Redis) -> None:
    """Wait until a client other than ``admin`` has a command blocked by CLIENT PAUSE.

    The blocked client is the store's connection with its pipeline on the server: the
    first write of the batch is parked, the rest sit unread in its query buffer.
    """
    me = await admin.client_id()
    deadline = time.monotonic() + 30
    while True:
        clients = await admin.client_list()
        if any(int(c["id"]) != me and "b" in c["flags"] for c in clients):
            return
        assert time.monotonic() < deadline, f"no blocked client: {clients}"
        await asyncio.sleep(0.001)


@own_server
async def test_client_kill_mid_flight(plain_server: RedisServer) -> None:
    """``CLIENT PAUSE WRITE`` parks the store's in-flight pipeline on the server, so each
    ``CLIENT KILL`` is certain to hit writes that were sent and not answered."""
    kills = 10
    prefix = "ckill:"
    ledger = Ledger()
    admin = Redis.from_url(plain_server.url)
    try:
        async with Store(RedisDriver.from_url(plain_server.url, prefix=prefix)) as store:
            load = Load(store, ledger, writers=32)
            try:
                for _ in range(kills):
                    await ledger.wait(acked=ledger.n_acked + 500)
                    await admin.execute_command("CLIENT", "PAUSE", 30_000, "WRITE")
                    await wait_for_blocked_client(admin)
                    failed = ledger.n_failed
                    await admin.execute_command("CLIENT", "KILL", "SKIPME", "yes")
                    await ledger.wait(failed=failed + 1)
                    await admin.execute_command("CLIENT", "UNPAUSE")
                await ledger.wait(acked=ledger.n_acked + 500)
            finally:
                await admin.execute_command("CLIENT", "UNPAUSE")
                await load.stop()
            # A lone batch in flight: set_many with a TTL is one pipeline of SET PX.
            batch = {f"batch/{i}": {"key": f"batch/{i}", "v": 1} for i in range(200)}
            await admin.execute_command("CLIENT", "PAUSE", 30_000, "WRITE")
            pending = asyncio.ensure_future(store.set_many(batch, ttl=600))
            await wait_for_blocked_client(admin)
            await admin.execute_command("CLIENT", "KILL", "SKIPME", "yes")
            await admin.execute_command("CLIENT", "UNPAUSE")
            batch_error = (await asyncio.gather(pending, return_exceptions=True))[0]
            assert batch_error is None or isinstance(batch_error, OutcomeUnknownError)
            # The same store works again at once.
            await store.set_many(batch, ttl=600)
            assert await store.get_many(batch) == batch
    finally:
        await admin.aclose()
    lost, wrong = ledger.judge(await final_state(plain_server.url, prefix, list(ledger.sent)))
    wrong_reads = ledger.wrong_reads()
    print(
        "\n"
        + figure(
            "client-kill",
            ledger,
            len(lost),
            len(wrong_reads),
            wrong_final=len(wrong),
            kills=kills + 1,
            batch=type(batch_error).__name__ if batch_error else "acknowledged",
        )
    )
    assert lost == []
    assert wrong == []
    assert wrong_reads == []
    # Writes in flight when their connection died have an unknown outcome; writes queued
    # behind them go out on a new connection and succeed; reads may be refused.
    assert set(ledger.errors) <= {"set:OutcomeUnknownError", "get:BackendUnavailableError"}
    assert ledger.errors["set:OutcomeUnknownError"] >= kills  # every kill hit writes


# -- 2. update() across processes ----------------------------------------------------------


def test_update_across_processes_exact_total(kv_harness: UrlHarness, topology: str) -> None:
    processes, tasks, increments = 4, 8, 100
    start = time.monotonic()
    total = cross_process_increments(
        kv_harness, processes=processes, tasks=tasks, increments=increments
    )
    elapsed = time.monotonic() - start
    expected = processes * tasks * increments
    print(
        f"\nFAULT kv-redis update-cross-process ({topology}): processes={processes} "
        f"tasks={tasks} increments={increments} total={total} expected={expected} "
        f"lost={expected - total} seconds={elapsed:.1f}"
    )
    assert total == expected
