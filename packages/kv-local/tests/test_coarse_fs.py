"""kv-local on a file system with one-second timestamps (ext4 with 128-byte inodes).

There, mtimes are whole seconds and a freed inode is reused at once: an etag built from
(inode, mtime, size) repeats when a key is deleted and rewritten with the same size within
the second, and a stale ``if_match`` would be accepted. kv-local detects such a file system
on open and identifies values by a content hash instead (plus the expiry in the etag).

The test makes a small ext4 image, loop-mounts it (root only: CI runs as root) and runs the
conformance suite and a stale-etag probe there. It fails loudly if it cannot mount, unless
KV_LOCAL_NO_MOUNTS=1 opts out explicitly.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kv_core import PreconditionFailedError
from kv_core.testing import CrossProcessConformance, DriverConformance, StoreModelTest, UrlHarness
from kv_local import LocalDriver

from .conftest import OPT_OUT

# Processes, servers and file systems, not Python: scripts/test runs these on the default
# interpreter only (pyproject: the "system" marker).
pytestmark = pytest.mark.system

IMAGE_MIB = 48


# Root's tools live in the sbin folders, which a plain user's PATH (or a clean shell's) lacks.
_TOOL_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


def _tool(name: str) -> str | None:
    return shutil.which(name, path=_TOOL_PATH)


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    tool = _tool(cmd[0]) or cmd[0]
    return subprocess.run((tool, *cmd[1:]), capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def coarse_mount(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A loop-mounted ``mkfs.ext4 -I 128`` image: one-second timestamps."""
    why = None
    if os.geteuid() != 0:
        why = "loop-mounting an ext4 image needs root"
    elif _tool("mkfs.ext4") is None or _tool("mount") is None:
        why = "mkfs.ext4 and mount are needed (e2fsprogs, util-linux)"
    base = tmp_path_factory.mktemp("coarse")
    image, mnt = base / "ext4-128.img", base / "mnt"
    if why is None:
        with image.open("wb") as f:
            f.truncate(IMAGE_MIB << 20)
        made = _run("mkfs.ext4", "-q", "-F", "-I", "128", str(image))
        mnt.mkdir()
        done = made if made.returncode else _run("mount", "-o", "loop", str(image), str(mnt))
        if done.returncode:
            why = f"{' '.join(map(str, done.args))} failed: {done.stderr.strip()}"
    if why is not None:
        if os.environ.get(OPT_OUT) == "1":
            pytest.skip(f"{why}; opted out with {OPT_OUT}=1")
        pytest.fail(
            f"THE ONE-SECOND-TIMESTAMP TESTS DID NOT RUN: {why}. Run as root with loop "
            f"devices, or set {OPT_OUT}=1 to opt out explicitly.",
            pytrace=False,
        )
    try:
        yield mnt
    finally:
        if _run("umount", str(mnt)).returncode:
            _run("umount", "-l", str(mnt))


@pytest.fixture
def kv_harness(coarse_mount: Path) -> Iterator[UrlHarness]:
    folder = coarse_mount / uuid.uuid4().hex
    # durable=false: etags and atomicity do not depend on flushing, and fsync through a
    # loop device costs seconds per test on a busy machine (the disk and tmpfs runs of
    # the suite are durable).
    yield UrlHarness(f"file:{folder}?durable=false")
    shutil.rmtree(folder, ignore_errors=True)  # the image is small


class TestConformanceOnCoarseTimestamps(DriverConformance):
    pass


class TestModelOnCoarseTimestamps(StoreModelTest):
    pass


class TestCrossProcessOnCoarseTimestamps(CrossProcessConformance):
    pass


async def test_a_stale_etag_never_matches_after_delete_and_same_size_rewrite(
    coarse_mount: Path,
) -> None:
    root = coarse_mount / "probe"
    driver = LocalDriver(root, durable=False)
    rounds, accepted, old_collisions = 200, 0, 0
    try:
        await driver.set("warm", b"")
        assert not driver._root.exact_mtime, "the image should have one-second timestamps"
        for i in range(rounds):
            await driver.set("k", b"first-%04d" % i)
            entry = await driver.get("k")
            assert entry is not None
            before = os.stat(root / "k")
            await driver.delete("k")
            await driver.set("k", b"again-%04d" % i)  # same size, same second: inode reused
            after = os.stat(root / "k")
            old_collisions += (before.st_ino, before.st_mtime_ns, before.st_size) == (
                after.st_ino,
                after.st_mtime_ns,
                after.st_size,
            )
            try:
                await driver.set("k", b"stale-%04d" % i, if_match=entry.etag)
                accepted += 1
            except PreconditionFailedError:
                pass
            # A TTL-only rewrite of the same bytes changes the etag too.
            current = await driver.get("k")
            assert current is not None
            etag_ttl = await driver.set("k", current.value, expires_at=4e9)
            assert etag_ttl != current.etag
            with pytest.raises(PreconditionFailedError):
                await driver.set("k", b"x", if_match=current.etag)
    finally:
        await driver.aclose()
    print(
        f"FAULT kv-local ext4 -I 128 (1 s timestamps): stale if_match accepted {accepted} of "
        f"{rounds}; (inode, mtime, size) repeated in {old_collisions} of {rounds} rounds"
    )
    assert old_collisions > rounds // 2, "the probe did not reproduce inode reuse"
    assert accepted == 0
