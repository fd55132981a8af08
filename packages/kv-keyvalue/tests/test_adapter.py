"""Rules that need a particular setup: clocks, ownership, cull on disk, the import guard."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from kv_core import MemoryDriver, SerializationError, Store, StoreClosedError
from kv_core.testing import TestClock
from kv_keyvalue import KeyValueAdapter


class SteppingClock:
    """Returns each of ``times`` once, then the last one forever."""

    def __init__(self, *times: float) -> None:
        self.times = list(times)

    def __call__(self) -> float:
        return self.times.pop(0) if len(self.times) > 1 else self.times[0]


async def test_ttl_is_never_zero_a_key_expiring_meanwhile_is_missing() -> None:
    # The driver reads the key at t=0 (alive, expires at t=10); by the time the adapter
    # computes the seconds left the clock says t=10: that is expired, not "0.0 left".
    clock = SteppingClock(0.0, 0.0, 10.0)
    store: Store[Any] = Store(MemoryDriver(clock=clock))
    kv = KeyValueAdapter(store)
    await kv.put("k", {"v": 1}, ttl=10)  # expiry computed at t=0
    assert await kv.ttl("k") == (None, None)
    assert await kv.ttl_many(["k"]) == [(None, None)]


async def test_from_url_owns_its_store_and_closes_it(tmp_path: Path) -> None:
    async with KeyValueAdapter.from_url(f"file:{tmp_path}", default_collection="c") as kv:
        await kv.put("k", {"v": 1})
        store = kv.store
    assert store.closed
    with pytest.raises(StoreClosedError):
        await kv.get("k")
    async with KeyValueAdapter.from_url(f"file:{tmp_path}") as again:
        assert await again.get("k", collection="c") == {"v": 1}


async def test_an_adapter_leaves_a_store_it_was_given_open() -> None:
    store: Store[Any] = Store(MemoryDriver())
    async with KeyValueAdapter(store) as kv:
        await kv.put("k", {"v": 1})
    await kv.close()
    assert not store.closed
    assert await KeyValueAdapter(store).get("k") == {"v": 1}
    await store.aclose()


def test_the_constructor_checks_its_arguments() -> None:
    with pytest.raises(TypeError, match="Store"):
        KeyValueAdapter(MemoryDriver())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="default_collection"):
        KeyValueAdapter(Store(MemoryDriver()), default_collection="")
    kv = KeyValueAdapter(Store(MemoryDriver()))
    assert "default_collection" in repr(kv)


def _files(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file())


async def test_cull_reclaims_expired_files_on_kv_local(tmp_path: Path) -> None:
    from kv_local import LocalDriver

    clock = TestClock()
    store: Store[Any] = Store(LocalDriver(tmp_path, clock=clock))
    kv = KeyValueAdapter(store)
    await kv.put("kept", {"v": 1})
    live_only = _files(tmp_path)
    await kv.put_many([f"k{i}" for i in range(5)], [{"i": i} for i in range(5)], ttl=1)
    assert _files(tmp_path) > live_only
    clock.advance(2)
    await kv.cull()
    assert _files(tmp_path) == live_only
    assert await kv.keys() == ["kept"]
    await store.aclose()


async def test_cull_never_purges_outside_a_namespace_on_kv_local(tmp_path: Path) -> None:
    # kv-local's purge cannot be limited to a prefix, so over a namespace cull does nothing.
    from kv_local import LocalDriver

    clock = TestClock()
    store: Store[Any] = Store(LocalDriver(tmp_path, clock=clock))
    await store.set("outside", 1, ttl=1)
    kv = KeyValueAdapter(store.namespace("app"))
    await kv.put("inside", {"v": 1}, ttl=1)
    before = _files(tmp_path)
    clock.advance(2)
    await kv.cull()
    assert _files(tmp_path) == before
    await store.aclose()


async def test_cull_reaches_the_backend_under_a_cache(tmp_path: Path) -> None:
    from kv_cache import CachedDriver
    from kv_local import LocalDriver

    clock = TestClock()
    cached = CachedDriver(LocalDriver(tmp_path, clock=clock), mode="write_through")
    store: Store[Any] = Store(cached)
    kv = KeyValueAdapter(store)
    await kv.put("kept", {"v": 1})
    live_only = _files(tmp_path)
    await kv.put("gone", {"v": 1}, ttl=1)
    assert _files(tmp_path) > live_only
    clock.advance(2)
    await kv.cull()
    assert _files(tmp_path) == live_only
    await store.aclose()


def test_without_py_key_value_the_errors_are_kvs(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import asyncio, sys
        sys.modules["key_value"] = None  # py-key-value cannot be imported
        import kv_core
        from kv_core import MemoryDriver, Store
        from kv_keyvalue import InvalidTTLError, KeyValueAdapter

        async def main():
            kv = KeyValueAdapter(Store(MemoryDriver()))
            for call, kind in [
                (kv.put("k", {"when": object()}), kv_core.SerializationError),
                (kv.put("", {"v": 1}), kv_core.InvalidKeyError),
                (kv.put("k", {"v": 1}, ttl=0), InvalidTTLError),
            ]:
                try:
                    await call
                except Exception as exc:
                    assert type(exc) is kind, (type(exc), kind)
                    assert all(c.__module__.split(".")[0] != "key_value" for c in type(exc).__mro__)
                else:
                    raise AssertionError(kind)
            print("kv errors only")

        asyncio.run(main())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "kv errors only" in done.stdout


async def test_a_refused_value_names_the_key() -> None:
    kv = KeyValueAdapter(Store(MemoryDriver()))
    with pytest.raises(SerializationError, match="tools%2Fcall/k"):
        await kv.put("k", {"bad": {1, 2}}, collection="tools/call")


keys = st.text(min_size=1, max_size=40)


@st.composite
def _valid_text(draw: st.DrawFn, strategy: st.SearchStrategy[str]) -> str:
    text = draw(strategy)
    return text.encode("utf-8", "replace").decode("utf-8")  # no lone surrogates


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.lists(
        st.tuples(_valid_text(st.text(max_size=260)), _valid_text(keys)), min_size=1, max_size=8
    )
)
@example([("tools/list", "x"), ("tools", "list/x")])
@example([("%h" + "0" * 64, "k"), ("é" * 201, "k")])
@example([("a%2Fb", "k"), ("a/b", "k"), ("a%252Fb", "k")])
async def test_collections_and_keys_list_back_exactly(pairs: list[tuple[str, str]]) -> None:
    store: Store[Any] = Store(MemoryDriver())
    kv = KeyValueAdapter(store.namespace("ns"), default_collection="dflt")
    expected: dict[str, set[str]] = {}
    for i, (collection, key) in enumerate(pairs):
        await kv.put(key, {"i": i}, collection=collection)
        expected.setdefault(collection or "dflt", set()).add(key)
    assert sorted(await kv.collections()) == sorted(expected)
    for collection, wanted in expected.items():
        assert sorted(await kv.keys(collection)) == sorted(wanted)
