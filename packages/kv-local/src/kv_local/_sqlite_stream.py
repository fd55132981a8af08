"""Reading one value in pieces, from one snapshot, with bounded memory.

Each stream has its own read-only connection holding a read transaction for as long as
the stream is open, so the pieces are those of one write even if the key is rewritten
meanwhile. A chunked value is read one ``kv_chunks`` row at a time; a value stored whole
in ``kv.value`` through incremental BLOB I/O (``blobopen``, Python 3.11+) or, on 3.10,
whole (it was written whole by ``set``).
"""

from __future__ import annotations

import contextlib
import sqlite3
from typing import Any

from ._sqlite_schema import CHUNK, connect_readonly

__all__ = ["StreamCursor", "stream_close", "stream_next", "stream_open"]


class StreamCursor:
    """Where a stream is: its connection and the next chunk or offset."""

    __slots__ = ("blob", "chunks", "conn", "n", "rowid", "whole")

    def __init__(self, conn: sqlite3.Connection, rowid: int, chunks: int) -> None:
        self.conn = conn
        self.rowid = rowid
        self.chunks = chunks
        self.n = 0
        self.blob: Any = None
        self.whole: bytes | None = None


def stream_open(
    _conn: Any, path: str, key: str, now: float, busy_timeout: float
) -> StreamCursor | None:
    """Open a stream over the live value of ``key``; None if it is missing or expired."""
    conn = connect_readonly(path, busy_timeout=busy_timeout)
    try:
        conn.execute("BEGIN")
        rows = conn.execute(
            "SELECT rowid, chunks, expires_at FROM kv WHERE key = ?", (key,)
        ).fetchall()
        if not rows or (rows[0][2] is not None and rows[0][2] <= now):
            conn.close()
            return None
        cursor = StreamCursor(conn, rows[0][0], rows[0][1])
        if not cursor.chunks:
            if hasattr(conn, "blobopen"):
                cursor.blob = conn.blobopen("kv", "value", cursor.rowid, readonly=True)
            else:
                value = conn.execute(
                    "SELECT value FROM kv WHERE rowid = ?", (cursor.rowid,)
                ).fetchall()
                cursor.whole = value[0][0]
        return cursor
    except BaseException:
        conn.close()
        raise


def stream_next(_conn: Any, cursor: StreamCursor) -> bytes:
    """The next piece (at most CHUNK bytes); empty at the end."""
    if cursor.chunks:
        if cursor.n >= cursor.chunks:
            return b""
        rows = cursor.conn.execute(
            "SELECT data FROM kv_chunks WHERE entry = ? AND n = ?", (cursor.rowid, cursor.n)
        ).fetchall()
        cursor.n += 1
        if not rows:
            raise sqlite3.DatabaseError(f"chunk {cursor.n - 1} of the value is missing")
        data: bytes = rows[0][0]
        return data
    if cursor.blob is not None:
        piece: bytes = cursor.blob.read(CHUNK)
        return piece
    whole, cursor.whole = cursor.whole, b""
    return whole or b""


def stream_close(_conn: Any, cursor: StreamCursor) -> None:
    """End the read transaction and close the stream's connection."""
    if cursor.blob is not None:
        with contextlib.suppress(sqlite3.Error):
            cursor.blob.close()
    with contextlib.suppress(sqlite3.Error):
        cursor.conn.close()
