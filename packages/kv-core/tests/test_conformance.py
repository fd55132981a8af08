"""MemoryDriver passes the whole conformance suite and the model test."""

from __future__ import annotations

from kv_core.testing import DriverConformance, StoreModelTest


class TestMemoryConformance(DriverConformance):
    pass


class TestMemoryModel(StoreModelTest):
    pass
