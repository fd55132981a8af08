"""Stats: counters and latency percentiles per operation, in fixed memory."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .._driver import Driver, RawEntry
from ._observed import OPERATIONS, Observed, _clock

__all__ = ["LatencyHistogram", "OperationStats", "Stats"]

# Latency buckets: _SUB per power of two from 2**_EMIN s (~120 ns) to 2**_EMAX s (256 s),
# so a percentile (a bucket's upper edge) is at most 1/_SUB (~6%) above the true value,
# in a fixed 496 ints.
_SUB = 16
_EMIN = -23
_EMAX = 8
_BUCKETS = (_EMAX - _EMIN) * _SUB
#: At most this many distinct error type names are counted by name; the rest as "other".
MAX_ERROR_TYPES = 32


class LatencyHistogram:
    """A log-scale histogram of durations in seconds: fixed size, whatever it counts."""

    __slots__ = ("counts", "max", "total")

    def __init__(self) -> None:
        self.counts = [0] * _BUCKETS
        self.total = 0
        self.max = 0.0

    def add(self, seconds: float) -> None:
        """Count one duration."""
        mantissa, exponent = math.frexp(seconds)  # seconds = mantissa * 2**exponent
        index = (exponent - _EMIN) * _SUB + int((mantissa - 0.5) * (2 * _SUB))
        if index < 0:
            index = 0
        elif index >= _BUCKETS:
            index = _BUCKETS - 1
        self.counts[index] += 1
        self.total += 1
        self.max = max(self.max, seconds)

    def percentile(self, q: float) -> float:
        """The duration below which a fraction ``q`` of the samples fall (bucket's upper edge)."""
        if not self.total:
            return 0.0
        rank = max(1, math.ceil(q * self.total))
        seen = 0
        for index, count in enumerate(self.counts):
            seen += count
            if seen >= rank:
                exponent, sub = divmod(index, _SUB)
                upper = (0.5 + (sub + 1) / (2 * _SUB)) * 2.0 ** (exponent + _EMIN)
                return min(upper, self.max)
        return self.max  # pragma: no cover


class _Counters:
    __slots__ = ("bytes_in", "bytes_out", "calls", "errors", "hits", "items", "latency", "misses")

    def __init__(self) -> None:
        self.calls = 0
        self.errors: dict[str, int] = {}
        self.hits = 0
        self.misses = 0
        self.items = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.latency = LatencyHistogram()


@dataclass(frozen=True)
class OperationStats:
    """What :meth:`Stats.snapshot` reports for one operation.

    Attributes:
        calls: Calls made (failed ones included).
        errors: Failed calls by exception type name (at most 32 names, then ``"other"``).
        hits: Keys found (reads, ``exists``, deletes that removed a key).
        misses: Keys not found.
        items: Keys handled by batches, listings and clears.
        bytes_in: Value bytes written through the layer.
        bytes_out: Value bytes read through the layer.
        p50, p90, p99, max: Latency in seconds (percentiles at most ~6% high).
    """

    calls: int
    errors: Mapping[str, int] = field(default_factory=dict)
    hits: int = 0
    misses: int = 0
    items: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    p50: float = 0.0
    p90: float = 0.0
    p99: float = 0.0
    max: float = 0.0


class Stats(Observed):
    """Counts every operation: calls, errors by type, hits and misses, bytes, latency.

    Memory is fixed: one set of counters per operation name (``get``, ``set``, ...), a
    496-bucket latency histogram in each, and at most 32 error type names. Nothing is
    kept per key or per namespace, however many keys pass. :meth:`snapshot` returns
    the figures; :meth:`reset` starts again. Etags, expiries and streams pass unchanged.
    """

    def __init__(self, inner: Driver) -> None:
        super().__init__(inner)
        self._ops = {op: _Counters() for op in OPERATIONS}

    # get and set are the hot path: counted inline, without the generic _record's keywords.

    async def get(self, key: str) -> RawEntry | None:
        """Read ``key`` (counted as a hit or a miss)."""
        started = _clock()
        try:
            entry = await self.inner.get(key)
        except BaseException as exc:
            self._record("get", key, started, "error", error=exc)
            raise
        c = self._ops["get"]
        c.calls += 1
        if entry is None:
            c.misses += 1
        else:
            c.hits += 1
            c.bytes_out += len(entry.value)
        c.latency.add(_clock() - started)
        return entry

    async def set(
        self,
        key: str,
        value: bytes,
        *,
        expires_at: float | None = None,
        if_match: str | None = None,
        if_absent: bool = False,
    ) -> str:
        """Write ``value`` (its size counted as bytes in)."""
        started = _clock()
        try:
            etag = await self.inner.set(
                key, value, expires_at=expires_at, if_match=if_match, if_absent=if_absent
            )
        except BaseException as exc:
            self._record("set", key, started, "error", error=exc)
            raise
        c = self._ops["set"]
        c.calls += 1
        c.bytes_in += len(value)
        c.latency.add(_clock() - started)
        return etag

    def __repr__(self) -> str:
        calls = sum(c.calls for c in self._ops.values())
        return f"Stats({self.inner!r}, {calls} calls)"

    def _record(
        self,
        op: str,
        key: str | None,
        started: float,
        outcome: str,
        *,
        error: BaseException | None = None,
        count: int = 1,
        bytes_in: int = 0,
        bytes_out: int = 0,
        hits: int = 0,
    ) -> None:
        c = self._ops[op]
        c.latency.add(_clock() - started)
        c.calls += 1
        if error is not None:
            name = type(error).__name__
            errors = c.errors
            if name not in errors and len(errors) >= MAX_ERROR_TYPES:
                name = "other"
            errors[name] = errors.get(name, 0) + 1
            return
        if outcome == "miss":
            c.misses += 1
        elif hits:
            c.hits += hits
            if count > hits:
                c.misses += count - hits
        elif op in ("get_many", "get_values"):
            c.misses += count
        if op in ("keys", "clear", "get_many", "get_values", "set_many", "delete_many"):
            c.items += count
        c.bytes_in += bytes_in
        c.bytes_out += bytes_out

    def snapshot(self) -> Mapping[str, OperationStats]:
        """The figures of every operation called at least once, by operation name."""
        out = {}
        for op, c in self._ops.items():
            if not c.calls:
                continue
            h = c.latency
            out[op] = OperationStats(
                calls=c.calls,
                errors=MappingProxyType(dict(c.errors)),
                hits=c.hits,
                misses=c.misses,
                items=c.items,
                bytes_in=c.bytes_in,
                bytes_out=c.bytes_out,
                p50=h.percentile(0.5),
                p90=h.percentile(0.9),
                p99=h.percentile(0.99),
                max=h.max,
            )
        return MappingProxyType(out)

    def reset(self) -> None:
        """Zero every counter."""
        self._ops = {op: _Counters() for op in OPERATIONS}
