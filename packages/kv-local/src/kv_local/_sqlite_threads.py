"""The SQLite driver's two threads: a reader for what may not run on the event loop, and
one writer that commits every queued write in shared transactions (group commit).

Each thread owns its connection (opened on first use, on that thread). Results are handed
back with one ``call_soon_threadsafe`` per event loop per batch, not one per operation.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from typing import Any

from kv_core import StoreClosedError

from ._sqlite_ops import WriteOp, apply_all
from ._sqlite_schema import begin_immediate

__all__ = ["Reader", "Writer", "acquire_writer", "release_writer"]

#: WriteOp kind of a function run on the writer thread outside any transaction.
CALL = -1
#: While writes queue up, the checkpoint thread copies the WAL into the database after
#: about this many bytes written (a checkpoint syncs the database file: queued writes
#: should not wait for that).
CHECKPOINT_BYTES = 4 << 20
#: SQLite's default automatic checkpoint (pages), used when no write is waiting.
AUTO_CHECKPOINT = 1000
#: What a write adds to the WAL besides its value (a page, roughly).
_PAGE = 4096
#: Jobs (one call's writes) up to this many bytes are committed before larger ones.
SMALL_JOB = 256 << 10
#: Most operations committed in one transaction (bounds the wait of the first one).
MAX_GROUP = 1024

Opener = Callable[[], sqlite3.Connection]
ErrorMapper = Callable[[BaseException, "str | None"], BaseException]


def _wake(futs: list[asyncio.Future[Any]]) -> None:
    for fut in futs:
        if not fut.done():
            fut.set_result(None)


def _fail(fut: asyncio.Future[Any], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)


def _post(loop: asyncio.AbstractEventLoop, fn: Callable[..., None], *args: Any) -> None:
    with contextlib.suppress(RuntimeError):  # the loop was closed meanwhile
        loop.call_soon_threadsafe(fn, *args)


class _Thread:
    """A daemon thread fed by a queue; ``None`` stops it."""

    def __init__(self, name: str, opener: Opener) -> None:
        self._name = name
        self._opener = opener
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stopped = False
        self.conn: sqlite3.Connection | None = None

    @property
    def started(self) -> bool:
        return self._thread is not None

    def _ensure(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._stopped:
                    raise StoreClosedError("the driver is closed", store=self._name)
                if self._thread is None:
                    thread = threading.Thread(target=self._main, name=self._name, daemon=True)
                    thread.start()
                    self._thread = thread

    def _connection(self) -> sqlite3.Connection:
        if self.conn is None:
            self.conn = self._opener()
        return self.conn

    def _main(self) -> None:
        try:
            self._serve()
        finally:
            if self.conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self.conn.close()
                self.conn = None

    def _serve(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        """Finish what is queued, close the connection and end the thread."""
        with self._lock:
            self._stopped = True
            thread = self._thread
        if thread is None:
            return
        self._queue.put(None)
        await asyncio.to_thread(thread.join)

    def stop_soon(self) -> None:
        """Stop without waiting (from ``__del__``)."""
        self._stopped = True
        if self._thread is not None:
            self._queue.put(None)


class Reader(_Thread):
    """Runs ``fn(connection, *args)`` calls one at a time."""

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(conn, *args)`` on the thread and return its result (or raise)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._ensure()
        self._queue.put((fn, args, fut, loop))
        return await fut

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue ``fn(conn, *args)`` without waiting (cleanups); run inline if stopped."""
        try:
            self._ensure()
        except StoreClosedError:
            with contextlib.suppress(Exception):
                fn(None, *args)
            return
        self._queue.put((fn, args, None, None))

    def _serve(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            fn, args, fut, loop = item
            try:
                result = fn(self._connection(), *args)
            except BaseException as exc:  # handed to the caller
                if fut is not None:
                    _post(loop, _fail, fut, exc)
                continue
            if fut is not None:
                _post(loop, _settle, fut, result)


def _settle(fut: asyncio.Future[Any], result: Any) -> None:
    if not fut.done():
        fut.set_result(result)


class _Job:
    __slots__ = ("fut", "loop", "ops")

    def __init__(
        self, ops: Sequence[WriteOp], fut: asyncio.Future[Any], loop: asyncio.AbstractEventLoop
    ) -> None:
        self.ops = ops
        self.fut = fut
        self.loop = loop


def _size(job: _Job) -> int:
    return sum(len(op.value) if isinstance(op.value, bytes) else op.size for op in job.ops)


class Writer(_Thread):
    """Commits queued writes in shared transactions (group commit).

    The thread takes everything queued (up to MAX_GROUP operations), runs each write with
    its own condition inside one ``BEGIN IMMEDIATE`` transaction and commits once: one
    WAL sync for the group. While it waits for the disk, new writes queue up and form
    the next group. If the transaction fails as a whole (a full disk, a lock held past
    the busy timeout), each caller's writes are retried alone, so one bad write fails
    only its caller.
    """

    def __init__(
        self,
        name: str,
        opener: Opener,
        map_error: ErrorMapper,
        checkpointer: Reader,
        busy_timeout: float,
    ) -> None:
        super().__init__(name, opener)
        self._busy_timeout = busy_timeout
        self._map_error = map_error
        self._checkpointer = checkpointer
        self._wal_bytes = 0  # about how much was written since the last checkpoint
        self._checkpointing = threading.Event()
        self._busy = False  # whether the last commit left checkpoints to the thread
        # Etags are unique per write: a random prefix per writer and a sequence number.
        self._etag_prefix = os.urandom(8).hex() + "."
        self._seq = 0

    @property
    def checkpointer(self) -> Reader:
        """The thread that checkpoints while writes queue up."""
        return self._checkpointer

    def _etag(self) -> str:
        self._seq += 1
        return f"{self._etag_prefix}{self._seq:x}"

    async def write(self, ops: Sequence[WriteOp]) -> None:
        """Commit ``ops``; each one's ``result`` or ``error`` is set when this returns."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._ensure()
        self._queue.put(_Job(ops, fut, loop))
        await fut

    async def call(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``fn(conn)`` on the writer thread between groups (opening the file)."""
        op = WriteOp(CALL, "", now=0.0)
        op.result = fn
        await self.write([op])
        if op.error is not None:
            raise op.error
        return op.result

    def _serve(self) -> None:
        stop = False
        while not stop:
            job = self._queue.get()
            if job is None:
                return
            jobs = [job]
            count = len(job.ops)
            while count < MAX_GROUP:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                jobs.append(more)
                count += len(more.ops)
            # Small writes first, in their own transaction: they need not wait while the
            # large values queued beside them are written (concurrent callers' writes
            # have no order to keep; one caller never has two writes queued).
            small = [j for j in jobs if _size(j) <= SMALL_JOB]
            large = [j for j in jobs if _size(j) > SMALL_JOB]
            for group in (small, large):
                if group:
                    self._run(group)
                    self._wake(group)
            self._maybe_checkpoint()

    @staticmethod
    def _wake(jobs: list[_Job]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[Any]]] = {}
        for j in jobs:
            by_loop.setdefault(j.loop, []).append(j.fut)
        for loop, futs in by_loop.items():
            _post(loop, _wake, futs)

    def _run(self, jobs: list[_Job]) -> None:
        calls = [op for j in jobs for op in j.ops if op.kind == CALL]
        for op in calls:  # opening the file: not part of a transaction
            try:
                op.result = op.result(self._connection())
            except BaseException as exc:
                op.error = self._map_error(exc, None)
        writes = [j for j in jobs if any(op.kind != CALL for op in j.ops)]
        if not writes:
            return
        try:
            self._transaction([op for j in writes for op in j.ops])
        except BaseException as exc:
            if len(writes) > 1 and isinstance(exc, Exception):
                for j in writes:  # retried alone: only the culprit fails
                    self._run([j])
                return
            for j in writes:
                for op in j.ops:
                    op.error = self._map_error(exc, op.key)

    def _transaction(self, ops: list[WriteOp]) -> None:
        conn = self._connection()
        begin_immediate(conn, self._busy_timeout)
        try:
            apply_all(conn, ops, self._etag, self._name)
            # Writes waiting: no checkpoint in this commit (the checkpoint thread does it,
            # they commit meanwhile). Nobody waiting: SQLite's own checkpoint at 1,000
            # pages, which completes, so the WAL starts over and stays a small file that is
            # overwritten in place (measured: its syncs are cheaper than a growing file's).
            busy = not self._queue.empty()
            if busy != self._busy:
                conn.execute(f"PRAGMA wal_autocheckpoint={0 if busy else AUTO_CHECKPOINT}")
                self._busy = busy
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise
        if busy:
            self._wal_bytes += sum(_PAGE + len(op.value or b"") + op.size for op in ops)
        else:
            self._wal_bytes = 0

    def _maybe_checkpoint(self) -> None:
        """Hand a checkpoint to the checkpoint thread after a few MiB of busy commits."""
        if self._wal_bytes < CHECKPOINT_BYTES or self._checkpointing.is_set():
            return
        self._wal_bytes = 0
        self._checkpointing.set()
        self._checkpointer.call_soon(_checkpoint, self._checkpointing)


def _checkpoint(conn: sqlite3.Connection | None, running: threading.Event) -> None:
    """Copy the WAL back into the database without blocking anyone (PASSIVE)."""
    try:
        if conn is not None:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    finally:
        running.clear()


class _Shared:
    __slots__ = ("refs", "writer")

    def __init__(self, writer: Writer) -> None:
        self.writer = writer
        self.refs = 0


#: One writer per (file, durable, busy_timeout) in this process, shared by its drivers, so
#: their writes are grouped together instead of taking turns at the file's lock.
_WRITERS: dict[tuple[str, bool, float], _Shared] = {}
_WRITERS_LOCK = threading.Lock()


def acquire_writer(key: tuple[str, bool, float], make: Callable[[], Writer]) -> Writer:
    """The writer of ``key`` (made with ``make`` if there is none); counts one user."""
    with _WRITERS_LOCK:
        shared = _WRITERS.get(key)
        if shared is None:
            shared = _WRITERS[key] = _Shared(make())
        shared.refs += 1
        return shared.writer


def release_writer(key: tuple[str, bool, float], writer: Writer) -> bool:
    """Drop one user of ``writer``; True if it was the last (the caller stops it)."""
    with _WRITERS_LOCK:
        shared = _WRITERS.get(key)
        if shared is None or shared.writer is not writer:
            return False
        shared.refs -= 1
        if shared.refs > 0:
            return False
        del _WRITERS[key]
        return True
