"""kv-local benchmark: Store over LocalDriver next to raw file baselines, in one run.

Workloads: get and set of the 1 KiB JSON value, sequentially and from 64 concurrent tasks.
The raw rows do what a careful asyncio program does by hand, one thread hop per
operation so the event loop never blocks (``asyncio.to_thread``):

- read: ``Path.read_bytes()``;
- write: temp file + ``os.replace`` (non-durable);
- write + fsync: temp file, ``fsync``, ``os.replace``, ``fsync`` of the folder (the same
  guarantee LocalDriver gives with ``durable=True``).

Reference rows (not baselines) show the dispatch strategies the driver was chosen from:
the same read done on the event loop (blocks it), and through aiofiles (three hops).

Run: ``cd scripts && uv run python -m benchmarks.local [--quick]``
(``KV_BENCH_ONLY="durable x64"`` keeps the workloads whose name contains that text).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiofiles
from kv_core import Store
from kv_local import LocalDriver

from benchmarks.common import Row, add_ratios, make_value, measure, measure_concurrent

__all__ = ["run"]

BACKEND = "local"
TASKS = 64


def _write(folder: str, name: str, data: bytes, *, durable: bool, dir_sync: bool = True) -> None:
    path = os.path.join(folder, name)
    tmp = f"{path}.{os.getpid()}.{id(data)}.{name}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        os.write(fd, data)
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if durable and dir_sync:
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


class _Group:
    """Contenders of one workload, measured in alternating rounds (fair on a busy machine)."""

    def __init__(self, workload: str, n: int, *, concurrent: bool) -> None:
        self.workload = workload
        self.n = n
        self.concurrent = concurrent
        self.entries: list[tuple[str, Callable[[int], Awaitable[object]], bool, str]] = []

    def add(
        self,
        contender: str,
        op: Callable[[int], Awaitable[object]],
        *,
        raw: bool = False,
        note: str = "",
    ) -> None:
        self.entries.append((contender, op, raw, note))

    async def run(self, rows: list[Row], rounds: int) -> bool:
        """Measure (unless filtered out by ``KV_BENCH_ONLY``); True if it ran."""
        only = os.environ.get("KV_BENCH_ONLY", "")
        if only and only not in self.workload:
            return False
        results: dict[str, list[tuple[float, float, float]]] = {}
        for _ in range(rounds):
            for contender, op, _raw, _note in self.entries:
                if self.concurrent:
                    r = await measure_concurrent(op, self.n, tasks=TASKS, repeats=1)
                else:
                    r = await measure(op, self.n, repeats=1)
                results.setdefault(contender, []).append(r)
        for contender, _op, raw, note in self.entries:
            rs = results[contender]
            rate = statistics.median(x[0] for x in rs)
            p50 = statistics.median(x[1] for x in rs)
            p99 = statistics.median(x[2] for x in rs)
            rows.append(Row(BACKEND, self.workload, contender, rate, p50, p99, raw=raw, note=note))
            print(f"  {self.workload:<24} {contender:<44} {rate:>9.0f} ops/s", file=sys.stderr)
        return True


async def _reads(
    rows: list[Row], base: Path, value: Any, *, n: int, conc: bool, rounds: int
) -> None:
    data = json.dumps(value).encode()
    raw_dir = base / "raw-read"
    raw_dir.mkdir()
    keys = [f"k{i}" for i in range(n)]
    for key in keys:
        (raw_dir / key).write_bytes(data)
    paths = [raw_dir / key for key in keys]
    group = _Group(f"get 1KiB {'x64' if conc else 'seq'}", n, concurrent=conc)

    async def raw_thread(i: int) -> None:
        got = await asyncio.to_thread(paths[i].read_bytes)
        assert got == data

    async def raw_inline(i: int) -> None:
        got = paths[i].read_bytes()
        assert got == data

    async def raw_aiofiles(i: int) -> None:
        async with aiofiles.open(paths[i], "rb") as f:
            got = await f.read()
        assert got == data

    store: Store[Any] = Store(LocalDriver(base / "store-read"))
    driver = LocalDriver(base / "store-read")
    async with store, driver:
        await store.set_many(dict.fromkeys(keys, value))
        first = await driver.get(keys[0])
        assert first is not None
        stored = first.value  # the Store's JSON encoding (compact separators)

        async def via_store(i: int) -> None:
            got = await store.get(keys[i])
            assert got == value

        async def via_driver(i: int) -> None:
            entry = await driver.get(keys[i])
            assert entry is not None
            assert entry.value == stored

        group.add("raw read_bytes (to_thread per op)", raw_thread, raw=True)
        group.add("Store(LocalDriver)", via_store)
        group.add("LocalDriver.get (no Store)", via_driver, note="dispatch: bulk worker")
        group.add("raw aiofiles open+read", raw_aiofiles, note="dispatch: aiofiles, 3 hops")
        group.add("raw read_bytes on the loop", raw_inline, note="reference: blocks the loop")
        await group.run(rows, rounds)


async def _writes(
    rows: list[Row], base: Path, value: Any, *, n: int, conc: bool, rounds: int, durable: bool
) -> None:
    data = json.dumps(value).encode()
    kind = "durable" if durable else "no fsync"
    group = _Group(f"set 1KiB {kind} {'x64' if conc else 'seq'}", n, concurrent=conc)
    raw_dir = base / "raw"
    raw_dir.mkdir()
    folder = str(raw_dir)
    keys = [f"k{i}" for i in range(n)]

    async def raw(i: int) -> None:
        await asyncio.to_thread(_write, folder, keys[i], data, durable=durable)

    async def raw_no_dir_sync(i: int) -> None:
        await asyncio.to_thread(_write, folder, keys[i], data, durable=True, dir_sync=False)

    name = "temp+fsync+replace+dir fsync" if durable else "temp+replace"
    group.add(f"raw {name} (to_thread)", raw, raw=True)
    store: Store[Any] = Store(LocalDriver(base / "store", durable=durable))
    async with store:

        async def via_store(i: int) -> None:
            await store.set(keys[i], value)

        group.add(f"Store(LocalDriver durable={durable})", via_store)
        if durable:
            group.add(
                "raw temp+fsync+replace, no dir fsync",
                raw_no_dir_sync,
                note="reference: weaker than the driver's guarantee",
            )
        if await group.run(rows, rounds):
            got = await store.get_many(keys)
            assert got == dict.fromkeys(keys, value), "a value read back differs"


async def run(quick: bool) -> list[Row]:
    """Measure every workload; return rows with ratios against the raw baselines."""
    value = make_value()
    rows: list[Row] = []
    base = Path(tempfile.mkdtemp(prefix="kv-bench-local-", dir=os.environ.get("KV_BENCH_DIR")))
    try:
        seq_n = 300 if quick else 2000
        conc_n = TASKS * (5 if quick else 40)
        durable_seq_n = 100 if quick else 600
        durable_conc_n = TASKS * (3 if quick else 20)
        rounds = 3 if quick else 5
        for conc, n in ((False, seq_n), (True, conc_n)):
            sub = base / f"r{int(conc)}"
            sub.mkdir()
            await _reads(rows, sub, value, n=n, conc=conc, rounds=rounds)
        for durable, sn, cn in ((True, durable_seq_n, durable_conc_n), (False, seq_n, conc_n)):
            for conc, n in ((False, sn), (True, cn)):
                sub = base / f"w{int(durable)}{int(conc)}"
                sub.mkdir()
                await _writes(rows, sub, value, n=n, conc=conc, rounds=rounds, durable=durable)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    rows = add_ratios(rows)
    seq = {r.contender: r for r in rows if r.workload == "set 1KiB durable seq" and r.raw}
    for r in rows:  # the concurrent durable target is stated against the sequential baseline too
        if r.workload == "set 1KiB durable x64" and seq:
            r.extra["ratio_vs_seq_fsync_baseline"] = (
                r.ops_per_s / next(iter(seq.values())).ops_per_s
            )
    return rows


def _print(rows: list[Row]) -> None:
    print(f"{'workload':<24} {'contender':<44} {'ops/s':>9} {'p50 µs':>8} {'p99 µs':>8} ratio")
    for r in rows:
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else ""
        extra = "".join(f"  {k}={v:.2f}" for k, v in r.extra.items())
        print(
            f"{r.workload:<24} {r.contender:<44} {r.ops_per_s:>9.0f} {r.p50_us:>8.0f} "
            f"{r.p99_us:>8.0f} {ratio}{extra}{'  (' + r.note + ')' if r.note else ''}"
        )


if __name__ == "__main__":
    _print(asyncio.run(run("--quick" in sys.argv)))
