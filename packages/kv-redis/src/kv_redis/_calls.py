"""Send commands through an executor and turn failures into kv errors.

What is resent lives here (see the README): reads once after a broken connection,
NOSCRIPT replies as EVAL. Nothing else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from redis.exceptions import NoScriptError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ._errors import LostError, TransportError, to_kv_error
from ._exec import Executor
from ._mux import Command, Multiplexer

__all__ = ["Calls", "glob_escape"]

_SCAN_COUNT = 1000


def glob_escape(text: str) -> bytes:
    """``text`` escaped for a SCAN MATCH glob, so the store's prefix matches literally."""
    out = text.encode()
    for ch in (b"\\", b"*", b"?", b"[", b"]"):
        out = out.replace(ch, b"\\" + ch)
    return out


class Calls:
    """The driver's way to the server: routing, resending rules and error mapping.

    Args:
        executor: Where commands go (one node or a cluster).
        name: The driver's redacted name, for error messages.
    """

    def __init__(self, executor: Executor, name: str) -> None:
        self._exec = executor
        self._name = name

    async def one(
        self,
        rk: bytes,
        command: Command,
        *,
        key: str | None,
        write: bool,
        fallback: Command | None = None,
    ) -> Any:
        """Reply to ``command`` about Redis key ``rk`` (the kv ``key`` names it in errors).

        ``fallback`` (an EVAL) is sent instead if the server answers NOSCRIPT.
        """
        resent = False
        while True:
            try:
                return await self._exec.call(rk, command)
            except NoScriptError as exc:
                if fallback is None:
                    raise to_kv_error(exc, key=key, store=self._name, write=write) from exc
                command, fallback = fallback, None  # EVAL also re-caches the script
            except LostError as exc:
                # Reads are resent once after a broken connection (not after a timeout:
                # a stalled server would only make the caller wait twice).
                if write or resent or isinstance(exc.cause, RedisTimeoutError):
                    raise to_kv_error(exc, key=key, store=self._name, write=write) from exc.cause
                resent = True
            except TransportError as exc:
                raise to_kv_error(exc, key=key, store=self._name, write=write) from exc.cause
            except (RedisError, OSError) as exc:
                raise to_kv_error(exc, key=key, store=self._name, write=write) from exc

    async def many(
        self,
        items: Sequence[tuple[bytes, Command]],
        *,
        write: bool,
        fallback: Callable[[int], Command] | None = None,
    ) -> list[Any]:
        """Replies to ``items`` (error replies as values); NOSCRIPT replies are resent."""
        try:
            try:
                replies = await self._exec.call_many(items)
            except LostError:
                if write:
                    raise
                replies = await self._exec.call_many(items)  # reads: resend once
            missing = [i for i, r in enumerate(replies) if isinstance(r, NoScriptError)]
            if missing and fallback is not None:
                again = await self._exec.call_many([(items[i][0], fallback(i)) for i in missing])
                for i, reply in zip(missing, again, strict=False):
                    replies[i] = reply
        except TransportError as exc:
            raise to_kv_error(exc, key=None, store=self._name, write=write) from exc.cause
        except (RedisError, OSError) as exc:
            raise to_kv_error(exc, key=None, store=self._name, write=write) from exc
        return replies

    async def _scan_page(self, mux: Multiplexer, cursor: bytes, pattern: bytes) -> Any:
        command = ("SCAN", cursor, "MATCH", pattern, "COUNT", _SCAN_COUNT)
        for attempt in (0, 1):
            try:
                return await mux.execute(command)
            except LostError as exc:
                if attempt or isinstance(exc.cause, RedisTimeoutError):
                    raise to_kv_error(exc, key=None, store=self._name, write=False) from exc.cause
            except TransportError as exc:
                raise to_kv_error(exc, key=None, store=self._name, write=False) from exc.cause
            except (RedisError, OSError) as exc:
                raise to_kv_error(exc, key=None, store=self._name, write=False) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def scan_pages(self, prefix: str) -> AsyncIterator[list[bytes]]:
        """Pages of raw Redis keys starting with ``prefix``, from every primary."""
        pattern = glob_escape(prefix) + b"*"
        try:
            targets = await self._exec.scan_targets()
        except TransportError as exc:
            raise to_kv_error(exc, key=None, store=self._name, write=False) from exc.cause
        for mux in targets:
            cursor = b"0"
            while True:
                cursor, page = await self._scan_page(mux, cursor, pattern)
                if page:
                    yield page
                if cursor in (b"0", 0):
                    break
