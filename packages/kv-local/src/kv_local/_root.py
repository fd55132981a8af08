"""The open state of a root folder: descriptors, the cross-process lock, stale temp cleanup.

Every driver instance registers an *owner* file ``#owners/<token>`` and holds an exclusive
``flock`` on it for its lifetime; its temp files are named ``#tmp.<token>.<n>``. A process
killed with ``kill -9`` loses its locks, so the next driver to open the root finds an owner
file nobody holds, removes that owner's temp files and its owner file, and leaves the temp
files of live writers alone. The full-tree sweep only happens after such an unclean exit.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
from collections.abc import Iterator

from ._fs import O_DIR, unlink_quiet
from ._tree import Navigator, read_folder

try:  # Windows is not a target, but importing kv_local there must not fail.
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

__all__ = ["Root"]

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
LOCK = "#lock"
OWNERS = "#owners"
TEMP_PREFIX = "#tmp."


class Root:
    """Descriptors and locks of one open root folder. Used only on the worker thread."""

    def __init__(self, path: str, *, durable: bool, syncfs: bool = True) -> None:
        self.path = path
        self.durable = durable
        self.syncfs = syncfs
        self.fd = -1
        self._lock_fd = -1
        self._owner_fd = -1
        self._owners_fd = -1
        self.token = secrets.token_hex(6)
        #: The file system keeps the exact nanosecond mtimes kv-local sets (see expiry_of).
        self.exact_mtime = False
        self._seq = itertools.count()

    @property
    def is_open(self) -> bool:
        return self.fd >= 0

    def temp_name(self) -> str:
        """A fresh temp file name owned by this driver (never a key's name: it has ``#``)."""
        return f"{TEMP_PREFIX}{self.token}.{next(self._seq)}"

    def open(self) -> None:
        """Create the folder if needed, lock files, and clean temp files of dead writers."""
        if fcntl is None:  # pragma: no cover
            raise OSError("kv-local needs fcntl.flock (POSIX)")
        os.makedirs(self.path, exist_ok=True)
        fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _CLOEXEC)
        try:
            flags = os.O_RDWR | os.O_CREAT | _NOFOLLOW | _CLOEXEC
            self._lock_fd = os.open(LOCK, flags, 0o666, dir_fd=fd)
            with contextlib.suppress(FileExistsError):
                os.mkdir(OWNERS, 0o777, dir_fd=fd)
            self._owners_fd = os.open(OWNERS, O_DIR, dir_fd=fd)
            self.fd = fd
            with self.locked():
                self._owner_fd = os.open(
                    self.token, flags | os.O_EXCL, 0o666, dir_fd=self._owners_fd
                )
                fcntl.flock(self._owner_fd, fcntl.LOCK_EX)
                dead = self._dead_owners()
                if dead:
                    self._sweep(dead)
            self.exact_mtime = self._probe_mtime()
        except BaseException:
            self.fd = -1
            self._close_fds(fd)
            raise

    def _probe_mtime(self) -> bool:
        name = self.temp_name()
        fd = os.open(
            name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o666, dir_fd=self.fd
        )
        try:
            stamp = 1_700_000_000_123_456_789  # odd, with every digit significant
            os.utime(fd, ns=(stamp, stamp))
            return os.fstat(fd).st_mtime_ns == stamp
        finally:
            os.close(fd)
            unlink_quiet(self.fd, name)

    def _dead_owners(self) -> list[str]:
        dead = []
        for name in os.listdir(self._owners_fd):
            if name == self.token:
                continue
            try:
                probe = os.open(name, os.O_RDWR | _NOFOLLOW | _CLOEXEC, dir_fd=self._owners_fd)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live driver holds it
            finally:
                os.close(probe)
            dead.append(name)
        return dead

    def _sweep(self, dead: list[str]) -> None:
        # One descriptor at a time (see _tree), so a very deep tree sweeps under a small
        # descriptor limit too.
        prefixes = tuple(f"{TEMP_PREFIX}{token}." for token in dead)
        todo: list[tuple[str, ...]] = [()]
        nav = Navigator(self.fd)
        try:
            while todo:
                path = todo.pop()
                fd = nav.go(path)
                if fd is None:
                    continue
                changed = False
                for entry in read_folder(fd):
                    name = entry.name
                    if name.startswith(prefixes):
                        changed |= unlink_quiet(fd, name)
                    elif "#" not in name and entry.is_dir(follow_symlinks=False):
                        todo.append((*path, name))
                if changed and self.durable:
                    os.fsync(fd)
        finally:
            nav.close()
        for token in dead:
            unlink_quiet(self._owners_fd, token)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the root's exclusive write lock (across processes and threads)."""
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Unregister this owner and close every descriptor. Idempotent."""
        if self.fd < 0:
            return
        with contextlib.suppress(OSError):
            unlink_quiet(self._owners_fd, self.token)
        fd, self.fd = self.fd, -1
        self._close_fds(fd)

    def _close_fds(self, fd: int) -> None:
        for f in (self._owner_fd, self._owners_fd, self._lock_fd, fd):
            if f >= 0:
                with contextlib.suppress(OSError):
                    os.close(f)
        self._owner_fd = self._owners_fd = self._lock_fd = -1
