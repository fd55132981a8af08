"""A writer the durability test kills with SIGKILL mid-write (run as a script).

Usage: python _killed_writer.py ROOT DURABLE(0|1) SEED
Writes checksummed values of 1 KiB to 256 KiB to a few keys from 8 tasks, forever.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import sys

from kv_local import LocalDriver

KEYS = ("flat", "a/b/c", "deep/" * 8 + "x", "long/" + "é" * 300, "ttl/one", "ttl/two")


def checksummed(rng: random.Random, key: str) -> bytes:
    payload = f"{key}|".encode() + rng.randbytes(rng.randint(1, 256) * 1024)
    return hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload


async def main(root: str, durable: bool, seed: int) -> None:
    rng = random.Random(seed)
    driver = LocalDriver(root, durable=durable)
    for key in KEYS:
        await driver.set(key, checksummed(rng, key))
    print("ready", flush=True)

    async def task() -> None:
        while True:
            key = rng.choice(KEYS)
            expiry = 4e9 if key.startswith("ttl/") else None
            await driver.set(key, checksummed(rng, key), expires_at=expiry)

    await asyncio.gather(*(task() for _ in range(8)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2] == "1", int(sys.argv[3])))
