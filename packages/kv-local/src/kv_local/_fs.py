"""Synchronous file primitives. They run on the driver's worker thread, never on the loop.

Every path is opened one component at a time relative to an open directory with
``O_NOFOLLOW``, so neither a key nor a symbolic link planted inside the root can lead
outside it, and paths longer than ``PATH_MAX`` (deeply nested or very long keys) work.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
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
    "content_ident",
    "etag_for",
    "expiry_of",
    "hash_fd",
    "next_stamp",
    "open_chain",
    "prune_empty",
    "read_expiries",
    "read_state",
    "read_value",
    "stat_ident",
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

    It becomes the mtime of every value file written, so where the file system keeps
    nanosecond mtimes the etag (inode, mtime, size) changes on every write even when two
    writes fall in the same clock tick and reuse an inode. Its parity marks whether the
    value has an expiry (odd) or not (even), so that a read of a value without one skips
    looking for a metadata file (see ``expiry_of``).
    """
    with _stamp_lock:
        stamp = max(time.time_ns(), _last_stamp[0] + 1)
        if stamp & 1 != odd:
            stamp += 1
        _last_stamp[0] = stamp
        return stamp


def stat_ident(st: os.stat_result) -> str:
    """Identity of a value file on a file system with exact nanosecond mtimes: one fstat."""
    return f"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}"


def content_ident(data: bytes | memoryview) -> str:
    """Identity of a value file on a file system with coarse timestamps: its content hash.

    There a freed inode reused within the same second with the same size gives the same
    (inode, mtime, size); a 128-bit BLAKE2b of the bytes cannot collide in practice, and
    equal bytes are the same value (the expiry is added to the etag by ``etag_for``).
    """
    return "h" + hashlib.blake2b(data, digest_size=16).hexdigest()


def hash_fd(fd: int) -> str:
    """``content_ident`` of an open file, read in bounded chunks from offset 0."""
    h = hashlib.blake2b(digest_size=16)
    offset = 0
    while chunk := os.pread(fd, 1 << 20, offset):
        h.update(chunk)
        offset += len(chunk)
    return "h" + h.hexdigest()


def etag_for(ident: str, expires_at: float | None, *, exact: bool) -> str:
    """The etag of a stored state: the value file's identity, and its expiry.

    With exact mtimes every write (a TTL-only one included) makes a new identity, so the
    identity is the etag. With coarse timestamps the identity is the content hash, so the
    expiry is spelled out: a TTL-only rewrite of the same bytes changes the etag.
    """
    if exact:
        return ident
    return f"{ident}.{'n' if expires_at is None else float.hex(expires_at)}"


def expiry_of(
    dir_fd: int, leaf: str, ident: str, st: os.stat_result, *, marked: bool
) -> float | None:
    """The expiry of the value file ``leaf`` (identity ``ident``, stat ``st``), or None.

    ``marked`` says the file system keeps exact nanosecond mtimes (probed on open): then an
    even mtime means the value was written without expiry and no metadata is read. The
    metadata maps value identities to expiries; an entry for another value is ignored.
    """
    if marked and not st.st_mtime_ns & 1:
        return None
    expires = read_expiries(dir_fd, leaf)
    return expires.get(ident) if expires else None


def read_state(
    dir_fd: int, leaf: str, *, exact: bool, with_value: bool, with_etag: bool = True
) -> tuple[bytes | None, str, float | None] | None:
    """(value or None, etag, expires_at) of what is stored at ``leaf``, expired or not.

    With exact mtimes and ``with_value`` false this is one stat (and a metadata read for a
    key with an expiry); with coarse timestamps the value is read to hash it, unless
    neither the value nor the etag is asked for and no metadata file exists (``exists``):
    the etag is then "".
    """
    if not exact and not with_value and not with_etag:
        st = stat_leaf(dir_fd, leaf)
        if st is None:
            return None
        if read_expiries(dir_fd, leaf) is None:
            return None, "", None
    if exact and not with_value:
        st = stat_leaf(dir_fd, leaf)
        if st is None:
            return None
        ident = stat_ident(st)
        data = None
    else:
        found = read_value(dir_fd, leaf)
        if found is None:
            return None
        data, st = found
        ident = stat_ident(st) if exact else content_ident(data)
    at = expiry_of(dir_fd, leaf, ident, st, marked=exact)
    return data, etag_for(ident, at, exact=exact), at


class DirChain:
    """An open descriptor on one key's folder, reached from the root one name at a time.

    Only the last folder stays open (``fd``; the root's when ``names`` is empty, borrowed):
    a key 1,000 levels deep costs one descriptor, not one per level. ``created`` says this
    chain made at least one of the folders (a failed write then removes what it left empty).
    """

    __slots__ = ("created", "fd", "names", "root_fd")

    def __init__(self, root_fd: int, names: tuple[str, ...]) -> None:
        self.root_fd = root_fd
        self.fd = root_fd
        self.names = names
        self.created = False

    def close(self) -> None:
        if self.fd != self.root_fd:
            fd, self.fd = self.fd, self.root_fd
            os.close(fd)


def _check_dir_error(exc: OSError, name: str) -> None:
    if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
        raise UnsafePathError(
            errno.ELOOP, f"{name!r} inside the root is not a directory kv-local created"
        ) from exc


def open_chain(
    root_fd: int, names: tuple[str, ...], *, create: bool, durable: bool = False
) -> DirChain | None:
    """Open (and with ``create`` make) the directories ``names`` below the root.

    Returns None when a directory is missing and ``create`` is false. With ``durable``,
    each folder made is flushed into its parent at once (the parent is not kept open).
    A failure after making folders removes the ones left empty.
    """
    chain = DirChain(root_fd, names)
    depth = 0  # of chain.fd
    made = None  # a folder made in chain.fd and not opened yet
    try:
        for name in names:
            parent = chain.fd
            for _attempt in range(8):
                try:
                    fd = os.open(name, O_DIR, dir_fd=parent)
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
                    chain.created = True
                    made = name
                    if durable:
                        os.fsync(parent)
                except FileExistsError:
                    pass  # another writer made it; open it on the next attempt
                # A concurrent delete may rmdir it before we open it: try again.
            else:
                raise OSError(errno.ENOENT, f"directory {name!r} keeps disappearing")
            made = None
            chain.close()
            chain.fd = fd
            depth += 1
    except BaseException:
        if chain.created:
            with contextlib.suppress(OSError):
                if made is not None:
                    os.rmdir(made, dir_fd=chain.fd)
                left = prune_empty(chain, upto=depth) if depth else None
                if left is not None:
                    os.close(left)
        chain.close()
        raise
    return chain


def prune_empty(chain: DirChain, *, upto: int | None = None) -> int | None:
    """Remove the chain's folders that are empty, deepest first; stop at the first that is not.

    ``upto``: the depth of ``chain.fd`` (default: all of ``names``). Climbs with ``..``
    and checks that each parent still holds the folder it came from (same inode), so a
    folder removed or replaced meanwhile stops the climb. Returns a new descriptor on the
    deepest folder left (whose entries changed: the caller fsyncs and closes it), or None
    if nothing was removed. ``chain.fd`` is closed and left on the root.
    """
    depth = len(chain.names) if upto is None else upto
    fd = chain.fd
    chain.fd = chain.root_fd
    removed = False
    try:
        while depth > 0 and fd != chain.root_fd:
            here = os.fstat(fd)
            parent = chain.root_fd if depth == 1 else os.open("..", O_DIR, dir_fd=fd)
            os.close(fd)
            fd = parent
            name = chain.names[depth - 1]
            try:
                st = os.stat(name, dir_fd=parent, follow_symlinks=False)
                if (st.st_dev, st.st_ino) != (here.st_dev, here.st_ino):
                    break
                os.rmdir(name, dir_fd=parent)
            except OSError:
                break
            removed = True
            depth -= 1
    except BaseException:
        if fd != chain.root_fd:
            os.close(fd)
        raise
    if not removed:
        if fd != chain.root_fd:
            os.close(fd)
        return None
    return os.dup(fd) if fd == chain.root_fd else fd


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


def read_expiries(dir_fd: int, leaf: str) -> dict[str, float | None] | None:
    """The metadata beside ``leaf`` as ``{identity: expires_at}``; None if there is none.

    A ``null`` expiry says "this value has none" (coarse-timestamp file systems, where a
    value's identity is its content and an older entry for the same bytes must be undone).
    """
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
        out = {str(k): None if v is None else float(v) for k, v in expires.items()}
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise MetaError(f"unreadable metadata file {leaf + META!r}: {exc}") from exc
    if not all(v is None or math.isfinite(v) for v in out.values()):
        raise MetaError(f"unreadable metadata file {leaf + META!r}: non-finite expiry")
    return out


def write_all(fd: int, data: bytes | memoryview) -> None:
    """Write every byte (os.write may write less than asked)."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def write_meta_temp(dir_fd: int, tmp: str, expires: dict[str, float | None]) -> int:
    """Create the temp file of a metadata document; returns its open descriptor."""
    if not all(v is None or math.isfinite(v) for v in expires.values()):
        raise ValueError("an expiry must be a finite number of seconds")  # never write it
    fd = os.open(tmp, O_TEMP, 0o666, dir_fd=dir_fd)
    try:
        doc = json.dumps({"expires": expires}, separators=(",", ":"), allow_nan=False)
        write_all(fd, doc.encode())
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
