"""Listing, clearing and batches of :class:`~kv_core.Store`, with generic fallbacks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar, cast

from . import _driver_ops
from ._driver import Capability, RawEntry
from ._store_base import Seconds, StoreBase, expiry

__all__ = ["BatchOps"]

T = TypeVar("T")
U = TypeVar("U")


class BatchOps(StoreBase[T]):
    """keys, items, clear, get_many, set_many, delete_many."""

    __slots__ = ()

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
        return await _driver_ops.clear(self._driver, self._prefix, self._batch_concurrency)

    # -- batches -------------------------------------------------------------------------

    async def _bounded(self, calls: Iterable[Awaitable[U]]) -> list[U]:
        return await _driver_ops.bounded(calls, self._batch_concurrency)

    async def _get_full(self, fulls: Sequence[str]) -> list[RawEntry | None]:
        return await _driver_ops.get_many(self._driver, fulls, self._batch_concurrency)

    async def _delete_full(self, fulls: Sequence[str]) -> int:
        return await _driver_ops.delete_many(self._driver, fulls, self._batch_concurrency)

    async def get_many(self, keys: Iterable[str]) -> dict[str, T]:
        """Return ``{key: value}`` for the keys that exist (missing keys are left out)."""
        self._check_open()
        _not_one_key(keys)
        wanted = list(dict.fromkeys(keys))
        fulls = [self._full(k) for k in wanted]
        if not fulls:
            return {}
        if self._values:
            values = await cast(Any, self._driver).get_values(fulls)
        else:
            values = [None if e is None else e.value for e in await self._get_full(fulls)]
        return {
            key: self._loads(full, data)
            for key, full, data in zip(wanted, fulls, values, strict=True)
            if data is not None
        }

    async def set_many(
        self, items: Mapping[str, T] | Iterable[tuple[str, T]], *, ttl: Seconds | None = None
    ) -> None:
        """Store every ``key: value`` of ``items`` (unconditionally, same ``ttl`` for all).

        ``items`` is a mapping or an iterable of ``(key, value)`` pairs (a later pair for the
        same key wins, as in ``dict()``). Every value is encoded before anything is written,
        so a value that cannot be encoded writes nothing.
        """
        self._check_open()
        expires_at = expiry(self._clock, ttl)
        encoded = [(full, self._dumps(full, v)) for full, v in _pairs(self._full, items)]
        if not encoded:
            return
        if self._caps & Capability.SET_MANY:
            await cast(Any, self._driver).set_many(encoded, expires_at=expires_at)
            return
        await self._bounded(self._driver.set(k, v, expires_at=expires_at) for k, v in encoded)

    async def delete_many(self, keys: Iterable[str]) -> int:
        """Delete ``keys``; return how many existed."""
        self._check_open()
        _not_one_key(keys)
        fulls = list(dict.fromkeys(self._full(k) for k in keys))
        if not fulls:
            return 0
        return await self._delete_full(fulls)


def _not_one_key(keys: object) -> None:
    # A str is an iterable of one-character keys: almost certainly a mistake, and for
    # delete_many a destructive one.
    if isinstance(keys, (str, bytes)):
        raise TypeError(f"expected an iterable of keys, got a single {type(keys).__name__}")


def _pairs(full: Callable[[str], str], items: object) -> Iterable[tuple[str, Any]]:
    """``(full key, value)`` of a mapping or of ``(key, value)`` pairs, last one winning."""
    if isinstance(items, Mapping):
        return [(full(k), v) for k, v in items.items()]  # keys already unique
    if not isinstance(items, Iterable) or isinstance(items, (str, bytes)):
        raise TypeError(
            f"set_many expects a mapping or (key, value) pairs, not {type(items).__name__}"
        )
    merged: dict[str, Any] = {}
    for pair in items:
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise TypeError(f"set_many expects (key, value) pairs, got {pair!r:.80}")
        merged[full(pair[0])] = pair[1]
    return merged.items()
