"""Opening stores by URL: the registry, entry points and install hints (DESIGN §3)."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from typing import Any

import pytest
from kv_core import (
    BYTES,
    INSTALL_HINTS,
    MemoryDriver,
    Registry,
    Store,
    UnsupportedOperationError,
    default_registry,
    open_driver,
    open_store,
)
from kv_core._registry import ENTRY_POINT_GROUP, _redact, scheme_of


class Recorder:
    """A factory that records how it was called and returns a MemoryDriver."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, url: str, **options: Any) -> MemoryDriver:
        self.calls.append((url, options))
        return MemoryDriver()


def bare() -> Registry:
    return Registry(use_entry_points=False)


@pytest.mark.parametrize(
    ("url", "package"),
    [
        ("redis://localhost:6379/0", "kv-redis"),
        ("rediss://h", "kv-redis"),
        ("unix:///tmp/redis.sock", "kv-redis"),
        ("redis+cluster://h:7000", "kv-redis"),
        ("file:./data", "kv-local"),
        ("azure://container", "kv-azure"),
        ("cache+redis://h", "kv-cache"),
        ("REDIS://h", "kv-redis"),
    ],
)
def test_missing_backend_gives_the_install_hint(url: str, package: str) -> None:
    with pytest.raises(UnsupportedOperationError) as info:
        bare().open_driver(url)
    assert str(info.value) == f"{scheme_of(url)}:// needs: pip install {package}"


def test_every_first_party_scheme_has_a_hint() -> None:
    assert {"memory", "file", "redis", "rediss", "unix", "redis+cluster", "azure", "cache"} <= set(
        INSTALL_HINTS
    )


def test_exact_redis_hint() -> None:
    with pytest.raises(UnsupportedOperationError) as info:
        bare().open_store("redis://localhost")
    assert str(info.value) == "redis:// needs: pip install kv-redis"


def test_unknown_scheme_lists_installed_schemes() -> None:
    registry = bare()
    registry.register("alpha", Recorder())
    registry.register("beta", Recorder())
    with pytest.raises(UnsupportedOperationError) as info:
        registry.open_driver("gopher://x")
    assert str(info.value) == "no kv backend handles gopher:// (installed schemes: alpha, beta)"
    with pytest.raises(UnsupportedOperationError, match=r"installed schemes: none"):
        bare().open_driver("gopher://x")


def test_register_by_hand_and_options_reach_the_factory() -> None:
    registry = bare()
    factory = Recorder()
    registry.register("Mem", factory)  # schemes are case-insensitive
    store = registry.open_store("MEM://anything?x=1", codec=BYTES, pool_size=3, ssl=False)
    assert isinstance(store, Store)
    assert store.codec is BYTES
    assert factory.calls == [("MEM://anything?x=1", {"pool_size": 3, "ssl": False})]
    assert registry.schemes() == ["mem"]
    assert registry.factory("mem") is factory


def test_register_overrides() -> None:
    registry = bare()
    first, second = Recorder(), Recorder()
    registry.register("x", first)
    registry.register("x", second)
    registry.open_driver("x://")
    assert (first.calls, len(second.calls)) == ([], 1)


def test_wrapper_scheme_routes_to_the_wrapper_with_the_full_url() -> None:
    registry = bare()
    cache = Recorder()
    registry.register("cache", cache)
    registry.open_driver("cache+redis://h:6379/0", max_items=10)
    assert cache.calls == [("cache+redis://h:6379/0", {"max_items": 10})]


def test_scheme_registered_whole_wins_over_its_prefix() -> None:
    registry = bare()
    redis, cluster = Recorder(), Recorder()
    registry.register("redis", redis)
    registry.register("redis+cluster", cluster)
    registry.open_driver("redis+cluster://h:7000")
    assert (len(cluster.calls), redis.calls) == (1, [])


def test_entry_point_is_loaded_lazily_once() -> None:
    registry = bare()
    ep = EntryPoint("mem", "kv_core._memory:MemoryDriver.from_url", ENTRY_POINT_GROUP)
    registry._entry_points = {"mem": ep}
    assert registry.schemes() == ["mem"]
    assert isinstance(registry.open_driver("mem://"), MemoryDriver)
    assert registry.factory("mem") == MemoryDriver.from_url


@pytest.mark.parametrize(
    "value",
    ["kv_no_such_module_xyz:Factory", "kv_core._memory:NoSuchFactory", "kv_core:__version__.x"],
)
def test_entry_point_that_fails_to_load_names_it(value: str) -> None:
    registry = bare()
    registry._entry_points = {"broken": EntryPoint("broken", value, ENTRY_POINT_GROUP)}
    with pytest.raises(UnsupportedOperationError) as info:
        registry.open_driver("broken://x")
    message = str(info.value)
    assert "broken://" in message
    assert value in message
    assert "failed to load" in message
    assert info.value.__cause__ is not None


def test_entry_point_raising_at_import_is_wrapped(tmp_path: Any, monkeypatch: Any) -> None:
    (tmp_path / "kv_test_exploding_plugin.py").write_text("raise RuntimeError('boom')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = bare()
    ep = EntryPoint("boom", "kv_test_exploding_plugin:Factory", ENTRY_POINT_GROUP)
    registry._entry_points = {"boom": ep}
    with pytest.raises(UnsupportedOperationError, match=r"RuntimeError: boom") as info:
        registry.open_driver("boom://")
    assert isinstance(info.value.__cause__, RuntimeError)


async def test_memory_url_through_the_default_registry() -> None:
    assert "memory" in default_registry.schemes()
    async with open_store("memory://") as store:
        await store.set("k", {"v": [1, 2]})
        assert await store.get("k") == {"v": [1, 2]}
        assert store.driver.name == "memory://"
    assert isinstance(open_driver("memory://"), MemoryDriver)


async def test_open_store_options_reach_the_memory_driver() -> None:
    ticks = iter(range(1000, 2000))
    store = open_store("memory://", clock=lambda: float(next(ticks)))
    async with store:
        await store.set("k", 1, ttl=5)
        entry = await store.get_entry("k")
        assert entry.expires_at == 1005.0


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("redis://user:hunter2@host:6379/0", "hunter2"),
        ("redis://:hunter2@host", "hunter2"),
        ("redis://user:hun/ter@2@host", "hun/ter"),  # unencoded / and @ in the password
        ("rediss://default:s3cr3t@host?ssl_cert_reqs=none", "s3cr3t"),
        ("redis://host/0?password=hunter2&db=1", "hunter2"),
        (
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=c2VjcmV0a2V5==;"
            "EndpointSuffix=core.windows.net",
            "c2VjcmV0a2V5",
        ),
        ("azure://c?sv=2024&sig=SIGNATURE%3D&sp=r", "SIGNATURE"),
        ("azure://c?SharedAccessSignature=sv=1&sig=abc", "abc"),
        ("https://h/c?access_token=tok123", "tok123"),
    ],
)
def test_redaction_hides_passwords_and_account_keys(url: str, secret: str) -> None:
    redacted = _redact(url)
    assert secret not in redacted
    assert "***" in redacted


def test_redaction_keeps_harmless_urls() -> None:
    for url in ("file:./data", "redis://localhost:6379/0", "memory://", "azure://container"):
        assert _redact(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=TOPSECRET==",
        "//user:TOPSECRET@host",
        "",
        "no scheme here password=TOPSECRET",
    ],
)
def test_bad_url_error_is_redacted(url: str) -> None:
    with pytest.raises(ValueError, match="not a store URL") as info:
        open_store(url)
    assert "TOPSECRET" not in str(info.value)


def test_scheme_of() -> None:
    assert scheme_of("Redis+Cluster://h") == "redis+cluster"
    assert scheme_of("file:relative/path") == "file"
    with pytest.raises(ValueError, match="not a store URL"):
        scheme_of("1redis://h")
