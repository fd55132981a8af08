"""LocalDriver: a kv driver over a folder on the local disk."""

from __future__ import annotations

import contextlib
import functools
import math
import os
import time
import warnings
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

from kv_core import (
    Capability,
    KeyNotFoundError,
    NotModified,
    RawEntry,
    StoreClosedError,
)

from . import _ops
from ._errors import map_error, open_error
from ._root import Root
from ._url import parse_file_url
from ._walk import walk_keys
from ._worker import Worker
from ._writeop import StreamTemp, WriteOp, open_stream_temp

__all__ = ["LocalDriver"]

#: Keys fetched from the worker per trip while listing.
PAGE = 512


def _check_expiry(expires_at: float | None) -> None:
    # Before any I/O: a non-finite expiry would be metadata no reader accepts (the Store
    # checks TTLs too, but a driver may be called directly).
    if expires_at is not None and not math.isfinite(expires_at):
        raise ValueError(f"expires_at must be a finite number of seconds, got {expires_at!r}")


class LocalDriver:
    """Stores each key as a plain file under ``root``; safe across processes.

    Args:
        root: The folder holding the data; created (with its parents) on first use.
        durable: Flush every write to the disk before reporting success (fsync of the file
            and of its folder, batched across concurrent writers). ``False`` skips the
            flushes: a killed process still never leaves a partial value, but a power loss
            may lose recent writes. Suits caches.
        clock: Wall-clock seconds used for expiry (tests inject a manual clock).
        syncfs: Flush a group of concurrent durable writes with one ``syncfs()`` of the file
            system (Linux) instead of one ``fdatasync`` per file: several times faster, but
            it also waits for other programs' unwritten data on the same file system.

    Example:
        >>> driver = LocalDriver("./data")          # or LocalDriver.from_url("file:./data")
    """

    capabilities = (
        Capability.GET_MANY
        | Capability.SET_MANY
        | Capability.DELETE_MANY
        | Capability.CLEAR
        | Capability.STREAM
        | Capability.CONDITIONAL_GET
        | Capability.EXISTS
    )

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        durable: bool = True,
        clock: Callable[[], float] | None = None,
        syncfs: bool = True,
    ) -> None:
        self.root = Path(os.path.abspath(root))
        self.durable = durable
        self.clock: Callable[[], float] = clock or time.time
        self.name = f"file:{self.root}"
        self._root = Root(str(self.root), durable=durable, syncfs=syncfs)
        # The worker must not reference the driver, or an unclosed driver is never collected.
        self._worker = Worker(
            self._root,
            self.name,
            functools.partial(open_error, path=str(self.root), store=self.name),
        )
        self._closed = False

    @classmethod
    def from_url(cls, url: str, **options: Any) -> LocalDriver:
        """Open ``file:./relative``, ``file:relative``, ``file:///absolute`` or ``file:~/x``.

        Query options (``?durable=false&syncfs=false``) and keyword ``options`` (which
        win) go to the constructor.
        """
        path, query = parse_file_url(url)
        return cls(path, **{**query, **options})

    def __repr__(self) -> str:
        return f"LocalDriver({str(self.root)!r}, durable={self.durable})"

    def _check(self) -> None:
        if self._closed:
            raise StoreClosedError("the driver is closed", store=self.name)

    # -- reads -----------------------------------------------------------------------

    async def get(self, key: str) -> RawEntry | None:
        """Return the live entry for ``key``, or None if it is missing or expired."""
        self._check()
        result: RawEntry | None = await self._worker.call(
            _ops.get, self._root, key, self.clock(), self.name
        )
        return result

    async def get_many(self, keys: Sequence[str]) -> list[RawEntry | None]:
        """``get`` of each key, in one trip to the worker thread."""
        self._check()
        result: list[RawEntry | None] = await self._worker.call(
            _ops.get_many, self._root, list(keys), self.clock(), self.name
        )
        return result

    async def exists(self, key: str) -> bool:
        """True if ``key`` is live; a stat, the value is not read."""
        self._check()
        result: bool = await self._worker.call(
            _ops.exists, self._root, key, self.clock(), self.name
        )
        return result

    async def get_if_changed(self, key: str, etag: str) -> RawEntry | NotModified | None:
        """NOT_MODIFIED if ``key`` still has ``etag`` (nothing read), else the entry."""
        self._check()
        result: RawEntry | NotModified | None = await self._worker.call(
            _ops.get_if_changed, self._root, key, etag, self.clock(), self.name
        )
        return result

    async def keys(self, prefix: str = "") -> AsyncIterator[str]:
        """Yield every live key starting with ``prefix``, walking only folders under it."""
        self._check()
        now = self.clock()
        it = await self._worker.call(self._walk, prefix, now)
        try:
            while True:
                self._check()
                page: list[str] = await self._worker.call(_ops.take, it, PAGE, self.name)
                for key in page:
                    yield key
                if len(page) < PAGE:
                    return
        finally:
            self._worker.call_soon(it.close)

    def _walk(self, prefix: str, now: float, expired: bool = False) -> Any:
        # Created on the worker: the generator's first step opens folders.
        return walk_keys(self._root.fd, prefix, now, marked=self._root.exact_mtime, expired=expired)

    # -- writes ----------------------------------------------------------------------

    async def _commit(self, ops: list[WriteOp]) -> None:
        self._check()
        await self._worker.write(ops)

    async def set(
        self,
        key: str,
        value: bytes,
        *,
        expires_at: float | None = None,
        if_match: str | None = None,
        if_absent: bool = False,
    ) -> str:
        """Store ``value`` under ``key`` atomically and return its new etag."""
        _check_expiry(expires_at)
        op = WriteOp(
            key,
            value,
            now=self.clock(),
            expires_at=expires_at,
            if_match=if_match,
            if_absent=if_absent,
        )
        await self._commit([op])
        if op.error is not None:
            raise op.error
        assert isinstance(op.result, str)
        return op.result

    async def set_many(
        self, items: Sequence[tuple[str, bytes]], *, expires_at: float | None = None
    ) -> list[str]:
        """Store every item in one group commit; each write is atomic on its own."""
        _check_expiry(expires_at)
        now = self.clock()
        ops = [WriteOp(k, v, now=now, expires_at=expires_at) for k, v in items]
        await self._commit(ops)
        for op in ops:
            if op.error is not None:
                raise op.error
        return [str(op.result) for op in ops]

    async def delete(self, key: str, *, if_match: str | None = None) -> bool:
        """Remove ``key``; True if a live key was removed."""
        op = WriteOp(key, None, now=self.clock(), if_match=if_match, delete=True)
        await self._commit([op])
        if op.error is not None:
            raise op.error
        return op.result is True

    async def delete_many(self, keys: Sequence[str]) -> int:
        """Remove every key in one group commit; the number of live keys removed."""
        return await self._delete_all(list(keys))

    async def _delete_all(self, keys: list[str]) -> int:
        now = self.clock()
        ops = [WriteOp(k, None, now=now, delete=True) for k in keys]
        await self._commit(ops)
        for op in ops:
            if op.error is not None:
                raise op.error
        return sum(1 for op in ops if op.result is True)

    async def clear(self, prefix: str = "") -> int:
        """Delete every key starting with ``prefix``; the number of live keys removed."""
        count = 0
        batch: list[str] = []
        async for key in self.keys(prefix):
            batch.append(key)
            if len(batch) >= PAGE:
                count += await self._delete_all(batch)
                batch = []
        if batch:
            count += await self._delete_all(batch)
        return count

    async def purge_expired(self) -> int:
        """Delete the files of every expired key; returns how many were removed.

        Expired keys are already invisible; this only reclaims their disk space.
        """
        self._check()
        it = await self._worker.call(self._walk, "", self.clock(), True)
        count = 0
        try:
            while True:
                page: list[str] = await self._worker.call(_ops.take, it, PAGE, self.name)
                if page:
                    # Re-checked under the lock: a key rewritten meanwhile is kept.
                    count += await self._purge(page)
                if len(page) < PAGE:
                    return count
        finally:
            self._worker.call_soon(it.close)

    async def _purge(self, keys: list[str]) -> int:
        now = self.clock()
        ops = [WriteOp(k, None, now=now, delete=True, only_expired=True) for k in keys]
        await self._commit(ops)
        return sum(1 for op in ops if op.error is None and op.removed)

    # -- streams ---------------------------------------------------------------------

    async def read_stream(self, key: str, *, chunk_size: int = 1 << 16) -> AsyncIterator[bytes]:
        """Yield the value of ``key`` in chunks through aiofiles (bounded memory)."""
        import aiofiles

        self._check()
        fd: int | None = await self._worker.call(
            _ops.open_for_stream, self._root, key, self.clock(), self.name
        )
        if fd is None:
            raise KeyNotFoundError("the key does not exist", key=key, store=self.name)
        try:
            async with aiofiles.open(fd, "rb", buffering=0) as f:
                while chunk := await f.read(chunk_size):
                    yield chunk
        except OSError as exc:
            raise map_error(exc, key=key, store=self.name, action="reading") from exc

    async def write_stream(
        self, key: str, chunks: AsyncIterable[bytes], *, expires_at: float | None = None
    ) -> str:
        """Write chunks to a temp file through aiofiles, then commit it atomically."""
        import aiofiles

        _check_expiry(expires_at)
        self._check()
        try:
            temp: StreamTemp = await self._worker.call(open_stream_temp, self._root, key)
        except OSError as exc:
            raise map_error(exc, key=key, store=self.name, action="writing") from exc
        try:
            async with aiofiles.open(temp.fd, "wb", closefd=False) as f:
                async for chunk in chunks:
                    await f.write(chunk)
        except BaseException as exc:
            self._worker.call_soon(temp.discard)
            if isinstance(exc, OSError):
                raise map_error(exc, key=key, store=self.name, action="writing") from exc
            raise
        op = WriteOp(key, temp, now=self.clock(), expires_at=expires_at)
        await self._worker.write([op])
        if op.error is not None:
            raise op.error
        return str(op.result)

    # -- lifecycle -------------------------------------------------------------------

    async def aclose(self) -> None:
        """Finish queued work, release locks and descriptors. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._worker.started:
            with contextlib.suppress(OSError):
                await self._worker.stop()

    async def __aenter__(self) -> LocalDriver:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True) and self._worker.started:
            warnings.warn(f"unclosed {self!r}", ResourceWarning, stacklevel=2)
            self._worker.stop_soon()
