"""The shared kv suites, run against LocalDriver (on disk and on tmpfs: see conftest)."""

from __future__ import annotations

from pathlib import Path

import pytest
from kv_core.testing import CrossProcessConformance, DriverConformance, StoreModelTest, UrlHarness


class TestConformance(DriverConformance):
    pass


class TestModel(StoreModelTest):
    pass


class TestCrossProcess(CrossProcessConformance):
    # On the default disk only (spawning processes is the slow part; tmpfs adds nothing
    # here), and again on ext4 with one-second timestamps in test_coarse_fs.
    @pytest.fixture
    def kv_harness(self, tmp_path: Path) -> UrlHarness:
        return UrlHarness(f"file:{tmp_path / 'data'}")
