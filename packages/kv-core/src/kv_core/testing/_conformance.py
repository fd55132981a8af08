"""DriverConformance: every rule of DESIGN §3–§7 as a test, run through the Store.

A driver package runs it with one line::

    class TestConformance(DriverConformance): ...

given a function-scoped ``kv_harness`` fixture (see :class:`~kv_core.testing.Harness`).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, cast

import pytest

from .._codecs import BYTES, JSON, PICKLE, TEXT
from .._errors import (
    InvalidKeyError,
    KeyNotFoundError,
    SerializationError,
    StoreClosedError,
)
from .._store import Store
from ._concurrency import ConcurrencyConformance
from ._corpus import JSON_VALUES, RICH_VALUES, WEIRD_KEYS
from ._files import FilesConformance
from ._fixtures import StoreFixtures
from ._listing import ListingConformance
from ._state import StateConformance
from ._sync import SyncConformance
from ._ttl import TTLConformance

__all__ = ["DriverConformance"]


class BasicConformance(StoreFixtures):
    """Reads, writes, deletes, keys, codecs and errors."""

    async def test_set_then_get_returns_the_value(self, store: Store[Any]) -> None:
        for i, value in enumerate(JSON_VALUES):
            await store.set(f"k{i}", value)
        for i, value in enumerate(JSON_VALUES):
            assert await store.get(f"k{i}") == value

    async def test_missing_key_raises_key_not_found_naming_the_key(self, store: Store[Any]) -> None:
        with pytest.raises(KeyNotFoundError) as info:
            await store.get("nope")
        assert isinstance(info.value, KeyError)
        assert "nope" in str(info.value)

    async def test_default_is_returned_for_missing_but_stored_none_stays_none(
        self, store: Store[Any]
    ) -> None:
        assert await store.get("absent", default=7) == 7
        assert await store.get("absent", None) is None
        await store.set("none", None)
        assert await store.get("none", default=7) is None
        assert await store.exists("none")

    async def test_overwrite_replaces_the_value(self, store: Store[Any]) -> None:
        await store.set("k", 1)
        await store.set("k", {"b": 2})
        assert await store.get("k") == {"b": 2}

    async def test_delete_reports_whether_the_key_existed(self, store: Store[Any]) -> None:
        await store.set("k", 1)
        assert await store.delete("k") is True
        assert await store.delete("k") is False
        assert not await store.exists("k")
        assert await store.get("k", default="gone") == "gone"

    async def test_exists(self, store: Store[Any]) -> None:
        assert not await store.exists("k")
        await store.set("k", 0)
        assert await store.exists("k")

    async def test_a_second_driver_sees_the_same_data(
        self, store: Store[Any], other: Store[Any]
    ) -> None:
        await store.set("shared", [1, 2])
        assert await other.get("shared") == [1, 2]
        await other.delete("shared")
        assert not await store.exists("shared")

    async def test_weird_keys_round_trip_and_list_back_exactly(self, store: Store[Any]) -> None:
        for i, key in enumerate(WEIRD_KEYS):
            await store.set(key, i)
        for i, key in enumerate(WEIRD_KEYS):
            assert await store.get(key) == i, key
        assert sorted([k async for k in store.keys()]) == sorted(WEIRD_KEYS)
        for key in WEIRD_KEYS:
            assert await store.delete(key) is True, key
        assert [k async for k in store.keys()] == []

    async def test_invalid_keys_are_rejected_naming_the_key(self, store: Store[Any]) -> None:
        for bad in ("", "x" * 1025, "lone\ud800surrogate"):
            with pytest.raises(InvalidKeyError) as info:
                await store.set(bad, 1)
            assert isinstance(info.value, ValueError)
            if bad:
                assert bad[:4] in str(info.value)
        for not_str in (1, b"bytes", None):
            with pytest.raises(InvalidKeyError):
                await store.get(cast(str, not_str))
        assert [k async for k in store.keys()] == []

    async def test_keys_by_prefix_are_exact_and_complete(self, store: Store[Any]) -> None:
        names = [f"user/{i:03d}" for i in range(130)] + ["users/x", "user", "use", "other/1"]
        await store.set_many(dict.fromkeys(names, 1))
        assert sorted([k async for k in store.keys("user/")]) == sorted(names[:130])
        assert sorted([k async for k in store.keys("user")]) == sorted(
            [*names[:130], "users/x", "user"]
        )
        assert sorted([k async for k in store.keys()]) == sorted(names)
        assert [k async for k in store.keys("nothing/")] == []

    async def test_items_yield_keys_with_values(self, store: Store[Any]) -> None:
        await store.set_many({f"p/{i}": {"i": i} for i in range(5)} | {"q/1": 0})
        assert dict([kv async for kv in store.items("p/")]) == {
            f"p/{i}": {"i": i} for i in range(5)
        }

    async def test_clear_deletes_only_this_namespace(self, root: Store[Any]) -> None:
        a, b = root.namespace("a"), root.namespace("b")
        await a.set_many({"1": 1, "2": 2, "x/3": 3})
        await b.set("1", "b")
        await root.set("a", "root key named like the namespace")
        assert await a.clear() == 3
        assert [k async for k in a.keys()] == []
        assert await b.get("1") == "b"
        assert await root.get("a") == "root key named like the namespace"

    async def test_namespaces_isolate_and_nest(self, root: Store[Any]) -> None:
        a, b = root.namespace("a"), root.namespace("b")
        await a.set("k", "in a")
        await b.set("k", "in b")
        assert await a.get("k") == "in a"
        assert await b.get("k") == "in b"
        assert await root.get("a/k") == "in a"
        nested = root.namespace("x").namespace("y")
        await nested.set("k", 1)
        assert await root.namespace("x/y").get("k") == 1
        assert [k async for k in root.namespace("x").keys()] == ["y/k"]
        with pytest.raises(InvalidKeyError):
            root.namespace("")

    async def test_batches(self, store: Store[Any]) -> None:
        assert await store.get_many([]) == {}
        await store.set_many({})
        assert await store.delete_many([]) == 0
        await store.set_many({"a": 1, "b": None, "c": [3]})
        assert await store.get_many(["a", "b", "missing", "a"]) == {"a": 1, "b": None}
        assert await store.delete_many(["a", "missing", "a"]) == 1
        assert await store.get_many(["a", "b", "c"]) == {"b": None, "c": [3]}
        many = {f"m/{i}": i for i in range(150)}
        await store.set_many(many)
        assert await store.get_many(list(many)) == many
        assert await store.delete_many(list(many)) == 150

    async def test_large_value_round_trips(self, store: Store[Any]) -> None:
        blob = bytes(range(256)) * 4096 * 3  # 3 MiB
        raw = store.with_codec(BYTES)
        await raw.set("big", blob)
        assert await raw.get("big") == blob

    async def test_streams_round_trip_in_bounded_chunks(self, store: Store[Any]) -> None:
        raw = store.with_codec(BYTES)
        parts = [bytes([i]) * 100_000 for i in range(30)]  # 3 MB in uneven chunks
        etag = await raw.write_stream("stream", parts)
        assert etag == (await raw.get_entry("stream")).etag
        chunks = [c async for c in raw.read_stream("stream", chunk_size=256 * 1024)]
        assert all(len(c) <= 256 * 1024 for c in chunks)
        assert b"".join(chunks) == b"".join(parts)
        await raw.write_stream("empty", [])
        assert await raw.get("empty") == b""
        with pytest.raises(KeyNotFoundError):
            [c async for c in raw.read_stream("missing")]

    async def test_codecs_round_trip(self, store: Store[Any]) -> None:
        for i, value in enumerate(RICH_VALUES):
            await store.set(f"rich/{i}", value)
            assert await store.get(f"rich/{i}") == value, value
        await store.with_codec(BYTES).set("b", b"\x00\xff")
        assert await store.with_codec(BYTES).get("b") == b"\x00\xff"
        await store.with_codec(TEXT).set("t", "ünï")
        assert await store.with_codec(BYTES).get("t") == "ünï".encode()
        await store.with_codec(PICKLE).set("p", {1: {2, 3}})
        assert await store.with_codec(PICKLE).get("p") == {1: {2, 3}}
        await store.with_codec(BYTES).set("empty", b"")
        assert await store.with_codec(BYTES).get("empty") == b""

    async def test_json_is_stored_as_plain_readable_json(self, store: Store[Any]) -> None:
        value = {"name": "Ada", "langs": ["en", "fr"], "n": 1.5}
        await store.set("plain", value)
        raw = await store.with_codec(BYTES).get("plain")
        assert json.loads(raw) == value
        assert raw == json.dumps(value, separators=(",", ":")).encode()

    async def test_undecodable_data_raises_serialization_error_naming_the_key(
        self, store: Store[Any]
    ) -> None:
        await store.with_codec(BYTES).set("bad", b"\xff\xfe not json")
        for attempt in (
            store.get("bad"),
            store.get("bad", default=None),
            store.get_entry("bad"),
            store.get_many(["bad"]),
        ):
            with pytest.raises(SerializationError) as info:
                await attempt
            assert "bad" in str(info.value)
        with pytest.raises(SerializationError):
            [kv async for kv in store.items()]
        assert await store.with_codec(BYTES).get("bad") == b"\xff\xfe not json"

    async def test_unencodable_values_raise_and_write_nothing(self, store: Store[Any]) -> None:
        for bad in (float("nan"), float("inf"), object(), {"k": {1, object()}}):
            with pytest.raises(SerializationError) as info:
                await store.set("bad", bad)
            assert "bad" in str(info.value)
        with pytest.raises(SerializationError):
            await store.set_many({"ok": 1, "bad": float("nan")})
        assert [k async for k in store.keys()] == []

    async def test_use_after_close_raises(self, root: Store[Any]) -> None:
        view = root.namespace("v").with_codec(JSON)
        await root.set("k", 1)
        await root.aclose()
        await root.aclose()  # idempotent
        assert root.closed
        for store in (root, view):
            calls: list[Callable[[Store[Any]], Awaitable[object]]] = [
                lambda s: s.get("k"),
                lambda s: s.set("k", 1),
                lambda s: s.delete("k"),
                lambda s: s.exists("k"),
                lambda s: s.get_many(["k"]),
                lambda s: s.set_many({"k": 1}),
                lambda s: s.update("k", lambda v: v, default=0),
                lambda s: s.clear(),
            ]
            for call in calls:
                with pytest.raises(StoreClosedError):
                    await call(store)
            with pytest.raises(StoreClosedError):
                [k async for k in store.keys()]

    async def test_errors_chain_and_name_the_store(self, store: Store[Any]) -> None:
        with pytest.raises(KeyNotFoundError) as info:
            await store.get("missing")
        assert store.driver.name in str(info.value)


class DriverConformance(
    BasicConformance,
    ConcurrencyConformance,
    StateConformance,
    TTLConformance,
    ListingConformance,
    SyncConformance,
    FilesConformance,
):
    """The whole conformance suite. Subclass it once per driver (one line)."""
