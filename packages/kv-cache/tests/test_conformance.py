"""The shared driver conformance suite, over a cached MemoryDriver in every setup."""

from __future__ import annotations

from kv_core.testing import DriverConformance


class TestConformance(DriverConformance):
    pass
