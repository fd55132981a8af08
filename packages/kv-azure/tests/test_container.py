"""A missing container is created on first write; create_container=False forbids it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from azure.storage.blob.aio import ContainerClient
from kv_azure import AzureBlobDriver
from kv_core import BackendError, BackendUnavailableError, Store, open_store
from kv_core._cli import main as kv_main


def _new_container() -> str:
    return f"kv-new-{uuid.uuid4().hex[:20]}"


async def _container_exists(connection_string: str, name: str) -> bool:
    async with ContainerClient.from_connection_string(connection_string, name) as client:
        return bool(await client.exists())


async def test_a_missing_container_is_created_on_first_write(connection_string: str) -> None:
    name = _new_container()
    async with Store(AzureBlobDriver(name, connection_string=connection_string)) as store:
        # Reads of a container that does not exist yet find nothing, and create nothing.
        assert await store.get("k", default=None) is None
        assert not await store.exists("k")
        assert [k async for k in store.keys()] == []
        assert await store.get_many(["k"]) == {}
        assert not await store.delete("k")
        assert await store.clear() == 0
        assert not await _container_exists(connection_string, name)
        await store.set("k", 1)
        assert await store.get("k") == 1
    assert await _container_exists(connection_string, name)


async def test_concurrent_first_writes_all_land(connection_string: str) -> None:
    name = _new_container()
    async with Store(AzureBlobDriver(name, connection_string=connection_string)) as store:
        await asyncio.gather(*(store.set(f"k{i}", i, if_absent=i % 2 == 0) for i in range(20)))
        assert sorted([k async for k in store.keys()]) == sorted(f"k{i}" for i in range(20))


async def test_a_streamed_first_write_creates_the_container(connection_string: str) -> None:
    name = _new_container()
    driver = AzureBlobDriver(name, connection_string=connection_string, block_size=1000)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b"x" * 700

    async with driver:
        await driver.write_stream("big", chunks())
        entry = await driver.get("big")
        assert entry is not None
        assert entry.value == b"x" * 3500


@pytest.mark.parametrize("flag", ["false", "0"])
async def test_create_container_false_names_the_missing_container(
    connection_string: str, flag: str
) -> None:
    name = _new_container()
    store: Store[Any] = open_store(f"azure://{name}?create_container={flag}")
    async with store:
        for call in (
            lambda: store.get("k"),
            lambda: store.set("k", 1),
            lambda: store.set("k", 1, if_absent=True),
            lambda: store.exists("k"),
        ):
            with pytest.raises(BackendError) as info:
                await call()
            assert not isinstance(info.value, BackendUnavailableError)  # not an outage
            assert f"the container '{name}' does not exist" in str(info.value)
            assert "create_container=False" in str(info.value)
        with pytest.raises(BackendError, match=name):
            [k async for k in store.keys()]
    assert not await _container_exists(connection_string, name)


async def test_kv_copy_into_a_new_container(connection_string: str) -> None:
    source, target = _new_container(), _new_container()
    async with Store(AzureBlobDriver(source, connection_string=connection_string)) as store:
        await store.set_many({"user/1": {"name": "Ada"}, "user/2": [1, 2]})
    # The CLI reads the account from AZURE_STORAGE_CONNECTION_STRING (set by the fixture).
    code = await asyncio.to_thread(kv_main, ["copy", f"azure://{source}", f"azure://{target}"])
    assert code == 0
    async with Store(AzureBlobDriver(target, connection_string=connection_string)) as copied:
        assert {k: v async for k, v in copied.items()} == {
            "user/1": {"name": "Ada"},
            "user/2": [1, 2],
        }
