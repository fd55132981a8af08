"""Conformance: an etag identifies the key's whole state, its value *and* its expiry (§6)."""

from __future__ import annotations

from typing import Any

import pytest

from .._errors import PreconditionFailedError
from .._store import Store
from ._fixtures import StoreFixtures

__all__ = ["StateConformance"]


class StateConformance(StoreFixtures):
    """TTL-only rewrites change the etag; update() never undoes a concurrent expiry change."""

    async def test_ttl_only_rewrite_changes_the_etag(self, store: Store[Any]) -> None:
        short = await store.set("cart", {"items": 1}, ttl=100)
        longer = await store.set("cart", {"items": 1}, ttl=3600)
        assert longer != short, "same bytes, new expiry: the etag must change"
        forever = await store.set("cart", {"items": 1})
        assert forever not in (short, longer), "same bytes, expiry removed: a new etag"
        assert (await store.get_entry("cart")).etag == forever
        for stale in (short, longer):
            with pytest.raises(PreconditionFailedError):
                await store.set("cart", {"items": 2}, if_match=stale)
            with pytest.raises(PreconditionFailedError):
                await store.delete("cart", if_match=stale)
        assert await store.get("cart") == {"items": 1}
        assert await store.ttl("cart") is None

    async def test_adding_an_expiry_to_the_same_bytes_changes_the_etag(
        self, store: Store[Any]
    ) -> None:
        plain = await store.set("k", "same")
        expiring = await store.set("k", "same", ttl=3600)
        assert expiring != plain
        with pytest.raises(PreconditionFailedError):
            await store.set("k", "other", if_match=plain)
        left = await store.ttl("k")
        assert left is not None
        assert left > 3000

    async def test_update_racing_an_expiry_change_retries_instead_of_undoing_it(
        self, store: Store[Any], other: Store[Any]
    ) -> None:
        # A keeps the cart's short TTL through update(); meanwhile B rewrites the same bytes
        # with a long TTL. A's compare-and-set must fail and retry on B's state, so the
        # long expiry B chose survives (DESIGN §6: update() never undoes an expiry change).
        await store.set("cart", {"n": 1}, ttl=100)
        calls = 0

        async def bump(cart: dict[str, int]) -> dict[str, int]:
            nonlocal calls
            calls += 1
            if calls == 1:
                await other.set("cart", {"n": 1}, ttl=3600)
            return {"n": cart["n"] + 1}

        assert await store.update("cart", bump) == {"n": 2}
        assert calls == 2, "the first compare-and-set should have seen B's expiry change"
        left = await store.ttl("cart")
        assert left is not None
        assert left > 3000, f"update() put the old expiry back ({left:.0f} s left)"
