"""py-key-value's own protocol, wrappers and adapters running over the adapter.

py-key-value-aio is a test dependency (0.5 on Python 3.11+, 0.4.x on 3.10, where the
last FastMCP for that Python pins it; the protocol and error classes are the same).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from key_value.aio import errors as pkv_errors
from key_value.aio.protocols import key_value as protocols
from kv_core import BYTES, InvalidKeyError, SerializationError, Store
from kv_core.testing import TestClock, free_port
from kv_keyvalue import InvalidTTLError, KeyValueAdapter
from pydantic import BaseModel


@pytest.fixture(params=["memory", "file", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    """py-key-value's layers see only the protocol: three backends are enough here."""
    return str(request.param)


class User(BaseModel):
    name: str
    tags: list[str] = []


def test_the_adapter_satisfies_every_protocol_segment(kv: KeyValueAdapter) -> None:
    for protocol in (
        protocols.AsyncKeyValueProtocol,
        protocols.AsyncCullProtocol,
        protocols.AsyncEnumerateKeysProtocol,
        protocols.AsyncEnumerateCollectionsProtocol,
        protocols.AsyncDestroyStoreProtocol,
        protocols.AsyncDestroyCollectionProtocol,
    ):
        assert isinstance(kv, protocol), protocol
    # AsyncKeyValue itself is runtime-checkable from py-key-value-aio 0.5 on; with 0.4.x
    # (Python 3.10) the structural check is the one above.
    if getattr(protocols.AsyncKeyValue, "_is_runtime_protocol", False):
        assert isinstance(kv, protocols.AsyncKeyValue)


async def test_errors_are_also_py_key_values(kv: KeyValueAdapter, root: Store[Any]) -> None:
    with pytest.raises(pkv_errors.SerializationError) as caught:
        await kv.put("k", {"when": object()})
    assert isinstance(caught.value, SerializationError)
    with pytest.raises(pkv_errors.InvalidKeyError) as caught_key:
        await kv.get("")
    assert isinstance(caught_key.value, InvalidKeyError)
    assert isinstance(caught_key.value, ValueError)
    with pytest.raises(pkv_errors.InvalidTTLError) as caught_ttl:
        await kv.put("k", {"v": 1}, ttl=-1)
    assert isinstance(caught_ttl.value, InvalidTTLError)
    await root.with_codec(BYTES).set("app/default_collection/bad", b"not json")
    with pytest.raises(pkv_errors.DeserializationError) as caught_read:
        await kv.get("bad")
    assert isinstance(caught_read.value, SerializationError)
    assert "app/default_collection/bad" in str(caught_read.value)
    assert isinstance(caught_read.value, pkv_errors.BaseKeyValueError)


async def test_an_unreachable_backend_is_a_store_connection_error() -> None:
    from kv_core import BackendUnavailableError

    kv = KeyValueAdapter.from_url(f"redis://127.0.0.1:{free_port()}/0", timeout=2)
    async with kv:
        with pytest.raises(pkv_errors.StoreConnectionError) as caught:
            await kv.get("k")
    assert isinstance(caught.value, BackendUnavailableError)
    assert caught.value.__cause__ is not None  # the client's error stays chained


async def test_pydantic_adapter_stores_models(kv: KeyValueAdapter, root: Store[Any]) -> None:
    from key_value.aio.adapters.pydantic import PydanticAdapter

    users = PydanticAdapter(key_value=kv, pydantic_model=User, default_collection="users/v1")
    await users.put("ada", User(name="Ada", tags=["math"]), ttl=60)
    assert await users.get("ada") == User(name="Ada", tags=["math"])
    assert await users.get("nobody") is None
    model, left = await users.ttl("ada")
    assert model == User(name="Ada", tags=["math"])
    assert left is not None
    assert 50 < left <= 60
    data = await root.with_codec(BYTES).get("app/users%2Fv1/ada")
    assert json.loads(data) == {"name": "Ada", "tags": ["math"]}  # plain JSON
    lists = PydanticAdapter(key_value=kv, pydantic_model=list[User], default_collection="l")
    await lists.put("all", [User(name="A"), User(name="B")])
    assert await lists.get("all") == [User(name="A"), User(name="B")]


async def test_statistics_wrapper_counts_hits_and_misses(kv: KeyValueAdapter) -> None:
    from key_value.aio.wrappers.statistics import StatisticsWrapper

    stats = StatisticsWrapper(key_value=kv)
    await stats.put("k", {"v": 1}, collection="c")
    assert await stats.get("k", collection="c") == {"v": 1}
    assert await stats.get("missing", collection="c") is None
    assert await stats.get_many(["k", "missing"], collection="c") == [{"v": 1}, None]
    counts = stats.statistics.collections["c"]
    assert (counts.get.hit, counts.get.miss, counts.put.count) == (2, 2, 1)


async def test_ttl_clamp_wrapper_clamps_what_reaches_the_store(
    kv: KeyValueAdapter, clock: TestClock
) -> None:
    from key_value.aio.wrappers.ttl_clamp import TTLClampWrapper

    clamped = TTLClampWrapper(key_value=kv, min_ttl=30, max_ttl=100, missing_ttl=50)
    await clamped.put("long", {"v": 1}, ttl=10_000)
    await clamped.put("short", {"v": 1}, ttl=1)
    await clamped.put("none", {"v": 1})
    for key, low, high in (("long", 90, 100), ("short", 20, 30), ("none", 40, 50)):
        _, left = await kv.ttl(key)
        assert left is not None
        assert low < left <= high, key


async def test_limit_size_wrapper_refuses_or_skips_large_entries(kv: KeyValueAdapter) -> None:
    from key_value.aio.wrappers.limit_size import LimitSizeWrapper

    strict = LimitSizeWrapper(key_value=kv, max_size=100)
    await strict.put("small", {"v": "x" * 10})
    with pytest.raises(pkv_errors.EntryTooLargeError):
        await strict.put("big", {"v": "x" * 200})
    lenient = LimitSizeWrapper(key_value=kv, max_size=100, raise_on_too_large=False)
    await lenient.put_many(["big", "small2"], [{"v": "x" * 200}, {"v": 1}])
    assert await kv.get_many(["small", "big", "small2"]) == [{"v": "x" * 10}, None, {"v": 1}]


async def test_fernet_encryption_wrapper_stores_only_ciphertext(
    kv: KeyValueAdapter, root: Store[Any]
) -> None:
    from cryptography.fernet import Fernet
    from key_value.aio.wrappers.encryption import FernetEncryptionWrapper

    key = Fernet.generate_key()
    secret = FernetEncryptionWrapper(key_value=kv, fernet=Fernet(key))
    await secret.put("token", {"access_token": "s3cr3t"}, collection="oauth", ttl=60)
    assert await secret.get("token", collection="oauth") == {"access_token": "s3cr3t"}
    raw = await root.with_codec(BYTES).get("app/oauth/token")
    assert b"s3cr3t" not in raw
    assert "__encrypted_data__" in json.loads(raw)
    wrong = FernetEncryptionWrapper(key_value=kv, fernet=Fernet(Fernet.generate_key()))
    with pytest.raises(pkv_errors.DecryptionError):
        await wrong.get("token", collection="oauth")


async def test_the_same_operations_give_what_py_key_values_memory_store_gives(
    kv: KeyValueAdapter,
) -> None:
    from key_value.aio.stores.memory import MemoryStore

    reference = MemoryStore()

    async def both(name: str, *args: Any, **kwargs: Any) -> None:
        ours = await getattr(kv, name)(*args, **kwargs)
        theirs = await getattr(reference, name)(*args, **kwargs)
        if name in ("keys", "collections"):
            ours, theirs = sorted(ours), sorted(theirs)
        assert ours == theirs, (name, args, kwargs)

    await both("put", "a", {"v": 1})
    await both("put", "b", {"v": [1, "x", None]}, collection="tools/list")
    await both("put_many", ["c", "d", "c"], [{"v": 1}, {"v": 2}, {"v": 3}], collection="c")
    await both("get", "a")
    await both("get", "a", collection="")
    await both("get_many", ["c", "x", "d", "c"], collection="c")
    await both("keys", "c")
    await both("collections")
    await both("delete", "a")
    await both("delete", "a")
    await both("delete_many", ["c", "c", "x"], collection="c")
    await both("get_many", [], collection="c")
    await both("ttl", "b", collection="tools/list")
    await both("ttl", "zz")
    await both("destroy_collection", "tools/list")
    # (py-key-value-aio's MemoryStore raises KeyError on a destroyed collection's next get.)
    assert await kv.get("b", collection="tools/list") is None
    with pytest.raises(ValueError, match="keys"):
        await reference.put_many(["x"], [])
    with pytest.raises(ValueError, match="keys"):
        await kv.put_many(["x"], [])


async def test_concurrent_put_if_absent_lets_one_authorization_code_through(
    kv: KeyValueAdapter,
) -> None:
    # What FastMCP's OAuth proxy lacks with put(): a code redeemed twice at once.
    results = await asyncio.gather(
        *(kv.put_if_absent(f"redeemed-{i % 3}", {"by": i}, collection="codes") for i in range(30))
    )
    assert results.count(True) == 3


def test_a_dual_error_survives_pickling() -> None:
    import pickle

    from kv_core import MemoryDriver

    async def refused() -> BaseException:
        kv = KeyValueAdapter(Store(MemoryDriver()))
        try:
            await kv.put("k", {"bad": {1, 2}})
        except SerializationError as exc:
            return exc
        raise AssertionError("not refused")

    exc = asyncio.run(refused())
    again = pickle.loads(pickle.dumps(exc))
    assert type(again) is type(exc)
    assert isinstance(again, pkv_errors.SerializationError)
    assert str(again) == str(exc)


async def test_a_cyclic_value_is_a_serialization_error(kv: KeyValueAdapter) -> None:
    value: dict[str, Any] = {}
    value["self"] = value
    with pytest.raises(pkv_errors.SerializationError):
        await kv.put("k", value)


_COLLECTIONS = st.sampled_from([None, "", "tools", "tools/list", "a::b", "é" * 250])
_KEYS = st.sampled_from(["a", "list/x", "b::c", "é", "../x"])
_VALUES = st.dictionaries(st.sampled_from(["x", "y", "$kv"]), st.integers() | st.text(), max_size=2)
_OPS = st.one_of(
    st.tuples(st.just("put"), _KEYS, _VALUES, _COLLECTIONS),
    st.tuples(st.just("get"), _KEYS, _COLLECTIONS),
    st.tuples(st.just("ttl"), _KEYS, _COLLECTIONS),
    st.tuples(st.just("delete"), _KEYS, _COLLECTIONS),
    st.tuples(st.just("get_many"), st.lists(_KEYS, max_size=4), _COLLECTIONS),
    st.tuples(st.just("delete_many"), st.lists(_KEYS, max_size=4), _COLLECTIONS),
    st.tuples(st.just("put_many"), st.lists(st.tuples(_KEYS, _VALUES), max_size=4), _COLLECTIONS),
    st.tuples(st.just("keys"), _COLLECTIONS),
)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_OPS, max_size=30))
async def test_random_operations_agree_with_py_key_values_memory_store(
    ops: list[tuple[Any, ...]],
) -> None:
    import warnings

    from key_value.aio.stores.memory import MemoryStore
    from kv_core import MemoryDriver

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = MemoryStore()
    kv = KeyValueAdapter(Store(MemoryDriver()))
    for op in ops:
        name, *args, collection = op
        if name == "put_many":
            args = [[k for k, _ in args[0]], [v for _, v in args[0]]]
        ours = await getattr(kv, name)(*args, collection=collection)
        theirs = await getattr(reference, name)(*args, collection=collection)
        if name == "keys":
            ours, theirs = sorted(ours), sorted(theirs)
        assert ours == theirs, op
