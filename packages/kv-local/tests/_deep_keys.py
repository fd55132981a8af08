"""Deep keys under a small descriptor limit (run as a script by test_limits.py).

Usage: python _deep_keys.py ROOT NOFILE DURABLE(0|1)
Prints "ok" and exits 0 when every check passed.
"""

from __future__ import annotations

import asyncio
import os
import resource
import sys
from pathlib import Path

from kv_core import PreconditionFailedError
from kv_local import LocalDriver

DEEP = (
    "/" * 1023 + "x",  # 1,024 levels, every segment empty
    "a/" * 511 + "b",  # 512 levels
    "é" * 1024,  # one segment escaped to 6,144 characters: 31 pieces
    "x/" * 200 + "é" * 600,  # both
)


def entries(root: Path) -> list[str]:
    return sorted(os.listdir(root))


async def main(root: Path, durable: bool) -> None:
    driver = LocalDriver(root, durable=durable)
    try:
        for key in DEEP:
            # A write that fails after making the key's folders leaves none behind.
            try:
                await driver.set(key, b"never", if_match="no-such-etag")
                raise AssertionError("a stale etag was accepted")
            except PreconditionFailedError:
                pass
            assert entries(root) == ["#lock", "#owners"], entries(root)
        for key in DEEP:
            etag = await driver.set(key, key.encode())
            entry = await driver.get(key)
            assert entry is not None
            assert entry.value == key.encode()
            assert entry.etag == etag
            assert await driver.exists(key)
        ttl_key = "t/" * 300 + "ttl"
        await driver.set(ttl_key, b"soon", expires_at=1.0)  # already expired
        listed = [k async for k in driver.keys()]
        assert sorted(listed) == sorted(DEEP), [k[:20] for k in listed]
        assert [k async for k in driver.keys("/" * 1000)] == [DEEP[0]]
        assert [k async for k in driver.keys("a/" * 300)] == [DEEP[1]]
        assert await driver.purge_expired() == 1

        async def chunks():  # type: ignore[no-untyped-def]
            for _ in range(4):
                yield b"x" * 1000

        await driver.write_stream("s/" * 400 + "tream", chunks())
        # A group of writes larger than the descriptor limit allows at once.
        many = [(f"p/q/{i}", b"v") for i in range(600)]
        await driver.set_many(many)
        assert len([k async for k in driver.keys("p/")]) == 600
        # Many concurrent writers: prepared groups waiting for the flusher hold descriptors.
        await asyncio.gather(*(driver.set(f"p/c/{i}", b"v" * 5000) for i in range(600)))
        assert await driver.clear("p/c/") == 600
        assert await driver.delete(DEEP[0]) is True
        assert await driver.clear() == len(DEEP) - 1 + 1 + 600
        assert [k async for k in driver.keys()] == []
        assert entries(root) == ["#lock", "#owners"], entries(root)
    finally:
        await driver.aclose()


if __name__ == "__main__":
    limit = int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
    asyncio.run(main(Path(sys.argv[1]), sys.argv[3] == "1"))
    print("ok")
