"""The installed ``kv`` console script against real folders (kv-core + kv-local).

Each test runs the script as a separate process, the way a user's shell does, and checks
what it wrote through the Python API.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest
from kv_core import BYTES, JSON, open_store
from kv_core.testing import WEIRD_KEYS

# The script pip/uv generated from [project.scripts]; finding it is part of the test.
KV_SCRIPT = shutil.which("kv", path=sysconfig.get_path("scripts"))


def run_kv(
    *args: str,
    stdin: bytes = b"",
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    **popen: Any,
) -> subprocess.CompletedProcess[bytes]:
    assert KV_SCRIPT is not None, "the kv console script is not installed in this environment"
    base = {k: v for k, v in os.environ.items() if k != "KV_STORE_URL"}
    return subprocess.run(
        [KV_SCRIPT, *args],
        input=stdin,
        capture_output="stderr" not in popen,
        cwd=cwd,
        env={**base, **(env or {})},
        timeout=60,
        check=False,
        **popen,
    )


def stored(url: str, key: str, *, codec: Any = JSON) -> Any:
    """Read ``key`` through the Python API (a missing key reads as "<missing>")."""

    async def go() -> Any:
        async with open_store(url).with_codec(codec) as store:
            return await store.get(key, default="<missing>")

    return asyncio.run(go())


def put(url: str, items: dict[str, Any], *, ttl: float | None = None) -> None:
    async def go() -> None:
        async with open_store(url) as store:
            for key, value in items.items():
                await store.set(key, value, ttl=ttl)

    asyncio.run(go())


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"file:{tmp_path / 'store'}"


def test_set_get_exists_ttl_delete(url: str) -> None:
    assert (
        run_kv("--store", url, "set", "user/1", '{"name": "Ada"}', "--ttl", "300").returncode == 0
    )
    assert stored(url, "user/1") == {"name": "Ada"}

    got = run_kv("--store", url, "get", "user/1")
    assert (got.returncode, got.stdout, got.stderr) == (0, b'{"name":"Ada"}\n', b"")
    assert run_kv("--store", url, "exists", "user/1").stdout == b"true\n"
    ttl = float(run_kv("--store", url, "ttl", "user/1").stdout)
    assert 0 < ttl <= 300

    assert run_kv("--store", url, "delete", "user/1").returncode == 0
    assert stored(url, "user/1") == "<missing>"
    missing = run_kv("--store", url, "get", "user/1")
    assert missing.returncode == 1
    assert missing.stderr.decode().startswith("kv: no such key (key='user/1'")
    assert missing.stderr.count(b"\n") == 1
    assert b"Traceback" not in missing.stderr


def test_value_from_stdin_and_conditional_writes(url: str) -> None:
    assert run_kv("--store", url, "set", "n", stdin=b"41\n").returncode == 0
    entry = json.loads(run_kv("--store", url, "get", "n", "--entry").stdout)
    assert entry["value"] == 41
    assert run_kv("--store", url, "set", "n", "42", "--if-match", entry["etag"]).returncode == 0
    stale = run_kv("--store", url, "set", "n", "43", "--if-match", entry["etag"])
    assert stale.returncode == 3
    assert run_kv("--store", url, "set", "n", "44", "--if-absent").returncode == 3
    assert stored(url, "n") == 42

    bad = run_kv("--store", url, "set", "n", stdin=b"{oops")
    assert bad.returncode == 4
    assert b"the value for key 'n' is not JSON" in bad.stderr
    assert stored(url, "n") == 42


def test_get_piped_into_set_copies_rich_values_exactly(url: str) -> None:
    value = {"when": dt.datetime(2024, 5, 1, 12, tzinfo=dt.timezone.utc), "raw": b"\x00"}
    put(url, {"a": value})
    got = run_kv("--store", url, "get", "a")
    assert got.stdout == JSON.encode(value) + b"\n"
    assert run_kv("--store", url, "set", "b", stdin=got.stdout).returncode == 0
    assert stored(url, "b") == value


def test_bytes_written_by_another_codec(url: str) -> None:
    async def go() -> None:
        async with open_store(url, codec=BYTES) as store:
            await store.set("blob", b"\x80\x04K\x01.")

    asyncio.run(go())
    assert run_kv("--store", url, "get", "blob").returncode == 4
    assert run_kv("--store", url, "get", "blob", "--raw").stdout == b"\x80\x04K\x01."


def test_keys_list_weird_keys_exactly(url: str) -> None:
    put(url, dict.fromkeys(WEIRD_KEYS, 0))
    as_json = run_kv("--store", url, "keys", "--json")
    assert as_json.returncode == 0
    assert sorted(json.loads(line) for line in as_json.stdout.splitlines()) == sorted(WEIRD_KEYS)
    null = run_kv("--store", url, "keys", "-0")
    listed = [k.decode() for k in null.stdout.split(b"\0")[:-1]]
    assert sorted(listed) == sorted(k for k in WEIRD_KEYS if "\0" not in k)
    assert null.returncode == (4 if any("\0" in k for k in WEIRD_KEYS) else 0)


def test_default_store_is_dot_kv_in_the_working_directory(tmp_path: Path) -> None:
    assert run_kv("set", "greeting", '"hello"', cwd=tmp_path).returncode == 0
    assert (tmp_path / ".kv").is_dir()
    assert stored(f"file:{tmp_path / '.kv'}", "greeting") == "hello"
    assert run_kv("get", "greeting", cwd=tmp_path).stdout == b'"hello"\n'


def test_store_url_from_the_environment(tmp_path: Path, url: str) -> None:
    env = {"KV_STORE_URL": url}
    assert run_kv("set", "k", "[1]", cwd=tmp_path, env=env).returncode == 0
    assert stored(url, "k") == [1]
    assert not (tmp_path / ".kv").exists()


def test_copy_keeps_bytes_and_ttls_and_is_quiet_when_piped(tmp_path: Path) -> None:
    src, dst = f"file:{tmp_path / 'src'}", f"file:{tmp_path / 'dst'}"
    put(src, {f"item/{i}": {"i": i} for i in range(70)})  # more than one copy batch
    put(src, {"session": "s"}, ttl=300)
    put(src, {"other/x": 1})

    done = run_kv("copy", src, dst)
    assert (done.returncode, done.stdout, done.stderr) == (0, b"copied 72 keys\n", b"")
    for i in range(70):
        assert stored(dst, f"item/{i}", codec=BYTES) == stored(src, f"item/{i}", codec=BYTES)
    ttl = float(run_kv("--store", dst, "ttl", "session").stdout)
    assert 0 < ttl <= 300
    assert run_kv("--store", dst, "ttl", "item/0").stdout == b"null\n"

    only = run_kv("copy", src, f"file:{tmp_path / 'only'}", "--prefix", "other/")
    assert only.stdout == b"copied 1 key\n"


def test_copy_shows_progress_on_a_terminal(tmp_path: Path) -> None:
    src, dst = f"file:{tmp_path / 'src'}", f"file:{tmp_path / 'dst'}"
    put(src, {f"k{i}": i for i in range(10)})
    main_fd, side_fd = os.openpty()
    try:
        done = run_kv("copy", src, dst, stdout=subprocess.PIPE, stderr=side_fd)
        os.close(side_fd)
        shown = b""
        while True:  # until the terminal reports that no writer is left
            try:
                data = os.read(main_fd, 65536)
            except OSError:
                break
            if not data:
                break
            shown += data
    finally:
        os.close(main_fd)
    assert done.returncode == 0
    assert done.stdout == b"copied 10 keys\n"
    assert b"copying: 10 keys" in shown


def test_module_form_and_usage_errors(url: str) -> None:
    module = subprocess.run(
        [sys.executable, "-m", "kv_core._cli", "--store", url, "keys"],
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert (module.returncode, module.stdout, module.stderr) == (0, b"", b"")
    unknown = run_kv("--store", "nope://x", "get", "k")
    assert unknown.returncode == 2
    assert unknown.stderr.startswith(b"kv: no kv backend handles nope://")
    assert b"Traceback" not in unknown.stderr
