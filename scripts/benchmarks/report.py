"""Markdown tables of benchmark rows."""

from __future__ import annotations

from collections.abc import Iterable

from benchmarks.common import Row

__all__ = ["markdown", "print_rows"]


def markdown(rows: Iterable[Row]) -> str:
    """One table per backend: ops/s, p50/p99 latency and the ratio to the raw row."""
    out: list[str] = []
    by_backend: dict[str, list[Row]] = {}
    for r in rows:
        by_backend.setdefault(r.backend, []).append(r)
    for backend, items in by_backend.items():
        out.append(f"### {backend}\n")
        out.append("| workload | contender | ops/s | p50 µs | p99 µs | × raw | note |")
        out.append("|---|---|---:|---:|---:|---:|---|")
        for r in items:
            ratio = (
                "—" if r.ratio is None else ("**1.00** (baseline)" if r.raw else f"{r.ratio:.2f}")
            )
            ops = f"{r.ops_per_s:,.0f}" if r.ops_per_s else "—"
            out.append(
                f"| {r.workload} | {r.contender} | {ops} | {r.p50_us:,.1f} | {r.p99_us:,.1f} "
                f"| {ratio} | {r.note} |"
            )
        out.append("")
    return "\n".join(out)


def print_rows(rows: Iterable[Row]) -> None:
    """Print the tables to stdout."""
    print(markdown(rows))
