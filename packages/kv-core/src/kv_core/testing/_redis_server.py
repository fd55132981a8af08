"""Start throw-away ``redis-server`` processes (single node or cluster) on loopback.

Standard library only, so every package's tests, the benchmarks and the cross-package
tests can use it. Servers listen on free 127.0.0.1 ports with their data in a temporary
folder; everything started here is killed at interpreter exit as a safety net.

Binaries: env ``REDIS_SERVER_BIN`` / ``REDIS_CLI_BIN``, else ``redis-server`` /
``redis-cli`` on ``PATH``. Set ``KV_TEST_REDIS_URL`` to run tests against an existing
server instead (see :func:`redis_url_from_env`).
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import TracebackType

from ._ports import free_port

__all__ = [
    "RedisCluster",
    "RedisServer",
    "redis_url_from_env",
    "start_redis",
    "start_redis_cluster",
]

_LIVE: set[RedisServer] = set()
_START_TIMEOUT = 20.0


def redis_url_from_env() -> str | None:
    """Return ``KV_TEST_REDIS_URL`` if set: tests then use that server with a unique prefix."""
    return os.environ.get("KV_TEST_REDIS_URL") or None


def _binary(env: str, name: str) -> str:
    path = os.environ.get(env) or shutil.which(name)
    if not path:
        raise FileNotFoundError(f"{name} not found: install Redis or set {env}")
    return path


def _free_cluster_port() -> int:
    # A cluster node also listens on its bus port, port + 10000: both must be free.
    for _ in range(200):
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


def command(port: int, *args: str, host: str = "127.0.0.1", timeout: float = 2.0) -> bytes:
    """Send one command over a fresh socket and return the raw RESP reply (first chunk).

    Good enough for the short control replies the launcher needs (PING, INFO, CLUSTER INFO).
    """
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(b"".join(parts))
        reply = s.recv(65536)
        # Bulk replies (INFO) may span several segments: read until the announced length.
        if reply.startswith(b"$"):
            header, _, body = reply.partition(b"\r\n")
            want = int(header[1:]) + 2
            while len(body) < want:
                more = s.recv(65536)
                if not more:
                    break
                body += more
            reply = header + b"\r\n" + body
        return reply


class RedisServer:
    """A ``redis-server`` child process on a free loopback port.

    Attributes:
        host: Always ``127.0.0.1``.
        port: The TCP port.
        dir: The data folder (AOF/RDB files, logs, ``nodes.conf``).
        url: ``redis://127.0.0.1:<port>/0``.
    """

    def __init__(self, args: Sequence[str], port: int, data_dir: str, *, own_dir: bool) -> None:
        self.host = "127.0.0.1"
        self.port = port
        self.dir = data_dir
        self.url = f"redis://{self.host}:{port}/0"
        self._args = list(args)
        self._own_dir = own_dir
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The process id while running."""
        return self._proc.pid if self._proc is not None else None

    def _start(self) -> None:
        log = open(os.path.join(self.dir, "redis.log"), "ab")  # noqa: SIM115 - owned by Popen
        try:
            self._proc = subprocess.Popen(
                [_binary("REDIS_SERVER_BIN", "redis-server"), *self._args],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.dir,
            )
        finally:
            log.close()
        _LIVE.add(self)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"redis-server exited early; see {self.dir}/redis.log")
            try:
                # EXISTS (not PING) answers -LOADING until the AOF is loaded after a restart;
                # a cluster node answers -CLUSTERDOWN until slots are assigned.
                reply = command(self.port, "EXISTS", "__kv_launcher_probe__")
                if reply.startswith((b":", b"-CLUSTERDOWN", b"-MOVED")):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"redis-server on port {self.port} did not start")
            time.sleep(0.02)

    def _wait_exit(self) -> None:
        if self._proc is not None:
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
        _LIVE.discard(self)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then wait) and delete its data folder. Idempotent."""
        if self._proc is not None:
            self.resume()
            self._proc.terminate()
            self._wait_exit()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def kill(self) -> None:
        """Kill the server with SIGKILL (no shutdown save); the data folder stays."""
        if self._proc is not None:
            self._proc.kill()
            self._wait_exit()

    def restart(self) -> None:
        """Start the server again on the same port and data folder (kills it first if needed)."""
        self.kill()
        self._start()

    def pause(self) -> None:
        """Freeze the process with SIGSTOP: connections stay open but nothing answers."""
        if self._proc is not None and self._proc.poll() is None:
            os.kill(self._proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """Undo :meth:`pause` with SIGCONT."""
        if self._proc is not None and self._proc.poll() is None:
            os.kill(self._proc.pid, signal.SIGCONT)

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"RedisServer(port={self.port}, pid={self.pid})"


def _server_args(port: int, data_dir: str, appendonly: bool, extra: Sequence[str]) -> list[str]:
    args = [
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", data_dir,
        "--save", "",
        "--daemonize", "no",
        "--protected-mode", "no",
        "--logfile", "",
    ]  # fmt: skip
    if appendonly:
        args += ["--appendonly", "yes", "--appendfsync", "always"]
    else:
        args += ["--appendonly", "no"]
    return args + list(extra)


def start_redis(*, appendonly: bool = False, extra_args: Sequence[str] = ()) -> RedisServer:
    """Start a single ``redis-server`` and wait until it answers.

    Args:
        appendonly: Enable the AOF with ``appendfsync always`` (every acknowledged write
            survives SIGKILL).
        extra_args: More ``redis-server`` arguments, e.g. ``["--unixsocket", path]``.
    """
    data_dir = tempfile.mkdtemp(prefix="kv-redis-")
    port = free_port()
    server = RedisServer(
        _server_args(port, data_dir, appendonly, extra_args), port, data_dir, own_dir=True
    )
    try:
        server._start()
    except BaseException:
        server.stop()
        raise
    return server


class RedisCluster:
    """A Redis Cluster of child processes on loopback.

    Attributes:
        nodes: Every node (masters first, as created).
        url: ``redis+cluster://127.0.0.1:<port of the first node>``.
    """

    def __init__(self, nodes: list[RedisServer], root: str) -> None:
        self.nodes = nodes
        self.url = f"redis+cluster://127.0.0.1:{nodes[0].port}" if nodes else ""
        self._root = root

    def primaries(self) -> list[RedisServer]:
        """The nodes currently answering ``ROLE`` as master (live ones only)."""
        out = []
        for node in self.nodes:
            try:
                if b"master" in command(node.port, "ROLE"):
                    out.append(node)
            except OSError:
                continue
        return out

    def wait_ok(self, timeout: float = _START_TIMEOUT) -> None:
        """Wait until every live node reports ``cluster_state:ok`` and every replica has
        finished its initial sync (``master_link_status:up``)."""
        deadline = time.monotonic() + timeout
        while True:
            states = []
            for node in self.nodes:
                if node.pid is None:
                    continue
                try:
                    states.append(b"cluster_state:ok" in command(node.port, "CLUSTER", "INFO"))
                    info = command(node.port, "INFO", "replication")
                    if b"role:slave" in info:
                        states.append(b"master_link_status:up" in info)
                except OSError:
                    states.append(False)
            if states and all(states):
                return
            if time.monotonic() > deadline:
                raise TimeoutError("Redis cluster did not reach cluster_state:ok")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop every node and delete the data folders. Idempotent."""
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self._root, ignore_errors=True)

    def __enter__(self) -> RedisCluster:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_redis_cluster(
    masters: int = 3, replicas: int = 0, *, extra_args: Sequence[str] = ()
) -> RedisCluster:
    """Start ``masters * (1 + replicas)`` cluster nodes and join them with ``redis-cli``.

    Nodes use ``cluster-node-timeout 1000`` so a killed master fails over in seconds.
    """
    root = tempfile.mkdtemp(prefix="kv-redis-cluster-")
    nodes: list[RedisServer] = []
    cluster = RedisCluster(nodes, root)
    try:
        for i in range(masters * (1 + replicas)):
            data_dir = os.path.join(root, f"node{i}")
            os.mkdir(data_dir)
            port = _free_cluster_port()
            cluster_args = [
                "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", "1000",
                "--cluster-replica-validity-factor", "0",
                # Replicas sync at once instead of after the default 5 s diskless delay.
                "--repl-diskless-sync-delay", "0",
            ]  # fmt: skip
            args = [*_server_args(port, data_dir, False, extra_args), *cluster_args]
            node = RedisServer(args, port, data_dir, own_dir=False)
            nodes.append(node)
            node._start()
        cluster.url = f"redis+cluster://127.0.0.1:{nodes[0].port}"
        subprocess.run(
            [
                _binary("REDIS_CLI_BIN", "redis-cli"),
                "--cluster",
                "create",
                *(f"127.0.0.1:{n.port}" for n in nodes),
                "--cluster-replicas",
                str(replicas),
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        cluster.wait_ok()
    except BaseException:
        cluster.stop()
        raise
    return cluster


@atexit.register
def _kill_leftovers() -> None:
    for server in list(_LIVE):
        server.stop()
