"""The Driver protocol: what a backend implements, in bytes.

Every sentence marked *must* below is a test in :mod:`kv_core.testing`. Keys given to a
driver are already validated and carry any namespace prefix; values are already encoded.
A driver never sees a codec.

Required methods: ``get``, ``set``, ``delete``, ``keys``, ``aclose``, plus the
attributes ``name``, ``clock`` and ``capabilities``. Optional methods are used by the
Store only when the matching :class:`Capability` flag is declared; otherwise the Store
falls back to a correct generic implementation built from the required methods.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from typing import NamedTuple, Protocol, runtime_checkable

__all__ = ["Capability", "Driver", "RawEntry"]


class RawEntry(NamedTuple):
    """A stored value as a driver returns it.

    Attributes:
        value: The stored bytes, exactly as written.
        etag: An opaque string that changes whenever a different value is written.
        expires_at: Absolute expiry in the driver's ``clock`` seconds, or None.
    """

    value: bytes
    etag: str
    expires_at: float | None = None


class Capability(enum.Flag):
    """Optional abilities a driver declares in its ``capabilities`` attribute."""

    NONE = 0
    #: ``get_many(keys) -> list[RawEntry | None]`` in one round trip.
    GET_MANY = enum.auto()
    #: ``set_many(items, *, expires_at) -> Sequence[str]`` (unconditional writes; the
    #: etags in order, which a driver may compute lazily).
    SET_MANY = enum.auto()
    #: ``delete_many(keys) -> int``.
    DELETE_MANY = enum.auto()
    #: ``clear(prefix) -> int`` deletes every key starting with ``prefix``.
    CLEAR = enum.auto()
    #: ``read_stream(key, *, chunk_size)`` and ``write_stream(key, chunks, *, expires_at)``
    #: with bounded memory.
    STREAM = enum.auto()
    #: The backend expires keys on its own clock (e.g. Redis). An injected ``clock`` then
    #: only affects reported expiry, so TTL tests must wait in real time.
    NATIVE_TTL = enum.auto()
    #: ``get_if_changed(key, etag) -> RawEntry | None | NOT_MODIFIED`` without
    #: transferring the body when unchanged (cache revalidation).
    CONDITIONAL_GET = enum.auto()
    #: ``exists(key) -> bool`` cheaper than a ``get``.
    EXISTS = enum.auto()
    #: ``get_value(key) -> bytes | None`` and ``get_values(keys) -> list[bytes | None]``:
    #: the live value without its etag and expiry, for backends where those cost extra
    #: (the Store uses them for ``get``, ``get_many`` and ``items``).
    VALUES = enum.auto()


class NotModified:
    """Marker type of :data:`NOT_MODIFIED`."""

    _instance: NotModified | None = None

    def __new__(cls) -> NotModified:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NOT_MODIFIED"


#: Returned by ``get_if_changed`` when the stored etag still equals the one given.
NOT_MODIFIED = NotModified()


@runtime_checkable
class Driver(Protocol):
    """A backend that stores bytes under string keys, with etags and expiry.

    Contract (each sentence is a conformance test):

    - ``get`` of a missing or expired key must return None.
    - ``set`` must store the bytes exactly and return the new etag; the etag must differ
      from the etag of any different value previously stored under that key.
    - ``set(if_match=etag)`` must write only if the current etag equals ``etag``; on a
      stale etag or a missing key it must raise PreconditionFailedError and change nothing.
    - ``set(if_absent=True)`` must write only if the key is missing (or expired), else raise
      PreconditionFailedError and change nothing. Both checks must be atomic across
      processes and machines.
    - ``set(expires_at=t)`` must make the key invisible to every method once ``clock() >= t``;
      ``expires_at=None`` stores without expiry (and removes a previous one).
    - ``delete`` must return True if a live key was removed, False if it was missing;
      with ``if_match`` a stale etag or a missing key must raise PreconditionFailedError.
    - ``keys(prefix)`` must yield every live key that starts with ``prefix`` exactly once,
      as it was written, in any order, paginating underneath so memory stays bounded.
    - Every method after ``aclose()`` must raise StoreClosedError; ``aclose()`` must be
      idempotent.
    - Failures must be kv errors: BackendUnavailableError when the backend cannot be reached,
      OutcomeUnknownError when a write may or may not have happened; the client's
      exception chained as ``__cause__``, no secret in any message.
    """

    #: Redacted, human-readable description used in error messages and ``repr``.
    name: str
    #: Wall-clock seconds; expiry is absolute in this clock. Injected by tests.
    clock: Callable[[], float]
    #: Optional abilities; see :class:`Capability`.
    capabilities: Capability

    async def get(self, key: str) -> RawEntry | None:
        """Return the live entry for ``key``, or None if it is missing or expired."""
        ...

    async def set(
        self,
        key: str,
        value: bytes,
        *,
        expires_at: float | None = None,
        if_match: str | None = None,
        if_absent: bool = False,
    ) -> str:
        """Store ``value`` under ``key`` and return its new etag."""
        ...

    async def delete(self, key: str, *, if_match: str | None = None) -> bool:
        """Remove ``key``; True if a live key was removed."""
        ...

    def keys(self, prefix: str = "") -> AsyncIterator[str]:
        """Yield every live key starting with ``prefix``."""
        ...

    async def aclose(self) -> None:
        """Release resources. Idempotent."""
        ...


class BatchDriver(Driver, Protocol):
    """Typing aid for the optional batch methods (see :class:`Capability`)."""

    async def get_many(self, keys: Sequence[str]) -> list[RawEntry | None]: ...

    async def set_many(
        self, items: Sequence[tuple[str, bytes]], *, expires_at: float | None = None
    ) -> Sequence[str]: ...

    async def delete_many(self, keys: Sequence[str]) -> int: ...

    async def clear(self, prefix: str) -> int: ...

    async def exists(self, key: str) -> bool: ...

    def read_stream(self, key: str, *, chunk_size: int = ...) -> AsyncIterator[bytes]:
        """Yield the value in chunks; raise KeyNotFoundError if missing."""
        ...

    async def write_stream(
        self, key: str, chunks: AsyncIterable[bytes], *, expires_at: float | None = None
    ) -> str: ...

    async def get_if_changed(self, key: str, etag: str) -> RawEntry | NotModified | None: ...

    async def get_value(self, key: str) -> bytes | None:
        """The live value of ``key`` (None if missing or expired), without etag or expiry."""
        ...

    async def get_values(self, keys: Sequence[str]) -> list[bytes | None]:
        """Live values of ``keys`` in order, None where missing or expired."""
        ...
