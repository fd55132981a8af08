"""The unit of work of a group commit: one set or delete (and streamed temp files)."""

from __future__ import annotations

import contextlib
import os

from ._fs import O_TEMP, DirChain, open_chain, prune_empty, unlink_quiet
from ._layout import locate
from ._root import Root

__all__ = ["StreamTemp", "WriteOp", "open_stream_temp"]


class StreamTemp:
    """A temp file opened for ``write_stream``, committed later like any write."""

    __slots__ = ("chain", "fd", "tmp")

    def __init__(self, chain: DirChain, tmp: str, fd: int) -> None:
        self.chain = chain
        self.tmp = tmp
        self.fd = fd

    def discard(self) -> None:
        """Remove the temp file and close everything (the stream failed)."""
        with contextlib.suppress(OSError):
            os.close(self.fd)
            unlink_quiet(self.chain.fd, self.tmp)
        if self.chain.names:
            with contextlib.suppress(OSError):
                left = prune_empty(self.chain)  # leave no empty folder behind
                if left is not None:
                    os.close(left)
        self.chain.close()


def open_stream_temp(root: Root, key: str) -> StreamTemp:
    """Create the folders and the temp file that a streamed value is written into."""
    chain = open_chain(root.fd, locate(key).dirs, create=True, durable=root.durable)
    assert chain is not None
    tmp = root.temp_name()
    try:
        fd = os.open(tmp, O_TEMP, 0o666, dir_fd=chain.fd)
    except BaseException:
        chain.close()
        raise
    return StreamTemp(chain, tmp, fd)


class WriteOp:
    """One set or delete waiting in a batch; ``result``/``error`` are filled by commit."""

    __slots__ = (
        "chain",
        "delete",
        "error",
        "etag",
        "expires_at",
        "fd",
        "ident",
        "if_absent",
        "if_match",
        "key",
        "leaf",
        "meta_fd",
        "meta_tmp",
        "now",
        "only_expired",
        "removed",
        "result",
        "seen",
        "sync_fd",
        "tmp",
        "value",
    )

    def __init__(
        self,
        key: str,
        value: bytes | StreamTemp | None,
        *,
        now: float,
        expires_at: float | None = None,
        if_match: str | None = None,
        if_absent: bool = False,
        delete: bool = False,
        only_expired: bool = False,
    ) -> None:
        self.key = key
        self.value = value
        self.now = now
        self.expires_at = expires_at
        self.if_match = if_match
        self.if_absent = if_absent
        self.delete = delete
        self.only_expired = only_expired
        self.result: str | bool | None = None
        self.removed = False  # a delete removed files (of a live or an expired key)
        self.error: BaseException | None = None
        self.chain: DirChain | None = None
        self.leaf = ""
        self.tmp: str | None = None
        self.fd = -1
        self.etag = ""
        self.ident = ""
        self.sync_fd = -1  # a folder a delete changed, once its own folder was removed
        self.meta_tmp: str | None = None
        self.meta_fd = -1
        self.seen: str | None = None
