"""Azure-specific behaviour against Azurite: blob layout, etags, TTL, revalidation, batches."""

from __future__ import annotations

from typing import Any

import pytest
from azure.storage.blob.aio import ContainerClient
from kv_azure import AzureBlobDriver
from kv_core import (
    NOT_MODIFIED,
    Capability,
    PreconditionFailedError,
    Store,
)
from kv_core.testing import TestClock


async def _blobs(driver: AzureBlobDriver) -> dict[str, dict[str, str]]:
    client = driver.container_client
    return {b.name: dict(b.metadata or {}) async for b in client.list_blobs(include=["metadata"])}


async def test_declares_its_capabilities(driver: AzureBlobDriver) -> None:
    for flag in (Capability.STREAM, Capability.CONDITIONAL_GET, Capability.DELETE_MANY):
        assert flag in driver.capabilities
    assert Capability.NATIVE_TTL not in driver.capabilities


async def test_keys_are_stored_under_escaped_blob_names(driver: AzureBlobDriver) -> None:
    keys = ["user/1", "../x", "a//b", "dir/", "Upper.", "%41", "CON", "a\\b", "é"]
    for key in keys:
        await driver.set(key, b"v")
    assert set(await _blobs(driver)) == {
        "user/1",
        "..~/x",
        "a/~/b",
        "dir/~",
        "Upper.~",
        "%2541",
        "CON",
        "a%5Cb",
        "%C3%A9",
    }
    assert sorted([k async for k in driver.keys()]) == sorted(keys)


# (prefix, keys starting with it, other keys): an earlier escaping of Windows device
# names and trailing dots listed none of the first keys (issue 11).
LISTING_CASES = [
    ("con", ["config/app", "console", "con"], ["co", "cpn"]),
    ("aux", ["auxiliary"], ["au"]),
    ("prn", ["prnt"], ["pr"]),
    ("com1", ["com10", "com1"], ["com2"]),
    ("lpt1", ["lpt1x"], ["lpt"]),
    ("Con", ["Contact"], ["con"]),
    ("COM1.", ["COM1.", "COM1.x", "COM1./y"], ["COM1"]),
    ("NUL", ["NUL0", "NUL"], ["NU"]),
    ("a/.", ["a/.", "a/./b", "a/..", "a/.x"], ["a/b", "a"]),
    ("dir/", ["dir/", "dir//x", "dir/y"], ["dir", "dirx"]),
]


@pytest.mark.parametrize(("prefix", "inside", "outside"), LISTING_CASES, ids=repr)
async def test_listing_by_prefix_is_exact(
    driver: AzureBlobDriver, prefix: str, inside: list[str], outside: list[str]
) -> None:
    for key in inside + outside:
        await driver.set(key, b"v")
    assert sorted([k async for k in driver.keys(prefix)]) == sorted(inside)
    assert await driver.clear(prefix) == len(inside)
    assert sorted([k async for k in driver.keys()]) == sorted(outside)


async def test_etag_is_the_blob_etag(driver: AzureBlobDriver) -> None:
    etag = await driver.set("k", b"one")
    props = await driver.container_client.get_blob_client("k").get_blob_properties()
    assert etag == props.etag
    entry = await driver.get("k")
    assert entry is not None
    assert entry.etag == props.etag


async def test_expiry_lives_in_metadata_and_expired_blobs_are_invisible(
    connection_string: str, container: str
) -> None:
    clock = TestClock()
    driver = AzureBlobDriver(
        container, connection_string=connection_string, create_container=True, clock=clock
    )
    async with Store(driver) as store:
        await store.set("short", 1, ttl=10)
        await store.set("long", 2, ttl=1000)
        await store.set("forever", 3)
        meta = await _blobs(driver)
        assert abs(float(meta["short"]["kvexpires"]) - (clock() + 10)) < 5
        assert "kvexpires" not in meta["forever"]
        clock.advance(11)
        assert await store.get("short", default=None) is None
        assert not await store.exists("short")
        assert sorted([k async for k in store.keys()]) == ["forever", "long"]
        assert await driver.get_many(["short", "long"]) == [None, await driver.get("long")]
        # The expired blob is still stored until purged; purging spares live blobs.
        assert "short" in await _blobs(driver)
        assert await driver.purge_expired() == 1
        assert set(await _blobs(driver)) == {"long", "forever"}
        assert await driver.purge_expired() == 0


async def test_expired_version_cannot_be_matched_or_deleted(
    connection_string: str, container: str
) -> None:
    clock = TestClock()
    driver = AzureBlobDriver(
        container, connection_string=connection_string, create_container=True, clock=clock
    )
    async with Store(driver) as store:
        await store.set("k", 1, ttl=5)
        entry = await store.get_entry("k")
        clock.advance(6)
        with pytest.raises(PreconditionFailedError):
            await store.set("k", 2, if_match=entry.etag)
        # A second driver, which never saw the version, asks the service about it.
        other = AzureBlobDriver(container, connection_string=connection_string, clock=clock)
        async with other:
            assert await other.delete("k") is False
        assert await store.delete("k") is False


async def test_get_if_changed_revalidates_without_the_body(driver: AzureBlobDriver) -> None:
    etag = await driver.set("k", b"x" * 100_000)
    assert await driver.get_if_changed("k", etag) is NOT_MODIFIED
    # A fresh driver has no memory of the version and still answers NOT_MODIFIED.
    fresh = AzureBlobDriver(container_client=driver.container_client)
    assert await fresh.get_if_changed("k", etag) is NOT_MODIFIED
    await fresh.aclose()
    new_etag = await driver.set("k", b"new")
    changed = await driver.get_if_changed("k", etag)
    assert changed is not NOT_MODIFIED
    assert changed is not None
    assert (changed.value, changed.etag) == (b"new", new_etag)
    await driver.delete("k")
    assert await driver.get_if_changed("k", new_etag) is None


async def test_get_if_changed_reports_an_expired_version_as_missing(
    connection_string: str, container: str
) -> None:
    clock = TestClock()
    driver = AzureBlobDriver(
        container, connection_string=connection_string, create_container=True, clock=clock
    )
    async with driver:
        etag = await driver.set("k", b"v", expires_at=clock() + 5)
        clock.advance(6)
        assert await driver.get_if_changed("k", etag) is None


async def test_delete_many_falls_back_from_blob_batch_on_azurite(
    driver: AzureBlobDriver,
) -> None:
    items = [(f"k{i}", b"v") for i in range(300)]
    await driver.set_many(items)
    assert await driver.delete_many([k for k, _ in items] + ["missing", "k0"]) == 300
    # Azurite answers Blob Batch sub-requests with 400: the driver noticed and switched.
    assert driver.use_blob_batch is False
    assert await _blobs(driver) == {}
    await driver.set_many(items[:3])
    assert await driver.delete_many(["k0", "k1", "nope"]) == 2


async def test_clear_counts_live_keys_and_removes_expired_blobs(
    connection_string: str, container: str
) -> None:
    clock = TestClock()
    driver = AzureBlobDriver(
        container, connection_string=connection_string, create_container=True, clock=clock
    )
    async with driver:
        await driver.set("a/1", b"v")
        await driver.set("a/2", b"v", expires_at=clock() + 1)
        await driver.set("b/1", b"v")
        clock.advance(2)
        assert await driver.clear("a/") == 1
        assert set(await _blobs(driver)) == {"b/1"}


async def test_long_namespaced_keys_are_hashed_and_listed_exactly(
    driver: AzureBlobDriver,
) -> None:
    store: Store[Any] = Store(driver)
    ns = store.namespace("n" * 1000)
    keys = ["😀" * 1024, "x" * 1024, "/".join("a" * 400)]
    for i, key in enumerate(keys):
        await ns.set(key, i)
    assert all(len(name) <= 1024 for name in await _blobs(driver))
    assert sorted([k async for k in ns.keys()]) == sorted(keys)
    assert [await ns.get(k) for k in keys] == [0, 1, 2]
    assert [k async for k in ns.keys(prefix="😀")] == [keys[0]]
    assert await ns.clear() == 3


async def test_a_user_owned_container_client_is_left_open(
    connection_string: str, container: str
) -> None:
    client = ContainerClient.from_connection_string(connection_string, container)
    async with client:
        await client.create_container()
        driver = AzureBlobDriver(container_client=client)
        await driver.set("k", b"v")
        await driver.aclose()
        # Still usable by its owner after the driver closed.
        assert await (await client.download_blob("k")).readall() == b"v"
