"""ReadOnly, SizeLimit and TTLPolicy: layers that refuse or adjust writes before any I/O."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterable, AsyncIterator, Sequence

from .._driver import Capability, Driver
from .._errors import KVError, StoreClosedError, UnsupportedOperationError, ValueTooLargeError
from .._store_base import ttl_seconds
from ._base import Middleware

__all__ = ["ReadOnly", "SizeLimit", "TTLPolicy"]


class ReadOnly(Middleware):
    """Reads pass through; every write raises UnsupportedOperationError naming the key.

    Writes are refused before anything reaches ``inner`` (a stream's chunks are not even
    read: the layer declares Capability.STREAM whatever ``inner`` does, so the Store hands
    it the stream instead of collecting it first). ``set``, ``delete``, the batches,
    ``clear`` and ``write_stream`` are writes.
    """

    def __init__(self, inner: Driver) -> None:
        super().__init__(inner)
        self.capabilities |= Capability.STREAM

    def _refuse(self, what: str, key: str | None) -> KVError:
        if self._closed:
            return StoreClosedError("the driver is closed", key=key, store=self.name)
        return UnsupportedOperationError(
            f"{what} refused: the store is read-only", key=key, store=self.name
        )

    async def set(
        self,
        key: str,
        value: bytes,
        *,
        expires_at: float | None = None,
        if_match: str | None = None,
        if_absent: bool = False,
    ) -> str:
        """Refuse."""
        raise self._refuse("set", key)

    async def delete(self, key: str, *, if_match: str | None = None) -> bool:
        """Refuse."""
        raise self._refuse("delete", key)

    async def set_many(
        self, items: Sequence[tuple[str, bytes]], *, expires_at: float | None = None
    ) -> Sequence[str]:
        """Refuse (naming the first key)."""
        raise self._refuse(f"set_many of {len(items)} keys", items[0][0] if items else None)

    async def delete_many(self, keys: Sequence[str]) -> int:
        """Refuse (naming the first key)."""
        raise self._refuse(f"delete_many of {len(keys)} keys", keys[0] if keys else None)

    async def clear(self, prefix: str = "") -> int:
        """Refuse (naming the prefix)."""
        raise self._refuse("clear", prefix)

    async def write_stream(
        self, key: str, chunks: AsyncIterable[bytes], *, expires_at: float | None = None
    ) -> str:
        """Refuse without reading ``chunks``."""
        raise self._refuse("write_stream", key)


class SizeLimit(Middleware):
    """Refuses values larger than ``max_bytes`` with ValueTooLargeError, before any I/O.

    The error names the key, the value's size and the limit. A batch is checked whole
    before any of it is written. A stream is counted as it flows: the chunk that crosses
    the limit raises inside the inner driver's ``write_stream``, which commits nothing
    (stream writes are atomic on every kv driver).

    Args:
        inner: The wrapped driver.
        max_bytes: The largest value accepted, in bytes (as the layer sees it: place
            SizeLimit above Compressed to limit what callers write, below to limit what the
            backend stores).
    """

    def __init__(self, inner: Driver, max_bytes: int) -> None:
        super().__init__(inner)
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
            raise ValueError(f"max_bytes must be a non-negative int, got {max_bytes!r}")
        self.max_bytes = max_bytes

    def __repr__(self) -> str:
        return f"SizeLimit({self.inner!r}, max_bytes={self.max_bytes})"

    def _too_large(self, key: str, size: int, counted: str = "") -> ValueTooLargeError:
        return ValueTooLargeError(
            f"value of {counted}{size} bytes exceeds the limit of {self.max_bytes} bytes",
            key=key,
            store=self.name,
        )

    async def set(
        self,
        key: str,
        value: bytes,
        *,
        expires_at: float | None = None,
        if_match: str | None = None,
        if_absent: bool = False,
    ) -> str:
        """Store ``value`` if it is small enough."""
        if len(value) > self.max_bytes:
            raise self._too_large(key, len(value))
        return await self.inner.set(
            key, value, expires_at=expires_at, if_match=if_match, if_absent=if_absent
        )

    async def set_many(
        self, items: Sequence[tuple[str, bytes]], *, expires_at: float | None = None
    ) -> Sequence[str]:
        """Store every item if every one is small enough; otherwise nothing."""
        for key, value in items:
            if len(value) > self.max_bytes:
                raise self._too_large(key, len(value))
        return await super().set_many(items, expires_at=expires_at)

    async def write_stream(
        self, key: str, chunks: AsyncIterable[bytes], *, expires_at: float | None = None
    ) -> str:
        """Store the chunks; ValueTooLargeError as soon as they pass the limit."""
        return await super().write_stream(key, self._counted(key, chunks), expires_at=expires_at)

    async def _counted(self, key: str, chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
        total = 0
        async for chunk in chunks:
            total += len(chunk)
            if total > self.max_bytes:
                raise self._too_large(key, total, "at least ")
            yield chunk


Seconds = float | datetime.timedelta


class TTLPolicy(Middleware):
    """Bounds expiries: clamps them to ``max_ttl`` and gives one to writes that have none.

    A write without an expiry gets ``default_ttl``; when only ``max_ttl`` is set it gets
    ``max_ttl``, so no key written through this layer outlives ``max_ttl``. A write whose
    expiry is further away than ``max_ttl`` is clamped to ``max_ttl`` from now. Applies to
    ``set``, ``set_many`` and ``write_stream`` (conditional writes included, so an
    ``update()`` that keeps a key's expiry keeps it as long as it is within the bound).

    Args:
        inner: The wrapped driver.
        max_ttl: Longest lifetime in seconds (or a timedelta), or None for no bound.
        default_ttl: Lifetime of writes that have no expiry, or None (see above).
    """

    def __init__(
        self,
        inner: Driver,
        *,
        max_ttl: Seconds | None = None,
        default_ttl: Seconds | None = None,
    ) -> None:
        super().__init__(inner)
        self.max_ttl = None if max_ttl is None else ttl_seconds(max_ttl)
        self.default_ttl = None if default_ttl is None else ttl_seconds(default_ttl)
        if (
            self.max_ttl is not None
            and self.default_ttl is not None
            and self.default_ttl > self.max_ttl
        ):
            raise ValueError(f"default_ttl ({self.default_ttl}s) exceeds max_ttl ({self.max_ttl}s)")
        if self.default_ttl is None:
            self.default_ttl = self.max_ttl

    def __repr__(self) -> str:
        return f"TTLPolicy({self.inner!r}, max_ttl={self.max_ttl}, default_ttl={self.default_ttl})"

    def _expiry(self, expires_at: float | None) -> float | None:
        if expires_at is None:
            return None if self.default_ttl is None else self.clock() + self.default_ttl
        if self.max_ttl is not None:
            return min(expires_at, self.clock() + self.max_ttl)
        return expires_at

    async def set(
        self,
        key: str,
        value: bytes,
        *,
        expires_at: float | None = None,
        if_match: str | None = None,
        if_absent: bool = False,
    ) -> str:
        """Store ``value`` with the bounded expiry."""
        return await self.inner.set(
            key, value, expires_at=self._expiry(expires_at), if_match=if_match, if_absent=if_absent
        )

    async def set_many(
        self, items: Sequence[tuple[str, bytes]], *, expires_at: float | None = None
    ) -> Sequence[str]:
        """Store every item with the bounded expiry."""
        return await super().set_many(items, expires_at=self._expiry(expires_at))

    async def write_stream(
        self, key: str, chunks: AsyncIterable[bytes], *, expires_at: float | None = None
    ) -> str:
        """Store the chunks with the bounded expiry."""
        return await super().write_stream(key, chunks, expires_at=self._expiry(expires_at))
