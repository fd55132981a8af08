"""Chunked transfers with bounded memory: staged blocks up, ranged requests down.

Memory is a small multiple of the block (or chunk) size per transfer, whatever the value's
size: at most ``max_concurrency`` blocks are in flight, plus the one being filled (upload)
or handed to the caller (download). Traced peaks with 1 MiB blocks and two in flight:
4.2 MiB up (the block being cut from the filling buffer is a copy) and 5.1 MiB down (the
SDK copies each downloaded range once).
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections import deque
from typing import TYPE_CHECKING, Any

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError
from kv_core import KeyNotFoundError, PreconditionFailedError

from ._errors import NO_BLIND_RETRY
from ._names import expiry_of

if TYPE_CHECKING:
    from collections.abc import AsyncIterable, AsyncIterator

    from azure.storage.blob.aio import BlobClient

    from ._driver import AzureBlobDriver

__all__ = ["read", "write"]


def _total_size(content_range: str | None, fallback: int) -> int:
    # "bytes 0-4194303/67108864": the blob's size follows the slash.
    if content_range and "/" in content_range:
        tail = content_range.rsplit("/", 1)[1]
        if tail.isdigit():
            return int(tail)
    return fallback


async def read(
    driver: AzureBlobDriver, key: str, name: str, chunk_size: int
) -> AsyncIterator[bytes]:
    """Yield the blob in ranges of ``chunk_size``, each read If-Match the first one's ETag."""
    blob = driver._client.get_blob_client(name)
    with driver._map(key):
        try:
            first = await blob.download_blob(offset=0, length=chunk_size)
        except HttpResponseError as exc:
            if exc.status_code != 416:
                raise
            first = await blob.download_blob()  # an empty blob has no byte 0 to range over
        data = await first.readall()
    props = first.properties
    if not driver._live(expiry_of(props.metadata)):
        raise KeyNotFoundError("the key does not exist", key=key, store=driver.name)
    total = _total_size(props.content_range, len(data))
    etag = props.etag

    async def fetch(offset: int) -> bytes:
        length = min(chunk_size, total - offset)
        with driver._map(key):
            part = await blob.download_blob(
                offset=offset,
                length=length,
                etag=etag,
                match_condition=MatchConditions.IfNotModified,
            )
            chunk: bytes = await part.readall()
        return chunk

    pending: deque[asyncio.Task[bytes]] = deque()
    offset = len(data)
    try:
        if data:
            yield data
        del data
        while offset < total or pending:
            while offset < total and len(pending) < driver.max_concurrency:
                pending.append(asyncio.ensure_future(fetch(offset)))
                offset += chunk_size
            try:
                chunk = await pending.popleft()
            except PreconditionFailedError:
                raise PreconditionFailedError(
                    "the value was replaced while being read", key=key, store=driver.name
                ) from None
            yield chunk
            del chunk
    finally:
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


async def write(
    driver: AzureBlobDriver,
    *,
    key: str,
    name: str,
    chunks: AsyncIterable[bytes],
    metadata: dict[str, str],
    expires_at: float | None,
) -> str:
    """Upload ``chunks``: one request if they fit in a block, else staged blocks + commit."""
    blob = driver._client.get_blob_client(name)
    block_size = driver.block_size
    buffer = bytearray()
    source = aiter(chunks)
    exhausted = False
    # Fill the first block: a small value is uploaded in one request.
    while len(buffer) < block_size:
        try:
            buffer += await anext(source)
        except StopAsyncIteration:
            exhausted = True
            break
    if exhausted and len(buffer) <= block_size:

        async def upload() -> dict[str, Any]:
            with driver._map(key, write=True):
                return await blob.upload_blob(
                    bytes(buffer), overwrite=True, metadata=metadata, **NO_BLIND_RETRY
                )

        result = await driver._creating(upload)
        etag: str = result["etag"]
        driver._remember(name, etag, expires_at)
        return etag
    return await _write_blocks(
        driver,
        blob,
        key=key,
        name=name,
        buffer=buffer,
        source=source,
        exhausted=exhausted,
        metadata=metadata,
        expires_at=expires_at,
    )


async def _write_blocks(
    driver: AzureBlobDriver,
    blob: BlobClient,
    *,
    key: str,
    name: str,
    buffer: bytearray,
    source: AsyncIterator[bytes],
    exhausted: bool,
    metadata: dict[str, str],
    expires_at: float | None,
) -> str:
    block_size = driver.block_size
    # Unique ids per upload: concurrent writers of one blob must not mix uncommitted blocks.
    upload_id = uuid.uuid4().hex
    block_ids: list[str] = []
    pending: set[asyncio.Task[object]] = set()

    async def stage(block: bytes) -> None:
        block_id = base64.b64encode(f"{upload_id}-{len(block_ids):08d}".encode()).decode()
        block_ids.append(block_id)
        while len(pending) >= driver.max_concurrency:
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            pending.difference_update(done)
            for task in done:
                task.result()  # re-raise a failed block now

        async def put_block() -> object:
            with driver._map(key, write=True):
                return await blob.stage_block(block_id, block)

        pending.add(asyncio.ensure_future(driver._creating(put_block)))

    try:
        with driver._map(key, write=True):
            while True:
                while len(buffer) >= block_size:
                    with memoryview(buffer) as view:
                        block = bytes(view[:block_size])  # one copy, not two
                    del buffer[:block_size]
                    await stage(block)
                    del block
                if exhausted:
                    break
                try:
                    buffer += await anext(source)
                except StopAsyncIteration:
                    exhausted = True
            if buffer:
                await stage(bytes(buffer))
                buffer.clear()
            if pending:
                await asyncio.gather(*pending)
                pending.clear()
            # The SDK accepts block ids as strings (its annotation says BlobBlock only).
            result = await blob.commit_block_list(
                block_ids,  # type: ignore[arg-type]
                metadata=metadata,
                **NO_BLIND_RETRY,
            )
    finally:
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
    etag = str(result["etag"])
    driver._remember(name, etag, expires_at)
    return etag
