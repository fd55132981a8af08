"""The SQLite file's layout: connections, pragmas, tables, and key ranges for prefixes.

One row per key in ``kv``: the value verbatim in a BLOB (``SELECT value FROM kv WHERE
key = ...`` in the ``sqlite3`` shell prints it), an etag and an absolute expiry. A value
written by ``write_stream`` that is larger than one chunk has ``value`` NULL and its bytes
in ``kv_chunks`` rows of :data:`CHUNK` bytes, in order (``n`` = 0, 1, ...): streaming then
never holds more than a chunk in memory on any Python (incremental BLOB I/O,
``Connection.blobopen``, exists only from 3.11). Triggers drop a key's chunks whenever its
row is rewritten or deleted, so the file stays consistent whoever edits it.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from kv_core import BackendError

__all__ = [
    "CHUNK",
    "SCHEMA_VERSION",
    "connect",
    "begin_immediate",
    "connect_readonly",
    "initialize",
    "prefix_successor",
]

#: Bytes per ``kv_chunks`` row (and the spill threshold of ``write_stream``).
CHUNK = 512 << 10
#: ``PRAGMA user_version`` of the layout below.
SCHEMA_VERSION = 1
#: Upserts need SQLite 3.24 (2018); every Python from 3.10 ships a newer one.
MIN_SQLITE = (3, 24, 0)

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS kv (
        key TEXT NOT NULL PRIMARY KEY,
        value BLOB,
        etag TEXT NOT NULL,
        expires_at REAL,
        chunks INTEGER NOT NULL DEFAULT 0
    )""",
    # Purging expired keys walks this index only (keys without expiry are not in it).
    "CREATE INDEX IF NOT EXISTS kv_expiry ON kv (expires_at) WHERE expires_at IS NOT NULL",
    """CREATE TABLE IF NOT EXISTS kv_chunks (
        entry INTEGER NOT NULL,
        n INTEGER NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (entry, n)
    )""",
    """CREATE TRIGGER IF NOT EXISTS kv_chunks_on_update AFTER UPDATE ON kv
        WHEN old.chunks > 0 BEGIN DELETE FROM kv_chunks WHERE entry = old.rowid; END""",
    """CREATE TRIGGER IF NOT EXISTS kv_chunks_on_delete AFTER DELETE ON kv
        WHEN old.chunks > 0 BEGIN DELETE FROM kv_chunks WHERE entry = old.rowid; END""",
)


def connect(path: str, *, busy_timeout: float, durable: bool) -> sqlite3.Connection:
    """A read-write connection in WAL mode (the caller's thread does the I/O).

    ``isolation_level=None``: transactions are begun explicitly (``BEGIN IMMEDIATE``),
    never implicitly by the sqlite3 module.
    """
    if sqlite3.sqlite_version_info < MIN_SQLITE:
        raise BackendError(
            "kv-local's SQLite store needs SQLite >= 3.24; "
            f"this Python has {sqlite3.sqlite_version}"
        )
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
    )
    try:
        _use_wal(conn, path, busy_timeout)
        # FULL: the WAL is synced at every commit (a power loss keeps acknowledged writes).
        # NORMAL in WAL: synced at checkpoints only (safe against a crash of the process).
        conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
    except BaseException:
        conn.close()
        raise
    return conn


def _use_wal(conn: sqlite3.Connection, path: str, busy_timeout: float) -> None:
    """Switch the file to WAL mode (persistent), waiting up to ``busy_timeout``.

    Two connections switching a new file at once may get SQLITE_BUSY at once (SQLite
    does not call the busy handler where waiting could deadlock), so this retries.
    """
    deadline = time.monotonic() + busy_timeout
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode").fetchall()[0][0]
            if str(mode).lower() != "wal":
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchall()[0][0]
            break
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.005)  # a worker thread, never the event loop
    if str(mode).lower() != "wal":
        raise BackendError(f"cannot switch {path!r} to WAL mode (journal_mode is {mode})")


def connect_readonly(path: str, *, busy_timeout: float = 0.0) -> sqlite3.Connection:
    """A read-only connection (by default one that never waits for a lock)."""
    uri = Path(os.path.abspath(path)).as_uri() + "?mode=ro"
    return sqlite3.connect(
        uri, uri=True, timeout=busy_timeout, isolation_level=None, check_same_thread=False
    )


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc)
    return "locked" in text or "busy" in text


def begin_immediate(conn: sqlite3.Connection, busy_timeout: float) -> None:
    """``BEGIN IMMEDIATE`` (take the write lock), polling for up to ``busy_timeout``.

    The connection's own busy handler is off (``busy_timeout=0``): SQLite's sleeps grow
    to 100 ms, so a writer that waits there keeps missing the short gaps between another
    process's transactions and starves. Polling every 2 ms at most gets its turn.
    Raises the last SQLITE_BUSY error when the time is up.
    """
    try:
        conn.execute("BEGIN IMMEDIATE")
        return
    except sqlite3.OperationalError as exc:
        if not _is_busy(exc):
            raise
    deadline = time.monotonic() + busy_timeout
    delay = 0.0001
    while True:
        time.sleep(delay)  # a worker thread, never the event loop
        delay = min(delay * 2, 0.002)
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or time.monotonic() >= deadline:
                raise


def initialize(conn: sqlite3.Connection, path: str, busy_timeout: float) -> None:
    """Create the tables if missing; refuse a file laid out by a newer kv-local.

    Leaves the connection's busy handler off (see :func:`begin_immediate`).
    """
    conn.execute("PRAGMA busy_timeout=0")
    begin_immediate(conn, busy_timeout)
    try:
        version = conn.execute("PRAGMA user_version").fetchall()[0][0]
        if version > SCHEMA_VERSION:
            raise BackendError(
                f"{path!r} was written by a newer kv-local (layout {version}, this one "
                f"reads {SCHEMA_VERSION}): upgrade kv-local"
            )
        for statement in _SCHEMA:
            conn.execute(statement)
        if version < SCHEMA_VERSION:
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def prefix_successor(prefix: str) -> str | None:
    """The smallest string above every string that starts with ``prefix``; None if none.

    SQLite compares TEXT (BINARY collation) by its UTF-8 bytes, which orders strings by
    code point, so ``prefix <= key < prefix_successor(prefix)`` is exactly "key starts
    with prefix". The last character that is not U+10FFFF is incremented (skipping the
    surrogates, which UTF-8 cannot hold) and what follows it dropped.
    """
    chars = list(prefix)
    while chars:
        code = ord(chars.pop()) + 1
        if code <= 0x10FFFF:
            if 0xD800 <= code <= 0xDFFF:
                code = 0xE000
            return "".join(chars) + chr(code)
    return None
