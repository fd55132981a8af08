"""Writes and deletes, committed in groups (runs on the worker thread).

A batch of queued writes is committed in four steps so that concurrent writers share the
expensive part (group commit):

1. *prepare* (no lock): each value goes to a temp file in its key's folder, stamped with a
   unique mtime so its etag is known before it becomes visible;
2. *flush* (durable only): one ``syncfs`` for a group (Linux), else ``fdatasync`` each;
3. *apply* under the root's ``flock``: check ``if_match``/``if_absent`` against what is on
   disk now, then ``os.replace`` each temp file over its value file;
4. *sync folders* (durable only): one ``fsync`` per folder that changed.

A reader never sees a partial value: a value file only ever appears through ``os.replace``
of a complete, flushed temp file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from kv_core import OutcomeUnknownError, PreconditionFailedError

from ._errors import map_error
from ._fs import (
    O_TEMP,
    DirChain,
    MetaError,
    etag_of,
    expiry_of,
    next_stamp,
    open_chain,
    stat_leaf,
    unlink_quiet,
    write_all,
    write_meta_temp,
)
from ._layout import META, locate
from ._root import Root
from ._sync import SYNCFS_MIN, datasync, start_writeback, syncfs
from ._writeop import StreamTemp, WriteOp

__all__ = ["commit", "finish", "prepare"]


def _current(root: Root, dir_fd: int, leaf: str) -> tuple[str, float | None] | None:
    """(etag, expires_at) of what is stored at ``leaf`` now, expired or not."""
    st = stat_leaf(dir_fd, leaf)
    if st is None:
        return None
    return etag_of(st), expiry_of(dir_fd, leaf, st, marked=root.exact_mtime)


def _prepare(root: Root, op: WriteOp) -> None:
    loc = locate(op.key)
    op.leaf = loc.leaf
    if isinstance(op.value, StreamTemp):
        op.chain, op.tmp, op.fd = op.value.chain, op.value.tmp, op.value.fd
    else:
        op.chain = open_chain(root.fd, loc.dirs, create=not op.delete)
        if op.chain is None or op.delete:
            return
        op.tmp = root.temp_name()
        for _attempt in range(8):
            try:
                op.fd = os.open(op.tmp, O_TEMP, 0o666, dir_fd=op.chain.fd)
                break
            except FileNotFoundError:
                if not op.chain.names:
                    raise
            # A delete emptied and removed the folder after we opened it: open it again.
            op.chain.close()
            op.chain = open_chain(root.fd, loc.dirs, create=True)
            assert op.chain is not None
        else:
            raise OSError(errno.ENOENT, "the key's folder keeps disappearing")
        write_all(op.fd, op.value or b"")
    stamp = next_stamp(odd=op.expires_at is not None)
    os.utime(op.fd, ns=(stamp, stamp))
    op.etag = etag_of(os.fstat(op.fd))
    if op.expires_at is not None:
        # Carry the current value's expiry into the new metadata, so that a crash between
        # the two renames leaves the old value with its own expiry (see _apply).
        try:
            cur = _current(root, op.chain.fd, op.leaf)
        except MetaError:
            cur = None
        op.seen = cur[0] if cur else None
        _write_meta(root, op, cur)


def _write_meta(root: Root, op: WriteOp, cur: tuple[str, float | None] | None) -> None:
    assert op.chain is not None
    assert op.expires_at is not None
    expires = {op.etag: op.expires_at}
    if cur is not None and cur[1] is not None:
        expires[cur[0]] = cur[1]
    op.meta_tmp = root.temp_name()
    op.meta_fd = write_meta_temp(op.chain.fd, op.meta_tmp, expires)


def _flush(root: Root, ops: Sequence[WriteOp], store: str) -> None:
    fds = [(op, fd) for op in ops for fd in (op.fd, op.meta_fd) if fd >= 0]
    if root.syncfs and len(fds) >= SYNCFS_MIN and syncfs is not None and syncfs(root.fd) == 0:
        return
    # One fdatasync each: a small group, no syncfs, or syncfs failed (it cannot say which
    # file failed, so each one is checked).
    if len(fds) > 1 and start_writeback is not None:
        for _op, fd in fds:
            start_writeback(fd)  # a failure shows up again in fdatasync
    for op, fd in fds:
        if op.error is None:
            try:
                datasync(fd)
            except OSError as exc:
                op.error = map_error(exc, key=op.key, store=store, action="writing")


def _apply(root: Root, op: WriteOp, store: str) -> None:
    chain = op.chain
    if chain is None:  # a delete whose folder does not exist
        if op.if_match is not None:
            raise PreconditionFailedError("the key does not exist", key=op.key, store=store)
        op.result = False
        return
    dfd = chain.fd
    plain_set = not op.delete and op.if_match is None and not op.if_absent
    cur: tuple[str, float | None] | None = None
    if not plain_set or op.expires_at is not None:
        try:
            cur = _current(root, dfd, op.leaf)
        except MetaError:
            if op.if_match is not None or op.if_absent or op.only_expired:
                raise
            cur = ("", None)  # unreadable metadata: the key counts as live
    live = cur is not None and (cur[1] is None or op.now < cur[1])
    if op.if_absent and live:
        raise PreconditionFailedError("the key already exists", key=op.key, store=store)
    if op.if_match is not None and (not live or cur is None or cur[0] != op.if_match):
        reason = "the etag does not match" if live else "the key does not exist"
        raise PreconditionFailedError(reason, key=op.key, store=store)
    if op.delete:
        if cur is None or (op.only_expired and live):
            if cur is not None and cur[1] is None:
                unlink_quiet(dfd, op.leaf + META)  # purge: stale metadata of a live value
            op.result = False
            return
        os.unlink(op.leaf, dir_fd=dfd)
        unlink_quiet(dfd, op.leaf + META)
        op.result = live
        op.removed = True
        _prune_empty(chain)
        return
    if op.meta_tmp is not None:
        if op.seen != (cur[0] if cur else None):
            # Another writer replaced the value since _prepare: redo the metadata so it
            # carries that value's expiry.
            os.close(op.meta_fd)
            unlink_quiet(dfd, op.meta_tmp)
            op.meta_fd = -1
            _write_meta(root, op, cur)
            if root.durable:
                datasync(op.meta_fd)
        os.replace(op.meta_tmp, op.leaf + META, src_dir_fd=dfd, dst_dir_fd=dfd)
        op.meta_tmp = None
    assert op.tmp is not None
    os.replace(op.tmp, op.leaf, src_dir_fd=dfd, dst_dir_fd=dfd)
    op.tmp = None
    if op.expires_at is None and not root.exact_mtime:
        # With exact mtimes the even stamp already says "no expiry" and a stale metadata
        # file is ignored (purge_expired removes it); otherwise it must go now.
        unlink_quiet(dfd, op.leaf + META)
    op.result = op.etag


def _prune_empty(chain: DirChain) -> None:
    """Remove folders the delete left empty (best effort: stop at the first non-empty)."""
    for i in range(len(chain.names), 0, -1):
        try:
            os.rmdir(chain.names[i - 1], dir_fd=chain.fds[i - 1])
        except OSError:
            return
        chain.created.append(i - 1)  # its parent changed: sync it


def _cleanup(op: WriteOp) -> None:
    for fd in (op.fd, op.meta_fd):
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)
    op.fd = op.meta_fd = -1
    if op.chain is not None:
        for tmp in (op.tmp, op.meta_tmp):
            if tmp is not None:
                with contextlib.suppress(OSError):
                    unlink_quiet(op.chain.fd, tmp)
        op.chain.close()
        op.chain = None


def prepare(root: Root, ops: Sequence[WriteOp], store: str) -> None:
    """Step 1: every temp file written and stamped."""
    # Not spread over threads: creating files in one folder serialises in the kernel, and
    # many short system calls from several threads fight over the GIL (measured slower).
    for op in ops:
        try:
            _prepare(root, op)
        except BaseException as exc:
            op.error = map_error(exc, key=op.key, store=store, action="writing")


def finish(root: Root, ops: Sequence[WriteOp], store: str) -> None:
    """Steps 2 to 4 for prepared ops; each gets ``result`` or ``error``, and is cleaned up."""
    try:
        if root.durable:
            _flush(root, [op for op in ops if op.error is None and op.fd >= 0], store)
        changed: dict[tuple[str, ...], int] = {}
        live = [op for op in ops if op.error is None]
        with root.locked():
            if len(live) >= PARALLEL_MIN and _independent(live):
                # Replacing a file frees the old one, which can take a journal wait each:
                # overlap those waits (the raw baseline's thread pool gets the same).
                chunks = [live[i::_THREADS] for i in range(_THREADS)]
                list(_pool().map(lambda c: _apply_all(root, c, store), chunks))
            else:
                _apply_all(root, live, store)
        if root.durable:
            for op in ops:
                chain = op.chain
                if chain is None:
                    continue
                # A folder this op created is used by others even if this op failed.
                for i in chain.created:
                    changed.setdefault(chain.names[:i], chain.fds[i])
                if op.error is None and (op.result is not False or op.removed):
                    changed.setdefault(chain.names, chain.fd)
        if changed:
            _sync_dirs(ops, changed, store)
    finally:
        for op in ops:
            _cleanup(op)


def _apply_all(root: Root, ops: Sequence[WriteOp], store: str) -> None:
    for op in ops:
        try:
            _apply(root, op, store)
        except BaseException as exc:
            op.error = map_error(exc, key=op.key, store=store, action="writing")


def _independent(ops: Sequence[WriteOp]) -> bool:
    """True if the ops can be applied in any order: plain sets of distinct keys."""
    keys = set()
    for op in ops:
        if op.delete or op.if_match is not None or op.if_absent or op.meta_tmp is not None:
            return False
        keys.add(op.key)
    return len(keys) == len(ops)


#: Groups of at least this many independent writes are applied by a few threads at once
#: (the group still has one flush, one lock and one folder sync).
PARALLEL_MIN = 16
_THREADS = 4
_pools: list[ThreadPoolExecutor] = []
_pools_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    if not _pools:
        with _pools_lock:
            if not _pools:
                _pools.append(ThreadPoolExecutor(_THREADS, thread_name_prefix="kv-local"))
    return _pools[0]


def commit(root: Root, ops: Sequence[WriteOp], store: str) -> None:
    """Run every op; each gets ``result`` or ``error``. Never raises for one op's failure."""
    try:
        prepare(root, ops, store)
    except BaseException:
        for op in ops:
            _cleanup(op)
        raise
    finish(root, ops, store)


def _sync_dirs(ops: Sequence[WriteOp], changed: dict[tuple[str, ...], int], store: str) -> None:
    for fd in changed.values():
        try:
            os.fsync(fd)
        except OSError as exc:
            for op in ops:
                if op.error is None:
                    op.error = OutcomeUnknownError(
                        "the change was made but syncing its folder failed", key=op.key, store=store
                    )
                    op.error.__cause__ = exc
            return
