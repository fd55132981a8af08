"""Timeout: reads and writes with a deadline, and an error that says what a late write means."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Sequence
from typing import Any, TypeVar

from .. import _driver_ops as _ops
from .._driver import Driver, NotModified, RawEntry
from .._errors import BackendUnavailableError, OutcomeUnknownError
from ._base import Middleware
from ._watchdog import Watchdog

__all__ = ["Timeout"]

U = TypeVar("U")


def _positive(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be positive seconds or None, got {value!r}")
    if value == float("inf"):
        return None
    return float(value)


class Timeout(Middleware):
    """Gives reads and writes a deadline.

    - A read past ``read`` seconds raises BackendUnavailableError (nothing changed, so it
      is safe to retry: Retry above this layer will).
    - A write past ``write`` seconds raises OutcomeUnknownError: it was sent and may have
      landed, so it is never reported as failed and never retried blindly.

    The late call is cancelled, at most a tenth of the shortest deadline after it passed
    (deadlines are checked by one timer per event loop, which keeps the layer's cost per
    call under a microsecond instead of a timer per call). Listings and streams are
    bounded per step, not whole: each page of ``keys()``, each chunk of ``read_stream``,
    and each chunk a ``write_stream`` hands to the backend must come within the deadline
    (time spent by the caller producing or consuming chunks does not count). Batches and
    ``clear`` are one call each and get one deadline. ``aclose`` has none.

    Args:
        inner: The wrapped driver.
        read: Seconds for a read (``get``, ``exists``, batches of reads, a listing step),
            or None for no deadline.
        write: Seconds for a write (``set``, ``delete``, batches of writes, ``clear``), or
            None for no deadline.
    """

    def __init__(
        self, inner: Driver, *, read: float | None = None, write: float | None = None
    ) -> None:
        super().__init__(inner)
        self.read = _positive("read", read)
        self.write = _positive("write", write)
        shortest = min([t for t in (self.read, self.write) if t is not None], default=1.0)
        # Deadlines are checked every tenth of the shortest one (at least every 1 ms):
        # a late call is cancelled at most 10% after its deadline.
        self._watchdog = Watchdog(max(0.001, shortest / 10))

    def __repr__(self) -> str:
        return f"Timeout({self.inner!r}, read={self.read}, write={self.write})"

    def _late_read(self, what: str, key: str | None, exc: BaseException) -> BackendUnavailableError:
        err = BackendUnavailableError(
            f"{what} took longer than {self.read}s", key=key, store=self.name
        )
        err.__cause__ = exc
        return err

    def _late_write(self, what: str, key: str | None, exc: BaseException) -> OutcomeUnknownError:
        err = OutcomeUnknownError(
            f"{what} took longer than {self.write}s and may or may not have happened",
            key=key,
            store=self.name,
        )
        err.__cause__ = exc
        return err

    async def _read(self, what: str, key: str | None, call: Awaitable[U]) -> U:
        if self.read is None:
            return await call
        try:
            return await self._watchdog.run(self.read, call)
        except asyncio.TimeoutError as exc:
            raise self._late_read(what, key, exc) from exc

    async def _write(self, what: str, key: str | None, call: Awaitable[U]) -> U:
        if self.write is None:
            return await call
        try:
            return await self._watchdog.run(self.write, call)
        except asyncio.TimeoutError as exc:
            raise self._late_write(what, key, exc) from exc

    # -- reads ---------------------------------------------------------------------------

    async def get(self, key: str) -> RawEntry | None:
        """Read ``key`` within ``read`` seconds."""
        return await self._read("get", key, self.inner.get(key))

    async def get_many(self, keys: Sequence[str]) -> list[RawEntry | None]:
        """Read ``keys`` within ``read`` seconds."""
        return await self._read("get_many", None, _ops.get_many(self.inner, keys))

    async def exists(self, key: str) -> bool:
        """Check ``key`` within ``read`` seconds."""
        return await self._read("exists", key, _ops.exists(self.inner, key))

    async def get_value(self, key: str) -> bytes | None:
        """Read ``key``'s value within ``read`` seconds."""
        return await self._read("get", key, _ops.get_value(self.inner, key))

    async def get_values(self, keys: Sequence[str]) -> list[bytes | None]:
        """Read ``keys``' values within ``read`` seconds."""
        return await self._read("get_many", None, _ops.get_values(self.inner, keys))

    async def get_if_changed(self, key: str, etag: str) -> RawEntry | NotModified | None:
        """Revalidate ``key`` within ``read`` seconds."""
        return await self._read("get", key, _ops.get_if_changed(self.inner, key, etag))

    async def keys(self, prefix: str = "") -> AsyncIterator[str]:
        """Yield keys; each step of the listing within ``read`` seconds."""
        async for key in self._steps("keys", prefix, self.inner.keys(prefix)):
            yield key

    async def read_stream(self, key: str, *, chunk_size: int = 256 * 1024) -> AsyncIterator[bytes]:
        """Yield chunks, each within ``read`` seconds."""
        async for chunk in self._steps(
            "read_stream", key, _ops.read_stream(self.inner, key, chunk_size)
        ):
            yield chunk

    async def _steps(self, what: str, key: str, source: AsyncIterator[U]) -> AsyncIterator[U]:
        it = source.__aiter__()
        try:
            while True:
                try:
                    item = await self._read(what, key, it.__anext__())
                except StopAsyncIteration:
                    return
                yield item
        finally:
            close = getattr(it, "aclose", None)
            if close is not None:
                await close()

    # -- writes --------------------------------------------------------------------------

    async def set(
        self,
        key: str,
        value: bytes,
        *,
        expires_at: float | None = None,
        if_match: str | None = None,
        if_absent: bool = False,
    ) -> str:
        """Write within ``write`` seconds, else OutcomeUnknownError."""
        return await self._write(
            "set",
            key,
            self.inner.set(
                key, value, expires_at=expires_at, if_match=if_match, if_absent=if_absent
            ),
        )

    async def delete(self, key: str, *, if_match: str | None = None) -> bool:
        """Delete within ``write`` seconds, else OutcomeUnknownError."""
        return await self._write("delete", key, self.inner.delete(key, if_match=if_match))

    async def set_many(
        self, items: Sequence[tuple[str, bytes]], *, expires_at: float | None = None
    ) -> Sequence[str]:
        """Write the batch within ``write`` seconds, else OutcomeUnknownError."""
        return await self._write("set_many", None, _ops.set_many(self.inner, items, expires_at))

    async def delete_many(self, keys: Sequence[str]) -> int:
        """Delete the batch within ``write`` seconds, else OutcomeUnknownError."""
        return await self._write("delete_many", None, _ops.delete_many(self.inner, keys))

    async def clear(self, prefix: str = "") -> int:
        """Clear within ``write`` seconds, else OutcomeUnknownError."""
        return await self._write("clear", prefix, _ops.clear(self.inner, prefix))

    async def write_stream(
        self, key: str, chunks: AsyncIterable[bytes], *, expires_at: float | None = None
    ) -> str:
        """Stream a write; OutcomeUnknownError if the backend makes no progress in time.

        The deadline restarts whenever the backend takes a chunk, and is paused while this
        layer waits for the caller's next chunk.
        """
        if self.write is None:
            return await _ops.write_stream(self.inner, key, chunks, expires_at)
        loop = asyncio.get_running_loop()
        state: dict[str, Any] = {"last": loop.time(), "caller": False}

        async def feed() -> AsyncIterator[bytes]:
            it = chunks.__aiter__()
            while True:
                state["caller"] = True
                try:
                    chunk = await it.__anext__()
                except StopAsyncIteration:
                    return
                finally:
                    state["caller"] = False
                    state["last"] = loop.time()
                yield chunk
                state["last"] = loop.time()  # the backend asked for the next one: progress

        task = asyncio.ensure_future(_ops.write_stream(self.inner, key, feed(), expires_at))
        try:
            while True:
                left = self.write if state["caller"] else state["last"] + self.write - loop.time()
                if left > 0:
                    await asyncio.wait({task}, timeout=left)
                if task.done():
                    return task.result()
                if not state["caller"] and loop.time() - state["last"] >= self.write:
                    task.cancel()
                    await asyncio.wait({task})
                    if not task.cancelled() and task.exception() is None:
                        return task.result()  # it finished as it was cancelled
                    raise self._late_write("write_stream", key, asyncio.TimeoutError())
        finally:
            if not task.done():  # we were cancelled ourselves
                task.cancel()
