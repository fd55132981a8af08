"""Crashes and full disks never leave a partial value or a temp file behind."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kv_core import BackendError
from kv_local import LocalDriver

from ._helpers import temp_files

WRITER = Path(__file__).with_name("_killed_writer.py")
KEYS = ("flat", "a/b/c", "deep/" * 8 + "x", "long/" + "é" * 300, "ttl/one", "ttl/two")


def _whole(key: str, value: bytes) -> bool:
    digest, _, payload = value.partition(b"\n")
    return hashlib.sha256(payload).hexdigest().encode() == digest and payload.startswith(
        f"{key}|".encode()
    )


async def _check_after_crash(root: Path) -> None:
    driver = LocalDriver(root)
    try:
        for key in KEYS:
            entry = await driver.get(key)
            assert entry is not None, key
            assert _whole(key, entry.value), f"{key!r} holds a partial or mixed value"
        assert temp_files(root) == [], "a temp file survived reopening"
        assert sorted([k async for k in driver.keys()]) == sorted(KEYS)
    finally:
        await driver.aclose()


def test_a_writer_killed_20_times_never_leaves_a_partial_value(tmp_path: Path) -> None:
    root = tmp_path / "root"
    rng = random.Random(1234)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    killed_mid_write = 0
    for round_ in range(20):
        proc = subprocess.Popen(
            [sys.executable, str(WRITER), str(root), str(round_ % 2), str(round_)],
            stdout=subprocess.PIPE,
            env=env,
        )
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline() == b"ready\n"
            # Let it get well into overlapping writes, then kill it without warning.
            signal_after = rng.uniform(0.02, 0.25)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=signal_after)
            assert proc.returncode is None, "the writer stopped on its own"
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        killed_mid_write += bool(temp_files(root))
        asyncio.run(_check_after_crash(root))
    print(f"killed mid-write (temp files left) in {killed_mid_write} of 20 rounds")
    # The crash path was really exercised, not only clean stops between writes.
    assert killed_mid_write >= 5


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
