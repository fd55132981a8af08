"""Crashes and full disks never leave a partial value or a temp file behind."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kv_core import BYTES, BackendError, Store
from kv_core.testing import UrlHarness, cross_process_increments
from kv_local import LocalDriver

from ._helpers import temp_files
from ._killed_writer import BLOB_KEYS, COUNTER, parse_value

# Processes, servers and file systems, not Python: scripts/test runs these on the default
# interpreter only (pyproject: the "system" marker).
pytestmark = pytest.mark.system

WRITER = Path(__file__).with_name("_killed_writer.py")
KILLS = 20


def _acks(log: Path) -> tuple[dict[str, int], list[int]]:
    """The last acknowledged sequence number of each key, and every counter value acked.

    A line cut short by the kill (no newline yet) was not acknowledged.
    """
    sets: dict[str, int] = {}
    incs: list[int] = []
    text = log.read_text() if log.exists() else ""
    for line in text.split("\n")[:-1]:
        kind, rest = line.split(" ", 1)
        if kind == "set":
            key, seq = rest.rsplit(" ", 1)
            sets[key] = max(sets.get(key, 0), int(seq))
        else:
            incs.append(int(rest))
    return sets, incs


class Figures:
    def __init__(self) -> None:
        self.kills = self.mid_write = self.torn = self.lost = self.temp_left = 0
        self.acked_sets = self.acked_incs = self.unacked_landed = 0
        self.counter_bad = self.phantom = 0
        self.seen: dict[str, int] = {}  # each key's sequence number at the last check


async def _check_after_kill(root: Path, log: Path, figures: Figures, before: int) -> int:
    """Reopen the root and check it against the acknowledgements; returns the counter."""
    sets, incs = _acks(log)
    store = Store(LocalDriver(root), codec=BYTES)
    async with store:
        present = set()
        for key in BLOB_KEYS:
            value = await store.get(key, default=None)
            if value is not None:
                present.add(key)
            acked = sets.get(key, 0)
            seq = None if value is None else parse_value(key, value)
            if value is not None and seq is None:
                figures.torn += 1
            elif (seq or 0) < acked:
                figures.lost += 1  # an acknowledged write is gone
            elif (seq or 0) > max(acked, figures.seen.get(key, 0)) + 1:
                # Impossible: more than the one write in flight per key since the last
                # check (the writer continues from the stored sequence number).
                figures.phantom += 1
            figures.seen[key] = seq or 0
        figures.temp_left += len(temp_files(root))
        raw = await store.get(COUNTER, default=None)
        counter = 0 if raw is None else json.loads(raw)
        present |= set() if raw is None else {COUNTER}
        assert {k async for k in store.keys()} == present  # (early kills: not all written)
    acked_now = max(incs, default=0)
    # Increments acknowledged in this run, and the counter's move: equal, or one more
    # (an update that landed just before the kill, not acknowledged yet).
    run_acks = sum(1 for v in incs if v > before)
    if counter - before not in (run_acks, run_acks + 1) or counter < acked_now:
        figures.counter_bad += 1
    figures.unacked_landed += counter - before - run_acks
    return int(counter)


def test_a_writer_killed_at_random_loses_and_tears_nothing(tmp_path: Path) -> None:
    """20 kill -9 of a writer of 0.1-4 MiB checksummed values and update() increments."""
    root, log = tmp_path / "root", tmp_path / "acks.log"
    rng = random.Random(1234)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    figures = Figures()
    counter = 0
    for round_ in range(KILLS):
        proc = subprocess.Popen(
            [
                sys.executable,
                str(WRITER),
                str(root),
                str(1 - round_ % 4 // 3),
                str(round_),
                str(log),
            ],
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
        figures.mid_write += bool(temp_files(root))
        counter = asyncio.run(_check_after_kill(root, log, figures, counter))
    _sets, incs = _acks(log)
    figures.acked_sets = sum(1 for line in log.read_text().splitlines() if line.startswith("set "))
    figures.acked_incs = len(incs)
    print(
        f"FAULT kv-local kill-9: {figures.kills} kills ({figures.mid_write} mid-write, temp "
        f"files on disk), {figures.acked_sets} acknowledged 0.1-4 MiB writes, "
        f"{figures.torn} torn, {figures.lost} lost, {figures.temp_left} temp files after "
        f"reopen; counter {counter} for {figures.acked_incs} acknowledged update()s "
        f"(+{figures.unacked_landed} landed unacknowledged), {figures.counter_bad} bad"
    )
    assert figures.torn == 0
    assert figures.lost == 0
    assert figures.phantom == 0
    assert figures.temp_left == 0
    assert figures.counter_bad == 0
    assert counter - figures.acked_incs == figures.unacked_landed
    # The crash path was really exercised, not only clean stops between writes.
    assert figures.mid_write >= KILLS // 4
    assert figures.acked_sets > 0
    assert figures.acked_incs > 0


def test_cross_process_update_loses_no_increment(tmp_path: Path) -> None:
    harness = UrlHarness(f"file:{tmp_path / 'data'}")
    processes, tasks, increments = 3, 4, 50
    total = cross_process_increments(
        harness, processes=processes, tasks=tasks, increments=increments
    )
    expected = processes * tasks * increments
    print(
        f"FAULT kv-local cross-process update(): {processes} processes x {tasks} tasks x "
        f"{increments} = {total} of {expected}"
    )
    assert total == expected


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs, which needs root and a kernel that lets this process mount."""
    if os.geteuid() != 0:
        pytest.skip("a full-disk test needs a small tmpfs, and mounting one needs root")
    if shutil.which("mount") is None:
        pytest.skip("a full-disk test needs the mount command to make a small tmpfs")
    mnt = tmp_path / "small"
    mnt.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {done.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.mark.parametrize("durable", [True, False])
async def test_a_full_disk_fails_clearly_and_keeps_the_old_value(
    small_disk: Path, durable: bool
) -> None:
    driver = LocalDriver(small_disk / "data", durable=durable)
    try:
        await driver.set("dir/k", b"old value")
        with pytest.raises(BackendError) as info:
            await driver.set("dir/k", os.urandom(2 << 20))
        assert "no space left" in str(info.value)
        assert info.value.key == "dir/k"
        assert isinstance(info.value.__cause__, OSError)

        async def big() -> object:
            for _ in range(40):
                yield os.urandom(64 << 10)

        with pytest.raises(BackendError, match="no space left"):
            await driver.write_stream("dir/k", big())  # type: ignore[arg-type]
        entry = await driver.get("dir/k")
        assert entry is not None
        assert entry.value == b"old value"
        assert temp_files(small_disk) == []
        await driver.set("dir/k", b"fits again")  # the space was given back
    finally:
        await driver.aclose()
    assert temp_files(small_disk) == []
