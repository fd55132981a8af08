"""Store: the one class users call.

Everything that is the same on every backend lives here once: key validation,
namespaces, codecs, TTL arithmetic, ``update()`` retry loops, defaults, error wrapping
and the generic fallbacks for drivers that lack an optional ability. The parts live in
``_store_base`` (state, helpers, lifecycle), ``_store_batch`` (listing and batches) and
``_store_stream`` (byte streams); single-key operations are here.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import random
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, TypeVar, cast, overload

from ._codecs import JSON, Codec
from ._driver import Capability, Driver
from ._entry import Entry
from ._errors import PreconditionFailedError, StoreClosedError
from ._keys import MAX_KEY_LENGTH, validate_key
from ._store_base import KEEP_TTL, MISSING, Seconds, _Shared, expiry, ttl_seconds
from ._store_batch import BatchOps
from ._store_stream import StreamOps

__all__ = ["KEEP_TTL", "Store"]

T = TypeVar("T")
U = TypeVar("U")
D = TypeVar("D")


class Store(BatchOps[T], StreamOps[T]):
    """Async key-value store over any :class:`~kv_core.Driver`.

    Args:
        driver: The backend.
        codec: Turns values into bytes and back (default :data:`~kv_core.JSON`).
        update_attempts: How many compare-and-set attempts :meth:`update` makes.
        batch_concurrency: How many single operations the generic batch fallbacks run at once.

    Use ``async with store:`` (or ``await store.aclose()``); a closed store raises
    StoreClosedError. Views made with :meth:`namespace` and :meth:`with_codec` share the
    driver and close with it.
    """

    __slots__ = ()

    @overload
    def __init__(
        self: Store[Any],
        driver: Driver,
        *,
        update_attempts: int = ...,
        batch_concurrency: int = ...,
    ) -> None: ...
    @overload
    def __init__(
        self,
        driver: Driver,
        codec: Codec[T],
        *,
        update_attempts: int = ...,
        batch_concurrency: int = ...,
    ) -> None: ...

    def __init__(
        self,
        driver: Driver,
        codec: Codec[Any] = JSON,
        *,
        update_attempts: int = 64,
        batch_concurrency: int = 32,
    ) -> None:
        self._setup(_Shared(driver), codec, "", update_attempts, batch_concurrency)

    def _view(self, codec: Codec[U], prefix: str) -> Store[U]:
        view: Store[U] = Store.__new__(Store)
        view._setup(self._shared, codec, prefix, self._update_attempts, self._batch_concurrency)
        return view

    def namespace(self, name: str) -> Store[T]:
        """Return a store whose keys live under ``name + "/"``.

        ``store.namespace("a").namespace("b")`` and ``store.namespace("a/b")`` address
        the same keys. The name must itself be a valid key.
        """
        validate_key(name)
        return self._view(self._codec, f"{self._prefix}{name}/")

    def with_codec(self, codec: Codec[U]) -> Store[U]:
        """Return a store over the same driver and namespace with another codec."""
        return self._view(codec, self._prefix)

    async def __aenter__(self) -> Store[T]:
        self._check_open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- single keys ---------------------------------------------------------------------

    @overload
    async def get(self, key: str) -> T: ...
    @overload
    async def get(self, key: str, default: D) -> T | D: ...

    async def get(self, key: str, default: Any = MISSING) -> Any:
        """Return the value of ``key``.

        Raises:
            KeyNotFoundError: The key is missing and no ``default`` was given.
            SerializationError: The stored bytes cannot be decoded.
        """
        shared = self._shared
        if shared.closed:
            raise StoreClosedError("the store is closed", store=self._driver.name)
        shared.used = True
        if not (type(key) is str and 0 < len(key) <= MAX_KEY_LENGTH and key.isascii()):
            validate_key(key)
        full = self._prefix + key
        if self._values:
            data = await cast(Any, self._driver).get_value(full)
        else:
            entry = await self._driver.get(full)
            data = None if entry is None else entry.value
        if data is None:
            if default is MISSING:
                raise self._missing(full)
            return default
        try:
            return self._decode(data)
        except Exception:
            return self._loads(full, data)  # re-raises as SerializationError

    async def get_entry(self, key: str) -> Entry[T]:
        """Return the value of ``key`` with its etag and expiry.

        Raises:
            KeyNotFoundError: The key is missing.
        """
        self._check_open()
        full = self._full(key)
        entry = await self._driver.get(full)
        if entry is None:
            raise self._missing(full)
        return Entry(key, self._loads(full, entry.value), entry.etag, entry.expires_at)

    async def set(
        self,
        key: str,
        value: T,
        *,
        ttl: Seconds | None = None,
        if_match: str | None = None,
        if_absent: bool = False,
    ) -> str:
        """Store ``value`` under ``key`` and return its new etag.

        Args:
            key: The key.
            value: The value, encoded with the store's codec.
            ttl: Seconds (or a timedelta) until the key expires; None keeps it forever.
            if_match: Write only if the current etag is this one.
            if_absent: Write only if the key does not exist.

        Raises:
            PreconditionFailedError: ``if_match`` was stale or ``if_absent`` found the key;
                nothing was written.
        """
        shared = self._shared
        if shared.closed:
            raise StoreClosedError("the store is closed", store=self._driver.name)
        shared.used = True
        if not (type(key) is str and 0 < len(key) <= MAX_KEY_LENGTH and key.isascii()):
            validate_key(key)
        full = self._prefix + key
        try:
            data = self._encode(value)
        except Exception:
            data = self._dumps(full, value)  # re-raises as SerializationError
        if ttl is None and if_match is None and not if_absent:
            return await self._driver.set(full, data)
        if if_match is not None and if_absent:
            raise ValueError("if_match and if_absent cannot be combined")
        return await self._driver.set(
            full,
            data,
            expires_at=expiry(self._clock, ttl),
            if_match=if_match,
            if_absent=if_absent,
        )

    async def delete(self, key: str, *, if_match: str | None = None) -> bool:
        """Delete ``key``; return True if it existed.

        Raises:
            PreconditionFailedError: ``if_match`` was given and is stale (or the key is gone).
        """
        self._check_open()
        return await self._driver.delete(self._full(key), if_match=if_match)

    async def exists(self, key: str) -> bool:
        """Return True if ``key`` exists (and has not expired)."""
        self._check_open()
        full = self._full(key)
        if self._caps & Capability.EXISTS:
            return await cast(Any, self._driver).exists(full)  # type: ignore[no-any-return]
        return await self._driver.get(full) is not None

    async def ttl(self, key: str) -> float | None:
        """Return the seconds left before ``key`` expires, or None if it never expires.

        Raises:
            KeyNotFoundError: The key is missing.
        """
        self._check_open()
        full = self._full(key)
        entry = await self._driver.get(full)
        if entry is None:
            raise self._missing(full)
        if entry.expires_at is None:
            return None
        return max(0.0, entry.expires_at - self._clock())

    async def update(
        self,
        key: str,
        fn: Callable[[T], T | Awaitable[T]],
        *,
        default: T = MISSING,
        ttl: Seconds | None = KEEP_TTL,
        attempts: int | None = None,
    ) -> T:
        """Atomically replace the value of ``key`` with ``fn(old)`` and return the new value.

        A compare-and-set loop: read with the etag, compute, write ``if_match`` (or
        ``if_absent`` when the key was missing); on conflict retry with jittered backoff.
        Updaters of one key in this process are serialised, so they never conflict with
        each other; across processes the etag keeps every update.

        Args:
            key: The key.
            fn: Computes the new value from the old one; may be sync or async. It may run
                more than once, so it must not have side effects.
            default: The old value to use when the key is missing. Without it a missing key
                raises KeyNotFoundError.
            ttl: The new expiry; by default the key keeps the expiry it had.
            attempts: Overrides the store's ``update_attempts``.

        Raises:
            PreconditionFailedError: Every attempt met a concurrent write.
        """
        self._check_open()
        full = self._full(key)
        if attempts is not None and attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {attempts}")
        limit = attempts or self._update_attempts
        seconds = None if ttl is KEEP_TTL else ttl_seconds(ttl)  # bad TTLs fail before any I/O
        driver = self._driver
        locks = self._shared.locks
        await locks.acquire(full)
        try:
            for attempt in range(limit):
                entry = await driver.get(full)
                if entry is None:
                    if default is MISSING:
                        raise self._missing(full)
                    old = copy.deepcopy(default)
                else:
                    old = self._loads(full, entry.value)
                new = fn(old)
                if inspect.isawaitable(new):
                    new = await new
                value = cast(T, new)
                data = self._dumps(full, value)
                if ttl is KEEP_TTL:
                    expires_at = entry.expires_at if entry is not None else None
                else:
                    expires_at = None if seconds is None else self._clock() + seconds
                try:
                    if entry is None:
                        await driver.set(full, data, expires_at=expires_at, if_absent=True)
                    else:
                        await driver.set(full, data, expires_at=expires_at, if_match=entry.etag)
                except PreconditionFailedError:
                    if attempt + 1 < limit:
                        # Full jitter, capped: contenders spread out instead of colliding again.
                        await asyncio.sleep(random.uniform(0, min(0.1, 0.001 * 2**attempt)))
                    continue
                return value
        finally:
            locks.release(full)
        raise PreconditionFailedError(
            f"update gave up after {limit} conflicting attempts", key=full, store=driver.name
        )
