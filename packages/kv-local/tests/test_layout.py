"""Keys map reversibly to names under the root: escaped, never outside, never shared."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from kv_core import Store
from kv_core.testing import WEIRD_KEYS
from kv_local import LocalDriver
from kv_local._layout import PIECE, decode_name, locate, unescape_full

from ._helpers import entries_under, has_links, names

EXTRA_KEYS = (
    "a\\b",
    "/",
    "//",
    "/a/",
    "🦄" * 1024,
    "x/" + "🦄" * 1021,
    "%" * 1024,
    "A" * 1024,
    ("ab/" * 300)[:1024],
    "\x01\x02\x1f",
    "COM1",
    "aux",
    "end-with-dot.",
    "a" * PIECE + "%",
)


@pytest.fixture
async def driver(tmp_path: Path) -> LocalDriver:
    d = LocalDriver(tmp_path / "root")
    yield d  # type: ignore[misc]
    await d.aclose()


def test_every_weird_key_has_a_distinct_location() -> None:
    keys = {*WEIRD_KEYS, *EXTRA_KEYS}
    where = {(locate(k).dirs, locate(k).leaf) for k in keys}
    assert len(where) == len(keys)
    # Case-insensitive file systems: names must stay distinct after folding case too.
    folded = {(tuple(d.lower() for d in loc[0]), loc[1].lower()) for loc in where}
    assert len(folded) == len(keys)


def test_names_fit_file_system_limits_and_never_escape() -> None:
    for key in (*WEIRD_KEYS, *EXTRA_KEYS):
        loc = locate(key)
        for name in (*loc.dirs, loc.leaf + "#meta"):
            assert 0 < len(name.encode()) <= 255
            assert name not in (".", "..")
            assert "/" not in name
            assert "\\" not in name
            assert "\x00" not in name


def test_a_key_and_its_children_do_not_collide() -> None:
    assert locate("a").leaf == "a"
    assert locate("a/b").dirs == ("a%2F",)
    assert locate("a/").dirs == ("a%2F",)
    assert locate("a/").leaf == "%"


def test_decode_inverts_the_escaping() -> None:
    for key in ("plain", "Plain", "%2F", "..", "trailing.", "é"):
        leaf = locate(key).leaf
        assert decode_name(leaf) == ("value", leaf)
        assert unescape_full(leaf) == key
    assert decode_name("#meta") is None
    assert unescape_full("README.md") is None  # a foreign file is not a key


async def test_weird_keys_stay_inside_the_root_and_list_back_exactly(tmp_path: Path) -> None:
    root = tmp_path / "root"
    driver = LocalDriver(root)
    keys = {*WEIRD_KEYS, *EXTRA_KEYS}
    try:
        for key in keys:
            await driver.set(key, key.encode("utf-8", "surrogatepass"))
        assert names(tmp_path) == ["root"]  # nothing beside the root
        # Everything is a plain file or folder below the root (fwalk never leaves it).
        assert not has_links(root)
        assert all(len(name.encode()) <= 255 for _f, name, _m in entries_under(root))
        assert {k async for k in driver.keys()} == keys
        for key in keys:
            entry = await driver.get(key)
            assert entry is not None
            assert entry.value == key.encode()
        assert {k async for k in driver.keys("a/")} == {k for k in keys if k.startswith("a/")}
        assert {k async for k in driver.keys("/")} == {k for k in keys if k.startswith("/")}
        assert await driver.delete_many(list(keys)) == len(keys)
        assert [k async for k in driver.keys()] == []
        # Deletes prune the folders they emptied.
        assert names(root) == ["#lock", "#owners"]
    finally:
        await driver.aclose()


async def test_values_are_plain_files_a_person_can_read(tmp_path: Path) -> None:
    store: Store[object] = Store(LocalDriver(tmp_path))
    async with store:
        await store.set("user/1", {"name": "Ada"})
        await store.set("config", [1, 2])
    assert json.loads((tmp_path / "user%2F" / "1").read_bytes()) == {"name": "Ada"}
    assert json.loads((tmp_path / "config").read_bytes()) == [1, 2]
    assert not (tmp_path / "config#meta").exists()  # metadata only when needed


async def test_which_files_in_the_root_are_keys(tmp_path: Path) -> None:
    """A regular file whose name is a key's name *is* that key (values are stored verbatim,
    so nothing else marks them): ``data.bin`` or diskcache's ``cache.db`` dropped in the
    root are listed, read and cleared like keys. Everything else is ignored: names
    kv-local never writes (upper case, bad escapes, ``#``), folders that are not key
    levels, links, FIFOs."""
    driver = LocalDriver(tmp_path)
    try:
        await driver.set("k", b"1")
        (tmp_path / "data.bin").write_bytes(b"\x00\x01")
        (tmp_path / "cache.db").write_bytes(b"SQLite format 3\x00")
        for ignored in ("README.md", "%zz", "%4a", "notes#1"):
            (tmp_path / ignored).write_text("not a key")
        (tmp_path / "folder").mkdir()
        (tmp_path / "folder" / "inside").write_text("not under a key level")
        (tmp_path / "link").symlink_to(tmp_path / "data.bin")
        os.mkfifo(tmp_path / "fifo")
        assert sorted([k async for k in driver.keys()]) == ["cache.db", "data.bin", "k"]
        entry = await driver.get("data.bin")
        assert entry is not None
        assert entry.value == b"\x00\x01"
        assert await driver.clear() == 3
        left = sorted(os.listdir(tmp_path))
        assert left == [
            "#lock",
            "#owners",
            "%4a",
            "%zz",
            "README.md",
            "fifo",
            "folder",
            "link",
            "notes#1",
        ]
    finally:
        await driver.aclose()


def test_the_public_surface_is_exactly_all() -> None:
    import kv_local

    # (``annotations`` is the __future__ feature, not an export.)
    public = {n for n in vars(kv_local) if not n.startswith("_") and n != "annotations"}
    assert public == set(kv_local.__all__) == {"LocalDriver", "SQLiteDriver"}
