"""Building the container client from options, and describing it without secrets."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from azure.core.exceptions import AzureError, ServiceRequestError, ServiceResponseError
from azure.core.pipeline.transport import AioHttpTransport
from azure.storage.blob.aio import ContainerClient, LinearRetry

from ._errors import never_sent

__all__ = [
    "ENV_CONNECTION_STRING",
    "Connection",
    "NoResendTransport",
    "SafeRetry",
    "connect",
    "parse_url",
]

#: The variable the Azure CLI and SDK samples read, used when nothing else is given.
ENV_CONNECTION_STRING = "AZURE_STORAGE_CONNECTION_STRING"

# Query parameters of an ``azure://`` URL that become keyword options, with their types.
_URL_OPTIONS: dict[str, type] = {
    "create_container": bool,
    "max_concurrency": int,
    "batch_concurrency": int,
    "block_size": int,
    "retry_total": int,
    "account_url": str,
}


class SafeRetry(LinearRetry):
    """LinearRetry that counts a connection dropped mid-request as a read error.

    azure-core reports it as a connect error, which the storage policy retries as if
    nothing had been sent; a retried conditional write would then fail its own condition.
    Conditional writes disable read retries, so with this they are never sent twice.
    """

    def increment(
        self,
        settings: dict[str, Any],
        request: Any,
        response: Any = None,
        error: AzureError | None = None,
    ) -> bool:
        """Count the attempt; see the class docstring."""
        if isinstance(error, ServiceRequestError) and not never_sent(error):
            error = ServiceResponseError(error.message, error=error)
        return bool(super().increment(settings, request, response, error))


class NoResendTransport(AioHttpTransport):  # type: ignore[misc]  # lazily exported, so Any
    """aiohttp transport that never resends a request on its own.

    aiohttp resends a PUT or DELETE once when the connection drops mid-request (RFC 9112
    calls them idempotent), which would replay a conditional write; retries are left to
    :class:`SafeRetry`, which knows which requests are safe to repeat.
    """

    async def open(self) -> None:
        """Open the session and switch aiohttp's own resend off."""
        await super().open()
        if self.session is not None and hasattr(self.session, "_retry_connection"):
            self.session._retry_connection = False


@dataclass
class Connection:
    """A container client and what the driver needs to know about it."""

    client: ContainerClient
    owns_client: bool
    name: str
    secrets: tuple[str, ...]
    #: A credential the driver created (``credential="default"``) and must close.
    owned_credential: Any = None


def _conn_str_secrets(conn_str: str) -> tuple[str, ...]:
    found = [conn_str]
    for part in conn_str.split(";"):
        field, _, value = part.partition("=")
        if field.strip().lower() in ("accountkey", "sharedaccesssignature") and value:
            found.append(value)
    return tuple(found)


def _credential_secrets(credential: Any) -> tuple[str, ...]:
    if isinstance(credential, str):
        return (credential,)
    if isinstance(credential, dict):
        return tuple(str(v) for k, v in credential.items() if k != "account_name")
    found: list[str] = []
    named = getattr(credential, "named_key", None)  # AzureNamedKeyCredential
    if named is not None:
        found.append(named.key)
    for attr in ("signature", "account_key"):  # AzureSasCredential, StorageSharedKeyCredential
        value = getattr(credential, attr, None)
        if isinstance(value, str):
            found.append(value)
    return tuple(found)


def describe(client: ContainerClient) -> str:
    """``azure://<container> at <endpoint>`` with any query string (SAS) removed."""
    parts = urlsplit(client.primary_endpoint)
    base = urlunsplit((parts.scheme, parts.netloc, parts.path.rsplit("/", 1)[0], "", ""))
    return f"azure://{client.container_name} at {base}"


def _default_credential() -> Any:
    try:
        from azure.identity.aio import (  # type: ignore[import-untyped,unused-ignore]
            DefaultAzureCredential,
        )
    except ImportError:  # pragma: no cover - depends on the optional extra
        raise ImportError(
            'credential="default" needs azure-identity: pip install "kv-azure[identity]"'
        ) from None
    return DefaultAzureCredential()


def connect(
    container: str | None,
    *,
    connection_string: str | None,
    account_url: str | None,
    credential: Any,
    container_client: ContainerClient | None,
    retry_total: int,
    client_options: dict[str, Any],
) -> Connection:
    """Build (or adopt) the container client; see :class:`~kv_azure.AzureBlobDriver`."""
    if container_client is not None:
        if connection_string or account_url or credential is not None:
            raise ValueError("pass container_client alone, without connection settings")
        secrets = _credential_secrets(getattr(container_client, "credential", None))
        return Connection(container_client, False, describe(container_client), secrets)
    if not container:
        raise ValueError("a container name is required")
    if connection_string and account_url:
        raise ValueError("pass either connection_string or account_url, not both")
    client_options = dict(client_options)
    # What the SDK gives the transport it builds itself; the read block size matters: the
    # aiohttp default of 4 KiB makes large downloads ~10% slower.
    transport_options = {
        "connection_timeout": client_options.pop("connection_timeout", 20),
        "read_timeout": client_options.pop("read_timeout", 60),
        "connection_data_block_size": client_options.pop("connection_data_block_size", 256 << 10),
    }
    options: dict[str, Any] = {
        # The SDK default waits 15 s, 18 s, 24 s between attempts; fail within seconds.
        "retry_policy": SafeRetry(
            backoff=0.5,  # type: ignore[arg-type]  # floats work; the annotation says int
            random_jitter_range=0.25,  # type: ignore[arg-type]
            retry_total=retry_total,
        ),
        "transport": NoResendTransport(**transport_options),
        **client_options,
    }
    owned_credential = None
    if credential == "default":
        credential = owned_credential = _default_credential()
    secrets = _credential_secrets(credential)
    if account_url:
        # A SAS token may be in the URL's query string.
        secrets += tuple(v for _, v in parse_qsl(urlsplit(account_url).query) if v)
        client = ContainerClient(account_url, container, credential=credential, **options)
    else:
        connection_string = connection_string or os.environ.get(ENV_CONNECTION_STRING)
        if not connection_string:
            raise ValueError(
                "no Azure credentials: pass connection_string=, account_url= (with "
                f"credential=), container_client=, or set {ENV_CONNECTION_STRING}"
            )
        secrets += _conn_str_secrets(connection_string)
        try:
            client = ContainerClient.from_connection_string(
                connection_string, container, credential=credential, **options
            )
        except ValueError:
            raise ValueError("the Azure connection string is malformed") from None
    return Connection(client, True, describe(client), secrets, owned_credential)


def parse_url(url: str) -> tuple[str, dict[str, Any]]:
    """Split ``azure://<container>?option=value`` into the container and options."""
    parts = urlsplit(url)
    if parts.scheme != "azure" or not parts.netloc or parts.path not in ("", "/"):
        raise ValueError(f"expected azure://<container>, got {url.split('?', 1)[0]!r}")
    options: dict[str, Any] = {}
    for field, value in parse_qsl(parts.query):
        kind = _URL_OPTIONS.get(field)
        if kind is None:
            raise ValueError(f"unknown option {field!r} in an azure:// URL")
        if kind is bool:
            options[field] = value.lower() in ("1", "true", "yes", "on")
        else:
            options[field] = kind(value)
    return parts.netloc, options
