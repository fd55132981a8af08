"""Per-key mutual exclusion that costs a dict lookup when nobody else holds the key.

Shared by the Store (``update()`` serialises updaters of one key) and by kv-cache.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

__all__ = ["KeyGate"]


class KeyGate:
    """Serialises work on one key; memory stays proportional to keys in use.

    ``await gate.acquire(key)`` then ``gate.release(key)`` in a ``finally``. Uncontended,
    neither allocates a lock or a future (kv_core's ``KeyLocks`` context manager costs
    several microseconds per use, too much on a cache's write path).
    """

    __slots__ = ("_queues",)

    def __init__(self) -> None:
        # key -> waiters; the key is held while it is present in the dict.
        self._queues: dict[str, deque[asyncio.Future[None]]] = {}

    async def acquire(self, key: str) -> None:
        """Wait until ``key`` is free, then hold it."""
        queue = self._queues.get(key)
        if queue is None:
            self._queues[key] = deque()
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(key)  # the key was handed over just as we were cancelled
            elif waiter in queue:
                queue.remove(waiter)
            # else: release() already dropped this cancelled waiter while handing the key
            # on (it ran between the cancellation and this task resuming).
            raise

    def release(self, key: str) -> None:
        """Hand ``key`` to the next waiter, or free it."""
        queue = self._queues[key]
        while queue:
            waiter = queue.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        del self._queues[key]

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        """``async with gate.hold(key):`` — acquire and release around a block."""
        await self.acquire(key)
        try:
            yield
        finally:
            self.release(key)

    def held(self, key: str) -> bool:
        """True if someone holds ``key``."""
        return key in self._queues

    def __len__(self) -> int:
        return len(self._queues)
