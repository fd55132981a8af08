"""With every package installed, each URL scheme reaches its driver through entry points."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from kv_azure import AzureBlobDriver
from kv_cache import CachedDriver
from kv_core import INSTALL_HINTS, MemoryDriver, Store, default_registry, open_driver, open_store
from kv_local import LocalDriver
from kv_redis import RedisDriver

# A well-formed connection string for an endpoint nobody listens on: drivers connect lazily.
_AZURE = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    "AccountKey=Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4;"
    "BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;"
)


def test_every_first_party_scheme_is_registered_by_an_installed_package() -> None:
    names = {ep.name for ep in entry_points(group="kv_core.backends")}
    assert set(INSTALL_HINTS) <= names
    assert set(INSTALL_HINTS) <= set(default_registry.schemes())


def test_every_entry_point_loads() -> None:
    for ep in entry_points(group="kv_core.backends"):
        assert callable(ep.load()), ep


@pytest.mark.parametrize(
    ("url", "options", "cls"),
    [
        ("memory://", {}, MemoryDriver),
        ("file:{tmp}", {}, LocalDriver),
        ("file://{tmp}", {}, LocalDriver),
        ("redis://127.0.0.1:9/0", {}, RedisDriver),
        ("rediss://127.0.0.1:9/0", {}, RedisDriver),
        ("unix:///tmp/kv-no-such.sock", {}, RedisDriver),
        ("redis+cluster://127.0.0.1:9", {}, RedisDriver),
        ("azure://container", {"connection_string": _AZURE}, AzureBlobDriver),
        ("cache+memory://", {}, CachedDriver),
        ("cache+file:{tmp}", {}, CachedDriver),
    ],
)
async def test_url_opens_the_right_driver(
    url: str, options: dict[str, Any], cls: type, tmp_path: Path
) -> None:
    driver = open_driver(url.format(tmp=tmp_path), **options)
    try:
        assert isinstance(driver, cls)
    finally:
        await driver.aclose()


async def test_cache_over_a_local_folder_round_trips_through_the_registry(tmp_path: Path) -> None:
    async with open_store(f"cache+file:{tmp_path}") as store:
        await store.set("a/b", {"x": 1})
        assert await store.get("a/b") == {"x": 1}
    # The value reached the folder as plain JSON.
    async with open_store(f"file:{tmp_path}") as plain:
        assert await plain.get("a/b") == {"x": 1}


async def test_secrets_never_appear_in_repr_or_names() -> None:
    driver = open_driver("azure://container", connection_string=_AZURE)
    try:
        store: Store[Any] = Store(driver)
        for text in (repr(driver), driver.name, repr(store)):
            assert "Zm9vYmFy" not in text
    finally:
        await driver.aclose()
    driver = open_driver("redis://user:hunter2@127.0.0.1:9/0")
    try:
        for text in (repr(driver), driver.name):
            assert "hunter2" not in text
    finally:
        await driver.aclose()
