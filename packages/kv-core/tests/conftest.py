from __future__ import annotations

import pytest
from kv_core.testing import Harness, MemoryHarness

from ._cli_support import Kv


@pytest.fixture
def kv_harness() -> Harness:
    return MemoryHarness()


@pytest.fixture
def kv(capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch) -> Kv:
    monkeypatch.setenv("KV_STORE_URL", "testmem://main")
    return Kv(capsysbinary, monkeypatch)
