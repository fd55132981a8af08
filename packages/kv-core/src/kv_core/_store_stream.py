"""Byte streams of :class:`~kv_core.Store`: bounded memory where the driver streams."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import TypeVar

from . import _driver_ops
from ._files import MODES, KVFile
from ._store_base import Seconds, StoreBase, expiry

__all__ = ["StreamOps"]

T = TypeVar("T")

_DEFAULT_CHUNK = 1 << 20


class StreamOps(StoreBase[T]):
    """write_stream and read_stream."""

    __slots__ = ()

    # -- files ---------------------------------------------------------------------------

    def open(self, key: str, mode: str = "rb", *, ttl: Seconds | None = None) -> KVFile:
        """An async file over the raw bytes of ``key`` (whatever the store's codec).

        ``async with store.open("logs/app.log", "wb") as f: await f.write(b"...")``.
        Modes: ``rb`` (KeyNotFoundError if missing), ``wb`` (replace), ``xb`` (create only:
        PreconditionFailedError if the key exists), ``ab`` (append; creates a missing
        key) and ``r+b`` (read and write in place). Written data becomes visible all at
        once when the block exits cleanly and is discarded if it raises; ``ab`` and
        ``r+b`` commit only if nobody wrote the key since it was opened
        (PreconditionFailedError otherwise). ``ttl`` sets the expiry of what is written;
        without it ``wb``/``xb`` write a key that never expires and ``ab``/``r+b`` keep
        the key's expiry.
        """
        self._check_open()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {sorted(MODES)}, not {mode!r}")
        if mode == "rb" and ttl is not None:
            raise ValueError("ttl has no meaning for a file opened for reading")
        return KVFile(
            self._driver,
            self._full(key),
            mode,
            expires_at=expiry(self._clock, ttl),
            keep_expiry=ttl is None,
        )

    # -- streams -------------------------------------------------------------------------

    async def write_stream(
        self,
        key: str,
        chunks: AsyncIterable[bytes] | Iterable[bytes],
        *,
        ttl: Seconds | None = None,
    ) -> str:
        """Store the concatenated ``chunks`` as the raw bytes of ``key``; return the etag.

        Streams carry bytes and bypass the codec. Drivers with Capability.STREAM keep
        memory bounded; others collect the chunks first.
        """
        self._check_open()
        full = self._full(key)
        source = chunks if isinstance(chunks, AsyncIterable) else _aiter(chunks)
        expires_at = expiry(self._clock, ttl)
        return await _driver_ops.write_stream(self._driver, full, source, expires_at)

    async def read_stream(
        self, key: str, *, chunk_size: int = _DEFAULT_CHUNK
    ) -> AsyncIterator[bytes]:
        """Yield the raw bytes of ``key`` in chunks of at most ``chunk_size``.

        Raises:
            KeyNotFoundError: The key is missing.
        """
        self._check_open()
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
        full = self._full(key)
        async for chunk in _driver_ops.read_stream(self._driver, full, chunk_size):
            yield chunk


async def _aiter(chunks: Iterable[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk
