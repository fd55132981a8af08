"""Etags identify a key's state, value and expiry (DESIGN §6; issue 10 item 6)."""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator

import pytest
from kv_core import BYTES, NOT_MODIFIED, PreconditionFailedError, Store
from kv_redis import RedisDriver


@pytest.fixture
async def driver(kv_url: str, prefix: str) -> AsyncIterator[RedisDriver]:
    d = RedisDriver.from_url(kv_url, prefix=prefix)
    yield d
    await d.clear()
    await d.aclose()


async def test_a_ttl_only_rewrite_changes_the_etag(driver: RedisDriver) -> None:
    plain = await driver.set("k", b"same")
    short = await driver.set("k", b"same", expires_at=time.time() + 2)
    long = await driver.set("k", b"same", expires_at=time.time() + 3600)
    back = await driver.set("k", b"same")
    assert len({plain, short, long}) == 3
    assert back == plain  # content-derived: the same bytes without expiry, the same state
    with pytest.raises(PreconditionFailedError):
        await driver.set("k", b"x", if_match=short)
    with pytest.raises(PreconditionFailedError):
        await driver.delete("k", if_match=long)


async def test_every_read_reports_the_etag_the_write_returned(driver: RedisDriver) -> None:
    expires = time.time() + 60
    etag = await driver.set("a", b"one", expires_at=expires)
    entry = await driver.get("a")
    assert entry is not None
    assert entry.etag == etag
    assert [e.etag if e else None for e in await driver.get_many(["a", "missing"])] == [etag, None]
    assert await driver.get_if_changed("a", etag) is NOT_MODIFIED
    etag2 = await driver.set("a", b"two", expires_at=expires, if_match=etag)
    entry = await driver.get("a")
    assert entry is not None
    assert entry.etag == etag2 != etag
    etag3 = await driver.set("b", b"new", expires_at=expires, if_absent=True)
    entry = await driver.get("b")
    assert entry is not None
    assert entry.etag == etag3
    etags = await driver.set_many([("c", b"1"), ("d", b"2")], expires_at=expires)
    entries = await driver.get_many(["c", "d"])
    assert [e.etag if e else None for e in entries] == list(etags)
    assert await driver.delete("a", if_match=etag2) is True


async def test_revalidation_sees_a_ttl_only_change(driver: RedisDriver) -> None:
    # A cache holding the value with its 2 s expiry must not be told NOT_MODIFIED after
    # another writer rewrote the same bytes without a TTL: it would keep the old expiry
    # and report the live key as missing once it passed.
    etag = await driver.set("cart", b"[1, 2]", expires_at=time.time() + 2)
    await driver.set("cart", b"[1, 2]")
    fresh = await driver.get_if_changed("cart", etag)
    assert fresh is not None
    assert fresh is not NOT_MODIFIED
    assert fresh.value == b"[1, 2]"
    assert fresh.expires_at is None


async def test_update_racing_a_ttl_rewrite_retries_instead_of_undoing_it(
    kv_url: str, prefix: str
) -> None:
    # Issue 10 item 6: A runs update("cart", f), keeping the cart's 2 s TTL; between A's
    # read and A's compare-and-set, B (another client) rewrites the same bytes with
    # ttl=3600. A's write must fail its etag check and retry, keeping B's expiry.
    a = Store(RedisDriver.from_url(kv_url, prefix=prefix))
    b = Store(RedisDriver.from_url(kv_url, prefix=prefix))
    try:
        await a.set("cart", ["apple"], ttl=2)
        calls: list[list[str]] = []

        async def add_pear(old: list[str]) -> list[str]:
            calls.append(old)
            if len(calls) == 1:  # the interleaving: B writes after A read, before A writes
                await b.set("cart", ["apple"], ttl=3600)
            return [*old, "pear"]

        assert await a.update("cart", add_pear) == ["apple", "pear"]
        assert calls == [["apple"], ["apple"]]  # the first attempt lost, the second won
        left = await b.ttl("cart")
        assert left is not None
        assert left > 3000  # B's expiry kept, not A's 2 s put back
        assert await b.get("cart") == ["apple", "pear"]
    finally:
        await a.clear()
        await a.aclose()
        await b.aclose()


async def test_the_etag_of_a_foreign_expiry_matches_on_the_server(
    kv_url: str, prefix: str, driver: RedisDriver
) -> None:
    # An expiry set by another program (EXPIREAT whole seconds): reads and the Lua check
    # must still agree on the string.
    store = Store(driver, codec=BYTES)
    await store.set("k", b"v")
    raw = RedisDriver.from_url(kv_url, prefix=prefix)
    try:
        await raw.client.pexpireat(f"{prefix}k", int(time.time() * 1000) + 123_457)
    finally:
        await raw.aclose()
    entry = await driver.get("k")
    assert entry is not None
    assert ":" in entry.etag
    await driver.set("k", b"w", if_match=entry.etag, expires_at=entry.expires_at)
    assert await store.get("k") == b"w"


@pytest.mark.parametrize("expires", [math.inf, -math.inf, math.nan, 1e300])
async def test_expiries_redis_cannot_take_fail_before_any_io(
    driver: RedisDriver, expires: float
) -> None:
    before = driver.stats()
    with pytest.raises(ValueError):
        await driver.set("k", b"v", expires_at=expires)
    with pytest.raises(ValueError):
        await driver.set_many([("k", b"v")], expires_at=expires)
    assert driver.stats() == before
