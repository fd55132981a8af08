"""What runs on a SQLite connection: reads, listing pages, and the writes of a group.

Every function here blocks (disk I/O) and is called on a worker thread, except the small
reads of the fast path (see ``SQLiteDriver``), which bound what they load with ``limit``.
An expired row is treated as missing everywhere; ``now`` is the driver's clock.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import IO, Any

from kv_core import PreconditionFailedError, RawEntry

from ._sqlite_schema import CHUNK, prefix_successor

__all__ = [
    "TOO_LARGE",
    "WriteOp",
    "apply",
    "apply_all",
    "exists",
    "get_many",
    "get_one",
    "keys_page",
]


class _TooLarge:
    """Marker: the value is larger than the caller's ``limit`` (read it on a worker)."""

    def __repr__(self) -> str:
        return "TOO_LARGE"


TOO_LARGE = _TooLarge()

#: Values above ``limit`` come back NULL: ``length()`` of a BLOB reads no overflow page.
_GET = (
    "SELECT CASE WHEN length(value) <= ? THEN value END, etag, expires_at, chunks, rowid "
    "FROM kv WHERE key = ?"
)
#: SQLite before 3.32 allows 999 parameters per statement.
_IN_BATCH = 500


def _joined(conn: sqlite3.Connection, rowid: int) -> bytes:
    rows = conn.execute("SELECT data FROM kv_chunks WHERE entry = ? ORDER BY n", (rowid,))
    return b"".join(row[0] for row in rows.fetchall())


def get_one(
    conn: sqlite3.Connection, key: str, now: float, limit: int
) -> RawEntry | _TooLarge | None:
    """The live entry of ``key``; TOO_LARGE if its value exceeds ``limit`` bytes.

    With ``limit`` < 0 every value is read whole, chunked ones included (in one read
    transaction, so the chunks are those of one write).
    """
    whole = limit < 0
    if whole:
        conn.execute("BEGIN")
    try:
        rows = conn.execute(_GET, (limit if not whole else 1 << 62, key)).fetchall()
        if not rows:
            return None
        value, etag, expires_at, chunks, rowid = rows[0]
        if expires_at is not None and expires_at <= now:
            return None
        if chunks:
            if not whole:
                return TOO_LARGE
            value = _joined(conn, rowid)
        elif value is None:
            return TOO_LARGE
        return RawEntry(value, etag, expires_at)
    finally:
        if whole:
            conn.execute("COMMIT")


def get_many(
    conn: sqlite3.Connection, keys: Sequence[str], now: float, limit: int
) -> list[RawEntry | None] | _TooLarge:
    """Entries of ``keys`` in order (None where missing); TOO_LARGE as in :func:`get_one`."""
    whole = limit < 0
    found: dict[str, RawEntry] = {}
    unique = list(dict.fromkeys(keys))
    conn.execute("BEGIN")  # one snapshot for the whole batch
    try:
        for start in range(0, len(unique), _IN_BATCH):
            part = unique[start : start + _IN_BATCH]
            sql = (
                "SELECT key, CASE WHEN length(value) <= ? THEN value END, etag, expires_at, "
                f"chunks, rowid FROM kv WHERE key IN ({','.join('?' * len(part))})"
            )
            rows = conn.execute(sql, (limit if not whole else 1 << 62, *part)).fetchall()
            for key, small, etag, expires_at, chunks, rowid in rows:
                if expires_at is not None and expires_at <= now:
                    continue
                if chunks or small is None:
                    if not whole:
                        return TOO_LARGE
                    small = _joined(conn, rowid) if chunks else small  # noqa: PLW2901
                found[key] = RawEntry(small, etag, expires_at)
    finally:
        conn.execute("COMMIT")
    return [found.get(key) for key in keys]


def exists(conn: sqlite3.Connection, key: str, now: float) -> bool:
    """True if ``key`` is live (the value is not read)."""
    rows = conn.execute("SELECT expires_at FROM kv WHERE key = ?", (key,)).fetchall()
    return bool(rows) and (rows[0][0] is None or rows[0][0] > now)


def keys_page(
    conn: sqlite3.Connection, prefix: str, after: str | None, now: float, size: int
) -> list[str]:
    """Up to ``size`` live keys starting with ``prefix``, in order, after ``after``.

    A range scan of the primary key's index: ``prefix <= key < successor(prefix)``.
    """
    upper = prefix_successor(prefix)
    sql = ["SELECT key FROM kv WHERE", "key > ?" if after is not None else "key >= ?"]
    args: list[Any] = [after if after is not None else prefix]
    if upper is not None:
        sql.append("AND key < ?")
        args.append(upper)
    sql.append("AND (expires_at IS NULL OR expires_at > ?) ORDER BY key LIMIT ?")
    args += [now, size]
    rows = conn.execute(" ".join(sql), args).fetchall()
    return [row[0] for row in rows if row[0].startswith(prefix)]


# -- writes ---------------------------------------------------------------------------

SET, DELETE, CLEAR, PURGE = range(4)

_UPSERT = (
    "INSERT INTO kv (key, value, etag, expires_at, chunks) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value, etag = excluded.etag, "
    "expires_at = excluded.expires_at, chunks = excluded.chunks"
)
#: An existing row is replaced only if it has expired.
_INSERT_IF_ABSENT = _UPSERT + " WHERE kv.expires_at IS NOT NULL AND kv.expires_at <= ?"
_UPDATE_IF_MATCH = (
    "UPDATE kv SET value = ?, etag = ?, expires_at = ?, chunks = 0 "
    "WHERE key = ? AND etag = ? AND (expires_at IS NULL OR expires_at > ?)"
)
#: Rows deleted per statement by clear() and purge_expired() (bounds one transaction).
DELETE_BATCH = 1000


class WriteOp:
    """One write of a group commit; the writer thread fills ``result`` or ``error``.

    ``kind`` SET stores ``value`` (or, with ``spool``, ``size`` bytes from that file in
    chunk rows); DELETE removes ``key``; CLEAR deletes up to DELETE_BATCH keys under the
    prefix ``key``; PURGE deletes up to DELETE_BATCH expired rows.
    """

    __slots__ = (
        "error",
        "expires_at",
        "if_absent",
        "if_match",
        "key",
        "kind",
        "now",
        "result",
        "size",
        "spool",
        "value",
    )

    def __init__(
        self,
        kind: int,
        key: str,
        value: bytes | None = None,
        *,
        now: float,
        expires_at: float | None = None,
        if_match: str | None = None,
        if_absent: bool = False,
        spool: IO[bytes] | None = None,
        size: int = 0,
    ) -> None:
        self.kind = kind
        self.key = key
        self.value = value
        self.now = now
        self.expires_at = expires_at
        self.if_match = if_match
        self.if_absent = if_absent
        self.spool = spool
        self.size = size
        self.result: Any = None
        self.error: BaseException | None = None


def _refuse(op: WriteOp, store: str) -> None:
    if op.if_absent:
        op.error = PreconditionFailedError("the key already exists", key=op.key, store=store)
    else:
        op.error = PreconditionFailedError(
            "the key was changed or deleted since that etag was read", key=op.key, store=store
        )


def apply(conn: sqlite3.Connection, op: WriteOp, etag: Callable[[], str], store: str) -> None:
    """Run ``op`` inside the caller's transaction; a failed condition changes nothing.

    A precondition failure is recorded in ``op.error`` (only this write fails); a
    ``sqlite3.Error`` propagates and fails the transaction.
    """
    op.error = None
    kind, key, now = op.kind, op.key, op.now
    if kind == SET:
        tag = etag()
        if op.spool is not None:
            _set_chunked(conn, op, tag)
        elif op.if_match is not None:
            args = (op.value, tag, op.expires_at, key, op.if_match, now)
            if conn.execute(_UPDATE_IF_MATCH, args).rowcount != 1:
                return _refuse(op, store)
        elif op.if_absent:
            args2 = (key, op.value, tag, op.expires_at, 0, now)
            if conn.execute(_INSERT_IF_ABSENT, args2).rowcount != 1:
                return _refuse(op, store)
        else:
            conn.execute(_UPSERT, (key, op.value, tag, op.expires_at, 0))
        op.result = tag
    elif kind == DELETE:
        live = "DELETE FROM kv WHERE key = ? AND (expires_at IS NULL OR expires_at > ?)"
        if op.if_match is not None:
            sql = live + " AND etag = ?"
            if conn.execute(sql, (key, now, op.if_match)).rowcount != 1:
                return _refuse(op, store)
            op.result = True
        else:
            removed = conn.execute(live, (key, now)).rowcount == 1
            if not removed:  # an expired row, if any, goes too
                conn.execute("DELETE FROM kv WHERE key = ?", (key,))
            op.result = removed
    elif kind == CLEAR:
        op.result = _clear_batch(conn, key, now)
    else:
        sql = "DELETE FROM kv WHERE rowid IN (SELECT rowid FROM kv WHERE expires_at <= ? LIMIT ?)"
        op.result = conn.execute(sql, (now, DELETE_BATCH)).rowcount
    return None


def _plain(op: WriteOp) -> bool:
    return op.kind == SET and op.spool is None and op.if_match is None and not op.if_absent


def apply_all(
    conn: sqlite3.Connection, ops: Sequence[WriteOp], etag: Callable[[], str], store: str
) -> None:
    """:func:`apply` each op in order; runs of unconditional sets go in one ``executemany``."""
    i, n = 0, len(ops)
    while i < n:
        j = i
        while j < n and _plain(ops[j]):
            j += 1
        if j - i > 1:
            run = ops[i:j]
            for op in run:
                op.error = None
                op.result = etag()
            conn.executemany(
                _UPSERT, [(op.key, op.value, op.result, op.expires_at, 0) for op in run]
            )
            i = j
        else:
            apply(conn, ops[i], etag, store)
            i += 1


def _set_chunked(conn: sqlite3.Connection, op: WriteOp, tag: str) -> None:
    spool = op.spool
    assert spool is not None
    count = -(-op.size // CHUNK)
    conn.execute(_UPSERT, (op.key, None, tag, op.expires_at, count))
    rowid = conn.execute("SELECT rowid FROM kv WHERE key = ?", (op.key,)).fetchall()[0][0]
    spool.seek(0)
    for n in range(count):
        data = spool.read(CHUNK)
        conn.execute("INSERT INTO kv_chunks (entry, n, data) VALUES (?, ?, ?)", (rowid, n, data))


def _clear_batch(conn: sqlite3.Connection, prefix: str, now: float) -> tuple[int, int]:
    """Delete up to DELETE_BATCH keys under ``prefix``: (rows deleted, live among them)."""
    upper = prefix_successor(prefix)
    sql = "SELECT rowid, key, expires_at FROM kv WHERE key >= ?"
    args: list[Any] = [prefix]
    if upper is not None:
        sql += " AND key < ?"
        args.append(upper)
    rows = conn.execute(sql + " LIMIT ?", (*args, DELETE_BATCH)).fetchall()
    rows = [row for row in rows if row[1].startswith(prefix)]
    conn.executemany("DELETE FROM kv WHERE rowid = ?", [(row[0],) for row in rows])
    live = sum(1 for row in rows if row[2] is None or row[2] > now)
    return len(rows), live
