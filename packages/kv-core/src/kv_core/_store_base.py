"""The state and helpers every part of :class:`~kv_core.Store` shares."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Generic, TypeVar

from ._codecs import Codec
from ._driver import Capability, Driver
from ._errors import KeyNotFoundError, SerializationError, StoreClosedError
from ._keys import MAX_KEY_LENGTH, validate_key
from ._locks import KeyGate

__all__ = [
    "KEEP_TTL",
    "MAX_TTL_SECONDS",
    "MISSING",
    "Seconds",
    "StoreBase",
    "expiry",
    "ttl_seconds",
]

T = TypeVar("T")

#: A duration: seconds (int or float) or a timedelta.
Seconds = float | int | timedelta  # a runtime alias: fine on 3.10 (PEP 604)


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


class _KeepTTL:
    def __repr__(self) -> str:
        return "KEEP_TTL"


MISSING: Any = _Missing()
#: Passed as ``ttl=`` to :meth:`Store.update`: keep the key's current expiry (the default).
KEEP_TTL: Any = _KeepTTL()


class _Shared:
    """State shared by a store and every view made from it (namespace, with_codec)."""

    __slots__ = ("__weakref__", "closed", "driver", "locks", "used")

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self.closed = False
        self.used = False
        self.locks = KeyGate()

    def __del__(self) -> None:
        if not self.closed and self.used:
            warnings.warn(
                f"kv Store over {self.driver.name} was never closed; use 'async with' or aclose()",
                ResourceWarning,
                stacklevel=2,
                source=self,
            )


#: The longest TTL any backend accepts (about 317 years): Redis counts expiry in
#: milliseconds, and a larger value would overflow some backend's clock arithmetic.
MAX_TTL_SECONDS = 10_000_000_000


def ttl_seconds(ttl: object) -> float | None:
    """Validate a ``ttl=`` argument before any I/O; return it in seconds (None: no expiry).

    Accepts an int or float (not a bool, not a str) or a timedelta, finite, positive and at
    most :data:`MAX_TTL_SECONDS`; anything else raises TypeError or ValueError, the same
    for every backend.
    """
    if ttl is None:
        return None
    if isinstance(ttl, timedelta):
        seconds = ttl.total_seconds()
    elif isinstance(ttl, (int, float)) and not isinstance(ttl, bool):
        try:
            seconds = float(ttl)
        except OverflowError:  # an int too large for a float
            seconds = math.inf
    else:
        raise TypeError(
            f"ttl must be seconds (int or float), a timedelta or None, not {type(ttl).__name__}"
        )
    if not 0 < seconds <= MAX_TTL_SECONDS:  # also rejects NaN and infinities
        raise ValueError(
            f"ttl must be positive seconds of at most {MAX_TTL_SECONDS:,} or None, got {ttl!r}"
        )
    return seconds


def expiry(clock: Callable[[], float], ttl: Seconds | None) -> float | None:
    """The absolute expiry (``clock()`` time) of a write made now with ``ttl``."""
    seconds = ttl_seconds(ttl)
    return None if seconds is None else clock() + seconds


class StoreBase(Generic[T]):
    """Fields and helpers of a Store; the operations live in the classes built on it."""

    __slots__ = (
        "_batch_concurrency",
        "_caps",
        "_clock",
        "_codec",
        "_decode",
        "_driver",
        "_encode",
        "_prefix",
        "_shared",
        "_update_attempts",
        "_values",
    )

    def _setup(
        self,
        shared: _Shared,
        codec: Codec[T],
        prefix: str,
        update_attempts: int,
        batch_concurrency: int,
    ) -> None:
        if update_attempts < 1 or batch_concurrency < 1:
            raise ValueError("update_attempts and batch_concurrency must be at least 1")
        self._shared = shared
        self._driver = shared.driver
        self._caps = shared.driver.capabilities
        self._values = bool(self._caps & Capability.VALUES)
        self._clock = shared.driver.clock
        self._codec = codec
        self._encode = codec.encode
        self._decode = codec.decode
        self._prefix = prefix
        self._update_attempts = update_attempts
        self._batch_concurrency = batch_concurrency

    # -- views and lifecycle -------------------------------------------------------------

    @property
    def driver(self) -> Driver:
        """The driver underneath (use it for backend-specific features)."""
        return self._driver

    @property
    def codec(self) -> Codec[T]:
        """The codec of this store."""
        return self._codec

    @property
    def prefix(self) -> str:
        """The namespace prefix this store adds to every key ("" at the root)."""
        return self._prefix

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` has run."""
        return self._shared.closed

    async def aclose(self) -> None:
        """Close the driver. Idempotent; every view of this store is closed too."""
        if self._shared.closed:
            return
        self._shared.closed = True
        await self._driver.aclose()

    def __repr__(self) -> str:
        ns = f", namespace={self._prefix[:-1]!r}" if self._prefix else ""
        codec_name = getattr(self._codec, "name", type(self._codec).__name__)
        return f"Store({self._driver.name}{ns}, codec={codec_name})"

    # -- helpers -------------------------------------------------------------------------

    def _check_open(self) -> None:
        shared = self._shared
        if shared.closed:
            raise StoreClosedError("the store is closed", store=self._driver.name)
        shared.used = True

    def _full(self, key: str) -> str:
        # Fast path first: this runs on every operation.
        if not (type(key) is str and 0 < len(key) <= MAX_KEY_LENGTH and key.isascii()):
            validate_key(key)
        return self._prefix + key

    def _dumps(self, full: str, value: T) -> bytes:
        try:
            return self._encode(value)
        except Exception as exc:
            raise SerializationError(
                f"cannot encode a {type(value).__name__} with the {self._codec.name} codec: {exc}",
                key=full,
                store=self._driver.name,
            ) from exc

    def _loads(self, full: str, data: bytes) -> T:
        try:
            return self._decode(data)
        except Exception as exc:
            raise SerializationError(
                f"stored data cannot be decoded with the {self._codec.name} codec: {exc}",
                key=full,
                store=self._driver.name,
            ) from exc

    def _missing(self, full: str) -> KeyNotFoundError:
        return KeyNotFoundError("no such key", key=full, store=self._driver.name)
