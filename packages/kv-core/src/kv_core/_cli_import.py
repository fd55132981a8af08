"""``kv import FORMAT SOURCE``: bring the data of another library into a kv store.

The source readers (:mod:`kv_core._import_files`, :mod:`kv_core._import_pykv`) yield each
entry with the key it becomes, its value in kv's plain form and its expiry; this module
writes them with kv's JSON codec, keeping the time each had left (an entry already expired
is skipped and counted), a few at a time, with a progress line on a terminal and the counts
of keys read, written and skipped at the end. ``--dry-run`` reads and checks everything and
writes nothing. Nothing is ever written to the source.

Optional libraries (redis-py, azure-storage-blob) are imported only by the sources that need
them, so kv-core itself stays standard library only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from typing import Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

from ._cli_commands import UsageError, _open
from ._codecs import JSON
from ._errors import InvalidKeyError, SerializationError, ValueTooLargeError
from ._import_common import Found
from ._keys import validate_key
from ._registry import Registry
from ._store import Store

__all__ = ["FORMATS", "run_import"]

#: FORMAT -> what SOURCE is, for ``kv import --help``.
FORMATS: dict[str, str] = {
    "aiokv": "FILE: aiokv's JSON state file",
    "asyncblobdict": "DIR (the folder of one container) or azure://CONTAINER",
    "py-key-value": "redis://… (RedisStore) or DIR (a DiskStore or FileTreeStore folder)",
}

_BATCH = 64  # entries written concurrently
_PROGRESS_EVERY = 0.1  # seconds between progress redraws on a terminal
_EXAMPLES = 5  # skipped entries named on stderr per reason


class _Source(Protocol):
    description: str

    def entries(self) -> AsyncIterator[Found]: ...

    async def aclose(self) -> None: ...


def _source(fmt: str, source: str) -> _Source:
    if fmt == "aiokv":
        from ._import_files import AiokvSource

        return AiokvSource(source)
    if fmt == "asyncblobdict":
        from ._import_files import blobdict_source

        return blobdict_source(source)
    if fmt == "py-key-value":
        from ._import_pykv import pykv_source

        return pykv_source(source)
    raise UsageError(f"unknown format {fmt!r} (one of: {', '.join(FORMATS)})")


def _local_path(url: str) -> str | None:
    """The path a ``file:``/``sqlite:`` store URL names (as kv-local reads it), else None."""
    scheme, sep, rest = url.partition(":")
    if not sep or scheme.lower() not in ("file", "sqlite"):
        return None
    rest = rest.partition("?")[0].partition("#")[0]
    if rest.startswith("//"):
        rest = "/" + rest[2:].partition("/")[2]
    return os.path.expanduser(unquote(rest)) or None


def _redis_database(url: str) -> tuple[str, int, str] | None:
    """``(host, port, database)`` of a ``redis://``/``rediss://`` URL, else None."""
    try:
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("redis", "rediss"):
            return None
        db = parts.path.strip("/") or dict(parse_qsl(parts.query)).get("db", "0")
        return ((parts.hostname or "localhost").lower(), parts.port or 6379, db)
    except ValueError:
        return None


def _refuse_writing_into(source: str, store_url: str) -> None:
    """Fail if the destination store is the source, inside it, or holds it."""
    dest = _local_path(store_url)
    if dest is not None and "://" not in source:
        src, dst = os.path.realpath(source), os.path.realpath(dest)
        if dst == src or dst.startswith(src + os.sep) or src.startswith(dst + os.sep):
            raise UsageError(
                f"the destination store {store_url} and SOURCE {source} overlap: kv import "
                "never writes to its source; choose another --store"
            )
    src_db = _redis_database(source)
    if src_db is not None and src_db == _redis_database(store_url):
        raise UsageError(
            "the destination store is the source's Redis database: kv import never writes "
            "to its source; choose another --store (another database number will do)"
        )


class _Counts:
    """Keys read, written and skipped (by reason), reported on stderr as they happen."""

    def __init__(self) -> None:
        self.read = 0
        self.written = 0
        self.skipped: dict[str, int] = {}
        self.stream = sys.stderr
        self.tty = self.stream.isatty()
        self.started = self.drawn = time.monotonic()
        self.width = 0

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def skip(self, name: str, reason: str, detail: str = "") -> None:
        seen = self.skipped.get(reason, 0)
        self.skipped[reason] = seen + 1
        if seen < _EXAMPLES:
            self._clear()
            tail = f": {detail}" if detail else ""
            print(f"kv: skipped {name!r} ({reason}){tail}", file=self.stream)
        elif seen == _EXAMPLES:
            self._clear()
            print(f"kv: more entries skipped ({reason}); counted at the end", file=self.stream)

    def show(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not self.tty or (not force and now - self.drawn < _PROGRESS_EVERY):
            return
        self.drawn = now
        rate = self.read / max(now - self.started, 1e-3)
        text = f"importing: {self.read} read, {self.written} written"
        if self.skipped:
            text += f", {self.skipped_total} skipped"
        text += f" ({rate:,.0f} keys/s)"
        self.stream.write("\r" + text.ljust(self.width))
        self.stream.flush()
        self.width = len(text)

    def _clear(self) -> None:
        if self.tty and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
            self.width = 0

    def close(self) -> None:
        """Draw the final state, then leave the line clean (as ``kv copy`` does)."""
        if self.tty:
            self.show(force=True)
        self._clear()

    def summary(self, *, dry_run: bool) -> str:
        verb = "would write" if dry_run else "wrote"
        text = f"read {self.read} key{'' if self.read == 1 else 's'}, {verb} {self.written}"
        text += f", skipped {self.skipped_total}"
        if self.skipped:
            text += " (" + ", ".join(f"{n} {why}" for why, n in self.skipped.items()) + ")"
        return text + ("; dry run: nothing written" if dry_run else "")


class _Writer:
    """Writes found entries to ``store`` (or only checks them, for a dry run)."""

    def __init__(self, store: Store[bytes] | None, counts: _Counts) -> None:
        self.store = store
        self.counts = counts
        self.views: dict[str, Store[bytes]] = {}

    def _view(self, namespace: str) -> Store[bytes] | None:
        if self.store is None or not namespace:
            return self.store
        view = self.views.get(namespace)
        if view is None:
            view = self.views[namespace] = self.store.namespace(namespace)
        return view

    async def write(self, batch: list[Found]) -> None:
        """Write ``batch``: bookkeeping entries first (they must exist before their data)."""
        for found in batch:
            if not found.counted:
                await self._one(found)
        await asyncio.gather(*(self._one(f) for f in batch if f.counted))
        self.counts.show()

    async def _one(self, found: Found) -> None:
        counts = self.counts
        name = found.name or found.key
        if found.counted:
            counts.read += 1
        if found.skip is not None:
            counts.skip(name, found.skip, found.detail)
            return
        ttl = None
        if found.expires_at is not None:
            # The time it had left at the source, on the wall clock both sides share.
            ttl = found.expires_at - time.time()
            if ttl <= 0:
                counts.skip(name, "expired")
                return
        try:
            if found.namespace:
                validate_key(found.namespace)
            validate_key(found.key)
            data = JSON.encode(found.value)
        except InvalidKeyError as exc:
            counts.skip(name, "invalid key", exc.message)
            return
        except (TypeError, ValueError, RecursionError) as exc:
            counts.skip(name, "not storable as JSON", str(exc))
            return
        view = self._view(found.namespace)
        if view is not None:
            try:
                await view.set(found.key, data, ttl=ttl)
            except (InvalidKeyError, SerializationError, ValueTooLargeError) as exc:
                counts.skip(name, "refused by the store", exc.message)
                return
        if found.counted:
            counts.written += 1


async def run_import(args: argparse.Namespace, registry: Registry) -> int:
    """Run ``kv import`` and return its exit code; kv errors propagate."""
    source = _source(args.format, args.source)  # checks SOURCE first: the likelier mistake
    counts = _Counts()
    try:
        _refuse_writing_into(args.source, args.store)
        # A dry run does not even open the destination: nothing can be created there.
        store = None if args.dry_run else _open(registry, args.store)
        try:
            writer = _Writer(store, counts)
            batch: list[Found] = []
            async for found in source.entries():
                batch.append(found)
                if len(batch) >= _BATCH:
                    await writer.write(batch)
                    batch = []
            if batch:
                await writer.write(batch)
        finally:
            counts.close()
            if store is not None:
                await store.aclose()
    finally:
        await source.aclose()
    print(f"{source.description}: {counts.summary(dry_run=args.dry_run)}")
    return 0
