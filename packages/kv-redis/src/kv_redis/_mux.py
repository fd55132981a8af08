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
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from redis.exceptions import BusyLoadingError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ._errors import LostError, NotSentError, TransportError
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


def _alive(conn: AbstractConnection) -> bool:
    # A server that restarted while we were idle leaves an EOF on the reader: detect it
    # before writing so the command goes to a fresh connection instead of being lost.
    reader = getattr(conn, "_reader", None)
    return bool(conn.is_connected) and reader is not None and not reader.at_eof()


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
        if conn is not None and _alive(conn):
            return conn
        if conn is not None:
            await conn.disconnect(nowait=True)
        conn = self._conn = conn or self._factory()
        try:
            await conn.connect()  # type: ignore[no-untyped-call]
            if self._on_connect:
                await conn.send_packed_command(conn.pack_commands(self._on_connect), False)
                for _ in self._on_connect:
                    # An error reply (e.g. SCRIPT not allowed by an ACL) is not fatal: the
                    # command that needs it gets NOSCRIPT later and falls back to EVAL.
                    with contextlib.suppress(ResponseError):
                        await conn.read_response()
        except Exception as exc:
            await conn.disconnect(nowait=True)
            raise _Failed(NotSentError(exc), [], none_sent=True) from exc
        return conn

    async def _roundtrip(self, commands: Sequence[Command]) -> list[Any]:
        conn = await self._connection()
        packed = pack(commands)
        self.round_trips += 1
        self.commands += len(commands)
        try:
            writer = conn._writer
            if writer is None:  # pragma: no cover - _connection() just connected it
                raise ConnectionError("not connected")
            writer.writelines(packed)
            # Small writes go straight to the socket; only wait (bounded) when they did not.
            if writer.transport.get_write_buffer_size():
                await asyncio.wait_for(writer.drain(), conn.socket_timeout)
        except BaseException as exc:
            await conn.disconnect(nowait=True)
            if isinstance(exc, Exception):
                raise _Failed(LostError(exc), [], none_sent=False) from exc
            raise
        # One deadline per round trip (not one timer per reply): when it passes, the
        # transport is aborted, which wakes the pending read with a connection error.
        expired = False
        timer: asyncio.TimerHandle | None = None
        timeout = conn.socket_timeout
        if timeout:
            transport = writer.transport

            def expire() -> None:
                nonlocal expired
                expired = True
                transport.abort()

            timer = asyncio.get_running_loop().call_later(timeout, expire)
        # The parser directly: error replies come back as values (isolated per command)
        # and we skip read_response()'s per-reply timeout and bookkeeping.
        read = conn._read_response_from_parser
        replies: list[Any] = []
        try:
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
            if expired:
                cause = RedisTimeoutError(f"no reply within {timeout} s")
                cause.__cause__ = exc
            raise _Failed(LostError(cause), replies, none_sent=False) from exc
        finally:
            if timer is not None:
                timer.cancel()
        return replies

    async def aclose(self) -> None:
        """Let queued commands finish, then close the connection."""
        if self._flusher is not None:
            await asyncio.wait([self._flusher])
        if self._conn is not None:
            await self._conn.disconnect(nowait=True)
            self._conn = None
