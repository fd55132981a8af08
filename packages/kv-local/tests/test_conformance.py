"""The shared kv suites, run against LocalDriver."""

from __future__ import annotations

from kv_core.testing import (
    CrossProcessConformance,
    DriverConformance,
    StoreModelTest,
    UnreachableConformance,
)


class TestConformance(DriverConformance):
    pass


class TestModel(StoreModelTest):
    pass


class TestCrossProcess(CrossProcessConformance):
    pass


class TestUnreachable(UnreachableConformance):
    pass
