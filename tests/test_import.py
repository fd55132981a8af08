"""``kv import``: data written by the real libraries comes into kv stores intact.

The sources are written with the libraries' own APIs (asyncblobdict's local and Azure
adapters, py-key-value-aio's RedisStore, DiskStore, MultiDiskStore and FileTreeStore against
a real redis-server, real folders and Azurite); aiokv is not published, so its state file (one
JSON object of keys and values) is written by hand. Each import goes into a ``file:`` store
and a Redis store; every value and TTL is read back, the counts are checked, ``--dry-run``
must write nothing, and the source must be byte for byte what it was.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sysconfig
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kv_core import JSON, open_store
from kv_core._cli import main
from kv_core.testing import start_azurite, start_redis

KV_SCRIPT = shutil.which("kv", path=sysconfig.get_path("scripts"))
HOUR = 3600.0
LONG_COLLECTION = "c" * 250  # escaped longer than 200 characters: a hashed namespace


# -- helpers --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_server() -> Iterator[Any]:
    server = start_redis()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["file", "redis"])
def dest(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A destination store URL: a folder, or database 1 of the test's redis-server."""
    if request.param == "file":
        yield f"file:{tmp_path / 'dest'}"
        return
    server = request.getfixturevalue("redis_server")
    url = f"redis://127.0.0.1:{server.port}/1"
    yield url
    _run(_flush(url))


async def _flush(url: str) -> None:
    async with open_store(url) as store:
        await store.clear()


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def kv(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``kv ARGS`` in this process: (exit code, stdout, stderr)."""
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def tree_hash(root: Path) -> dict[str, str]:
    """Every file under ``root`` (links included, not followed) with the hash of its bytes."""
    found: dict[str, str] = {}
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = Path(folder, name)
            rel = str(path.relative_to(root))
            if path.is_symlink():
                found[rel] = "link:" + os.readlink(path)
            else:
                found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


async def read_all(url: str, namespace: str = "") -> dict[str, tuple[Any, float | None]]:
    """Every key of the store (under ``namespace``) with its value and TTL."""
    async with open_store(url) as root:
        store = root.namespace(namespace) if namespace else root
        out: dict[str, tuple[Any, float | None]] = {}
        async for key in store.keys():
            out[key] = (await store.get(key), await store.ttl(key))
        return out


def counts_line(out: str) -> str:
    lines = [line for line in out.splitlines() if "read " in line]
    assert len(lines) == 1, out
    return lines[0]


def assert_ttl_kept(ttl: float | None, original: float) -> None:
    # The import runs in seconds: generous bounds, no race with the clock.
    assert ttl is not None
    assert original - 300 < ttl <= original


# -- aiokv ------------------------------------------------------------------------------------

AIOKV_STATE = {
    "user/1": {"name": "Ada", "langs": ["en", "fr"], "age": 36},
    "greeting": "héllo ✓",
    "count": 42,
    "ratio": 0.25,
    "flag": True,
    "nothing": None,
    "list": [1, [2, [3]]],
    "": "an empty key is not a kv key",
}


def test_aiokv_file(capsys: pytest.CaptureFixture[str], tmp_path: Path, dest: str) -> None:
    (tmp_path / "src").mkdir()
    source = tmp_path / "src" / "state.json"
    # json.dumps writes NaN (not JSON, refused by kv's codec): that one value is skipped.
    source.write_text(json.dumps({**AIOKV_STATE, "nan": float("nan")}))
    before = tree_hash(tmp_path / "src")

    code, out, err = kv(capsys, "--store", dest, "import", "aiokv", str(source))

    assert code == 0, err
    assert counts_line(out).endswith(
        "read 9 keys, wrote 7, skipped 2 (1 invalid key, 1 not storable as JSON)"
    )
    assert "skipped ''" in err
    assert "skipped 'nan'" in err
    got = _run(read_all(dest))
    assert got == {k: (v, None) for k, v in AIOKV_STATE.items() if k}
    assert tree_hash(tmp_path / "src") == before


def test_aiokv_dry_run_writes_nothing(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    source = tmp_path / "state.json"
    source.write_text(json.dumps(AIOKV_STATE))
    target = tmp_path / "dest"

    code, out, _ = kv(
        capsys, "--store", f"file:{target}", "import", "aiokv", str(source), "--dry-run"
    )

    assert code == 0
    assert "read 8 keys, would write 7, skipped 1 (1 invalid key); dry run" in out
    assert not target.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "is not JSON"),
        (b"[1, 2]", "holds a JSON list"),
        (b"\xff\xfe", "is not JSON"),
    ],
)
def test_aiokv_bad_file_is_a_data_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: bytes, message: str
) -> None:
    source = tmp_path / "state.json"
    source.write_bytes(content)

    code, _, err = kv(capsys, "--store", f"file:{tmp_path / 'd'}", "import", "aiokv", str(source))

    assert code == 4
    assert message in err
    assert "Traceback" not in err


# -- asyncblobdict ------------------------------------------------------------------------------

WHEN = dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
NAIVE = dt.datetime(2020, 1, 2, 3, 4, 5, 600000)
ID = uuid.UUID("12345678-1234-5678-1234-567812345678")
BLOBDICT_JSON: dict[str, Any] = {
    "plain": {"name": "Ada", "n": [1, 2.5, None, True]},
    "when": WHEN,
    "naive": NAIVE,
    "tags": {"a", "b", "c"},
    "id": ID,
    "nested/deep key": {"at": [WHEN, {"ids": [ID]}], "nums": {1, 2}},
    "unknown tag": {"_bdtype_": "decimal", "value": "1.5"},  # not one of its tags: a dict
    "both": "the JSON one wins",
}
BLOBDICT_BINARY: dict[str, bytes] = {
    "blob.bin": bytes(range(256)),
    "folder/photo": b"\x89PNG\r\n",
    "raw.json": b"\x00\x01 not json",  # written through the binary view: stays bytes
    "both": b"loses to both.json",
}


async def write_blobdict(store: Any) -> None:
    async with store:
        for key, value in BLOBDICT_JSON.items():
            await store.json.set(key, value)
        for key, data in BLOBDICT_BINARY.items():
            await store.binary.set(key, data)


def expected_blobdict() -> dict[str, Any]:
    expected: dict[str, Any] = dict(BLOBDICT_JSON)
    expected.update({k: v for k, v in BLOBDICT_BINARY.items() if k != "both"})
    return expected


def check_blobdict(dest: str, out: str, err: str) -> None:
    # 12 blobs: 8 JSON, 4 binary; "both" and "both.json" are one kv key.
    assert counts_line(out).endswith(
        "read 12 keys, wrote 11, skipped 1 (1 two blobs for one key)"
    ), out
    assert "'both'" in err
    got = _run(read_all(dest))
    assert {k: v for k, (v, _) in got.items()} == expected_blobdict()
    assert all(ttl is None for _, ttl in got.values())
    # Rich values are stored in kv's own tagged form, so Python gets them back typed.
    assert isinstance(got["when"][0], dt.datetime)
    assert got["when"][0].utcoffset() == dt.timedelta(hours=2)


def test_asyncblobdict_folder(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, dest: str
) -> None:
    from asyncblobdict import AsyncBlobStore, LocalFileAdapter

    base = tmp_path / "blobs"
    _run(write_blobdict(AsyncBlobStore(LocalFileAdapter(str(base)), "box")))
    before = tree_hash(base)

    code, out, err = kv(capsys, "--store", dest, "import", "asyncblobdict", str(base / "box"))

    assert code == 0, err
    check_blobdict(dest, out, err)
    assert tree_hash(base) == before


def test_asyncblobdict_dry_run(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from asyncblobdict import AsyncBlobStore, LocalFileAdapter

    base = tmp_path / "blobs"
    _run(write_blobdict(AsyncBlobStore(LocalFileAdapter(str(base)), "box")))
    target = tmp_path / "dest"

    code, out, _ = kv(
        capsys,
        "--store",
        f"file:{target}",
        "import",
        "asyncblobdict",
        str(base / "box"),
        "--dry-run",
    )

    assert code == 0
    assert "read 12 keys, would write 11, skipped 1" in out
    assert not target.exists()


def test_asyncblobdict_azure(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from asyncblobdict import AsyncBlobStore, AzureBlobAdapter
    from azure.storage.blob.aio import BlobServiceClient

    dest = f"file:{tmp_path / 'dest'}"
    with start_azurite() as azurite:

        async def setup() -> None:
            async with BlobServiceClient.from_connection_string(azurite.connection_string) as svc:
                await svc.create_container("box")
            adapter = AzureBlobAdapter.from_connection_string(azurite.connection_string)
            await write_blobdict(AsyncBlobStore(adapter, "box"))

        async def snapshot() -> dict[str, tuple[bytes, str]]:
            async with BlobServiceClient.from_connection_string(azurite.connection_string) as svc:
                box = svc.get_container_client("box")
                found = {}
                async for blob in box.list_blobs():
                    data = await (await box.download_blob(blob.name)).readall()
                    found[blob.name] = (data, str(blob.etag))
                return found

        _run(setup())
        before = _run(snapshot())
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)

        code, out, err = kv(capsys, "--store", dest, "import", "asyncblobdict", "azure://box")
        assert code == 0, err
        check_blobdict(dest, out, err)
        assert _run(snapshot()) == before  # same bytes, same etags: nothing rewritten

        code, _, err = kv(capsys, "--store", dest, "import", "asyncblobdict", "azure://nothere")
        assert code == 2
        assert "no container 'nothere'" in err

        monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
        code, _, err = kv(capsys, "--store", dest, "import", "asyncblobdict", "azure://box")
        assert code == 2
        assert "AZURE_STORAGE_CONNECTION_STRING" in err


# -- py-key-value -----------------------------------------------------------------------------

PKV_DATA: dict[str | None, dict[str, dict[str, Any]]] = {
    None: {"k1": {"a": 1}, "with space": {"s": "é ✓", "l": [1, {"x": None}]}},
    "users": {"ada": {"name": "Ada", "admin": True}, "bob": {"name": "Bob", "n": 2.5}},
    "tools/list": {"t": {"tools": ["a", "b"]}},
}
PKV_TTL: dict[tuple[str | None, str], float] = {(None, "k1"): HOUR, ("users", "bob"): 2 * HOUR}


async def write_pykv(store: Any, *, long_collection: bool = True) -> None:
    """The data through the store's public API, plus one entry written already expired."""
    from contextlib import AsyncExitStack

    from key_value.aio._utils.managed_entry import ManagedEntry

    async with AsyncExitStack() as stack:
        if hasattr(store, "__aenter__"):  # FileTreeStore holds nothing to close
            await stack.enter_async_context(store)
        for collection, entries in PKV_DATA.items():
            for key, value in entries.items():
                ttl = PKV_TTL.get((collection, key))
                await store.put(key, value, collection=collection, ttl=ttl)
        if long_collection:
            await store.put("deep", {"long": True}, collection=LONG_COLLECTION)
        # An entry whose time is up but is still stored (its store has not swept it): the
        # library's own write path with an expiry in the past.
        await store.setup_collection(collection="users")
        past = dt.datetime.now(tz=dt.timezone.utc) - dt.timedelta(minutes=5)
        entry = ManagedEntry(value={"old": True}, expires_at=past)
        await store._put_managed_entry(key="gone", collection="users", managed_entry=entry)


def expected_pykv(
    *, long_collection: bool = True
) -> dict[str, tuple[dict[str, Any], float | None]]:
    """kv key -> (value, original TTL) as kv-keyvalue's adapter lays collections out."""
    names = {None: "default_collection", "users": "users", "tools/list": "tools%2Flist"}
    out: dict[str, tuple[dict[str, Any], float | None]] = {}
    for collection, entries in PKV_DATA.items():
        for key, value in entries.items():
            out[f"{names[collection]}/{key}"] = (value, PKV_TTL.get((collection, key)))
    if long_collection:
        seg = "%h" + hashlib.sha256(LONG_COLLECTION.encode()).hexdigest()
        out[f"{seg}/deep"] = ({"long": True}, None)
        out[seg] = ({"collection": LONG_COLLECTION}, None)  # the adapter's marker entry
    return out


def check_pykv(dest: str, out: str, *, long_collection: bool = True) -> None:
    expected = expected_pykv(long_collection=long_collection)
    n = len(PKV_DATA[None]) + len(PKV_DATA["users"]) + len(PKV_DATA["tools/list"])
    n += 1 if long_collection else 0
    assert counts_line(out).endswith(f"read {n + 1} keys, wrote {n}, skipped 1 (1 expired)"), out
    got = _run(read_all(dest))
    assert set(got) == set(expected)
    for key, (value, ttl) in expected.items():
        assert got[key][0] == value, key
        if ttl is None:
            assert got[key][1] is None, key
        else:
            assert_ttl_kept(got[key][1], ttl)
    _run(check_through_adapter(dest, long_collection=long_collection))


async def check_through_adapter(dest: str, *, long_collection: bool) -> None:
    """py-key-value code running on kv-keyvalue's adapter sees the imported data as it was."""
    from kv_keyvalue import KeyValueAdapter

    async with KeyValueAdapter.from_url(dest) as adapter:
        for collection, entries in PKV_DATA.items():
            for key, value in entries.items():
                assert await adapter.get(key, collection=collection) == value
            assert sorted(await adapter.keys(collection)) == sorted(entries)
        assert await adapter.get("gone", collection="users") is None
        value, ttl = await adapter.ttl("bob", collection="users")
        assert value == PKV_DATA["users"]["bob"]
        assert_ttl_kept(ttl, 2 * HOUR)
        wanted = {"default_collection", "users", "tools/list"}
        if long_collection:
            wanted.add(LONG_COLLECTION)
            assert await adapter.get("deep", collection=LONG_COLLECTION) == {"long": True}
        assert set(await adapter.collections()) == wanted


async def redis_snapshot(url: str) -> dict[bytes, tuple[bytes, bool]]:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url)
    try:
        keys = [k async for k in client.scan_iter()]
        return {k: (await client.dump(k), await client.ttl(k) > 0) for k in keys}
    finally:
        await client.aclose()


def test_pykv_redis(capsys: pytest.CaptureFixture[str], redis_server: Any, dest: str) -> None:
    from key_value.aio.stores.redis import RedisStore

    source = f"redis://127.0.0.1:{redis_server.port}/2"
    _run(write_pykv(RedisStore(url=source)))
    before = _run(redis_snapshot(source))

    code, out, err = kv(capsys, "--store", dest, "import", "py-key-value", source)

    assert code == 0, err
    check_pykv(dest, out)
    assert _run(redis_snapshot(source)) == before


def test_pykv_redis_dry_run(
    capsys: pytest.CaptureFixture[str], redis_server: Any, tmp_path: Path
) -> None:
    from key_value.aio.stores.redis import RedisStore

    source = f"redis://127.0.0.1:{redis_server.port}/3"
    _run(write_pykv(RedisStore(url=source)))
    target = tmp_path / "dest"

    code, out, _ = kv(
        capsys, "--store", f"file:{target}", "import", "py-key-value", source, "--dry-run"
    )

    assert code == 0
    assert "read 7 keys, would write 6, skipped 1 (1 expired); dry run" in out
    assert not target.exists()


def test_pykv_disk_store(capsys: pytest.CaptureFixture[str], tmp_path: Path, dest: str) -> None:
    from diskcache import Cache
    from key_value.aio.stores.disk import DiskStore

    folder = tmp_path / "disk"
    # A value of 32 KiB or more goes to a file of its own (diskcache's MODE_TEXT). Written
    # first: diskcache deletes expired rows when it writes, so the expired entry comes last.
    big = {"blob": "x" * 40_000}

    async def put_big() -> None:
        async with DiskStore(directory=folder) as store:
            await store.put("big", big, collection="users")

    _run(put_big())
    # cull_limit=0: diskcache keeps expired rows until read (as it does whenever time passes
    # after a write) instead of deleting them on the next write.
    cache = Cache(directory=str(folder), eviction_policy="none", cull_limit=0)
    try:
        _run(write_pykv(DiskStore(disk_cache=cache)))
    finally:
        cache.close()
    assert any(p.suffix == ".val" for p in folder.rglob("*"))
    before = tree_hash(folder)

    code, out, err = kv(capsys, "--store", dest, "import", "py-key-value", str(folder))

    assert code == 0, err
    assert counts_line(out).endswith("read 8 keys, wrote 7, skipped 1 (1 expired)"), out
    got = _run(read_all(dest))
    assert got.pop("users/big") == (big, None)
    expected = expected_pykv()
    assert {k: v for k, (v, _) in got.items()} == {k: v for k, (v, _) in expected.items()}
    assert_ttl_kept(got["users/bob"][1], 2 * HOUR)
    assert tree_hash(folder) == before


def test_pykv_multi_disk_store(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from diskcache import Cache
    from key_value.aio.stores.disk import MultiDiskStore

    folder = tmp_path / "multi"
    folder.mkdir()
    dest = f"file:{tmp_path / 'dest'}"
    caches: list[Cache] = []

    def factory(collection: str) -> Cache:
        # As MultiDiskStore's own factory (a folder per collection), with cull_limit=0 so
        # the expired entry stays stored (see test_pykv_disk_store).
        name = collection.replace("/", "_")
        caches.append(Cache(directory=str(folder / name), eviction_policy="none", cull_limit=0))
        return caches[-1]

    try:
        _run(write_pykv(MultiDiskStore(disk_cache_factory=factory), long_collection=False))
    finally:
        for cache in caches:
            cache.close()
    before = tree_hash(folder)

    code, out, err = kv(capsys, "--store", dest, "import", "py-key-value", str(folder))

    assert code == 0, err
    check_pykv(dest, out, long_collection=False)
    assert tree_hash(folder) == before


def test_pykv_file_tree_store(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, dest: str
) -> None:
    from key_value.aio.stores.filetree import FileTreeStore

    folder = tmp_path / "tree"
    # FileTreeStore keeps collection names as folder names: no 250-character collection.
    _run(write_pykv(FileTreeStore(data_directory=folder), long_collection=False))
    before = tree_hash(folder)

    code, out, err = kv(capsys, "--store", dest, "import", "py-key-value", str(folder))

    assert code == 0, err
    check_pykv(dest, out, long_collection=False)
    assert tree_hash(folder) == before


def test_pykv_dry_run_on_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from key_value.aio.stores.filetree import FileTreeStore

    folder = tmp_path / "tree"
    _run(write_pykv(FileTreeStore(data_directory=folder), long_collection=False))
    target = tmp_path / "dest"

    code, out, _ = kv(
        capsys, "--store", f"file:{target}", "import", "py-key-value", str(folder), "--dry-run"
    )

    assert code == 0
    assert "read 6 keys, would write 5, skipped 1 (1 expired); dry run" in out
    assert not target.exists()


# -- wrong formats and sources: one line on stderr, the documented exit code ----------------


def run_script(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    assert KV_SCRIPT is not None, "the kv console script is not installed in this environment"
    base = {k: v for k, v in os.environ.items() if k != "KV_STORE_URL"}
    return subprocess.run(
        [KV_SCRIPT, *args],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        timeout=60,
        check=False,
    )


def test_wrong_format_and_sources(tmp_path: Path) -> None:
    dest = f"file:{tmp_path / 'dest'}"
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.txt").write_text("x")
    cases = [
        (["import", "shelve", str(tmp_path)], 2, "invalid choice: 'shelve'"),
        (["import", "aiokv", str(tmp_path / "missing.json")], 2, "no such file"),
        (["import", "aiokv", str(tmp_path)], 2, "is a folder"),
        (["import", "asyncblobdict", str(tmp_path / "missing")], 2, "no such folder"),
        (["import", "asyncblobdict", "s3://bucket"], 2, "unknown source"),
        (["import", "py-key-value", str(tmp_path / "empty")], 2, "holds neither a DiskStore"),
        (["import", "py-key-value", str(tmp_path / "file.txt")], 2, "not a folder"),
        (["import", "py-key-value", "mongodb://localhost"], 2, "unknown source"),
        # A port nothing listens on: the source cannot be reached.
        (["import", "py-key-value", "redis://:secretpw@127.0.0.1:1/0"], 5, "cannot be reached"),
    ]
    for args, code, message in cases:
        result = run_script("--store", dest, *args)
        assert result.returncode == code, (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert "secretpw" not in result.stderr
    assert not (tmp_path / "dest").exists()


def test_corrupt_diskcache_is_a_data_error(tmp_path: Path) -> None:
    folder = tmp_path / "disk"
    folder.mkdir()
    (folder / "cache.db").write_bytes(b"this is not SQLite" * 100)

    result = run_script("--store", f"file:{tmp_path / 'd'}", "import", "py-key-value", str(folder))

    assert result.returncode == 4, result.stderr
    assert "not a diskcache database" in result.stderr
    assert "Traceback" not in result.stderr


def test_progress_and_counts_through_the_script(tmp_path: Path) -> None:
    source = tmp_path / "state.json"
    source.write_text(json.dumps({f"k{i}": i for i in range(300)}))
    dest = f"file:{tmp_path / 'dest'}"

    result = run_script("--store", dest, "import", "aiokv", str(source))

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"aiokv file {source}: read 300 keys, wrote 300, skipped 0"
    assert result.stderr == ""  # not a terminal: no progress line

    async def values() -> dict[str, Any]:
        async with open_store(dest).with_codec(JSON) as store:
            return {k: v async for k, v in store.items()}

    assert _run(values()) == {f"k{i}": i for i in range(300)}


def test_pykv_redis_leaves_foreign_keys(
    capsys: pytest.CaptureFixture[str], redis_server: Any, tmp_path: Path
) -> None:
    """Keys py-key-value did not write are skipped and counted (or, without '::', not read)."""
    import redis.asyncio as aioredis
    from key_value.aio.stores.redis import RedisStore

    source = f"redis://127.0.0.1:{redis_server.port}/4"

    async def setup() -> None:
        async with RedisStore(url=source) as store:
            await store.put("k", {"v": 1}, collection="c")
        client = aioredis.Redis.from_url(source)
        try:
            await client.set("plain", "not py-key-value: no '::'")
            await client.set("app::text", "just text")
            await client.set("app::list", json.dumps([1, 2]))
            await client.hset("app::hash", mapping={"f": "v"})
        finally:
            await client.aclose()

    _run(setup())
    dest = f"file:{tmp_path / 'dest'}"

    code, out, err = kv(capsys, "--store", dest, "import", "py-key-value", source)

    assert code == 0, err
    assert counts_line(out).endswith("read 4 keys, wrote 1, skipped 3 (3 not a py-key-value entry)")
    for name in ("app::text", "app::list", "app::hash"):
        assert f"skipped {name!r}" in err
    assert _run(read_all(dest)) == {"c/k": ({"v": 1}, None)}


def test_progress_line_on_a_terminal(tmp_path: Path) -> None:
    """On a terminal, stderr shows the counts as they grow and is left clean at the end."""
    import pty

    source = tmp_path / "state.json"
    source.write_text(json.dumps({f"k{i}": i for i in range(200)}))
    assert KV_SCRIPT is not None
    leader, follower = pty.openpty()
    try:
        result = subprocess.run(
            [KV_SCRIPT, "--store", f"file:{tmp_path / 'dest'}", "import", "aiokv", str(source)],
            stdout=subprocess.PIPE,
            stderr=follower,
            timeout=60,
            check=False,
        )
        os.close(follower)
        follower = -1
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child's side is closed and everything was read
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)
    assert result.returncode == 0, shown
    assert b"importing: 200 read, 200 written" in shown
    assert shown.endswith(b"\r")  # the line is cleared, not left behind
    assert result.stdout.endswith(b"read 200 keys, wrote 200, skipped 0\n")
