"""Ways to connect, URL options, and secrets kept out of every message and repr."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from azure.core.credentials import AzureNamedKeyCredential
from azure.storage.blob import ContainerSasPermissions, generate_container_sas
from kv_azure import AzureBlobDriver
from kv_core import BackendError, BackendUnavailableError, KVError, Store, open_store
from kv_core.testing import AZURITE_ACCOUNT_KEY, AZURITE_ACCOUNT_NAME

CLOSED_ENDPOINT = "http://127.0.0.1:9/devstoreaccount1"  # nothing listens on port 9
WRONG_KEY = "d3JvbmcgYnV0IHdlbGwtZm9ybWVkIGtleSwgbmV2ZXIgaW4gYSBtZXNzYWdl" * 2


def _endpoint(connection_string: str) -> str:
    fields = dict(p.split("=", 1) for p in connection_string.rstrip(";").split(";"))
    return fields["BlobEndpoint"]


def _sas(container: str, **permissions: bool) -> str:
    return generate_container_sas(
        AZURITE_ACCOUNT_NAME,
        container,
        account_key=AZURITE_ACCOUNT_KEY,
        permission=ContainerSasPermissions(**permissions),
        expiry=datetime.now(timezone.utc) + timedelta(hours=1),
    )


def _assert_secret_free(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text


async def _round_trip(driver: AzureBlobDriver) -> None:
    async with Store(driver) as store:
        await store.set("k", {"v": 1})
        assert await store.get("k") == {"v": 1}
        assert [k async for k in store.keys()] == ["k"]


async def test_open_store_reads_the_connection_string_from_the_environment(
    connection_string: str, container: str
) -> None:
    store: Store[Any] = open_store(f"azure://{container}", create_container=True)
    async with store:
        await store.set("k", 1)
        assert await store.get("k") == 1
    assert isinstance(store.driver, AzureBlobDriver)


def test_url_options_reach_the_driver(connection_string: str) -> None:
    driver = AzureBlobDriver.from_url(
        "azure://box?create_container=true&max_concurrency=2&block_size=1024", retry_total=1
    )
    assert (driver.max_concurrency, driver.block_size) == (2, 1024)
    assert driver.container_client.container_name == "box"
    with pytest.raises(ValueError, match="unknown option"):
        AzureBlobDriver.from_url("azure://box?colour=red")
    with pytest.raises(ValueError, match="azure://<container>"):
        AzureBlobDriver.from_url("azure://box/extra/path")


def test_missing_credentials_say_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    with pytest.raises(ValueError, match="AZURE_STORAGE_CONNECTION_STRING"):
        AzureBlobDriver("box")


async def test_account_url_with_a_shared_key(connection_string: str, container: str) -> None:
    for credential in (
        AzureNamedKeyCredential(AZURITE_ACCOUNT_NAME, AZURITE_ACCOUNT_KEY),
        {"account_name": AZURITE_ACCOUNT_NAME, "account_key": AZURITE_ACCOUNT_KEY},
    ):
        driver = AzureBlobDriver(
            container,
            account_url=_endpoint(connection_string),
            credential=credential,
            create_container=True,
        )
        _assert_secret_free(repr(driver), AZURITE_ACCOUNT_KEY)
        await _round_trip(driver)
        async with AzureBlobDriver(container, connection_string=connection_string) as admin:
            assert await admin.clear("") == 1


async def test_account_url_with_a_sas_token(driver: AzureBlobDriver, container: str) -> None:
    await driver.set("warm-up", b"")  # creates the container
    await driver.delete("warm-up")
    sas = _sas(container, read=True, write=True, delete=True, list=True)
    endpoint = driver.container_client.primary_endpoint.rsplit("/", 1)[0]
    for options in (
        {"account_url": endpoint, "credential": sas},
        {"account_url": f"{endpoint}?{sas}"},
    ):
        sas_driver = AzureBlobDriver(container, **options)
        _assert_secret_free(repr(sas_driver), sas)
        await sas_driver.delete("k")
        await _round_trip(sas_driver)


async def test_a_wrong_key_says_authentication_failed_without_leaking_it(
    connection_string: str, container: str
) -> None:
    bad = connection_string.replace(AZURITE_ACCOUNT_KEY, WRONG_KEY)
    async with AzureBlobDriver(container, connection_string=bad) as driver:
        for call in (lambda: driver.get("k"), lambda: driver.set("k", b"v")):
            with pytest.raises(BackendError, match="authentication failed") as info:
                await call()
            assert not isinstance(info.value, BackendUnavailableError)
            _assert_secret_free(str(info.value), WRONG_KEY, bad)
            _assert_secret_free(repr(info.value), WRONG_KEY, bad)
        _assert_secret_free(repr(driver) + driver.name, WRONG_KEY, bad)


async def test_a_sas_without_permission_says_authentication_failed(
    driver: AzureBlobDriver, container: str
) -> None:
    await driver.set("k", b"v")
    sas = _sas(container, read=True)
    endpoint = driver.container_client.primary_endpoint.rsplit("/", 1)[0]
    async with AzureBlobDriver(container, account_url=endpoint, credential=sas) as read_only:
        assert (await read_only.get("k")) is not None
        with pytest.raises(BackendError, match="authentication failed") as info:
            await read_only.set("k", b"w")
        _assert_secret_free(str(info.value), sas, sas.split("sig=")[1])


async def test_unreachable_errors_and_repr_hold_no_secret() -> None:
    secret_string = (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT_NAME};"
        f"AccountKey={WRONG_KEY};BlobEndpoint={CLOSED_ENDPOINT};"
    )
    async with AzureBlobDriver("box", connection_string=secret_string, retry_total=0) as driver:
        for call in (lambda: driver.get("k"), lambda: driver.set("k", b"v")):
            with pytest.raises(BackendUnavailableError) as info:
                await call()
            assert isinstance(info.value.__cause__, Exception)
            assert not isinstance(info.value.__cause__, KVError)
            _assert_secret_free(str(info.value), WRONG_KEY, secret_string)
        _assert_secret_free(repr(driver), WRONG_KEY, secret_string)
        assert "127.0.0.1:9" in repr(driver)
