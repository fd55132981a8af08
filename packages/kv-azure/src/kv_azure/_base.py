"""Connection, lifecycle and the helpers every AzureBlobDriver operation uses."""

from __future__ import annotations

import time
import warnings
from typing import TYPE_CHECKING, Any, TypeVar

from kv_core import KeyNotFoundError, PreconditionFailedError, StoreClosedError

from ._connect import connect
from ._errors import ContainerNotFoundError, ErrorMap
from ._names import EXPIRES_METADATA, expiry_of, key_metadata

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from azure.storage.blob import BlobProperties
    from azure.storage.blob.aio import ContainerClient

__all__ = ["UNKNOWN", "DriverBase"]

_KNOWN_ETAGS = 8192
#: Marks a (blob name, etag) this driver has not seen, in lookups of its expiry.
UNKNOWN: Any = object()
_Self = TypeVar("_Self", bound="DriverBase")
T = TypeVar("T")


class DriverBase:
    """State and plumbing of :class:`~kv_azure.AzureBlobDriver` (documented there)."""

    def __init__(
        self,
        container: str | None = None,
        *,
        connection_string: str | None = None,
        account_url: str | None = None,
        credential: Any = None,
        container_client: ContainerClient | None = None,
        create_container: bool = True,
        max_concurrency: int = 2,
        block_size: int = 4 << 20,
        batch_concurrency: int = 32,
        use_blob_batch: bool | None = None,
        retry_total: int = 3,
        clock: Callable[[], float] | None = None,
        client_options: dict[str, Any] | None = None,
    ) -> None:
        if max_concurrency < 1 or batch_concurrency < 1 or block_size < 1:
            raise ValueError("max_concurrency, batch_concurrency and block_size must be >= 1")
        conn = connect(
            container,
            connection_string=connection_string,
            account_url=account_url,
            credential=credential,
            container_client=container_client,
            retry_total=retry_total,
            client_options=dict(client_options or {}),
        )
        self._client = conn.client
        self._owns_client = conn.owns_client
        self._owned_credential = conn.owned_credential
        self._secrets = conn.secrets
        self.name: str = conn.name
        self.clock: Callable[[], float] = clock or time.time
        self.max_concurrency = max_concurrency
        self.block_size = block_size
        self.batch_concurrency = batch_concurrency
        self.use_blob_batch = use_blob_batch
        self._create_container = create_container
        self._used = False
        self._closed = False
        # (blob name, etag) -> expiry, for blobs this driver has seen: lets a conditional
        # write or a revalidation know whether that version has expired without a request.
        self._known: dict[tuple[str, str], float | None] = {}

    @property
    def container_client(self) -> ContainerClient:
        """The SDK's container client, for what kv does not cover."""
        return self._client

    def __repr__(self) -> str:
        return f"AzureBlobDriver({self.name})"

    # -- plumbing ---------------------------------------------------------------------------

    def _map(
        self, key: str | None = None, *, write: bool = False, conditional: bool = False
    ) -> ErrorMap:
        return ErrorMap(
            self.name,
            key,
            write=write,
            conditional=conditional,
            secrets=self._secrets,
            container=self._client.container_name,
            create_container=self._create_container,
        )

    async def _start(self) -> None:
        if self._closed:
            raise StoreClosedError("the driver is closed", store=self.name)
        self._used = True

    async def _creating(self, write: Callable[[], Awaitable[T]]) -> T:
        """Run ``write``; if the container is missing, create it and run ``write`` again.

        The container is created on the first write that needs it rather than up front,
        so a credential scoped to an existing container (which may not create one) works
        with the default ``create_container=True``, and no request is spent otherwise.
        Running the write again is safe: the service refused the first one.
        """
        try:
            return await write()
        except ContainerNotFoundError:
            if not self._create_container:
                raise
        try:
            with self._map():
                await self._client.create_container()
        except PreconditionFailedError:
            pass  # 409: a concurrent writer created it first
        return await write()

    def _remember(self, name: str, etag: str, expires_at: float | None) -> None:
        known = self._known
        if len(known) >= _KNOWN_ETAGS:
            del known[next(iter(known))]
        known[(name, etag)] = expires_at

    def _live(self, expires_at: float | None) -> bool:
        return expires_at is None or expires_at > self.clock()

    def _metadata(self, key: str, name: str, expires_at: float | None) -> dict[str, str]:
        metadata = key_metadata(key, name)
        if expires_at is not None:
            metadata[EXPIRES_METADATA] = repr(float(expires_at))
        return metadata

    async def _properties(self, key: str, name: str) -> BlobProperties | None:
        try:
            with self._map(key):
                props: BlobProperties = await self._client.get_blob_client(
                    name
                ).get_blob_properties()
        except KeyNotFoundError:
            return None
        self._remember(name, props.etag, expiry_of(props.metadata))
        return props

    async def _check_live_version(self, key: str, name: str, etag: str) -> None:
        """Raise PreconditionFailedError unless version ``etag`` of ``name`` is live."""
        expires_at = self._known.get((name, etag), UNKNOWN)
        if expires_at is UNKNOWN:  # a version this driver has not seen: ask the service
            props = await self._properties(key, name)
            if props is None or props.etag != etag:
                raise PreconditionFailedError("the etag is stale", key=key, store=self.name)
            expires_at = expiry_of(props.metadata)
        if not self._live(expires_at):
            raise PreconditionFailedError("the key has expired", key=key, store=self.name)

    # -- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self: _Self) -> _Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the client if the driver created it. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._owns_client:
            await self._client.close()
        if self._owned_credential is not None:
            await self._owned_credential.close()

    def __del__(self) -> None:
        if getattr(self, "_used", False) and not self._closed and self._owns_client:
            warnings.warn(
                f"unclosed {self!r}: call aclose() or use `async with` on the store",
                ResourceWarning,
                stacklevel=2,
            )
