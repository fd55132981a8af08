"""Conformance: etags, conditional writes and update() under concurrency."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from .._errors import KeyNotFoundError, PreconditionFailedError
from .._store import Store
from ._fixtures import StoreFixtures

__all__ = ["ConcurrencyConformance"]


async def _outcomes(calls: list[Any]) -> tuple[int, int]:
    """(successes, precondition failures) of running ``calls`` concurrently."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException) and not isinstance(r, PreconditionFailedError):
            raise r
    failed = sum(isinstance(r, PreconditionFailedError) for r in results)
    return len(results) - failed, failed


class ConcurrencyConformance(StoreFixtures):
    """Etags, if_match, if_absent and update() (DESIGN §6)."""

    async def test_etag_changes_when_a_different_value_is_written(self, store: Store[Any]) -> None:
        seen = set()
        for value in (1, 2, "three", [4], 1):
            etag = await store.set("k", value)
            assert isinstance(etag, str)
            assert etag
            entry = await store.get_entry("k")
            assert entry.etag == etag
            assert entry.value == value
            assert entry.key == "k"
            seen.add(etag)
        assert len(seen) >= 4  # rewriting the first value may reuse a content-based etag

    async def test_if_match_writes_only_on_the_current_etag(self, store: Store[Any]) -> None:
        first = await store.set("k", "v1")
        second = await store.set("k", "v2", if_match=first)
        with pytest.raises(PreconditionFailedError) as info:
            await store.set("k", "v3", if_match=first)
        assert "k" in str(info.value)
        assert await store.get("k") == "v2"
        assert (await store.get_entry("k")).etag == second
        with pytest.raises(PreconditionFailedError):
            await store.set("missing", 1, if_match=second)
        assert not await store.exists("missing")

    async def test_if_absent_creates_only(self, store: Store[Any]) -> None:
        await store.set("k", "first", if_absent=True)
        with pytest.raises(PreconditionFailedError):
            await store.set("k", "second", if_absent=True)
        assert await store.get("k") == "first"
        with pytest.raises(ValueError, match="combined"):
            await store.set("k", 1, if_absent=True, if_match="x")

    async def test_delete_if_match(self, store: Store[Any]) -> None:
        etag = await store.set("k", 1)
        await store.set("k", 2)
        with pytest.raises(PreconditionFailedError):
            await store.delete("k", if_match=etag)
        assert await store.get("k") == 2
        assert await store.delete("k", if_match=(await store.get_entry("k")).etag) is True
        with pytest.raises(PreconditionFailedError):
            await store.delete("k", if_match=etag)

    async def test_if_absent_is_atomic_under_50_tasks(
        self, store: Store[Any], other: Store[Any]
    ) -> None:
        calls = [(store if i % 2 else other).set("k", i, if_absent=True) for i in range(50)]
        won, lost = await _outcomes(calls)
        assert (won, lost) == (1, 49)

    async def test_if_match_is_atomic_under_50_tasks(
        self, store: Store[Any], other: Store[Any]
    ) -> None:
        etag = await store.set("k", -1)
        calls = [(store if i % 2 else other).set("k", i, if_match=etag) for i in range(50)]
        won, lost = await _outcomes(calls)
        assert (won, lost) == (1, 49)
        assert await store.get("k") in range(50)

    async def test_update_loses_nothing_under_50_concurrent_tasks(self, store: Store[Any]) -> None:
        results = await asyncio.gather(
            *(store.update("n", lambda n: n + 1, default=0) for _ in range(50))
        )
        assert sorted(results) == list(range(1, 51))
        assert await store.get("n") == 50

    async def test_update_across_two_clients_loses_nothing(
        self, store: Store[Any], other: Store[Any]
    ) -> None:
        # Two drivers = two clients: only the etag keeps them from losing updates.
        await asyncio.gather(
            *(s.update("n", lambda n: n + 1, default=0) for s in (store, other) * 20)
        )
        assert await store.get("n") == 40

    async def test_update_accepts_async_functions_and_defaults(self, store: Store[Any]) -> None:
        async def append(items: list[int]) -> list[int]:
            await asyncio.sleep(0)
            return [*items, len(items)]

        default: list[int] = []
        assert await store.update("l", append, default=default) == [0]
        assert await store.update("l", append, default=default) == [0, 1]
        assert default == []  # the default is never mutated
        with pytest.raises(KeyNotFoundError):
            await store.update("missing", lambda v: v)
        assert not await store.exists("missing")

    async def test_update_gives_up_with_precondition_failed(
        self, store: Store[Any], other: Store[Any]
    ) -> None:
        await store.set("k", 0)
        counter = iter(range(10_000))

        async def meddle(value: int) -> int:
            await other.set("k", next(counter) + 1000)  # someone else writes every time
            return value + 1

        with pytest.raises(PreconditionFailedError):
            await store.update("k", meddle, attempts=3)
