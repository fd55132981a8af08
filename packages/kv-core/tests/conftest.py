from __future__ import annotations

import pytest
from kv_core.testing import Harness, MemoryHarness


@pytest.fixture
def kv_harness() -> Harness:
    return MemoryHarness()
