"""Turn ``OSError`` into kv errors that name the key and the store."""

from __future__ import annotations

import errno

from kv_core import BackendError, KVError, SerializationError

from ._fs import MetaError, UnsafePathError

__all__ = ["map_error"]

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
