"""Listing and batch operations of :class:`~kv_azure.AzureBlobDriver`.

Deletes go out as Blob Batch requests (up to 256 deletes each) when the service supports
them. Azurite answers every sub-request of a batch with 400 when called from the Python
SDK; the first such answer switches the driver to concurrent single deletes.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, TypeVar

from azure.core import MatchConditions
from kv_core import KeyNotFoundError, PreconditionFailedError

from ._errors import NO_BLIND_RETRY
from ._names import blob_name, expiry_of, key_from_blob, list_prefix

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Coroutine, Sequence

    from ._driver import AzureBlobDriver

__all__ = ["bounded", "clear", "delete_many", "listing", "purge_expired"]

T = TypeVar("T")

_BATCH_LIMIT = 256  # deletes per Blob Batch request (service limit)
_DELETED, _MISSING, _CHANGED = 202, 404, 412


async def bounded(limit: int, coros: Sequence[Coroutine[Any, Any, T]]) -> list[T]:
    """Await ``coros`` with at most ``limit`` running; on a failure, cancel the rest."""
    semaphore = asyncio.Semaphore(limit)

    async def run(coro: Coroutine[Any, Any, T]) -> T:
        async with semaphore:
            return await coro

    tasks = [asyncio.ensure_future(run(c)) for c in coros]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def listing(
    driver: AzureBlobDriver, prefix: str, *, live: bool | None
) -> AsyncIterator[tuple[str, str, str, float | None]]:
    """Yield (blob name, etag, key, expiry) of kv blobs under ``prefix``.

    ``live`` selects live (True) or expired (False) entries, or both (None). One paginated
    listing with metadata: no request per blob.
    """
    start = list_prefix(prefix)
    try:
        with driver._map():
            async for blob in driver._client.list_blobs(
                name_starts_with=start or None, include=["metadata"]
            ):
                key = key_from_blob(blob.name, blob.metadata)
                # Only a prefix cut for length can match names of other keys.
                if key is None or not key.startswith(prefix):
                    continue
                expires_at = expiry_of(blob.metadata)
                if live is None or driver._live(expires_at) == live:
                    yield blob.name, blob.etag, key, expires_at
    except KeyNotFoundError:
        return  # a container kv may create but has not yet: no keys


async def _delete_single(driver: AzureBlobDriver, key: str, name: str, etag: str | None) -> int:
    condition: dict[str, Any] = {}
    if etag is not None:
        condition = {"etag": etag, "match_condition": MatchConditions.IfNotModified}
    try:
        with driver._map(key, write=True):
            await driver._client.delete_blob(name, **condition, **NO_BLIND_RETRY)
    except KeyNotFoundError:
        return _MISSING
    except PreconditionFailedError:
        return _CHANGED
    return _DELETED


async def _delete_batch(
    driver: AzureBlobDriver, entries: Sequence[tuple[str, str, str | None]]
) -> list[int] | None:
    """Statuses of one Blob Batch of deletes, or None if the service refused batching."""
    specs: list[Any] = [
        {"name": name, "etag": etag, "match_condition": MatchConditions.IfNotModified}
        if etag is not None
        else name
        for _key, name, etag in entries
    ]
    with driver._map(None, write=True):
        responses = await driver._client.delete_blobs(
            *specs, raise_on_any_failure=False, **NO_BLIND_RETRY
        )
        statuses = [response.status_code async for response in responses]
    if len(statuses) != len(entries) or all(s == 400 for s in statuses):
        driver.use_blob_batch = False
        return None
    driver.use_blob_batch = True
    return statuses


async def _delete_entries(
    driver: AzureBlobDriver, entries: Sequence[tuple[str, str, str | None]]
) -> list[int]:
    """Delete (key, blob name, etag or None) entries; return a status per entry."""
    statuses: list[int] | None = None
    if entries and driver.use_blob_batch is not False and len(entries) > 1:
        parts = [entries[i : i + _BATCH_LIMIT] for i in range(0, len(entries), _BATCH_LIMIT)]
        first = await _delete_batch(driver, parts[0])
        if first is not None:
            rest = await bounded(
                driver.batch_concurrency, [_delete_batch(driver, p) for p in parts[1:]]
            )
            statuses = [s for part in [first, *rest] for s in (part or [])]
            if len(statuses) != len(entries):
                statuses = None
    if statuses is None:
        statuses = await bounded(
            driver.batch_concurrency, [_delete_single(driver, *entry) for entry in entries]
        )
    # Anything unusual (a throttled sub-request) is retried alone, which raises if it persists.
    retry = [i for i, s in enumerate(statuses) if s not in (_DELETED, _MISSING, _CHANGED)]
    for i, status in zip(
        retry,
        await asyncio.gather(*(_delete_single(driver, *entries[i]) for i in retry)),
        strict=False,
    ):
        statuses[i] = status
    return statuses


async def delete_many(driver: AzureBlobDriver, keys: Sequence[str]) -> int:
    """Delete ``keys``; return how many were live. Each blob is looked at first (expiry)."""
    names = {key: blob_name(key) for key in keys}  # duplicates count once
    found = await bounded(
        driver.batch_concurrency, [driver._properties(k, n) for k, n in names.items()]
    )
    entries: list[tuple[str, str, str | None]] = []
    live: list[bool] = []
    for (key, name), props in zip(names.items(), found, strict=False):
        if props is not None:
            entries.append((key, name, props.etag))
            live.append(driver._live(expiry_of(props.metadata)))
    statuses = await _delete_entries(driver, entries)
    count = sum(
        1
        for status, was_live in zip(statuses, live, strict=False)
        if was_live and status == _DELETED
    )
    # A live blob rewritten between the look and the delete: delete that key again alone.
    again = [
        e[0]
        for e, s, was_live in zip(entries, statuses, live, strict=False)
        if s == _CHANGED and was_live
    ]
    results = await bounded(driver.batch_concurrency, [driver.delete(k) for k in again])
    return count + sum(results)


async def _drain(
    driver: AzureBlobDriver,
    listed: AsyncIterator[tuple[str, str, str, float | None]],
    *,
    conditional: bool,
    count_live: bool,
) -> int:
    count = 0
    page: list[tuple[str, str, str | None]] = []
    live: list[bool] = []

    async def flush() -> int:
        statuses = await _delete_entries(driver, page)
        done = sum(
            1
            for s, was_live in zip(statuses, live, strict=False)
            if s == _DELETED and (was_live or not count_live)
        )
        page.clear()
        live.clear()
        return done

    async for name, etag, key, expires_at in listed:
        page.append((key, name, etag if conditional else None))
        live.append(driver._live(expires_at))
        if len(page) >= _BATCH_LIMIT * 4:
            count += await flush()
    if page:
        count += await flush()
    return count


async def clear(driver: AzureBlobDriver, prefix: str) -> int:
    """Delete every kv blob under ``prefix``, expired ones too; return how many were live."""
    return await _drain(
        driver, listing(driver, prefix, live=None), conditional=False, count_live=True
    )


async def purge_expired(driver: AzureBlobDriver, prefix: str) -> int:
    """Delete expired blobs under ``prefix`` (only the expired version: If-Match)."""
    return await _drain(
        driver, listing(driver, prefix, live=False), conditional=True, count_live=False
    )
