"""Store: the one class users call.

Everything that is the same on every backend lives here once: key validation,
namespaces, codecs, TTL arithmetic, ``update()`` retry loops, defaults, error wrapping
and the generic fallbacks for drivers that lack an optional ability.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import random
import warnings
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from datetime import timedelta
from types import TracebackType
from typing import Any, Generic, TypeVar, cast, overload

from ._codecs import JSON, Codec
from ._driver import Capability, Driver, RawEntry
from ._entry import Entry
from ._errors import (
    KeyNotFoundError,
    PreconditionFailedError,
    SerializationError,
    StoreClosedError,
)
from ._keys import MAX_KEY_LENGTH, validate_key
from ._locks import KeyLocks

__all__ = ["KEEP_TTL", "Store"]

T = TypeVar("T")
U = TypeVar("U")
D = TypeVar("D")

Seconds = float | int | timedelta


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


class _KeepTTL:
    def __repr__(self) -> str:
        return "KEEP_TTL"


_MISSING: Any = _Missing()
#: Passed as ``ttl=`` to :meth:`Store.update`: keep the key's current expiry (the default).
KEEP_TTL: Any = _KeepTTL()

_DEFAULT_CHUNK = 1 << 20


class _Shared:
    """State shared by a store and every view made from it (namespace, with_codec)."""

    __slots__ = ("__weakref__", "closed", "driver", "locks", "used")

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self.closed = False
        self.used = False
        self.locks = KeyLocks()

    def __del__(self) -> None:
        if not self.closed and self.used:
            warnings.warn(
                f"kv Store over {self.driver.name} was never closed; use 'async with' or aclose()",
                ResourceWarning,
                stacklevel=2,
                source=self,
            )


def _expiry(clock: Callable[[], float], ttl: Seconds | None) -> float | None:
    if ttl is None:
        return None
    seconds = ttl.total_seconds() if isinstance(ttl, timedelta) else float(ttl)
    if not seconds > 0:  # also rejects NaN
        raise ValueError(f"ttl must be positive seconds or None, got {ttl!r}")
    return clock() + seconds


class Store(Generic[T]):
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
    )

    def __init__(
        self,
        driver: Driver,
        codec: Codec[T] = JSON,
        *,
        update_attempts: int = 64,
        batch_concurrency: int = 32,
    ) -> None:
        self._setup(_Shared(driver), codec, "", update_attempts, batch_concurrency)

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
        self._clock = shared.driver.clock
        self._codec = codec
        self._encode = codec.encode
        self._decode = codec.decode
        self._prefix = prefix
        self._update_attempts = update_attempts
        self._batch_concurrency = batch_concurrency

    def _view(self, codec: Codec[U], prefix: str) -> Store[U]:
        view: Store[U] = Store.__new__(Store)
        view._setup(self._shared, codec, prefix, self._update_attempts, self._batch_concurrency)
        return view

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

    # -- single keys ---------------------------------------------------------------------

    @overload
    async def get(self, key: str) -> T: ...
    @overload
    async def get(self, key: str, default: D) -> T | D: ...

    async def get(self, key: str, default: Any = _MISSING) -> Any:
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
        entry = await self._driver.get(full)
        if entry is None:
            if default is _MISSING:
                raise self._missing(full)
            return default
        try:
            return self._decode(entry.value)
        except Exception:
            return self._loads(full, entry.value)  # re-raises as SerializationError

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
            expires_at=_expiry(self._clock, ttl),
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
        default: T = _MISSING,
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
        limit = attempts or self._update_attempts
        driver = self._driver
        async with self._shared.locks.hold(full):
            for attempt in range(limit):
                entry = await driver.get(full)
                if entry is None:
                    if default is _MISSING:
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
                    expires_at = _expiry(self._clock, ttl)
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
        raise PreconditionFailedError(
            f"update gave up after {limit} conflicting attempts", key=full, store=driver.name
        )

    # -- listing -------------------------------------------------------------------------

    async def keys(self, prefix: str = "") -> AsyncIterator[str]:
        """Yield every key (of this namespace) that starts with ``prefix``.

        Order is unspecified; the driver paginates underneath, so memory stays bounded.
        """
        self._check_open()
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str, not {type(prefix).__name__}")
        cut = len(self._prefix)
        async for full in self._driver.keys(self._prefix + prefix):
            yield full[cut:]

    async def items(self, prefix: str = "", *, batch: int = 100) -> AsyncIterator[tuple[str, T]]:
        """Yield ``(key, value)`` for every key starting with ``prefix``.

        Keys deleted between listing and reading are skipped.
        """
        chunk: list[str] = []
        async for key in self.keys(prefix):
            chunk.append(key)
            if len(chunk) >= batch:
                for pair in (await self.get_many(chunk)).items():
                    yield pair
                chunk = []
        if chunk:
            for pair in (await self.get_many(chunk)).items():
                yield pair

    async def clear(self) -> int:
        """Delete every key of this store (of this namespace only); return how many."""
        self._check_open()
        if self._caps & Capability.CLEAR:
            return await cast(Any, self._driver).clear(self._prefix)  # type: ignore[no-any-return]
        count = 0
        chunk: list[str] = []
        async for full in self._driver.keys(self._prefix):
            chunk.append(full)
            if len(chunk) >= 100:
                count += await self._delete_full(chunk)
                chunk = []
        if chunk:
            count += await self._delete_full(chunk)
        return count

    # -- batches -------------------------------------------------------------------------

    async def _bounded(self, calls: Iterable[Awaitable[U]]) -> list[U]:
        sem = asyncio.Semaphore(self._batch_concurrency)

        async def one(call: Awaitable[U]) -> U:
            async with sem:
                return await call

        return await asyncio.gather(*(one(c) for c in calls))

    async def _get_full(self, fulls: Sequence[str]) -> list[RawEntry | None]:
        if self._caps & Capability.GET_MANY:
            return await cast(Any, self._driver).get_many(fulls)  # type: ignore[no-any-return]
        return await self._bounded(self._driver.get(k) for k in fulls)

    async def _delete_full(self, fulls: Sequence[str]) -> int:
        if self._caps & Capability.DELETE_MANY:
            return await cast(Any, self._driver).delete_many(fulls)  # type: ignore[no-any-return]
        return sum(await self._bounded(self._driver.delete(k) for k in fulls))

    async def get_many(self, keys: Iterable[str]) -> dict[str, T]:
        """Return ``{key: value}`` for the keys that exist (missing keys are left out)."""
        self._check_open()
        wanted = list(dict.fromkeys(keys))
        fulls = [self._full(k) for k in wanted]
        if not fulls:
            return {}
        entries = await self._get_full(fulls)
        return {
            key: self._loads(full, entry.value)
            for key, full, entry in zip(wanted, fulls, entries, strict=True)
            if entry is not None
        }

    async def set_many(self, items: Mapping[str, T], *, ttl: Seconds | None = None) -> None:
        """Store every ``key: value`` of ``items`` (unconditionally, same ``ttl`` for all).

        Every value is encoded before anything is written, so a value that cannot be
        encoded writes nothing.
        """
        self._check_open()
        encoded = [
            (full, self._dumps(full, v))
            for full, v in ((self._full(k), v) for k, v in items.items())
        ]
        if not encoded:
            return
        expires_at = _expiry(self._clock, ttl)
        if self._caps & Capability.SET_MANY:
            await cast(Any, self._driver).set_many(encoded, expires_at=expires_at)
            return
        await self._bounded(self._driver.set(k, v, expires_at=expires_at) for k, v in encoded)

    async def delete_many(self, keys: Iterable[str]) -> int:
        """Delete ``keys``; return how many existed."""
        self._check_open()
        fulls = list(dict.fromkeys(self._full(k) for k in keys))
        if not fulls:
            return 0
        return await self._delete_full(fulls)

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
        expires_at = _expiry(self._clock, ttl)
        if self._caps & Capability.STREAM:
            return await cast(Any, self._driver).write_stream(  # type: ignore[no-any-return]
                full, source, expires_at=expires_at
            )
        data = b"".join([bytes(c) async for c in source])
        return await self._driver.set(full, data, expires_at=expires_at)

    async def read_stream(
        self, key: str, *, chunk_size: int = _DEFAULT_CHUNK
    ) -> AsyncIterator[bytes]:
        """Yield the raw bytes of ``key`` in chunks of at most ``chunk_size``.

        Raises:
            KeyNotFoundError: The key is missing.
        """
        self._check_open()
        full = self._full(key)
        if self._caps & Capability.STREAM:
            async for chunk in cast(Any, self._driver).read_stream(full, chunk_size=chunk_size):
                yield chunk
            return
        entry = await self._driver.get(full)
        if entry is None:
            raise self._missing(full)
        data = entry.value
        for i in range(0, len(data), chunk_size):
            yield data[i : i + chunk_size]


async def _aiter(chunks: Iterable[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk
