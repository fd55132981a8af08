"""The shared kv suites against Azurite."""

from __future__ import annotations

from kv_core.testing import (
    CrossProcessConformance,
    DriverConformance,
    StoreModelTest,
    UnreachableConformance,
)


class TestConformance(DriverConformance):
    # A transfer holds up to (max_concurrency + 1) blocks of block_size (4 + 1 × 4 MiB by
    # default): bounded by the driver's settings, not by the file's size.
    file_peak_limit = 24 << 20


class TestModel(StoreModelTest):
    max_examples = 10  # every step is one or more HTTP round trips to Azurite


class TestCrossProcess(CrossProcessConformance):
    pass


class TestUnreachable(UnreachableConformance):
    pass
