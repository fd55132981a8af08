"""Translate redis-py failures into kv errors.

The multiplexer (:mod:`kv_redis._mux`) knows *where* a failure happened and reports it as
one of two transport errors:

- :class:`NotSentError`: the command never reached the server (cannot connect, the server
  said LOADING). Nothing happened, so callers may retry.
- :class:`LostError`: the command was written but its reply never came (timeout,
  connection reset). A write may or may not have happened.

:func:`to_kv_error` then picks the kv error from that and from whether the command
was a write, which only the driver knows.
"""

from __future__ import annotations

from kv_core import (
    BackendError,
    BackendUnavailableError,
    KVError,
    OutcomeUnknownError,
)
from redis.exceptions import AuthenticationError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["LostError", "NotSentError", "RefusedError", "TransportError", "to_kv_error"]


class TransportError(Exception):
    """Base of the multiplexer's transport failures; the redis-py error is ``cause``."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


class NotSentError(TransportError):
    """The command never reached the server."""


class RefusedError(NotSentError):
    """The server refused the connection's handshake (e.g. SELECT of a database it lacks):
    nothing ran, and resending will not help until the settings change."""


class LostError(TransportError):
    """The command was sent but no reply arrived."""


def to_kv_error(exc: BaseException, *, key: str | None, store: str, write: bool) -> KVError:
    """Return the kv error for ``exc`` (the caller raises it ``from`` the original).

    Args:
        exc: A :class:`TransportError`, a redis-py error or an ``OSError``.
        key: The full key involved, if any.
        store: The driver's redacted name.
        write: Whether the command could have changed data.
    """
    cause = exc.cause if isinstance(exc, TransportError) else exc
    # redis-py messages name host and port only, never the password.
    detail = f"{type(cause).__name__}: {cause}"
    if isinstance(cause, AuthenticationError):
        return BackendError(f"Redis refused the credentials ({detail})", key=key, store=store)
    if isinstance(exc, RefusedError):
        # The server refused the handshake (SELECT of a database it does not have, a
        # client name it rejects): a setting to fix, not an outage to wait out.
        return BackendError(
            f"Redis refused the connection settings from the URL or options, such as the "
            f"database number ({detail})",
            key=key,
            store=store,
        )
    if isinstance(exc, NotSentError):
        return BackendUnavailableError(f"cannot reach Redis ({detail})", key=key, store=store)
    if isinstance(exc, LostError):
        if write:
            return OutcomeUnknownError(
                f"no reply from Redis after sending a write; it may or may not have "
                f"happened ({detail})",
                key=key,
                store=store,
            )
        what = "timed out" if isinstance(cause, RedisTimeoutError) else "connection lost"
        return BackendUnavailableError(f"Redis read {what} ({detail})", key=key, store=store)
    if isinstance(cause, ResponseError):
        return BackendError(f"Redis answered an error ({detail})", key=key, store=store)
    if isinstance(cause, (RedisError, OSError)):
        return BackendError(f"Redis failed ({detail})", key=key, store=store)
    return BackendError(f"unexpected failure ({detail})", key=key, store=store)
