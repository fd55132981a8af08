"""Store-vs-dict model test over a cache in each mode.

Each example runs on one cache; at the end the model flushes it and a fresh, cold cache
over the same memory storage must list exactly the model's contents, so a flush that
drops, resurrects or misorders anything fails here.
"""

from __future__ import annotations

import pytest
from kv_core.testing import StoreModelTest


@pytest.fixture
def kv_harness(cold_harness: object) -> object:
    return cold_harness


class TestModel(StoreModelTest):
    pass
