"""A short tour of kv that prints what it does (run through ``scripts/demo``)."""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
import tempfile
import uuid
from decimal import Decimal
from typing import Any

from kv_core import BYTES, PreconditionFailedError, Store, open_store


def say(text: str) -> None:
    print(f"\n\033[1m# {text}\033[0m")


_NOTHING = object()


def show(code: str, result: object = _NOTHING) -> None:
    print(f">>> {code}")
    if result is not _NOTHING:
        print(f"    {result!r}")


async def tour(url: str) -> None:
    store: Store[Any] = open_store(url)
    async with store:
        print(f"kv tour on {store!r}")
        await store.clear()

        say("Set and get: values are stored as plain JSON")
        await store.set("user/1", {"name": "Ada", "langs": ["en", "fr"]})
        show('await store.set("user/1", {"name": "Ada", "langs": ["en", "fr"]})')
        show('await store.get("user/1")', await store.get("user/1"))
        show("raw bytes on the backend", await store.with_codec(BYTES).get("user/1"))
        show('await store.get("user/2", default=None)', await store.get("user/2", default=None))

        say("Rich Python types round-trip through tagged JSON")
        rich = {
            "when": dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone.utc),
            "id": uuid.UUID(int=7),
            "price": Decimal("19.99"),
            "point": (3, 4),
            "tags": {"a", "b"},
            "blob": b"\x00\x01",
        }
        await store.set("rich", rich)
        back = await store.get("rich")
        show('await store.get("rich") == rich', back == rich)
        show("stored as", (await store.with_codec(BYTES).get("rich"))[:90] + b"...")

        say("Bytes values and streams bypass JSON")
        blobs = store.with_codec(BYTES)
        await blobs.write_stream("big.bin", (bytes([i]) * 65536 for i in range(16)))
        size = sum([len(c) async for c in blobs.read_stream("big.bin", chunk_size=262144)])
        show('await blobs.write_stream("big.bin", chunks); read back', f"{size} bytes")

        say("TTL: an expired key is never returned or listed")
        await store.set("session", "token", ttl=0.5)
        show(
            'await store.set("session", "token", ttl=0.5); await store.ttl("session")',
            round(await store.ttl("session") or 0, 2),
        )
        await asyncio.sleep(0.6)
        show('after 0.6 s: await store.exists("session")', await store.exists("session"))

        say("Etags: conditional writes never lose an update")
        entry = await store.get_entry("user/1")
        show('entry = await store.get_entry("user/1"); entry.etag', entry.etag)
        await store.set("user/1", {"name": "Ada L."}, if_match=entry.etag)
        show('await store.set("user/1", ..., if_match=entry.etag)', "written")
        try:
            await store.set("user/1", {"name": "stale"}, if_match=entry.etag)
        except PreconditionFailedError as exc:
            show("the same etag again", f"PreconditionFailedError: {exc}")
        try:
            await store.set("user/1", {}, if_absent=True)
        except PreconditionFailedError:
            show('await store.set("user/1", {}, if_absent=True)', "PreconditionFailedError")

        say("update(): a compare-and-set loop; 50 concurrent increments all land")
        await asyncio.gather(*(store.update("hits", lambda n: n + 1, default=0) for _ in range(50)))
        show('50 × await store.update("hits", lambda n: n + 1, default=0)', await store.get("hits"))

        say("Namespaces and listing")
        users = store.namespace("users")
        await users.set_many({"ada": {"born": 1815}, "alan": {"born": 1912}})
        show(
            'store.namespace("users").set_many({...}); [k async for k in users.keys()]',
            sorted([k async for k in users.keys()]),
        )
        show(
            '[k async for k in store.keys(prefix="users/")]',
            sorted([k async for k in store.keys(prefix="users/")]),
        )
        show(
            'await store.get_many(["users/ada", "nope"])',
            await store.get_many(["users/ada", "nope"]),
        )
        show("await users.clear()", await users.clear())
        show("await store.clear()", await store.clear())


def main() -> None:
    if len(sys.argv) > 1:
        asyncio.run(tour(sys.argv[1]))
        return
    with tempfile.TemporaryDirectory(prefix="kv-tour-") as folder:
        asyncio.run(tour(f"file:{folder}"))


if __name__ == "__main__":
    main()
