"""The adapter's contract, on every backend (memory, folder, Redis, Azure, cache).

Each test states one rule of py-key-value's ``AsyncKeyValue`` semantics as this adapter
provides them (README, "Semantics"). The adapter sits on the ``app`` namespace of an
isolated store (``root``); ``root`` is used to look at what was really stored.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import uuid
from decimal import Decimal
from typing import Any

import pytest
from kv_core import BYTES, InvalidKeyError, SerializationError, Store
from kv_core.testing import TestClock
from kv_keyvalue import InvalidTTLError, KeyValueAdapter

LONG_COLLECTION = "c/%2F%h é🙂\x00\n" * 125  # 1,500 characters of everything
LONG_KEY = "k/../%2F é🙂\x01 //x" * 50  # 800 characters
WEIRD_KEYS = ["../x", "a//b", ".", "..", "CON", "%2F", "with space", "tab\tkey", "é🙂", "a/"]


async def stored_bytes(root: Store[Any], key: str) -> bytes | None:
    """The raw bytes the backend holds for ``key`` (a root key, namespace included)."""
    return await root.with_codec(BYTES).get(key, None)


# -- values ------------------------------------------------------------------------------


async def test_get_of_a_missing_key_is_none(kv: KeyValueAdapter) -> None:
    assert await kv.get("nope") is None
    assert await kv.get("nope", collection="other") is None


async def test_put_then_get_returns_an_equal_new_dict_each_time(kv: KeyValueAdapter) -> None:
    value = {"a": 1, "b": [1, 2, {"c": None}], "d": "é", "e": 1.5, "f": True}
    await kv.put("k", value)
    value["a"] = 2  # changing the caller's dict after put changes nothing stored
    first = await kv.get("k")
    assert first == {"a": 1, "b": [1, 2, {"c": None}], "d": "é", "e": 1.5, "f": True}
    assert first is not None
    first["b"].append("mutated")
    second = await kv.get("k")
    assert second == {"a": 1, "b": [1, 2, {"c": None}], "d": "é", "e": 1.5, "f": True}
    assert second is not first


async def test_values_are_stored_as_plain_json(kv: KeyValueAdapter, root: Store[Any]) -> None:
    value = {"$kv": "uuid", "v": "not a tag", "n": [1, 2.5], "s": "é"}
    await kv.put("k", value, collection="tools/list")
    data = await stored_bytes(root, "app/tools%2Flist/k")
    assert data is not None
    assert json.loads(data) == value  # plain JSON, readable by any program
    assert await kv.get("k", collection="tools/list") == value  # a "$kv" key is just data


@pytest.mark.parametrize(
    "value",
    [
        {"when": dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)},
        {"id": uuid.uuid4()},
        {"amount": Decimal("1.5")},
        {"raw": b"bytes"},
        {"set": {1, 2}},
        {"nan": math.nan},
        {"inf": [math.inf]},
    ],
)
async def test_values_that_are_not_plain_json_are_refused(
    kv: KeyValueAdapter, value: dict[str, Any]
) -> None:
    with pytest.raises(SerializationError):
        await kv.put("k", value)
    assert await kv.get("k") is None  # nothing was written


@pytest.mark.parametrize("value", [[1, 2], "text", None, 3, {1: "int key"}])
async def test_only_dicts_with_str_keys_are_values(kv: KeyValueAdapter, value: Any) -> None:
    with pytest.raises(SerializationError):
        await kv.put("k", value)
    with pytest.raises(SerializationError):
        await kv.put_many(["k"], [value])
    assert await kv.get("k") is None


async def test_inside_a_value_json_dumps_rules_apply(kv: KeyValueAdapter) -> None:
    # As in py-key-value's serialising stores: tuples become lists, and keys of nested
    # dicts that json.dumps accepts (int, float, bool, None) become strings.
    await kv.put("k", {"t": (1, 2), "nested": {1: "one", None: "none"}})
    assert await kv.get("k") == {"t": [1, 2], "nested": {"1": "one", "null": "none"}}


async def test_stored_data_that_is_not_a_json_object_is_a_serialization_error(
    kv: KeyValueAdapter, root: Store[Any]
) -> None:
    await root.with_codec(BYTES).set("app/default_collection/list", b"[1, 2]")
    await root.with_codec(BYTES).set("app/default_collection/junk", b"\xff not json")
    for key in ("list", "junk"):
        with pytest.raises(SerializationError):
            await kv.get(key)
        with pytest.raises(SerializationError):
            await kv.ttl(key)


# -- collections -------------------------------------------------------------------------


async def test_none_and_empty_collection_mean_the_default(
    kv: KeyValueAdapter, root: Store[Any]
) -> None:
    await kv.put("a", {"v": 1})
    await kv.put("b", {"v": 2}, collection="")
    await kv.put("c", {"v": 3}, collection="default_collection")
    assert await kv.get_many(["a", "b", "c"], collection=None) == [{"v": 1}, {"v": 2}, {"v": 3}]
    assert sorted(await kv.keys()) == ["a", "b", "c"]
    assert await stored_bytes(root, "app/default_collection/a") == b'{"v":1}'


async def test_default_collection_can_be_chosen(root: Store[Any]) -> None:
    kv = KeyValueAdapter(root.namespace("app"), default_collection="mine")
    await kv.put("a", {"v": 1})
    assert await kv.get("a", collection="mine") == {"v": 1}
    assert await kv.collections() == ["mine"]


async def test_collection_is_keyword_only(kv: KeyValueAdapter) -> None:
    with pytest.raises(TypeError):
        await kv.get("k", "collection")  # type: ignore[misc]
    with pytest.raises(TypeError):
        await kv.put("k", {"v": 1}, "collection")  # type: ignore[misc]


async def test_a_collection_with_a_slash_is_one_collection_and_never_collides(
    kv: KeyValueAdapter,
) -> None:
    await kv.put("list", {"who": "tools/list collection"}, collection="tools/list")
    await kv.put("list/list", {"who": "tools collection"}, collection="tools")
    await kv.put("x", {"who": "tools/list/x"}, collection="tools/list/x")
    assert await kv.get("list", collection="tools/list") == {"who": "tools/list collection"}
    assert await kv.get("list/list", collection="tools") == {"who": "tools collection"}
    assert await kv.get("list", collection="tools") is None
    assert await kv.keys("tools") == ["list/list"]
    assert await kv.keys("tools/list") == ["list"]
    assert sorted(await kv.collections()) == ["tools", "tools/list", "tools/list/x"]
    assert await kv.destroy_collection("tools") is True
    assert await kv.get("list", collection="tools/list") == {"who": "tools/list collection"}


async def test_long_collections_and_keys_of_any_characters(kv: KeyValueAdapter) -> None:
    assert len(LONG_COLLECTION) == 1_500
    assert len(LONG_KEY) == 800
    collections = [LONG_COLLECTION, LONG_COLLECTION[:-1], "%h" + "0" * 64, "%", "%25", "a%2Fb"]
    for i, collection in enumerate(collections):
        await kv.put(LONG_KEY, {"i": i}, collection=collection)
        for key in WEIRD_KEYS:
            await kv.put(key, {"key": key}, collection=collection)
    for i, collection in enumerate(collections):
        assert await kv.get(LONG_KEY, collection=collection) == {"i": i}
        assert sorted(await kv.keys(collection)) == sorted([LONG_KEY, *WEIRD_KEYS])
        assert await kv.get_many(WEIRD_KEYS, collection=collection) == [
            {"key": k} for k in WEIRD_KEYS
        ]
    assert sorted(await kv.collections()) == sorted(collections)
    assert await kv.destroy_collection(LONG_COLLECTION) is True
    assert await kv.get(LONG_KEY, collection=LONG_COLLECTION) is None
    assert await kv.get(LONG_KEY, collection=LONG_COLLECTION[:-1]) == {"i": 1}
    assert sorted(await kv.collections()) == sorted(collections[1:])
    assert await kv.destroy_collection(LONG_COLLECTION) is False


async def test_invalid_keys_are_refused(kv: KeyValueAdapter) -> None:
    for bad in ("", "x" * 1025, "lone \ud800 surrogate"):
        with pytest.raises(InvalidKeyError):
            await kv.put(bad, {"v": 1})
        with pytest.raises(InvalidKeyError):
            await kv.get(bad)
    with pytest.raises(InvalidKeyError):
        await kv.put("k", {"v": 1}, collection="lone \ud800" * 200)
    assert await kv.keys() == []


async def test_keys_and_collections_honour_limit(kv: KeyValueAdapter) -> None:
    await kv.put_many([f"k{i}" for i in range(7)], [{"i": i} for i in range(7)])
    for c in range(4):
        await kv.put("k", {"c": c}, collection=f"c{c}")
    assert len(await kv.keys(limit=3)) == 3
    assert len(await kv.keys(None, limit=100)) == 7
    assert len(await kv.collections(limit=2)) == 2
    assert len(await kv.collections()) == 5
    with pytest.raises(ValueError, match="limit"):
        await kv.keys(limit=0)


# -- TTL ---------------------------------------------------------------------------------


async def test_ttl_of_missing_and_of_keys_without_expiry(kv: KeyValueAdapter) -> None:
    assert await kv.ttl("missing") == (None, None)
    await kv.put("k", {"v": 1})
    assert await kv.ttl("k") == ({"v": 1}, None)


async def test_ttl_is_seconds_left_as_a_float(kv: KeyValueAdapter) -> None:
    await kv.put("k", {"v": 1}, ttl=100)
    value, left = await kv.ttl("k")
    assert value == {"v": 1}
    assert isinstance(left, float)
    assert 90 < left <= 100
    await kv.put("int", {"v": 1}, ttl=Decimal(50))  # any SupportsFloat
    _, left = await kv.ttl("int")
    assert left is not None
    assert 40 < left <= 50


async def test_expired_keys_are_missing_everywhere(kv: KeyValueAdapter, clock: TestClock) -> None:
    await kv.put("short", {"v": 1}, ttl=0.8)
    await kv.put_many(["s1", "s2"], [{"v": 1}, {"v": 2}], ttl=0.8)
    await kv.put("long", {"v": 2}, ttl=3600)
    await kv.put("forever", {"v": 3})
    await clock.elapse(1.2)
    assert sorted(await kv.keys()) == ["forever", "long"]
    assert await kv.get("short") is None
    assert await kv.ttl("short") == (None, None)
    assert await kv.get_many(["short", "s1", "long"]) == [None, None, {"v": 2}]
    assert (await kv.ttl_many(["s2", "forever"])) == [(None, None), ({"v": 3}, None)]
    assert await kv.delete("short") is False
    assert await kv.delete_many(["s1", "s2", "long"]) == 1


@pytest.mark.parametrize(
    "ttl", [True, False, 0, 0.0, -1, -0.5, math.nan, math.inf, -math.inf, "5", b"5", object()]
)
async def test_invalid_ttls_are_refused_before_any_write(kv: KeyValueAdapter, ttl: Any) -> None:
    with pytest.raises(InvalidTTLError):
        await kv.put("k", {"v": 1}, ttl=ttl)
    with pytest.raises(InvalidTTLError):
        await kv.put_many(["k"], [{"v": 1}], ttl=ttl)
    with pytest.raises(InvalidTTLError):
        await kv.put_if_absent("k", {"v": 1}, ttl=ttl)
    assert await kv.get("k") is None


async def test_a_ttl_beyond_kvs_longest_is_refused(kv: KeyValueAdapter) -> None:
    with pytest.raises(InvalidTTLError):
        await kv.put("k", {"v": 1}, ttl=1e11)


# -- batches -----------------------------------------------------------------------------


async def test_get_many_is_aligned_with_its_keys_duplicates_included(kv: KeyValueAdapter) -> None:
    await kv.put_many(["a", "b"], [{"v": "a"}, {"v": "b"}])
    got = await kv.get_many(["b", "missing", "a", "b"])
    assert got == [{"v": "b"}, None, {"v": "a"}, {"v": "b"}]
    assert got[0] is not got[3]  # a new dict for every position
    assert await kv.get_many([]) == []


async def test_ttl_many_is_aligned_with_its_keys(kv: KeyValueAdapter) -> None:
    await kv.put("a", {"v": "a"}, ttl=100)
    await kv.put("b", {"v": "b"})
    got = await kv.ttl_many(["a", "missing", "b", "a"])
    assert [v for v, _ in got] == [{"v": "a"}, None, {"v": "b"}, {"v": "a"}]
    assert [t is None for _, t in got] == [False, True, True, False]
    assert got[0][1] is not None
    assert 90 < got[0][1] <= 100
    assert await kv.ttl_many([]) == []


async def test_put_many_with_unequal_lengths_is_a_value_error(kv: KeyValueAdapter) -> None:
    with pytest.raises(ValueError, match="keys"):
        await kv.put_many(["a", "b"], [{"v": 1}])
    assert await kv.keys() == []


async def test_put_many_writes_every_pair_with_one_ttl(kv: KeyValueAdapter) -> None:
    await kv.put_many(["a", "b", "a"], [{"v": 1}, {"v": 2}, {"v": 3}], collection="c", ttl=60)
    assert await kv.get_many(["a", "b"], collection="c") == [{"v": 3}, {"v": 2}]  # last wins
    for _, left in await kv.ttl_many(["a", "b"], collection="c"):
        assert left is not None
        assert 50 < left <= 60
    await kv.put_many([], [], collection="empty")
    assert "empty" not in await kv.collections()


async def test_delete_returns_whether_it_existed_and_delete_many_counts(
    kv: KeyValueAdapter,
) -> None:
    await kv.put_many(["a", "b", "c"], [{"v": 1}, {"v": 2}, {"v": 3}])
    assert await kv.delete("a") is True
    assert await kv.delete("a") is False
    assert await kv.delete_many(["b", "c", "missing", "b"]) == 2
    assert await kv.delete_many([]) == 0
    assert await kv.keys() == []


# -- put_if_absent -----------------------------------------------------------------------


async def test_put_if_absent_writes_only_a_missing_or_expired_key(
    kv: KeyValueAdapter, clock: TestClock
) -> None:
    assert await kv.put_if_absent("code", {"user": "ada"}, ttl=0.8) is True
    assert await kv.put_if_absent("code", {"user": "eve"}) is False
    assert await kv.get("code") == {"user": "ada"}
    await clock.elapse(1.2)
    assert await kv.put_if_absent("code", {"user": "bob"}, collection=None) is True
    assert await kv.ttl("code") == ({"user": "bob"}, None)
    assert await kv.put_if_absent("x", {"v": 1}, collection=LONG_COLLECTION) is True
    assert LONG_COLLECTION in await kv.collections()


async def test_put_if_absent_is_atomic_among_concurrent_callers(
    kv: KeyValueAdapter, harness: Any, backend: str, clock: TestClock
) -> None:
    # Two adapters over two drivers of the same storage (one process playing two), except
    # for the cache, whose independent write-back caches do not share writes by design.
    other_root: Store[Any] | None = None
    if backend == "cache":
        other = kv
    else:
        other_root = Store(harness.make_driver(clock=clock))
        other = KeyValueAdapter(other_root.namespace("app"))
    try:
        results = await asyncio.gather(
            *((kv if i % 2 else other).put_if_absent("auth-code", {"winner": i}) for i in range(20))
        )
        assert results.count(True) == 1
        winner = results.index(True)
        assert await kv.get("auth-code") == {"winner": winner}
    finally:
        if other_root is not None:
            await other_root.aclose()


# -- the namespace -----------------------------------------------------------------------


async def test_nothing_outside_the_adapters_namespace_is_touched(
    kv: KeyValueAdapter, root: Store[Any]
) -> None:
    outside = {"outside": 1, "appendix/x": 2, "app2/default_collection/k": 3, "ap": 4}
    await root.set_many(outside)
    await kv.put("k", {"v": 1})
    await kv.put("k", {"v": 1}, collection=LONG_COLLECTION)
    assert sorted(await kv.collections()) == sorted(["default_collection", LONG_COLLECTION])
    await kv.cull()
    assert await kv.destroy_collection("default_collection") is True
    assert await kv.destroy() is True
    assert await kv.collections() == []
    assert sorted([k async for k in root.keys()]) == sorted(outside)
    assert await root.get_many(list(outside)) == outside


async def test_keys_the_adapter_did_not_write_are_not_collections(
    kv: KeyValueAdapter, root: Store[Any]
) -> None:
    await root.set("app/bare", {"v": 1})  # a key without a collection segment
    await kv.put("k", {"v": 1}, collection="real")
    assert await kv.collections() == ["real"]


# -- cull and lifecycle ------------------------------------------------------------------


async def test_cull_keeps_live_data(kv: KeyValueAdapter, clock: TestClock) -> None:
    await kv.put("gone", {"v": 1}, ttl=0.8)
    await kv.put("kept", {"v": 2}, ttl=3600)
    await clock.elapse(1.2)
    await kv.cull()
    assert await kv.keys() == ["kept"]
    assert await kv.get("kept") == {"v": 2}
