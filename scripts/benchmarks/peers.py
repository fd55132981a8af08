"""Adapters from the peer libraries' APIs to :class:`~benchmarks.suite.Contender`.

The peers are dev-only dependencies of the benchmark (the root ``bench`` dependency group):
py-key-value-aio (``key_value.aio``), aiocache and asyncblobdict. Each is called the way
its documentation shows; where a peer has no batch call, the batch is what a user would
write instead (``asyncio.gather`` of single calls) and the row says so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from benchmarks.suite import Contender

__all__ = ["aiocache_contender", "blobdict_contender", "gather_many", "pykv_contender"]

GATHER_NOTE = "no batch call: asyncio.gather of single calls"


def gather_many(contender: Contender) -> Contender:
    """Fill a contender's missing batch calls with ``asyncio.gather`` of its single calls."""
    put, get = contender.set, contender.get
    if contender.set_many is None and put is not None:

        async def put_many(mapping: dict[str, Any]) -> None:
            await asyncio.gather(*(put(k, v) for k, v in mapping.items()))

        contender.set_many = put_many
    if contender.get_many is None and get is not None:

        async def get_many(keys: list[str]) -> Mapping[str, Any]:
            values = await asyncio.gather(*(get(k) for k in keys))
            return {k: v for k, v in zip(keys, values, strict=True) if v is not None}

        contender.get_many = get_many
    return contender


def pykv_contender(name: str, store: Any, *, note: str = "") -> Contender:
    """A py-key-value-aio store (``put/get/put_many/get_many``; values are dicts only)."""

    async def put_many(mapping: dict[str, Any]) -> None:
        await store.put_many(list(mapping), list(mapping.values()))

    async def get_many(keys: list[str]) -> Mapping[str, Any]:
        values = await store.get_many(keys)
        return {k: v for k, v in zip(keys, values, strict=True) if v is not None}

    return Contender(
        name,
        store.put,
        store.get,
        put_many,
        get_many,
        note=note,
        missing={"set_big": "stores dicts only", "get_big": "stores dicts only"},
    )


def aiocache_contender(name: str, cache: Any, *, note: str = "") -> Contender:
    """An aiocache cache (``set/get/multi_set/multi_get``)."""

    async def put_many(mapping: dict[str, Any]) -> None:
        await cache.multi_set(list(mapping.items()))

    async def get_many(keys: list[str]) -> Mapping[str, Any]:
        values = await cache.multi_get(keys)
        return {k: v for k, v in zip(keys, values, strict=True) if v is not None}

    return Contender(name, cache.set, cache.get, put_many, get_many, note=note)


def blobdict_contender(name: str, store: Any, *, note: str = "") -> Contender:
    """An asyncblobdict ``AsyncBlobStore``: ``.json`` view for dicts, ``.binary`` for bytes."""
    contender = Contender(
        name,
        store.json.set,
        store.json.get,
        set_bytes=store.binary.set,
        get_bytes=store.binary.get,
        note=f"{note}; {GATHER_NOTE} (batches)" if note else f"{GATHER_NOTE} (batches)",
    )
    return gather_many(contender)
