"""Local folder: Store over LocalDriver next to raw file baselines and peer libraries.

The raw rows do what a careful asyncio program does by hand, one thread hop per call so
the event loop never blocks (``asyncio.to_thread``; a batch is one hop for 100 files):

- read: ``Path.read_bytes()`` + ``json.loads``;
- write (no fsync): temp file + ``os.replace``;
- write (durable): temp file, ``fsync``, ``os.replace``, ``fsync`` of the folder (the
  guarantee LocalDriver gives with ``durable=True``).

Writes are measured in two groups, each against its own raw baseline: ``(durable)`` with
kv-local ``durable=True`` and py-key-value-aio ``FileTreeStore`` (which fsyncs the file,
not the folder), and ``(no fsync)`` with kv-local ``durable=False`` and asyncblobdict's
``LocalFileAdapter`` (which writes the file in place: a crash can leave half a value).
Reads are one group. Reference rows (not baselines) show the dispatch strategies the
driver was chosen from. Targets (issue 3): reads >= 1.0x raw; durable writes >= 1.0x the
fsync baseline sequentially and >= 3x it with 64 concurrent writers.

Run: ``cd scripts && uv run python -m benchmarks.local [--quick]`` (``KV_BENCH_DIR`` picks
the folder's file system; ``KV_BENCH_ONLY="durable"`` keeps the workloads naming it).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiofiles
from kv_core import BYTES, Store
from kv_local import LocalDriver

from benchmarks.common import Row, add_ratios, make_value
from benchmarks.peers import blobdict_contender, pykv_contender
from benchmarks.suite import (
    TASKS,
    Contender,
    Workload,
    run_workloads,
    standard_workloads,
    unavailable,
)

__all__ = ["run"]

BACKEND = "local"
BIG = 8 << 20


def _write(folder: str, name: str, data: bytes, *, durable: bool, dir_sync: bool = True) -> None:
    path = os.path.join(folder, name)
    tmp = f"{path}.{os.getpid()}.{id(data)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        os.write(fd, data)
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if durable and dir_sync:
        _sync_dir(folder)


def _sync_dir(folder: str) -> None:
    dfd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _write_many(folder: str, items: dict[str, bytes], *, durable: bool) -> None:
    for name, data in items.items():
        _write(folder, name, data, durable=durable, dir_sync=False)
    if durable:
        _sync_dir(folder)  # one folder flush covers every rename


def _read_many(folder: str, names: list[str]) -> dict[str, bytes]:
    return {name: Path(folder, name).read_bytes() for name in names}


def _raw(folder: Path, *, durable: bool) -> Contender:
    folder.mkdir()
    where = str(folder)

    async def put(key: str, value: Any) -> None:
        await asyncio.to_thread(_write, where, key, json.dumps(value).encode(), durable=durable)

    async def get(key: str) -> Any:
        return json.loads(await asyncio.to_thread(Path(where, key).read_bytes))

    async def put_many(mapping: dict[str, Any]) -> None:
        items = {k: json.dumps(v).encode() for k, v in mapping.items()}
        await asyncio.to_thread(_write_many, where, items, durable=durable)

    async def get_many(keys: list[str]) -> Mapping[str, Any]:
        found = await asyncio.to_thread(_read_many, where, keys)
        return {k: json.loads(v) for k, v in found.items()}

    async def put_bytes(key: str, data: bytes) -> None:
        await asyncio.to_thread(_write, where, key, data, durable=durable)

    async def get_bytes(key: str) -> bytes:
        return await asyncio.to_thread(Path(where, key).read_bytes)

    name = "temp+fsync+replace+dir fsync" if durable else "temp+replace"
    return Contender(
        f"raw {name} (to_thread)", put, get, put_many, get_many, put_bytes, get_bytes, raw=True
    )


def _kv(folder: Path, *, durable: bool) -> tuple[Contender, Store[Any]]:
    store: Store[Any] = Store(LocalDriver(folder, durable=durable))
    blobs = store.with_codec(BYTES)
    contender = Contender(
        f"kv Store(LocalDriver durable={durable})",
        store.set,
        store.get,
        store.set_many,
        store.get_many,
        blobs.set,
        blobs.get,
    )
    return contender, store


def _peers(base: Path) -> tuple[Contender, Contender, Contender]:
    """py-key-value-aio FileTreeStore (fsyncs) and DiskStore, asyncblobdict's local adapter."""
    try:
        from key_value.aio.stores.filetree import FileTreeStore
    except ImportError as exc:
        filetree = unavailable("py-key-value-aio FileTreeStore", exc)
    else:
        tree = FileTreeStore(data_directory=base / "filetree", default_collection="pykv")
        filetree = pykv_contender(
            "py-key-value-aio FileTreeStore", tree, note="fsyncs the file, not the folder"
        )
    try:
        from key_value.aio.stores.disk import DiskStore
    except ImportError as exc:
        disk = unavailable("py-key-value-aio DiskStore", exc)
    else:
        disk = pykv_contender(
            "py-key-value-aio DiskStore",
            DiskStore(directory=base / "diskstore", default_collection="pykv"),
            note="diskcache: SQLite WAL, synchronous=NORMAL, on the loop",
        )
    try:
        from asyncblobdict import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
            AsyncBlobStore,
            LocalFileAdapter,
        )
    except ImportError as exc:
        blobdict = unavailable("asyncblobdict LocalFileAdapter", exc)
    else:
        store = AsyncBlobStore(LocalFileAdapter(str(base / "blobdict")), "bench")
        blobdict = blobdict_contender(
            "asyncblobdict LocalFileAdapter",
            store,
            note="writes in place (not atomic), on the loop",
        )
    return filetree, disk, blobdict


def _merge_reads(into: Workload, other: Workload, raw_name: str) -> None:
    """Reads do not depend on how the file was written: one group, one raw baseline."""
    into.name = into.name.replace(" (durable)", "")
    into.rename(into.raw, raw_name)
    for name, op in other.ops.items():
        if name != other.raw:
            into.add(name, op, note=other.notes.get(name, ""))
    into.setup.update({k: v for k, v in other.setup.items() if k != other.raw})
    into.unsupported.update(other.unsupported)


def _read_references(reads: Workload, kv_folder: Path, raw_folder: Path, value: Any) -> None:
    """Reads done other ways: on the loop, through aiofiles, the driver without Store."""
    keys = [f"bench-{i:06d}" for i in range(reads.calls)]
    driver = LocalDriver(kv_folder)

    async def inline(i: int) -> None:
        if json.loads((raw_folder / keys[i]).read_bytes()) != value:
            raise AssertionError("read other data")

    async def via_aiofiles(i: int) -> None:
        async with aiofiles.open(raw_folder / keys[i], "rb") as f:
            data = await f.read()
        if json.loads(data) != value:
            raise AssertionError("read other data")

    async def no_store(i: int) -> None:
        entry = await driver.get(keys[i])
        if entry is None or json.loads(entry.value) != value:
            raise AssertionError("read other data")

    reads.add("kv LocalDriver.get (no Store)", no_store, note="reference: dispatch via bulk worker")
    reads.add("raw aiofiles open+read", via_aiofiles, note="reference: aiofiles, 3 thread hops")
    reads.add("raw read_bytes on the loop", inline, note="reference: blocks the event loop")


def _durable_references(
    durable: dict[str, Workload], raw_folder: Path, value: Any, n: int
) -> Workload:
    """No folder fsync (weaker), and concurrent durable writers (the group-commit target)."""
    data = json.dumps(value).encode()
    where = str(raw_folder)

    async def no_dir_sync(i: int) -> None:
        await asyncio.to_thread(_write, where, f"nd-{i}", data, durable=True, dir_sync=False)

    durable["set"].add(
        "raw temp+fsync+replace, no dir fsync",
        no_dir_sync,
        note="reference: weaker than the driver's guarantee",
    )
    writers = Workload(f"set 1 KiB x{TASKS} (durable)", n, concurrent=True)
    for name, op in durable["set"].ops.items():
        if name.startswith(("raw temp+fsync+replace+dir", "kv ")):
            writers.add(name, op, raw=name == durable["set"].raw)
    return writers


async def run(quick: bool) -> list[Row]:
    """Measure every workload; rows carry ratios against the raw baselines."""
    value = make_value()
    base = Path(tempfile.mkdtemp(prefix="kv-bench-local-", dir=os.environ.get("KV_BENCH_DIR")))
    stores: list[Store[Any]] = []
    try:
        seq = 400 if quick else 2_000
        conc = TASKS * (8 if quick else 32)
        batches = 10 if quick else 40
        raw_durable = _raw(base / "raw-durable", durable=True)
        raw_fast = _raw(base / "raw-fast", durable=False)
        kv_durable, s1 = _kv(base / "kv-durable", durable=True)
        kv_fast, s2 = _kv(base / "kv-fast", durable=False)
        stores += [s1, s2]
        filetree, disk, blobdict = _peers(base)
        durable = standard_workloads(
            [raw_durable, kv_durable, filetree],
            tag="(durable)",
            value=value,
            seq=seq,
            conc=conc,
            batches=batches,
        )
        fast = standard_workloads(
            [raw_fast, kv_fast, disk, blobdict],
            tag="(no fsync)",
            big=os.urandom(BIG),
            big_calls=10 if quick else 20,
            value=value,
            seq=seq,
            conc=conc,
            batches=batches,
        )
        _merge_reads(durable["get"], fast["get"], "raw read_bytes + json.loads (to_thread)")
        _merge_reads(durable["get_many"], fast["get_many"], "raw 100 read_bytes in one to_thread")
        fast["get_big"].rename(fast["get_big"].raw, "raw read_bytes (to_thread)")
        _read_references(durable["get"], base / "kv-durable", base / "raw-durable", value)
        writers = _durable_references(durable, base / "raw-durable", value, conc)
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
        shutil.rmtree(base, ignore_errors=True)
    rows = add_ratios(rows)
    seq_base = next((r.ops_per_s for r in rows if r.raw and r.workload == durable["set"].name), 0.0)
    for r in rows:  # the concurrent durable target is stated against the sequential baseline
        if r.workload == writers.name and seq_base and r.ops_per_s:
            extra = f"{r.ops_per_s / seq_base:.2f}x the sequential fsync baseline"
            r.note = f"{r.note}; {extra}" if r.note else extra
    return rows


if __name__ == "__main__":
    from benchmarks.report import print_rows

    print_rows(asyncio.run(run("--quick" in sys.argv)))
