"""Every middleware (and a deep stack of them) passes the whole driver conformance suite.

ReadOnly refuses every write, so it cannot run the suite; test_middleware_guards.py covers
it through every read path instead.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import pytest
from kv_core import Driver, PreconditionFailedError, Store
from kv_core.middleware import (
    Compressed,
    Encrypted,
    Fallback,
    Logged,
    Retry,
    Router,
    SizeLimit,
    Stats,
    Timeout,
    TTLPolicy,
    stack,
)
from kv_core.testing import DriverConformance, Harness, StoreModelTest, TestClock

from ._middleware_support import KEY_A, KEY_B, StoragesHarness, WrappedHarness

TEN_YEARS = 10 * 365 * 86400.0


def _router(drivers: list[Driver]) -> Driver:
    d0, d1, d2 = drivers
    # Routes nest, split the namespace the suite uses, and one driver serves several
    # routes and the default: listing and clearing must still see each key exactly once.
    return Router(
        routes={
            "user/": d1,
            "conformance/ns/": d2,
            "conformance/ns/user/": d0,
            "rich/": d2,
            "a": d1,
            "k1": d2,
        },
        default=d0,
    )


class TestTimeout(DriverConformance):
    @pytest.fixture
    def kv_harness(self) -> Harness:
        return WrappedHarness(partial(Timeout, read=60, write=60))


class TestRetry(DriverConformance):
    @pytest.fixture
    def kv_harness(self) -> Harness:
        return WrappedHarness(partial(Retry, attempts=3, base_delay=0))


class TestFallback(DriverConformance):
    @pytest.fixture
    def kv_harness(self) -> Harness:
        return StoragesHarness(2, lambda ds: Fallback(ds[0], ds[1]))


class TestRouter(DriverConformance):
    @pytest.fixture
    def kv_harness(self) -> Harness:
        return StoragesHarness(3, _router)


class TestSizeLimit(DriverConformance):
    @pytest.fixture
    def kv_harness(self) -> Harness:
        return WrappedHarness(partial(SizeLimit, max_bytes=8 << 20))


class TestCompressed(DriverConformance):
    @pytest.fixture
    def kv_harness(self) -> Harness:
        # A low threshold, so most of the suite's values really are compressed.
        return WrappedHarness(partial(Compressed, threshold=8))


class TestEncrypted(DriverConformance):
    @pytest.fixture
    def kv_harness(self) -> Harness:
        return WrappedHarness(partial(Encrypted, keys={"a": KEY_A, "b": KEY_B}, primary="b"))


class TestStats(DriverConformance):
    @pytest.fixture
    def kv_harness(self) -> Harness:
        return WrappedHarness(Stats)


class TestLogged(DriverConformance):
    @pytest.fixture
    def kv_harness(self) -> Harness:
        logger = logging.getLogger("kv-test-logged")
        logger.setLevel(logging.DEBUG)  # every line is formatted (and captured by pytest)
        return WrappedHarness(partial(Logged, logger=logger, hash_keys=True, salt=b"s"))


class TestTTLPolicy(DriverConformance):
    """A bound far away changes nothing the suite can see, except "no expiry".

    With max_ttl set, no key is written without an expiry (that is the policy), so the
    suite's three checks that a key has none are replaced by checks that it has the bound.
    """

    @pytest.fixture
    def kv_harness(self) -> Harness:
        return WrappedHarness(partial(TTLPolicy, max_ttl=TEN_YEARS))

    async def test_ttl_reports_seconds_left(self, store: Store[Any], clock: TestClock) -> None:
        await store.set("k", 1, ttl=10)
        assert await store.ttl("k") == pytest.approx(10)
        await store.set("no", 1)
        assert await store.ttl("no") == pytest.approx(TEN_YEARS)

    async def test_overwrite_without_ttl_removes_the_expiry(self, store: Store[Any]) -> None:
        await store.set("k", 1, ttl=10)
        await store.set("k", 2)
        assert await store.ttl("k") == pytest.approx(TEN_YEARS)

    async def test_update_treats_expired_as_missing_and_keeps_ttl(
        self, store: Store[Any], clock: TestClock
    ) -> None:
        await store.set("m", 1, ttl=5)
        await store.update("m", lambda v: v + 1)
        assert await store.ttl("m") == pytest.approx(5)
        await clock.elapse(6)
        assert await store.update("m", lambda v: v + 1, default=0) == 1
        assert await store.ttl("m") == pytest.approx(TEN_YEARS)

    async def test_ttl_only_rewrite_changes_the_etag(self, store: Store[Any]) -> None:
        short = await store.set("cart", {"items": 1}, ttl=100)
        longer = await store.set("cart", {"items": 1}, ttl=3600)
        assert longer != short
        bounded = await store.set("cart", {"items": 1})
        assert bounded not in (short, longer)
        for stale in (short, longer):
            with pytest.raises(PreconditionFailedError):
                await store.set("cart", {"items": 2}, if_match=stale)
        assert await store.ttl("cart") == pytest.approx(TEN_YEARS)

    async def test_files_and_expiry(self, store: Store[Any]) -> None:
        async with store.open("t", "wb", ttl=3600) as f:
            await f.write(b"1")
        async with store.open("t", "ab") as f:
            await f.write(b"2")
        assert await store.ttl("t") == pytest.approx(3600)
        async with store.open("t", "wb") as f:
            await f.write(b"3")
        assert await store.ttl("t") == pytest.approx(TEN_YEARS)


def _everything(drivers: list[Driver]) -> Driver:
    """DESIGN §9's stack and then some: every layer at once, over a router."""
    keys = {"2026-11": KEY_A, "2026-12": KEY_B}
    return stack(
        _router(drivers),
        partial(Timeout, read=60, write=60),
        partial(Retry, base_delay=0),
        partial(Encrypted, keys=keys, primary="2026-12"),
        partial(Compressed, threshold=8),
        partial(SizeLimit, max_bytes=8 << 20),
        Logged,
        Stats,
    )


class TestStack(DriverConformance):
    @pytest.fixture
    def kv_harness(self) -> Harness:
        return StoragesHarness(3, _everything)


class TestStackModel(StoreModelTest):
    @pytest.fixture
    def kv_harness(self) -> Harness:
        return StoragesHarness(3, _everything)
