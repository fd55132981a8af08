"""One worker thread per driver that runs queued file operations in bulk.

Measured on the reference machine (see README): a thread hop costs more than reading a
1 KiB file, so the hop is what to save. Each operation is queued; the worker takes
everything waiting, runs the reads, commits all the writes as one group (one flush, one
lock, one folder sync), and wakes each event loop once per batch with every result.
Under 64 concurrent tasks that is one hop per batch instead of one per operation.

Durable writes are pipelined over a second thread, the flusher: while it waits for the
disk on one group, the worker already writes the temp files of the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

from kv_core import StoreClosedError

from ._commit import commit, finish, group_size, prepare
from ._root import Root
from ._writeop import WriteOp

__all__ = ["Worker"]

#: Most operations taken in one batch (bounds the latency of the first in the batch).
MAX_BATCH = 256
#: A durable group smaller than this, with nothing else waiting, is committed by the
#: worker itself: pipelining pays off only when there is a next group to prepare.
INLINE_MAX = 4


class _Job:
    __slots__ = ("args", "error", "fn", "fut", "loop", "ops", "result")

    def __init__(
        self,
        fn: Callable[..., Any] | None,
        args: tuple[Any, ...],
        ops: Sequence[WriteOp] | None,
        fut: asyncio.Future[Any] | None,
        loop: asyncio.AbstractEventLoop | None,
    ) -> None:
        self.fn = fn
        self.args = args
        self.ops = ops
        self.fut = fut
        self.loop = loop
        self.result: Any = None
        self.error: BaseException | None = None


def _settle(jobs: list[_Job]) -> None:
    for job in jobs:
        fut = job.fut
        if fut is None or fut.done():
            continue  # fire-and-forget, or the awaiting task was cancelled
        if job.error is not None:
            fut.set_exception(job.error)
        else:
            fut.set_result(job.result)


def _deliver(jobs: list[_Job]) -> None:
    """Wake each event loop once with the results of its jobs."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
    for job in jobs:
        if job.loop is not None:
            by_loop.setdefault(job.loop, []).append(job)
    for loop, settled in by_loop.items():
        # RuntimeError: that event loop is closed, nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_settle, settled)


class _Flusher:
    """Finishes prepared durable writes (flush, apply, sync folders) and delivers them."""

    def __init__(self, root: Root, store: str) -> None:
        self._root = root
        self._store = store
        self._queue: queue.SimpleQueue[list[_Job] | threading.Event] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pending = 0  # groups put and not finished yet
        self.pending_ops = 0  # their ops, each holding descriptors until finished
        self._pending_lock = threading.Lock()

    @property
    def idle(self) -> bool:
        """No group is waiting or being finished (only the worker puts, so it stays so)."""
        return self._pending == 0

    def put(self, jobs: list[_Job]) -> None:
        with self._pending_lock:
            self._pending += 1
            self.pending_ops += sum(len(job.ops or ()) for job in jobs)
        self._queue.put(jobs)
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"kv-local flush {self._store}", daemon=True
            )
            self._thread.start()

    def drain(self) -> None:
        """Wait until every group put so far is finished (then the thread exits)."""
        if self._thread is not None:
            done = threading.Event()
            self._queue.put(done)
            done.wait()
            self._thread = None

    def _run(self) -> None:
        q = self._queue
        while True:
            groups = [q.get()]
            while True:
                try:
                    groups.append(q.get_nowait())
                except queue.Empty:
                    break
            lists = [group for group in groups if isinstance(group, list)]
            jobs = [job for group in lists for job in group]
            if jobs:
                ops = [op for job in jobs for op in job.ops or ()]
                try:
                    finish(self._root, ops, self._store)
                except BaseException as exc:
                    for job in jobs:
                        job.error = exc
                _deliver(jobs)
                with self._pending_lock:
                    self._pending -= len(lists)
                    self.pending_ops -= len(ops)
            for group in groups:
                if isinstance(group, threading.Event):
                    group.set()
                    return


class Worker:
    """Runs file operations for one root on a dedicated daemon thread.

    Args:
        root: The root folder state; opened by the first batch, closed by ``stop``.
        store: The driver's name, for error messages.
        on_open_error: Turns the exception of a failed open into the error every job of
            that batch gets (the next batch tries to open again).
    """

    def __init__(
        self,
        root: Root,
        store: str,
        on_open_error: Callable[[BaseException], BaseException],
    ) -> None:
        self._root = root
        self._store = store
        self._on_open_error = on_open_error
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._close = root.close  # bound once: jobs are matched against it with "is"
        self._flusher = _Flusher(root, store)
        self._stopping = False

    @property
    def started(self) -> bool:
        return self._thread is not None

    def _submit(self, job: _Job) -> None:
        if self._stopping:
            # Queued after the stop marker, it would never run: fail it now.
            if job.fut is not None and not job.fut.done():
                job.fut.set_exception(StoreClosedError("the driver is closed", store=self._store))
            return
        self._queue.put(job)
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    thread = threading.Thread(
                        target=self._run, name=f"kv-local {self._store}", daemon=True
                    )
                    thread.start()
                    self._thread = thread

    def call(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """Run ``fn(*args)`` on the worker; the future gets its result or exception."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._submit(_Job(fn, args, None, fut, loop))
        return fut

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the worker without waiting (clean-up work)."""
        self._submit(_Job(fn, args, None, None, None))

    def write(self, ops: Sequence[WriteOp]) -> asyncio.Future[Any]:
        """Commit ``ops`` with whatever else is queued; each op gets result or error."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._submit(_Job(None, (), ops, fut, loop))
        return fut

    def stop(self) -> asyncio.Future[Any]:
        """Close the root after every queued job ran; the thread then exits."""
        fut = self.call(self._close)
        self._stopping = True
        self._queue.put(None)
        return fut

    def stop_soon(self) -> None:
        """``stop`` without waiting (from ``__del__``)."""
        self.call_soon(self._close)
        self._stopping = True
        self._queue.put(None)

    def _run(self) -> None:
        q = self._queue
        root = self._root
        stop = False
        while not stop:
            first = q.get()
            jobs: list[_Job] = []
            stop = first is None
            if first is not None:
                jobs.append(first)
            while len(jobs) < MAX_BATCH or stop:
                try:
                    job = q.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                else:
                    jobs.append(job)
            _deliver(self._run_batch(root, jobs))

    def _run_batch(self, root: Root, jobs: list[_Job]) -> list[_Job]:
        """Run a batch; returns the jobs to deliver now (the flusher delivers the rest)."""
        close = self._close
        closers = [job for job in jobs if job.fn is close]
        if root.fd < 0 and len(closers) < len(jobs):
            try:
                root.open()
            except BaseException as exc:
                error = self._on_open_error(exc)
                for job in jobs:
                    if job.fn is not close:
                        job.error = error
                for job in closers:
                    self._call(job)
                return jobs
        writes: list[_Job] = []
        done: list[_Job] = []
        for job in jobs:
            if job.ops is not None:
                writes.append(job)
            elif job.fn is not close:
                self._call(job)
                done.append(job)
        if writes:
            ops = [op for job in writes for op in job.ops or ()]
            try:
                if not root.durable:
                    commit(root, ops, self._store)
                elif self._flusher.pending_ops + len(ops) > group_size():
                    # Prepared groups hold descriptors until flushed: past the share of
                    # RLIMIT_NOFILE, wait for the flusher, then commit in parts here.
                    self._flusher.drain()
                    commit(root, ops, self._store)
                elif len(ops) < INLINE_MAX and self._flusher.idle and self._queue.empty():
                    # Nothing to overlap with (e.g. one sequential writer): skip the handoff.
                    commit(root, ops, self._store)
                else:
                    prepare(root, ops, self._store)
                    self._flusher.put(writes)
                    writes = []
            except BaseException as exc:
                for job in writes:
                    job.error = exc
            done.extend(writes)
        if closers:
            self._flusher.drain()  # every write queued before the close is finished
            for job in closers:
                self._call(job)
            done.extend(closers)
        return done

    @staticmethod
    def _call(job: _Job) -> None:
        assert job.fn is not None
        try:
            job.result = job.fn(*job.args)
        except BaseException as exc:
            job.error = exc
