"""Run the benchmarks: ``scripts/bench [--quick] [backend ...]``.

Each backend module starts its own servers on loopback, measures kv's Store next to the
raw client (and peer libraries where installed) in the same run, and returns rows. The
tables are printed and written to ``docs/benchmarks.md`` with the machine and versions.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.metadata
import os
import platform
import sys
import time
from pathlib import Path

from benchmarks.common import Row
from benchmarks.report import headline, markdown

#: Everything below this line in docs/benchmarks.md is kept when a full run rewrites it.
KEEP_MARKER = "<!-- kept by scripts/bench: measurements by hand -->"

BACKENDS = ("memory", "local", "sqlite", "redis", "azure", "cache", "keyvalue", "middleware")


def _versions() -> str:
    names = [
        "kv-core",
        "kv-local",
        "kv-redis",
        "kv-azure",
        "kv-cache",
        "kv-keyvalue",
        "redis",
        "azure-storage-blob",
        "aiofiles",
        "py-key-value-aio",
        "aiocache",
        "asyncblobdict",
        "diskcache",
    ]
    found = []
    for name in names:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return ", ".join(found)


def main() -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__)
    parser.add_argument("backends", nargs="*", default=list(BACKENDS), help=f"any of {BACKENDS}")
    parser.add_argument("--quick", action="store_true", help="fewer operations and repeats")
    parser.add_argument(
        "--output", default=str(Path(__file__).resolve().parents[2] / "docs" / "benchmarks.md")
    )
    args = parser.parse_args()

    rows: list[Row] = []
    failures: list[str] = []
    t_start = time.perf_counter()
    for name in args.backends:
        if name not in BACKENDS:
            parser.error(f"unknown backend {name!r}")
        try:
            module = importlib.import_module(f"benchmarks.{name}")
        except ImportError as exc:
            failures.append(f"{name}: not available ({exc})")
            continue
        started = time.perf_counter()
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        try:
            got = asyncio.run(module.run(args.quick))
        except Exception as exc:  # report and go on with the other backends
            failures.append(f"{name}: failed: {type(exc).__name__}: {exc}")
            continue
        rows.extend(got)
        print(f"[bench] {name} done in {time.perf_counter() - started:.0f} s", file=sys.stderr)

    elapsed = time.perf_counter() - t_start
    table = markdown(rows)
    print(table)
    print(headline(rows))
    for failure in failures:
        print(f"[bench] {failure}", file=sys.stderr)
    print(f"[bench] total {elapsed:.0f} s", file=sys.stderr)
    command = " ".join(["scripts/bench", *sys.argv[1:]])
    header = (
        "# Benchmarks\n\n"
        f"Machine: {platform.platform()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load average at the end "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}.  \n"
        f"Versions: {_versions()}.  \n"
        f"Command: `{command}` ({time.strftime('%Y-%m-%d')}, {elapsed / 60:.1f} min).\n\n"
        "Value: a 1 KiB JSON dict from a fixed seed (`benchmarks.common.make_value`). ops/s is\n"
        "the median over repetitions (contenders take turns in every repetition, after one\n"
        "warm-up round); for batches it counts keys. Latencies (p50/p99) are per call. `× raw`\n"
        "divides a row's ops/s by the raw client's (or the floor's) in the same run and table.\n"
        "Every get checks that it returned what was put; a contender that fails or returns\n"
        "other data shows no numbers and says so in the note. `reference:` rows are other\n"
        "ways of doing the raw work, not baselines. The machine is shared: expect ±15 %.\n\n"
        "## kv's ratios\n\n" + headline(rows) + "\n## All rows\n\n"
    )
    if (not args.quick and args.backends == list(BACKENDS)) or not Path(args.output).exists():
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        # Hand-measured comparisons (before/after a change) below the marker survive a run.
        kept = ""
        if out.exists() and KEEP_MARKER in (old := out.read_text()):
            kept = "\n" + old[old.index(KEEP_MARKER) :]
        out.write_text(header + table + "\n" + kept)
        print(f"[bench] wrote {args.output}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
