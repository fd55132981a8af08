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

try:
    import resource
except ImportError:  # pragma: no cover
    resource = None  # type: ignore[assignment]

from kv_core import OutcomeUnknownError, PreconditionFailedError

from ._errors import map_error
from ._fs import (
    O_READ,
    O_TEMP,
    MetaError,
    content_ident,
    etag_for,
    expiry_of,
    hash_fd,
    next_stamp,
    open_chain,
    prune_empty,
    read_value,
    stat_ident,
    stat_leaf,
    unlink_quiet,
    write_all,
    write_meta_temp,
)
from ._layout import META, locate
from ._root import Root
from ._sync import SYNCFS_MIN, datasync, start_writeback, syncfs
from ._writeop import StreamTemp, WriteOp

__all__ = ["commit", "finish", "group_size", "prepare"]


def _current(root: Root, dir_fd: int, leaf: str) -> tuple[str, str, float | None] | None:
    """(etag, identity, expires_at) of what is stored at ``leaf`` now, expired or not."""
    if root.exact_mtime:
        st = stat_leaf(dir_fd, leaf)
        if st is None:
            return None
        ident = stat_ident(st)
    else:
        found = read_value(dir_fd, leaf)
        if found is None:
            return None
        data, st = found
        ident = content_ident(data)
    at = expiry_of(dir_fd, leaf, ident, st, marked=root.exact_mtime)
    return etag_for(ident, at, exact=root.exact_mtime), ident, at


def _exists(dir_fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _temp_ident(root: Root, op: WriteOp) -> str:
    """The identity the temp file will have once renamed into place."""
    assert op.chain is not None
    assert op.tmp is not None
    if root.exact_mtime:
        return stat_ident(os.fstat(op.fd))
    if isinstance(op.value, bytes):
        return content_ident(op.value)
    fd = os.open(op.tmp, O_READ, dir_fd=op.chain.fd)  # a streamed value: read it back
    try:
        return hash_fd(fd)
    finally:
        os.close(fd)


def _prepare(root: Root, op: WriteOp) -> None:
    loc = locate(op.key)
    op.leaf = loc.leaf
    if isinstance(op.value, StreamTemp):
        op.chain, op.tmp, op.fd = op.value.chain, op.value.tmp, op.value.fd
    else:
        op.chain = open_chain(root.fd, loc.dirs, create=not op.delete, durable=root.durable)
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
            op.chain = open_chain(root.fd, loc.dirs, create=True, durable=root.durable)
            assert op.chain is not None
        else:
            raise OSError(errno.ENOENT, "the key's folder keeps disappearing")
        write_all(op.fd, op.value or b"")
    stamp = next_stamp(odd=op.expires_at is not None)
    os.utime(op.fd, ns=(stamp, stamp))
    op.ident = _temp_ident(root, op)
    op.etag = etag_for(op.ident, op.expires_at, exact=root.exact_mtime)
    if op.expires_at is not None:
        # Carry the current value's expiry into the new metadata, so that a crash between
        # the two renames leaves the old value with its own expiry (see _apply).
        try:
            cur = _current(root, op.chain.fd, op.leaf)
        except MetaError:
            cur = None
        op.seen = cur[1] if cur else None
        _write_meta(root, op, cur)


def _write_meta(root: Root, op: WriteOp, cur: tuple[str, str, float | None] | None) -> None:
    assert op.chain is not None
    expires: dict[str, float | None] = {}
    if cur is not None and cur[2] is not None:
        expires[cur[1]] = cur[2]
    # Last: with content identities the old and new value may be the same bytes, and then
    # the new expiry (or None, "no expiry") is the one that holds.
    expires[op.ident] = op.expires_at
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
    cur: tuple[str, str, float | None] | None = None
    # With coarse timestamps a metadata file may hold an entry for these very bytes (an
    # earlier value with the same content and an expiry): a write without expiry must
    # then say "none" in the metadata before the value is renamed into place.
    undo_meta = (
        not op.delete
        and op.expires_at is None
        and not root.exact_mtime
        and _exists(dfd, op.leaf + META)
    )
    if not plain_set or op.expires_at is not None or undo_meta:
        try:
            cur = _current(root, dfd, op.leaf)
        except MetaError:
            if op.if_match is not None or op.if_absent or op.only_expired:
                raise
            cur = ("", "", None)  # unreadable metadata: the key counts as live
    live = cur is not None and (cur[2] is None or op.now < cur[2])
    if op.if_absent and live:
        raise PreconditionFailedError("the key already exists", key=op.key, store=store)
    if op.if_match is not None and (not live or cur is None or cur[0] != op.if_match):
        reason = "the etag does not match" if live else "the key does not exist"
        raise PreconditionFailedError(reason, key=op.key, store=store)
    if op.delete:
        if cur is None or (op.only_expired and live):
            if cur is not None and cur[2] is None:
                unlink_quiet(dfd, op.leaf + META)  # purge: stale metadata of a live value
            op.result = False
            return
        os.unlink(op.leaf, dir_fd=dfd)
        unlink_quiet(dfd, op.leaf + META)
        op.result = live
        op.removed = True
        if chain.names:
            # Remove the folders the delete left empty; the deepest folder left changed.
            keep = os.dup(dfd)
            left = prune_empty(chain)
            if left is None:
                op.sync_fd = keep
            else:
                os.close(keep)
                op.sync_fd = left
        return
    if undo_meta and op.meta_tmp is None:
        op.seen = cur[1] if cur else None
        _write_meta(root, op, cur)
        if root.durable:
            datasync(op.meta_fd)
    if op.meta_tmp is not None:
        if op.seen != (cur[1] if cur else None):
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


def _cleanup(op: WriteOp) -> None:
    for fd in (op.fd, op.meta_fd, op.sync_fd):
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)
    op.fd = op.meta_fd = op.sync_fd = -1
    if op.chain is not None:
        for tmp in (op.tmp, op.meta_tmp):
            if tmp is not None:
                with contextlib.suppress(OSError):
                    unlink_quiet(op.chain.fd, tmp)
        if op.error is not None and not op.delete and op.chain.names:
            # A failed write leaves no empty folder behind (they would be listed as
            # nothing, but cost every walk a visit).
            with contextlib.suppress(OSError):
                left = prune_empty(op.chain)
                if left is not None:
                    os.close(left)
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
            # (Folders an op created were flushed into their parents when made.)
            extra: list[int] = []
            for op in ops:
                chain = op.chain
                if chain is None or op.error is not None:
                    continue
                if op.sync_fd >= 0:
                    extra.append(op.sync_fd)
                elif op.result is not False or op.removed:
                    changed.setdefault(chain.names, chain.fd)
            if changed or extra:
                _sync_dirs(ops, [*changed.values(), *extra], store)
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


def group_size() -> int:
    """Most ops committed as one group, so that their descriptors fit the process's limit.

    A prepared op holds up to three descriptors (its folder, its temp file, a metadata
    temp file) until its group is finished; a group may use a quarter of RLIMIT_NOFILE.
    """
    if resource is None:  # pragma: no cover
        return 256  # type: ignore[unreachable]
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY:
        return 1 << 20
    return max(1, soft // 12)


def commit(root: Root, ops: Sequence[WriteOp], store: str) -> None:
    """Run every op; each gets ``result`` or ``error``. Never raises for one op's failure."""
    size = group_size()
    for i in range(0, len(ops), size):
        group = ops[i : i + size]
        try:
            prepare(root, group, store)
        except BaseException:
            for op in group:
                _cleanup(op)
            raise
        finish(root, group, store)


def _sync_dirs(ops: Sequence[WriteOp], fds: Sequence[int], store: str) -> None:
    for fd in fds:
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
