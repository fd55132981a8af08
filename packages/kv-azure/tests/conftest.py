"""Azurite for the whole session (or the emulator named by KV_TEST_AZURE_CONNECTION_STRING);
a fresh container for every test."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from kv_azure import AzureBlobDriver
from kv_core.testing import (
    Azurite,
    UrlHarness,
    azurite_connection_string_from_env,
    start_azurite,
)

# A port nothing listens on: the unreachable driver's endpoint.
CLOSED_ENDPOINT = "http://127.0.0.1:9/devstoreaccount1"


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite | None]:
    """The session's Azurite, or None when an external emulator is configured."""
    if azurite_connection_string_from_env():
        yield None
        return
    with start_azurite() as server:
        yield server


@pytest.fixture(scope="session")
def connection_string(azurite: Azurite | None) -> Iterator[str]:
    """The emulator's connection string, also exported as AZURE_STORAGE_CONNECTION_STRING.

    The variable is how ``azure://<container>`` URLs find the account (as in production),
    and spawned processes of the cross-process test inherit it.
    """
    value = azurite.connection_string if azurite else azurite_connection_string_from_env()
    assert value
    previous = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
    os.environ["AZURE_STORAGE_CONNECTION_STRING"] = value
    yield value
    if previous is None:
        del os.environ["AZURE_STORAGE_CONNECTION_STRING"]
    else:
        os.environ["AZURE_STORAGE_CONNECTION_STRING"] = previous


@pytest.fixture
def container() -> str:
    """A container name no other test uses."""
    return f"kv-{uuid.uuid4().hex[:24]}"


@pytest.fixture
def kv_harness(connection_string: str, container: str) -> UrlHarness:
    """Drivers over this test's own container (created on first use)."""
    return UrlHarness(
        # 512 KiB blocks: a streamed transfer then holds a few blocks (about 2 MiB traced),
        # within the 4 MiB the file conformance tests allow for an 8 MiB file.
        f"azure://{container}?block_size={512 << 10}",
        unreachable_url=f"azure://{container}?account_url={CLOSED_ENDPOINT}&retry_total=0",
    )


@pytest.fixture
async def driver(connection_string: str, container: str) -> AsyncIterator[AzureBlobDriver]:
    """A driver over this test's own container."""
    drv = AzureBlobDriver(container, connection_string=connection_string, create_container=True)
    yield drv
    await drv.aclose()
