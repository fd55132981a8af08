"""Automatic pipelining: one connection, commands from many tasks coalesced on the wire.

A :class:`Multiplexer` owns one redis-py connection. When it is idle, a command is sent
and answered right away in the caller's task (no extra hop, so a lone caller pays no
more than plain redis-py). While a round trip is in flight, commands issued by other
tasks queue up; as soon as the wire is free they are written together in one pipeline
and their replies are read back in order. Under load the batches grow by themselves,
which is what makes many concurrent tasks much faster than one command per round trip.

Guarantees:

- Ordering: commands reach the server in the order they were issued (one connection,
  one FIFO queue, one batch on the wire at a time), so two writes to a key land in issue
  order and ``ASKING`` stays next to the command that follows it.
- Error isolation: an error reply fails only its own command; the rest of the batch
  gets its replies.
- A broken transport fails every command not yet answered: with :class:`NotSentError`
  if nothing was written, with :class:`LostError` if it was. Nothing is resent here.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import select
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from redis.exceptions import BusyLoadingError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ._errors import LostError, NotSentError, RefusedError, TransportError
from ._resp import pack

if TYPE_CHECKING:
    from redis.asyncio.connection import AbstractConnection

__all__ = ["Multiplexer"]

Command = Sequence[Any]


class _Failed(Exception):
    """A batch broke after ``partial`` replies were read."""

    def __init__(self, error: TransportError, partial: list[Any], *, none_sent: bool) -> None:
        super().__init__(str(error))
        self.error = error
        self.partial = partial
        self.none_sent = none_sent


#: Write this much, then wait until the socket took it before writing more: bounds the
#: memory a big batch holds in the transport's buffer, and makes each wait a measure of
#: progress. Values larger than this are written in slices of this size, uncopied.
_SLICE = 1 << 20
#: The transport's buffer limits while sending: wait when more than _HIGH is queued, go on
#: below _LOW, so the socket always has the next slice ready (asyncio's defaults, 64 KiB
#: and 16 KiB, let a big batch stall at every slice).
_HIGH, _LOW = 2 * _SLICE, _SLICE // 2


def _probe(transport: asyncio.BaseTransport) -> Callable[[], bool]:
    """A check that the transport's socket has something to read right now.

    An idle connection has nothing to read; if it does (EOF, data, an error), the server
    closed it (restart, ``CLIENT KILL``, idle timeout) and the event loop has not run
    since, so the reader does not know yet. One non-blocking ``poll``, no read.
    """
    sock = transport.get_extra_info("socket")
    fd = sock.fileno() if sock is not None else -1
    if fd < 0:  # pragma: no cover - a transport without a socket: the reader's EOF only
        return lambda: False
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLPRI)
        return lambda: bool(poller.poll(0))
    return lambda: bool(select.select([fd], [], [fd], 0)[0])  # pragma: no cover - Windows


def _count_received(reader: asyncio.StreamReader) -> list[int]:
    """A counter of the bytes ``reader`` receives: ``[total]``.

    Wraps the reader's ``feed_data`` (what the transport's protocol calls with every chunk
    read from the socket), one addition per chunk. The parser's own buffers (hiredis reads
    in small chunks) make the reader's buffer length useless as a progress measure.
    """
    received = [0]
    feed = reader.feed_data

    def feed_data(data: bytes) -> None:
        received[0] += len(data)
        feed(data)

    reader.feed_data = feed_data  # type: ignore[method-assign,assignment]
    return received


class _Watchdog:
    """Abort a round trip when nothing moved for ``timeout`` seconds.

    Progress is any change in: replies read, bytes waiting in our send buffer, bytes
    received (counted by :func:`_count_received`). One timer per round trip, re-armed
    every quarter of the timeout only while the round trip lasts, so a big batch that keeps
    moving never times out and a stalled server is detected after ``timeout`` to
    ``1.25 * timeout``.
    """

    __slots__ = (
        "_handle",
        "_last",
        "_loop",
        "_received",
        "_seen",
        "_timeout",
        "_transport",
        "expired",
        "replies",
    )

    def __init__(
        self,
        timeout: float,
        transport: asyncio.WriteTransport,
        received: list[int],
        replies: list[Any],
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._timeout = timeout
        self._transport = transport
        self._received = received
        self.replies = replies
        self.expired = False
        self._seen = (0, transport.get_write_buffer_size(), received[0])  # as _state()
        self._last = self._loop.time()
        self._handle = self._loop.call_later(timeout / 4, self._tick)

    def _state(self) -> tuple[int, int, int]:
        return len(self.replies), self._transport.get_write_buffer_size(), self._received[0]

    def _tick(self) -> None:
        now = self._loop.time()
        state = self._state()
        if state != self._seen:
            self._seen, self._last = state, now
        elif now - self._last >= self._timeout:
            self.expired = True
            self._transport.abort()  # wakes the pending read or drain with an error
            return
        self._handle = self._loop.call_later(self._timeout / 4, self._tick)

    def cancel(self) -> None:
        self._handle.cancel()


class Multiplexer:
    """Send commands over one connection, pipelining whatever is issued concurrently.

    Args:
        factory: Makes the (not yet connected) redis-py connection; called again to
            reconnect after a failure.
        max_batch: Most commands written in one pipeline.
        on_connect: Commands pipelined once on every new connection before anything else
            (the driver loads its Lua scripts so EVALSHA never meets NOSCRIPT).
    """

    def __init__(
        self,
        factory: Callable[[], AbstractConnection],
        *,
        max_batch: int = 1000,
        on_connect: Sequence[Command] = (),
    ) -> None:
        self._factory = factory
        self._on_connect = list(on_connect)
        self._conn: AbstractConnection | None = None
        self._queue: collections.deque[tuple[Command, asyncio.Future[Any]]] = collections.deque()
        self._busy = False
        self._flusher: asyncio.Task[None] | None = None
        self._max_batch = max_batch
        #: Round trips and commands sent so far (tests use them to see coalescing).
        self._received = [0]  # bytes received on the current connection
        self._readable: Callable[[], bool] = lambda: True  # its socket has data or EOF
        self.round_trips = 0
        self.commands = 0

    async def execute(self, command: Command) -> Any:
        """Send one command and return its reply; raise an error reply as the exception."""
        reply = (await self.execute_many([command]))[0]
        if isinstance(reply, ResponseError):
            raise reply
        return reply

    async def execute_many(self, commands: Sequence[Command]) -> list[Any]:
        """Send commands back to back and return their replies (error replies as values).

        Raises:
            TransportError: The connection failed; see the module docstring.
        """
        if not self._busy:
            # Idle: do the round trip in this task, holding the wire.
            self._busy = True
            try:
                return await self._roundtrip(commands)
            except _Failed as exc:
                error = exc.error
                if len(commands) > 1 and not exc.none_sent:
                    error = LostError(error.cause)  # some of them may have run
                raise error from error.cause
            finally:
                self._release()
        loop = asyncio.get_running_loop()
        futures = []
        for command in commands:
            fut: asyncio.Future[Any] = loop.create_future()
            self._queue.append((command, fut))
            futures.append(fut)
        if len(futures) == 1:
            return [await futures[0]]
        return list(await asyncio.gather(*futures))

    def _release(self) -> None:
        if self._queue:
            # Keep the wire marked busy and hand it to a flusher for what queued meanwhile.
            self._flusher = asyncio.get_running_loop().create_task(self._flush())
        else:
            self._busy = False

    async def _flush(self) -> None:
        batch: list[tuple[Command, asyncio.Future[Any]]] = []
        try:
            while self._queue:
                batch = []
                while self._queue and len(batch) < self._max_batch:
                    item = self._queue.popleft()
                    if not item[1].done():  # cancelled before sending: safe to drop
                        batch.append(item)
                if not batch:
                    continue
                try:
                    replies = await self._roundtrip([command for command, _ in batch])
                except _Failed as exc:
                    replies = exc.partial
                    for i, (_, fut) in enumerate(batch[len(replies) :]):
                        if not fut.done():
                            error = exc.error
                            if i > 0 and not exc.none_sent:
                                # Only the failing command is known not to have run.
                                error = LostError(error.cause)
                            fut.set_exception(type(error)(error.cause))
                for (_, fut), reply in zip(batch, replies, strict=False):
                    if not fut.done():
                        fut.set_result(reply)
        except BaseException as exc:
            # Never leave a caller waiting forever (e.g. the loop is shutting down): what
            # was in flight has an unknown outcome, what was still queued was never sent.
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(LostError(exc))
            while self._queue:
                fut = self._queue.popleft()[1]
                if not fut.done():
                    fut.set_exception(NotSentError(exc))
            raise
        finally:
            self._busy = False
            self._flusher = None

    async def _connection(self) -> AbstractConnection:
        conn = self._conn
        if conn is not None:
            # A connection the server closed while we were idle must be noticed before
            # writing, so the command goes to a fresh connection instead of failing with
            # an unknown outcome: the reader may have seen the EOF already; if the loop
            # has not run since, only the socket knows.
            reader = conn._reader
            if (
                conn.is_connected
                and reader is not None
                and not reader.at_eof()
                and not self._readable()
            ):
                return conn
        if conn is not None:
            await conn.disconnect(nowait=True)
        conn = self._conn = conn or self._factory()
        try:
            await conn.connect()  # type: ignore[no-untyped-call]
            if conn._writer is not None and conn._reader is not None:
                conn._writer.transport.set_write_buffer_limits(high=_HIGH, low=_LOW)
                self._received = _count_received(conn._reader)
                self._readable = _probe(conn._writer.transport)
            if self._on_connect:
                await conn.send_packed_command(conn.pack_commands(self._on_connect), False)
                for _ in self._on_connect:
                    # An error reply (e.g. SCRIPT not allowed by an ACL) is not fatal: the
                    # command that needs it gets NOSCRIPT later and falls back to EVAL.
                    with contextlib.suppress(ResponseError):
                        await conn.read_response()
        except Exception as exc:
            await conn.disconnect(nowait=True)
            refused = isinstance(exc, ResponseError) and not isinstance(exc, BusyLoadingError)
            error = RefusedError(exc) if refused else NotSentError(exc)
            raise _Failed(error, [], none_sent=True) from exc
        return conn

    async def _roundtrip(self, commands: Sequence[Command]) -> list[Any]:
        conn = await self._connection()
        packed = pack(commands)
        self.round_trips += 1
        self.commands += len(commands)
        writer, reader = conn._writer, conn._reader
        if writer is None or reader is None:  # pragma: no cover - just connected
            raise _Failed(NotSentError(ConnectionError("not connected")), [], none_sent=True)
        transport = writer.transport
        replies: list[Any] = []
        # A timeout means the server made no progress for that long, not that the batch
        # was big: one watchdog per round trip (see _Watchdog), no timer per reply.
        timeout = conn.socket_timeout
        watchdog = _Watchdog(timeout, transport, self._received, replies) if timeout else None
        # The parser directly: error replies come back as values (isolated per command)
        # and we skip read_response()'s per-reply timeout and bookkeeping. (``_parser``
        # and its ``read_response()`` exist in every redis-py release we support.)
        read = conn._parser.read_response  # type: ignore[attr-defined]
        sending = True
        try:
            if len(packed) == 1 and len(packed[0]) <= _SLICE:
                writer.write(packed[0])  # the usual case: small commands, one buffer
            else:
                await self._send(writer, packed)
            sending = False
            for _ in commands:
                replies.append(await read())
        except BaseException as exc:
            await conn.disconnect(nowait=True)
            if not isinstance(exc, Exception):
                raise
            if isinstance(exc, BusyLoadingError):
                # The server refused this command while loading its data set.
                raise _Failed(NotSentError(exc), replies, none_sent=False) from exc
            cause: Exception = exc
            if watchdog is not None and watchdog.expired:
                what = "sending" if sending else "replies"
                cause = RedisTimeoutError(f"no progress for {timeout} s ({what})")
                cause.__cause__ = exc
            raise _Failed(LostError(cause), replies, none_sent=False) from exc
        finally:
            if watchdog is not None:
                watchdog.cancel()
        return replies

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, chunks: list[bytes]) -> None:
        """Write ``chunks`` with flow control: at most about one slice waits in memory.

        ``writelines`` would first join everything (a copy of every value) and leave it
        all in the transport's buffer; a batch of a thousand 1 MiB values then held 2 GiB.
        """
        transport = writer.transport
        for chunk in chunks:
            size = len(chunk)
            if size <= _SLICE:
                writer.write(chunk)
            else:
                view = memoryview(chunk)
                for start in range(0, size, _SLICE):
                    writer.write(view[start : start + _SLICE])
                    if transport.get_write_buffer_size() > _HIGH:
                        await Multiplexer._drain(writer)
            if transport.get_write_buffer_size() > _HIGH:
                await Multiplexer._drain(writer)

    @staticmethod
    async def _drain(writer: asyncio.StreamWriter) -> None:
        await writer.drain()
        if writer.transport.is_closing():
            # Aborted (by the watchdog, or the peer reset): drain() may return quietly.
            raise ConnectionError("connection closed while sending")

    async def aclose(self) -> None:
        """Let queued commands finish, then close the connection."""
        if self._flusher is not None:
            await asyncio.wait([self._flusher])
        if self._conn is not None:
            await self._conn.disconnect(nowait=True)
            self._conn = None
