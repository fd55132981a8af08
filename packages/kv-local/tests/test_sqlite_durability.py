"""The SQLite store under kill -9 and under several writer processes on one file."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from kv_core import BYTES, Store
from kv_core.testing import UrlHarness, cross_process_increments
from kv_local import SQLiteDriver

from ._killed_writer import BLOB_KEYS, COUNTER, parse_value

# Processes, not Python: scripts/test runs these on the default interpreter only
# (pyproject: the "system" marker).
pytestmark = pytest.mark.system

WRITER = Path(__file__).with_name("_killed_sqlite_writer.py")
KILLS = 20


class Acks:
    """What the killed writers logged: the last write tried and acknowledged per key."""

    def __init__(self, log: Path) -> None:
        self.tried: dict[str, int] = {}
        self.acked: dict[str, int] = {}
        self.incs: list[int] = []
        self.set_lines = 0
        text = log.read_text() if log.exists() else ""
        for line in text.split("\n")[:-1]:  # a line cut short by the kill was not acked
            kind, rest = line.split(" ", 1)
            if kind == "inc":
                self.incs.append(int(rest))
                continue
            key, seq = rest.rsplit(" ", 1)
            table = self.tried if kind == "try" else self.acked
            table[key] = max(table.get(key, 0), int(seq))
            self.set_lines += kind == "set"

    def in_flight(self) -> bool:
        return any(seq > self.acked.get(key, 0) for key, seq in self.tried.items())


class Figures:
    def __init__(self) -> None:
        self.kills = self.mid_write = self.torn = self.lost = self.phantom = 0
        self.counter_bad = self.unacked_landed = self.corrupt = 0
        self.seen: dict[str, int] = {}


async def _check(db: Path, acks: Acks, figures: Figures, before: int) -> int:
    """Reopen the file and compare it with the acknowledgements; returns the counter."""
    conn = sqlite3.connect(db)
    try:
        figures.corrupt += conn.execute("PRAGMA integrity_check").fetchall() != [("ok",)]
    finally:
        conn.close()
    async with Store(SQLiteDriver(db), codec=BYTES) as store:
        for key in BLOB_KEYS:
            value = await store.get(key, default=None)
            seq = None if value is None else parse_value(key, value)
            if value is not None and seq is None:
                figures.torn += 1
            elif (seq or 0) < acks.acked.get(key, 0):
                figures.lost += 1
            elif (seq or 0) > max(acks.acked.get(key, 0), figures.seen.get(key, 0)) + 1:
                figures.phantom += 1
            figures.seen[key] = seq or 0
        raw = await store.get(COUNTER, default=None)
    counter = 0 if raw is None else int(json.loads(raw))
    run_acks = sum(1 for v in acks.incs if v > before)
    if counter - before not in (run_acks, run_acks + 1) or counter < max(acks.incs, default=0):
        figures.counter_bad += 1
    figures.unacked_landed += counter - before - run_acks
    return counter


def test_a_writer_killed_at_random_loses_and_tears_nothing(tmp_path: Path) -> None:
    """20 kill -9 of a writer of 0.1-4 MiB checksummed values (set and write_stream) and
    update() increments, on one SQLite file; durable=False every fourth round."""
    db, log = tmp_path / "state.db", tmp_path / "acks.log"
    rng = random.Random(4321)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    figures = Figures()
    counter = 0
    for round_ in range(KILLS):
        durable = round_ % 4 != 3
        proc = subprocess.Popen(
            [sys.executable, str(WRITER), str(db), str(int(durable)), str(round_), str(log)],
            stdout=subprocess.PIPE,
            env=env,
        )
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline() == b"ready\n"
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=rng.uniform(0.05, 0.35))
            assert proc.returncode is None, "the writer stopped on its own"
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        figures.kills += 1
        acks = Acks(log)
        figures.mid_write += acks.in_flight()
        counter = asyncio.run(_check(db, acks, figures, counter))
    acks = Acks(log)
    print(
        f"FAULT kv-local sqlite kill-9: {figures.kills} kills ({figures.mid_write} with a "
        f"0.1-4 MiB write in flight), {acks.set_lines} acknowledged writes, {figures.torn} "
        f"torn, {figures.lost} lost, {figures.corrupt} failed integrity checks; counter "
        f"{counter} for {len(acks.incs)} acknowledged update()s "
        f"(+{figures.unacked_landed} landed unacknowledged), {figures.counter_bad} bad"
    )
    assert figures.torn == 0
    assert figures.lost == 0
    assert figures.phantom == 0
    assert figures.corrupt == 0
    assert figures.counter_bad == 0
    assert counter - len(acks.incs) == figures.unacked_landed
    assert figures.mid_write >= KILLS // 2  # the crash path was really exercised
    assert acks.set_lines > 0
    assert acks.incs


def test_writer_processes_on_one_file_lose_no_increment(tmp_path: Path) -> None:
    harness = UrlHarness(f"sqlite:{tmp_path / 'state.db'}")
    processes, tasks, increments = 3, 4, 50
    total = cross_process_increments(
        harness, processes=processes, tasks=tasks, increments=increments
    )
    expected = processes * tasks * increments
    print(
        f"FAULT kv-local sqlite cross-process update(): {processes} processes x {tasks} "
        f"tasks x {increments} = {total} of {expected}"
    )
    assert total == expected
