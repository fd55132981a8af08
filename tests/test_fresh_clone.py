"""The README's demo command works for a newcomer (issue 12 item 1).

Clones HEAD and runs the demo command the README gives, in a clean environment: an empty
HOME, ``PATH=/usr/local/bin:/usr/bin:/bin`` (no uv, no ~/.local/bin), only the machine's
CA-bundle variables kept. A run in the developer's own shell can hide a missing install
step; this cannot.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_KEEP = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "PIP_CERT")


def _readme_commands() -> list[str]:
    """The commands of the README's "The two commands" block, in order."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## The two commands", 1)[1]
    block = section.split("```console", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line[:1].strip()]


def test_readme_names_the_demo_and_the_test_command() -> None:
    commands = _readme_commands()
    assert commands[0] == "scripts/demo"
    assert commands[1] == "scripts/test"
    assert (ROOT / ".ci" / "run").read_text().rstrip().endswith("exec scripts/test")


def test_demo_runs_from_a_fresh_clone_in_a_clean_shell(tmp_path: Path) -> None:
    subprocess.run(["git", "clone", "-q", str(ROOT), str(tmp_path / "clone")], check=True)
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
    env |= {k: os.environ[k] for k in _KEEP if k in os.environ}
    done = subprocess.run(
        ["bash", "-c", _readme_commands()[0]],
        cwd=tmp_path / "clone",
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, (
        f"exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    out = re.sub(r"\x1b\[[0-9;]*m", "", done.stdout)
    assert "PreconditionFailedError" in out  # the etag chapter ran
    assert "50 × await store.update" in out  # and the last chapters too
    assert not (home / ".local" / "bin" / "uv").exists()  # nothing installed outside the clone
