"""The SQLite store's writer that the durability test kills with SIGKILL (run as a script).

Usage: python _killed_sqlite_writer.py DBFILE DURABLE(0|1) SEED ACKLOG

The workload of ``_killed_writer.py`` (checksummed 0.1-4 MiB values, two update()
counters) on one SQLite file: tasks 0 and 1 ``set`` their values (stored whole), task 2
writes its values with ``write_stream`` in 256 KiB pieces (stored as chunk rows). Before
each write a ``try KEY SEQ`` line goes to ACKLOG (so the test knows a write was in flight
when the process was killed), after it the ``set KEY SEQ`` acknowledgement.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _killed_writer import BLOB_KEYS, COUNTER, TASKS, AckLog, make_value, parse_value
from kv_core import BYTES, Store
from kv_local import SQLiteDriver

STREAMED = 2  # the task that writes with write_stream


async def main(path: str, durable: bool, seed: int, acklog: str) -> None:
    rng = random.Random(seed)
    log = AckLog(acklog)
    store = Store(SQLiteDriver(path, durable=durable), codec=BYTES)
    counter = Store(SQLiteDriver(path, durable=durable))  # JSON, the same file
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
                ttl = 3600 if key.startswith("ttl/") else None
                os.write(log.fd, f"try {key} {seqs[key]}\n".encode())
                if task == STREAMED:
                    pieces = [value[i : i + (256 << 10)] for i in range(0, len(value), 256 << 10)]
                    await store.write_stream(key, pieces, ttl=ttl)
                else:
                    await store.set(key, value, ttl=ttl)
                log.write(f"set {key} {seqs[key]}")

    async def increments() -> None:
        while True:
            value = await counter.update(COUNTER, lambda n: n + 1, default=0)
            log.write(f"inc {value}")

    await asyncio.gather(*(blobs(t) for t in range(TASKS)), increments(), increments())


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2] == "1", int(sys.argv[3]), sys.argv[4]))
