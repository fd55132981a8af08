"""Test support for kv drivers: the harness, the conformance suite and the model test.

Install with ``pip install kv-core[testing]``. In a driver package's tests::

    # conftest.py
    @pytest.fixture
    def kv_harness(tmp_path):
        return UrlHarness(f"file:{tmp_path}")

    # test_conformance.py
    class TestConformance(DriverConformance): ...
    class TestModel(StoreModelTest): ...
    class TestCrossProcess(CrossProcessConformance): ...
    class TestUnreachable(UnreachableConformance): ...

Hypothesis profiles: ``kv-dev`` (quick, the default) and ``kv-ci`` (thorough, chosen when
``CI`` is set); ``HYPOTHESIS_PROFILE`` picks one explicitly.
"""

from __future__ import annotations

import os

from hypothesis import settings

from ._azurite import (
    AZURITE_ACCOUNT_KEY,
    AZURITE_ACCOUNT_NAME,
    Azurite,
    azurite_connection_string_from_env,
    find_azurite,
    start_azurite,
)
from ._conformance import DriverConformance
from ._corpus import JSON_VALUES, RICH_VALUES, WEIRD_KEYS
from ._files import FilesConformance
from ._harness import Harness, MemoryHarness, TestClock, UrlHarness
from ._interleave import (
    CallHandle,
    GatedDriver,
    InterceptingDriver,
    ScheduleFailure,
    ScheduleSetup,
    SeededDelayDriver,
    default_schedule_count,
    run_schedule,
    run_schedules,
)
from ._listing import ListingConformance
from ._model import StoreModelTest
from ._ports import free_port
from ._process import CrossProcessConformance, UnreachableConformance, cross_process_increments
from ._redis_server import (
    RedisCluster,
    RedisServer,
    redis_url_from_env,
    start_redis,
    start_redis_cluster,
)
from ._state import StateConformance
from ._sync import SyncConformance

__all__ = [
    "AZURITE_ACCOUNT_KEY",
    "AZURITE_ACCOUNT_NAME",
    "JSON_VALUES",
    "find_azurite",
    "free_port",
    "Azurite",
    "RedisCluster",
    "RedisServer",
    "azurite_connection_string_from_env",
    "redis_url_from_env",
    "start_azurite",
    "start_redis",
    "start_redis_cluster",
    "RICH_VALUES",
    "WEIRD_KEYS",
    "CrossProcessConformance",
    "DriverConformance",
    "FilesConformance",
    "ListingConformance",
    "StateConformance",
    "SyncConformance",
    "Harness",
    "MemoryHarness",
    "StoreModelTest",
    "TestClock",
    "UnreachableConformance",
    "UrlHarness",
    "cross_process_increments",
    "CallHandle",
    "GatedDriver",
    "InterceptingDriver",
    "ScheduleFailure",
    "ScheduleSetup",
    "SeededDelayDriver",
    "default_schedule_count",
    "run_schedule",
    "run_schedules",
]

settings.register_profile("kv-dev", max_examples=25, stateful_step_count=25, deadline=None)
settings.register_profile("kv-ci", max_examples=100, stateful_step_count=40, deadline=None)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("kv-ci" if os.environ.get("CI") else "kv-dev")
)
