"""Router: longest prefix wins; listing and clearing see each key exactly once."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from kv_core import Capability, MemoryDriver, RawEntry, Store
from kv_core.middleware import Router

from ._middleware_support import FaultyDriver


async def test_each_key_goes_to_the_longest_matching_prefix() -> None:
    a, ab, default = MemoryDriver(), MemoryDriver(), MemoryDriver()
    store: Store[Any] = Store(Router({"a/": a, "a/b/": ab}, default=default))
    await store.set_many({"a/1": 1, "a/b/2": 2, "a/bc": 3, "z": 4})
    assert sorted([k async for k in a.keys()]) == ["a/1", "a/bc"]
    assert [k async for k in ab.keys()] == ["a/b/2"]
    assert [k async for k in default.keys()] == ["z"]
    assert await store.get_many(["z", "a/b/2", "a/1", "missing"]) == {"z": 4, "a/b/2": 2, "a/1": 1}
    assert sorted([k async for k in store.keys("a/")]) == ["a/1", "a/b/2", "a/bc"]
    assert [k async for k in store.keys("a/b/")] == ["a/b/2"]
    assert await store.namespace("a").clear() == 3
    assert [k async for k in store.keys()] == ["z"]


async def test_a_namespace_routes_on_the_full_key() -> None:
    tenant, default = MemoryDriver(), MemoryDriver()
    root: Store[Any] = Store(Router({"tenants/acme/": tenant}, default=default))
    await root.namespace("tenants").namespace("acme").set("k", 1)
    await root.namespace("tenants").namespace("other").set("k", 2)
    assert [k async for k in tenant.keys()] == ["tenants/acme/k"]
    assert [k async for k in default.keys()] == ["tenants/other/k"]


async def test_a_driver_serving_several_routes_lists_each_key_once() -> None:
    shared, other = MemoryDriver(), MemoryDriver()
    router = Router({"x/": shared, "x/y/": other, "x/y/z/": shared}, default=shared)
    store: Store[Any] = Store(router)
    names = ["x/1", "x/y/2", "x/y/z/3", "w", "x/y/z"]
    await store.set_many(dict.fromkeys(names, 0))
    assert sorted([k async for k in store.keys()]) == sorted(names)
    assert sorted([k async for k in store.keys("x/y")]) == ["x/y/2", "x/y/z", "x/y/z/3"]
    assert await store.clear() == 5
    assert [k async for k in shared.keys()] == []
    assert [k async for k in other.keys()] == []


async def test_stray_keys_outside_a_routes_prefix_are_not_listed_twice() -> None:
    shared = MemoryDriver()
    # Written directly: "b/1" lives in the driver of route "a/" too (it is also the default).
    router = Router({"a/": shared}, default=shared)
    await shared.set("b/1", b"1")
    await shared.set("a/1", b"1")
    assert sorted([k async for k in router.keys()]) == ["a/1", "b/1"]


def test_router_capabilities_and_validation() -> None:
    streaming = FaultyDriver()
    router = Router({"s/": streaming}, default=MemoryDriver())
    caps = router.capabilities
    assert caps & Capability.GET_MANY
    assert caps & Capability.CLEAR
    assert not caps & Capability.STREAM  # only if every route streams
    assert Router({"s/": streaming}, default=FaultyDriver()).capabilities & Capability.STREAM
    with pytest.raises(ValueError, match="non-empty"):
        Router({"": MemoryDriver()}, default=MemoryDriver())
    assert "'s/'" in router.name


async def test_router_closes_every_driver_once() -> None:
    shared = MemoryDriver()
    other = MemoryDriver()
    await Router({"a": shared, "b": other}, default=shared).aclose()
    for driver in (shared, other):
        with pytest.raises(Exception, match="closed"):
            await driver.get("k")


segments = st.sampled_from(["a", "b", "ab", "a/", "b/", "a/b", "a/b/", "/", "c"])
prefixes = st.lists(segments, min_size=1, max_size=3).map("".join)


@given(
    routes=st.dictionaries(prefixes, st.integers(0, 2), max_size=5),
    default=st.integers(0, 2),
    keys=st.sets(st.lists(segments, min_size=1, max_size=4).map("".join), max_size=25),
    prefix=st.one_of(st.just(""), prefixes),
)
@example(routes={"a": 0, "a/": 1}, default=0, keys={"a/b", "ab", "b"}, prefix="a")
async def test_listing_and_clearing_match_a_plain_dict(
    routes: dict[str, int], default: int, keys: set[str], prefix: str
) -> None:
    datas: list[dict[str, RawEntry]] = [{}, {}, {}]
    drivers = [MemoryDriver(clock=time.time, data=d) for d in datas]
    router = Router({p: drivers[i] for p, i in routes.items()}, default=drivers[default])
    store = Store(router)
    await store.set_many(dict.fromkeys(keys, 1))
    expected = sorted(k for k in keys if k.startswith(prefix))
    listed = [k async for k in router.keys(prefix)]
    assert sorted(listed) == expected  # complete, and no key twice
    assert sum(len(d) for d in datas) == len(keys)  # each key stored exactly once
    assert await router.clear(prefix) == len(expected)
    assert sorted([k async for k in router.keys()]) == sorted(set(keys) - set(expected))
