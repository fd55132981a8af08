"""Router: keys spread over several drivers by prefix."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence
from typing import TypeVar

from .. import _driver_ops as _ops
from .._driver import Capability, Driver, NotModified, RawEntry
from ._base import close_all

__all__ = ["Router"]

U = TypeVar("U")

# Abilities the router offers whatever its routes declare: it groups a batch by route
# and calls each route's native batch where it has one (or the generic version).
_ALWAYS = Capability.GET_MANY | Capability.SET_MANY | Capability.DELETE_MANY | Capability.CLEAR
# Abilities it offers only when every route has them (a generic version would cost more
# than the Store's own fallback, or lose bounded memory for streams).
_IF_ALL = Capability.EXISTS | Capability.CONDITIONAL_GET | Capability.VALUES | Capability.STREAM


class Router:
    """Sends each key to a driver chosen by the longest matching prefix.

    ``Router(routes={"sessions/": redis, "blobs/": azure}, default=local)``: a key goes
    to the route whose prefix is the longest one it starts with, else to ``default``.
    Prefixes are matched on the full key (namespace included), as plain string prefixes
    (end them with ``/`` to route whole levels).

    ``keys(prefix)`` and ``clear(prefix)`` visit every route that can hold keys with that
    prefix and take from each only the keys that route owns, so each key is listed (and
    counted) exactly once, even when one driver serves several routes. Batches are split
    by route and the parts run concurrently. Every route must use the same wall clock
    (expiries are absolute); the router's ``clock`` is the default's.

    Closing the router closes every route's driver once.

    Args:
        routes: ``{prefix: driver}``; prefixes must be non-empty.
        default: The driver of keys no prefix matches.
    """

    def __init__(self, routes: Mapping[str, Driver], default: Driver) -> None:
        for prefix in routes:
            if not isinstance(prefix, str) or not prefix:
                raise ValueError(f"route prefixes must be non-empty strings, got {prefix!r}")
        # Longest first, so the first match is the longest one.
        ordered = sorted(routes.items(), key=lambda kv: len(kv[0]), reverse=True)
        self._prefixes: tuple[str, ...] = tuple(p for p, _ in ordered)
        #: The drivers by route index; the default is last (its prefix is "").
        self._drivers: tuple[Driver, ...] = (*(d for _, d in ordered), default)
        self.routes: dict[str, Driver] = dict(ordered)
        self.default = default
        self.clock = default.clock
        everything = Capability.NONE
        common = ~Capability.NONE
        for driver in self._drivers:
            everything |= driver.capabilities
            common &= driver.capabilities
        self.capabilities: Capability = (
            _ALWAYS | (common & _IF_ALL) | (everything & Capability.NATIVE_TTL)
        )
        parts = [f"{p!r}: {d.name}" for p, d in ordered] + [f"default: {default.name}"]
        self.name = "router(" + ", ".join(parts) + ")"

    def __repr__(self) -> str:
        return f"Router({self.routes!r}, default={self.default!r})"

    def _owner(self, key: str) -> int:
        for i, prefix in enumerate(self._prefixes):
            if key.startswith(prefix):
                return i
        return len(self._prefixes)

    def _driver(self, key: str) -> Driver:
        for i, prefix in enumerate(self._prefixes):
            if key.startswith(prefix):
                return self._drivers[i]
        return self.default

    def _covering(self, prefix: str) -> list[tuple[int, str]]:
        """The routes that can own keys starting with ``prefix``, with what to list on each."""
        out = []
        for i, driver_prefix in enumerate((*self._prefixes, "")):
            if driver_prefix.startswith(prefix):
                listing = driver_prefix
            elif prefix.startswith(driver_prefix):
                listing = prefix
            else:
                continue
            # If a longer route swallows the whole listing, this route owns none of it.
            if self._owner(listing) == i:
                out.append((i, listing))
        return out

    def _groups(self, keys: Sequence[str]) -> dict[int, list[int]]:
        groups: dict[int, list[int]] = {}
        for pos, key in enumerate(keys):
            groups.setdefault(self._owner(key), []).append(pos)
        return groups

    # -- single keys ---------------------------------------------------------------------

    async def get(self, key: str) -> RawEntry | None:
        """Read ``key`` from its route."""
        return await self._driver(key).get(key)

    async def set(
        self,
        key: str,
        value: bytes,
        *,
        expires_at: float | None = None,
        if_match: str | None = None,
        if_absent: bool = False,
    ) -> str:
        """Write ``key`` to its route."""
        return await self._driver(key).set(
            key, value, expires_at=expires_at, if_match=if_match, if_absent=if_absent
        )

    async def delete(self, key: str, *, if_match: str | None = None) -> bool:
        """Delete ``key`` from its route."""
        return await self._driver(key).delete(key, if_match=if_match)

    async def exists(self, key: str) -> bool:
        """True if ``key`` is live on its route."""
        return await _ops.exists(self._driver(key), key)

    async def get_value(self, key: str) -> bytes | None:
        """The value of ``key`` on its route."""
        return await _ops.get_value(self._driver(key), key)

    async def get_if_changed(self, key: str, etag: str) -> RawEntry | NotModified | None:
        """Revalidate ``key`` on its route."""
        return await _ops.get_if_changed(self._driver(key), key, etag)

    def read_stream(self, key: str, *, chunk_size: int = 256 * 1024) -> AsyncIterator[bytes]:
        """Stream ``key`` from its route."""
        return _ops.read_stream(self._driver(key), key, chunk_size)

    async def write_stream(
        self, key: str, chunks: AsyncIterable[bytes], *, expires_at: float | None = None
    ) -> str:
        """Stream a write to ``key``'s route."""
        return await _ops.write_stream(self._driver(key), key, chunks, expires_at)

    # -- batches, split by route ---------------------------------------------------------

    async def get_many(self, keys: Sequence[str]) -> list[RawEntry | None]:
        """Entries for ``keys`` in order (one batch per route, concurrently)."""
        out: list[RawEntry | None] = [None] * len(keys)
        groups = self._groups(keys)

        async def one(route: int, positions: list[int]) -> None:
            found = await _ops.get_many(self._drivers[route], [keys[p] for p in positions])
            for p, entry in zip(positions, found, strict=True):
                out[p] = entry

        await asyncio.gather(*(one(r, ps) for r, ps in groups.items()))
        return out

    async def get_values(self, keys: Sequence[str]) -> list[bytes | None]:
        """Values for ``keys`` in order (one batch per route, concurrently)."""
        out: list[bytes | None] = [None] * len(keys)
        groups = self._groups(keys)

        async def one(route: int, positions: list[int]) -> None:
            found = await _ops.get_values(self._drivers[route], [keys[p] for p in positions])
            for p, value in zip(positions, found, strict=True):
                out[p] = value

        await asyncio.gather(*(one(r, ps) for r, ps in groups.items()))
        return out

    async def set_many(
        self, items: Sequence[tuple[str, bytes]], *, expires_at: float | None = None
    ) -> Sequence[str]:
        """Write every item to its route; the etags in order."""
        out: list[str] = [""] * len(items)
        groups = self._groups([k for k, _ in items])

        async def one(route: int, positions: list[int]) -> None:
            part = [items[p] for p in positions]
            etags = await _ops.set_many(self._drivers[route], part, expires_at)
            for p, etag in zip(positions, etags, strict=True):
                out[p] = etag

        await asyncio.gather(*(one(r, ps) for r, ps in groups.items()))
        return out

    async def delete_many(self, keys: Sequence[str]) -> int:
        """Delete ``keys`` from their routes; how many were live."""
        groups = self._groups(keys)
        counts = await asyncio.gather(
            *(_ops.delete_many(self._drivers[r], [keys[p] for p in ps]) for r, ps in groups.items())
        )
        return sum(counts)

    # -- listing -------------------------------------------------------------------------

    async def keys(self, prefix: str = "") -> AsyncIterator[str]:
        """Every live key starting with ``prefix``, from every route that can hold one."""
        for route, listing in self._covering(prefix):
            async for key in self._owned(route, listing):
                yield key

    async def _owned(self, route: int, listing: str) -> AsyncIterator[str]:
        async for key in self._drivers[route].keys(listing):
            if self._owner(key) == route:
                yield key

    async def clear(self, prefix: str = "") -> int:
        """Delete every key starting with ``prefix`` on every route; how many."""
        count = 0
        for route, listing in self._covering(prefix):
            driver = self._drivers[route]
            # Another route's keys may share this driver under the listing prefix: delete
            # only what this route owns then. Otherwise the driver clears natively.
            nested = any(
                other.startswith(listing) for i, other in enumerate(self._prefixes) if i != route
            )
            if nested:
                count += await _ops.delete_listed(driver, self._owned(route, listing))
            else:
                count += await _ops.clear(driver, listing)
        return count

    async def aclose(self) -> None:
        """Close every route's driver once."""
        await close_all(self._drivers)
