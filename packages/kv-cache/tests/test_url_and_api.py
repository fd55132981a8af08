"""Opening by URL, option checking and the public surface."""

from __future__ import annotations

import types

import kv_cache
import pytest
from kv_cache import CachedDriver, CacheMode, split_cache_url
from kv_core import MemoryDriver, Registry, open_driver, open_store


def test_public_surface_is_exactly_all() -> None:
    public = {
        n
        for n in dir(kv_cache)
        if not n.startswith("_") and not isinstance(getattr(kv_cache, n), types.ModuleType)
    }
    assert public == set(kv_cache.__all__) - {"__version__"}
    for name in kv_cache.__all__:
        assert getattr(kv_cache, name) is not None


async def test_open_store_routes_cache_urls_with_options() -> None:
    store = open_store("cache+memory://", mode="write_through", max_items=7, max_staleness=2)
    async with store:
        driver = store.driver
        assert isinstance(driver, CachedDriver)
        assert driver.mode is CacheMode.WRITE_THROUGH
        assert driver._table.max_items == 7
        assert isinstance(driver.inner, MemoryDriver)
        await store.set("k", 1)
        assert await store.get("k") == 1


def test_options_in_the_url_query_are_taken_out_of_the_inner_url() -> None:
    inner, options = split_cache_url(
        "cache+redis://h:1/0?cache_mode=write-back&socket_timeout=3&cache_ttl=none"
        "&cache_negative_caching=off&cache_max_bytes=1024"
    )
    assert inner == "redis://h:1/0?socket_timeout=3"
    assert options == {
        "mode": "write-back",
        "max_staleness": None,
        "negative_caching": False,
        "max_bytes": 1024,
    }
    assert split_cache_url("cache+file:./data") == ("file:./data", {})


@pytest.mark.parametrize(
    "url",
    ["redis://h", "cache+memory://?cache_nope=1", "cache+memory://?cache_max_items=lots"],
)
def test_bad_cache_urls_are_rejected(url: str) -> None:
    with pytest.raises(ValueError):
        split_cache_url(url)


def test_a_hand_built_registry_can_route_cache_urls() -> None:
    registry = Registry(use_entry_points=False)
    registry.register("memory", MemoryDriver.from_url)
    registry.register("cache", CachedDriver.from_url)
    driver = registry.open_driver("cache+memory://", mode="none")
    assert isinstance(driver, CachedDriver)
    assert driver.mode is CacheMode.NONE
    assert isinstance(open_driver("cache+memory://"), CachedDriver)


@pytest.mark.parametrize(
    "options",
    [
        {"mode": "sideways"},
        {"on_conflict": "ignore"},
        {"max_items": -1},
        {"max_staleness": -1},
        {"flush_interval": 0},
    ],
)
def test_bad_options_are_rejected(options: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        CachedDriver(MemoryDriver(), **options)  # type: ignore[arg-type]


def test_repr_and_name_say_what_is_wrapped() -> None:
    driver = CachedDriver(MemoryDriver(), mode="write_through")
    assert driver.name == "cache+memory://"
    assert "write_through" in repr(driver)


INNER_URLS = [
    "file:./data2",
    "file:data",
    "file:../up/data",
    "file:/srv/kv/data",
    "file:///srv/kv/data",
    "file:C:/kv/data",
    "memory://",
    "redis://localhost:6379/0",
    "redis://user:p%40ss%2Fword@h:6379/2?socket_timeout=3&health_check_interval=0",
    "rediss://h:6380/1?ssl_cert_reqs=none",
    "redis+cluster://h1:7000,h2:7001",
    "unix:///tmp/redis.sock?db=1",
    "azure://container",
    "azure://c?create_container=true&account_url=http%3A%2F%2F127.0.0.1%3A10000%2Fdev",
]


@pytest.mark.parametrize("inner", INNER_URLS)
@pytest.mark.parametrize(
    "options",
    ["cache_mode=write_back&cache_ttl=5", "cache_max_items=7", "cache_negative_caching=off"],
)
def test_every_inner_url_reaches_the_registry_exactly_minus_the_cache_options(
    inner: str, options: str
) -> None:
    # Issue 12, item 2: "cache+file:./data2?cache_mode=..." used to open /data2.
    sep = "&" if "?" in inner else "?"
    got, parsed = split_cache_url(f"cache+{inner}{sep}{options}")
    assert got == inner
    assert parsed
    # Options first, inner parameters after: still the inner URL exactly.
    if "?" in inner:
        base, query = inner.split("?", 1)
        assert split_cache_url(f"cache+{base}?{options}&{query}")[0] == inner
    assert split_cache_url(f"cache+{inner}") == (inner, {})


def test_a_fragment_and_odd_parameters_stay_as_written() -> None:
    url = "cache+memory://?a=1&&b=%20x&cache_mode=none#frag"
    assert split_cache_url(url) == ("memory://?a=1&b=%20x#frag", {"mode": "none"})
