"""``kv import`` with kv-core alone, on every supported Python.

The sources are laid out by hand exactly as the libraries write them (the cross-package
tests in tests/test_import.py write them with the real libraries, which pins these layouts);
the destination is an in-process memory store (``testmem://``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import json
import os
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest
from kv_core._import_pykv import collection_namespace

from ._cli_support import Kv, assert_one_line_error

NOW = dt.datetime.now(tz=dt.timezone.utc)


def iso(delta: float) -> str:
    return (NOW + dt.timedelta(seconds=delta)).isoformat()


def entry(value: Any, *, expires_in: float | None = None, **meta: Any) -> str:
    """A py-key-value managed entry document (BasicSerializationAdapter, sort_keys)."""
    doc: dict[str, Any] = {"version": 1, "value": value, "created_at": iso(0), **meta}
    if expires_in is not None:
        doc["expires_at"] = iso(expires_in)
    return json.dumps(doc, sort_keys=True)


def tree_hash(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def all_of(kv: Kv, name: str = "main") -> dict[str, Any]:
    import asyncio

    async def go() -> dict[str, Any]:
        async with kv.store(name) as store:
            return {k: (v, await store.ttl(k)) async for k, v in store.items()}

    return asyncio.run(go())


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


# -- aiokv --------------------------------------------------------------------------------


def test_aiokv(kv: Kv, tmp_path: Path) -> None:
    source = tmp_path / "state.json"
    source.write_text(json.dumps({"a": 1, "b/c": {"x": [1, None]}, "": 0, "nan": float("nan")}))

    result = kv("--store", "testmem://main", "import", "aiokv", str(source))

    assert result.code == 0, result
    assert last_line(result.text).endswith(
        "read 4 keys, wrote 2, skipped 2 (1 invalid key, 1 not storable as JSON)"
    )
    assert all_of(kv) == {"a": (1, None), "b/c": ({"x": [1, None]}, None)}


@pytest.mark.parametrize(("content", "code"), [(b"{", 4), (b'"text"', 4), (b"\xff", 4), (None, 2)])
def test_aiokv_bad_sources(kv: Kv, tmp_path: Path, content: bytes | None, code: int) -> None:
    source = tmp_path / "state.json"
    if content is not None:
        source.write_bytes(content)

    result = kv("--store", "testmem://main", "import", "aiokv", str(source))

    assert_one_line_error(result, code)
    assert all_of(kv) == {}


def test_aiokv_dry_run(kv: Kv, tmp_path: Path) -> None:
    source = tmp_path / "state.json"
    source.write_text('{"a": 1}')

    result = kv("--store", "testmem://main", "import", "aiokv", str(source), "--dry-run")

    assert result.code == 0
    assert last_line(result.text).endswith(
        "read 1 key, would write 1, skipped 0; dry run: nothing written"
    )
    assert all_of(kv) == {}


# -- asyncblobdict -------------------------------------------------------------------------

WHEN = dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone(dt.timedelta(hours=-3)))
ID = uuid.UUID(int=7)


def blobdict_folder(root: Path) -> None:
    """What asyncblobdict's JSON serializer (json.dumps with its tags) and binary view write."""

    def tag(o: Any) -> Any:
        if isinstance(o, set):
            return {"_bdtype_": "set", "items": sorted(o)}
        if isinstance(o, dt.datetime):
            return {"_bdtype_": "datetime", "value": o.isoformat()}
        if isinstance(o, uuid.UUID):
            return {"_bdtype_": "uuid", "value": str(o)}
        raise TypeError(o)

    files: dict[str, bytes] = {
        "doc.json": json.dumps({"when": WHEN, "ids": {1, 2}, "id": ID}, default=tag).encode(),
        "deep/er/k.json": json.dumps([1, "two"]).encode(),
        "other tag.json": json.dumps({"_bdtype_": "bytes", "value": "eA=="}).encode(),
        "broken tag.json": json.dumps({"_bdtype_": "set"}).encode(),  # no items: a dict
        "pairs.json": json.dumps({(1, 2), (3, 4)}, default=tag).encode(),
        "x.json": b"\xff not json",  # its name is taken by x.json.json's key
        "x.json.json": b'"json"',
        "bin": b"\x00\x01",
        "doc": b"binary twin of doc.json",
        "odd.json": b"\xff not json",
    }
    for name, data in files.items():
        path = root.joinpath(*name.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def test_asyncblobdict_folder(kv: Kv, tmp_path: Path) -> None:
    box = tmp_path / "base" / "box"
    blobdict_folder(box)
    before = tree_hash(box)

    result = kv("--store", "testmem://main", "import", "asyncblobdict", str(box))

    assert result.code == 0, result
    assert last_line(result.text).endswith(
        "read 10 keys, wrote 8, skipped 2 (1 two blobs for one key, 1 not JSON)"
    )
    assert "'x.json'" in result.err
    assert {k: v for k, (v, _) in all_of(kv).items()} == {
        "doc": {"when": WHEN, "ids": {1, 2}, "id": ID},
        "broken tag": {"_bdtype_": "set"},
        "pairs": {(1, 2), (3, 4)},
        "x.json": "json",
        "deep/er/k": [1, "two"],
        "other tag": {"_bdtype_": "bytes", "value": "eA=="},  # not one of its tags
        "bin": b"\x00\x01",
        "odd.json": b"\xff not json",  # written through the binary view
    }
    assert tree_hash(box) == before


def test_asyncblobdict_azure_needs_a_connection_string(
    kv: Kv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)

    result = kv("--store", "testmem://main", "import", "asyncblobdict", "azure://box")

    assert_one_line_error(result, 2)
    # Without kv-azure's dependencies the hint says what to install instead.
    assert "AZURE_STORAGE_CONNECTION_STRING" in result.err or "pip install kv-azure" in result.err


# -- py-key-value folders ------------------------------------------------------------------


def file_tree(root: Path) -> None:
    """FileTreeStore's layout: <collection>/<key>.json, <collection>-info.json beside it."""
    layout = {
        "default_collection": {"k": entry({"a": 1}, expires_in=3600)},
        "users": {"ada": entry({"n": "Ada"}), "gone": entry({"old": 1}, expires_in=-60)},
        "tools/list": {"t": entry(json.dumps({"s": True}))},  # value_format="string"
    }
    for collection, keys in layout.items():
        folder = root.joinpath(*collection.split("/"))
        folder.mkdir(parents=True)
        info = {"collection": collection, "directory": str(folder), "version": 1}
        info["created_at"] = iso(0)
        (root / f"{collection}-info.json").write_text(json.dumps(info, sort_keys=True))
        for key, doc in keys.items():
            (folder / f"{key}.json").write_text(doc)
    (root / "users" / "half.json.tmp").write_text("{")  # an interrupted write


def test_file_tree_store(kv: Kv, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    file_tree(tree)
    before = tree_hash(tree)

    result = kv("--store", "testmem://main", "import", "py-key-value", str(tree))

    assert result.code == 0, result
    assert last_line(result.text).endswith("read 4 keys, wrote 3, skipped 1 (1 expired)")
    got = all_of(kv)
    assert got.pop("default_collection/k")[0] == {"a": 1}
    assert got == {"users/ada": ({"n": "Ada"}, None), "tools%2Flist/t": ({"s": True}, None)}
    assert tree_hash(tree) == before


def diskcache_db(folder: Path, rows: list[tuple[Any, ...]]) -> None:
    """A diskcache Cache database (its schema, WAL mode) holding ``rows``."""
    folder.mkdir()
    db = sqlite3.connect(folder / "cache.db")
    db.execute("PRAGMA journal_mode=wal")
    db.execute(
        "CREATE TABLE Cache (rowid INTEGER PRIMARY KEY, key BLOB, raw INTEGER,"
        " store_time REAL, expire_time REAL, access_time REAL,"
        " access_count INTEGER DEFAULT 0, tag BLOB, size INTEGER DEFAULT 0,"
        " mode INTEGER DEFAULT 0, filename TEXT, value BLOB)"
    )
    db.executemany(
        "INSERT INTO Cache (key, raw, expire_time, mode, filename, value) VALUES (?,?,?,?,?,?)",
        rows,
    )
    db.commit()
    db.close()


def test_disk_store(kv: Kv, tmp_path: Path) -> None:
    folder = tmp_path / "disk"
    now = NOW.timestamp()
    long = "c" * 250
    big = entry({"big": "x" * 100}, key="big", collection="users")
    rows = [
        ("users::ada", 1, None, 1, None, entry({"n": "Ada"}, key="ada", collection="users")),
        ("users::bob", 1, now + 7200, 1, None, entry({"n": "Bob"}, key="bob", collection="users")),
        ("users::old", 1, now - 5, 1, None, entry({}, key="old", collection="users")),
        ("users::big", 1, None, 3, "ab/cd/big.val", None),
        (f"{long}::k", 1, None, 1, None, entry({"l": 1}, key="k", collection=long)),
        ("a::pickled", 1, None, 4, None, b"\x80\x04K\x01."),
        (b"\x80\x04K\x01.", 0, None, 1, None, "{}"),
        ("a::escape", 1, None, 3, "../../outside.val", None),
    ]
    diskcache_db(folder, rows)
    (folder / "ab" / "cd").mkdir(parents=True)
    (folder / "ab" / "cd" / "big.val").write_text(big)
    before = tree_hash(folder)

    result = kv("--store", "testmem://main", "import", "py-key-value", str(folder))

    assert result.code == 0, result
    assert last_line(result.text).endswith(
        "read 8 keys, wrote 4, skipped 4 (1 expired, 3 not a py-key-value entry)"
    )
    seg, marker = collection_namespace(long)
    assert marker == seg == "%h" + hashlib.sha256(long.encode()).hexdigest()
    got = all_of(kv)
    _, bob_ttl = got.pop("users/bob")
    assert bob_ttl is not None
    assert 7000 < bob_ttl <= 7200
    assert got == {
        "users/ada": ({"n": "Ada"}, None),
        "users/big": ({"big": "x" * 100}, None),
        f"{seg}/k": ({"l": 1}, None),
        seg: ({"collection": long}, None),  # kv-keyvalue's marker of a hashed collection
    }
    # Read-only and immutable: no -wal or -shm file appears beside the database.
    assert tree_hash(folder) == before


def test_not_a_diskcache_database(kv: Kv, tmp_path: Path) -> None:
    folder = tmp_path / "disk"
    folder.mkdir()
    (folder / "cache.db").write_bytes(b"not sqlite at all" * 64)

    result = kv("--store", "testmem://main", "import", "py-key-value", str(folder))

    assert_one_line_error(result, 4)
    assert "not a diskcache database" in result.err


def test_collection_namespaces() -> None:
    assert collection_namespace("default_collection") == ("default_collection", None)
    assert collection_namespace("a/b%c") == ("a%2Fb%25c", None)
    assert collection_namespace("/" * 66)[1] is None  # 198 characters escaped
    seg, marker = collection_namespace("/" * 67)  # 201
    assert marker == seg
    assert seg.startswith("%h")


# -- wrong formats and sources ------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nosuch", "x"], "invalid choice"),
        (["asyncblobdict", "ftp://x"], "unknown source"),
        (["asyncblobdict", "azure://"], "expected azure://CONTAINER"),
        (["py-key-value", "memcached://x"], "unknown source"),
        (["py-key-value", "{tmp}/missing"], "no such folder"),
        (["py-key-value", "{tmp}"], "holds neither"),
        (["aiokv", "{tmp}"], "is a folder"),
    ],
)
def test_wrong_format_or_source(kv: Kv, tmp_path: Path, args: list[str], message: str) -> None:
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]

    result = kv("--store", "testmem://main", "import", *argv)

    assert result.code == 2, result
    assert message in result.err
    assert "Traceback" not in result.err
    assert os.listdir(tmp_path) == []


def test_redis_source_without_or_with_redis_py(kv: Kv) -> None:
    """kv-core alone has no Redis client: the install hint; with one, an unreachable server."""
    result = kv("--store", "testmem://main", "import", "py-key-value", "redis://:pw1@127.0.0.1:1/0")

    if importlib.util.find_spec("redis") is None:  # kv-core's own test environment
        assert_one_line_error(result, 2)
        assert "pip install kv-redis" in result.err
    else:
        assert_one_line_error(result, 5)
        assert "cannot be reached" in result.err
    assert "pw1" not in result.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("file:{tmp}/src", "py-key-value", "{tmp}/src"), "overlap"),
        (("file://{tmp}/src/dest", "asyncblobdict", "{tmp}/src"), "overlap"),
        (("sqlite:{tmp}/src/state.json", "aiokv", "{tmp}/src/state.json"), "overlap"),
        (("file:{tmp}", "py-key-value", "{tmp}/src"), "overlap"),
        (("redis://localhost/2", "py-key-value", "redis://LOCALHOST:6379/2"), "Redis database"),
    ],
)
def test_never_into_its_own_source(
    kv: Kv, tmp_path: Path, args: tuple[str, str, str], message: str
) -> None:
    file_tree(tmp_path / "src")  # a valid source of every format named
    (tmp_path / "src" / "state.json").write_text('{"a": 1}')
    before = tree_hash(tmp_path)
    store, fmt, source = (a.format(tmp=tmp_path) for a in args)
    if source.startswith("redis:") and importlib.util.find_spec("redis") is None:
        message = "pip install kv-redis"  # kv-core's own environment: SOURCE is checked first

    result = kv("--store", store, "import", fmt, source)

    assert_one_line_error(result, 2)
    assert message in result.err
    assert tree_hash(tmp_path) == before
