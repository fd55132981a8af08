"""One SQLite file: Store over SQLiteDriver next to raw ``sqlite3`` and py-key-value's DiskStore.

The raw rows do what a careful asyncio program does by hand with the standard library:
one connection in WAL mode, one thread hop per call (``asyncio.to_thread``; a lock keeps
the threads of concurrent calls from sharing a transaction), an upsert and a commit per
set, one ``executemany`` transaction per batch of 100, one ``SELECT ... IN`` per get_many.

Two groups, each against its own raw baseline: ``(durable)`` with ``synchronous=FULL`` and
kv ``durable=True``; ``(no fsync)`` with ``synchronous=NORMAL`` and kv ``durable=False``,
the class of py-key-value-aio's DiskStore (diskcache: SQLite WAL, ``synchronous=NORMAL``,
called on the event loop). Reads are one group. Reference rows: the folder store
(LocalDriver) for the choice of the CLI's default store. Targets (issue 15): sequential
set and get >= 1.0x DiskStore and >= 1.0x raw; 64 concurrent durable sets >= 10x the
sequential fsync floor (the raw durable sequential set); mixed 50/50 x64 >= 1.5x DiskStore;
get_many/set_many of 100 >= 1.0x raw.

Run: ``cd scripts && uv run python -m benchmarks.sqlite [--quick]`` (``KV_BENCH_DIR`` picks
the file system; ``KV_BENCH_ONLY="durable"`` keeps the workloads naming it).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kv_core import BYTES, Store
from kv_local import LocalDriver, SQLiteDriver

from benchmarks.common import Row, add_ratios, make_value
from benchmarks.peers import pykv_contender
from benchmarks.suite import (
    TASKS,
    Contender,
    Workload,
    run_workloads,
    standard_workloads,
    unavailable,
)

__all__ = ["run"]

BACKEND = "sqlite"
BIG = 8 << 20


class _Raw:
    """A WAL connection used from worker threads, one operation at a time."""

    def __init__(self, path: Path, *, durable: bool) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        self.conn.execute("CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB)")
        self.lock = threading.Lock()

    def put(self, key: str, data: bytes) -> None:
        with self.lock:
            self.conn.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, data))

    def get(self, key: str) -> bytes:
        with self.lock:
            return self.conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchall()[0][0]  # type: ignore[no-any-return]

    def put_many(self, items: list[tuple[str, bytes]]) -> None:
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.executemany("INSERT OR REPLACE INTO kv VALUES (?, ?)", items)
            self.conn.execute("COMMIT")

    def get_many(self, keys: list[str]) -> list[tuple[str, bytes]]:
        sql = f"SELECT key, value FROM kv WHERE key IN ({','.join('?' * len(keys))})"
        with self.lock:
            return self.conn.execute(sql, keys).fetchall()


def _raw(path: Path, *, durable: bool) -> tuple[Contender, _Raw]:
    raw = _Raw(path, durable=durable)

    async def put(key: str, value: Any) -> None:
        await asyncio.to_thread(raw.put, key, json.dumps(value).encode())

    async def get(key: str) -> Any:
        return json.loads(await asyncio.to_thread(raw.get, key))

    async def put_many(mapping: dict[str, Any]) -> None:
        items = [(k, json.dumps(v).encode()) for k, v in mapping.items()]
        await asyncio.to_thread(raw.put_many, items)

    async def get_many(keys: list[str]) -> Mapping[str, Any]:
        rows = await asyncio.to_thread(raw.get_many, keys)
        return {k: json.loads(v) for k, v in rows}

    async def put_bytes(key: str, data: bytes) -> None:
        await asyncio.to_thread(raw.put, key, data)

    async def get_bytes(key: str) -> bytes:
        return await asyncio.to_thread(raw.get, key)

    name = "synchronous=FULL" if durable else "synchronous=NORMAL"
    contender = Contender(
        f"raw sqlite3 WAL {name} (to_thread)",
        put,
        get,
        put_many,
        get_many,
        put_bytes,
        get_bytes,
        raw=True,
    )
    return contender, raw


def _kv(name: str, driver: Any) -> tuple[Contender, Store[Any]]:
    store: Store[Any] = Store(driver)
    blobs = store.with_codec(BYTES)
    contender = Contender(
        f"kv Store({name})",
        store.set,
        store.get,
        store.set_many,
        store.get_many,
        blobs.set,
        blobs.get,
    )
    return contender, store


def _disk(base: Path) -> Contender:
    try:
        from key_value.aio.stores.disk import DiskStore
    except ImportError as exc:
        return unavailable("py-key-value-aio DiskStore", exc)
    return pykv_contender(
        "py-key-value-aio DiskStore",
        DiskStore(directory=base / "diskstore", default_collection="pykv"),
        note="diskcache: SQLite WAL, synchronous=NORMAL, on the loop",
    )


def _merge_reads(into: Workload, other: Workload, raw_name: str) -> None:
    """Reads do not depend on synchronous=: one group, one raw baseline."""
    into.name = into.name.replace(" (durable)", "")
    into.rename(into.raw, raw_name)
    for name, op in other.ops.items():
        if name != other.raw:
            into.add(name, op, note=other.notes.get(name, ""))
    into.setup.update({k: v for k, v in other.setup.items() if k != other.raw})
    into.unsupported.update(other.unsupported)


async def run(quick: bool) -> list[Row]:
    """Measure every workload; rows carry ratios against the raw baselines."""
    value = make_value()
    base = Path(tempfile.mkdtemp(prefix="kv-bench-sqlite-", dir=os.environ.get("KV_BENCH_DIR")))
    stores: list[Store[Any]] = []
    raws: list[_Raw] = []
    try:
        seq = 400 if quick else 2_000
        conc = TASKS * (8 if quick else 32)
        batches = 10 if quick else 40
        raw_durable, r1 = _raw(base / "raw-durable.db", durable=True)
        raw_fast, r2 = _raw(base / "raw-fast.db", durable=False)
        raws += [r1, r2]
        kv_durable, s1 = _kv("SQLiteDriver durable=True", SQLiteDriver(base / "kv-durable.db"))
        kv_fast, s2 = _kv(
            "SQLiteDriver durable=False", SQLiteDriver(base / "kv-fast.db", durable=False)
        )
        folder, s3 = _kv("LocalDriver durable=True", LocalDriver(base / "folder"))
        folder.note = "reference: the folder store (file:)"
        stores += [s1, s2, s3]
        disk = _disk(base)
        durable = standard_workloads(
            [raw_durable, kv_durable, folder],
            tag="(durable)",
            value=value,
            seq=seq,
            conc=conc,
            batches=batches,
        )
        fast = standard_workloads(
            [raw_fast, kv_fast, disk],
            tag="(no fsync)",
            big=os.urandom(BIG),
            big_calls=5 if quick else 10,
            value=value,
            seq=seq,
            conc=conc,
            batches=batches,
        )
        _merge_reads(durable["get"], fast["get"], "raw sqlite3 SELECT (to_thread)")
        _merge_reads(durable["get_many"], fast["get_many"], "raw sqlite3 SELECT IN (to_thread)")
        writers = Workload(f"set 1 KiB x{TASKS} (durable)", conc, concurrent=True)
        for name, op in durable["set"].ops.items():
            writers.add(
                name, op, raw=name == durable["set"].raw, note=durable["set"].notes.get(name, "")
            )
        order = [
            durable["set"],
            fast["set"],
            durable["get"],
            writers,
            durable["mixed"],
            fast["mixed"],
            durable["set_many"],
            fast["set_many"],
            durable["get_many"],
            fast["set_big"],
            fast["get_big"],
        ]
        rows = await run_workloads(BACKEND, order, repeats=3 if quick else 5)
    finally:
        for store in stores:
            await store.aclose()
        for raw in raws:
            raw.conn.close()
        shutil.rmtree(base, ignore_errors=True)
    rows = add_ratios(rows)
    _peer_ratios(rows, durable["set"].name, writers.name)
    return rows


def _peer_ratios(rows: list[Row], durable_set: str, writers: str) -> None:
    """Notes: kv's rows against DiskStore, and the x64 writers against the fsync floor."""
    disk = {r.workload: r.ops_per_s for r in rows if "DiskStore" in r.contender and r.ops_per_s}
    floor = next((r.ops_per_s for r in rows if r.raw and r.workload == durable_set), 0.0)
    for r in rows:
        extra = []
        if r.contender.startswith("kv Store(SQLite") and r.ops_per_s:
            if disk.get(r.workload):
                extra.append(f"{r.ops_per_s / disk[r.workload]:.2f}x DiskStore")
            if r.workload == writers and floor:
                extra.append(f"{r.ops_per_s / floor:.1f}x the sequential fsync floor")
        if extra:
            r.note = "; ".join([r.note, *extra]) if r.note else "; ".join(extra)


if __name__ == "__main__":
    from benchmarks.report import print_rows

    print_rows(asyncio.run(run("--quick" in sys.argv)))
