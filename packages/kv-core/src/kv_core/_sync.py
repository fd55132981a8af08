"""The blocking face of a Store (DESIGN §11): one private event loop in a background thread.

Every call is forwarded to the async :class:`~kv_core.Store` running on that loop, so every
rule (keys, codecs, TTLs, update() loops, errors) has exactly one implementation.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Mapping,
)
from concurrent.futures import Future
from types import TracebackType
from typing import Any, Generic, TypeVar

from ._codecs import JSON, Codec
from ._driver import Driver
from ._entry import Entry
from ._registry import default_registry
from ._store import KEEP_TTL, Store
from ._store_base import MISSING, Seconds

__all__ = ["SyncStore", "open_store"]

T = TypeVar("T")
R = TypeVar("R")


class _LoopThread:
    """An event loop running forever in a daemon thread, shared by a store and its views."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._run,
            name="kv-sync-loop",
            daemon=True,  # never blocks interpreter exit
        )
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, coro: Coroutine[Any, Any, R]) -> R:
        """Run ``coro`` on the loop and wait for its result in the calling thread."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            coro.close()
            raise RuntimeError(
                "kv_core.sync blocks the calling thread, and this thread runs an event loop: "
                "use the async kv_core.Store here (await store.get(...))"
            )
        if not self._thread.is_alive():
            coro.close()
            raise RuntimeError("this SyncStore is closed")
        future: Future[R] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result()

    def stop(self) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join()
        self.loop.close()


async def _build(factory: Callable[[], Store[T]]) -> Store[T]:
    # Drivers may create loop-bound resources when they are made: make them on the loop.
    return factory()


class SyncStore(Generic[T]):
    """A blocking :class:`~kv_core.Store`: the same methods, without ``await``.

    ``SyncStore(driver, codec=JSON)`` or :func:`open_store`. Use it as a context manager
    (or call :meth:`close`). Safe to call from several threads at once; calling it from a
    thread that runs an event loop raises RuntimeError (use the async Store there).
    Iterators (:meth:`keys`, :meth:`items`, :meth:`read_stream`) are plain iterators.
    """

    __slots__ = ("_loop", "_owner", "_store")

    def __init__(
        self,
        driver: Driver | None = None,
        codec: Codec[T] = JSON,
        *,
        _store: Store[T] | None = None,
        _loop: _LoopThread | None = None,
        **store_options: Any,
    ) -> None:
        self._owner = _loop is None
        self._loop = _loop or _LoopThread()
        if _store is None:
            if driver is None:
                self._loop.stop()
                raise TypeError("SyncStore needs a driver")
            d = driver
            try:
                _store = self._loop.call(_build(lambda: Store(d, codec, **store_options)))
            except BaseException:
                self._loop.stop()
                raise
        self._store = _store

    @classmethod
    def _open(cls, url: str, codec: Codec[Any], options: dict[str, Any]) -> SyncStore[Any]:
        loop = _LoopThread()
        try:
            store = loop.call(
                _build(lambda: default_registry.open_store(url, codec=codec, **options))
            )
        except BaseException:
            loop.stop()
            raise
        view: SyncStore[Any] = cls(_store=store, _loop=loop)
        view._owner = True
        return view

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def store(self) -> Store[T]:
        """The async Store underneath (only usable on this SyncStore's own loop)."""
        return self._store

    @property
    def closed(self) -> bool:
        """True once the store is closed."""
        return self._store.closed

    def close(self) -> None:
        """Close the store and stop its loop thread. Idempotent; views close with it."""
        if self._owner:
            if self._loop.loop.is_closed():
                return
            try:
                self._loop.call(self._store.aclose())
            finally:
                self._loop.stop()
        else:
            self._loop.call(self._store.aclose())

    def __enter__(self) -> SyncStore[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Sync{self._store!r}"

    def _call(self, coro: Coroutine[Any, Any, R]) -> R:
        return self._loop.call(coro)

    def _iterate(self, agen: AsyncIterator[R]) -> Iterator[R]:
        try:
            while True:
                try:
                    yield self._call(_next(agen))
                except StopAsyncIteration:
                    return
        finally:
            closer = getattr(agen, "aclose", None)
            if closer is not None and not self._loop.loop.is_closed():
                self._call(closer())

    # -- views -----------------------------------------------------------------------------

    def namespace(self, name: str) -> SyncStore[T]:
        """A SyncStore whose keys live under ``name/`` (same loop, same driver)."""
        return SyncStore(_store=self._store.namespace(name), _loop=self._loop)

    def with_codec(self, codec: Codec[R]) -> SyncStore[R]:
        """The same store with another codec."""
        return SyncStore(_store=self._store.with_codec(codec), _loop=self._loop)

    # -- operations ------------------------------------------------------------------------

    def get(self, key: str, default: Any = MISSING) -> Any:
        """The value of ``key``; ``default`` if missing, else KeyNotFoundError."""
        return self._call(self._store.get(key, default))

    def get_entry(self, key: str) -> Entry[T]:
        """The value with its etag and expiry."""
        return self._call(self._store.get_entry(key))

    def set(
        self,
        key: str,
        value: T,
        *,
        ttl: Seconds | None = None,
        if_match: str | None = None,
        if_absent: bool = False,
    ) -> str:
        """Store ``value``; return the new etag."""
        return self._call(
            self._store.set(key, value, ttl=ttl, if_match=if_match, if_absent=if_absent)
        )

    def delete(self, key: str, *, if_match: str | None = None) -> bool:
        """Delete ``key``; True if it existed."""
        return self._call(self._store.delete(key, if_match=if_match))

    def exists(self, key: str) -> bool:
        """True if ``key`` exists."""
        return self._call(self._store.exists(key))

    def ttl(self, key: str) -> float | None:
        """Seconds left before ``key`` expires, or None."""
        return self._call(self._store.ttl(key))

    def update(
        self,
        key: str,
        fn: Callable[[T], T | Awaitable[T]],
        *,
        default: T = MISSING,
        ttl: Seconds | None = KEEP_TTL,
        attempts: int | None = None,
    ) -> T:
        """Atomically replace the value with ``fn(old)`` (a compare-and-set loop)."""
        return self._call(self._store.update(key, fn, default=default, ttl=ttl, attempts=attempts))

    def keys(self, prefix: str = "") -> Iterator[str]:
        """Every key starting with ``prefix``."""
        return self._iterate(self._store.keys(prefix))

    def items(self, prefix: str = "", *, batch: int = 100) -> Iterator[tuple[str, T]]:
        """``(key, value)`` for every key starting with ``prefix``."""
        return self._iterate(self._store.items(prefix, batch=batch))

    def clear(self) -> int:
        """Delete every key of this store (this namespace only); return how many."""
        return self._call(self._store.clear())

    def get_many(self, keys: Iterable[str]) -> dict[str, T]:
        """``{key: value}`` for the keys that exist."""
        return self._call(self._store.get_many(list(keys)))

    def set_many(
        self, items: Mapping[str, T] | Iterable[tuple[str, T]], *, ttl: Seconds | None = None
    ) -> None:
        """Store every ``key: value`` of ``items``."""
        pairs = items if isinstance(items, Mapping) else list(items)
        self._call(self._store.set_many(pairs, ttl=ttl))

    def delete_many(self, keys: Iterable[str]) -> int:
        """Delete ``keys``; return how many existed."""
        return self._call(self._store.delete_many(list(keys)))

    def write_stream(self, key: str, chunks: Iterable[bytes], *, ttl: Seconds | None = None) -> str:
        """Store the concatenated ``chunks`` (raw bytes); return the etag.

        The chunks are pulled one at a time on the store's loop thread, so memory stays
        bounded by a chunk on drivers that stream; a producer should not block for long.
        """
        return self._call(self._store.write_stream(key, chunks, ttl=ttl))

    def read_stream(self, key: str, *, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """The raw bytes of ``key`` in chunks of at most ``chunk_size``."""
        return self._iterate(self._store.read_stream(key, chunk_size=chunk_size))


async def _next(agen: AsyncIterator[R]) -> R:
    return await agen.__anext__()


def open_store(url: str, *, codec: Codec[Any] = JSON, **options: Any) -> SyncStore[Any]:
    """Open a blocking store by URL: ``with open_store("file:./data") as store: ...``."""
    return SyncStore._open(url, codec, options)
