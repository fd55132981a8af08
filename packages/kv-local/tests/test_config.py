"""Configuration mistakes say what is wrong; bad expiries never reach the disk."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from kv_core import BackendError, BackendUnavailableError, SerializationError, Store, open_store
from kv_local import LocalDriver


async def _every_call_fails_with(store: Store[Any], match: str) -> None:
    for call in (
        lambda: store.get("k"),
        lambda: store.set("k", 1),
        lambda: store.delete("k"),
    ):
        with pytest.raises(BackendError, match=match) as info:
            await call()
        # A mistake to fix, not an outage: never "safe to retry".
        assert not isinstance(info.value, BackendUnavailableError)
        assert isinstance(info.value.__cause__, OSError)
    with pytest.raises(BackendError, match=match):
        [k async for k in store.keys()]


async def test_a_file_where_the_folder_should_be_is_a_configuration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "state.json").write_text("{}")
    async with open_store("file:state.json") as store:
        await _every_call_fails_with(store, "state.json' is a file, not a folder")
    # A file as a parent of the folder: the message names that file.
    async with open_store("file:state.json/sub") as store:
        await _every_call_fails_with(store, f"{tmp_path / 'state.json'}' is a file")
    assert (tmp_path / "state.json").read_text() == "{}"  # untouched


_NO_PERMISSION = """
import asyncio, sys
from kv_core import BackendError, BackendUnavailableError, Store
from kv_local import LocalDriver

async def main():
    async with Store(LocalDriver(sys.argv[1])) as store:
        try:
            await store.set("k", 1)
        except BackendUnavailableError as exc:
            print("UNAVAILABLE", exc)
        except BackendError as exc:
            print("ERROR", exc)

asyncio.run(main())
"""


def test_a_folder_without_permission_is_a_configuration_error() -> None:
    base = Path(tempfile.mkdtemp())
    try:
        base.chmod(0o755)
        locked = base / "locked"
        locked.mkdir(mode=0o555)
        locked.chmod(0o555)  # (mkdir's mode is filtered by the umask)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        # Root ignores permissions: as root, run the driver without capabilities.
        drop = []
        if os.geteuid() == 0:
            setpriv = shutil.which("setpriv")
            assert setpriv, "as root this test needs setpriv (util-linux) to drop capabilities"
            drop = [setpriv, "--bounding-set=-all", "--inh-caps=-all"]
        done = subprocess.run(
            [*drop, sys.executable, "-c", _NO_PERMISSION, str(locked / "data")],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert done.stdout.startswith("ERROR "), done.stdout + done.stderr
        assert "permission denied" in done.stdout
        assert str(locked / "data") in done.stdout
    finally:
        (base / "locked").chmod(0o755)
        (base / "locked").rmdir()
        base.rmdir()


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
async def test_a_non_finite_expiry_is_rejected_before_any_io(tmp_path: Path, bad: float) -> None:
    root = tmp_path / "data"
    driver = LocalDriver(root)
    try:

        async def chunks() -> Any:
            yield b"x"

        for call in (
            lambda: driver.set("k", b"v", expires_at=bad),
            lambda: driver.set_many([("k", b"v")], expires_at=bad),
            lambda: driver.write_stream("k", chunks(), expires_at=bad),
        ):
            with pytest.raises(ValueError, match="finite"):
                await call()
        assert not root.exists()  # nothing was written, not even the folder
        async with Store(LocalDriver(root)) as store:
            with pytest.raises((ValueError, TypeError)):
                await store.set("k", 1, ttl=bad)
            assert [k async for k in store.keys()] == []
    finally:
        await driver.aclose()


@pytest.mark.parametrize("meta", [b'{"expires":{"%s":Infinity}}', b"{not json", b"[]"])
async def test_unreadable_metadata_names_the_key_and_does_not_hide_it(
    tmp_path: Path, meta: bytes
) -> None:
    driver = LocalDriver(tmp_path)
    store: Store[Any] = Store(driver)
    async with store:
        etag = await driver.set("user/7", b"1", expires_at=4e9)
        (tmp_path / "user%2F" / "7#meta").write_bytes(meta.replace(b"%s", etag.encode()))
        for call in (lambda: store.get("user/7"), lambda: store.get_entry("user/7")):
            with pytest.raises(SerializationError) as info:
                await call()
            assert info.value.key == "user/7"
            assert "user/7" in str(info.value)
        assert [k async for k in store.keys()] == ["user/7"]  # listed, not hidden
        await store.set("user/7", 2)  # a plain write repairs it
        assert await store.get("user/7") == 2
