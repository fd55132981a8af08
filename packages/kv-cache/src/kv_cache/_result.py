"""What a flush did to each dirty key, and the errors that carry that report."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kv_core import BackendError, KVError, PreconditionFailedError, RawEntry

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["FlushConflictError", "FlushFailedError", "FlushResult", "FlushStatus", "KeyOutcome"]


class FlushStatus(enum.Enum):
    """The fate of one dirty key in a flush."""

    #: Written to the backend (the condition it was based on still held).
    WRITTEN = "written"
    #: The backend changed since the cache last saw the key; policy ``"raise"``. The local
    #: change is dropped from the cache and kept in :attr:`KeyOutcome.local`.
    CONFLICT = "conflict"
    #: As CONFLICT, with policy ``"skip"``: the remote value wins, nothing is raised.
    SKIPPED = "skipped"
    #: A conflict resolved by writing the local value unconditionally (policy ``"overwrite"``).
    OVERWRITTEN = "overwritten"
    #: A conflict resolved by the merge callable; its result was written.
    MERGED = "merged"
    #: The backend failed; the key stays dirty and the next flush retries it.
    ERROR = "error"


@dataclass(frozen=True)
class KeyOutcome:
    """What happened to one key.

    Attributes:
        key: The full key, as the driver stores it.
        status: See :class:`FlushStatus`.
        local: The bytes the cache tried to write (None for a delete). On CONFLICT or
            SKIPPED this is the only copy of the local change left: it is not in the
            cache any more.
        remote: What the backend held when a conflict was found (None if absent, or if
            there was no conflict).
        error: The backend error, for ERROR (or a failed merge).
    """

    key: str
    status: FlushStatus
    local: bytes | None = None
    remote: RawEntry | None = None
    error: KVError | None = None


@dataclass
class FlushResult:
    """The outcome of :meth:`~kv_cache.CachedDriver.flush`, one :class:`KeyOutcome` per key.

    Outcomes of flushes the cache did on its own (eviction, timer) since the previous
    ``flush()`` are included, except plain WRITTEN ones.
    """

    outcomes: list[KeyOutcome] = field(default_factory=list)

    def __iter__(self) -> Iterator[KeyOutcome]:
        return iter(self.outcomes)

    def __len__(self) -> int:
        return len(self.outcomes)

    def by_status(self, status: FlushStatus) -> list[KeyOutcome]:
        """The outcomes with ``status``, in the order they happened."""
        return [o for o in self.outcomes if o.status is status]

    def status_of(self, key: str) -> FlushStatus | None:
        """The last status reported for ``key``, or None if the flush did not touch it."""
        for outcome in reversed(self.outcomes):
            if outcome.key == key:
                return outcome.status
        return None

    @property
    def written(self) -> list[str]:
        """Keys written because their condition held."""
        return [o.key for o in self.by_status(FlushStatus.WRITTEN)]

    @property
    def conflicts(self) -> list[KeyOutcome]:
        """Conflicts left unresolved (CONFLICT and SKIPPED)."""
        return [o for o in self.outcomes if o.status in (FlushStatus.CONFLICT, FlushStatus.SKIPPED)]

    @property
    def errors(self) -> list[KeyOutcome]:
        """Keys the backend failed on; they are still dirty."""
        return self.by_status(FlushStatus.ERROR)

    @property
    def ok(self) -> bool:
        """True if every dirty key reached the backend in some form (no CONFLICT, no ERROR)."""
        return not any(o.status in (FlushStatus.CONFLICT, FlushStatus.ERROR) for o in self)


class FlushConflictError(PreconditionFailedError):
    """A flush under ``on_conflict="raise"`` found keys changed behind the cache's back.

    Raised after every other dirty key was written. ``result`` holds every outcome,
    including the local values of the conflicting keys.
    """

    def __init__(self, result: FlushResult, *, store: str | None = None) -> None:
        conflicts = result.by_status(FlushStatus.CONFLICT)
        first = conflicts[0].key if conflicts else None
        super().__init__(
            f"{len(conflicts)} key(s) changed in the backend since the cache last saw them",
            key=first,
            store=store,
        )
        self.result = result

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), self.result, self.store))


class FlushFailedError(BackendError):
    """A flush could not write some keys because the backend failed.

    ``result`` holds every outcome (the unwritten values in ``KeyOutcome.local``); the
    first backend error is chained as ``__cause__``. From ``flush()`` or an eviction the
    keys stay dirty in the cache and the next flush retries them. From ``aclose()``
    (``closed`` True) the cache is closed: ``result`` is the only copy of those values left.
    """

    def __init__(
        self, result: FlushResult, *, store: str | None = None, closed: bool = False
    ) -> None:
        errors = result.errors
        first = errors[0].key if errors else None
        if closed:
            fate = "the cache is closed, so their values are only in this error's .result"
        else:
            fate = "they stay dirty in the cache and the next flush retries them"
        super().__init__(
            f"{len(errors)} dirty key(s) could not be written; {fate}",
            key=first,
            store=store,
        )
        self.result = result
        self.closed = closed

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_failed, (self.result, self.store, self.closed))


def _rebuild(
    cls: type[FlushConflictError | FlushFailedError], result: FlushResult, store: str | None
) -> KVError:
    return cls(result, store=store)


def _rebuild_failed(result: FlushResult, store: str | None, closed: bool) -> KVError:
    return FlushFailedError(result, store=store, closed=closed)
