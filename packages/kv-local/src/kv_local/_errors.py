"""Turn ``OSError`` into kv errors that name the key and the store."""

from __future__ import annotations

import errno
import os
from pathlib import PurePath

from kv_core import BackendError, BackendUnavailableError, KVError, SerializationError

from ._fs import MetaError, UnsafePathError

__all__ = ["map_error", "open_error"]

_MESSAGES = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EMFILE: "too many open files in this process",
    errno.EIO: "input/output error",
}


def map_error(exc: BaseException, *, key: str | None, store: str, action: str) -> BaseException:
    """Return the kv error to raise for ``exc``, with ``exc`` chained as its ``__cause__``.

    kv errors pass through unchanged, and so does anything that is not a file error.
    """
    if isinstance(exc, KVError) or not isinstance(exc, (OSError, MetaError)):
        return exc
    error: KVError
    if isinstance(exc, MetaError):
        error = SerializationError(str(exc), key=key, store=store)
    elif isinstance(exc, UnsafePathError):
        error = BackendError(f"{action} refused: {exc.strerror}", key=key, store=store)
    else:
        reason = _MESSAGES.get(exc.errno or 0) or exc.strerror or type(exc).__name__
        error = BackendError(f"{action} failed: {reason}", key=key, store=store)
    # Errors of a group commit are handed to their callers later, not raised here.
    error.__cause__ = exc
    return error


#: Errors opening the root that waiting can cure (a disconnected mount, a busy device);
#: anything else is a mistake the user must fix, so it is not "safe to retry".
_TRANSIENT = {
    errno.EIO,
    errno.EAGAIN,
    errno.EINTR,
    errno.EBUSY,
    errno.ETIMEDOUT,
    errno.ESTALE,
    errno.ENOTCONN,
    errno.EHOSTDOWN,
    errno.EHOSTUNREACH,
    getattr(errno, "ENOMEDIUM", -1),
}


def _blocker(path: str) -> str:
    """The first component of ``path`` that exists and is not a folder (runs off the loop)."""
    for candidate in [*reversed(PurePath(path).parents), PurePath(path)]:
        if os.path.lexists(candidate) and not os.path.isdir(candidate):
            return str(candidate)
    return path


def open_error(exc: BaseException, *, path: str, store: str) -> BaseException:
    """The kv error for a failure to create or open the root folder ``path``.

    A configuration mistake (a file where the folder should be, no permission, a read-only
    file system) is a BackendError that says what is wrong and names the path; only an
    error that waiting can cure is BackendUnavailableError.
    """
    if isinstance(exc, KVError) or not isinstance(exc, OSError):
        return exc
    code = exc.errno or 0
    where = exc.filename if isinstance(exc.filename, str) else path
    error: KVError
    if code in _TRANSIENT:
        reason = _MESSAGES.get(code) or exc.strerror or type(exc).__name__
        error = BackendUnavailableError(f"cannot open the folder {path!r}: {reason}", store=store)
    elif isinstance(exc, FileExistsError) or code == errno.ENOTDIR:
        error = BackendError(
            f"cannot use {path!r} as the store's folder: {_blocker(path)!r} is a file, "
            "not a folder "
            "(a file: URL names a folder that holds one file per key)",
            store=store,
        )
    else:
        reason = _MESSAGES.get(code) or exc.strerror or type(exc).__name__
        error = BackendError(f"cannot create or open the folder {where!r}: {reason}", store=store)
    error.__cause__ = exc
    return error
