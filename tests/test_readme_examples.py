"""Every example in every README runs (issue 12): shell sessions and Python blocks.

- ```console blocks: each ``$ command`` line runs in one bash session per block, in a
  fresh folder, with the workspace's ``kv`` on PATH; the lines under a command are its
  expected output (``...`` in a line matches any text; a lone ``...`` any lines). A command
  without output lines must still succeed. Blocks without a ``$`` prompt hold install or
  repository commands (``pip install``, ``scripts/test``), covered by test_wheels.py and CI.
- ```python blocks run as scripts in a fresh folder, unless the line before the block is
  ``<!-- not run: reason -->``; a block that needs an earlier one says so with
  ``<!-- continues -->``. ``redis://localhost:6379`` (and ``host="localhost", port=6379``)
  and the Azure connection string point at servers these tests start.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
READMES = sorted([ROOT / "README.md", *ROOT.glob("packages/*/README.md")])
_FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass
class Block:
    readme: Path
    line: int
    lang: str
    text: str
    note: str  # the HTML comment on the line before the fence, if any

    @property
    def id(self) -> str:
        return f"{self.readme.relative_to(ROOT)}:{self.line}"


def _blocks() -> list[Block]:
    found = []
    for readme in READMES:
        lines = readme.read_text(encoding="utf-8").splitlines()
        i = 0
        while i < len(lines):
            m = _FENCE.match(lines[i])
            if m and m.group(1):
                start = i
                i += 1
                body = []
                while i < len(lines) and not lines[i].startswith("```"):
                    body.append(lines[i])
                    i += 1
                prev = lines[start - 1].strip() if start else ""
                note = prev if prev.startswith("<!--") else ""
                found.append(Block(readme, start + 1, m.group(1), "\n".join(body) + "\n", note))
            i += 1
    return found


BLOCKS = _blocks()
SHELL = [b for b in BLOCKS if b.lang in ("console", "shell") and "\n$ " in "\n" + b.text]
PYTHON = [b for b in BLOCKS if b.lang == "python"]


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, str]]:
    from kv_core.testing import start_azurite, start_redis

    redis = start_redis()
    azurite = start_azurite()
    try:
        yield {"redis": redis.url, "azure": azurite.connection_string}
    finally:
        redis.stop()
        azurite.stop()


def _env(servers: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KV_", "AZURE_"))}
    env["PATH"] = sysconfig.get_path("scripts") + os.pathsep + env.get("PATH", "")
    env["AZURE_STORAGE_CONNECTION_STRING"] = servers["azure"]
    return env


def _local_urls(text: str, servers: dict[str, str]) -> str:
    base = servers["redis"].rstrip("/").rsplit("/", 1)[0]  # redis://127.0.0.1:PORT
    port = base.rsplit(":", 1)[1]
    text = text.replace('host="localhost", port=6379', f'host="127.0.0.1", port={port}')
    return re.sub(r"redis://localhost:6379", base, text)


# -- shell ---------------------------------------------------------------------------------


def _session(text: str) -> list[tuple[str, list[str]]]:
    """``[(command, expected output lines)]`` of a console block."""
    steps: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif steps and line.strip():
            steps[-1][1].append(line.rstrip())
    return steps


def _matches(expected: list[str], actual: list[str]) -> bool:
    if expected == ["..."]:
        return True
    if len(expected) != len(actual):
        return False
    for want, got in zip(expected, actual, strict=True):
        pattern = ".*".join(re.escape(part) for part in want.split("..."))
        if not re.fullmatch(pattern, got):
            return False
    return True


@pytest.mark.parametrize("block", SHELL, ids=[b.id for b in SHELL])
def test_shell_example_runs_as_shown(block: Block, servers: dict[str, str], tmp_path: Path) -> None:
    steps = _session(_local_urls(block.text, servers))
    marker = "__kv_readme_step__"
    script = "".join(f"{cmd}\necho {marker} $?\n" for cmd, _ in steps)
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=_env(servers),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    outputs = done.stdout.split(f"{marker} ")
    assert len(outputs) == len(steps) + 1, f"{block.id}: the session stopped early\n{done.stderr}"
    for i, (cmd, expected) in enumerate(steps):
        out = outputs[i].split("\n", 1)[1] if i else outputs[0]
        status = outputs[i + 1].split("\n", 1)[0]
        actual = [line.rstrip() for line in out.splitlines() if line.strip()]
        assert status == "0", f"{block.id}: `{cmd}` exited {status}\n{done.stderr}"
        if expected:
            assert _matches(expected, actual), f"{block.id}: `{cmd}` printed {actual}"


# -- python --------------------------------------------------------------------------------


def _python_sources() -> list[tuple[str, str]]:
    """``(id, source)`` of each runnable block, joined with the blocks it continues."""
    runs: list[tuple[str, str]] = []
    for block in PYTHON:
        if block.note.startswith("<!-- not run"):
            continue
        if block.note.startswith("<!-- continues") and runs:
            last_id, last_src = runs.pop()
            runs.append((last_id, last_src + "\n" + block.text))
        else:
            runs.append((block.id, block.text))
    return runs


PY_RUNS = _python_sources()


@pytest.mark.parametrize(("block_id", "source"), PY_RUNS, ids=[r[0] for r in PY_RUNS])
def test_python_example_runs(
    block_id: str, source: str, servers: dict[str, str], tmp_path: Path
) -> None:
    script = tmp_path / "example.py"
    script.write_text(textwrap.dedent(_local_urls(source, servers)), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=_env(servers),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"{block_id} failed:\n{done.stdout}\n{done.stderr}"


def test_every_readme_has_examples_that_run() -> None:
    assert len(PY_RUNS) >= 5
    assert len(SHELL) >= 2
