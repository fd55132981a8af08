"""``kv import`` sources written by py-key-value (py-key-value-aio 0.4.x and 0.5.x).

Every py-key-value store keeps a *managed entry* per key: a JSON document
``{"version": 1, "value": {...}, "key": k, "collection": c, "created_at": iso,
"expires_at": iso}`` (``value`` is an object, or its JSON text; ``key``/``collection`` are
absent in FileTreeStore files; absent timestamps mean none). Where it lives:

- ``RedisStore``: a Redis string at ``<collection>::<key>``, with a Redis TTL (whole
  seconds, at least 1) beside ``expires_at``; the entry is gone at whichever comes first.
- ``DiskStore``: a diskcache ``Cache`` in the folder: SQLite ``cache.db``, table ``Cache``,
  key ``<collection>::<key>`` stored raw (TEXT), the document as TEXT in ``value`` (mode 1)
  or, from 32 KiB, in the file named by ``filename`` (mode 3), diskcache's own expiry in
  ``expire_time`` (epoch seconds). ``MultiDiskStore``: one such cache per collection folder,
  keys without the collection. Nothing here is unpickled: a pickled key or value (mode 4)
  was not written by py-key-value and is skipped.
- ``FileTreeStore``: a folder per collection holding ``<key>.json`` documents, and in the
  root ``<folder>-info.json`` files naming each folder's collection.

A collection becomes the namespace kv-keyvalue's ``KeyValueAdapter`` uses for it (one
escaped segment, ``default_collection`` for the default one), so the adapter over the
destination store serves the imported data to the same py-key-value code.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ._cli_commands import BadDataError, UsageError
from ._errors import BackendError, BackendUnavailableError
from ._import_common import (
    Found,
    epoch_of_iso,
    load_json_file,
    load_json_text,
    read_bytes,
    read_many,
)

__all__ = [
    "PyKVDiskSource",
    "PyKVFileTreeSource",
    "PyKVRedisSource",
    "collection_namespace",
    "pykv_source",
]

_SEPARATOR = "::"  # key_value.aio._utils.compound.DEFAULT_COMPOUND_SEPARATOR
_DISKCACHE_DB = "cache.db"  # diskcache.core.DBNAME
_MODE_RAW, _MODE_BINARY, _MODE_TEXT, _MODE_PICKLE = 1, 2, 3, 4  # diskcache.core.MODE_*
_INFO_SUFFIX = "-info.json"
_SCAN_COUNT = 500
_ROWS_AT_ONCE = 500
_FILES_AT_ONCE = 64  # files read per hop to a worker thread

# kv-keyvalue's collection segments (kv_keyvalue._collections; tests/test_import.py reads
# imported data back through KeyValueAdapter, which pins the two together).
_MAX_SEGMENT = 200
_HASHED = "%h"


def collection_namespace(collection: str) -> tuple[str, str | None]:
    """The namespace of ``collection`` and, for a hashed one, its marker key (else None).

    ``%`` -> ``%25`` and ``/`` -> ``%2F`` keep a collection one segment; an escaped name
    longer than 200 characters becomes ``%h`` + its SHA-256, with the real name in a marker
    entry at that bare key (``{"collection": name}``).

    Raises:
        ValueError: The name holds lone surrogates (it cannot be hashed).
    """
    escaped = collection.replace("%", "%25").replace("/", "%2F")
    if len(escaped) <= _MAX_SEGMENT:
        return escaped, None
    seg = _HASHED + hashlib.sha256(collection.encode("utf-8")).hexdigest()
    return seg, seg


class _Entries:
    """Turns managed entries into :class:`Found`, emitting hashed collections' markers once."""

    def __init__(self) -> None:
        self._marked: set[str] = set()

    def found(
        self, name: str, document: bytes | str, collection: str | None, key: str | None
    ) -> Iterator[Found]:
        """The entry stored under ``name`` (plus a marker first, if its collection needs one).

        ``collection``/``key`` are what the storage location says; the document's own
        fields win when present (they hold the names before any sanitising).
        """
        try:
            value, expires_at, doc_collection, doc_key = _parse(document)
        except ValueError as exc:
            yield Found.skipped(name, "not a py-key-value entry", str(exc))
            return
        collection = doc_collection if doc_collection is not None else collection
        key = doc_key if doc_key is not None else key
        if not collection or key is None:
            yield Found.skipped(name, "not a py-key-value entry", "no collection and key")
            return
        try:
            namespace, marker = collection_namespace(collection)
        except UnicodeEncodeError:
            yield Found.skipped(name, "invalid key", "the collection holds lone surrogates")
            return
        if marker is not None and marker not in self._marked:
            self._marked.add(marker)
            yield Found(key=marker, value={"collection": collection}, counted=False, name=name)
        yield Found(key=key, value=value, namespace=namespace, expires_at=expires_at, name=name)


def _parse(document: bytes | str) -> tuple[dict[str, Any], float | None, str | None, str | None]:
    """``(value, expires_at, collection, key)`` of a managed entry document."""
    doc = load_json_text(document, "the entry")
    if not isinstance(doc, dict) or "value" not in doc:
        raise ValueError("not a managed entry (a JSON object with a 'value')")
    value = doc["value"]
    if isinstance(value, str):  # value_format="string": the object's JSON text
        value = load_json_text(value, "the entry's value")
    if not isinstance(value, dict):
        raise ValueError(f"the value is a {type(value).__name__}, not an object")
    try:
        expires_at = epoch_of_iso(doc.get("expires_at"))
    except ValueError as exc:
        raise ValueError(f"bad expires_at: {exc}") from None
    collection, key = doc.get("collection"), doc.get("key")
    return (
        value,
        expires_at,
        collection if isinstance(collection, str) else None,
        key if isinstance(key, str) else None,
    )


def _uncompound(name: str) -> tuple[str | None, str | None]:
    collection, sep, key = name.partition(_SEPARATOR)
    return (collection, key) if sep else (None, None)


def _earliest(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


class PyKVRedisSource:
    """RedisStore's entries in one Redis database (read with SCAN, MGET and PTTL only)."""

    def __init__(self, url: str) -> None:
        try:
            import redis.asyncio as aioredis
            from redis import exceptions as redis_errors
        except ImportError:
            raise UsageError(
                "py-key-value redis:// sources need redis-py: pip install kv-redis"
            ) from None
        try:
            self._client: Any = aioredis.Redis.from_url(url)
        except ValueError as exc:
            raise UsageError(f"py-key-value: bad Redis URL: {exc}") from None
        self._errors = redis_errors
        self.description = "py-key-value RedisStore"

    async def _run(self, call: Any) -> Any:
        errors = self._errors
        try:
            return await call
        except (errors.ConnectionError, errors.TimeoutError, OSError) as exc:
            if isinstance(exc, errors.AuthenticationError):
                raise BackendError(f"Redis refused the login: {exc}") from None
            raise BackendUnavailableError(f"Redis cannot be reached: {exc}") from None
        except errors.RedisError as exc:
            raise BackendError(f"Redis refused a read: {exc}") from None

    async def entries(self) -> AsyncIterator[Found]:
        """Every ``<collection>::<key>`` string holding a managed entry."""
        entries = _Entries()
        seen: set[bytes] = set()  # SCAN may return a key twice
        cursor = 0
        while True:
            cursor, page = await self._run(
                self._client.scan(cursor=cursor, match="*::*", count=_SCAN_COUNT)
            )
            names = [n for n in dict.fromkeys(page) if n not in seen]
            seen.update(names)
            if names:
                pipe = self._client.pipeline(transaction=False)
                pipe.mget(names)
                for n in names:
                    pipe.pttl(n)
                values, *pttls = await self._run(pipe.execute())
                now = time.time()
                for raw_name, data, pttl in zip(names, values, pttls, strict=True):
                    for found in self._one(entries, raw_name, data, pttl, now):
                        yield found
            if cursor == 0:
                return

    @staticmethod
    def _one(
        entries: _Entries, raw_name: bytes, data: bytes | None, pttl: int, now: float
    ) -> Iterator[Found]:
        name = raw_name.decode("utf-8", "backslashreplace")
        if data is None:
            if pttl != -2:  # -2: deleted or expired since the scan, so not there to read
                yield Found.skipped(name, "not a py-key-value entry", "not a Redis string")
            return
        for found in entries.found(name, data, *_uncompound(name)):
            if found.counted and found.skip is None and pttl > 0:
                # Redis drops the key at its own TTL even before expires_at: the earlier wins.
                redis_expiry = now + pttl / 1000
                yield Found(
                    key=found.key,
                    value=found.value,
                    namespace=found.namespace,
                    expires_at=_earliest(found.expires_at, redis_expiry),
                    name=found.name,
                )
            else:
                yield found

    async def aclose(self) -> None:
        """Close the connection pool."""
        close = getattr(self._client, "aclose", None) or self._client.close
        await close()


def _inside(folder: str, filename: str) -> bool:
    """True if ``filename`` (from a database row) names a file inside ``folder``."""
    base = os.path.realpath(folder)
    return os.path.realpath(os.path.join(base, filename)).startswith(base + os.sep)


def _read_only_mode(db: str) -> str:
    """How to open ``db`` so that nothing in its folder is written or created.

    diskcache runs SQLite in WAL mode. A database closed cleanly has no ``-wal`` file: it
    is opened ``immutable`` (no locks, no ``-shm``/``-wal`` files created, which a read-only
    connection to a WAL database would otherwise leave behind). While a writer has it open
    (its ``-wal`` and ``-shm`` exist), ``mode=ro`` reads the committed state through them.
    """
    if os.path.exists(db + "-wal"):
        return "?mode=ro"
    return "?mode=ro&immutable=1"


class PyKVDiskSource:
    """DiskStore's (or MultiDiskStore's) diskcache databases, opened read-only."""

    def __init__(self, root: str, databases: Sequence[tuple[str, str | None]], kind: str) -> None:
        self.root = root
        self.databases = databases  # (cache.db path, collection of a MultiDiskStore folder)
        self.description = f"py-key-value {kind} {root}"

    async def entries(self) -> AsyncIterator[Found]:
        """Every row of every Cache table (values in files read too)."""
        entries = _Entries()
        for db, folder_collection in self.databases:
            for found in self._rows(entries, db, folder_collection):
                yield found

    def _rows(self, entries: _Entries, db: str, folder_collection: str | None) -> Iterator[Found]:
        uri = Path(db).resolve().as_uri() + _read_only_mode(db)
        try:
            conn = sqlite3.connect(uri, uri=True)
        except sqlite3.Error as exc:
            raise BackendError(f"cannot open {db} read-only: {exc}") from None
        try:
            try:
                cursor = conn.execute(
                    "SELECT key, raw, expire_time, mode, filename, value FROM Cache ORDER BY rowid"
                )
            except sqlite3.DatabaseError as exc:
                raise BadDataError(f"{db} is not a diskcache database: {exc}") from None
            folder = os.path.dirname(db)
            while rows := cursor.fetchmany(_ROWS_AT_ONCE):
                for row in rows:
                    yield from self._row(entries, folder, folder_collection, row)
        except sqlite3.DatabaseError as exc:
            raise BadDataError(f"cannot read {db}: {exc}") from None
        finally:
            conn.close()

    @staticmethod
    def _row(
        entries: _Entries, folder: str, folder_collection: str | None, row: tuple[Any, ...]
    ) -> Iterator[Found]:
        key, raw, expire_time, mode, filename, value = row
        name = key if isinstance(key, str) else repr(key)
        if not raw or not isinstance(key, str):
            yield Found.skipped(name, "not a py-key-value entry", "the key is not a str")
            return
        if mode == _MODE_RAW and isinstance(value, (str, bytes)):
            document: str | bytes = value
        elif mode == _MODE_TEXT and isinstance(filename, str) and _inside(folder, filename):
            document = read_bytes(os.path.join(folder, filename))
        else:
            yield Found.skipped(name, "not a py-key-value entry", f"diskcache mode {mode}")
            return
        if folder_collection is None:
            collection, plain_key = _uncompound(key)
        else:
            collection, plain_key = folder_collection, key
        for found in entries.found(name, document, collection, plain_key):
            if found.counted and found.skip is None and expire_time is not None:
                # DiskStore reads its expiry from diskcache's column, not the document.
                yield Found(
                    key=found.key,
                    value=found.value,
                    namespace=found.namespace,
                    expires_at=expire_time,
                    name=found.name,
                )
            else:
                yield found

    async def aclose(self) -> None:
        """Nothing left open (each database is closed after its rows)."""


class PyKVFileTreeSource:
    """FileTreeStore's data folder: a folder per collection of ``<key>.json`` files.

    Collection ``c`` lives in folder ``c`` (nested when ``c`` holds ``/``) and is named by
    ``c-info.json`` beside it. Without info files (a separate metadata folder), each
    top-level folder is taken as a collection of that name.
    """

    def __init__(self, root: str, infos: dict[str, tuple[str, str]]) -> None:
        self.root = root
        self.infos = infos  # folder (relative, "/"-separated) -> (collection, info file)
        self.description = f"py-key-value FileTreeStore {root}"

    def _folders(self) -> dict[str, str]:
        if self.infos:
            return {folder: collection for folder, (collection, _) in self.infos.items()}
        return {
            d: d
            for d in os.listdir(self.root)
            if os.path.isdir(os.path.join(self.root, d))
            and not os.path.islink(os.path.join(self.root, d))
        }

    def _files(self) -> list[tuple[str, str | None, str, str]]:
        """``(name, path or None for a link, collection, key)`` of every key file."""
        info_files = {path for _, path in self.infos.values()}
        files: list[tuple[str, str | None, str, str]] = []
        for folder, collection in sorted(self._folders().items()):
            path = os.path.join(self.root, *folder.split("/"))
            if os.path.islink(path) or not os.path.isdir(path):
                continue  # FileTreeStore refuses collections that lead out of its root
            for file in sorted(os.listdir(path)):
                file_path = os.path.join(path, file)
                if (
                    not file.endswith(".json")
                    or not os.path.isfile(file_path)
                    or file_path in info_files  # a nested collection's info file
                ):
                    continue  # temporary files of an interrupted write end in .tmp
                link = os.path.islink(file_path)
                key = file[: -len(".json")]
                files.append((f"{folder}/{file}", None if link else file_path, collection, key))
        return files

    async def entries(self) -> AsyncIterator[Found]:
        """Every ``<folder>/<key>.json`` document."""
        entries = _Entries()
        files = await asyncio.to_thread(self._files)
        for start in range(0, len(files), _FILES_AT_ONCE):
            chunk = files[start : start + _FILES_AT_ONCE]
            documents = await asyncio.to_thread(read_many, [p for _, p, _, _ in chunk if p])
            read = iter(documents)
            for name, path, collection, key in chunk:
                if path is None:
                    yield Found.skipped(name, "a symbolic link", "not followed")
                    continue
                document = next(read)
                if document is None:
                    continue  # deleted since the listing
                for found in entries.found(name, document, collection, key):
                    yield found

    async def aclose(self) -> None:
        """Nothing to release."""


def _info_files(root: str) -> dict[str, tuple[str, str]]:
    """FileTreeStore's ``<folder>-info.json`` files under ``root``.

    Returns:
        folder (relative to ``root``, "/"-separated) -> (collection, path of the info file).
        A file is an info file when its JSON holds ``collection`` and ``directory`` and no
        ``value`` (a key named ``x-info`` is an entry, which has a value).
    """
    found: dict[str, tuple[str, str]] = {}
    for folder, _dirs, files in os.walk(root):
        for file in files:
            path = os.path.join(folder, file)
            if not file.endswith(_INFO_SUFFIX) or os.path.islink(path):
                continue
            try:
                info = load_json_file(path, path)
            except (BadDataError, OSError):
                continue
            if (
                isinstance(info, dict)
                and isinstance(info.get("collection"), str)
                and "directory" in info
                and "value" not in info
            ):
                # The info file sits where the collection's folder does, whatever absolute
                # path it recorded (the store may have been moved since).
                rel = os.path.relpath(path, root)[: -len(_INFO_SUFFIX)]
                found[rel.replace(os.sep, "/")] = (info["collection"], path)
    return found


def pykv_source(source: str) -> PyKVRedisSource | PyKVDiskSource | PyKVFileTreeSource:
    """The py-key-value source for SOURCE: a Redis URL, or a store's folder (told apart by
    what it holds: ``cache.db`` for DiskStore, ``*/cache.db`` for MultiDiskStore, collection
    folders of ``*.json`` for FileTreeStore)."""
    scheme = urlsplit(source).scheme.lower() if "://" in source else ""
    if scheme in ("redis", "rediss", "unix"):
        return PyKVRedisSource(source)
    if scheme:
        raise UsageError(
            f"py-key-value: unknown source {source!r} "
            "(redis://…, or the folder of a DiskStore or FileTreeStore)"
        )
    if not os.path.isdir(source):
        what = "not a folder" if os.path.exists(source) else "no such folder"
        raise UsageError(f"py-key-value: {what}: {source}")
    if os.path.isfile(os.path.join(source, _DISKCACHE_DB)):
        return PyKVDiskSource(source, [(os.path.join(source, _DISKCACHE_DB), None)], "DiskStore")
    subfolders = sorted(
        d
        for d in os.listdir(source)
        if os.path.isdir(os.path.join(source, d)) and not os.path.islink(os.path.join(source, d))
    )
    caches = [(os.path.join(source, d, _DISKCACHE_DB), d) for d in subfolders]
    caches = [(db, d) for db, d in caches if os.path.isfile(db)]
    if caches:
        return PyKVDiskSource(source, caches, "MultiDiskStore")
    infos = _info_files(source)
    if infos or any(
        f.endswith(".json") for d in subfolders for f in os.listdir(os.path.join(source, d))
    ):
        return PyKVFileTreeSource(source, infos)
    raise UsageError(
        f"py-key-value: {source} holds neither a DiskStore ({_DISKCACHE_DB}) nor a "
        "FileTreeStore (collection folders of <key>.json files)"
    )
