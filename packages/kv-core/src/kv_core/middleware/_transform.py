"""The base of layers that rewrite every value (Compressed, Encrypted)."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Sequence

from .. import _driver_ops as _ops
from .._driver import NOT_MODIFIED, Capability, NotModified, RawEntry
from .._errors import KeyNotFoundError
from ._base import Middleware

__all__ = ["Transform"]


class Transform(Middleware):
    """A layer that encodes each value on the way in and decodes it on the way out.

    Etags and expiries are the inner driver's, untouched: an etag still identifies the
    stored state, so conditional writes and ``update()`` work through the layer. Streaming
    is not offered (a whole value is the unit of encoding), so the Store reads and writes
    streams as whole values through such a layer; ``read_stream``/``write_stream`` still
    work when called directly, the same way.
    """

    dropped = Capability.STREAM

    def _encode(self, key: str, value: bytes) -> bytes:
        raise NotImplementedError

    def _decode(self, key: str, data: bytes) -> bytes:
        raise NotImplementedError

    def _entry(self, key: str, entry: RawEntry | None) -> RawEntry | None:
        if entry is None:
            return None
        return RawEntry(self._decode(key, entry.value), entry.etag, entry.expires_at)

    async def get(self, key: str) -> RawEntry | None:
        """Read and decode ``key``."""
        return self._entry(key, await self.inner.get(key))

    async def set(
        self,
        key: str,
        value: bytes,
        *,
        expires_at: float | None = None,
        if_match: str | None = None,
        if_absent: bool = False,
    ) -> str:
        """Encode and write ``value``."""
        return await self.inner.set(
            key,
            self._encode(key, value),
            expires_at=expires_at,
            if_match=if_match,
            if_absent=if_absent,
        )

    async def get_many(self, keys: Sequence[str]) -> list[RawEntry | None]:
        """Read and decode ``keys``."""
        found = await _ops.get_many(self.inner, keys)
        return [self._entry(k, e) for k, e in zip(keys, found, strict=True)]

    async def set_many(
        self, items: Sequence[tuple[str, bytes]], *, expires_at: float | None = None
    ) -> Sequence[str]:
        """Encode every value (all before any write), then write the batch."""
        encoded = [(k, self._encode(k, v)) for k, v in items]
        return await _ops.set_many(self.inner, encoded, expires_at)

    async def get_value(self, key: str) -> bytes | None:
        """Read and decode ``key``'s value."""
        data = await _ops.get_value(self.inner, key)
        return None if data is None else self._decode(key, data)

    async def get_values(self, keys: Sequence[str]) -> list[bytes | None]:
        """Read and decode values."""
        found = await _ops.get_values(self.inner, keys)
        return [None if d is None else self._decode(k, d) for k, d in zip(keys, found, strict=True)]

    async def get_if_changed(self, key: str, etag: str) -> RawEntry | NotModified | None:
        """NOT_MODIFIED, or the decoded entry (or None)."""
        found = await _ops.get_if_changed(self.inner, key, etag)
        if found is NOT_MODIFIED or found is None:
            return found
        assert isinstance(found, RawEntry)
        return self._entry(key, found)

    async def read_stream(self, key: str, *, chunk_size: int = 256 * 1024) -> AsyncIterator[bytes]:
        """The decoded value in chunks (read whole, then sliced)."""
        entry = await self.get(key)
        if entry is None:
            raise KeyNotFoundError("no such key", key=key, store=self.name)
        data = entry.value
        for i in range(0, len(data), chunk_size):
            yield data[i : i + chunk_size]

    async def write_stream(
        self, key: str, chunks: AsyncIterable[bytes], *, expires_at: float | None = None
    ) -> str:
        """Collect the chunks, then encode and write them as one value."""
        data = b"".join([bytes(c) async for c in chunks])
        return await self.set(key, data, expires_at=expires_at)
