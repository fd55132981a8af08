"""SQLiteDriver: the whole store in one SQLite file (standard library ``sqlite3``)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import os
import sqlite3
import tempfile
import threading
import time
import warnings
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from typing import IO, Any

from kv_core import (
    NOT_MODIFIED,
    Capability,
    KeyNotFoundError,
    NotModified,
    RawEntry,
    StoreClosedError,
)

from . import _sqlite_ops as ops
from ._sqlite_errors import map_sqlite_error
from ._sqlite_schema import CHUNK, connect, connect_readonly, initialize
from ._sqlite_stream import StreamCursor, stream_close, stream_next, stream_open
from ._sqlite_threads import Reader, Writer, acquire_writer, release_writer
from ._sqlite_url import parse_sqlite_url

__all__ = ["SQLiteDriver"]

#: Keys fetched per listing page.
PAGE = 512
#: Largest value the fast path reads on the event loop's thread (bytes).
FAST_READ_LIMIT = 4096
#: Largest get_many the fast path runs on the event loop's thread (keys).
FAST_MANY = 128


def _check_expiry(expires_at: float | None) -> None:
    if expires_at is not None and not math.isfinite(expires_at):
        raise ValueError(f"expires_at must be a finite number of seconds, got {expires_at!r}")


def _open_writer(path: str, busy_timeout: float, durable: bool) -> sqlite3.Connection:
    conn = connect(path, busy_timeout=busy_timeout, durable=durable)
    try:
        initialize(conn, path, busy_timeout)
    except BaseException:
        conn.close()
        raise
    return conn


def _open_fast(_conn: Any, path: str) -> sqlite3.Connection:
    return connect_readonly(path)


def _close(_conn: Any, conn: sqlite3.Connection) -> None:
    conn.close()


class SQLiteDriver:
    """Stores every key in one SQLite file: values verbatim, safe across processes.

    Args:
        path: The database file; created (with its folder) on first use. Other programs
            may share it (tables ``kv`` and ``kv_chunks``).
        durable: ``True`` (default) is ``synchronous=FULL``: every acknowledged write
            survives a power loss. ``False`` is ``synchronous=NORMAL`` in WAL mode: safe
            against a crash of the process, not of the machine (diskcache's class).
        busy_timeout: Seconds a write waits for another process's lock before failing
            with BackendUnavailableError (nothing written, safe to retry).
        fast_reads: Run small reads (values up to 4 KiB, get_many of up to 128 keys,
            listing pages) on the event loop's thread through a read-only connection that
            never waits for a lock; a busy file or a larger value goes to the reader
            thread. ``False`` sends every read to the reader thread.
        clock: Wall-clock seconds used for expiry (tests inject a manual clock).

    Example:
        >>> driver = SQLiteDriver("./state.db")   # or SQLiteDriver.from_url("sqlite:./state.db")
    """

    capabilities = (
        Capability.GET_MANY
        | Capability.SET_MANY
        | Capability.DELETE_MANY
        | Capability.CLEAR
        | Capability.STREAM
        | Capability.CONDITIONAL_GET
        | Capability.EXISTS
    )

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durable: bool = True,
        busy_timeout: float = 5.0,
        fast_reads: bool = True,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if not (isinstance(busy_timeout, (int, float)) and busy_timeout >= 0):
            raise ValueError(f"busy_timeout must be seconds >= 0, got {busy_timeout!r}")
        self.path = os.path.abspath(path)
        self.durable = durable
        self.busy_timeout = float(busy_timeout)
        self.fast_reads = fast_reads
        self.clock: Callable[[], float] = clock or time.time
        self.name = f"sqlite:{self.path}"
        # The threads must not reference the driver, or an unclosed one is never collected.
        self._map = functools.partial(
            _map, store=self.name, path=self.path, busy_timeout=self.busy_timeout
        )
        open_rw = functools.partial(
            connect, self.path, busy_timeout=self.busy_timeout, durable=durable
        )
        self._reader = Reader(self.name, open_rw)
        self._writer_key = (self.path, durable, self.busy_timeout)
        self._writer = acquire_writer(
            self._writer_key,
            functools.partial(
                Writer,
                self.name,
                functools.partial(_open_writer, self.path, self.busy_timeout, durable),
                self._map,
                Reader(self.name, open_rw),
                self.busy_timeout,
            ),
        )
        self._opened = False
        self._fast: sqlite3.Connection | None = None
        self._fast_thread = -1
        self._closed = False

    @classmethod
    def from_url(cls, url: str, **options: Any) -> SQLiteDriver:
        """Open ``sqlite:./state.db``, ``sqlite:state.db``, ``sqlite:///abs/state.db``.

        Query options (``?durable=false&busy_timeout=10&fast_reads=false``) and keyword
        ``options`` (which win) go to the constructor.
        """
        path, query = parse_sqlite_url(url)
        return cls(path, **{**query, **options})

    def __repr__(self) -> str:
        return f"SQLiteDriver({self.path!r}, durable={self.durable})"

    def connect(self) -> sqlite3.Connection:
        """A new ``sqlite3`` connection to the file, for what the driver does not offer.

        It blocks: use it in a thread. Tables: ``kv(key, value, etag, expires_at, chunks)``
        and ``kv_chunks(entry, n, data)``; write through the driver to keep etags exact.
        """
        return sqlite3.connect(self.path, timeout=self.busy_timeout)

    def _check(self) -> None:
        if self._closed:
            raise StoreClosedError("the driver is closed", store=self.name)

    async def _open(self) -> None:
        """Create the file and tables (writer thread), then the fast-path connection."""
        self._check()
        await self._writer.call(lambda conn: None)
        if self.fast_reads and self._fast is None:
            fast = await self._call(_open_fast, self.path)
            if self._fast is None and not self._closed:
                self._fast, self._fast_thread = fast, threading.get_ident()
            else:
                self._reader.call_soon(_close, fast)
        self._opened = True

    async def _call(self, fn: Callable[..., Any], *args: Any, key: str | None = None) -> Any:
        """Run ``fn(conn, *args)`` on the reader thread, errors mapped."""
        try:
            return await self._reader.call(fn, *args)
        except (sqlite3.Error, OSError) as exc:
            raise self._map(exc, key) from exc

    async def _read(self, fn: Callable[..., Any], *args: Any, key: str | None = None) -> Any:
        """``fn(conn, *args, limit)``: on the loop's thread if small, else the reader."""
        self._check()
        if not self._opened:
            await self._open()
        fast = self._fast
        if fast is not None and threading.get_ident() == self._fast_thread:
            try:
                result = fn(fast, *args, FAST_READ_LIMIT)
            except sqlite3.Error:  # busy (a checkpoint, a recovery): the reader waits
                if fast.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        fast.execute("ROLLBACK")
            else:
                if result is not ops.TOO_LARGE:
                    return result
        return await self._call(fn, *args, -1, key=key)

    # -- reads -----------------------------------------------------------------------

    async def get(self, key: str) -> RawEntry | None:
        """Return the live entry for ``key``, or None if it is missing or expired."""
        result: RawEntry | None = await self._read(ops.get_one, key, self.clock(), key=key)
        return result

    async def get_many(self, keys: Sequence[str]) -> list[RawEntry | None]:
        """``get`` of each key, from one snapshot."""
        keys = list(keys)
        if not keys:
            self._check()
            return []
        if len(keys) > FAST_MANY:
            self._check()
            if not self._opened:
                await self._open()
            many: list[RawEntry | None] = await self._call(ops.get_many, keys, self.clock(), -1)
            return many
        result: list[RawEntry | None] = await self._read(ops.get_many, keys, self.clock())
        return result

    async def exists(self, key: str) -> bool:
        """True if ``key`` is live; the value is not read."""
        result: bool = await self._read(_exists, key, self.clock(), key=key)
        return result

    async def get_if_changed(self, key: str, etag: str) -> RawEntry | NotModified | None:
        """NOT_MODIFIED if ``key`` still has ``etag`` (value not read), else the entry."""
        now = self.clock()
        current = await self._read(_etag_of, key, now, key=key)
        if current == etag:
            return NOT_MODIFIED
        return await self.get(key)

    async def keys(self, prefix: str = "") -> AsyncIterator[str]:
        """Yield every live key starting with ``prefix``, in pages of a key range."""
        now = self.clock()
        after: str | None = None
        while True:
            page: list[str] = await self._read(_page, prefix, after, now)
            for key in page:
                yield key
            if len(page) < PAGE:
                return
            after = page[-1]

    # -- writes ----------------------------------------------------------------------

    async def _commit(self, batch: list[ops.WriteOp]) -> None:
        self._check()
        if not self._opened:
            await self._open()
        await self._writer.write(batch)

    async def set(
        self,
        key: str,
        value: bytes,
        *,
        expires_at: float | None = None,
        if_match: str | None = None,
        if_absent: bool = False,
    ) -> str:
        """Store ``value`` under ``key`` atomically and return its new etag."""
        _check_expiry(expires_at)
        op = ops.WriteOp(
            ops.SET,
            key,
            bytes(value),
            now=self.clock(),
            expires_at=expires_at,
            if_match=if_match,
            if_absent=if_absent,
        )
        await self._commit([op])
        if op.error is not None:
            raise op.error
        return str(op.result)

    async def set_many(
        self, items: Sequence[tuple[str, bytes]], *, expires_at: float | None = None
    ) -> list[str]:
        """Store every item in one transaction."""
        _check_expiry(expires_at)
        now = self.clock()
        batch = [
            ops.WriteOp(ops.SET, k, bytes(v), now=now, expires_at=expires_at) for k, v in items
        ]
        if not batch:
            self._check()
            return []
        await self._commit(batch)
        for op in batch:
            if op.error is not None:
                raise op.error
        return [str(op.result) for op in batch]

    async def delete(self, key: str, *, if_match: str | None = None) -> bool:
        """Remove ``key``; True if a live key was removed."""
        op = ops.WriteOp(ops.DELETE, key, now=self.clock(), if_match=if_match)
        await self._commit([op])
        if op.error is not None:
            raise op.error
        return op.result is True

    async def delete_many(self, keys: Sequence[str]) -> int:
        """Remove every key in one transaction; the number of live keys removed."""
        now = self.clock()
        batch = [ops.WriteOp(ops.DELETE, k, now=now) for k in keys]
        if not batch:
            self._check()
            return 0
        await self._commit(batch)
        for op in batch:
            if op.error is not None:
                raise op.error
        return sum(1 for op in batch if op.result is True)

    async def clear(self, prefix: str = "") -> int:
        """Delete every key starting with ``prefix``; the number of live keys removed.

        Runs in transactions of up to 1,000 rows, so other writers are not held up.
        """
        now = self.clock()
        count = 0
        while True:
            op = ops.WriteOp(ops.CLEAR, prefix, now=now)
            await self._commit([op])
            if op.error is not None:
                raise op.error
            deleted, live = op.result
            count += int(live)
            if deleted < ops.DELETE_BATCH:
                return count

    async def purge_expired(self) -> int:
        """Delete the rows of every expired key (through the expiry index); how many.

        Expired keys are already invisible; this only gives their space back to the file.
        """
        now = self.clock()
        count = 0
        while True:
            op = ops.WriteOp(ops.PURGE, "", now=now)
            await self._commit([op])
            if op.error is not None:
                raise op.error
            purged = int(op.result)
            count += purged
            if purged < ops.DELETE_BATCH:
                return count

    # -- streams ---------------------------------------------------------------------

    async def read_stream(self, key: str, *, chunk_size: int = 1 << 16) -> AsyncIterator[bytes]:
        """Yield the value of ``key`` in chunks of at most ``chunk_size`` (bounded memory)."""
        self._check()
        if not self._opened:
            await self._open()
        cursor: StreamCursor | None = await self._call(
            stream_open, self.path, key, self.clock(), self.busy_timeout, key=key
        )
        if cursor is None:
            raise KeyNotFoundError("the key does not exist", key=key, store=self.name)
        try:
            while True:
                self._check()
                piece: bytes = await self._call(stream_next, cursor, key=key)
                if not piece:
                    return
                for start in range(0, len(piece), chunk_size):
                    yield piece[start : start + chunk_size]
        finally:
            self._reader.call_soon(stream_close, cursor)

    async def write_stream(
        self, key: str, chunks: AsyncIterable[bytes], *, expires_at: float | None = None
    ) -> str:
        """Store the chunks atomically; memory stays bounded by about one chunk.

        Up to 512 KiB the value is stored whole; beyond, the chunks are spilled to an
        unnamed temp file next to the database, then copied into ``kv_chunks`` rows in one
        transaction (so a slow producer never holds the write lock).
        """
        _check_expiry(expires_at)
        self._check()
        if not self._opened:
            await self._open()  # creates the folder the spill file goes to
        buffer = bytearray()
        spool: IO[bytes] | None = None
        size = 0
        try:
            async for chunk in chunks:
                buffer += chunk
                if len(buffer) >= CHUNK:
                    if spool is None:
                        spool = await self._spill_file()
                    await asyncio.to_thread(spool.write, buffer)
                    size += len(buffer)
                    buffer = bytearray()
            if spool is None:
                op = ops.WriteOp(
                    ops.SET, key, bytes(buffer), now=self.clock(), expires_at=expires_at
                )
            else:
                if buffer:
                    await asyncio.to_thread(spool.write, buffer)
                    size += len(buffer)
                    buffer = bytearray()
                await asyncio.to_thread(spool.flush)
                op = ops.WriteOp(
                    ops.SET, key, now=self.clock(), expires_at=expires_at, spool=spool, size=size
                )
            await self._commit([op])
        except OSError as exc:
            raise self._map(exc, key) from exc
        finally:
            if spool is not None:
                await asyncio.to_thread(spool.close)
        if op.error is not None:
            raise op.error
        return str(op.result)

    async def _spill_file(self) -> IO[bytes]:
        folder = os.path.dirname(self.path)
        return await asyncio.to_thread(tempfile.TemporaryFile, dir=folder, prefix=".kv-stream-")

    # -- lifecycle -------------------------------------------------------------------

    async def aclose(self) -> None:
        """Finish queued writes and close the connections. Idempotent."""
        if self._closed:
            return
        self._closed = True
        fast, self._fast = self._fast, None
        if fast is not None:
            self._reader.call_soon(_close, fast)
        await self._reader.stop()
        if release_writer(self._writer_key, self._writer):  # the last driver of the file
            await self._writer.stop()
            await self._writer.checkpointer.stop()

    async def __aenter__(self) -> SQLiteDriver:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __del__(self) -> None:
        if getattr(self, "_closed", True):
            return
        self._closed = True
        if self._writer.started or self._reader.started:
            warnings.warn(f"unclosed {self!r}", ResourceWarning, stacklevel=2)
        self._reader.stop_soon()
        if release_writer(self._writer_key, self._writer):
            self._writer.stop_soon()
            self._writer.checkpointer.stop_soon()


def _map(
    exc: BaseException, key: str | None, *, store: str, path: str, busy_timeout: float
) -> BaseException:
    return map_sqlite_error(exc, key=key, store=store, path=path, busy_timeout=busy_timeout)


def _exists(conn: sqlite3.Connection, key: str, now: float, _limit: int) -> bool:
    return ops.exists(conn, key, now)


def _etag_of(conn: sqlite3.Connection, key: str, now: float, _limit: int) -> str | None:
    rows = conn.execute("SELECT etag, expires_at FROM kv WHERE key = ?", (key,)).fetchall()
    if not rows or (rows[0][1] is not None and rows[0][1] <= now):
        return None
    etag: str = rows[0][0]
    return etag


def _page(
    conn: sqlite3.Connection, prefix: str, after: str | None, now: float, _limit: int
) -> list[str]:
    return ops.keys_page(conn, prefix, after, now, PAGE)
