"""Fixtures: every test gets its own temp folder as the store's root."""

from __future__ import annotations

from pathlib import Path

import pytest
from kv_core.testing import UrlHarness


@pytest.fixture
def kv_harness(tmp_path: Path) -> UrlHarness:
    """A picklable harness over a fresh folder; the unreachable one sits under a file."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_bytes(b"")
    return UrlHarness(f"file:{tmp_path / 'data'}", unreachable_url=f"file:{blocker}/data")
