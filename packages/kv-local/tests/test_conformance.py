"""The shared kv suites, run against LocalDriver (on disk and on tmpfs: see conftest)."""

from __future__ import annotations

from kv_core.testing import CrossProcessConformance, DriverConformance, StoreModelTest


class TestConformance(DriverConformance):
    pass


class TestModel(StoreModelTest):
    pass


class TestCrossProcess(CrossProcessConformance):
    pass
