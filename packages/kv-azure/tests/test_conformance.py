"""The shared kv suites against Azurite."""

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
    max_examples = 10  # every step is one or more HTTP round trips to Azurite


class TestCrossProcess(CrossProcessConformance):
    pass


class TestUnreachable(UnreachableConformance):
    pass
