"""The base of layers that watch every operation (Stats, Logged) without changing it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, AsyncIterator, Sequence

from .. import _driver_ops as _ops
from .._driver import NOT_MODIFIED, NotModified, RawEntry
from ._base import Middleware

__all__ = ["OPERATIONS", "Observed"]

#: Every operation a driver has; observers keep their state per operation, never per key.
OPERATIONS = (
    "get",
    "set",
    "delete",
    "keys",
    "get_many",
    "set_many",
    "delete_many",
    "clear",
    "exists",
    "get_value",
    "get_values",
    "get_if_changed",
    "read_stream",
    "write_stream",
)

_clock = time.perf_counter


class Observed(Middleware):
    """Calls :meth:`_record` once per operation, after it ends (or fails).

    ``_record(op, key, started, outcome, error, count, bytes_in, bytes_out, hits)``:
    ``key`` is the key (or the prefix for ``keys``/``clear``, None for batches),
    ``started`` a ``time.perf_counter()`` reading, ``outcome`` one of ``"ok"``, ``"hit"``,
    ``"miss"``, ``"not_modified"`` or ``"error"``; ``count`` the number of keys a batch
    or listing handled; ``bytes_in`` the value bytes written, ``bytes_out`` those read;
    ``hits`` the keys found by a batch read (``count - hits`` were missing).
    """

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
        raise NotImplementedError

    async def get(self, key: str) -> RawEntry | None:
        """Read ``key`` (recorded as a hit or a miss)."""
        started = _clock()
        try:
            entry = await self.inner.get(key)
        except BaseException as exc:
            self._record("get", key, started, "error", error=exc)
            raise
        if entry is None:
            self._record("get", key, started, "miss")
        else:
            self._record("get", key, started, "hit", bytes_out=len(entry.value), hits=1)
        return entry

    async def get_value(self, key: str) -> bytes | None:
        """Read ``key``'s value (recorded as a hit or a miss)."""
        started = _clock()
        try:
            value = await _ops.get_value(self.inner, key)
        except BaseException as exc:
            self._record("get_value", key, started, "error", error=exc)
            raise
        if value is None:
            self._record("get_value", key, started, "miss")
        else:
            self._record("get_value", key, started, "hit", bytes_out=len(value), hits=1)
        return value

    async def exists(self, key: str) -> bool:
        """Check ``key`` (recorded as a hit or a miss)."""
        started = _clock()
        try:
            found = await _ops.exists(self.inner, key)
        except BaseException as exc:
            self._record("exists", key, started, "error", error=exc)
            raise
        self._record("exists", key, started, "hit" if found else "miss", hits=int(found))
        return found

    async def get_if_changed(self, key: str, etag: str) -> RawEntry | NotModified | None:
        """Revalidate ``key`` (recorded as not_modified, a hit or a miss)."""
        started = _clock()
        try:
            found = await _ops.get_if_changed(self.inner, key, etag)
        except BaseException as exc:
            self._record("get_if_changed", key, started, "error", error=exc)
            raise
        if found is NOT_MODIFIED:
            self._record("get_if_changed", key, started, "not_modified", hits=1)
        elif isinstance(found, RawEntry):
            self._record("get_if_changed", key, started, "hit", bytes_out=len(found.value), hits=1)
        else:
            self._record("get_if_changed", key, started, "miss")
        return found

    async def set(
        self,
        key: str,
        value: bytes,
        *,
        expires_at: float | None = None,
        if_match: str | None = None,
        if_absent: bool = False,
    ) -> str:
        """Write ``value`` (its size recorded as bytes in)."""
        started = _clock()
        try:
            etag = await self.inner.set(
                key, value, expires_at=expires_at, if_match=if_match, if_absent=if_absent
            )
        except BaseException as exc:
            self._record("set", key, started, "error", error=exc)
            raise
        self._record("set", key, started, "ok", bytes_in=len(value))
        return etag

    async def delete(self, key: str, *, if_match: str | None = None) -> bool:
        """Delete ``key`` (a hit if it existed)."""
        started = _clock()
        try:
            found = await self.inner.delete(key, if_match=if_match)
        except BaseException as exc:
            self._record("delete", key, started, "error", error=exc)
            raise
        self._record("delete", key, started, "hit" if found else "miss", hits=int(found))
        return found

    async def get_many(self, keys: Sequence[str]) -> list[RawEntry | None]:
        """Read a batch (hits and misses counted per key)."""
        started = _clock()
        try:
            found = await _ops.get_many(self.inner, keys)
        except BaseException as exc:
            self._record("get_many", None, started, "error", error=exc, count=len(keys))
            raise
        hits = [e for e in found if e is not None]
        size = sum(len(e.value) for e in hits)
        self._record(
            "get_many", None, started, "ok", count=len(keys), bytes_out=size, hits=len(hits)
        )
        return found

    async def get_values(self, keys: Sequence[str]) -> list[bytes | None]:
        """Read a batch of values (hits and misses counted per key)."""
        started = _clock()
        try:
            found = await _ops.get_values(self.inner, keys)
        except BaseException as exc:
            self._record("get_values", None, started, "error", error=exc, count=len(keys))
            raise
        hits = [v for v in found if v is not None]
        size = sum(len(v) for v in hits)
        self._record(
            "get_values", None, started, "ok", count=len(keys), bytes_out=size, hits=len(hits)
        )
        return found

    async def set_many(
        self, items: Sequence[tuple[str, bytes]], *, expires_at: float | None = None
    ) -> Sequence[str]:
        """Write a batch."""
        started = _clock()
        try:
            etags = await _ops.set_many(self.inner, items, expires_at)
        except BaseException as exc:
            self._record("set_many", None, started, "error", error=exc, count=len(items))
            raise
        size = sum(len(v) for _, v in items)
        self._record("set_many", None, started, "ok", count=len(items), bytes_in=size)
        return etags

    async def delete_many(self, keys: Sequence[str]) -> int:
        """Delete a batch (hits: how many existed)."""
        started = _clock()
        try:
            count = await _ops.delete_many(self.inner, keys)
        except BaseException as exc:
            self._record("delete_many", None, started, "error", error=exc, count=len(keys))
            raise
        self._record("delete_many", None, started, "ok", count=len(keys), hits=count)
        return count

    async def clear(self, prefix: str = "") -> int:
        """Clear a prefix (count: how many keys went)."""
        started = _clock()
        try:
            count = await _ops.clear(self.inner, prefix)
        except BaseException as exc:
            self._record("clear", prefix, started, "error", error=exc, count=0)
            raise
        self._record("clear", prefix, started, "ok", count=count)
        return count

    async def keys(self, prefix: str = "") -> AsyncIterator[str]:
        """List keys (recorded once, when the listing ends; count: keys listed)."""
        started = _clock()
        count = 0
        try:
            async for key in self.inner.keys(prefix):
                count += 1
                yield key
        except GeneratorExit:  # the caller stopped early: a normal end
            self._record("keys", prefix, started, "ok", count=count)
            raise
        except BaseException as exc:
            self._record("keys", prefix, started, "error", error=exc, count=count)
            raise
        self._record("keys", prefix, started, "ok", count=count)

    async def read_stream(self, key: str, *, chunk_size: int = 256 * 1024) -> AsyncIterator[bytes]:
        """Stream ``key`` (recorded when the stream ends)."""
        started = _clock()
        size = 0
        try:
            async for chunk in _ops.read_stream(self.inner, key, chunk_size):
                size += len(chunk)
                yield chunk
        except GeneratorExit:
            self._record("read_stream", key, started, "hit", bytes_out=size, hits=1)
            raise
        except BaseException as exc:
            self._record("read_stream", key, started, "error", error=exc, bytes_out=size)
            raise
        self._record("read_stream", key, started, "hit", bytes_out=size, hits=1)

    async def write_stream(
        self, key: str, chunks: AsyncIterable[bytes], *, expires_at: float | None = None
    ) -> str:
        """Stream a write (bytes in counted as the chunks pass)."""
        started = _clock()
        size = 0

        async def counted() -> AsyncIterator[bytes]:
            nonlocal size
            async for chunk in chunks:
                size += len(chunk)
                yield chunk

        try:
            etag = await _ops.write_stream(self.inner, key, counted(), expires_at)
        except BaseException as exc:
            self._record("write_stream", key, started, "error", error=exc, bytes_in=size)
            raise
        self._record("write_stream", key, started, "ok", bytes_in=size)
        return etag
