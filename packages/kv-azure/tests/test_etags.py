"""Etags identify state (value and expiry): a TTL-only rewrite is a change (DESIGN §6)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kv_azure import AzureBlobDriver
from kv_core import NOT_MODIFIED, PreconditionFailedError, RawEntry, Store


def _driver(connection_string: str, container: str) -> AzureBlobDriver:
    return AzureBlobDriver(container, connection_string=connection_string)


async def test_a_ttl_only_rewrite_gives_a_new_etag(driver: AzureBlobDriver) -> None:
    now = driver.clock()
    first = await driver.set("k", b"same", expires_at=now + 60)
    longer = await driver.set("k", b"same", expires_at=now + 3600)
    forever = await driver.set("k", b"same")
    assert len({first, longer, forever}) == 3
    entry = await driver.get("k")
    assert entry is not None
    assert (entry.etag, entry.expires_at) == (forever, None)
    # A stale etag of the same bytes no longer matches.
    with pytest.raises(PreconditionFailedError):
        await driver.set("k", b"other", if_match=longer)


async def test_revalidation_sees_a_ttl_only_change(driver: AzureBlobDriver) -> None:
    now = driver.clock()
    etag = await driver.set("k", b"same", expires_at=now + 60)
    assert await driver.get_if_changed("k", etag) is NOT_MODIFIED
    await driver.set("k", b"same")  # the TTL removed, the bytes unchanged
    fresh = await driver.get_if_changed("k", etag)
    assert isinstance(fresh, RawEntry)
    assert (fresh.value, fresh.expires_at) == (b"same", None)


async def test_update_racing_an_expiry_change_retries_instead_of_undoing_it(
    connection_string: str, container: str
) -> None:
    """A runs update() (keeping the TTL); B rewrites the same value with a longer TTL while
    A's function runs; A's compare-and-set must fail and retry, keeping B's expiry."""
    a: Store[Any] = Store(_driver(connection_string, container))
    b: Store[Any] = Store(_driver(connection_string, container))
    async with a, b:
        await a.set("cart", {"items": 1}, ttl=60)
        computing = asyncio.Event()
        release = asyncio.Event()
        calls = 0

        async def add_item(cart: dict[str, int]) -> dict[str, int]:
            nonlocal calls
            calls += 1
            if calls == 1:
                computing.set()
                await release.wait()
            return {"items": cart["items"] + 1}

        task = asyncio.ensure_future(a.update("cart", add_item))
        await computing.wait()
        await b.set("cart", {"items": 1}, ttl=3600)  # same bytes, new expiry
        release.set()
        assert await task == {"items": 2}
        assert calls == 2  # the first compare-and-set failed: the etag had changed
        remaining = await a.ttl("cart")
        assert remaining is not None
        assert remaining > 3000  # B's expiry kept, not A's 60 s put back
