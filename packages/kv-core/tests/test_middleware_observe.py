"""Stats (bounded memory, the right counters) and Logged (one safe line per operation)."""

from __future__ import annotations

import logging
import sys
from typing import Any

import pytest
from kv_core import (
    BYTES,
    BackendUnavailableError,
    MemoryDriver,
    PreconditionFailedError,
    Store,
)
from kv_core.middleware import Logged, Stats
from kv_core.middleware._stats import LatencyHistogram

from ._middleware_support import FaultyDriver


async def test_stats_count_calls_hits_misses_bytes_and_errors_per_operation() -> None:
    faulty = FaultyDriver()
    stats = Stats(faulty)
    store = Store(stats, codec=BYTES)
    await store.set("a", b"12345")
    await store.set("b", b"xy")
    assert await store.get("a") == b"12345"
    assert await store.get("zz", None) is None
    assert await store.get_many(["a", "b", "nope"]) == {"a": b"12345", "b": b"xy"}
    assert await store.delete("b")
    assert not await store.delete("b")
    with pytest.raises(PreconditionFailedError):
        await store.set("a", b"!", if_absent=True)
    faulty.failures["get"] = [BackendUnavailableError("down")]
    with pytest.raises(BackendUnavailableError):
        await store.get("a")
    assert [k async for k in store.keys()] == ["a"]
    snap = stats.snapshot()
    assert set(snap) == {"set", "get", "get_many", "delete", "keys"}
    assert snap["set"].calls == 3
    assert snap["set"].bytes_in == 7
    assert dict(snap["set"].errors) == {"PreconditionFailedError": 1}
    assert (snap["get"].calls, snap["get"].hits, snap["get"].misses) == (3, 1, 1)
    assert dict(snap["get"].errors) == {"BackendUnavailableError": 1}
    assert snap["get"].bytes_out == 5
    assert (snap["get_many"].hits, snap["get_many"].misses, snap["get_many"].items) == (2, 1, 3)
    assert snap["get_many"].bytes_out == 7
    assert (snap["delete"].hits, snap["delete"].misses) == (1, 1)
    assert snap["keys"].items == 1
    for op in snap.values():
        assert 0 < op.p50 <= op.p90 <= op.p99 <= op.max
    stats.reset()
    assert stats.snapshot() == {}


def test_latency_percentiles_are_within_the_bucket_precision() -> None:
    h = LatencyHistogram()
    samples = [i * 1e-6 for i in range(1, 1001)]  # 1 µs .. 1 ms
    for s in samples:
        h.add(s)
    for q in (0.5, 0.9, 0.99):
        true = samples[int(q * len(samples)) - 1]
        assert true <= h.percentile(q) <= true * 1.07
    assert h.max == samples[-1]
    h.add(0.0)
    h.add(1e6)  # outside the range: clamped into the edge buckets, still counted
    assert h.total == 1002


def _deep_size(obj: object, seen: set[int] | None = None, *, ints: bool = True) -> int:
    """Bytes held by ``obj`` and everything it references (the driver it wraps excluded).

    With ``ints=False`` numbers count nothing: what is left is the structure itself.
    """
    seen = set() if seen is None else seen
    if id(obj) in seen or isinstance(obj, MemoryDriver):
        return 0
    seen.add(id(obj))
    if isinstance(obj, (int, float)):
        return sys.getsizeof(obj) if ints else 0
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        size += sum(
            _deep_size(k, seen, ints=ints) + _deep_size(v, seen, ints=ints) for k, v in obj.items()
        )
    elif isinstance(obj, (list, tuple, set)):
        size += sum(_deep_size(item, seen, ints=ints) for item in obj)
    for name in getattr(type(obj), "__slots__", ()):
        size += _deep_size(getattr(obj, name, None), seen, ints=ints)
    if hasattr(obj, "__dict__"):
        size += _deep_size(vars(obj), seen, ints=ints)
    return size


async def test_stats_keep_no_per_key_state_after_100000_distinct_keys() -> None:
    stats = Stats(MemoryDriver())

    async def traffic(start: int, count: int) -> None:
        for i in range(start, start + count):
            key = f"tenant-{i}/user/{i}"
            await stats.set(key, b"v")
            await stats.get(key)
            await stats.delete(key)
            await stats.get(key)

    await traffic(0, 1000)  # every counter used has been created by now
    before, structure = _deep_size(stats), _deep_size(stats, ints=False)
    await traffic(1000, 100_000)
    after = _deep_size(stats)
    print(f"STATS 100,000 distinct keys: {before} bytes before, {after} bytes after")
    # The structure is exactly the same; only counters (ints past the small-int cache)
    # take a few bytes more, whatever the number of keys (1 byte a key would be 100 kB).
    assert _deep_size(stats, ints=False) == structure
    assert after - before < 8192
    snap = stats.snapshot()
    assert snap["get"].calls == 2 * 101_000
    assert (snap["get"].hits, snap["get"].misses) == (101_000, 101_000)
    assert len(stats._ops) == 14
    assert all(len(c.latency.counts) == 496 for c in stats._ops.values())


async def test_error_type_names_are_bounded() -> None:
    faulty = FaultyDriver()
    stats = Stats(faulty)
    kinds = [type(f"Error{i}", (Exception,), {}) for i in range(50)]
    faulty.failures["get"] = [kind() for kind in kinds]
    for _ in kinds:
        with pytest.raises(Exception, match=r"^$"):
            await stats.get("k")
    errors = stats.snapshot()["get"].errors
    assert len(errors) == 33
    assert errors["other"] == 18


# -- Logged ------------------------------------------------------------------------------


@pytest.fixture
def logger(caplog: pytest.LogCaptureFixture) -> logging.Logger:
    log = logging.getLogger("kv-test-logged")
    caplog.set_level(logging.DEBUG, logger=log.name)
    return log


async def test_one_line_per_operation_without_values(
    logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    store: Store[Any] = Store(Logged(MemoryDriver(), logger=logger))
    await store.set("user/1", {"password": "hunter2"})
    await store.get("user/1")
    await store.get("user/2", None)
    await store.get_many(["user/1", "user/3"])
    [k async for k in store.keys("user/")]
    with pytest.raises(PreconditionFailedError):
        await store.set("user/1", 0, if_absent=True)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 6
    assert all(r.levelno == logging.DEBUG for r in caplog.records)
    assert lines[0].startswith("kv set 'user/1' ok ")
    assert lines[1].startswith("kv get 'user/1' hit ")
    assert lines[2].startswith("kv get 'user/2' miss ")
    assert lines[3].startswith("kv get_many <2 keys> 1 hits ")
    assert lines[4].startswith("kv keys prefix='user/' <1 keys> ok ")
    assert lines[5].startswith("kv set 'user/1' error PreconditionFailedError ")
    assert all("ms store=memory://" in line for line in lines)
    assert not any("hunter2" in line for line in lines)


async def test_keys_are_written_so_that_they_cannot_forge_a_line(
    logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    store: Store[Any] = Store(Logged(MemoryDriver(), logger=logger))
    await store.set("x\nkv set 'admin' ok 0.001ms\x1b[31m", 1)
    (line,) = [r.getMessage() for r in caplog.records]
    assert "\n" not in line
    assert "\x1b" not in line
    assert "\\n" in line


async def test_hashed_keys_never_appear_and_stay_correlatable(
    logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    store: Store[Any] = Store(Logged(MemoryDriver(), logger=logger, hash_keys=True, salt=b"pepper"))
    await store.set("alice@example.com", 1)
    await store.get("alice@example.com")
    with pytest.raises(PreconditionFailedError):  # error messages name the key: not logged
        await store.set("alice@example.com", 1, if_absent=True)
    lines = [r.getMessage() for r in caplog.records]
    assert not any("alice" in line for line in lines)
    tags = {line.split()[2] for line in lines}
    assert len(tags) == 1
    (tag,) = tags
    assert tag.startswith("#")
    assert len(tag) == 17
    other = Logged(MemoryDriver(), hash_keys=True, salt=b"other")
    assert other._key_text("alice@example.com") != tag


async def test_default_level_is_debug_and_silent_at_info(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    driver = Logged(MemoryDriver())
    assert driver.level == logging.DEBUG
    assert driver.logger.name == "kv_core.middleware"
    await Store(driver).set("k", 1)
    assert caplog.records == []


async def test_error_level_can_be_raised(
    logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    faulty = FaultyDriver()
    faulty.failures["get"] = [BackendUnavailableError("down", store="redis://***@host")]
    store: Store[Any] = Store(Logged(faulty, logger=logger, error_level=logging.WARNING))
    await store.set("k", 1)
    with pytest.raises(BackendUnavailableError):
        await store.get("k")
    assert [r.levelno for r in caplog.records] == [logging.DEBUG, logging.WARNING]
    assert "error BackendUnavailableError" in caplog.records[1].getMessage()
