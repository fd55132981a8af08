"""Redis servers for the tests: started once per session on free loopback ports.

Set ``KV_TEST_REDIS_URL`` to use an existing single-node server instead (each test then
works under its own unique key prefix, so nothing else in that database is touched).
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import pytest
from kv_core.testing import (
    RedisCluster,
    RedisServer,
    UrlHarness,
    redis_url_from_env,
    start_redis,
    start_redis_cluster,
)


def closed_port() -> int:
    """A loopback port nothing listens on (bound then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer | None]:
    """A single-node server (None when ``KV_TEST_REDIS_URL`` points at an existing one)."""
    if redis_url_from_env():
        yield None
        return
    server = start_redis()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer | None) -> str:
    """URL of the single-node server under test."""
    return redis_url_from_env() or (redis_server.url if redis_server else "")


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    """A 3-master Redis Cluster without replicas."""
    cluster = start_redis_cluster(masters=3)
    yield cluster
    cluster.stop()


@pytest.fixture
def prefix() -> str:
    """A key prefix unique to this test."""
    return f"kvtest:{uuid.uuid4().hex[:12]}:"


@pytest.fixture(params=["node", "cluster"])
def topology(request: pytest.FixtureRequest) -> str:
    """Run a test against a single node and against the cluster."""
    return str(request.param)


@pytest.fixture
def kv_url(request: pytest.FixtureRequest, topology: str) -> str:
    """URL of the server of the current topology."""
    if topology == "cluster":
        return str(request.getfixturevalue("redis_cluster").url)
    return str(request.getfixturevalue("redis_url"))


@pytest.fixture
def kv_harness(kv_url: str, prefix: str) -> UrlHarness:
    """Fresh isolated storage (a unique prefix) on the current topology; picklable."""
    scheme = kv_url.split("://", 1)[0]
    return UrlHarness(
        kv_url,
        unreachable_url=f"{scheme}://127.0.0.1:{closed_port()}",
        prefix=prefix,
    )
