"""The shared kv conformance suites, on a single node and on a 3-master cluster."""

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
