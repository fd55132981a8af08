"""The commands of the ``kv`` command line (see :mod:`kv_core._cli` for parsing and exits).

Every command works on raw bytes through ``store.with_codec(BYTES)``: what ``get`` prints
is exactly what is stored. ``set`` stores JSON as the JSON codec would (compact UTF-8), so a
value set from the shell and the same value set from Python are the same bytes with the same
etag; a bare word on the command line is a string, and ``--raw`` stores bytes unchecked.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from typing import IO, Any

from ._codecs import BYTES
from ._errors import KeyNotFoundError, KVError, PreconditionFailedError
from ._registry import Registry
from ._store import Store

__all__ = ["BadDataError", "UsageError", "load_input", "run_command"]

_BOM = b"\xef\xbb\xbf"
_JSON_WHITESPACE = b" \t\r\n"
#: First bytes of a command-line value that must then be valid JSON (not a bare word).
_STARTS_JSON = frozenset(b'{["-0123456789')
#: How many keys 'copy' moves at once (bounds memory and backend concurrency).
_COPY_BATCH = 64
_PROGRESS_EVERY = 0.1  # seconds between progress redraws on a terminal


class UsageError(KVError):
    """The command line asked for something impossible (e.g. a store URL with no scheme)."""


class BadDataError(KVError):
    """Data the command cannot handle as asked.

    A value given to ``set``, or stored bytes read by ``get``, that are not UTF-8 JSON; a
    key holding NUL in a ``keys -0`` listing.
    """


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"the number {text} is out of range")
    return value


def _parse_json(data: bytes) -> tuple[object, str | None]:
    """``(value, None)`` if ``data`` is strict UTF-8 JSON, else ``(None, why not)``."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})"
    if not text.strip():
        return None, "empty input"
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float), None
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        return None, str(exc)


def _check_json(data: bytes) -> str | None:
    """Return why ``data`` is not strict UTF-8 JSON, or None if it is."""
    return _parse_json(data)[1]


def _compact(value: object) -> bytes:
    """JSON text as the JSON codec writes it (compact, UTF-8), so both faces agree."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _stdout_bytes(data: bytes) -> None:
    out: IO[str] = sys.stdout
    buffer = getattr(out, "buffer", None)
    if buffer is None:  # a text-only stream replaced sys.stdout
        out.write(data.decode("utf-8", "surrogateescape"))
        return
    out.flush()  # keep anything already printed in order
    buffer.write(data)
    buffer.flush()


def load_input(args: argparse.Namespace) -> None:
    """Read and check the value of ``kv set`` (before any event loop runs).

    Sets ``args.data`` to the bytes to store.

    Raises:
        BadDataError: The value is not UTF-8 JSON.
    """
    if args.value != "-":
        # argv was decoded with surrogateescape: this gives back the exact bytes typed.
        data = args.value.encode("utf-8", "surrogateescape")
    else:
        stdin = sys.stdin
        if stdin.isatty():
            print("kv: reading the value from stdin (end with Ctrl-D)", file=sys.stderr)
        buffer = getattr(stdin, "buffer", None)
        data = buffer.read() if buffer is not None else stdin.read().encode("utf-8")
    if args.raw:
        args.data = data
        return
    if args.string:
        try:
            args.data = _compact(data.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise BadDataError(f"the value for key {args.key!r} is not UTF-8: {exc}") from None
        return
    data = data.removeprefix(_BOM).strip(_JSON_WHITESPACE)
    value, problem = _parse_json(data)
    if problem is None:
        args.data = _compact(value)
    elif args.value != "-" and data and data[0] not in _STARTS_JSON and _is_utf8(data):
        # A bare word on the command line ('kv set greeting hello') is a string; text that
        # starts like an object, array, string or number must be valid JSON (a typo, or
        # 007, is an error rather than a silently different value).
        args.data = _compact(data.decode("utf-8"))
    else:
        hint = "; to store it as a string, use --string" if args.value != "-" else ""
        raise BadDataError(f"the value for key {args.key!r} is not JSON: {problem}{hint}")


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _open(registry: Registry, url: str) -> Store[bytes]:
    try:
        return registry.open_store(url, codec=BYTES)
    except KVError:
        raise
    except ValueError as exc:  # no scheme, or a URL the driver refuses
        raise UsageError(f"cannot open store {url!r}: {exc}") from exc


async def run_command(args: argparse.Namespace, registry: Registry) -> int:
    """Run the parsed command and return its exit code; kv errors propagate."""
    if args.command == "copy":
        return await _copy(args, registry)
    async with _open(registry, args.store) as store:
        handler = _HANDLERS[args.command]
        return await handler(store, args)


async def _get(store: Store[bytes], args: argparse.Namespace) -> int:
    entry = await store.get_entry(args.key)
    if args.raw:
        _stdout_bytes(entry.value)
        return 0
    problem = _check_json(entry.value)
    if problem is not None:
        raise BadDataError(
            f"the stored value is not UTF-8 JSON ({problem}); "
            "it was probably written with another codec: use 'kv get --raw'",
            key=args.key,
            store=store.driver.name,
        )
    value = entry.value.strip(_JSON_WHITESPACE)
    if args.entry:
        ttl = None if entry.expires_at is None else _remaining(store, entry.expires_at)
        head = json.dumps(
            {"key": entry.key, "etag": entry.etag, "expires_at": entry.expires_at, "ttl": ttl},
            ensure_ascii=False,
        )
        # Splice the stored JSON in verbatim rather than re-encoding it.
        value = head[:-1].encode("utf-8") + b', "value": ' + value + b"}"
    _stdout_bytes(value + b"\n")
    return 0


async def _set(store: Store[bytes], args: argparse.Namespace) -> int:
    await store.set(
        args.key, args.data, ttl=args.ttl, if_match=args.if_match, if_absent=args.if_absent
    )
    return 0


async def _delete(store: Store[bytes], args: argparse.Namespace) -> int:
    if await store.delete(args.key, if_match=args.if_match) or args.missing_ok:
        return 0
    raise KeyNotFoundError("no such key", key=args.key, store=store.driver.name)


async def _exists(store: Store[bytes], args: argparse.Namespace) -> int:
    found = await store.exists(args.key)
    print("true" if found else "false")
    return 0 if found else 1


async def _keys(store: Store[bytes], args: argparse.Namespace) -> int:
    # Lines are for people; -0 is safe for every key but those holding NUL; --json
    # (one JSON string per line) is exact for every key.
    encode: Callable[[str], bytes | None]
    if args.json:
        encode = _json_line
    elif args.null:
        encode = _nul_terminated
    else:
        encode = _line
    warned = False
    unlisted = 0
    chunk: list[bytes] = []
    async for key in store.keys(args.prefix):
        item = encode(key)
        if item is None:  # NUL in a key: -0 cannot write it unambiguously
            unlisted += 1
            print(f"kv: not listed, holds NUL (use 'kv keys --json'): {key!r}", file=sys.stderr)
            continue
        if not warned and encode is _line and "\n" in key:
            warned = True
            print("kv: a key holds a newline; list keys with -0 or --json", file=sys.stderr)
        chunk.append(item)
        if len(chunk) >= 256:  # one write per key would be slow on long listings
            _stdout_bytes(b"".join(chunk))
            chunk = []
    if chunk:
        _stdout_bytes(b"".join(chunk))
    if unlisted:
        raise BadDataError(f"{unlisted} key(s) holding NUL were left out of the -0 listing")
    return 0


def _line(key: str) -> bytes:
    return key.encode("utf-8") + b"\n"


def _nul_terminated(key: str) -> bytes | None:
    return None if "\0" in key else key.encode("utf-8") + b"\0"


def _json_line(key: str) -> bytes:
    return json.dumps(key, ensure_ascii=False).encode("utf-8") + b"\n"


def _remaining(store: Store[Any], expires_at: float) -> float:
    return round(max(0.0, expires_at - store.driver.clock()), 3)


async def _ttl(store: Store[bytes], args: argparse.Namespace) -> int:
    seconds = await store.ttl(args.key)
    print("null" if seconds is None else json.dumps(round(seconds, 3)))
    return 0


_HANDLERS = {
    "get": _get,
    "set": _set,
    "delete": _delete,
    "exists": _exists,
    "keys": _keys,
    "ttl": _ttl,
}


class _Progress:
    """A one-line counter on stderr, redrawn at most every 0.1 s, only on a terminal."""

    def __init__(self) -> None:
        self.stream = sys.stderr
        self.enabled = self.stream.isatty()
        self.started = self.drawn = time.monotonic()
        self.width = 0

    def show(self, copied: int, skipped: int, *, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self.drawn < _PROGRESS_EVERY):
            return
        self.drawn = now
        rate = copied / max(now - self.started, 1e-3)
        text = f"copying: {copied} keys" + (f", {skipped} skipped" if skipped else "")
        text += f" ({rate:,.0f} keys/s)"
        self.stream.write("\r" + text.ljust(self.width))
        self.stream.flush()
        self.width = len(text)

    def close(self, copied: int, skipped: int) -> None:
        if self.enabled:
            self.show(copied, skipped, force=True)
            self.stream.write("\r" + " " * self.width + "\r")  # leave the line clean
            self.stream.flush()


async def _copy(args: argparse.Namespace, registry: Registry) -> int:
    async with _open(registry, args.src) as src, _open(registry, args.dst) as dst:
        copier = _Copier(src, dst, no_clobber=args.no_clobber)
        batch: list[str] = []
        try:
            async for key in src.keys(args.prefix):
                batch.append(key)
                if len(batch) >= _COPY_BATCH:
                    await copier.copy(batch)
                    batch = []
            if batch:
                await copier.copy(batch)
        finally:
            copier.progress.close(copier.copied, copier.skipped)
    copied, skipped = copier.copied, copier.skipped
    tail = f", skipped {skipped} that already existed" if args.no_clobber else ""
    print(f"copied {copied} key{'' if copied == 1 else 's'}{tail}")
    return 0


class _Copier:
    """Copies batches of keys from ``src`` to ``dst``, keeping each key's remaining TTL."""

    def __init__(self, src: Store[bytes], dst: Store[bytes], *, no_clobber: bool) -> None:
        self.src = src
        self.dst = dst
        self.no_clobber = no_clobber
        self.copied = 0
        self.skipped = 0
        self.progress = _Progress()

    async def copy(self, keys: list[str]) -> None:
        """Copy ``keys`` concurrently, then redraw the progress line."""
        await asyncio.gather(*(self._one(k) for k in keys))
        self.progress.show(self.copied, self.skipped)

    async def _one(self, key: str) -> None:
        try:
            entry = await self.src.get_entry(key)
        except KeyNotFoundError:
            return  # deleted or expired since it was listed: nothing to copy
        ttl = None
        if entry.expires_at is not None:
            # Remaining seconds in the source's clock become a TTL in the destination's.
            ttl = entry.expires_at - self.src.driver.clock()
            if ttl <= 0:
                return
        try:
            await self.dst.set(key, entry.value, ttl=ttl, if_absent=self.no_clobber)
        except PreconditionFailedError:
            self.skipped += 1
            return
        self.copied += 1
