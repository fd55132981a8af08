"""ReadOnly, SizeLimit and TTLPolicy."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from kv_core import (
    BYTES,
    KeyNotFoundError,
    MemoryDriver,
    Store,
    StoreClosedError,
    UnsupportedOperationError,
    ValueTooLargeError,
)
from kv_core.middleware import ReadOnly, SizeLimit, TTLPolicy
from kv_core.testing import TestClock

from ._middleware_support import FaultyDriver


async def _filled() -> tuple[MemoryDriver, dict[str, Any]]:
    inner = MemoryDriver()
    data: dict[str, Any] = {"a": 1, "b": {"x": [1, 2]}, "dir/c": "three"}
    await Store(inner).set_many(data)
    await Store(inner).set("ttl", 4, ttl=60)
    return inner, data | {"ttl": 4}


# -- ReadOnly -----------------------------------------------------------------------------


async def test_read_only_serves_every_read() -> None:
    inner, data = await _filled()
    store: Store[Any] = Store(ReadOnly(inner))
    for key, value in data.items():
        assert await store.get(key) == value
        assert (await store.get_entry(key)).etag == (await inner.get(key)).etag  # type: ignore[union-attr]
    assert await store.get_many(list(data)) == data
    assert await store.exists("a")
    assert await store.ttl("ttl") == pytest.approx(60, abs=5)
    assert sorted([k async for k in store.keys()]) == sorted(data)
    assert dict([kv async for kv in store.items("dir/")]) == {"dir/c": "three"}
    assert b"".join([c async for c in store.read_stream("a")]) == b"1"
    async with store.open("dir/c", "rb") as f:
        assert await f.read() == b'"three"'
    with pytest.raises(KeyNotFoundError):
        await store.get("missing")


async def test_read_only_refuses_every_write_naming_the_key_and_changes_nothing() -> None:
    inner, data = await _filled()
    store: Store[Any] = Store(ReadOnly(inner))
    entry = await store.get_entry("a")
    taken = []

    def chunks() -> Any:
        taken.append(1)
        yield b"never read"

    attempts = {
        "set": store.set("a", 2),
        "if_match": store.set("a", 2, if_match=entry.etag),
        "if_absent": store.set("new", 2, if_absent=True),
        "delete": store.delete("a"),
        "set_many": store.set_many({"a": 2, "z": 3}),
        "delete_many": store.delete_many(["a", "b"]),
        "clear": store.namespace("dir").clear(),
        "update": store.update("a", lambda v: v + 1),
        "write_stream": store.write_stream("a", chunks()),
    }
    for what, attempt in attempts.items():
        with pytest.raises(UnsupportedOperationError) as info:
            await attempt
        assert "read-only" in str(info.value), what
        assert info.value.key in ("a", "new", "dir/"), what
    with pytest.raises(UnsupportedOperationError):
        async with store.open("a", "wb") as f:
            await f.write(b"2")
    assert taken == []
    assert {k: await Store(inner).get(k) for k in data} == data


async def test_read_only_after_close_says_closed() -> None:
    driver = ReadOnly(MemoryDriver())
    await driver.aclose()
    with pytest.raises(StoreClosedError):
        await driver.set("k", b"v")
    with pytest.raises(StoreClosedError):
        await driver.get("k")


# -- SizeLimit ----------------------------------------------------------------------------


async def test_size_limit_refuses_before_any_io_naming_key_and_both_sizes() -> None:
    faulty = FaultyDriver()
    store = Store(SizeLimit(faulty, max_bytes=10), codec=BYTES)
    await store.set("fits", b"x" * 10)
    with pytest.raises(ValueTooLargeError) as info:
        await store.set("big", b"x" * 11)
    message = str(info.value)
    assert "'big'" in message
    assert "11 bytes" in message
    assert "10 bytes" in message
    assert faulty.calls == {"set": 1}  # the refused write never reached the driver


async def test_size_limit_checks_a_whole_batch_before_writing_any_of_it() -> None:
    inner = MemoryDriver()
    store = Store(SizeLimit(inner, max_bytes=4), codec=BYTES)
    with pytest.raises(ValueTooLargeError) as info:
        await store.set_many({"ok": b"1", "toolarge": b"12345", "ok2": b"2"})
    assert info.value.key == "toolarge"
    assert [k async for k in inner.keys()] == []


async def test_size_limit_stops_a_stream_and_commits_nothing() -> None:
    inner = FaultyDriver()  # streams natively
    store = Store(SizeLimit(inner, max_bytes=5), codec=BYTES)
    await store.write_stream("ok", [b"12", b"345"])
    with pytest.raises(ValueTooLargeError, match="at least 6 bytes"):
        await store.write_stream("big", [b"123", b"456", b"789"])
    assert not await inner.inner.get("big")
    with pytest.raises(ValueError, match="max_bytes"):
        SizeLimit(inner, max_bytes=-1)


# -- TTLPolicy ----------------------------------------------------------------------------


async def test_ttl_policy_gives_an_expiry_to_writes_without_one() -> None:
    clock = TestClock()
    store: Store[Any] = Store(TTLPolicy(MemoryDriver(clock=clock), default_ttl=30))
    await store.set("k", 1)
    await store.set_many({"a": 1})
    await store.write_stream("s", [b"1"])
    for key in ("k", "a", "s"):
        assert await store.ttl(key) == pytest.approx(30)
    await store.set("short", 1, ttl=5)  # an explicit expiry is kept (no max_ttl)
    assert await store.ttl("short") == pytest.approx(5)
    await store.set("long", 1, ttl=3600)
    assert await store.ttl("long") == pytest.approx(3600)
    clock.advance(31)
    assert [k async for k in store.keys()] == ["long"]
    assert not await store.exists("k")


async def test_ttl_policy_clamps_expiries_to_max_ttl() -> None:
    clock = TestClock()
    store: Store[Any] = Store(
        TTLPolicy(MemoryDriver(clock=clock), max_ttl=timedelta(minutes=1), default_ttl=10)
    )
    await store.set("long", 1, ttl=3600)
    assert await store.ttl("long") == pytest.approx(60)
    await store.set("short", 1, ttl=5)
    assert await store.ttl("short") == pytest.approx(5)
    await store.set("none", 1)
    assert await store.ttl("none") == pytest.approx(10)
    await store.set_many({"m": 1}, ttl=999)
    assert await store.ttl("m") == pytest.approx(60)
    entry = await store.get_entry("long")
    await store.set("long", 2, ttl=10_000, if_match=entry.etag)
    assert await store.ttl("long") == pytest.approx(60)


async def test_ttl_policy_with_only_a_max_never_lets_a_key_outlive_it() -> None:
    clock = TestClock()
    store: Store[Any] = Store(TTLPolicy(MemoryDriver(clock=clock), max_ttl=120))
    await store.set("forever?", 1)
    assert await store.ttl("forever?") == pytest.approx(120)
    clock.advance(121)
    assert not await store.exists("forever?")


def test_ttl_policy_validates_its_bounds() -> None:
    with pytest.raises(ValueError, match="exceeds"):
        TTLPolicy(MemoryDriver(), max_ttl=10, default_ttl=20)
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            TTLPolicy(MemoryDriver(), max_ttl=bad)
    with pytest.raises(TypeError):
        TTLPolicy(MemoryDriver(), default_ttl="10")  # type: ignore[arg-type]
