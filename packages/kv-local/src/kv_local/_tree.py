"""Visiting folders of the tree with one open descriptor, whatever its depth.

A walk keeps the names still to visit, not a descriptor per level: a key 1,000 levels deep
must list under a small ``RLIMIT_NOFILE``. Moving from one folder to the next climbs with
``..`` and descends by name; each climb checks that the parent still holds the folder it
came from (same inode), and otherwise (a folder removed or replaced meanwhile) starts
again from the root. Nothing is ever followed through a symbolic link (``O_NOFOLLOW``).
"""

from __future__ import annotations

import os

from ._fs import O_DIR

__all__ = ["Navigator", "read_folder"]


class Navigator:
    """One open descriptor on some folder below a root; ``go`` moves it. Close when done."""

    __slots__ = ("fd", "path", "root_fd")

    def __init__(self, root_fd: int) -> None:
        self.root_fd = root_fd
        self.fd = root_fd
        self.path: tuple[str, ...] = ()

    def close(self) -> None:
        if self.fd != self.root_fd:
            fd, self.fd = self.fd, self.root_fd
            os.close(fd)
        self.path = ()

    def go(self, path: tuple[str, ...]) -> int | None:
        """A descriptor on the folder ``path`` (names from the root), or None if missing.

        The descriptor belongs to the navigator: valid until the next ``go`` or ``close``.
        """
        common = 0
        for a, b in zip(self.path, path, strict=False):
            if a != b:
                break
            common += 1
        while len(self.path) > common:
            if not self._up():
                self.close()
                common = 0
                break
        for name in path[len(self.path) :]:
            try:
                fd = os.open(name, O_DIR, dir_fd=self.fd)
            except (FileNotFoundError, NotADirectoryError):
                return None  # removed by a concurrent delete, or not a folder
            if self.fd != self.root_fd:
                os.close(self.fd)
            self.fd = fd
            self.path = (*self.path, name)
        return self.fd

    def _up(self) -> bool:
        """Climb one level; False if the parent no longer holds this folder."""
        here = os.fstat(self.fd)
        name = self.path[-1]
        if len(self.path) == 1:
            parent = self.root_fd
        else:
            try:
                parent = os.open("..", O_DIR, dir_fd=self.fd)
            except OSError:
                return False
        os.close(self.fd)
        self.fd = parent
        self.path = self.path[:-1]
        try:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == (here.st_dev, here.st_ino)


def read_folder(fd: int) -> list[os.DirEntry[str]]:
    """Every entry of a folder, read at once, sorted by name, each name once.

    Read whole rather than lazily across pages: some file systems (tmpfs) move a renamed
    entry within the folder, so a reader that pauses mid-folder while values are
    overwritten would miss some names and see others twice. Sorting and keeping one entry
    per name makes the result exact for every name that stayed in the folder.
    """
    with os.scandir(fd) as it:
        by_name = {entry.name: entry for entry in it}
    return [by_name[name] for name in sorted(by_name)]
