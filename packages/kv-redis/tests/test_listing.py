"""keys() lists every key exactly once in bounded memory (issue 11 item 5)."""

from __future__ import annotations

import random
import tracemalloc
from collections.abc import AsyncIterator

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from kv_redis import RedisDriver
from kv_redis._listing import list_once


def _scans(names: list[bytes], seed: int, page: int) -> tuple[list[int], object]:
    """A SCAN stand-in for the algorithm alone: every pass returns every name at least
    once, in a different order each time, with repeats (what SCAN allows)."""
    rng = random.Random(seed)
    passes = [0]

    async def scan() -> AsyncIterator[list[bytes]]:
        passes[0] += 1
        order = names + rng.sample(names, k=min(len(names), rng.randint(0, 5)))
        rng.shuffle(order)
        for i in range(0, len(order), page):
            yield order[i : i + page]

    return passes, scan


@settings(deadline=None)
@given(
    names=st.sets(st.binary(max_size=6), max_size=300),
    limit=st.integers(4, 64),
    seed=st.integers(0, 2**32),
    page=st.integers(1, 50),
)
@example(names={b"a", b"b", b"c", b"d", b"e"}, limit=4, seed=0, page=1)
@example(names={b"", b"\x00", b"\xff"}, limit=4, seed=1, page=2)
async def test_every_name_exactly_once_whatever_the_repeats(
    names: set[bytes], limit: int, seed: int, page: int
) -> None:
    passes, scan = _scans(sorted(names), seed, page)
    listed = [name async for name in list_once(scan, limit)]  # type: ignore[arg-type]
    assert sorted(listed) == sorted(names)  # every name, none twice
    if len(names) <= limit // 2:
        assert passes[0] == 1  # a store that fits is listed in one streaming pass


async def _listing_peak(driver: RedisDriver, names: list[str]) -> int:
    """Traced peak of one full keys() listing, checking each name comes out once."""
    listed = bytearray(len(names))  # one byte a key: the check itself stays small
    tracemalloc.start()
    try:
        async for key in driver.keys():
            i = int(key[:6])
            assert key == names[i]
            assert not listed[i], f"{key[:6]} listed twice"
            listed[i] = 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert all(listed)
    return peak


async def test_keys_memory_is_bounded_by_listing_keys(redis_url: str, prefix: str) -> None:
    # Before: every name listed stayed in a set (~105 B a key plus its length), which is
    # what a limit above the store's size still does (one streaming pass).
    names = [f"{i:06d}/" + "x" * 300 for i in range(9_000)]
    bounded = RedisDriver.from_url(redis_url, prefix=prefix, listing_keys=1_500)
    unbounded = RedisDriver.from_url(redis_url, prefix=prefix, listing_keys=10**9)
    try:
        for i in range(0, len(names), 1_000):
            await bounded.set_many([(k, b"v") for k in names[i : i + 1_000]])
        whole = await _listing_peak(unbounded, names)
        peak = await _listing_peak(bounded, names)
        print(
            f"\nLISTING kv-redis 9,000 keys of 300 B: peak {whole / 2**20:.2f} MiB remembering "
            f"every name, {peak / 2**20:.2f} MiB with listing_keys=1,500"
        )
        # 1,500 names held at most, plus SCAN pages (~1,000 names each) being parsed.
        assert peak < whole / 2
    finally:
        await bounded.clear()
        await bounded.aclose()
        await unbounded.aclose()


@pytest.mark.parametrize("limit", [0, 3])
def test_listing_keys_below_four_is_refused(redis_url: str, limit: int) -> None:
    with pytest.raises(ValueError, match="listing_keys"):
        RedisDriver.from_url(redis_url, listing_keys=limit)
