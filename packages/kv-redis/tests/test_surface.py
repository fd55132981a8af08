"""The public surface and the URL registrations."""

from __future__ import annotations

from importlib.metadata import entry_points

import kv_redis
from kv_redis import RedisDriver


def test_public_surface_is_exactly_all() -> None:
    public = {name for name in dir(kv_redis) if not name.startswith("_")}
    assert public == set(kv_redis.__all__) == {"RedisDriver"}


def test_every_scheme_is_registered_to_from_url() -> None:
    found = {ep.name: ep.value for ep in entry_points(group="kv_core.backends")}
    for scheme in ("redis", "rediss", "unix", "redis+cluster"):
        assert found[scheme] == "kv_redis:RedisDriver.from_url"


def test_from_url_parses_without_connecting() -> None:
    driver = RedisDriver.from_url("rediss://:pw@example.invalid:6380/4?prefix=app:")
    assert driver.prefix == "app:"
    assert driver.name == "rediss://example.invalid:6380/4 prefix='app:'"
    cluster = RedisDriver.from_url("redis+cluster://example.invalid:7000", prefix="")
    assert cluster.name == "redis+cluster://example.invalid:7000 prefix=''"
