"""Azurite stopped mid-operation: kv errors, then the same store works after a restart.

These tests run their own Azurite, because they stop it. Azurite saves its metadata only
every few seconds, so it is stopped with SIGTERM (which saves), never SIGKILL.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from kv_azure import AzureBlobDriver
from kv_core import BackendUnavailableError, OutcomeUnknownError, Store
from kv_core.testing._azurite import (
    Azurite,
    azurite_connection_string_from_env,
    find_azurite,
    start_azurite,
)


@pytest.fixture(scope="module")
def own_azurite() -> Iterator[Azurite]:
    try:
        find_azurite()
    except FileNotFoundError:
        if not azurite_connection_string_from_env():
            raise
        pytest.skip(
            "stopping Azurite needs a local one; KV_TEST_AZURE_CONNECTION_STRING names an "
            "emulator these tests cannot stop"
        )
    with start_azurite() as server:
        yield server


@pytest.fixture
def running(own_azurite: Azurite) -> Azurite:
    own_azurite.start()  # a previous test may have left it stopped
    return own_azurite


@pytest.fixture
async def store(running: Azurite) -> AsyncIterator[Store[Any]]:
    driver = AzureBlobDriver(
        f"outage-{uuid.uuid4().hex[:12]}",
        connection_string=running.connection_string,
        create_container=True,
    )
    async with Store(driver) as opened:
        yield opened


async def test_stopped_azurite_is_unavailable_and_the_store_recovers(
    running: Azurite, store: Store[Any]
) -> None:
    await store.set("k", 1)
    await asyncio.to_thread(running.stop)
    for call in (
        lambda: store.get("k"),
        lambda: store.set("k", 2),
        lambda: store.set("n", 2, if_absent=True),
        lambda: store.delete("k"),
        lambda: store.get_many(["k", "n"]),
    ):
        with pytest.raises(BackendUnavailableError) as info:
            await call()
        assert info.value.__cause__ is not None
    with pytest.raises(BackendUnavailableError):
        [k async for k in store.keys()]
    await asyncio.to_thread(running.start)
    # Nothing above reached the service, and the SIGTERM saved what was there.
    assert await store.get("k") == 1
    assert await store.get("n", default=None) is None
    await store.set("k", 3)
    assert await store.update("k", lambda n: n + 1) == 4


async def test_a_write_in_flight_when_azurite_dies_has_an_unknown_outcome(
    running: Azurite, store: Store[Any]
) -> None:
    await store.set("k", 1)
    container = store.driver.container_client.container_name  # type: ignore[attr-defined]
    for options in ({}, {"if_absent": True}):
        # A fresh driver (no pooled connection) sends its request to a frozen Azurite: the
        # kernel accepts the connection, nothing answers, then the process exits.
        late: Store[Any] = Store(
            AzureBlobDriver(container, connection_string=running.connection_string)
        )
        async with late:
            running.pause()
            task = asyncio.ensure_future(late.set("k", 2, **options))
            await asyncio.sleep(0.3)
            assert not task.done()
            await asyncio.to_thread(running.stop)
            with pytest.raises(OutcomeUnknownError) as info:
                await task
            assert info.value.__cause__ is not None
        await asyncio.to_thread(running.start)
    assert await store.get("k") in (1, 2)
    await store.set("k", 5)
    assert await store.get("k") == 5
