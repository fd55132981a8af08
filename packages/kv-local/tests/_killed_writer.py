"""A writer the durability test kills with SIGKILL at random moments (run as a script).

Usage: python _killed_writer.py ROOT DURABLE(0|1) SEED ACKLOG

Each blob task owns its keys and writes them in turn with values of 0.1 to 4 MiB that
carry a checksum, the key and a sequence number (continued from what is stored, so a
sequence number identifies one write across runs). Two tasks increment ``counter`` with
``update()``. Every acknowledgement is appended to ACKLOG and flushed to the disk
(``set KEY SEQ`` or ``inc VALUE``) before the next write of that task starts.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import sys

from kv_core import BYTES, Store
from kv_local import LocalDriver

#: key -> the blob task that owns it (one writer per key: at most one write in flight).
BLOB_KEYS = {
    "flat": 0,
    "a/b/c": 0,
    "deep/" * 8 + "x": 1,
    "long/" + "é" * 300: 1,
    "ttl/one": 2,
    "ttl/two": 2,
}
TASKS = 3
COUNTER = "counter"


def make_value(rng: random.Random, key: str, seq: int) -> bytes:
    """``<sha256 of the rest>\\n<key>\\n<seq>\\n<payload>``."""
    payload = rng.randbytes(rng.randint(100 << 10, 4 << 20))
    body = f"{key}\n{seq}\n".encode() + payload
    return hashlib.sha256(body).hexdigest().encode() + b"\n" + body


def parse_value(key: str, value: bytes) -> int | None:
    """The sequence number of a whole value of ``key``; None if torn or mixed."""
    digest, _, body = value.partition(b"\n")
    if hashlib.sha256(body).hexdigest().encode() != digest:
        return None
    stored_key, _, rest = body.partition(b"\n")
    seq, _, _payload = rest.partition(b"\n")
    if stored_key.decode() != key or not seq.isdigit():
        return None
    return int(seq)


class AckLog:
    """Acknowledgements appended and flushed to the disk one line at a time."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        # A line the previous writer was killed in the middle of was not acknowledged:
        # cut it off, or the next line would be glued to it.
        data = os.pread(self.fd, os.fstat(self.fd).st_size, 0)
        os.ftruncate(self.fd, data.rfind(b"\n") + 1)

    def write(self, line: str) -> None:
        os.write(self.fd, line.encode() + b"\n")
        os.fdatasync(self.fd)


async def main(root: str, durable: bool, seed: int, acklog: str) -> None:
    rng = random.Random(seed)
    log = AckLog(acklog)
    store = Store(LocalDriver(root, durable=durable), codec=BYTES)
    counter = Store(LocalDriver(root, durable=durable))  # JSON, the same folder
    seqs = {}
    for key in BLOB_KEYS:
        current = await store.get(key, default=None)
        seqs[key] = 0 if current is None else (parse_value(key, current) or 0)
    print("ready", flush=True)

    async def blobs(task: int) -> None:
        mine = [key for key, owner in BLOB_KEYS.items() if owner == task]
        while True:
            for key in mine:
                seqs[key] += 1
                value = make_value(rng, key, seqs[key])
                await store.set(key, value, ttl=3600 if key.startswith("ttl/") else None)
                log.write(f"set {key} {seqs[key]}")

    async def increments() -> None:
        while True:
            value = await counter.update(COUNTER, lambda n: n + 1, default=0)
            log.write(f"inc {value}")

    await asyncio.gather(*(blobs(t) for t in range(TASKS)), increments(), increments())


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2] == "1", int(sys.argv[3]), sys.argv[4]))
