"""Every valid key works under a small descriptor limit, and failed writes leave nothing.

kv-local used to hold a descriptor per folder level: with ``ulimit -n 1024`` a 510-level
key could be written but not listed, ``set("/" * 1023 + "x")`` failed with EMFILE and left
1,023 empty folders behind, and a group of 300 writes under one prefix failed too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).with_name("_deep_keys.py")


def test_deep_keys_and_large_groups_work_with_256_descriptors(tmpfs_root: Path) -> None:
    # On tmpfs only: descriptors do not depend on the file system, and the ~3,000 folders
    # these keys make and remove take seconds on a busy disk. Durable, so that writes
    # take the flusher's path (fsync costs nothing on tmpfs).
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmpfs_root / "data"), "256", "1"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "ok"
