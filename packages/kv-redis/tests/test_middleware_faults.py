"""kv_core.middleware's Timeout, Retry and Fallback around a real Redis with real faults.

Each test starts its own redis-server (it is paused, has connections killed, or is
stopped) and prints its figure as ``FAULT kv-redis middleware ...``:

- a stalled server (SIGSTOP): reads give up at the read deadline and fall back to the
  secondary; a write gives up at the write deadline with OutcomeUnknownError, is not
  retried, and is not sent to the secondary;
- a connection killed (CLIENT KILL) while a read's reply is held back (by a loopback
  proxy), then while a write is parked on the server (CLIENT PAUSE WRITE): the read is
  retried on a new connection and succeeds, the write's unknown outcome is reported, not
  retried;
- a stopped server: reads and writes are refused with BackendUnavailableError (reads
  served by the secondary); when the server comes back between two attempts, Retry
  completes both.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import pytest
from kv_core import (
    BackendUnavailableError,
    MemoryDriver,
    OutcomeUnknownError,
    Store,
)
from kv_core.middleware import Fallback, Retry, Timeout
from kv_core.testing import RedisServer, start_redis
from kv_redis import RedisDriver
from redis.asyncio import Redis

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(
        bool(os.environ.get("KV_TEST_REDIS_URL")),
        reason="pauses, kills or stops the server, which only works on servers the tests start",
    ),
]

READ, WRITE = 0.2, 0.3


async def wait_for_blocked_client(admin: Redis) -> None:
    """Wait until a client other than ``admin`` has a command parked by CLIENT PAUSE."""
    me = await admin.client_id()
    deadline = time.monotonic() + 30
    while True:
        clients = await admin.client_list()
        if any(int(c["id"]) != me and "b" in c["flags"] for c in clients):
            return
        assert time.monotonic() < deadline, f"no blocked client: {clients}"
        await asyncio.sleep(0.001)


async def test_a_stalled_server_reads_fall_back_and_a_late_write_is_unknown() -> None:
    server = start_redis()
    backup = MemoryDriver()
    await Store(backup).set("k", "from the secondary")
    redis = RedisDriver.from_url(server.url, prefix="mw-stall:", timeout=10)
    retry = Retry(Timeout(redis, read=READ, write=WRITE), attempts=2, base_delay=0)
    fallback = Fallback(retry, backup)
    store: Store[Any] = Store(fallback)
    try:
        await store.set("k", "before")
        server.pause()  # SIGSTOP: connections stay open, nothing answers
        try:
            started = time.monotonic()
            assert await store.get("k") == "from the secondary"
            read_s = time.monotonic() - started
            assert retry.retries == 1  # the late read was retried once, then fell back
            assert fallback.fallbacks == 1
            started = time.monotonic()
            with pytest.raises(OutcomeUnknownError) as info:
                await store.set("k", "during")
            write_s = time.monotonic() - started
            assert isinstance(info.value.__cause__, TimeoutError | asyncio.TimeoutError)
            assert retry.retries == 1  # never retried: it may have landed
            assert await Store(backup).get("k") == "from the secondary"  # no split brain
        finally:
            server.resume()
        checker = RedisDriver.from_url(server.url, prefix="mw-stall:")
        try:
            landed = await Store(checker).get("k")
        finally:
            await checker.aclose()
        assert landed in ("before", "during")
        await store.set("k", "after")  # the same stack works again at once
        assert await store.get("k") == "after"
    finally:
        await store.aclose()
        server.stop()
    print(
        f"\nFAULT kv-redis middleware stalled-server: read fell back after {read_s:.2f} s "
        f"(2 x {READ} s deadline), write OutcomeUnknownError after {write_s:.2f} s "
        f"({WRITE} s deadline), the unknown write "
        f"{'landed' if landed == 'during' else 'did not land'} once the server resumed"
    )


class ReplyHoldingProxy:
    """A loopback TCP proxy in front of Redis that can keep replies from reaching the client.

    With ``holding`` set, replies are swallowed (and ``held`` is set): the command ran, its
    answer never arrives, so the client waits on a live connection until that connection
    is killed on the server (CLIENT KILL), which the proxy passes on by closing the
    client's side too.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.holding = False
        self.held = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, replies: bool) -> None:
            try:
                while data := await src.read(65536):
                    if replies and self.holding:
                        self.held.set()
                        continue
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                # One side gone: the other goes too (a killed connection, end to end).
                for w in (writer, up_writer):
                    w.transport.abort()

        for coro in (pump(reader, up_writer, False), pump(up_reader, writer, True)):
            task = asyncio.ensure_future(coro)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def test_a_killed_connection_read_is_retried_a_write_is_reported_unknown() -> None:
    server = start_redis()
    admin = Redis.from_url(server.url)
    proxy = ReplyHoldingProxy(server.port)
    await proxy.start()
    victim = "kv-mw-victim"
    redis = RedisDriver.from_url(
        f"redis://127.0.0.1:{proxy.port}/0?client_name={victim}", prefix="mw-kill:"
    )
    retry = Retry(redis, attempts=3, base_delay=0)
    store: Store[Any] = Store(retry)
    try:
        await store.set("k", "value")
        # A read whose reply is held: it ran, the answer is on its way, then CLIENT KILL.
        # The driver itself resends a read once on a new connection: that one is held and
        # killed too, so the driver gives up (BackendUnavailableError) and Retry takes over.
        proxy.holding = True
        pending = asyncio.ensure_future(store.get("k"))
        await proxy.held.wait()
        proxy.held.clear()
        await admin.execute_command("CLIENT", "KILL", "SKIPME", "yes")
        await proxy.held.wait()
        proxy.holding = False  # connections made from now on work normally
        await admin.execute_command("CLIENT", "KILL", "SKIPME", "yes")
        assert await pending == "value"
        read_retries = retry.retries
        assert read_retries >= 1
        # A write parked on the server (CLIENT PAUSE WRITE) and its connection killed: it
        # was sent, so its outcome is unknown, and it is not retried.
        await admin.execute_command("CLIENT", "PAUSE", 30_000, "WRITE")
        try:
            pending_write = asyncio.ensure_future(store.set("w", "maybe"))
            await wait_for_blocked_client(admin)
            await admin.execute_command("CLIENT", "KILL", "SKIPME", "yes")
        finally:
            await admin.execute_command("CLIENT", "UNPAUSE")
        with pytest.raises(OutcomeUnknownError):
            await pending_write
        assert retry.retries == read_retries
        landed = await store.get("w", None)
        assert landed in (None, "maybe")
    finally:
        await store.aclose()
        await admin.aclose()
        await proxy.close()
        server.stop()
    print(
        f"\nFAULT kv-redis middleware client-kill: read retried {read_retries}x and returned "
        f"the value; write OutcomeUnknownError, 0 retries, landed={landed is not None}"
    )


class RestartingRetry(Retry):
    """Restarts the stopped server during the first backoff: "it came back" on cue."""

    def __init__(self, inner: RedisDriver, server: RedisServer) -> None:
        super().__init__(inner, attempts=3, base_delay=0)
        self.server = server
        self.down = False

    async def _backoff(self, attempt: int) -> None:
        if self.down:
            await asyncio.to_thread(self.server.restart)
            self.down = False
        await super()._backoff(attempt)


async def test_a_stopped_server_refuses_safely_and_retry_finishes_when_it_returns() -> None:
    server = start_redis()
    backup = MemoryDriver()
    await Store(backup).set("k", "from the secondary")
    redis = RedisDriver.from_url(server.url, prefix="mw-stop:", timeout=2)
    retry = RestartingRetry(redis, server)
    fallback = Fallback(retry, backup)
    store: Store[Any] = Store(fallback)
    try:
        await store.set("k", "primary")
        await asyncio.to_thread(server.kill)  # the server is gone: connection refused
        assert await store.get("k") == "from the secondary"
        refused_read_retries = retry.retries
        assert refused_read_retries == 2  # all three attempts refused, then the fallback
        with pytest.raises(BackendUnavailableError) as info:
            await store.set("k", "while down")
        assert not isinstance(info.value, OutcomeUnknownError)
        assert await Store(backup).get("k") == "from the secondary"
        # Now the server comes back during the first backoff of each call.
        retry.down = True
        before = retry.retries
        await store.set("k", "after restart")  # refused once, retried, written once
        assert retry.retries - before == 1
        assert await store.get("k") == "after restart"
        assert fallback.fallbacks == 1
    finally:
        await store.aclose()
        server.stop()
    print(
        "\nFAULT kv-redis middleware stopped-server: reads refused 3/3 then served by the "
        "secondary, writes BackendUnavailableError (secondary untouched), a write retried "
        "once across the restart and landed"
    )
