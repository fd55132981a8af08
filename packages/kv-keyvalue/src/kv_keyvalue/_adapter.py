"""KeyValueAdapter: a kv Store behind py-key-value's ``AsyncKeyValue`` protocol."""

from __future__ import annotations

import asyncio
import copy
import inspect
from collections.abc import AsyncGenerator, Mapping, Sequence
from contextlib import aclosing
from types import TracebackType
from typing import Any, NamedTuple, SupportsFloat, cast

from kv_core import (
    InvalidKeyError,
    KeyNotFoundError,
    KVError,
    PreconditionFailedError,
    Store,
    open_store,
)

from ._codec import DICT_JSON
from ._collections import HASHED, segment, unsegment
from ._errors import invalid_ttl, translate

__all__ = ["DEFAULT_COLLECTION", "DEFAULT_PAGE_SIZE", "KeyValueAdapter"]

#: The collection used when none (or "") is given, as in py-key-value.
DEFAULT_COLLECTION = "default_collection"
#: How many names ``keys()`` and ``collections()`` return without a ``limit`` (py-key-value's
#: stores use the same default page).
DEFAULT_PAGE_SIZE = 10_000
# kv's longest TTL (about 317 years): the Store refuses more, so the adapter does too,
# with the same error as for any other invalid TTL.
_MAX_TTL = 10_000_000_000
# How many single reads ttl_many runs at once.
_TTL_MANY_CONCURRENCY = 32
# Collection views kept; FastMCP uses a handful of collections, this bounds the rest.
_MAX_VIEWS = 256

Value = dict[str, Any]


class _Collection(NamedTuple):
    view: Store[Value]  # the store namespaced to the collection's segment
    marker: str | None  # the marker key of a hashed segment (None when not hashed)
    name: str


def _ttl(ttl: object) -> float:
    """Validate a non-None ``ttl`` (seconds, SupportsFloat) and return it as a float."""
    if isinstance(ttl, (bool, str, bytes)):
        raise invalid_ttl(ttl)
    try:
        seconds = float(cast(SupportsFloat, ttl))
    except (TypeError, ValueError, OverflowError):
        raise invalid_ttl(ttl) from None
    if not (0 < seconds <= _MAX_TTL):  # NaN fails every comparison; inf is above the max
        raise invalid_ttl(ttl)
    return seconds


def _limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_PAGE_SIZE
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a positive int or None, got {limit!r}")
    return limit


class KeyValueAdapter:
    """Any kv :class:`~kv_core.Store` as a py-key-value ``AsyncKeyValue``.

    Implements the protocol (``get``, ``put``, ``delete``, ``ttl`` and their ``_many``
    forms) and its optional segments (``keys``, ``collections``, ``destroy``,
    ``destroy_collection``, ``cull``) structurally: py-key-value is not needed at run time.
    Adds :meth:`put_if_absent`, atomic on every backend.

    Args:
        store: The store to keep the data in. Everything the adapter writes stays under
            the store's namespace (``store.namespace("mcp")`` keeps it apart from other
            data); :meth:`destroy` clears that namespace and nothing else. The store's
            codec is not used: values are dicts stored as plain JSON.
        default_collection: The collection used when ``collection`` is None or "".

    Closing: an adapter made by :meth:`from_url` owns its store and closes it in
    :meth:`aclose` (and ``async with``); an adapter over a store you pass in leaves the
    store open, as py-key-value's stores leave a client you passed in.
    """

    def __init__(self, store: Store[Any], *, default_collection: str = DEFAULT_COLLECTION):
        if not isinstance(store, Store):
            raise TypeError(f"store must be a kv_core.Store, not {type(store).__name__}")
        if not isinstance(default_collection, str) or not default_collection:
            raise ValueError("default_collection must be a non-empty str")
        self._store = store
        self._root: Store[Value] = store.with_codec(DICT_JSON)
        self._clock = store.driver.clock
        self.default_collection = default_collection
        self._owns_store = False
        self._views: dict[str, _Collection] = {}

    @classmethod
    def from_url(
        cls, url: str, *, default_collection: str = DEFAULT_COLLECTION, **options: Any
    ) -> KeyValueAdapter:
        """Open the store for ``url`` (``kv_core.open_store``; ``options`` go to the driver).

        The adapter owns that store: :meth:`aclose` closes it.
        """
        adapter = cls(open_store(url, **options), default_collection=default_collection)
        adapter._owns_store = True
        return adapter

    @property
    def store(self) -> Store[Any]:
        """The store the adapter writes to (as it was passed in)."""
        return self._store

    def __repr__(self) -> str:
        return f"KeyValueAdapter({self._store!r}, default_collection={self.default_collection!r})"

    # -- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> KeyValueAdapter:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the store if the adapter opened it (:meth:`from_url`); idempotent."""
        if self._owns_store:
            await self._store.aclose()

    async def close(self) -> None:
        """The same as :meth:`aclose` (py-key-value's stores call it ``close``)."""
        await self.aclose()

    # -- collections ---------------------------------------------------------------------

    def _collection(self, collection: str | None) -> _Collection:
        name = collection or self.default_collection
        found = self._views.get(name)
        if found is not None:
            return found
        if not isinstance(name, str):
            raise InvalidKeyError(
                f"a collection must be a str, not {type(name).__name__}", key=repr(name)
            )
        seg, hashed = segment(name)
        found = _Collection(self._root.namespace(seg), seg if hashed else None, name)
        if len(self._views) >= _MAX_VIEWS:
            self._views.clear()
        self._views[name] = found
        return found

    async def _mark(self, col: _Collection) -> None:
        # Written before the data, so data never exists without its marker. Rewritten on
        # every write (not remembered): another process may have destroyed the collection.
        if col.marker is not None:
            await self._root.set(col.marker, {"collection": col.name})

    # -- the protocol --------------------------------------------------------------------

    async def get(self, key: str, *, collection: str | None = None) -> dict[str, Any] | None:
        """The value of ``key`` (a new dict), or None if it is missing or expired."""
        try:
            return await self._collection(collection).view.get(key, None)
        except KVError as exc:
            translate(exc, reading=True)
            raise

    async def ttl(
        self, key: str, *, collection: str | None = None
    ) -> tuple[dict[str, Any] | None, float | None]:
        """``(value, seconds left)``: None seconds without expiry, ``(None, None)`` if missing."""
        try:
            return await self._ttl_one(self._collection(collection).view, key)
        except KVError as exc:
            translate(exc, reading=True)
            raise

    async def _ttl_one(
        self, view: Store[Value], key: str
    ) -> tuple[dict[str, Any] | None, float | None]:
        try:
            entry = await view.get_entry(key)
        except KeyNotFoundError:
            return None, None
        if entry.expires_at is None:
            return entry.value, None
        left = entry.expires_at - self._clock()
        if left <= 0:  # expired between the read and now: missing, never a TTL of 0.0
            return None, None
        return entry.value, left

    async def put(
        self,
        key: str,
        value: Mapping[str, Any],
        *,
        collection: str | None = None,
        ttl: SupportsFloat | None = None,
    ) -> None:
        """Store ``value`` (a dict, as plain JSON) under ``key``, expiring after ``ttl`` s."""
        seconds = None if ttl is None else _ttl(ttl)
        try:
            col = self._collection(collection)
            if col.marker is not None:
                await self._mark(col)
            await col.view.set(key, cast(Value, value), ttl=seconds)
        except KVError as exc:
            translate(exc, reading=False)
            raise

    async def put_if_absent(
        self,
        key: str,
        value: Mapping[str, Any],
        *,
        collection: str | None = None,
        ttl: SupportsFloat | None = None,
    ) -> bool:
        """Store ``value`` only if ``key`` is missing (or expired); True if it was stored.

        Atomic on every backend, across processes: of any number of concurrent calls for
        one key, exactly one returns True.
        """
        seconds = None if ttl is None else _ttl(ttl)
        try:
            col = self._collection(collection)
            if col.marker is not None:
                await self._mark(col)
            await col.view.set(key, cast(Value, value), ttl=seconds, if_absent=True)
        except PreconditionFailedError:
            return False
        except KVError as exc:
            translate(exc, reading=False)
            raise
        return True

    async def delete(self, key: str, *, collection: str | None = None) -> bool:
        """Delete ``key``; True if it existed."""
        try:
            return await self._collection(collection).view.delete(key)
        except KVError as exc:
            translate(exc, reading=False)
            raise

    async def get_many(
        self, keys: Sequence[str], *, collection: str | None = None
    ) -> list[dict[str, Any] | None]:
        """The values of ``keys``, aligned with them (None where missing; a new dict each)."""
        try:
            found = await self._collection(collection).view.get_many(keys)
        except KVError as exc:
            translate(exc, reading=True)
            raise
        if len(found) == len(keys):  # every key found once: every dict is already new
            return [found[k] for k in keys]
        out: list[dict[str, Any] | None] = []
        seen: set[str] = set()
        for key in keys:
            value = found.get(key)
            if value is not None:
                if key in seen:  # a repeated key gets its own dict too
                    value = copy.deepcopy(value)
                seen.add(key)
            out.append(value)
        return out

    async def ttl_many(
        self, keys: Sequence[str], *, collection: str | None = None
    ) -> list[tuple[dict[str, Any] | None, float | None]]:
        """``(value, seconds left)`` for each of ``keys``, aligned with them."""
        if isinstance(keys, (str, bytes)):
            raise TypeError("keys must be a sequence of keys, not a single str")
        try:
            view = self._collection(collection).view
            gate = asyncio.Semaphore(_TTL_MANY_CONCURRENCY)

            async def one(key: str) -> tuple[dict[str, Any] | None, float | None]:
                async with gate:
                    return await self._ttl_one(view, key)

            return list(await asyncio.gather(*(one(k) for k in keys)))
        except KVError as exc:
            translate(exc, reading=True)
            raise

    async def put_many(
        self,
        keys: Sequence[str],
        values: Sequence[Mapping[str, Any]],
        *,
        collection: str | None = None,
        ttl: SupportsFloat | None = None,
    ) -> None:
        """Store each value under the key at the same position (the same ``ttl`` for all).

        Raises:
            ValueError: ``keys`` and ``values`` differ in length (nothing is written).
        """
        if isinstance(keys, (str, bytes)):
            raise TypeError("keys must be a sequence of keys, not a single str")
        if len(keys) != len(values):
            raise ValueError(
                f"put_many got {len(keys)} keys and {len(values)} values; they must match"
            )
        seconds = None if ttl is None else _ttl(ttl)
        try:
            col = self._collection(collection)
            if not keys:
                return
            if col.marker is not None:
                await self._mark(col)
            pairs = zip(keys, cast("Sequence[Value]", values), strict=True)
            await col.view.set_many(pairs, ttl=seconds)
        except KVError as exc:
            translate(exc, reading=False)
            raise

    async def delete_many(self, keys: Sequence[str], *, collection: str | None = None) -> int:
        """Delete ``keys``; return how many existed."""
        try:
            return await self._collection(collection).view.delete_many(keys)
        except KVError as exc:
            translate(exc, reading=False)
            raise

    # -- optional segments ---------------------------------------------------------------

    async def keys(self, collection: str | None = None, *, limit: int | None = None) -> list[str]:
        """Up to ``limit`` keys of the collection (10,000 without a limit), in no set order."""
        n = _limit(limit)
        out: list[str] = []
        try:
            view = self._collection(collection).view
            listing = cast("AsyncGenerator[str, None]", view.keys())
            async with aclosing(listing) as names:
                async for key in names:
                    out.append(key)
                    if len(out) >= n:
                        break
        except KVError as exc:
            translate(exc, reading=True)
            raise
        return out

    async def collections(self, *, limit: int | None = None) -> list[str]:
        """Up to ``limit`` names of collections that hold keys (10,000 without a limit).

        Lists every key of the adapter's store (kv keeps no separate index of collections),
        so its cost grows with the number of keys. Names come back exactly as written.
        """
        n = _limit(limit)
        names: list[str] = []
        seen: set[str] = set()
        try:
            listing = cast("AsyncGenerator[str, None]", self._root.keys())
            async with aclosing(listing) as fulls:
                async for full in fulls:
                    seg, slash, _ = full.partition("/")
                    if seg in seen or not (slash or seg.startswith(HASHED)):
                        continue  # known, or a bare key the adapter did not write
                    seen.add(seg)
                    if seg.startswith(HASHED):
                        marker = await self._root.get(seg, None)
                        name = None if marker is None else marker.get("collection")
                        if not isinstance(name, str):
                            continue  # a hashed segment whose marker is gone
                    else:
                        name = unsegment(seg)
                    names.append(name)
                    if len(names) >= n:
                        break
        except KVError as exc:
            translate(exc, reading=True)
            raise
        return names

    async def destroy_collection(self, collection: str) -> bool:
        """Delete every key of ``collection``; True if there was anything to delete."""
        try:
            col = self._collection(collection)
            deleted = await col.view.clear()
            if col.marker is not None:
                deleted += await self._root.delete(col.marker)
        except KVError as exc:
            translate(exc, reading=False)
            raise
        return deleted > 0

    async def destroy(self) -> bool:
        """Delete every key of the adapter's store: its namespace only, nothing outside it."""
        try:
            await self._root.clear()
        except KVError as exc:
            translate(exc, reading=False)
            raise
        return True

    async def cull(self) -> None:
        """Reclaim the storage of expired entries, where the backend keeps them.

        Expired entries are invisible either way. kv-local and kv-azure keep them until
        they are purged (``purge_expired``); Redis and memory drop them themselves, so
        this does nothing there. A driver wrapped by others (a cache) is reached through
        their ``inner``. Purging stays within the adapter's namespace: where a driver's
        purge cannot be limited to a prefix (kv-local's), it runs only when the adapter's
        store is not a namespace.
        """
        driver: Any = self._root.driver
        purge = getattr(driver, "purge_expired", None)
        while purge is None and getattr(driver, "inner", None) is not None:
            driver = driver.inner
            purge = getattr(driver, "purge_expired", None)
        if purge is None:
            return
        prefix = self._root.prefix
        try:
            if "prefix" in inspect.signature(purge).parameters:
                await purge(prefix)
            elif not prefix:
                await purge()
        except KVError as exc:
            translate(exc, reading=False)
            raise
