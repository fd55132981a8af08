"""The Entry a Store returns from ``get_entry``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["Entry"]

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A value with its concurrency token and expiry.

    Attributes:
        key: The key as the caller wrote it (without the store's namespace).
        value: The decoded value.
        etag: Opaque token; pass it as ``if_match=`` to write only if nobody else has.
        expires_at: Absolute expiry in the store's clock (seconds since the epoch), or None.
    """

    key: str
    value: T
    etag: str
    expires_at: float | None = None
