"""Middleware: the base of every driver that wraps a driver.

It forwards every method of the Driver protocol and every optional ability to ``inner``,
so a subclass overrides only what it changes. The optional methods work whatever
``inner`` declares (see :mod:`._ops`), so a layer above never has to care what is below.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Sequence
from typing import ClassVar

from .. import _driver_ops as _ops
from .._driver import Capability, Driver, NotModified, RawEntry

__all__ = ["Middleware", "close_all"]


class Middleware:
    """A Driver over a Driver that forwards everything; subclasses change what they need.

    ``name``, ``clock`` and ``capabilities`` are those of ``inner`` (minus what the layer
    cannot keep, e.g. streaming for layers that transform whole values), so errors name
    the real store and expiry stays in the backend's clock. Closing a middleware closes
    the driver it wraps.

    Attributes:
        inner: The wrapped driver (the typed way to reach it, and its native client).
    """

    #: Abilities of ``inner`` this layer does not offer.
    dropped: ClassVar[Capability] = Capability.NONE

    def __init__(self, inner: Driver) -> None:
        self.inner = inner
        self.name: str = inner.name
        self.clock = inner.clock
        self.capabilities: Capability = inner.capabilities & ~self.dropped
        self._closed = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.inner!r})"

    # -- the required methods --------------------------------------------------------------

    async def get(self, key: str) -> RawEntry | None:
        """Return the live entry for ``key`` or None."""
        return await self.inner.get(key)

    async def set(
        self,
        key: str,
        value: bytes,
        *,
        expires_at: float | None = None,
        if_match: str | None = None,
        if_absent: bool = False,
    ) -> str:
        """Store ``value`` under ``key``; return the new etag."""
        return await self.inner.set(
            key, value, expires_at=expires_at, if_match=if_match, if_absent=if_absent
        )

    async def delete(self, key: str, *, if_match: str | None = None) -> bool:
        """Remove ``key``; True if a live key was removed."""
        return await self.inner.delete(key, if_match=if_match)

    def keys(self, prefix: str = "") -> AsyncIterator[str]:
        """Yield every live key starting with ``prefix``."""
        return self.inner.keys(prefix)

    async def aclose(self) -> None:
        """Close the wrapped driver. Idempotent."""
        self._closed = True
        await self.inner.aclose()

    # -- optional abilities ----------------------------------------------------------------

    async def get_many(self, keys: Sequence[str]) -> list[RawEntry | None]:
        """Entries for ``keys`` in order."""
        return await _ops.get_many(self.inner, keys)

    async def set_many(
        self, items: Sequence[tuple[str, bytes]], *, expires_at: float | None = None
    ) -> Sequence[str]:
        """Unconditional writes; their etags in order."""
        return await _ops.set_many(self.inner, items, expires_at)

    async def delete_many(self, keys: Sequence[str]) -> int:
        """Delete ``keys``; how many were live."""
        return await _ops.delete_many(self.inner, keys)

    async def clear(self, prefix: str = "") -> int:
        """Delete every key starting with ``prefix``; how many."""
        return await _ops.clear(self.inner, prefix)

    async def exists(self, key: str) -> bool:
        """True if ``key`` is live."""
        return await _ops.exists(self.inner, key)

    async def get_value(self, key: str) -> bytes | None:
        """The live value of ``key`` or None."""
        return await _ops.get_value(self.inner, key)

    async def get_values(self, keys: Sequence[str]) -> list[bytes | None]:
        """Live values of ``keys`` in order."""
        return await _ops.get_values(self.inner, keys)

    async def get_if_changed(self, key: str, etag: str) -> RawEntry | NotModified | None:
        """NOT_MODIFIED if ``key``'s etag is still ``etag``, else the entry or None."""
        return await _ops.get_if_changed(self.inner, key, etag)

    def read_stream(self, key: str, *, chunk_size: int = 256 * 1024) -> AsyncIterator[bytes]:
        """The value of ``key`` in chunks; KeyNotFoundError if missing."""
        return _ops.read_stream(self.inner, key, chunk_size)

    async def write_stream(
        self, key: str, chunks: AsyncIterable[bytes], *, expires_at: float | None = None
    ) -> str:
        """Store the concatenated ``chunks``; return the etag."""
        return await _ops.write_stream(self.inner, key, chunks, expires_at)


async def close_all(drivers: Sequence[Driver]) -> None:
    """Close every distinct driver once (a driver may serve several routes)."""
    seen: set[int] = set()
    failure: BaseException | None = None
    for driver in drivers:
        if id(driver) in seen:
            continue
        seen.add(id(driver))
        try:
            await driver.aclose()
        except Exception as exc:  # close the others anyway, then report the first failure
            failure = failure or exc
    if failure is not None:
        raise failure
