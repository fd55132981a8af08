"""The shared kv suites against Azurite."""

from __future__ import annotations

import time

import pytest
from kv_core.testing import (
    CrossProcessConformance,
    DriverConformance,
    StoreModelTest,
    TestClock,
    UnreachableConformance,
)


class TestConformance(DriverConformance):
    pass


class TestModel(StoreModelTest):
    max_examples = 10  # every step is one or more HTTP round trips to Azurite

    @pytest.fixture(autouse=True)
    def _clock_without_real_time(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # TestClock is wall time plus an offset. The model dates a 0.5 s TTL from after the
        # write returns, the Store from before it is sent; with Azurite's latency a check
        # can land between the two expiries. Only the offset moves time here.
        start = time.time()
        monkeypatch.setattr(TestClock, "__call__", lambda clock: start + clock.offset)


class TestCrossProcess(CrossProcessConformance):
    pass


class TestUnreachable(UnreachableConformance):
    pass
