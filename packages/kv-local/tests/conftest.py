"""Fixtures: every test gets its own temp folder as the store's root.

The conformance suite and the listing tests run on the default file system and on tmpfs
(``/dev/shm``), whose directories reorder entries that are renamed; ``test_coarse_fs``
runs them again on an ext4 image with one-second timestamps.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from kv_core.testing import UrlHarness

#: Set to 1 to run without tmpfs or loop mounts (a machine where they are impossible).
#: Without it, a missing tmpfs or a failed mount fails the tests loudly: never a silent pass.
OPT_OUT = "KV_LOCAL_NO_MOUNTS"


def _tmpfs_folder() -> Path:
    shm = Path("/dev/shm")
    if not shm.is_dir():
        if os.environ.get(OPT_OUT) == "1":
            pytest.skip(f"/dev/shm is missing and {OPT_OUT}=1 opts out of tmpfs tests")
        pytest.fail(f"the tmpfs tests need /dev/shm (set {OPT_OUT}=1 to opt out explicitly)")
    return Path(tempfile.mkdtemp(prefix="kv-local-test-", dir=shm))


@pytest.fixture(params=["disk", "tmpfs"])
def fs_root(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """An empty folder on the default file system, then on tmpfs."""
    if request.param == "disk":
        yield tmp_path
        return
    folder = _tmpfs_folder()
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def tmpfs_root() -> Iterator[Path]:
    """An empty folder on tmpfs."""
    folder = _tmpfs_folder()
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def kv_harness(fs_root: Path) -> UrlHarness:
    """A picklable harness over a fresh folder.

    A local folder has no "unreachable" state to simulate honestly: a path that cannot be
    opened is a configuration mistake (BackendError naming the path, see test_config).
    """
    return UrlHarness(f"file:{fs_root / 'data'}")
