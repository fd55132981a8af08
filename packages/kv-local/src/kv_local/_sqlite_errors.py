"""Turn ``sqlite3`` errors into kv errors that name the key, the store and the cause."""

from __future__ import annotations

import sqlite3

from kv_core import BackendError, BackendUnavailableError, KVError, ValueTooLargeError

from ._errors import map_error

__all__ = ["is_busy", "map_sqlite_error"]


def is_busy(exc: BaseException) -> bool:
    """True for SQLITE_BUSY / SQLITE_LOCKED: another connection holds the lock."""
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def map_sqlite_error(
    exc: BaseException, *, key: str | None, store: str, path: str, busy_timeout: float
) -> BaseException:
    """The kv error to raise for ``exc`` (chained as ``__cause__``).

    A lock held by another connection for longer than ``busy_timeout`` is
    BackendUnavailableError: nothing was written, and trying again later is the cure.
    """
    if isinstance(exc, KVError) or not isinstance(exc, (sqlite3.Error, OSError)):
        return exc
    if isinstance(exc, OSError):
        return map_error(exc, key=key, store=store, action="writing")
    text = str(exc)
    lowered = text.lower()
    error: KVError
    if is_busy(exc):
        error = BackendUnavailableError(
            f"the database file stayed locked by another connection for longer than "
            f"busy_timeout={busy_timeout:g} s; nothing was done, try again (or give a "
            "longer busy_timeout)",
            key=key,
            store=store,
        )
    elif "too big" in lowered:
        error = ValueTooLargeError(f"SQLite refused the value: {text}", key=key, store=store)
    elif "disk is full" in lowered:
        error = BackendError("writing failed: no space left on the device", key=key, store=store)
    elif "not a database" in lowered:
        error = BackendError(f"{path!r} is not a SQLite database file", key=key, store=store)
    elif "unable to open" in lowered:
        error = BackendError(f"cannot open the database file {path!r}: {text}", store=store)
    elif "readonly" in lowered:
        error = BackendError(f"{path!r} is read-only: {text}", key=key, store=store)
    else:
        error = BackendError(f"SQLite failed: {text}", key=key, store=store)
    error.__cause__ = exc
    return error
