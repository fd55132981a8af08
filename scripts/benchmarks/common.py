"""Shared timing helpers for the benchmark modules (``scripts/bench`` runs them).

Each backend module exposes ``async def run(quick: bool) -> list[Row]``. A row is one
contender on one workload; ``ratio`` compares its throughput with the raw client's row
of the same workload measured in the same run.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "Row",
    "add_ratios",
    "make_value",
    "measure",
    "measure_concurrent",
    "measure_interleaved",
]


def make_value(seed: int = 42) -> dict[str, object]:
    """A ~1 KiB JSON dict built from a fixed seed (the same in every benchmark)."""
    rng = random.Random(seed)
    value: dict[str, object] = {
        f"field_{i:02d}": rng.choice(
            [rng.random(), rng.randint(0, 1 << 30), "".join(rng.choices("abcdefgh", k=16))]
        )
        for i in range(28)
    }
    value["tags"] = ["alpha", "beta", "gamma"]
    value["nested"] = {"id": rng.randint(0, 999), "ok": True, "note": None}
    assert 900 <= len(json.dumps(value)) <= 1200
    return value


@dataclass
class Row:
    """One contender's result on one workload."""

    backend: str
    workload: str
    contender: str
    ops_per_s: float
    p50_us: float
    p99_us: float
    raw: bool = False  # the baseline the ratio is taken against
    ratio: float | None = None
    note: str = ""
    extra: dict[str, float] = field(default_factory=dict)


def _percentile(sorted_samples: Sequence[float], q: float) -> float:
    idx = min(len(sorted_samples) - 1, max(0, round(q * (len(sorted_samples) - 1))))
    return sorted_samples[idx]


async def measure(
    op: Callable[[int], Awaitable[object]],
    n: int,
    *,
    repeats: int = 5,
    ops_per_call: int = 1,
) -> tuple[float, float, float]:
    """Run ``op(i)`` for i in range(n), ``repeats`` times, sequentially.

    Returns (median ops/s over repeats, p50 latency µs, p99 latency µs) where a latency is
    one call of ``op`` and ops/s counts ``ops_per_call`` operations per call.
    """
    rates: list[float] = []
    lat: list[float] = []
    clock = time.perf_counter
    for _ in range(repeats):
        t0 = clock()
        for i in range(n):
            s = clock()
            await op(i)
            lat.append(clock() - s)
        rates.append(n * ops_per_call / (clock() - t0))
    lat.sort()
    return statistics.median(rates), _percentile(lat, 0.5) * 1e6, _percentile(lat, 0.99) * 1e6


async def measure_concurrent(
    op: Callable[[int], Awaitable[object]],
    n: int,
    *,
    tasks: int = 64,
    repeats: int = 5,
) -> tuple[float, float, float]:
    """Run ``n`` calls of ``op(i)`` spread over ``tasks`` concurrent tasks, ``repeats`` times."""
    rates: list[float] = []
    lat: list[float] = []
    clock = time.perf_counter
    for _ in range(repeats):
        per_task = n // tasks

        async def worker(t: int, per_task: int = per_task) -> None:
            base = t * per_task
            for i in range(base, base + per_task):
                s = clock()
                await op(i)
                lat.append(clock() - s)

        t0 = clock()
        await asyncio.gather(*(worker(t) for t in range(tasks)))
        rates.append(per_task * tasks / (clock() - t0))
    lat.sort()
    return statistics.median(rates), _percentile(lat, 0.5) * 1e6, _percentile(lat, 0.99) * 1e6


async def measure_interleaved(
    ops: dict[str, Callable[[int], Awaitable[object]]],
    n: int,
    *,
    repeats: int = 5,
) -> dict[str, tuple[float, float, float]]:
    """Like :func:`measure` for several contenders, taking turns in every repetition.

    On a shared machine the load drifts; alternating rounds spreads the drift over every
    contender instead of favouring whoever ran first.
    """
    rates: dict[str, list[float]] = {name: [] for name in ops}
    lat: dict[str, list[float]] = {name: [] for name in ops}
    clock = time.perf_counter
    for _ in range(repeats):
        for name, op in ops.items():
            samples = lat[name]
            t0 = clock()
            for i in range(n):
                s = clock()
                await op(i)
                samples.append(clock() - s)
            rates[name].append(n / (clock() - t0))
    out: dict[str, tuple[float, float, float]] = {}
    for name in ops:
        samples = sorted(lat[name])
        out[name] = (
            statistics.median(rates[name]),
            _percentile(samples, 0.5) * 1e6,
            _percentile(samples, 0.99) * 1e6,
        )
    return out


def add_ratios(rows: list[Row]) -> list[Row]:
    """Fill ``ratio`` = ops/s ÷ the raw row's ops/s of the same backend and workload."""
    raw = {(r.backend, r.workload): r.ops_per_s for r in rows if r.raw}
    for r in rows:
        base = raw.get((r.backend, r.workload))
        if base:
            r.ratio = r.ops_per_s / base
    return rows
