"""No symbolic link planted inside the root leads outside it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from kv_core import BackendError
from kv_local import LocalDriver

from ._helpers import names


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret").write_bytes(b"secret")
    return folder


async def test_a_linked_folder_is_refused(tmp_path: Path, outside: Path) -> None:
    root = tmp_path / "root"
    driver = LocalDriver(root)
    try:
        await driver.set("ok", b"1")
        os.symlink(outside, root / "evil%2F")
        with pytest.raises(BackendError) as info:
            await driver.set("evil/x", b"pwned")
        assert info.value.key == "evil/x"
        with pytest.raises(BackendError):
            await driver.get("evil/secret")
        assert names(outside) == ["secret"]
        assert [k async for k in driver.keys()] == ["ok"]
        with pytest.raises(BackendError):  # listing through the link is refused too
            [k async for k in driver.keys("evil/")]
    finally:
        await driver.aclose()


async def test_a_linked_value_file_is_never_read_or_written_through(
    tmp_path: Path, outside: Path
) -> None:
    root = tmp_path / "root"
    driver = LocalDriver(root)
    try:
        await driver.set("ok", b"1")
        os.symlink(outside / "secret", root / "leak")
        with pytest.raises(BackendError):
            await driver.get("leak")
        with pytest.raises(BackendError):
            await driver.set("leak", b"x", if_absent=True)
        await driver.set("leak", b"mine")  # replaces the link itself
        assert (outside / "secret").read_bytes() == b"secret"
        assert not (root / "leak").is_symlink()
        entry = await driver.get("leak")
        assert entry is not None
        assert entry.value == b"mine"
    finally:
        await driver.aclose()


async def test_a_fifo_does_not_hang_a_read(tmp_path: Path) -> None:
    driver = LocalDriver(tmp_path)
    try:
        await driver.set("ok", b"1")
        os.mkfifo(tmp_path / "pipe")
        with pytest.raises(BackendError):
            await driver.get("pipe")
    finally:
        await driver.aclose()
