"""Build redis-py clients from URLs, describe them without secrets, and derive our own
connection settings from them."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from redis.asyncio import Redis, RedisCluster
from redis.backoff import NoBackoff
from redis.retry import Retry

__all__ = ["SCHEMES", "connection_overrides", "describe_client", "split_url"]

#: URL scheme -> (is a cluster, scheme redis-py understands).
SCHEMES: dict[str, tuple[bool, str]] = {
    "redis": (False, "redis"),
    "rediss": (False, "rediss"),
    "unix": (False, "unix"),
    "redis+cluster": (True, "redis"),
    "rediss+cluster": (True, "rediss"),
}


def no_retry() -> Retry:
    """A redis-py Retry that never retries (we decide what is safe to resend)."""
    return Retry(NoBackoff(), 0)


def split_url(url: str) -> tuple[bool, str, dict[str, str], str]:
    """Split a kv Redis URL.

    Returns:
        (is_cluster, URL for redis-py without our own query options, our options
        (``prefix``), redacted description of the URL).

    Raises:
        ValueError: The scheme is not one of :data:`SCHEMES`.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise ValueError(f"not a Redis URL scheme: {scheme!r} (expected one of {sorted(SCHEMES)})")
    cluster, client_scheme = SCHEMES[scheme]
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {k: v for k, v in query if k == "prefix"}
    rest = urlencode([(k, v) for k, v in query if k != "prefix"])
    client_url = urlunsplit((client_scheme, parts.netloc, parts.path, rest, ""))
    if scheme == "unix":
        db = _database(dict(query).get("db", "0"), "the db= query option", url)
        return cluster, client_url, ours, f"unix://{parts.path}?db={db}"
    host = parts.hostname or "localhost"
    try:
        port = parts.port or 6379
    except ValueError as exc:
        raise ValueError(f"bad port in Redis URL {scheme}://{host}:...: {exc}") from None
    where = f"{scheme}://{host}:{port}"
    # redis-py silently ignores a path it cannot read as a number (database 0 then).
    db = _database(parts.path[1:] if parts.path not in ("", "/") else "0", "the URL path", where)
    if "db" in dict(query):
        db = _database(dict(query)["db"], "the db= query option", where)
    if cluster and db:
        raise ValueError(f"Redis Cluster has only database 0, got {db} in {where}")
    redacted = where if cluster else f"{where}/{db}"
    return cluster, client_url, ours, redacted


def _database(text: str, part: str, where: str) -> int:
    """The database number ``text`` taken from ``part`` of the URL, or ValueError."""
    if not (text.isascii() and text.isdigit()):
        raise ValueError(
            f"the database in {part} of {where} must be a number such as 0, got {text!r}"
        )
    return int(text)


def describe_client(client: Redis | RedisCluster) -> str:
    """A redacted URL-like description of a client (host, port, db; never a password)."""
    if isinstance(client, RedisCluster):
        nodes = client.nodes_manager.startup_nodes
        first = next(iter(nodes.values()), None)
        where = f"{first.host}:{first.port}" if first is not None else "?"
        return f"redis+cluster://{where}"
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix://{kwargs['path']}?db={kwargs.get('db', 0)}"
    scheme = "rediss" if "ssl_cert_reqs" in kwargs or "ssl_context" in kwargs else "redis"
    host, port = kwargs.get("host", "localhost"), kwargs.get("port", 6379)
    return f"{scheme}://{host}:{port}/{kwargs.get('db', 0)}"


def connection_overrides(timeout: float | None) -> dict[str, Any]:
    """Settings forced on the connections the driver opens from a client's settings.

    Raw bytes (a user client with ``decode_responses=True`` still works), no blind retry
    (see the README), no health-check PING before commands, and our timeout.
    """
    overrides: dict[str, Any] = {
        "decode_responses": False,
        "retry": no_retry(),
        "retry_on_timeout": False,
        "retry_on_error": [],
        "health_check_interval": 0,
    }
    if timeout is not None:
        overrides["socket_timeout"] = timeout
        overrides["socket_connect_timeout"] = timeout
    return overrides
