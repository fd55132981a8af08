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

import hashlib
import os
import tracemalloc
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kv_cache import CachedDriver, FlushConflictError, FlushFailedError, FlushStatus
from kv_cache.testing import CachedHarness
from kv_core import BYTES, Capability, Store, open_driver, open_store
from kv_core.testing import (
    CrossProcessConformance,
    DriverConformance,
    InterceptingDriver,
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
    return _backend(request.param, request, tmp_path)


def _backend(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> UrlHarness:
    if name == "local":
        # A folder has no honest "unreachable" state: a path that cannot be opened is a
        # configuration mistake (kv-local raises BackendError naming it), so no such URL.
        return UrlHarness(f"file:{tmp_path / 'data'}")
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
        # 512 KiB blocks, as kv-azure's own harness: a streamed 8 MiB file then stays
        # within the conformance suite's 4 MiB traced-memory limit.
        f"azure://{container}?create_container=true&block_size={512 << 10}",
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

    @pytest.fixture(params=["redis", "azure"])  # a local folder has no unreachable state
    def kv_harness(self, request: pytest.FixtureRequest, tmp_path: Path) -> Any:
        backend = _backend(request.param, request, tmp_path)
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


# -- issue 12, item 2: cache+file: URLs with cache options stay where they point ---------------


async def test_a_relative_file_url_with_cache_options_stays_relative(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("cache+file:./data2?cache_mode=write_back&cache_ttl=5")
    driver = store.driver
    assert isinstance(driver, CachedDriver)
    assert driver.mode.value == "write_back"
    async with store:
        await store.set("k", "v")
    root = driver.inner.root  # type: ignore[attr-defined]
    assert (root.parent.name, root.name) == (tmp_path.name, "data2")  # not /data2
    async with open_store(f"file:{tmp_path / 'data2'}") as plain:
        assert await plain.get("k") == "v"


# -- issue 10, item 5: streams through the cache keep bounded memory ---------------------------


@pytest.mark.parametrize("mode", ["write_through", "write_back"])
async def test_64_mib_through_the_cache_over_local_keeps_memory_bounded(
    tmp_path: Path, mode: str
) -> None:
    from kv_local import LocalDriver

    cache = CachedDriver(LocalDriver(tmp_path / "data"), mode=mode)
    assert Capability.STREAM in cache.capabilities
    blobs = Store(cache, codec=BYTES)
    chunk = bytes(range(256)) * 4096  # 1 MiB, allocated before tracing starts
    total = 0
    digest = hashlib.sha256()

    async def chunks() -> Any:
        for _ in range(64):
            yield chunk

    tracemalloc.start()
    try:
        await blobs.write_stream("big.bin", chunks())
        async for part in blobs.read_stream("big.bin"):
            total += len(part)
            digest.update(part)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    await blobs.aclose()
    print(
        f"STREAM kv-cache {mode}: 64 MiB written and read through CachedDriver(LocalDriver), "
        f"traced peak {peak / 2**20:.1f} MiB"
    )
    assert total == 64 << 20
    assert digest.digest() == hashlib.sha256(chunk * 64).digest()
    assert peak < 16 << 20


# -- issue 12: write-back with the backend killed before and during a flush --------------------


class _WriteLog(InterceptingDriver):
    """Counts, per key, the writes the backend acknowledged, and kills the server (kill -9)
    just before the ``kill_at``-th write is sent."""

    def __init__(self, inner: Any, server: Any) -> None:
        super().__init__(inner)
        self.server = server
        self.acked: Counter[str] = Counter()
        self.writes = 0
        self.kill_at: int | None = None

    async def around(self, method: str, keys: tuple[str, ...], call: Any) -> Any:
        if method in ("set", "delete"):
            self.writes += 1
            if self.writes == self.kill_at:
                self.server.kill()
        result = await call()
        if method in ("set", "delete"):
            self.acked[keys[0]] += 1
        return result


async def _expect_backend(plain: Store[Any], expected: dict[str, Any]) -> None:
    for key, value in expected.items():
        assert await plain.get(key, default=None) == value, key


async def test_fault_write_back_with_redis_killed_before_and_during_a_flush() -> None:
    from kv_core.testing import start_redis
    from kv_redis import RedisDriver

    server = start_redis(appendonly=True)
    try:
        plain: Store[Any] = Store(RedisDriver.from_url(server.url, timeout=2.0))
        log = _WriteLog(RedisDriver.from_url(server.url, timeout=2.0), server)
        cache = CachedDriver(log, mode="write_back", max_staleness=None)
        store: Store[Any] = Store(cache)
        old = [f"old/{i}" for i in range(50)]
        await plain.set_many(dict.fromkeys(old, "remote"))
        await store.get_many(old)  # the cache now knows their etags: conditional flushes
        expected: dict[str, Any] = {}
        for i, key in enumerate(old):
            if i < 25:
                await store.set(key, f"changed {i}")
                expected[key] = f"changed {i}"
            else:
                await store.delete(key)
                expected[key] = None
        for i in range(100):
            await store.set(f"new/{i}", i)  # never seen: blind writes
            expected[f"new/{i}"] = i
        for i in range(50):
            await store.set(f"abs/{i}", i, if_absent=True)  # seen absent: if_absent creates
            expected[f"abs/{i}"] = i
        dirty = set(expected)
        assert cache.dirty_count == len(dirty) == 200

        # Killed before the flush: every dirty key is reported, none is lost.
        server.kill()
        with pytest.raises(FlushFailedError) as info:
            await cache.flush()
        reported = {o.key for o in info.value.result.errors}
        assert reported == dirty
        assert cache.dirty_count == 200
        server.restart()
        result = await cache.flush()
        assert set(result.written) == dirty
        await _expect_backend(plain, expected)
        assert all(log.acked[k] == 1 for k in dirty)
        print(
            f"FAULT kv-cache write-back, redis kill -9 before the flush: {len(dirty)} dirty, "
            f"{len(reported)} reported, {len(result.written)} written once after restart"
        )

        # Killed during the flush (32 writes in flight): written + reported = every key.
        for i, key in enumerate(sorted(dirty)):
            await store.set(key, f"second {i}")
            expected[key] = f"second {i}"
        log.acked.clear()
        log.kill_at = log.writes + 60
        confirmed = cache.stats.confirmed
        with pytest.raises(FlushFailedError) as info:
            await cache.flush()
        before = set(info.value.result.written)
        failed = {o.key for o in info.value.result.errors}
        assert before | failed == dirty
        assert not before & failed
        server.restart()
        result = await cache.flush()
        assert set(result.written) == failed
        await _expect_backend(plain, expected)
        resent = sum(log.acked[k] for k in failed)
        found = cache.stats.confirmed - confirmed
        assert all(log.acked[k] == 1 for k in before)
        assert all(log.acked[k] <= 1 for k in failed)
        assert resent + found == len(failed)  # each key written exactly once
        print(
            f"FAULT kv-cache write-back, redis kill -9 during the flush: {len(before)} written "
            f"before the kill, {len(failed)} reported; after restart {resent} sent again and "
            f"{found} found already landed (not sent twice); 0 lost, 0 written twice"
        )
        await store.aclose()
        await plain.aclose()
    finally:
        server.stop()
