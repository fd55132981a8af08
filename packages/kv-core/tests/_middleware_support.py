"""Harnesses that put middleware around MemoryDrivers, for the conformance suite."""

from __future__ import annotations

import time
from collections.abc import Callable

from kv_core import Driver, MemoryDriver, RawEntry
from kv_core.testing import MemoryHarness

KEY_A = bytes(range(32))
KEY_B = bytes(range(100, 132))


class WrappedHarness:
    """Every driver is ``wrap(MemoryDriver)`` over one shared dict."""

    def __init__(self, wrap: Callable[[Driver], Driver]) -> None:
        self.base = MemoryHarness()
        self.wrap = wrap

    def make_driver(self, *, clock: Callable[[], float] | None = None) -> Driver:
        return self.wrap(self.base.make_driver(clock=clock))

    def make_unreachable_driver(self) -> Driver | None:
        return None


class StoragesHarness:
    """Drivers built from several MemoryDrivers, each over its own shared dict.

    ``build(drivers)`` gets one MemoryDriver per dict (all on the test's clock) and
    returns the driver under test (a Router, a Fallback...).
    """

    def __init__(self, count: int, build: Callable[[list[Driver]], Driver]) -> None:
        self.datas: list[dict[str, RawEntry]] = [{} for _ in range(count)]
        self.build = build

    def make_driver(self, *, clock: Callable[[], float] | None = None) -> Driver:
        drivers: list[Driver] = [
            MemoryDriver(clock=clock or time.time, data=data) for data in self.datas
        ]
        return self.build(drivers)

    def make_unreachable_driver(self) -> Driver | None:
        return None
