"""Markdown tables of benchmark rows."""

from __future__ import annotations

from collections.abc import Iterable

from benchmarks.common import Row

__all__ = ["headline", "markdown", "print_rows"]


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
            if not r.ops_per_s:  # failed, unavailable or not applicable: the note says which
                out.append(f"| {r.workload} | {r.contender} | — | — | — | — | {r.note} |")
                continue
            ratio = (
                "—" if r.ratio is None else ("**1.00** (baseline)" if r.raw else f"{r.ratio:.2f}")
            )
            out.append(
                f"| {r.workload} | {r.contender} | {r.ops_per_s:,.0f} | {r.p50_us:,.1f} "
                f"| {r.p99_us:,.1f} | {ratio} | {r.note} |"
            )
        out.append("")
    return "\n".join(out)


def headline(rows: Iterable[Row]) -> str:
    """kv's ratios only, one line per backend and workload (the README's summary)."""
    out = [
        "| backend | workload | kv contender | × raw | raw baseline |",
        "|---|---|---|---:|---|",
    ]
    items = list(rows)
    raw = {(r.backend, r.workload): r.contender for r in items if r.raw}
    for r in items:
        if r.contender.startswith("kv Store(") and r.ratio is not None and r.ops_per_s:
            base = raw.get((r.backend, r.workload), "")
            out.append(f"| {r.backend} | {r.workload} | {r.contender} | {r.ratio:.2f} | {base} |")
    return "\n".join(out) + "\n"


def print_rows(rows: Iterable[Row]) -> None:
    """Print the tables to stdout."""
    print(markdown(rows))
