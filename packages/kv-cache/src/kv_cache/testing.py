"""Run kv-core's test suites over a cache in front of any backend.

``CachedHarness`` wraps any :class:`kv_core.testing.Harness`::

    @pytest.fixture
    def kv_harness(tmp_path):
        return CachedHarness(UrlHarness(f"file:{tmp_path}"), mode="write_through")

Two shapes, because "a second driver over the same storage" means two things for a cache:

- ``shared=False``: every ``make_driver`` is a new, empty cache over a new inner driver
  (two processes, each with its own cache). Independent caches only see each other's
  writes through revalidation, so the suites need ``max_staleness=0`` and write-through
  (or NONE) here; write-back writes are invisible to others until flushed, by design.
- ``shared=True``: every ``make_driver`` is a view of one cache (one process, one cache,
  several stores). Closing the last view closes (and flushes) the cache.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from typing import Any

from kv_core import Driver, NotModified, RawEntry, StoreClosedError

from ._driver import CachedDriver
from ._result import FlushResult

__all__ = ["CachedHarness", "SharedView"]


class SharedView:
    """One store's handle on a shared cache; a Driver that forwards to it."""

    def __init__(self, owner: CachedHarness, cache: CachedDriver) -> None:
        self._owner = owner
        self._cache = cache
        self.name = cache.name
        self.clock = cache.clock
        self.capabilities = cache.capabilities
        self._closed = False

    @property
    def cache(self) -> CachedDriver:
        """The shared cache."""
        return self._cache

    def _open(self) -> CachedDriver:
        if self._closed:
            raise StoreClosedError("view is closed", store=self.name)
        return self._cache

    async def get(self, key: str) -> RawEntry | None:
        """See :meth:`CachedDriver.get`."""
        return await self._open().get(key)

    async def set(
        self,
        key: str,
        value: bytes,
        *,
        expires_at: float | None = None,
        if_match: str | None = None,
        if_absent: bool = False,
    ) -> str:
        """See :meth:`CachedDriver.set`."""
        return await self._open().set(
            key, value, expires_at=expires_at, if_match=if_match, if_absent=if_absent
        )

    async def delete(self, key: str, *, if_match: str | None = None) -> bool:
        """See :meth:`CachedDriver.delete`."""
        return await self._open().delete(key, if_match=if_match)

    async def keys(self, prefix: str = "") -> AsyncIterator[str]:
        """See :meth:`CachedDriver.keys`."""
        async for key in self._open().keys(prefix):
            yield key

    async def exists(self, key: str) -> bool:
        """See :meth:`CachedDriver.exists`."""
        return await self._open().exists(key)

    async def get_many(self, keys: Sequence[str]) -> list[RawEntry | None]:
        """See :meth:`CachedDriver.get_many`."""
        return await self._open().get_many(keys)

    async def set_many(
        self, items: Sequence[tuple[str, bytes]], *, expires_at: float | None = None
    ) -> Sequence[str]:
        """See :meth:`CachedDriver.set_many`."""
        return await self._open().set_many(items, expires_at=expires_at)

    async def get_if_changed(self, key: str, etag: str) -> RawEntry | NotModified | None:
        """See :meth:`CachedDriver.get_if_changed`."""
        return await self._open().get_if_changed(key, etag)

    def read_stream(self, key: str, *, chunk_size: int = 1 << 16) -> AsyncIterator[bytes]:
        """See :meth:`CachedDriver.read_stream`."""
        return self._open().read_stream(key, chunk_size=chunk_size)

    async def write_stream(
        self, key: str, chunks: AsyncIterable[bytes], *, expires_at: float | None = None
    ) -> str:
        """See :meth:`CachedDriver.write_stream`."""
        return await self._open().write_stream(key, chunks, expires_at=expires_at)

    async def flush(self) -> FlushResult:
        """See :meth:`CachedDriver.flush`."""
        return await self._open().flush()

    async def aclose(self) -> None:
        """Close this view; the last one closes the cache."""
        if self._closed:
            return
        self._closed = True
        self._owner.views -= 1
        if self._owner.views == 0:
            self._owner.cache = None
            await self._cache.aclose()


class CachedHarness:
    """A harness whose drivers are caches over another harness's drivers.

    Args:
        inner: The harness of the backend to cache.
        shared: One cache for every driver (see the module docstring).
        options: Keyword options of :class:`CachedDriver`.
    """

    def __init__(self, inner: Any, *, shared: bool = False, **options: Any) -> None:
        self.inner = inner
        self.shared = shared
        self.options = options
        self.cache: CachedDriver | None = None
        self.views = 0

    def __getstate__(self) -> dict[str, Any]:
        # A live cache belongs to one process and one event loop.
        return {**self.__dict__, "cache": None, "views": 0}

    def make_driver(self, *, clock: Callable[[], float] | None = None) -> Driver:
        """A new cache, or a view of the shared one."""
        if not self.shared:
            return CachedDriver(self.inner.make_driver(clock=clock), **self.options)
        if self.cache is None:
            self.cache = CachedDriver(self.inner.make_driver(clock=clock), **self.options)
        self.views += 1
        return SharedView(self, self.cache)

    def make_unreachable_driver(self) -> Driver | None:
        """A cache over the inner harness's unreachable driver (None if it has none)."""
        inner = self.inner.make_unreachable_driver()
        return None if inner is None else CachedDriver(inner, **self.options)

    def __repr__(self) -> str:
        shape = "shared" if self.shared else "cold"
        return f"CachedHarness({self.inner!r}, {shape}, {self.options})"
