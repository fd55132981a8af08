"""kv-cache over every real backend: the conformance suites through ``cache+<url>``, and
the cache's own promises (conflicts found, read-only entries never uploaded, staleness
bounded) against real servers started here on loopback.

Setups per backend:

- ``write_through``: a new cache per driver, opened by URL (``cache+<url>``, so the
  registry routing is exercised too), ``max_staleness=0`` so that independent caches see
  each other's writes through etag revalidation (a conditional read on every backend).
- ``write_back``: one shared cache (small: eviction flushes run during the suite) for every
  driver of a test; the flush at close must leave the backend right.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kv_cache import CachedDriver, FlushConflictError, FlushStatus
from kv_cache.testing import CachedHarness
from kv_core import Store, open_driver
from kv_core.testing import (
    CrossProcessConformance,
    DriverConformance,
    TestClock,
    UnreachableConformance,
    UrlHarness,
    free_port,
)

BACKENDS = ["local", "redis", "azure"]


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    from kv_core.testing import redis_url_from_env, start_redis

    existing = redis_url_from_env()
    if existing:
        yield existing
        return
    server = start_redis()
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def azure_connection_string() -> Iterator[str]:
    from kv_core.testing import azurite_connection_string_from_env, start_azurite

    existing = azurite_connection_string_from_env()
    if existing:
        value, server = existing, None
    else:
        server = start_azurite()
        value = server.connection_string
    previous = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
    os.environ["AZURE_STORAGE_CONNECTION_STRING"] = value  # inherited by spawned workers
    yield value
    if previous is None:
        del os.environ["AZURE_STORAGE_CONNECTION_STRING"]
    else:
        os.environ["AZURE_STORAGE_CONNECTION_STRING"] = previous
    if server is not None:
        server.stop()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> UrlHarness:
    """A picklable harness over fresh, isolated storage of one real backend."""
    name = request.param
    if name == "local":
        blocker = tmp_path / "not-a-folder"
        blocker.write_bytes(b"")
        return UrlHarness(f"file:{tmp_path / 'data'}", unreachable_url=f"file:{blocker}/data")
    if name == "redis":
        url = request.getfixturevalue("redis_url")
        return UrlHarness(
            url,
            unreachable_url=f"redis://127.0.0.1:{free_port()}",
            prefix=f"kvcache:{uuid.uuid4().hex[:12]}:",
        )
    request.getfixturevalue("azure_connection_string")
    container = f"kvc-{uuid.uuid4().hex[:24]}"
    return UrlHarness(
        f"azure://{container}?create_container=true",
        unreachable_url=(
            f"azure://{container}?account_url=http://127.0.0.1:9/devstoreaccount1&retry_total=0"
        ),
    )


def _through_cache_url(harness: UrlHarness, **cache_options: Any) -> UrlHarness:
    """The same storage opened as ``cache+<url>`` (cache options ride along as keywords)."""
    unreachable = harness.unreachable_url
    return UrlHarness(
        f"cache+{harness.url}",
        unreachable_url=None if unreachable is None else f"cache+{unreachable}",
        **harness.options,
        **cache_options,
    )


@pytest.fixture(params=["write_through", "write_back"])
def kv_harness(request: pytest.FixtureRequest, backend: UrlHarness) -> Any:
    if request.param == "write_through":
        return _through_cache_url(backend, mode="write_through", max_staleness=0)
    return CachedHarness(backend, shared=True, mode="write_back", max_items=64, max_bytes=1 << 20)


class TestConformance(DriverConformance):
    pass


class TestCrossProcess(CrossProcessConformance):
    """Two processes, each with its own write-through cache: update() goes to the backend."""

    @pytest.fixture
    def kv_harness(self, backend: UrlHarness) -> Any:
        return _through_cache_url(backend, mode="write_through", max_staleness=0)


class TestUnreachable(UnreachableConformance):
    """Write-through reads and writes reach the backend, so they report it unreachable.
    (A write-back ``set`` does not touch the backend by design; its flush reports it.)"""

    @pytest.fixture
    def kv_harness(self, backend: UrlHarness) -> Any:
        return _through_cache_url(backend, mode="write_through")


async def test_the_url_opens_a_cache_over_the_backend(backend: UrlHarness) -> None:
    driver = open_driver(f"cache+{backend.url}", **backend.options, mode="write_back")
    assert isinstance(driver, CachedDriver)
    inner = backend.make_driver()
    assert type(driver.inner) is type(inner)
    await inner.aclose()
    await driver.aclose()


async def test_write_back_conflict_with_another_client_is_raised_not_clobbered(
    backend: UrlHarness,
) -> None:
    other: Store[Any] = Store(backend.make_driver())  # another process, no cache
    cache = CachedDriver(backend.make_driver(), mode="write_back")
    store: Store[Any] = Store(cache)
    await other.set("contested", "v0")
    assert await store.get("contested") == "v0"
    await store.set("contested", "mine")
    await store.set("free", "mine too")
    await other.set("contested", "theirs")  # behind the cache's back
    with pytest.raises(FlushConflictError) as info:
        await cache.flush()
    assert info.value.result.status_of("contested") is FlushStatus.CONFLICT
    assert info.value.result.status_of("free") is FlushStatus.WRITTEN
    assert await other.get("contested") == "theirs"
    assert await other.get("free") == "mine too"
    await store.aclose()
    await other.aclose()


async def test_write_back_never_uploads_an_entry_only_read(backend: UrlHarness) -> None:
    other: Store[Any] = Store(backend.make_driver())
    cache = CachedDriver(backend.make_driver(), mode="write_back")
    store: Store[Any] = Store(cache)
    await other.set("k", "old")
    assert await store.get("k") == "old"
    await other.set("k", "newer")
    assert len(await cache.flush()) == 0
    await store.aclose()
    assert await other.get("k") == "newer"
    await other.aclose()


@pytest.mark.parametrize("mode", ["write_through", "write_back"])
async def test_a_write_behind_the_cache_is_seen_after_the_staleness_bound(
    backend: UrlHarness, mode: str
) -> None:
    timer = TestClock()
    other: Store[Any] = Store(backend.make_driver())
    cache = CachedDriver(backend.make_driver(), mode=mode, max_staleness=30, timer=timer)
    store: Store[Any] = Store(cache)
    await other.set("k", "v1")
    assert await store.get("k") == "v1"
    await other.set("k", "v2")
    assert await store.get("k") == "v1"  # within the bound
    timer.advance(31)
    assert await store.get("k") == "v2"  # revalidated by etag
    timer.advance(31)
    assert await store.get("k") == "v2"
    assert cache.stats.not_modified == 1  # unchanged: a conditional read, no body
    await store.aclose()
    await other.aclose()
