"""Helpers shared by the kv-local tests."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def entries_under(root: Path) -> list[tuple[str, str, int]]:
    """(folder, name, st_mode) of every entry under ``root``, links not followed.

    Uses descriptors (``os.fwalk``) because deep keys make paths longer than PATH_MAX.
    """
    out = []
    for folder, dirs, files, dir_fd in os.fwalk(root, follow_symlinks=False):
        for name in (*dirs, *files):
            mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
            out.append((folder, name, mode))
    return out


def temp_files(root: Path) -> list[str]:
    """Names of temp files the driver left behind."""
    return [name for _f, name, _m in entries_under(root) if name.startswith("#tmp.")]


def has_links(root: Path) -> bool:
    """True if any entry under ``root`` is a symbolic link."""
    return any(stat.S_ISLNK(mode) for _f, _n, mode in entries_under(root))


def names(folder: Path) -> list[str]:
    """Sorted names in ``folder``."""
    return sorted(os.listdir(folder))


class Clock:
    """A manual clock (seconds)."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
