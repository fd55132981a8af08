"""Streams through the cache: they pass through to the inner driver with bounded memory.

A streamed value is never cached (it may be far larger than the cache). What a stream
does to the cached entry of its key:

- ``write_stream`` holds the key's gate like any write. In write-back mode a dirty entry
  of that key is flushed first, so the backend sees the writes in the order they were
  made (if the stream then fails, the earlier write is not lost); then the stream goes to
  the backend and the key's entry is dropped, so the next read asks the backend.
- ``read_stream`` serves a dirty entry (an unflushed write or delete) from the cache, as
  every read does; otherwise it streams from the backend.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

from kv_core import KeyNotFoundError

from ._flush import Flusher
from ._result import FlushFailedError, FlushResult, FlushStatus

__all__ = ["Streams"]


class Streams(Flusher):
    """``read_stream`` and ``write_stream`` (declared when the inner driver streams)."""

    def _streaming(self) -> Any:
        return self._inner

    async def read_stream(self, key: str, *, chunk_size: int = 1 << 16) -> AsyncIterator[bytes]:
        """Yield the value of ``key`` in chunks; KeyNotFoundError if it is missing."""
        self._check_open(key)
        entry = self._table.peek(key) if self._write_back else None
        if entry is not None and entry.dirty:
            raw = self._live(entry)
            if raw is None:
                raise KeyNotFoundError("key not found", key=key, store=self.name)
            value = raw.value  # already in memory: the cache bounds it
            for i in range(0, len(value), chunk_size):
                yield value[i : i + chunk_size]
            return
        async for chunk in self._streaming().read_stream(key, chunk_size=chunk_size):
            yield chunk

    async def write_stream(
        self, key: str, chunks: AsyncIterable[bytes], *, expires_at: float | None = None
    ) -> str:
        """Stream ``chunks`` to the backend as the value of ``key``; return its etag.

        Raises:
            FlushFailedError: Write-back: an unflushed write of ``key`` had to reach the
                backend first and could not; nothing was streamed.
        """
        self._check_open(key)
        if self._passthrough:
            return await self._streaming().write_stream(key, chunks, expires_at=expires_at)  # type: ignore[no-any-return]
        await self._acquire(key)
        try:
            entry = self._table.peek(key)
            if entry is not None and entry.dirty:
                outcome = await self._flush_held(key)
                if outcome is not None and outcome.status is FlushStatus.ERROR:
                    result = FlushResult([outcome])
                    raise FlushFailedError(result, store=self.name) from outcome.error
                if outcome is not None:
                    self._keep_pending([outcome])  # conflicts: reported by the next flush()
            try:
                return await self._streaming().write_stream(key, chunks, expires_at=expires_at)  # type: ignore[no-any-return]
            finally:
                self._touched(key)
                self._table.pop(key)
        finally:
            self._release(key)
