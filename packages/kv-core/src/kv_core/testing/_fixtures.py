"""Fixtures shared by the conformance classes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from .._store import Store
from ._harness import Harness, TestClock

__all__ = ["StoreFixtures"]


class StoreFixtures:
    """Gives each test a Store over a fresh driver from the ``kv_harness`` fixture.

    Every test runs twice: at the store's root and behind a namespace prefix, which
    proves the driver works for any key prefix (as Go CDK's drivertest does).
    """

    @pytest.fixture(params=["root", "namespaced"])
    def layout(self, request: pytest.FixtureRequest) -> str:
        """Where the test's keys live."""
        return str(request.param)

    @pytest.fixture
    def clock(self) -> TestClock:
        """The clock given to every driver of the test."""
        return TestClock()

    @pytest.fixture
    async def root(self, kv_harness: Harness, clock: TestClock) -> AsyncIterator[Store[Any]]:
        """A store at the root of the harness's storage."""
        driver = kv_harness.make_driver(clock=clock)
        clock.adapt_to(driver)
        store: Store[Any] = Store(driver)
        yield store
        await store.aclose()

    @pytest.fixture
    async def store(self, root: Store[Any], layout: str) -> Store[Any]:
        """The store under test (root or namespaced)."""
        return root if layout == "root" else root.namespace("conformance/ns")

    @pytest.fixture
    async def other(
        self, kv_harness: Harness, clock: TestClock, store: Store[Any]
    ) -> AsyncIterator[Store[Any]]:
        """A second store with its own driver, over the same storage and namespace."""
        driver = kv_harness.make_driver(clock=clock)
        base: Store[Any] = Store(driver)
        yield base.namespace(store.prefix[:-1]) if store.prefix else base
        await base.aclose()
