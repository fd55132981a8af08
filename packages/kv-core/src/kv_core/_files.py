"""Async files over a key's bytes: ``Store.open(key, mode)`` (DESIGN §10).

What aiofs users do, with kv's guarantees: written data becomes visible all at once when the
``async with`` block exits cleanly and never when it raises; ``xb``, ``ab`` and ``r+b``
commit with a condition (created only / nobody wrote the key since it was opened).

Memory: ``rb`` reads chunk by chunk on drivers that stream; ``wb`` spools what is written
(in memory up to :data:`SPOOL_IN_MEMORY`, then in an anonymous temporary file) and hands it
to the driver's streaming upload. ``xb``, ``ab`` and ``r+b`` commit through one conditional
write, so they hold the whole file when they commit.
"""

from __future__ import annotations

import asyncio
import io
import tempfile
from collections.abc import AsyncIterator
from types import TracebackType
from typing import IO, Any, cast

from ._driver import Capability, Driver
from ._errors import KeyNotFoundError

__all__ = ["MODES", "SPOOL_IN_MEMORY", "KVFile"]

MODES = frozenset({"rb", "wb", "xb", "ab", "r+b"})
#: Bytes a written file keeps in memory before it spills to a temporary file.
SPOOL_IN_MEMORY = 1 << 20
_CHUNK = 256 * 1024


class _Spool:
    """An append-only byte buffer: memory up to a limit, then a temporary file (off-loop)."""

    def __init__(self) -> None:
        self._memory = bytearray()
        self._file: IO[bytes] | None = None
        self.size = 0

    async def append(self, data: bytes) -> None:
        self.size += len(data)
        if self._file is None:
            self._memory += data
            if len(self._memory) <= SPOOL_IN_MEMORY:
                return
            self._file = await asyncio.to_thread(tempfile.TemporaryFile)
            data, self._memory = bytes(self._memory), bytearray()
        await asyncio.to_thread(self._file.write, data)

    async def chunks(self) -> AsyncIterator[bytes]:
        if self._file is None:
            view = bytes(self._memory)
            for i in range(0, len(view), _CHUNK):
                yield view[i : i + _CHUNK]
            return
        f = self._file
        await asyncio.to_thread(f.seek, 0)
        while chunk := await asyncio.to_thread(f.read, _CHUNK):
            yield chunk

    async def whole(self) -> bytes:
        return b"".join([c async for c in self.chunks()])

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._memory = bytearray()


class KVFile:
    """An async file over the raw bytes of one key; made by :meth:`Store.open`.

    Use it as ``async with store.open(key, mode) as f``. I/O methods (``read``,
    ``readline``, ``write``) are awaited; ``seek`` and ``tell`` are plain, with ``io``'s
    meanings. Iterating (``async for line in f``) yields lines, as a binary file does.
    """

    def __init__(
        self,
        driver: Driver,
        key: str,
        mode: str,
        *,
        expires_at: float | None = None,
        keep_expiry: bool = False,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {sorted(MODES)}, not {mode!r}")
        self._driver = driver
        self._key = key
        self.mode = mode
        self._expires_at = expires_at
        self._keep_expiry = keep_expiry  # ab / r+b without ttl=: the key keeps its expiry
        self._etag: str | None = None  # what ab / r+b opened, for the commit's if_match
        self._pos = 0
        self._closed = False
        self._started = False
        # rb: the current stream and what is left of its last chunk (or all of the bytes)
        self._stream: AsyncIterator[bytes] | None = None
        self._pending = b""
        self._stream_pos = 0
        self._whole: bytes | None = None
        # r+b: the whole file, editable in place
        self._buffer: bytearray | None = None
        # wb / xb / ab: what will be committed
        self._spool: _Spool | None = None

    @property
    def name(self) -> str:
        """The key (with the store's namespace prefix)."""
        return self._key

    @property
    def closed(self) -> bool:
        """True once the file was committed or discarded."""
        return self._closed

    def readable(self) -> bool:
        """True for ``rb`` and ``r+b``."""
        return self.mode in ("rb", "r+b")

    def writable(self) -> bool:
        """True for every mode but ``rb``."""
        return self.mode != "rb"

    def seekable(self) -> bool:
        """True for ``rb`` and ``r+b`` (written files grow at their end)."""
        return self.readable()

    # -- opening and closing ---------------------------------------------------------------

    async def _start(self) -> KVFile:
        if self._started:
            return self
        self._started = True
        mode, driver, key = self.mode, self._driver, self._key
        if mode == "rb":
            if driver.capabilities & Capability.STREAM:
                await self._restart_stream()
            else:
                entry = await driver.get(key)
                if entry is None:
                    raise KeyNotFoundError("no such key", key=key, store=driver.name)
                self._whole = entry.value
        elif mode == "r+b":
            entry = await driver.get(key)
            if entry is None:
                raise KeyNotFoundError("no such key", key=key, store=driver.name)
            self._etag = entry.etag
            if self._keep_expiry:
                self._expires_at = entry.expires_at
            self._buffer = bytearray(entry.value)
        else:
            self._spool = _Spool()
            if mode == "ab":
                entry = await driver.get(key)
                if entry is not None:
                    self._etag = entry.etag
                    if self._keep_expiry:
                        self._expires_at = entry.expires_at
                    await self._spool.append(entry.value)
                    self._pos = len(entry.value)
        return self

    def __await__(self) -> Any:
        return self._start().__await__()

    async def __aenter__(self) -> KVFile:
        return await self._start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            await self.close()
        else:
            self.discard()

    def discard(self) -> None:
        """Close without writing anything (what an exception in the block does)."""
        self._closed = True
        if self._spool is not None:
            self._spool.close()
        self._buffer = None
        self._stream = None

    async def close(self) -> None:
        """Commit what was written (atomically, with the mode's condition) and close."""
        if self._closed:
            return
        try:
            await self._commit()
        finally:
            self.discard()

    async def _commit(self) -> None:
        driver, key, mode = self._driver, self._key, self.mode
        if mode == "rb":
            return
        if mode == "r+b":
            assert self._buffer is not None
            await driver.set(
                key, bytes(self._buffer), expires_at=self._expires_at, if_match=self._etag
            )
            return
        spool = self._spool
        assert spool is not None
        if mode == "wb" and driver.capabilities & Capability.STREAM:
            await cast(Any, driver).write_stream(key, spool.chunks(), expires_at=self._expires_at)
            return
        data = await spool.whole()
        if mode == "wb":
            await driver.set(key, data, expires_at=self._expires_at)
        elif mode == "xb" or self._etag is None:  # xb, or ab on a key that was missing
            await driver.set(key, data, expires_at=self._expires_at, if_absent=True)
        else:
            await driver.set(key, data, expires_at=self._expires_at, if_match=self._etag)

    def _check(self, reading: bool) -> None:
        if self._closed:
            raise ValueError("I/O operation on closed file")
        if not self._started:
            raise ValueError("the file is not open yet: use 'async with store.open(...)'")
        if reading and not self.readable():
            raise io.UnsupportedOperation(f"not readable (mode {self.mode!r})")
        if not reading and not self.writable():
            raise io.UnsupportedOperation(f"not writable (mode {self.mode!r})")

    # -- reading ---------------------------------------------------------------------------

    async def _restart_stream(self) -> None:
        stream = cast(Any, self._driver).read_stream(self._key, chunk_size=_CHUNK)
        self._stream = aiter(stream)
        self._stream_pos = 0
        try:
            self._pending = await anext(self._stream)  # a missing key fails here, at open
        except StopAsyncIteration:
            self._pending = b""
            self._stream = None

    async def _take(self, size: int, *, until_newline: bool = False) -> bytes:
        """Up to ``size`` bytes (all if negative) from the position, for rb."""
        if self._whole is not None:
            end = len(self._whole) if size < 0 else self._pos + size
            if until_newline:
                nl = self._whole.find(b"\n", self._pos, end)
                end = nl + 1 if nl >= 0 else min(end, len(self._whole))
            data = self._whole[self._pos : end]
            self._pos += len(data)
            return data
        if self._stream_pos > self._pos:  # a seek backwards: read again from the start
            await self._restart_stream()
        while self._stream_pos < self._pos:  # a seek forwards: skip
            if not self._pending and not await self._refill():
                return b""
            skip = min(len(self._pending), self._pos - self._stream_pos)
            self._pending = self._pending[skip:]
            self._stream_pos += skip
        parts: list[bytes] = []
        got = 0
        while size < 0 or got < size:
            if not self._pending and not await self._refill():
                break
            want = len(self._pending) if size < 0 else min(len(self._pending), size - got)
            if until_newline:
                nl = self._pending.find(b"\n", 0, want)
                if nl >= 0:
                    want = nl + 1
            piece, self._pending = self._pending[:want], self._pending[want:]
            parts.append(piece)
            got += len(piece)
            if until_newline and piece.endswith(b"\n"):
                break
        self._stream_pos += got
        self._pos += got
        return b"".join(parts)

    async def _refill(self) -> bool:
        if self._stream is None:
            return False
        try:
            self._pending = await anext(self._stream)
        except StopAsyncIteration:
            self._stream = None
            return False
        return True

    async def read(self, size: int = -1) -> bytes:
        """Read up to ``size`` bytes (everything left if negative) from the position."""
        self._check(reading=True)
        if self._buffer is not None:
            end = len(self._buffer) if size < 0 else self._pos + size
            data = bytes(self._buffer[self._pos : end])
            self._pos += len(data)
            return data
        return await self._take(size)

    async def readline(self, size: int = -1) -> bytes:
        """Read one line, its ``\\n`` included (at most ``size`` bytes if given)."""
        self._check(reading=True)
        if self._buffer is not None:
            end = len(self._buffer) if size < 0 else self._pos + size
            nl = self._buffer.find(b"\n", self._pos, end)
            stop = nl + 1 if nl >= 0 else min(end, len(self._buffer))
            data = bytes(self._buffer[self._pos : stop])
            self._pos += len(data)
            return data
        return await self._take(size, until_newline=True)

    def __aiter__(self) -> KVFile:
        return self

    async def __anext__(self) -> bytes:
        line = await self.readline()
        if not line:
            raise StopAsyncIteration
        return line

    # -- writing and positioning -----------------------------------------------------------

    async def write(self, data: bytes | bytearray | memoryview) -> int:
        """Write ``data`` at the position (at the end for wb, xb, ab); return its length."""
        self._check(reading=False)
        chunk = bytes(data)
        if self._buffer is not None:  # r+b: overwrite in place, growing at the end
            end = self._pos + len(chunk)
            if self._pos > len(self._buffer):
                self._buffer.extend(b"\0" * (self._pos - len(self._buffer)))
            self._buffer[self._pos : end] = chunk
            self._pos = end
            return len(chunk)
        assert self._spool is not None
        await self._spool.append(chunk)
        self._pos = self._spool.size
        return len(chunk)

    async def flush(self) -> None:
        """Nothing to do: data is committed when the file is closed."""
        self._check(reading=self.readable())

    def tell(self) -> int:
        """The current position."""
        if self._closed:
            raise ValueError("I/O operation on closed file")
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move the position (``io.SEEK_SET``, ``SEEK_CUR``; ``SEEK_END`` where the size is
        known: r+b and rb on drivers that do not stream); return it."""
        if self._closed:
            raise ValueError("I/O operation on closed file")
        if not self.seekable():
            raise io.UnsupportedOperation(f"not seekable (mode {self.mode!r})")
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            known = self._buffer if self._buffer is not None else self._whole
            if known is None:
                raise io.UnsupportedOperation("SEEK_END on a streamed file: its size is unknown")
            pos = len(known) + offset
        else:
            raise ValueError(f"invalid whence ({whence})")
        if pos < 0:
            raise ValueError(f"negative seek position {pos}")
        self._pos = pos
        return pos
