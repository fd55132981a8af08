"""Conformance through the blocking face, ``kv_core.sync`` (DESIGN §11).

Plain (not async) tests over the same ``kv_harness``: the main cases of the suite, each
call made from a thread that runs no event loop, as a script or a Django view would.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from .._codecs import BYTES
from .._errors import KeyNotFoundError, PreconditionFailedError, StoreClosedError
from .._sync import SyncStore
from ._harness import Harness

__all__ = ["SyncConformance"]


class SyncConformance:
    """The main conformance cases through :class:`~kv_core.sync.SyncStore`."""

    @pytest.fixture
    def sync_store(self, kv_harness: Harness) -> Iterator[SyncStore[Any]]:
        """A blocking store over a fresh driver, namespaced so it can be cleared alone."""
        root: SyncStore[Any]
        with SyncStore(kv_harness.make_driver()) as root:
            store: SyncStore[Any] = root.namespace("sync-conformance")
            store.clear()
            yield store
            store.clear()

    def test_sync_reads_writes_and_deletes(self, sync_store: SyncStore[Any]) -> None:
        s = sync_store
        etag = s.set("user/1", {"name": "Ada"}, ttl=3600)
        assert s.get("user/1") == {"name": "Ada"}
        assert s.get("missing", None) is None
        with pytest.raises(KeyNotFoundError):
            s.get("missing")
        entry = s.get_entry("user/1")
        assert entry.etag == etag
        assert entry.value == {"name": "Ada"}
        left = s.ttl("user/1")
        assert left is not None
        assert 3000 < left <= 3600
        assert s.exists("user/1")
        assert s.delete("user/1") is True
        assert s.delete("user/1") is False
        assert not s.exists("user/1")

    def test_sync_conditional_writes_and_update(self, sync_store: SyncStore[Any]) -> None:
        s = sync_store
        first = s.set("k", 1)
        s.set("k", 2, if_match=first)
        with pytest.raises(PreconditionFailedError):
            s.set("k", 3, if_match=first)
        with pytest.raises(PreconditionFailedError):
            s.set("k", 3, if_absent=True)
        assert s.update("k", lambda n: n + 1) == 3
        assert s.update("new", lambda n: n + 1, default=0) == 1

    def test_sync_listing_batches_and_namespaces(self, sync_store: SyncStore[Any]) -> None:
        s = sync_store
        s.set_many({f"p/{i}": i for i in range(150)} | {"q": "x"})
        assert sorted(s.keys("p/")) == sorted(f"p/{i}" for i in range(150))
        assert dict(s.items("p/1")) == {f"p/{i}": i for i in range(150) if str(i)[0] == "1"}
        assert s.get_many(["p/1", "p/2", "nope"]) == {"p/1": 1, "p/2": 2}
        assert s.delete_many(f"p/{i}" for i in range(100)) == 100
        inner = s.namespace("inner")
        inner.set("k", "v")
        assert s.get("inner/k") == "v"
        assert list(inner.keys()) == ["k"]
        assert s.clear() == 52

    def test_sync_streams_and_codecs(self, sync_store: SyncStore[Any]) -> None:
        raw = sync_store.with_codec(BYTES)
        parts = [bytes([i]) * 50_000 for i in range(20)]
        raw.write_stream("blob", parts)
        chunks = list(raw.read_stream("blob", chunk_size=64 * 1024))
        assert all(len(c) <= 64 * 1024 for c in chunks)
        assert b"".join(chunks) == b"".join(parts)
        assert raw.get("blob") == b"".join(parts)

    #: update() calls per thread (kv-core's own tests run 8 × 200 over memory).
    sync_increments = 25

    def test_sync_updates_from_eight_threads_are_exact(self, sync_store: SyncStore[Any]) -> None:
        errors: list[BaseException] = []

        def work() -> None:
            try:
                for _ in range(self.sync_increments):
                    sync_store.update("counter", lambda n: n + 1, default=0)
            except BaseException as exc:  # reported below, not lost in the thread
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert sync_store.get("counter") == 8 * self.sync_increments

    def test_sync_store_refuses_a_thread_running_an_event_loop(
        self, sync_store: SyncStore[Any]
    ) -> None:
        async def inside() -> None:
            with pytest.raises(RuntimeError, match="async"):
                sync_store.get("k", None)

        asyncio.run(inside())

    def test_sync_store_after_close_raises(self, kv_harness: Harness) -> None:
        store: SyncStore[Any] = SyncStore(kv_harness.make_driver())
        view = store.namespace("v")
        store.close()
        store.close()  # idempotent
        assert store.closed
        for s in (store, view):
            with pytest.raises((StoreClosedError, RuntimeError)):
                s.get("k", None)
