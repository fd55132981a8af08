"""Conformance: expiry (DESIGN §6). An expired key is never returned, listed or counted."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from .._codecs import BYTES
from .._errors import KeyNotFoundError
from .._store import Store
from ._fixtures import StoreFixtures
from ._harness import TestClock

__all__ = ["TTLConformance"]

# Short enough for backends that expire keys on their own clock (real sleeps),
# long enough that a slow machine does not expire a key before it is read back.
TTL = 0.8
PAST_TTL = 1.2


class TTLConformance(StoreFixtures):
    """Expiry on every backend."""

    async def test_expired_key_is_never_returned_listed_or_counted(
        self, store: Store[Any], clock: TestClock
    ) -> None:
        await store.set("short", "gone soon", ttl=TTL)
        await store.set("long", "stays", ttl=3600)
        await store.set("forever", "stays")
        assert await store.get("short") == "gone soon"
        await clock.elapse(PAST_TTL)
        # Listing and counting first: a driver that drops expired keys lazily on read
        # must not hide a listing bug behind an earlier get().
        assert sorted([k async for k in store.keys()]) == ["forever", "long"]
        assert sorted(k for k, _ in [kv async for kv in store.items()]) == ["forever", "long"]
        assert await store.get_many(["short", "long"]) == {"long": "stays"}
        assert not await store.exists("short")
        assert await store.get("short", default="missing") == "missing"
        with pytest.raises(KeyNotFoundError):
            await store.get("short")
        with pytest.raises(KeyNotFoundError):
            await store.get_entry("short")
        assert await store.delete("short") is False
        assert await store.clear() == 2

    async def test_ttl_reports_seconds_left(self, store: Store[Any], clock: TestClock) -> None:
        await store.set("k", 1, ttl=100)
        left = await store.ttl("k")
        assert left is not None
        assert 95 < left <= 100
        await store.set("sub", 1, ttl=0.6)
        left = await store.ttl("sub")
        assert left is not None
        assert 0.2 < left <= 0.6  # sub-second TTLs are kept, not rounded to whole seconds
        await store.set("no", 1)
        assert await store.ttl("no") is None
        with pytest.raises(KeyNotFoundError):
            await store.ttl("missing")
        entry = await store.get_entry("k")
        assert entry.expires_at is not None
        assert abs(entry.expires_at - (clock() + 100)) < 5

    async def test_ttl_accepts_timedelta_and_rejects_non_positive(self, store: Store[Any]) -> None:
        await store.set("k", 1, ttl=timedelta(minutes=5))
        left = await store.ttl("k")
        assert left is not None
        assert 290 < left <= 300
        for bad in (0, -1, float("nan")):
            with pytest.raises(ValueError, match="ttl"):
                await store.set("bad", 1, ttl=bad)
        assert not await store.exists("bad")

    async def test_bad_ttls_are_rejected_before_any_write(self, store: Store[Any]) -> None:
        # DESIGN §6: the same errors on every backend, before any I/O.
        await store.set("kept", "old", ttl=3600)
        too_long = (math.inf, -math.inf, 1e300, 10**400, timedelta.max, timedelta(seconds=-1))
        not_seconds: tuple[Any, ...] = (True, False, "5", b"5", [5], object())
        writes: list[Callable[[Any], Awaitable[object]]] = [
            lambda ttl: store.set("bad", 1, ttl=ttl),
            lambda ttl: store.set("kept", "new", ttl=ttl),
            lambda ttl: store.set_many({"bad": 1, "kept": "new"}, ttl=ttl),
            lambda ttl: store.update("kept", lambda _: "new", ttl=ttl),
            lambda ttl: store.with_codec(BYTES).write_stream("bad", [b"x"], ttl=ttl),
        ]
        for write in writes:
            for bad in too_long:
                with pytest.raises(ValueError, match="ttl"):
                    await write(bad)
            for bad in not_seconds:
                with pytest.raises(TypeError, match="ttl"):
                    await write(bad)
        assert not await store.exists("bad")
        assert await store.get("kept") == "old"
        left = await store.ttl("kept")
        assert left is not None
        assert left > 3000

    async def test_overwrite_without_ttl_removes_the_expiry(
        self, store: Store[Any], clock: TestClock
    ) -> None:
        await store.set("k", 1, ttl=TTL)
        await store.set("k", 2)
        await clock.elapse(PAST_TTL)
        assert await store.get("k") == 2
        assert await store.ttl("k") is None

    async def test_if_absent_succeeds_over_an_expired_key(
        self, store: Store[Any], clock: TestClock
    ) -> None:
        old = await store.set("k", "old", ttl=TTL)
        await clock.elapse(PAST_TTL)
        await store.set("k", "new", if_absent=True)
        assert await store.get("k") == "new"
        assert (await store.get_entry("k")).etag != old

    async def test_update_treats_expired_as_missing_and_keeps_ttl(
        self, store: Store[Any], clock: TestClock
    ) -> None:
        await store.set("n", 100, ttl=TTL)
        await clock.elapse(PAST_TTL)
        assert await store.update("n", lambda n: n + 1, default=0) == 1
        await store.set("m", 1, ttl=3600)
        await store.update("m", lambda n: n + 1)
        left = await store.ttl("m")
        assert left is not None
        assert left > 3000
        await store.update("m", lambda n: n + 1, ttl=None)
        assert await store.ttl("m") is None

    async def test_set_many_with_ttl_expires_together(
        self, store: Store[Any], clock: TestClock
    ) -> None:
        await store.set_many({"a": 1, "b": 2}, ttl=TTL)
        assert await store.get_many(["a", "b"]) == {"a": 1, "b": 2}
        await clock.elapse(PAST_TTL)
        assert await store.get_many(["a", "b"]) == {}
        assert [k async for k in store.keys()] == []
