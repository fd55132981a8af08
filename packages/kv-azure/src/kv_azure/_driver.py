"""AzureBlobDriver: one blob per key, the blob's ETag as the etag, expiry in metadata."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError
from kv_core import (
    NOT_MODIFIED,
    Capability,
    KeyNotFoundError,
    NotModified,
    PreconditionFailedError,
    RawEntry,
)

from . import _bulk, _stream
from ._base import UNKNOWN, DriverBase
from ._connect import parse_url
from ._errors import NO_BLIND_RETRY
from ._names import blob_name, expiry_of

if TYPE_CHECKING:
    from collections.abc import AsyncIterable, AsyncIterator, Sequence


__all__ = ["AzureBlobDriver"]

_CONDITION_ATTEMPTS = 5


class AzureBlobDriver(DriverBase):
    """A kv driver storing each key as a block blob in one Azure Storage container.

    Give exactly one way to connect: ``connection_string``; ``account_url`` with an optional
    ``credential`` (SAS token, account key, ``AzureNamedKeyCredential``, a token credential
    from azure-identity, or ``"default"`` for ``DefaultAzureCredential`` with the
    ``identity`` extra); or a ``container_client`` you own (the driver then never closes
    it). With none of these, ``AZURE_STORAGE_CONNECTION_STRING`` is used.

    Args:
        container: Container name (not needed with ``container_client``).
        connection_string: An Azure Storage connection string (Azurite's works).
        account_url: The blob service URL, e.g. ``https://<account>.blob.core.windows.net``.
        credential: Credential for ``account_url`` (or overriding the connection string's).
        container_client: A ``azure.storage.blob.aio.ContainerClient`` owned by the caller.
        create_container: Create the container on the first write that finds it missing
            (reads of a missing container find no keys). False forbids it, for credentials
            scoped to one container: then a missing container raises BackendError naming it.
        max_concurrency: Parallel block transfers per large value (upload and download).
        block_size: Bytes per block of a streamed upload and per ranged download request.
        batch_concurrency: Parallel requests of ``get_many``/``set_many``/``delete_many``.
        use_blob_batch: Delete in Blob Batch requests; None detects support (Azurite lacks it).
        retry_total: Attempts after a connection failure or a retryable status, 0.5 s apart.
        clock: Time source of expiry, ``time.time`` by default.
        client_options: Extra keyword arguments for the SDK client (e.g. ``retry_policy``).
    """

    capabilities = (
        Capability.GET_MANY
        | Capability.SET_MANY
        | Capability.DELETE_MANY
        | Capability.CLEAR
        | Capability.STREAM
        | Capability.CONDITIONAL_GET
        | Capability.EXISTS
    )

    @classmethod
    def from_url(cls, url: str, **options: Any) -> AzureBlobDriver:
        """Open ``azure://<container>``; query options and ``options`` go to the constructor.

        Without ``connection_string``/``account_url``/``credential`` options the connection
        string comes from ``AZURE_STORAGE_CONNECTION_STRING``.
        """
        container, from_query = parse_url(url)
        return cls(container, **{**from_query, **options})

    # -- Driver protocol ----------------------------------------------------------------------

    async def get(self, key: str) -> RawEntry | None:
        """Return the live entry for ``key``, or None if it is missing or expired."""
        await self._start()
        name = blob_name(key)
        try:
            with self._map(key):
                downloader = await self._client.download_blob(
                    name, max_concurrency=self.max_concurrency
                )
                value = await downloader.readall()
        except KeyNotFoundError:
            return None
        props = downloader.properties
        expires_at = expiry_of(props.metadata)
        self._remember(name, props.etag, expires_at)
        if not self._live(expires_at):
            return None
        return RawEntry(value, props.etag, expires_at)

    async def exists(self, key: str) -> bool:
        """True if ``key`` is live (a metadata-only request)."""
        await self._start()
        props = await self._properties(key, blob_name(key))
        return props is not None and self._live(expiry_of(props.metadata))

    async def set(
        self,
        key: str,
        value: bytes,
        *,
        expires_at: float | None = None,
        if_match: str | None = None,
        if_absent: bool = False,
    ) -> str:
        """Store ``value`` (one conditional request) and return the blob's new ETag."""
        await self._start()
        name = blob_name(key)
        metadata = self._metadata(key, name, expires_at)
        if if_match is not None:
            await self._check_live_version(key, name, if_match)
            return await self._put(
                key, name, value, metadata=metadata, expires_at=expires_at, etag=if_match
            )
        if not if_absent:
            return await self._put(key, name, value, metadata=metadata, expires_at=expires_at)
        for _ in range(_CONDITION_ATTEMPTS):
            try:
                return await self._put(
                    key, name, value, metadata=metadata, expires_at=expires_at, absent=True
                )
            except PreconditionFailedError:
                # The blob exists; an expired one counts as absent, so replace exactly that
                # version (If-Match) to stay atomic against a concurrent writer.
                props = await self._properties(key, name)
                if props is not None and self._live(expiry_of(props.metadata)):
                    raise
                if props is not None:
                    return await self._put(
                        key, name, value, metadata=metadata, expires_at=expires_at, etag=props.etag
                    )
        raise PreconditionFailedError("the key kept changing", key=key, store=self.name)

    async def _put(
        self,
        key: str,
        name: str,
        value: bytes,
        *,
        metadata: dict[str, str],
        expires_at: float | None,
        etag: str | None = None,
        absent: bool = False,
    ) -> str:
        conditional = absent or etag is not None
        options: dict[str, Any] = dict(NO_BLIND_RETRY)
        if etag is not None:
            options.update(etag=etag, match_condition=MatchConditions.IfNotModified)
        blob = self._client.get_blob_client(name)

        async def upload() -> dict[str, Any]:
            with self._map(key, write=True, conditional=conditional):
                return await blob.upload_blob(
                    value,
                    overwrite=not absent,
                    metadata=metadata,
                    max_concurrency=self.max_concurrency,
                    **options,
                )

        result = await self._creating(upload)
        new_etag: str = result["etag"]
        self._remember(name, new_etag, expires_at)
        return new_etag

    async def delete(self, key: str, *, if_match: str | None = None) -> bool:
        """Remove ``key``; True if a live key was removed."""
        await self._start()
        name = blob_name(key)
        if if_match is not None:
            await self._check_live_version(key, name, if_match)
            await self._delete_version(key, name, if_match)
            return True
        for _ in range(_CONDITION_ATTEMPTS):
            # Look first: deleting an expired blob must report False.
            props = await self._properties(key, name)
            if props is None:
                return False
            try:
                await self._delete_version(key, name, props.etag)
            except PreconditionFailedError:
                continue  # rewritten or deleted since we looked: look again
            return self._live(expiry_of(props.metadata))
        raise PreconditionFailedError("the key kept changing", key=key, store=self.name)

    async def _delete_version(self, key: str, name: str, etag: str) -> None:
        with self._map(key, write=True, conditional=True):
            await self._client.delete_blob(
                name, etag=etag, match_condition=MatchConditions.IfNotModified, **NO_BLIND_RETRY
            )

    async def keys(self, prefix: str = "") -> AsyncIterator[str]:
        """Yield every live key starting with ``prefix`` (one listing, metadata included)."""
        await self._start()
        async for _name, _etag, key, _expires_at in _bulk.listing(self, prefix, live=True):
            yield key

    async def get_if_changed(self, key: str, etag: str) -> RawEntry | NotModified | None:
        """Return NOT_MODIFIED if ``etag`` is still current (no body sent), else as ``get``."""
        await self._start()
        name = blob_name(key)
        try:
            with self._map(key):
                try:
                    downloader = await self._client.download_blob(
                        name,
                        etag=etag,
                        match_condition=MatchConditions.IfModified,
                        max_concurrency=self.max_concurrency,
                    )
                except ResourceModifiedError as exc:
                    if exc.status_code != 304:
                        raise
                    downloader = None
                value = await downloader.readall() if downloader is not None else b""
        except KeyNotFoundError:
            return None
        if downloader is None:
            # 304 carries no metadata: the expiry of that version decides.
            expires_at = self._known.get((name, etag), UNKNOWN)
            if expires_at is UNKNOWN:
                props = await self._properties(key, name)
                if props is None:
                    return None
                if props.etag != etag:
                    return await self.get(key)
                expires_at = expiry_of(props.metadata)
            return NOT_MODIFIED if self._live(expires_at) else None
        props = downloader.properties
        expires_at = expiry_of(props.metadata)
        self._remember(name, props.etag, expires_at)
        return RawEntry(value, props.etag, expires_at) if self._live(expires_at) else None

    # -- batches and streams (see _bulk and _stream) -------------------------------------------

    async def get_many(self, keys: Sequence[str]) -> list[RawEntry | None]:
        """Get each key with at most ``batch_concurrency`` requests in flight."""
        await self._start()
        return await _bulk.bounded(self.batch_concurrency, [self.get(k) for k in keys])

    async def set_many(
        self, items: Sequence[tuple[str, bytes]], *, expires_at: float | None = None
    ) -> list[str]:
        """Set each item unconditionally with at most ``batch_concurrency`` in flight."""
        await self._start()
        return await _bulk.bounded(
            self.batch_concurrency, [self.set(k, v, expires_at=expires_at) for k, v in items]
        )

    async def delete_many(self, keys: Sequence[str]) -> int:
        """Delete the keys (Blob Batch where supported); return how many were live."""
        await self._start()
        return await _bulk.delete_many(self, keys)

    async def clear(self, prefix: str) -> int:
        """Delete every key starting with ``prefix``; return how many were live."""
        await self._start()
        return await _bulk.clear(self, prefix)

    async def purge_expired(self, prefix: str = "") -> int:
        """Delete the blobs of expired keys under ``prefix``; return how many were deleted.

        Expired keys are invisible without this; it only reclaims their storage.
        """
        await self._start()
        return await _bulk.purge_expired(self, prefix)

    async def read_stream(self, key: str, *, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        """Yield the value in ranged requests of ``chunk_size`` (default ``block_size``).

        Raises:
            KeyNotFoundError: the key is missing or expired.
            PreconditionFailedError: the value was replaced while being read.
        """
        await self._start()
        async for chunk in _stream.read(self, key, blob_name(key), chunk_size or self.block_size):
            yield chunk

    async def write_stream(
        self, key: str, chunks: AsyncIterable[bytes], *, expires_at: float | None = None
    ) -> str:
        """Upload ``chunks`` as blocks of ``block_size``, at most ``max_concurrency`` at once."""
        await self._start()
        name = blob_name(key)
        return await _stream.write(
            self,
            key=key,
            name=name,
            chunks=chunks,
            metadata=self._metadata(key, name, expires_at),
            expires_at=expires_at,
        )
