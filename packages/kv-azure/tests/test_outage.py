"""Azurite stopped mid-operation: kv errors, then the same store works after a restart.

These tests run their own Azurite, because they stop it. Azurite saves its metadata only
every few seconds, so it is stopped with SIGTERM (which saves), never SIGKILL.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from kv_azure import AzureBlobDriver
from kv_core import BackendUnavailableError, OutcomeUnknownError, Store
from kv_core.testing import (
    Azurite,
    azurite_connection_string_from_env,
    find_azurite,
    start_azurite,
)

# Processes, servers and file systems, not Python: scripts/test runs these on the default
# interpreter only (pyproject: the "system" marker).
pytestmark = pytest.mark.system


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


# -- Azurite stopped and restarted under load ----------------------------------------------

_WRITERS = 8
_READERS = 4
_RESTARTS = 2
_ACKS_PER_PHASE = 200  # acknowledged writes before each stop, and after the last restart
_GUARD = 120.0  # seconds: a phase that does not finish by then has hung (never reached)


class _Load:
    """Writers and readers on one store, with the counts the test checks."""

    def __init__(self, store: Store[Any]) -> None:
        self.store = store
        self.acked: dict[str, dict[str, Any]] = {}
        self.acked_keys: list[str] = []
        self.unknown: dict[str, dict[str, Any]] = {}
        self.increments_acked = 0
        self.increments_unknown = 0
        self.reads = 0
        self.wrong: list[str] = []
        self.errors: dict[str, int] = {}
        self.others: list[BaseException] = []
        self.stopping = False
        self._changed = asyncio.Event()

    async def wait_for(self, condition: Callable[[], bool]) -> None:
        """Wait (event-driven, no polling) until ``condition()`` holds."""
        while not condition():
            self._changed.clear()
            await asyncio.wait_for(self._changed.wait(), _GUARD)

    def _failed(self, exc: BaseException) -> None:
        name = type(exc).__name__
        if isinstance(exc, (BackendUnavailableError, OutcomeUnknownError)):
            self.errors[name] = self.errors.get(name, 0) + 1
        else:
            self.others.append(exc)
        self._changed.set()

    async def writer(self, w: int) -> None:
        seq = 0
        while not self.stopping:
            seq += 1
            if seq % 4 == 0:
                try:
                    await self.store.update("counter", lambda n: n + 1, default=0)
                except OutcomeUnknownError as exc:
                    self.increments_unknown += 1
                    self._failed(exc)
                except Exception as exc:
                    self._failed(exc)
                else:
                    self.increments_acked += 1
                continue
            key = f"w{w}/{seq}"
            value = {"w": w, "seq": seq, "check": hashlib.sha256(key.encode()).hexdigest()}
            try:
                await self.store.set(key, value)
            except OutcomeUnknownError as exc:
                self.unknown[key] = value
                self._failed(exc)
            except Exception as exc:
                self._failed(exc)
            else:
                self.acked[key] = value
                self.acked_keys.append(key)
                self._changed.set()

    async def reader(self, r: int) -> None:
        rng = random.Random(r)
        while not self.stopping:
            if not self.acked_keys:
                await self.wait_for(lambda: bool(self.acked_keys) or self.stopping)
                continue
            key = rng.choice(self.acked_keys)
            try:
                got = await self.store.get(key, default=None)
            except Exception as exc:
                self._failed(exc)
                continue
            self.reads += 1
            if got != self.acked[key]:
                self.wrong.append(key)


async def test_azurite_stopped_and_restarted_under_writers_and_readers(running: Azurite) -> None:
    container = f"fault-{uuid.uuid4().hex[:12]}"
    store: Store[Any] = Store(
        AzureBlobDriver(container, connection_string=running.connection_string)
    )
    async with store:
        load = _Load(store)
        tasks = [asyncio.ensure_future(load.writer(w)) for w in range(_WRITERS)]
        tasks += [asyncio.ensure_future(load.reader(r)) for r in range(_READERS)]
        try:
            for _ in range(_RESTARTS):
                target = len(load.acked) + _ACKS_PER_PHASE
                await load.wait_for(lambda t=target: len(load.acked) >= t)
                failed_before = sum(load.errors.values())
                await asyncio.to_thread(running.stop)  # SIGTERM: Azurite saves and exits
                # Every writer meets the outage before the service comes back.
                await load.wait_for(
                    lambda f=failed_before: sum(load.errors.values()) >= f + _WRITERS
                )
                await asyncio.to_thread(running.start)  # same port, same data folder
            # Recovery without intervention: the same store carries on.
            target = len(load.acked) + _ACKS_PER_PHASE
            await load.wait_for(lambda: len(load.acked) >= target)
        finally:
            load.stopping = True
            load._changed.set()
            await asyncio.gather(*tasks)

    # Everything acknowledged is there, read through a fresh client.
    check: Store[Any] = Store(
        AzureBlobDriver(container, connection_string=running.connection_string)
    )
    async with check:
        stored = await check.get_many(list(load.acked) + list(load.unknown))
        lost = [k for k, v in load.acked.items() if stored.get(k) != v]
        torn = [k for k, v in load.unknown.items() if k in stored and stored[k] != v]
        listed = {k async for k in check.keys(prefix="w")}
        phantom = listed - set(load.acked) - set(load.unknown)
        counter = await check.get("counter", default=0)

    print(
        f"FAULT kv-azure stop/restart: {_RESTARTS} restarts under {_WRITERS} writers and "
        f"{_READERS} readers; {len(load.acked)} acknowledged writes, {len(lost)} lost; "
        f"{load.reads} reads, {len(load.wrong)} wrong; {len(load.unknown)} outcome-unknown "
        f"writes, {len(torn)} torn; errors {dict(sorted(load.errors.items()))}, "
        f"{len(load.others)} of other kinds; counter {counter} for "
        f"{load.increments_acked} acknowledged + {load.increments_unknown} unknown update()s"
    )
    assert load.others == []
    assert lost == []
    assert load.wrong == []
    assert torn == []
    assert phantom == set()
    assert load.increments_acked <= counter <= load.increments_acked + load.increments_unknown
