"""The workloads every backend runs, and the runner that measures contenders in turns.

A backend module describes its contenders (kv's Store, the raw client, peer libraries) as
:class:`Contender` objects: plain async callables for set/get/set_many/get_many and, where
the backend takes large values, set/get of bytes. :func:`standard_workloads` turns them
into the same workloads on every backend:

- ``set 1 KiB seq`` then ``get 1 KiB seq``: N sequential calls over N keys;
- ``mixed 50/50 x64``: 64 concurrent tasks, alternating set and get over 1,000 keys;
- ``set_many 100`` / ``get_many 100``: one batch call of 100 keys (ops/s counts keys);
- ``set 8 MiB`` / ``get 8 MiB``: one bytes value (local and Azure).

:func:`run_workloads` measures the contenders of a workload in alternating turns (the
order rotates every repetition: the machine is shared and its load drifts). Every get is
checked against what was put; a contender that returns wrong data or raises is taken out
of that workload and reported in the note column, never dropped and never fatal.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmarks.common import Row

__all__ = [
    "Contender",
    "Op",
    "WrongData",
    "Workload",
    "run_workloads",
    "standard_workloads",
    "unavailable",
]

TASKS = 64
BATCH = 100
HOT_KEYS = 1_000

Op = Callable[[int], Awaitable[object]]
Put = Callable[[str, Any], Awaitable[object]]
Get = Callable[[str], Awaitable[Any]]
PutMany = Callable[[dict[str, Any]], Awaitable[object]]
GetMany = Callable[[list[str]], Awaitable[Mapping[str, Any]]]


class WrongData(AssertionError):
    """A contender returned something other than what was put."""


@dataclass
class Contender:
    """One library (or the raw client) on one backend, as plain async callables.

    ``get_many`` returns a mapping of the keys found. A missing callable means the
    contender has no such operation; ``missing`` says why (shown as a row note).
    """

    name: str
    set: Put | None = None
    get: Get | None = None
    set_many: PutMany | None = None
    get_many: GetMany | None = None
    set_bytes: Put | None = None
    get_bytes: Get | None = None
    raw: bool = False
    note: str = ""
    missing: dict[str, str] = field(default_factory=dict)
    unavailable: str = ""  # e.g. "not installed: ..."; shown on every workload


def unavailable(name: str, exc: BaseException) -> Contender:
    """A contender whose library cannot be imported or opened: reported, not dropped."""
    return Contender(name, unavailable=f"unavailable: {type(exc).__name__}: {exc}")


@dataclass
class Workload:
    """Contenders doing the same thing; rows are ratioed against the ``raw`` one."""

    name: str
    calls: int  # calls of each op per repetition
    ops: dict[str, Op] = field(default_factory=dict)
    raw: str = ""
    concurrent: bool = False
    per_call: int = 1  # operations per call (keys per batch)
    notes: dict[str, str] = field(default_factory=dict)
    unsupported: dict[str, str] = field(default_factory=dict)  # contender -> why
    setup: dict[str, Callable[[], Awaitable[object]]] = field(default_factory=dict)

    def rename(self, old: str, new: str) -> None:
        """Rename a contender in this workload only (keeps its place in the order)."""
        self.ops = {new if k == old else k: v for k, v in self.ops.items()}
        for table in (self.notes, self.setup):
            if old in table:
                table[new] = table.pop(old)  # type: ignore[assignment]
        if self.raw == old:
            self.raw = new

    def add(self, name: str, op: Op, *, raw: bool = False, note: str = "") -> None:
        """Add a contender's op (e.g. a reference row beside the standard ones)."""
        self.ops[name] = op
        if raw:
            self.raw = name
        if note:
            self.notes[name] = note


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check(name: str, key: str, got: object, expected: object) -> None:
    if got != expected:
        raise WrongData(f"{name} get({key!r}) returned {_short(got)}")


def standard_workloads(
    contenders: Sequence[Contender],
    *,
    value: Any,
    seq: int,
    conc: int,
    batches: int,
    big: bytes | None = None,
    big_calls: int = 3,
    tag: str = "",
) -> dict[str, Workload]:
    """The standard workloads over ``contenders`` (keys: set, get, mixed, set_many, ...).

    ``tag`` is appended to the workload names (e.g. ``"(durable)"``).
    """
    suffix = f" {tag}" if tag else ""
    keys = [f"bench-{i:06d}" for i in range(max(seq, conc, HOT_KEYS))]
    hot = keys[:HOT_KEYS]
    batch_keys = [f"batch-{i:03d}" for i in range(BATCH)]
    batch = dict.fromkeys(batch_keys, value)
    out = {
        "set": Workload(f"set 1 KiB seq{suffix}", seq),
        "get": Workload(f"get 1 KiB seq{suffix}", seq),
        "mixed": Workload(f"mixed 50/50 x{TASKS}{suffix}", conc, concurrent=True),
        "set_many": Workload(f"set_many {BATCH}{suffix}", batches, per_call=BATCH),
        "get_many": Workload(f"get_many {BATCH}{suffix}", batches, per_call=BATCH),
    }
    if big is not None:
        out["set_big"] = Workload(f"set 8 MiB bytes{suffix}", big_calls)
        out["get_big"] = Workload(f"get 8 MiB bytes{suffix}", big_calls)
    for c in contenders:
        _add_contender(out, c, value=value, keys=keys, hot=hot, batch=batch, big=big)
    return out


def _add_contender(
    out: dict[str, Workload],
    c: Contender,
    *,
    value: Any,
    keys: list[str],
    hot: list[str],
    batch: dict[str, Any],
    big: bytes | None,
) -> None:
    ops: dict[str, Op | None] = dict.fromkeys(out)
    name = c.name
    put, get, put_many, get_many = c.set, c.get, c.set_many, c.get_many
    batch_keys = list(batch)
    if put is not None:

        async def set_op(i: int) -> None:
            await put(keys[i], value)

        ops["set"] = set_op
    if get is not None:

        async def get_op(i: int) -> None:
            _check(name, keys[i], await get(keys[i]), value)

        ops["get"] = get_op
    if put is not None and get is not None:

        async def mixed_op(i: int) -> None:
            key = hot[i % len(hot)]
            if i % 2:
                await put(key, value)
            else:
                _check(name, key, await get(key), value)

        async def fill_hot() -> None:
            for key in hot:
                await put(key, value)

        ops["mixed"] = mixed_op
        out["mixed"].setup[name] = fill_hot
    if put_many is not None:

        async def set_many_op(i: int) -> None:
            await put_many(batch)

        ops["set_many"] = set_many_op
    if get_many is not None:

        async def get_many_op(i: int) -> None:
            got = await get_many(batch_keys)
            if dict(got) != batch:
                raise WrongData(f"{name} get_many returned {len(got)} keys or other values")

        ops["get_many"] = get_many_op
        if put_many is not None:
            out["get_many"].setup[name] = lambda: put_many(batch)
    if big is not None and c.set_bytes is not None and c.get_bytes is not None:
        put_b, get_b = c.set_bytes, c.get_bytes

        async def set_big(i: int) -> None:
            await put_b("big", big)

        async def get_big(i: int) -> None:
            got = await get_b("big")
            if got != big:
                raise WrongData(f"{name} returned {len(got or b'')} bytes, not the 8 MiB put")

        ops["set_big"], ops["get_big"] = set_big, get_big
    for kind, workload in out.items():
        op = ops[kind]
        if c.unavailable:
            workload.unsupported[name] = c.unavailable
        elif op is None:
            workload.unsupported[name] = "n/a: " + c.missing.get(kind, "no such operation")
        else:
            workload.add(name, op, raw=c.raw, note=c.note)


async def _measure_once(op: Op, w: Workload) -> tuple[float, list[float]]:
    """One repetition: (ops/s, per-call latencies in seconds)."""
    clock = time.perf_counter
    lat: list[float] = []
    if not w.concurrent:
        t0 = clock()
        for i in range(w.calls):
            s = clock()
            await op(i)
            lat.append(clock() - s)
        return w.calls * w.per_call / (clock() - t0), lat
    per_task = max(1, w.calls // TASKS)

    async def worker(t: int) -> None:
        for i in range(t * per_task, (t + 1) * per_task):
            s = clock()
            await op(i)
            lat.append(clock() - s)

    t0 = clock()
    await asyncio.gather(*(worker(t) for t in range(TASKS)))
    return per_task * TASKS * w.per_call / (clock() - t0), lat


def _percentile(samples: Sequence[float], q: float) -> float:
    idx = min(len(samples) - 1, max(0, round(q * (len(samples) - 1))))
    return samples[idx]


def _failure(exc: BaseException) -> str:
    if isinstance(exc, WrongData):
        return f"**WRONG DATA**: {exc}"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"**FAILED**: {type(exc).__name__}: {text[:120]}"


async def run_workloads(
    backend: str, workloads: Sequence[Workload], *, repeats: int, warmup: bool = True
) -> list[Row]:
    """Measure every workload's contenders in turns; rows carry no ratio yet."""
    rows: list[Row] = []
    only = os.environ.get("KV_BENCH_ONLY", "")
    for w in workloads:
        if only and only not in w.name:
            continue
        failed: dict[str, str] = {}
        for name, setup in w.setup.items():
            try:
                await setup()
            except Exception as exc:  # reported in the row, the run goes on
                failed[name] = _failure(exc)
        rates: dict[str, list[float]] = {name: [] for name in w.ops}
        lat: dict[str, list[float]] = {name: [] for name in w.ops}
        names = list(w.ops)
        rounds = repeats + (1 if warmup else 0)
        for r in range(rounds):
            shift = r % len(names) if names else 0
            for name in names[shift:] + names[:shift]:
                if name in failed:
                    continue
                try:
                    rate, samples = await _measure_once(w.ops[name], w)
                except Exception as exc:  # reported in the row, the run goes on
                    failed[name] = _failure(exc)
                    continue
                if warmup and r == 0:
                    continue  # connections, caches and the interpreter warm up
                rates[name].append(rate)
                lat[name].extend(samples)
        for name in names:
            note = w.notes.get(name, "")
            if name in failed:
                note = f"{failed[name]}; {note}" if note else failed[name]
                rows.append(Row(backend, w.name, name, 0.0, 0.0, 0.0, raw=name == w.raw, note=note))
            else:
                samples = sorted(lat[name])
                rows.append(
                    Row(
                        backend,
                        w.name,
                        name,
                        statistics.median(rates[name]),
                        _percentile(samples, 0.5) * 1e6,
                        _percentile(samples, 0.99) * 1e6,
                        raw=name == w.raw,
                        note=note,
                    )
                )
            r_ = rows[-1]
            print(
                f"  {w.name:<28} {name:<44} {r_.ops_per_s:>10,.0f} ops/s {r_.note[:60]}",
                file=sys.stderr,
                flush=True,
            )
        for name, why in w.unsupported.items():
            rows.append(Row(backend, w.name, name, 0.0, 0.0, 0.0, note=why))
    return rows
