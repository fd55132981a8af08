"""Start and stop an Azurite blob emulator for tests and benchmarks (standard library only).

Azurite is the npm package ``azurite``; ``scripts/bootstrap`` installs it into
``<repo>/.tools``. The binary is found through, in order: the ``AZURITE_BIN`` environment
variable, ``<repo>/.tools/node_modules/.bin/azurite-blob`` (or ``azurite``) where ``<repo>``
is found by walking up from ``KV_REPO_ROOT`` or the current directory, and finally
``azurite-blob`` / ``azurite`` on ``PATH``.

Only the blob service runs, on a free loopback port, with its data in a folder (a fresh
temporary one unless ``data_dir`` is given). Azurite writes its metadata to disk only every
few seconds, so :meth:`Azurite.stop` sends SIGTERM and waits, which flushes it; a SIGKILL
would lose recent writes.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import TracebackType

from ._ports import free_port

__all__ = [
    "AZURITE_ACCOUNT_KEY",
    "AZURITE_ACCOUNT_NAME",
    "Azurite",
    "azurite_connection_string_from_env",
    "find_azurite",
    "start_azurite",
]

#: The well-known development account every Azurite accepts (public, not a secret).
AZURITE_ACCOUNT_NAME = "devstoreaccount1"
AZURITE_ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

_ENV_CONNECTION_STRING = "KV_TEST_AZURE_CONNECTION_STRING"
_START_TIMEOUT = 60.0


def azurite_connection_string_from_env() -> str | None:
    """Return ``KV_TEST_AZURE_CONNECTION_STRING`` if set: tests then use that emulator."""
    return os.environ.get(_ENV_CONNECTION_STRING) or None


def _repo_roots() -> list[Path]:
    starts = [Path(p) for p in (os.environ.get("KV_REPO_ROOT"), os.getcwd()) if p]
    roots: list[Path] = []
    for start in starts:
        roots.extend([start, *start.resolve().parents])
    return roots


def find_azurite() -> list[str]:
    """Return the command that starts Azurite's blob service.

    Raises:
        FileNotFoundError: no Azurite was found; the message says how to install it.
    """
    explicit = os.environ.get("AZURITE_BIN")
    if explicit:
        return [explicit]
    for root in _repo_roots():
        bin_dir = root / ".tools" / "node_modules" / ".bin"
        for name in ("azurite-blob", "azurite"):
            if (bin_dir / name).exists():
                return [str(bin_dir / name)]
    for name in ("azurite-blob", "azurite"):
        found = shutil.which(name)
        if found:
            return [found]
    raise FileNotFoundError(
        "Azurite not found: run `npm install --prefix .tools azurite@3.35.0` at the repository "
        "root (scripts/bootstrap does), or set AZURITE_BIN"
    )


class Azurite:
    """A running Azurite blob service; see :func:`start_azurite`.

    Attributes:
        blob_port: The loopback port of the blob endpoint (kept across restarts).
        data_dir: The folder holding Azurite's data (kept across restarts).
        host: Always ``127.0.0.1``.
    """

    host = "127.0.0.1"

    def __init__(self, command: list[str], data_dir: str, *, owns_data_dir: bool) -> None:
        self._command = command
        self.data_dir = data_dir
        self._owns_data_dir = owns_data_dir
        self.blob_port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def blob_endpoint(self) -> str:
        """The blob service URL of the development account."""
        return f"http://{self.host}:{self.blob_port}/{AZURITE_ACCOUNT_NAME}"

    @property
    def connection_string(self) -> str:
        """A connection string for the development account on this emulator."""
        return (
            "DefaultEndpointsProtocol=http;"
            f"AccountName={AZURITE_ACCOUNT_NAME};AccountKey={AZURITE_ACCOUNT_KEY};"
            f"BlobEndpoint={self.blob_endpoint};"
        )

    @property
    def running(self) -> bool:
        """True while the Azurite process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the process (on the same port and data as before) and wait until it answers."""
        if self.running:
            return
        args = [
            *self._command,
            "--blobHost",
            self.host,
            "--blobPort",
            str(self.blob_port),
            "--location",
            self.data_dir,
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--loose",
            "--silent",
        ]
        if not Path(self._command[-1]).name.startswith("azurite-blob"):
            # The all-in-one binary also starts queue and table services: keep them off
            # the default ports so parallel runs do not collide.
            args += ["--queuePort", str(free_port()), "--tablePort", str(free_port())]
        log = open(os.path.join(self.data_dir, "azurite.log"), "ab")  # noqa: SIM115
        try:
            self._process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        finally:
            log.close()
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        url = f"{self.blob_endpoint}?comp=list"
        while True:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"Azurite exited with code {self._process.returncode}: {self._log_tail()}"
                )
            try:
                with urllib.request.urlopen(url, timeout=2):
                    return
            except urllib.error.HTTPError:
                return  # any HTTP answer (403 without a signature) means it is serving
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise TimeoutError(
                        f"Azurite did not answer within {_START_TIMEOUT:.0f}s: {self._log_tail()}"
                    ) from None
                time.sleep(0.1)

    def _log_tail(self) -> str:
        try:
            return Path(self.data_dir, "azurite.log").read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 30.0) -> None:
        """Stop with SIGTERM (Azurite then saves its metadata) and wait; data is kept."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        process.send_signal(signal.SIGCONT)  # a paused process must run to handle SIGTERM
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        """Stop with SIGKILL: unsaved metadata (the last few seconds of writes) is lost."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()  # SIGKILL also ends a paused process
            process.wait()

    def pause(self) -> None:
        """Freeze the process (SIGSTOP): connections open, nothing answers."""
        if self._process is not None:
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Undo :meth:`pause` (SIGCONT)."""
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    def restart(self) -> None:
        """Stop (if running) and start again on the same port with the same data."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop and remove the data folder if this object created it."""
        self.stop()
        if self._owns_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> Azurite:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Azurite {self.blob_endpoint} {state}>"


def start_azurite(*, data_dir: str | None = None) -> Azurite:
    """Start Azurite's blob service on a free loopback port and wait until it answers.

    Args:
        data_dir: Folder for Azurite's data; a fresh temporary folder (removed by
            :meth:`Azurite.close`) when None.

    Returns:
        The running emulator. Use it as a context manager, or call ``close()``.
    """
    command = find_azurite()
    owns = data_dir is None
    folder = tempfile.mkdtemp(prefix="kv-azurite-") if data_dir is None else data_dir
    os.makedirs(folder, exist_ok=True)
    server = Azurite(command, folder, owns_data_dir=owns)
    try:
        server.start()
    except BaseException:
        server.close()
        raise
    return server
