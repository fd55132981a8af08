"""The shared kv suites, run against SQLiteDriver (a file on disk, and one on tmpfs)."""

from __future__ import annotations

from pathlib import Path

import pytest
from kv_core.testing import CrossProcessConformance, DriverConformance, StoreModelTest, UrlHarness


@pytest.fixture
def kv_harness(fs_root: Path) -> UrlHarness:
    """A picklable harness over a fresh database file."""
    return UrlHarness(f"sqlite:{fs_root / 'data' / 'state.db'}")


class TestConformance(DriverConformance):
    pass


class TestConformanceWithoutFastReads(DriverConformance):
    """Every read through the reader thread (``fast_reads=False``)."""

    @pytest.fixture
    def kv_harness(self, tmp_path: Path) -> UrlHarness:
        return UrlHarness(f"sqlite:{tmp_path / 'state.db'}?fast_reads=false")


class TestModel(StoreModelTest):
    pass


class TestCrossProcess(CrossProcessConformance):
    @pytest.fixture
    def kv_harness(self, tmp_path: Path) -> UrlHarness:
        return UrlHarness(f"sqlite:{tmp_path / 'state.db'}")
