"""Conformance: listing by prefix is exact, a property test over tricky key shapes (§4, §6).

Every stored key that starts with a prefix is listed by that prefix exactly once, and
nothing else is. The keys are drawn from names that backends tend to escape (Windows
reserved names, dots, separators, percent signs), so an escaping that does not preserve
prefixes (``con`` escaped while ``console`` is not) is found.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from .._store import Store
from ._harness import Harness, TestClock

__all__ = ["ListingConformance"]

_NAMES = [
    "con", "CON", "Con", "console", "config", "Contact", "aux", "auxiliary", "prn", "prnt",
    "nul", "NUL", "NUL0", "com1", "COM1", "COM1.", "com10", "lpt1", "lpt1x", "LPT9.txt",
    ".", "..", "a.", "a..", " ", "a ", "%2F", "%", "~", "x",
]  # fmt: skip
_segment = st.sampled_from(_NAMES) | st.text(alphabet="cCoOnNuUlL1. %/\\~-", max_size=6)
_keys = st.lists(_segment, min_size=1, max_size=3).map("/".join).filter(bool)
_key_sets = st.lists(_keys | st.text(min_size=1, max_size=8), min_size=1, max_size=8)


def _prefixes(keys: list[str]) -> set[str]:
    """Every prefix of every key up to 8 characters, and each whole key."""
    found = {""}
    for key in keys:
        found.update(key[:i] for i in range(1, min(len(key), 8) + 1))
        found.add(key)
    return found


async def _check(store: Store[Any], keys: list[str]) -> None:
    await store.clear()
    await store.set_many(dict.fromkeys(keys, 0))
    stored = set(keys)
    for prefix in sorted(_prefixes(keys)):
        listed = [k async for k in store.keys(prefix)]
        assert len(listed) == len(set(listed)), f"keys({prefix!r}) repeated a key: {listed}"
        expected = sorted(k for k in stored if k.startswith(prefix))
        assert sorted(listed) == expected, f"keys({prefix!r})"


class ListingConformance:
    """Listing by prefix, checked for every prefix of every key Hypothesis draws."""

    @pytest.mark.parametrize("layout", ["root", "namespaced"])
    def test_listing_by_prefix_lists_every_matching_key_exactly_once(
        self, kv_harness: Harness, layout: str
    ) -> None:
        loop = asyncio.new_event_loop()
        clock = TestClock()
        driver = kv_harness.make_driver(clock=clock)
        clock.adapt_to(driver)
        root: Store[Any] = Store(driver)
        store = root if layout == "root" else root.namespace("listing/ns")

        @settings(
            max_examples=max(10, settings().max_examples // 2),
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )
        @given(keys=_key_sets)
        @example(keys=["config/app", "console", "con"])
        @example(keys=["auxiliary", "prnt", "com10", "lpt1x", "Contact", "COM1."])
        @example(keys=["NUL", "NUL0"])
        def prefixes_are_exact(keys: list[str]) -> None:
            loop.run_until_complete(_check(store, keys))

        try:
            prefixes_are_exact()
        finally:
            loop.run_until_complete(root.clear())
            loop.run_until_complete(root.aclose())
            loop.close()
