"""Flushing to the disk: ``syncfs`` for groups, ``fdatasync`` otherwise (worker threads only)."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Callable
from typing import Any, cast

__all__ = ["SYNCFS_MIN", "datasync", "start_writeback", "syncfs"]


def _libc_function(name: str) -> Any:
    try:
        return getattr(ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True), name)
    except (OSError, AttributeError, TypeError):
        return None


def _load_syncfs() -> Callable[[int], int] | None:
    fn = _libc_function("syncfs")
    if fn is None:
        return None
    fn.argtypes = [ctypes.c_int]
    fn.restype = ctypes.c_int
    return cast("Callable[[int], int]", fn)


def _load_start_writeback() -> Callable[[int], int] | None:
    fn = _libc_function("sync_file_range")
    if fn is None:
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]
    fn.restype = ctypes.c_int

    def start_writeback(fd: int) -> int:
        return int(fn(fd, 0, 0, 2))  # 2 = SYNC_FILE_RANGE_WRITE: start, do not wait

    return start_writeback


#: From this many files on, a group is flushed with one syncfs() (Linux), which costs about
#: as much as a single fsync (measured: 1-8 ms for 64 files where 64 fdatasyncs in a row
#: take 6-130 ms, each paying its own journal commit or cache flush).
SYNCFS_MIN = 4
syncfs = _load_syncfs()
#: Without syncfs: start the writeback of every file of the group before the first
#: fdatasync, so the first journal commit covers them all.
start_writeback = _load_start_writeback()
#: fdatasync flushes the data and what is needed to read it back (size, blocks), and skips
#: a separate timestamp-only update: a new temp file's inode is written either way.
datasync: Callable[[int], None] = getattr(os, "fdatasync", os.fsync)
