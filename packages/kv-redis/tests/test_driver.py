"""Redis-specific behaviour of RedisDriver, on a single node and on the cluster."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator

import pytest
from kv_core import (
    NOT_MODIFIED,
    BackendError,
    BackendUnavailableError,
    PreconditionFailedError,
    StoreClosedError,
    open_store,
)
from kv_core.testing import RedisServer, start_redis
from kv_redis import RedisDriver
from redis.asyncio import Redis, RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError

from .conftest import closed_port


@pytest.fixture
async def driver(kv_url: str, prefix: str) -> AsyncIterator[RedisDriver]:
    d = RedisDriver.from_url(kv_url, prefix=prefix)
    yield d
    await d.clear()
    await d.aclose()


def raw_client(kv_url: str) -> Redis | RedisCluster:
    if kv_url.startswith("redis+cluster://"):
        return RedisCluster.from_url(kv_url.replace("redis+cluster://", "redis://"))
    return Redis.from_url(kv_url)


async def test_values_are_stored_verbatim_at_prefix_plus_key(
    kv_url: str, prefix: str, driver: RedisDriver
) -> None:
    store = open_store(kv_url, prefix=prefix)
    async with store:
        await store.set("user/1", {"name": "Ada"})
    raw = raw_client(kv_url)
    try:
        assert json_equal(await raw.get(f"{prefix}user/1"), {"name": "Ada"})
    finally:
        await raw.aclose()


def json_equal(data: bytes | None, expected: object) -> bool:
    import json

    return data is not None and json.loads(data) == expected


async def test_etag_is_the_sha1_of_the_value_and_changes_with_it(driver: RedisDriver) -> None:
    e1 = await driver.set("k", b"one")
    assert e1 == hashlib.sha1(b"one").hexdigest()
    e2 = await driver.set("k", b"two")
    assert e2 != e1
    entry = await driver.get("k")
    assert entry is not None
    assert entry.etag == e2
    # Documented ABA consequence: writing the same bytes again gives the same etag.
    assert await driver.set("k", b"one") == e1


async def test_conditional_writes_are_one_round_trip_each(driver: RedisDriver) -> None:
    etag = await driver.set("k", b"v1")
    before = driver.stats()[0]
    etag = await driver.set("k", b"v2", if_match=etag)
    await driver.set("new", b"x", if_absent=True)
    with pytest.raises(PreconditionFailedError):
        await driver.set("k", b"v3", if_match="0" * 40)
    with pytest.raises(PreconditionFailedError):
        await driver.set("new", b"y", if_absent=True)
    assert await driver.delete("k", if_match=etag) is True
    with pytest.raises(PreconditionFailedError):
        await driver.delete("k", if_match=etag)
    assert driver.stats()[0] - before == 6
    assert await driver.get("k") is None
    entry = await driver.get("new")
    assert entry is not None
    assert entry.value == b"x"


async def test_conditional_writes_survive_a_script_flush(kv_url: str, driver: RedisDriver) -> None:
    etag = await driver.set("k", b"v1")
    raw = raw_client(kv_url)
    try:
        await raw.script_flush()  # every primary, on a cluster
    finally:
        await raw.aclose()
    # NOSCRIPT is answered without running anything, so EVAL is sent instead.
    before = driver.stats()[0]
    assert await driver.set("k", b"v2", if_match=etag)
    assert driver.stats()[0] - before == 2
    entry = await driver.get("k")
    assert entry is not None
    assert entry.value == b"v2"


async def test_ttl_is_native_in_milliseconds(kv_url: str, prefix: str, driver: RedisDriver) -> None:
    raw = raw_client(kv_url)
    try:
        # Connect (and, on a cluster, discover the slots) before the 250 ms start: done
        # after the write, that set-up alone outlasted the TTL on a loaded machine.
        await raw.ping()
        await driver.set("short", b"x", expires_at=time.time() + 0.25)
        pttl = await raw.pttl(f"{prefix}short")
        assert 0 < pttl <= 250
        entry = await driver.get("short")
        assert entry is not None
        assert entry.expires_at is not None
        assert entry.expires_at <= time.time() + 0.25
        await driver.set("short", b"y")  # no expires_at: the old expiry is removed
        assert await raw.pttl(f"{prefix}short") == -1
    finally:
        await raw.aclose()


async def test_a_past_expiry_hides_the_key_at_once(driver: RedisDriver) -> None:
    await driver.set("k", b"v")
    await driver.set("k", b"w", expires_at=time.time() - 1)
    assert await driver.get("k") is None
    await driver.set_many([("a", b"1"), ("b", b"2")], expires_at=time.time() - 1)
    assert await driver.get_many(["a", "b", "k"]) == [None, None, None]


async def test_get_if_changed(driver: RedisDriver) -> None:
    etag = await driver.set("k", b"v")
    assert await driver.get_if_changed("k", etag) is NOT_MODIFIED
    await driver.set("k", b"w")
    entry = await driver.get_if_changed("k", etag)
    assert entry is not NOT_MODIFIED
    assert entry is not None
    assert entry.value == b"w"
    assert await driver.get_if_changed("missing", etag) is None


async def test_batches_span_slots_and_keep_order(driver: RedisDriver) -> None:
    items = [(f"key/{i}", f"value {i}".encode()) for i in range(300)]
    etags = await driver.set_many(items)
    assert etags == [hashlib.sha1(v).hexdigest() for _, v in items]
    keys = [k for k, _ in items] + ["missing"]
    entries = await driver.get_many(keys)
    assert [e.value if e else None for e in entries] == [v for _, v in items] + [None]
    assert await driver.delete_many([*keys[:100], "missing"]) == 100
    assert sum(1 for e in await driver.get_many(keys) if e) == 200


async def test_set_many_etags_are_the_stored_etags_and_plain_reads_skip_them(
    driver: RedisDriver,
) -> None:
    items = [(f"e/{i}", b"value %d" % i) for i in range(50)]
    etags = await driver.set_many(items)
    assert len(etags) == 50
    assert list(etags[:2]) == [etags[0], etags[1]]
    for (key, value), etag in zip(items, etags, strict=True):
        entry = await driver.get(key)
        assert entry is not None
        assert (entry.value, entry.etag) == (value, etag)
    assert await driver.get_values([k for k, _ in items] + ["e/missing"]) == [
        *(v for _, v in items),
        None,
    ]
    assert await driver.get_value("e/3") == b"value 3"
    assert await driver.get_value("e/missing") is None


async def test_clear_and_keys_touch_only_the_store_prefix(kv_url: str, prefix: str) -> None:
    # Glob characters in the prefix must match literally: "p*[x]?:" must not match "pA[x]B:".
    glob_prefix = f"{prefix}p*[x]?\\:"
    lookalike = f"{prefix}pAxB\\:k"
    foreign = [f"{prefix}other", lookalike, f"{prefix}p*[x]?\\"]
    raw = raw_client(kv_url)
    driver = RedisDriver.from_url(kv_url, prefix=glob_prefix)
    try:
        for name in foreign:
            await raw.set(name, b"foreign")
        await driver.set_many([(f"k{i}", b"v") for i in range(50)])
        assert sorted([k async for k in driver.keys()]) == sorted(f"k{i}" for i in range(50))
        assert sorted([k async for k in driver.keys("k1")]) == sorted(
            ["k1", *(f"k{i}" for i in range(10, 20))]
        )
        assert await driver.clear() == 50
        assert [k async for k in driver.keys()] == []
        for name in foreign:
            assert await raw.get(name) == b"foreign"
    finally:
        for name in foreign:
            await raw.delete(name)
        await raw.aclose()
        await driver.aclose()


async def test_a_decode_responses_client_still_reads_bytes(kv_url: str, prefix: str) -> None:
    url = kv_url.replace("redis+cluster://", "redis://")
    client: Redis | RedisCluster
    if kv_url.startswith("redis+cluster://"):
        client = RedisCluster.from_url(url, decode_responses=True)
    else:
        client = Redis.from_url(url, decode_responses=True)
    driver = RedisDriver(client, prefix=prefix)
    try:
        value = bytes(range(256))  # not UTF-8: decoding would break it
        await driver.set("bin", value)
        entry = await driver.get("bin")
        assert entry is not None
        assert entry.value == value
        assert [e.value if e else None for e in await driver.get_many(["bin"])] == [value]
        await driver.clear()
    finally:
        await driver.aclose()
    # The driver did not own the client: it still works and is closed by its owner.
    assert await client.ping()
    await client.aclose()


async def test_ownership_decides_who_closes_the_client(
    kv_url: str, prefix: str, redis_url: str
) -> None:
    owned = RedisDriver.from_url(kv_url, prefix=prefix)
    closed: list[bool] = []
    real_aclose = owned.client.aclose

    async def spy() -> None:
        closed.append(True)
        await real_aclose()

    owned.client.aclose = spy  # type: ignore[method-assign]
    await owned.set("k", b"v")
    await owned.aclose()
    await owned.aclose()  # idempotent
    assert closed == [True]
    with pytest.raises(StoreClosedError):
        await owned.get("k")

    # A user's client stays open; our own connections (named here) are closed.
    name = f"kvtest-{prefix.split(':')[1]}"
    user = Redis.from_url(redis_url)
    borrowed = RedisDriver(user, prefix=prefix)
    borrowed_named = RedisDriver(Redis.from_url(redis_url, client_name=name), prefix=prefix)
    await borrowed.set("k", b"v")
    await borrowed_named.set("k", b"v")
    assert name in str(await user.client_list())
    await borrowed.delete("k")
    await borrowed.aclose()
    await borrowed_named.aclose()
    # The server handles a closed socket in its own event loop, possibly after a command
    # that arrived on another connection at the same time: ask until it has (bounded).
    for _ in range(200):
        if name not in str(await user.client_list()):
            break
        await asyncio.sleep(0.01)
    assert name not in str(await user.client_list())
    assert await user.ping()
    await user.aclose()
    await borrowed_named.client.aclose()


async def test_name_and_errors_never_show_the_password() -> None:
    port = closed_port()
    driver = RedisDriver.from_url(f"redis://user:s3cret@127.0.0.1:{port}/2", prefix="p:")
    assert "s3cret" not in driver.name
    assert "s3cret" not in repr(driver)
    assert driver.name.startswith(f"redis://127.0.0.1:{port}/2")
    with pytest.raises(BackendUnavailableError) as info:
        await driver.set("k", b"v")
    assert "s3cret" not in str(info.value)
    assert isinstance(info.value.__cause__, RedisConnectionError)
    await driver.aclose()


async def test_error_replies_are_backend_errors_isolated_per_command(
    kv_url: str, prefix: str, driver: RedisDriver
) -> None:
    raw = raw_client(kv_url)
    try:
        await raw.rpush(f"{prefix}list", "x")  # GET on a list: WRONGTYPE
        await driver.set("ok", b"fine")
        import asyncio

        results = await asyncio.gather(
            *(driver.get("list" if i == 10 else "ok") for i in range(40)), return_exceptions=True
        )
        assert isinstance(results[10], BackendError)
        assert "WRONGTYPE" in str(results[10])
        assert all(r is not None and r.value == b"fine" for i, r in enumerate(results) if i != 10)  # type: ignore[union-attr]
    finally:
        await raw.delete(f"{prefix}list")
        await raw.aclose()


async def test_unix_socket_url(tmp_path_factory: pytest.TempPathFactory) -> None:
    sock = str(tmp_path_factory.mktemp("sock") / "redis.sock")
    with _unix_server(sock):
        driver = RedisDriver.from_url(f"unix://{sock}?db=3", prefix="u:")
        try:
            assert driver.name.startswith(f"unix://{sock}?db=3")
            await driver.set("k", b"v")
            entry = await driver.get("k")
            assert entry is not None
            assert entry.value == b"v"
        finally:
            await driver.aclose()


def _unix_server(sock: str) -> RedisServer:
    return start_redis(extra_args=["--unixsocket", sock, "--unixsocketperm", "700"])


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("redis://127.0.0.1:6390/notadb", "'notadb'"),
        ("redis://127.0.0.1:6390/0/1", "'0/1'"),
        ("redis://127.0.0.1:6390/-1", "'-1'"),
        ("redis://127.0.0.1:6390/0?db=two", "db= query option"),
        ("unix:///tmp/redis.sock?db=x", "db= query option"),
        ("redis+cluster://127.0.0.1:7000/2", "only database 0"),
        ("redis://127.0.0.1:99999/0", "port"),
    ],
)
def test_url_mistakes_fail_at_open_naming_the_part(url: str, named: str) -> None:
    # Issue 11 item 6: "/notadb" silently used database 0.
    with pytest.raises(ValueError, match=r"database|port") as info:
        open_store(url)
    assert named in str(info.value)


async def test_a_database_the_server_lacks_is_a_configuration_error(redis_url: str) -> None:
    # Issue 11 item 6: "/99" raised BackendUnavailableError ("safe to retry"). The server
    # alone knows how many databases it has, so this is found by the first operation.
    base = redis_url.rsplit("/", 1)[0]
    store = open_store(f"{base}/99", prefix="nodb:")
    try:
        with pytest.raises(BackendError) as info:
            await store.set("k", 1)
        assert not isinstance(info.value, BackendUnavailableError)
        assert "DB index is out of range" in str(info.value)
        assert "/99" in str(info.value)
    finally:
        await store.aclose()
