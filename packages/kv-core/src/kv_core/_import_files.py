"""``kv import`` sources written by aiokv and asyncblobdict.

aiokv keeps its whole state in one JSON file: an object mapping each key to its JSON value
(no expiry is recorded). asyncblobdict (0.1.x) writes one blob per key in a container: a
folder on disk (``LocalFileAdapter(base)`` uses ``base/<container>/``) or an Azure
container. JSON values are in ``<key>.json``, written by ``json.dumps`` with its type tags
(``{"_bdtype_": "set", "items": [...]}``, ``{"_bdtype_": "datetime", "value": iso}``,
``{"_bdtype_": "uuid", "value": str}``), which are read back as those types as
asyncblobdict's own decoder does (and where it would fail, kept: a set of tuples, a dict
that only looks like a tag); binary values are the blobs without ``.json``, imported as
``bytes``. A key may hold both a JSON and a binary blob in asyncblobdict (``k.json`` and
``k``); kv has one value per key, so the JSON one is kept and the other counted as skipped.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from ._cli_commands import BadDataError, UsageError
from ._errors import BackendError, BackendUnavailableError
from ._import_common import Found, load_json_file, read_many

__all__ = ["AiokvSource", "BlobDictAzureSource", "BlobDictFolderSource", "blobdict_source"]

_TYPE_MARKER = "_bdtype_"  # asyncblobdict.serializers.TYPE_MARKER
_JSON_SUFFIX = ".json"
_DOWNLOADS_AT_ONCE = 16  # concurrent blob downloads from Azure
_FILES_AT_ONCE = 64  # files read per hop to a worker thread
ENV_CONNECTION_STRING = "AZURE_STORAGE_CONNECTION_STRING"


class AiokvSource:
    """aiokv's state file: one JSON object, key -> value."""

    def __init__(self, path: str) -> None:
        if not os.path.exists(path):
            raise UsageError(f"aiokv: no such file: {path}")
        if os.path.isdir(path):
            raise UsageError(f"aiokv: {path} is a folder; give aiokv's JSON state file")
        self.path = path
        self.description = f"aiokv file {path}"

    async def entries(self) -> AsyncIterator[Found]:
        """Every key of the file with its value."""
        state = await asyncio.to_thread(load_json_file, self.path, f"aiokv file {self.path}")
        if not isinstance(state, dict):
            raise BadDataError(
                f"aiokv file {self.path} holds a JSON {type(state).__name__}, "
                "not an object of keys and values"
            )
        for key, value in state.items():
            yield Found(key=key, value=value, name=key)

    async def aclose(self) -> None:
        """Nothing to release (the file is read at once)."""


def _hashable(item: object) -> object:
    # JSON turned the tuples of a set into lists; a set can only have held them as tuples.
    if isinstance(item, list):
        return tuple(_hashable(x) for x in item)
    return item


def _decode_tag(d: dict[str, Any]) -> object:
    # asyncblobdict.serializers.default_decoder's rules: a known tag becomes its type, any
    # other dict (an unknown tag included) stays as it is. Where its decoder would fail (a
    # tag missing its field, a set of tuples) the data is kept: a set's lists become tuples,
    # and a dict that only looks like a tag stays that dict.
    if _TYPE_MARKER in d:
        kind = d[_TYPE_MARKER]
        try:
            if kind == "set":
                return {_hashable(x) for x in d["items"]}
            if kind == "datetime":
                return dt.datetime.fromisoformat(d["value"])
            if kind == "uuid":
                return uuid.UUID(d["value"])
        except (KeyError, TypeError, ValueError, AttributeError):
            return d
    return d


def decode_blobdict_json(data: bytes) -> object:
    """The value asyncblobdict's JSON serializer reads from ``data``.

    Raises:
        ValueError: ``data`` is not JSON.
    """
    try:
        return json.loads(data.decode("utf-8"), object_hook=_decode_tag)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ValueError(f"not JSON: {exc}") from None


def _plan(names: Iterable[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Which blob becomes which key: ``({blob: key}, {blob: why skipped})``.

    ``k.json`` becomes key ``k`` (JSON), any other blob key ``<its name>`` (bytes). When two
    blobs claim one key (``k.json`` and ``k``), the JSON one wins.
    """
    chosen: dict[str, str] = {}
    owner: dict[str, str] = {}  # key -> blob
    skipped: dict[str, str] = {}
    ordered = sorted(names, key=lambda n: not n.endswith(_JSON_SUFFIX))  # JSON blobs first
    for name in ordered:
        is_json = name.endswith(_JSON_SUFFIX) and len(name) > len(_JSON_SUFFIX)
        key = name[: -len(_JSON_SUFFIX)] if is_json else name
        if key in owner:
            skipped[name] = f"both {owner[key]!r} and {name!r} are key {key!r}; kept the JSON one"
            continue
        owner[key] = name
        chosen[name] = key
    return chosen, skipped


def _entry(name: str, key: str, data: bytes, claimed: set[str]) -> Found:
    if not name.endswith(_JSON_SUFFIX) or key == name:
        return Found(key=key, value=data, name=name)
    try:
        return Found(key=key, value=decode_blobdict_json(data), name=name)
    except ValueError as exc:
        if name not in claimed:
            # Written through asyncblobdict's binary view under a name ending in .json:
            # that view is the only one that reads it back, so it stays bytes under its name.
            return Found(key=name, value=data, name=name)
        return Found.skipped(name, "not JSON", str(exc))


class BlobDictFolderSource:
    """The folder of one container that asyncblobdict's LocalFileAdapter wrote."""

    def __init__(self, path: str) -> None:
        if not os.path.isdir(path):
            what = "not a folder" if os.path.exists(path) else "no such folder"
            raise UsageError(
                f"asyncblobdict: {what}: {path} (give the folder of one container, "
                "<base_path>/<container>, or azure://<container>)"
            )
        self.root = path
        self.description = f"asyncblobdict folder {path}"

    def _names(self) -> tuple[list[str], list[str]]:
        names: list[str] = []
        links: list[str] = []
        for folder, dirs, files in os.walk(self.root):  # does not follow linked folders
            rel = os.path.relpath(folder, self.root)
            for entry in [*files, *(d for d in dirs if os.path.islink(os.path.join(folder, d)))]:
                name = entry if rel == "." else f"{rel}/{entry}".replace(os.sep, "/")
                (links if os.path.islink(os.path.join(folder, entry)) else names).append(name)
        return names, links

    async def entries(self) -> AsyncIterator[Found]:
        """Every blob of the folder as a key; links are not followed (asyncblobdict refuses
        those leading out of the container)."""
        names, links = await asyncio.to_thread(self._names)
        for name in links:
            yield Found.skipped(name, "a symbolic link", "not followed")
        chosen, skipped = _plan(names)
        for name, why in skipped.items():
            yield Found.skipped(name, "two blobs for one key", why)
        claimed = set(chosen.values())
        pending = list(chosen.items())
        for start in range(0, len(pending), _FILES_AT_ONCE):
            chunk = pending[start : start + _FILES_AT_ONCE]
            paths = [os.path.join(self.root, *name.split("/")) for name, _ in chunk]
            datas = await asyncio.to_thread(read_many, paths)
            for (name, key), data in zip(chunk, datas, strict=True):
                if data is not None:  # else deleted since the listing
                    yield _entry(name, key, data, claimed)

    async def aclose(self) -> None:
        """Nothing to release."""


class BlobDictAzureSource:
    """An Azure container that asyncblobdict's AzureBlobAdapter wrote (read only)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        container = parts.netloc
        if not container or parts.path not in ("", "/") or parts.query:
            raise UsageError(f"asyncblobdict: expected azure://CONTAINER, got {url!r}")
        try:
            from azure.core import exceptions as azure_errors
            from azure.storage.blob.aio import ContainerClient
        except ImportError:
            raise UsageError(
                "asyncblobdict azure:// sources need azure-storage-blob: pip install kv-azure"
            ) from None
        conn_str = os.environ.get(ENV_CONNECTION_STRING)
        if not conn_str:
            raise UsageError(
                f"asyncblobdict azure://{container}: set {ENV_CONNECTION_STRING} to the "
                "storage account's connection string (what asyncblobdict was given)"
            )
        try:
            self._client = ContainerClient.from_connection_string(conn_str, container)
        except ValueError as exc:
            raise UsageError(f"{ENV_CONNECTION_STRING} is not a connection string: {exc}") from None
        self._errors = azure_errors
        self.container = container
        self.description = f"asyncblobdict container azure://{container}"

    async def _call(self, what: str, make: Callable[[], Awaitable[Any]]) -> Any:
        errors = self._errors
        try:
            return await make()
        except errors.ResourceNotFoundError as exc:
            if "ContainerNotFound" in str(getattr(exc, "error_code", "")) or what == "list":
                raise UsageError(
                    f"asyncblobdict: no container {self.container!r} in this account"
                ) from None
            raise
        except errors.ServiceRequestError as exc:
            raise BackendUnavailableError(f"Azure cannot be reached: {exc}") from None
        except errors.AzureError as exc:
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise BackendError(f"Azure refused the {what}: {message}") from None

    async def _list(self) -> list[str]:
        return [blob.name async for blob in self._client.list_blobs()]

    async def _download(self, name: str) -> bytes | None:
        async def go() -> bytes:
            stream = await self._client.download_blob(name)
            data: bytes = await stream.readall()
            return data

        try:
            result: bytes = await self._call("download", go)
        except self._errors.ResourceNotFoundError:
            return None  # deleted since the listing
        return result

    async def entries(self) -> AsyncIterator[Found]:
        """Every blob of the container as a key, downloaded a few at a time."""
        names = await self._call("list", self._list)
        chosen, skipped = _plan(names)
        for name, why in skipped.items():
            yield Found.skipped(name, "two blobs for one key", why)
        claimed = set(chosen.values())
        pending = list(chosen.items())
        for start in range(0, len(pending), _DOWNLOADS_AT_ONCE):
            batch = pending[start : start + _DOWNLOADS_AT_ONCE]
            datas = await asyncio.gather(*(self._download(name) for name, _ in batch))
            for (name, key), data in zip(batch, datas, strict=True):
                if data is not None:
                    yield _entry(name, key, data, claimed)

    async def aclose(self) -> None:
        """Close the client."""
        await self._client.close()


def blobdict_source(source: str) -> BlobDictFolderSource | BlobDictAzureSource:
    """The asyncblobdict source for SOURCE: ``azure://CONTAINER`` or a folder."""
    if source.lower().startswith("azure:"):
        return BlobDictAzureSource(source)
    if "://" in source:
        raise UsageError(
            f"asyncblobdict: unknown source {source!r} (a folder or azure://CONTAINER)"
        )
    return BlobDictFolderSource(source)
