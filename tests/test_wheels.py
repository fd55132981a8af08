"""The built wheels install and work outside the workspace, with only declared dependencies."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["kv-core", "kv-local", "kv-redis", "kv-azure", "kv-cache", "kv-keyvalue"]

SMOKE = textwrap.dedent(
    """
    import asyncio, importlib, importlib.metadata as md, pathlib, sys, tempfile
    for name in ("kv_core", "kv_local", "kv_redis", "kv_azure", "kv_cache", "kv_keyvalue"):
        module = importlib.import_module(name)
        assert pathlib.Path(module.__file__).with_name("py.typed").exists(), name
        assert "site-packages" in module.__file__, module.__file__
    from kv_core import open_store

    async def main():
        with tempfile.TemporaryDirectory() as folder:
            for url in ("memory://", f"file:{folder}", f"cache+file:{folder}"):
                async with open_store(url) as store:
                    await store.set("k", {"v": [1, 2]}, ttl=60)
                    assert await store.get("k") == {"v": [1, 2]}, url
                    assert await store.update("n", lambda n: n + 1, default=0) >= 1
            from kv_keyvalue import KeyValueAdapter  # py-key-value itself is not installed
            async with KeyValueAdapter.from_url(f"file:{folder}/pykv") as kv:
                await kv.put("k", {"v": 1}, collection="tools/list", ttl=60)
                assert await kv.get("k", collection="tools/list") == {"v": 1}
                assert await kv.put_if_absent("k", {"v": 2}, collection="tools/list") is False
                assert await kv.collections() == ["tools/list"]
    asyncio.run(main())
    print("wheels ok", md.version("kv-core"))
    """
)


@pytest.mark.skipif(shutil.which("uv") is None, reason="building wheels needs uv on PATH")
def test_wheels_install_outside_the_workspace_and_work(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_PROJECT"))}
    env["UV_PYTHON_DOWNLOADS"] = "never"
    for package in PACKAGES:
        subprocess.run(
            [
                "uv",
                "build",
                "--package",
                package,
                "--no-sources",
                "--wheel",
                "--out-dir",
                str(dist),
                "-q",
            ],
            cwd=ROOT,
            env=env,
            check=True,
        )
    wheels = sorted(str(p) for p in dist.glob("*.whl"))
    assert len(wheels) == len(PACKAGES)
    venv = tmp_path / "venv"
    subprocess.run(
        ["uv", "venv", "-q", "--python", sys.executable, str(venv)],
        cwd=tmp_path,
        env=env,
        check=True,
    )
    python = venv / "bin" / "python"
    subprocess.run(
        ["uv", "pip", "install", "-q", "--python", str(python), *wheels],
        cwd=tmp_path,
        env=env,
        check=True,
    )
    result = subprocess.run(
        [str(python), "-c", SMOKE],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "wheels ok 0.1.0" in result.stdout
    kv = subprocess.run(
        [str(venv / "bin" / "kv"), "--version"], capture_output=True, text=True, check=False
    )
    assert kv.returncode == 0, kv.stderr
