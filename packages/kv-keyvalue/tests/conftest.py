"""Backends for the adapter's tests: memory, a folder (kv-local), Redis, Azure (Azurite)
and a write-back cache (kv-cache) over a folder.

Redis and Azurite are started once per session on free loopback ports
(``KV_TEST_REDIS_URL`` / the Azurite variable of kv_core.testing point at existing ones).
Every test gets fresh, isolated storage; the adapter under test sits on a namespace of
it (``app``), so every test also shows that nothing outside that namespace is touched.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kv_core import Driver, Store
from kv_core.testing import (
    Harness,
    MemoryHarness,
    TestClock,
    UrlHarness,
    azurite_connection_string_from_env,
    redis_url_from_env,
    start_azurite,
    start_redis,
)
from kv_keyvalue import KeyValueAdapter

BACKENDS = ["memory", "file", "redis", "azure", "cache"]
NAMESPACE = "app"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis server for the session (started here unless one is given)."""
    existing = redis_url_from_env()
    if existing:
        yield existing
        return
    server = start_redis()
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def azure_connection_string() -> Iterator[str]:
    """Azurite for the session; its connection string is exported for ``azure://`` URLs."""
    existing = azurite_connection_string_from_env()
    server = None if existing else start_azurite()
    value = existing or (server.connection_string if server else "")
    previous = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
    os.environ["AZURE_STORAGE_CONNECTION_STRING"] = value
    yield value
    if previous is None:
        del os.environ["AZURE_STORAGE_CONNECTION_STRING"]
    else:
        os.environ["AZURE_STORAGE_CONNECTION_STRING"] = previous
    if server is not None:
        server.stop()


class CacheHarness:
    """A write-back kv-cache over a folder; every driver is a new cache over it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def make_driver(self, *, clock: Callable[[], float] | None = None) -> Driver:
        from kv_cache import CachedDriver, CacheMode
        from kv_local import LocalDriver

        return CachedDriver(LocalDriver(self.folder, clock=clock), mode=CacheMode.WRITE_BACK)

    def make_unreachable_driver(self) -> Driver | None:
        return None


def make_harness(request: pytest.FixtureRequest, name: str, tmp_path: Path) -> Harness:
    """Fresh, isolated storage on backend ``name``."""
    if name == "memory":
        return MemoryHarness()
    if name == "file":
        return UrlHarness(f"file:{tmp_path / 'data'}")
    if name == "redis":
        url = request.getfixturevalue("redis_url")
        return UrlHarness(url, prefix=f"kvkv:{uuid.uuid4().hex[:12]}:")
    if name == "azure":
        request.getfixturevalue("azure_connection_string")
        return UrlHarness(f"azure://kvkv-{uuid.uuid4().hex[:24]}?create_container=true")
    if name == "cache":
        return CacheHarness(tmp_path / "cached")
    raise AssertionError(name)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The backend of the test."""
    return str(request.param)


@pytest.fixture
def harness(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> Harness:
    return make_harness(request, backend, tmp_path)


@pytest.fixture
def clock() -> TestClock:
    """Manual where the driver expires keys by kv's clock; real time on Redis."""
    return TestClock()


@pytest.fixture
async def root(harness: Harness, clock: TestClock) -> AsyncIterator[Store[Any]]:
    """The whole isolated storage of the test (the adapter gets a namespace of it)."""
    driver = harness.make_driver(clock=clock)
    clock.adapt_to(driver)
    store: Store[Any] = Store(driver)
    yield store
    await store.aclose()


@pytest.fixture
def kv(root: Store[Any]) -> KeyValueAdapter:
    """The adapter under test, over the ``app`` namespace of ``root``."""
    return KeyValueAdapter(root.namespace(NAMESPACE))
