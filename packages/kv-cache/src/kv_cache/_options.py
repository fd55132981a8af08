"""Cache modes and conflict policies."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from typing import Literal, Union

from kv_core import RawEntry

__all__ = ["CacheMode", "ConflictPolicy", "MergeFunction"]


class CacheMode(enum.Enum):
    """How a :class:`~kv_cache.CachedDriver` treats reads and writes."""

    #: No caching: every call goes straight to the inner driver (handy to switch the
    #: cache off by configuration without changing code).
    NONE = "none"
    #: Reads are cached; a write goes to the backend first and enters the cache only
    #: once the backend accepted it.
    WRITE_THROUGH = "write_through"
    #: Reads are cached; writes stay in the cache (dirty) until ``flush()``, ``aclose()``,
    #: eviction or the flush timer, and are then written conditionally on the etag the
    #: cache last saw.
    WRITE_BACK = "write_back"

    @classmethod
    def parse(cls, value: CacheMode | str) -> CacheMode:
        """Accept a member, its value or its name in any case (``"write-back"`` too)."""
        if isinstance(value, CacheMode):
            return value
        text = str(value).strip().lower().replace("-", "_")
        for member in cls:
            if text in (member.value, member.name.lower()):
                return member
        names = ", ".join(m.value for m in cls)
        raise ValueError(f"unknown cache mode {value!r} (expected one of: {names})")


#: ``merge(key, local, remote) -> bytes | None`` (sync or async): ``local`` is the value
#: the cache tried to write (None for a delete), ``remote`` what the backend holds now
#: (None if absent). Return the bytes to write, or None to delete the key.
MergeFunction = Callable[
    [str, bytes | None, RawEntry | None],
    bytes | Awaitable[bytes | None] | None,
]

#: ``"raise"``, ``"skip"``, ``"overwrite"`` or a :data:`MergeFunction`.
ConflictPolicy = Union[Literal["raise", "skip", "overwrite"], MergeFunction]  # noqa: UP007

POLICY_NAMES = ("raise", "skip", "overwrite")


def check_policy(policy: object) -> ConflictPolicy:
    """Return ``policy`` if it is a valid conflict policy, else raise ValueError."""
    if callable(policy):
        return policy
    if policy in POLICY_NAMES:
        return policy  # type: ignore[return-value]
    raise ValueError(
        f"on_conflict must be 'raise', 'skip', 'overwrite' or a merge callable, not {policy!r}"
    )
