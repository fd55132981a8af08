"""The error tree every kv package raises.

```
KVError
├── KeyNotFoundError          (also KeyError)
├── InvalidKeyError           (also ValueError)
├── SerializationError
├── PreconditionFailedError   stale etag, or the key exists for if_absent
├── ValueTooLargeError
├── StoreClosedError
├── UnsupportedOperationError
└── BackendError              the backend failed; the original is chained as __cause__
    ├── BackendUnavailableError   cannot reach it (safe to retry)
    └── OutcomeUnknownError       a write may or may not have happened
```

Drivers translate their client's exceptions into these with ``raise ... from exc``.
Messages name the key and the store but never a secret: the ``store`` given to an
error is a driver's redacted ``name``, never a raw connection string.
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "BackendUnavailableError",
    "InvalidKeyError",
    "KVError",
    "KeyNotFoundError",
    "OutcomeUnknownError",
    "PreconditionFailedError",
    "SerializationError",
    "StoreClosedError",
    "UnsupportedOperationError",
    "ValueTooLargeError",
]


class KVError(Exception):
    """Base class of every error raised by kv.

    Args:
        message: What went wrong, in plain words.
        key: The key involved, if any (the full key as the driver stores it).
        store: A redacted description of the store (a driver's ``name``).
    """

    def __init__(self, message: str = "", *, key: str | None = None, store: str | None = None):
        super().__init__(message)
        self.message = message
        self.key = key
        self.store = store

    def __str__(self) -> str:
        parts = [self.message or type(self).__name__]
        if self.key is not None:
            parts.append(f"key={self.key!r}")
        if self.store is not None:
            parts.append(f"store={self.store}")
        return parts[0] if len(parts) == 1 else f"{parts[0]} ({', '.join(parts[1:])})"

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only fields need help to survive pickling (multiprocessing tests); the
        # instance dict goes along as state so attributes set later (notes, a driver's
        # extra fields) survive too.
        return (_rebuild, (type(self), self.message, self.key, self.store), self.__dict__)


def _rebuild(cls: type[KVError], message: str, key: str | None, store: str | None) -> KVError:
    return cls(message, key=key, store=store)


class KeyNotFoundError(KVError, KeyError):
    """The key does not exist (or has expired)."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return KVError.__str__(self)


class InvalidKeyError(KVError, ValueError):
    """The key breaks the key rules: empty, too long, not a str, or a lone surrogate."""


class SerializationError(KVError):
    """A value could not be encoded, or stored bytes could not be decoded."""


class PreconditionFailedError(KVError):
    """A conditional write failed: the etag was stale, or ``if_absent`` found the key."""


class ValueTooLargeError(KVError):
    """The value is larger than the backend accepts."""


class StoreClosedError(KVError):
    """The store (or driver) was used after ``aclose()``."""


class UnsupportedOperationError(KVError):
    """The driver cannot perform this operation."""


class BackendError(KVError):
    """The backend failed. The client's original exception is chained as ``__cause__``."""


class BackendUnavailableError(BackendError):
    """The backend cannot be reached. Nothing was done, so retrying is safe."""


class OutcomeUnknownError(BackendError):
    """A write was sent but no answer came back: it may or may not have happened."""
