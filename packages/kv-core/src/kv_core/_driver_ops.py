"""Optional driver abilities called on any driver, native where it declares them.

The Store and the middleware call optional methods on drivers that may lack them (a
Router whose routes differ, a Fallback's secondary); these helpers use the native method
when the matching :class:`~kv_core.Capability` is declared and a correct generic version
otherwise: one implementation of every fallback.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Iterable, Sequence
from typing import Any, TypeVar, cast

from ._driver import NOT_MODIFIED, Capability, Driver, NotModified, RawEntry
from ._errors import KeyNotFoundError

__all__ = [
    "bounded",
    "clear",
    "delete_many",
    "exists",
    "get_if_changed",
    "get_many",
    "get_value",
    "get_values",
    "read_stream",
    "set_many",
    "write_stream",
]

U = TypeVar("U")

#: Single calls in flight at once when a batch is emulated (as the Store's default).
CONCURRENCY = 32
_DEFAULT_CHUNK = 256 * 1024


async def bounded(calls: Iterable[Awaitable[U]], limit: int = CONCURRENCY) -> list[U]:
    """Await ``calls`` with at most ``limit`` in flight; results in order."""
    sem = asyncio.Semaphore(limit)

    async def one(call: Awaitable[U]) -> U:
        async with sem:
            return await call

    return list(await asyncio.gather(*(one(c) for c in calls)))


def _has(driver: Driver, cap: Capability) -> bool:
    return bool(driver.capabilities & cap)


async def get_many(
    driver: Driver, keys: Sequence[str], limit: int = CONCURRENCY
) -> list[RawEntry | None]:
    """Entries for ``keys`` in order."""
    if _has(driver, Capability.GET_MANY):
        return cast(list[RawEntry | None], await cast(Any, driver).get_many(keys))
    return await bounded((driver.get(k) for k in keys), limit)


async def set_many(
    driver: Driver, items: Sequence[tuple[str, bytes]], expires_at: float | None
) -> list[str]:
    """Unconditional writes; the etags in order."""
    if _has(driver, Capability.SET_MANY):
        return list(await cast(Any, driver).set_many(items, expires_at=expires_at))
    return await bounded(driver.set(k, v, expires_at=expires_at) for k, v in items)


async def delete_many(driver: Driver, keys: Sequence[str], limit: int = CONCURRENCY) -> int:
    """Delete ``keys``; how many were live."""
    if _has(driver, Capability.DELETE_MANY):
        return int(await cast(Any, driver).delete_many(keys))
    return sum(await bounded((driver.delete(k) for k in keys), limit))


async def clear(driver: Driver, prefix: str, limit: int = CONCURRENCY) -> int:
    """Delete every key starting with ``prefix``; how many."""
    if _has(driver, Capability.CLEAR):
        return int(await cast(Any, driver).clear(prefix))
    return await delete_listed(driver, driver.keys(prefix), limit=limit)


async def delete_listed(
    driver: Driver, keys: AsyncIterable[str], page: int = 100, limit: int = CONCURRENCY
) -> int:
    """Delete the keys an async iterable yields, ``page`` at a time (bounded memory)."""
    count = 0
    chunk: list[str] = []
    async for key in keys:
        chunk.append(key)
        if len(chunk) >= page:
            count += await delete_many(driver, chunk, limit)
            chunk = []
    if chunk:
        count += await delete_many(driver, chunk, limit)
    return count


async def exists(driver: Driver, key: str) -> bool:
    """True if ``key`` is live."""
    if _has(driver, Capability.EXISTS):
        return bool(await cast(Any, driver).exists(key))
    return await driver.get(key) is not None


async def get_value(driver: Driver, key: str) -> bytes | None:
    """The live value of ``key`` or None."""
    if _has(driver, Capability.VALUES):
        return cast("bytes | None", await cast(Any, driver).get_value(key))
    entry = await driver.get(key)
    return None if entry is None else entry.value


async def get_values(driver: Driver, keys: Sequence[str]) -> list[bytes | None]:
    """Live values of ``keys`` in order."""
    if _has(driver, Capability.VALUES):
        return cast(list["bytes | None"], await cast(Any, driver).get_values(keys))
    return [None if e is None else e.value for e in await get_many(driver, keys)]


async def get_if_changed(driver: Driver, key: str, etag: str) -> RawEntry | NotModified | None:
    """NOT_MODIFIED if ``key``'s etag is still ``etag``, else the entry or None."""
    if _has(driver, Capability.CONDITIONAL_GET):
        return cast(
            "RawEntry | NotModified | None", await cast(Any, driver).get_if_changed(key, etag)
        )
    entry = await driver.get(key)
    if entry is not None and entry.etag == etag:
        return NOT_MODIFIED
    return entry


async def read_stream(
    driver: Driver, key: str, chunk_size: int = _DEFAULT_CHUNK
) -> AsyncIterator[bytes]:
    """The value of ``key`` in chunks; KeyNotFoundError if missing."""
    if _has(driver, Capability.STREAM):
        async for chunk in cast(Any, driver).read_stream(key, chunk_size=chunk_size):
            yield chunk
        return
    entry = await driver.get(key)
    if entry is None:
        raise KeyNotFoundError("no such key", key=key, store=driver.name)
    data = entry.value
    for i in range(0, len(data), chunk_size):
        yield data[i : i + chunk_size]


async def write_stream(
    driver: Driver, key: str, chunks: AsyncIterable[bytes], expires_at: float | None
) -> str:
    """Store the concatenated chunks (bounded memory only on a streaming driver)."""
    if _has(driver, Capability.STREAM):
        return str(await cast(Any, driver).write_stream(key, chunks, expires_at=expires_at))
    data = b"".join([bytes(c) async for c in chunks])
    return await driver.set(key, data, expires_at=expires_at)
