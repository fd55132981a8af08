"""The one place where azure-core and aiohttp exceptions become kv errors.

``with ErrorMap(store, key):`` around every call into the SDK. The mapping:

- 404 BlobNotFound → KeyNotFoundError (callers turn it into None / False where missing is
  normal), or PreconditionFailedError for a conditional write or delete;
- 404 of the container → ContainerNotFoundError (a BackendError naming the container),
  except for a read when kv may create the container: a container not created yet holds
  no keys, so the read sees a missing key (KeyNotFoundError);
- 409 / 412 → PreconditionFailedError;
- 401 / 403 → BackendError whose message says authentication failed;
- no connection (refused, DNS, TLS, connect timeout) → BackendUnavailableError;
- connection lost once connected (the request may have been acted on), or a 5xx other
  than 503, during a write → OutcomeUnknownError; the same during a read →
  BackendUnavailableError;
- anything else → BackendError.

Messages carry the status, the service's error code and the exception type, passed
through :func:`redact`; never the SDK's full text, which can quote URLs with SAS tokens.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any

import aiohttp
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from kv_core import (
    BackendError,
    BackendUnavailableError,
    KeyNotFoundError,
    KVError,
    OutcomeUnknownError,
    PreconditionFailedError,
)

if TYPE_CHECKING:
    from types import TracebackType

__all__ = [
    "NO_BLIND_RETRY",
    "ContainerNotFoundError",
    "ErrorMap",
    "never_sent",
    "redact",
    "translate",
]


class ContainerNotFoundError(BackendError):
    """The container does not exist: the service refused the request, nothing was done.

    A write that meets it creates the container and runs again unless
    ``create_container=False``, in which case the caller gets it.
    """


#: Per-call options for writes: retry only failures to connect (nothing was sent). After a
#: dropped connection or a 5xx the first attempt may have landed; a retry would hide that
#: (and a conditional retry would fail its own condition), so the caller gets
#: OutcomeUnknownError instead.
NO_BLIND_RETRY: dict[str, Any] = {"retry_read": 0, "retry_status": 0}

_SECRET_PATTERN = re.compile(
    r"(?i)(AccountKey|SharedAccessSignature|sig|se|sp|sv|skoid|sktid|token)=([^&;\s\"']+)"
)


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Remove account keys, SAS signatures and the given ``secrets`` from ``text``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _SECRET_PATTERN.sub(r"\1=***", text)


# Failures to connect; aiohttp < 3.10 has no ConnectionTimeoutError.
_CONNECT_ERRORS: tuple[type[BaseException], ...] = (
    aiohttp.ClientConnectorError,
    *([aiohttp.ConnectionTimeoutError] if hasattr(aiohttp, "ConnectionTimeoutError") else []),
)


def never_sent(exc: BaseException) -> bool:
    """True if ``exc`` means the request never left: connecting failed.

    azure-core reports every aiohttp ``ClientError`` as ServiceRequestError ("not sent"),
    including a connection that dropped mid-request, after the service may have acted.
    Only a failure to connect proves nothing was sent.
    """
    if not isinstance(exc, ServiceRequestError):
        return False
    inner = getattr(exc, "inner_exception", None) or exc.__cause__
    if isinstance(inner, aiohttp.ClientError):
        return isinstance(inner, _CONNECT_ERRORS)
    return True  # raised by a pipeline policy before any I/O


def _code(exc: HttpResponseError) -> str:
    code = getattr(exc, "error_code", None)  # set by the storage SDK's error handler
    return str(getattr(code, "value", code) or "")


def translate(
    exc: BaseException,
    *,
    store: str,
    key: str | None,
    write: bool,
    conditional: bool,
    secrets: tuple[str, ...] = (),
    container: str | None = None,
    create_container: bool = False,
) -> KVError:
    """Return the kv error for an SDK or transport exception (see the module docstring)."""
    kind = type(exc).__name__
    if isinstance(exc, ClientAuthenticationError) and exc.status_code is None:
        return BackendError(
            f"authentication failed: could not get a token from the credential ({kind})",
            key=key,
            store=store,
        )
    if isinstance(exc, HttpResponseError) and exc.status_code is not None:
        status, code = exc.status_code, _code(exc)
        detail = f"HTTP {status} {code}".rstrip()
        if status == 404 and code == "ContainerNotFound":
            if create_container and not write:
                return KeyNotFoundError("the key does not exist", key=key, store=store)
            hint = (
                ""
                if create_container
                else "; create it, or drop create_container=False to let kv create it"
            )
            return ContainerNotFoundError(
                f"the container {container!r} does not exist ({detail}){hint}",
                key=key,
                store=store,
            )
        if status == 404:
            if conditional:
                return PreconditionFailedError("the key does not exist", key=key, store=store)
            return KeyNotFoundError("the key does not exist", key=key, store=store)
        if status in (409, 412):
            return PreconditionFailedError(
                f"the condition did not hold ({detail})", key=key, store=store
            )
        if status in (401, 403):
            return BackendError(
                f"authentication failed: the service rejected the account key, SAS token or "
                f"credential ({detail})",
                key=key,
                store=store,
            )
        if status >= 500 and status != 503 and write:
            return OutcomeUnknownError(
                f"the service failed during a write, which may or may not have happened ({detail})",
                key=key,
                store=store,
            )
        if status >= 500:
            return BackendUnavailableError(
                f"the service is unavailable ({detail})", key=key, store=store
            )
        return BackendError(f"the service refused the request ({detail})", key=key, store=store)
    reason = redact(str(exc).split("\n", 1)[0][:200], secrets)
    if never_sent(exc):
        return BackendUnavailableError(
            f"cannot reach Azure Blob Storage ({kind}: {reason})", key=key, store=store
        )
    if isinstance(
        exc,
        (
            ServiceRequestError,
            ServiceResponseError,
            aiohttp.ClientError,
            OSError,
            asyncio.TimeoutError,
        ),
    ):
        if write:
            return OutcomeUnknownError(
                f"the connection failed during a write, which may or may not have happened "
                f"({kind}: {reason})",
                key=key,
                store=store,
            )
        return BackendUnavailableError(
            f"the connection to Azure Blob Storage failed ({kind}: {reason})",
            key=key,
            store=store,
        )
    return BackendError(f"Azure Blob Storage failed ({kind}: {reason})", key=key, store=store)


_MAPPED = (AzureError, aiohttp.ClientError, OSError, asyncio.TimeoutError)


class ErrorMap:
    """Context manager translating SDK exceptions raised in its body into kv errors.

    Args:
        store: The driver's redacted name.
        key: The key involved, if any.
        write: The body may change data, so a lost connection means an unknown outcome.
        conditional: A missing blob fails the condition (PreconditionFailedError).
        secrets: Strings that must never appear in a message.
        container: The container's name, for the message when it does not exist.
        create_container: kv may create the container, so a read of a missing container
            finds a missing key.
    """

    __slots__ = ("conditional", "container", "create_container", "key", "secrets", "store", "write")

    def __init__(
        self,
        store: str,
        key: str | None = None,
        *,
        write: bool = False,
        conditional: bool = False,
        secrets: tuple[str, ...] = (),
        container: str | None = None,
        create_container: bool = False,
    ) -> None:
        self.store = store
        self.key = key
        self.write = write
        self.conditional = conditional
        self.secrets = secrets
        self.container = container
        self.create_container = create_container

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None or not isinstance(exc, _MAPPED) or isinstance(exc, KVError):
            return
        raise translate(
            exc,
            store=self.store,
            key=self.key,
            write=self.write,
            conditional=self.conditional,
            secrets=self.secrets,
            container=self.container,
            create_container=self.create_container,
        ) from exc
