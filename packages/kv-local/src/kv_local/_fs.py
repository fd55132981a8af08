"""Synchronous file primitives. They run on the driver's worker thread, never on the loop.

Every path is opened one component at a time relative to an open directory with
``O_NOFOLLOW``, so neither a key nor a symbolic link planted inside the root can lead
outside it, and paths longer than ``PATH_MAX`` (deeply nested or very long keys) work.
"""

from __future__ import annotations

import errno
import json
import math
import os
import stat
import threading
import time

from ._layout import META

__all__ = [
    "DirChain",
    "MetaError",
    "UnsafePathError",
    "etag_of",
    "expiry_of",
    "next_stamp",
    "open_chain",
    "read_expiries",
    "read_value",
    "stat_leaf",
    "unlink_quiet",
    "write_all",
    "write_meta_temp",
]

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
O_DIR = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW | _CLOEXEC
# O_NONBLOCK: a FIFO planted in the root must not hang the worker on open().
O_READ = os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | _CLOEXEC
O_TEMP = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC


class UnsafePathError(OSError):
    """A name inside the root is a symbolic link or not the kind of file expected."""


class MetaError(Exception):
    """A metadata file exists but cannot be decoded."""


_stamp_lock = threading.Lock()
_last_stamp = [0]


def next_stamp(*, odd: bool) -> int:
    """A nanosecond timestamp strictly greater than any this process handed out before.

    It becomes the mtime of every value file written, so the etag (inode, mtime, size)
    changes on every write even when two writes fall in the same clock tick and reuse an
    inode. Its parity marks whether the value has an expiry (odd) or not (even), so that a
    read of a value without one skips looking for a metadata file (see ``expiry_of``).
    """
    with _stamp_lock:
        stamp = max(time.time_ns(), _last_stamp[0] + 1)
        if stamp & 1 != odd:
            stamp += 1
        _last_stamp[0] = stamp
        return stamp


def expiry_of(dir_fd: int, leaf: str, st: os.stat_result, *, marked: bool) -> float | None:
    """The expiry of the value file ``leaf`` whose stat is ``st``, or None.

    ``marked`` says the file system keeps exact nanosecond mtimes (probed on open): then an
    even mtime means the value was written without expiry and no metadata is read. The
    metadata names the etag it applies to; a stale file beside a newer value is ignored.
    """
    if marked and not st.st_mtime_ns & 1:
        return None
    expires = read_expiries(dir_fd, leaf)
    return expires.get(etag_of(st)) if expires else None


def etag_of(st: os.stat_result) -> str:
    """The etag of a value file: cheap (one fstat) and unique per write (see next_stamp)."""
    return f"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}"


class DirChain:
    """Open directory descriptors from the root down to one key's folder.

    ``fds[0]`` is the root (borrowed, never closed here); ``fds[-1]`` holds the value file.
    ``created`` lists the indexes of directories whose entry changed because a child
    directory was created in them: their fsync makes the new directory durable.
    """

    __slots__ = ("created", "fds", "names")

    def __init__(self, root_fd: int, names: tuple[str, ...]) -> None:
        self.fds = [root_fd]
        self.names = names
        self.created: list[int] = []

    @property
    def fd(self) -> int:
        return self.fds[-1]

    def close(self) -> None:
        for fd in self.fds[1:]:
            os.close(fd)
        del self.fds[1:]


def _check_dir_error(exc: OSError, name: str) -> None:
    if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
        raise UnsafePathError(
            errno.ELOOP, f"{name!r} inside the root is not a directory kv-local created"
        ) from exc


def open_chain(root_fd: int, names: tuple[str, ...], *, create: bool) -> DirChain | None:
    """Open (and with ``create`` make) the directories ``names`` below the root.

    Returns None when a directory is missing and ``create`` is false.
    """
    chain = DirChain(root_fd, names)
    try:
        for name in names:
            parent = chain.fds[-1]
            for _attempt in range(8):
                try:
                    chain.fds.append(os.open(name, O_DIR, dir_fd=parent))
                    break
                except FileNotFoundError:
                    if not create:
                        chain.close()
                        return None
                except OSError as exc:
                    _check_dir_error(exc, name)
                    raise
                try:
                    os.mkdir(name, 0o777, dir_fd=parent)
                    chain.created.append(len(chain.fds) - 1)
                except FileExistsError:
                    pass  # another writer made it; open it on the next attempt
                # A concurrent delete may rmdir it before we open it: try again.
            else:
                raise OSError(errno.ENOENT, f"directory {name!r} keeps disappearing")
    except BaseException:
        chain.close()
        raise
    return chain


def stat_leaf(dir_fd: int, leaf: str) -> os.stat_result | None:
    """lstat a value file; None if missing. A link or non-file there is refused."""
    try:
        st = os.stat(leaf, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode):
        raise UnsafePathError(errno.ELOOP, f"{leaf!r} inside the root is not a regular file")
    return st


def read_value(dir_fd: int, leaf: str) -> tuple[bytes, os.stat_result] | None:
    """Read a whole value file and its stat; None if missing."""
    try:
        fd = os.open(leaf, O_READ, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafePathError(errno.ELOOP, f"{leaf!r} inside the root is a link") from exc
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafePathError(errno.ELOOP, f"{leaf!r} inside the root is not a file")
        size = st.st_size
        # Files are replaced, never modified in place: st_size bytes is the whole value.
        data = os.read(fd, size) if size else b""
        if len(data) < size:
            parts = [data]
            remaining = size - len(data)
            while remaining > 0:
                chunk = os.read(fd, min(remaining, 1 << 24))
                if not chunk:
                    break
                parts.append(chunk)
                remaining -= len(chunk)
            data = b"".join(parts)
        return data, st
    finally:
        os.close(fd)


def read_expiries(dir_fd: int, leaf: str) -> dict[str, float] | None:
    """The metadata beside ``leaf`` as ``{etag: expires_at}``; None if there is none."""
    try:
        fd = os.open(leaf + META, O_READ, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    try:
        raw = os.read(fd, 1 << 16)
    finally:
        os.close(fd)
    try:
        doc = json.loads(raw)
        expires = doc["expires"]
        out = {str(k): float(v) for k, v in expires.items()}
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise MetaError(f"unreadable metadata file {leaf + META!r}: {exc}") from exc
    if not all(math.isfinite(v) for v in out.values()):
        raise MetaError(f"unreadable metadata file {leaf + META!r}: non-finite expiry")
    return out


def write_all(fd: int, data: bytes | memoryview) -> None:
    """Write every byte (os.write may write less than asked)."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def write_meta_temp(dir_fd: int, tmp: str, expires: dict[str, float]) -> int:
    """Create the temp file of a metadata document; returns its open descriptor."""
    fd = os.open(tmp, O_TEMP, 0o666, dir_fd=dir_fd)
    try:
        write_all(fd, json.dumps({"expires": expires}, separators=(",", ":")).encode())
    except BaseException:
        os.close(fd)
        unlink_quiet(dir_fd, tmp)
        raise
    return fd


def unlink_quiet(dir_fd: int, name: str) -> bool:
    """Remove ``name`` if it exists; True if it did."""
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return False
    return True
