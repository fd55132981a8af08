"""The public surface: exactly __all__, the URL entry point, the Driver protocol."""

from __future__ import annotations

import importlib.metadata

import kv_azure
import pytest
from kv_azure import AzureBlobDriver
from kv_core import Driver, StoreClosedError


def test_public_names_are_exactly_all() -> None:
    public = {n for n in vars(kv_azure) if not n.startswith("_") and n != "annotations"}
    assert public == set(kv_azure.__all__) == {"AzureBlobDriver"}


def test_the_azure_scheme_is_registered() -> None:
    (entry,) = [
        e for e in importlib.metadata.entry_points(group="kv_core.backends") if e.name == "azure"
    ]
    assert entry.load() == AzureBlobDriver.from_url


async def test_the_driver_is_a_driver(driver: AzureBlobDriver) -> None:
    assert isinstance(driver, Driver)
    assert driver.name.startswith("azure://kv-")


async def test_close_is_idempotent_and_final(driver: AzureBlobDriver) -> None:
    await driver.set("k", b"v")
    await driver.aclose()
    await driver.aclose()
    with pytest.raises(StoreClosedError):
        await driver.get("k")
    with pytest.raises(StoreClosedError):
        [k async for k in driver.keys()]


async def test_an_unclosed_driver_warns(connection_string: str, container: str) -> None:
    driver = AzureBlobDriver(container, connection_string=connection_string, create_container=True)
    await driver.set("k", b"v")
    await driver.container_client.close()  # release the session; the driver stays unclosed
    with pytest.warns(ResourceWarning, match="unclosed AzureBlobDriver"):
        driver.__del__()  # what garbage collection calls
    await driver.aclose()
    driver.__del__()  # closed: silent
