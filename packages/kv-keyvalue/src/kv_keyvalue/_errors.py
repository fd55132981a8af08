"""Errors: kv's own, and also py-key-value's classes when py-key-value is installed.

Frameworks written against py-key-value catch its classes (FastMCP catches
``key_value.aio.errors`` types). When that package can be imported, every error the
adapter raises is re-classed to a subclass of *both* the kv error it is and the
py-key-value class that means the same, so ``except kv_core.SerializationError`` and
``except key_value.aio.errors.SerializationError`` both catch it. Without py-key-value the
errors are kv's, unchanged. py-key-value is imported on the first error only, never on
the fast path.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from typing import Any

from kv_core import (
    BackendError,
    BackendUnavailableError,
    InvalidKeyError,
    KeyNotFoundError,
    KVError,
    OutcomeUnknownError,
    PreconditionFailedError,
    SerializationError,
    StoreClosedError,
    UnsupportedOperationError,
    ValueTooLargeError,
)

__all__ = ["InvalidTTLError", "invalid_ttl", "translate"]


class InvalidTTLError(ValueError, TypeError):
    """A ``ttl`` that is not None or a positive finite number of seconds.

    A ValueError and a TypeError, as kv's own TTL checks raise one or the other; with
    py-key-value installed, also its ``InvalidTTLError``.
    """

    def __init__(self, message: str, ttl: object = None) -> None:
        super().__init__(message)
        self.message = message
        self.ttl = ttl


# kv class -> name of the py-key-value class (in key_value.aio.errors) that means the same.
# Looked up along the raised error's MRO, so a driver's own subclass maps like its base.
_WRITE_NAMES: dict[type[BaseException], str] = {
    SerializationError: "SerializationError",
    InvalidKeyError: "InvalidKeyError",
    KeyNotFoundError: "MissingKeyError",
    ValueTooLargeError: "ValueTooLargeError",
    PreconditionFailedError: "KeyValueOperationError",
    UnsupportedOperationError: "KeyValueOperationError",
    BackendUnavailableError: "StoreConnectionError",
    OutcomeUnknownError: "KeyValueStoreError",
    BackendError: "KeyValueStoreError",
    StoreClosedError: "KeyValueStoreError",
    InvalidTTLError: "InvalidTTLError",
    KVError: "BaseKeyValueError",
}
# On reads, stored data that cannot be decoded is py-key-value's DeserializationError.
_READ_NAMES = {**_WRITE_NAMES, SerializationError: "DeserializationError"}

_duals: dict[tuple[type[BaseException], str], type[BaseException]] = {}


@functools.cache
def _pkv_errors() -> Any:
    """``key_value.aio.errors``, or None when py-key-value is not installed."""
    try:
        from key_value.aio import errors
    except ImportError:
        return None
    return errors


def _dual(cls: type[BaseException], pkv_name: str) -> type[BaseException] | None:
    dual = _duals.get((cls, pkv_name))
    if dual is None:
        pkv = _pkv_errors()
        target = getattr(pkv, pkv_name, None) if pkv is not None else None
        if target is None or issubclass(cls, target):
            return None
        name = f"{cls.__name__}_{pkv_name}"
        # Registered as a module attribute under its own name so that pickle finds it.
        dual = type(name, (cls, target), {"__module__": __name__, "__qualname__": name})
        setattr(sys.modules[__name__], name, dual)
        _duals[(cls, pkv_name)] = dual
    return dual


def translate(exc: BaseException, *, reading: bool) -> BaseException:
    """Return ``exc`` made an instance of the matching py-key-value class too (if installed).

    The same object is returned (its class swapped for a subclass of its own class), so
    the message, the chained cause and every attribute stay as they were.
    """
    names = _READ_NAMES if reading else _WRITE_NAMES
    for base in type(exc).__mro__:
        pkv_name = names.get(base)
        if pkv_name is not None:
            dual = _dual(type(exc), pkv_name)
            if dual is not None:
                # An incompatible layout (TypeError) keeps kv's class.
                with contextlib.suppress(TypeError):
                    exc.__class__ = dual
            break
    return exc


def invalid_ttl(ttl: object) -> BaseException:
    """The error for a rejected ``ttl`` argument."""
    exc = InvalidTTLError(
        f"ttl must be None or a positive finite number of seconds, got {ttl!r}", ttl
    )
    return translate(exc, reading=False)
