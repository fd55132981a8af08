"""A cheap deadline for many concurrent calls: one timer per event loop, not one per call.

``asyncio.timeout``/``wait_for`` cost a timer handle (and on 3.10 a task) per call, over
10 µs on the hot path. Here a call only records ``(deadline, task)`` in an ordered dict;
one timer per loop runs every ``period`` seconds while calls are in flight and cancels the
tasks whose deadline has passed. Calls of one duration ("lane") are recorded in deadline
order, so a check stops at the first call that still has time: its cost is the number of
expired calls, not the number in flight. A deadline is enforced up to ``period`` late.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["Watchdog"]

U = TypeVar("U")


class _LoopState:
    __slots__ = ("expired", "handle", "lanes", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.lanes: dict[float, dict[int, tuple[float, asyncio.Task[object]]]] = {}
        self.expired: set[int] = set()
        self.handle: asyncio.TimerHandle | None = None


class Watchdog:
    """Runs awaitables with a deadline; a late one raises ``asyncio.TimeoutError``.

    Args:
        period: How often deadlines are checked while calls are in flight (seconds).
    """

    def __init__(self, period: float) -> None:
        self.period = period
        self._tokens = itertools.count()
        self._state: _LoopState | None = None
        # A Timeout shared by several loops (e.g. kv_core.sync's thread and the caller's)
        # keeps one state per loop; the common case is one loop, cached in _state.
        self._states: dict[asyncio.AbstractEventLoop, _LoopState] = {}

    def _for(self, loop: asyncio.AbstractEventLoop) -> _LoopState:
        state = self._states.get(loop)
        if state is None:
            if loop.is_closed():  # pragma: no cover - defensive
                raise RuntimeError("event loop is closed")
            self._states = {lp: s for lp, s in self._states.items() if not lp.is_closed()}
            state = self._states[loop] = _LoopState(loop)
        self._state = state
        return state

    async def run(self, seconds: float, call: Awaitable[U]) -> U:
        """Await ``call``; cancel it and raise ``asyncio.TimeoutError`` after ``seconds``."""
        task = asyncio.current_task()
        if task is None:  # pragma: no cover - always inside a task under asyncio
            return await call
        loop = task.get_loop()
        state = self._state
        if state is None or state.loop is not loop:
            state = self._for(loop)
        token = next(self._tokens)
        lane = state.lanes.get(seconds)
        if lane is None:
            lane = state.lanes[seconds] = {}
        lane[token] = (loop.time() + seconds, task)
        if state.handle is None:
            state.handle = loop.call_later(self.period, self._check, state)
        try:
            return await call
        except asyncio.CancelledError:
            if token in state.expired:
                raise asyncio.TimeoutError from None
            raise
        finally:
            del lane[token]
            if token in state.expired:
                state.expired.discard(token)
                uncancel = getattr(task, "uncancel", None)  # 3.11+: undo our cancel request
                if uncancel is not None:
                    uncancel()

    def _check(self, state: _LoopState) -> None:
        state.handle = None
        now = state.loop.time()
        busy = False
        for lane in state.lanes.values():
            for token, (deadline, task) in lane.items():
                if deadline > now:
                    break  # the rest of this lane started later: still in time
                if token not in state.expired:
                    state.expired.add(token)
                    task.cancel()
            busy = busy or bool(lane)
        if busy:
            state.handle = state.loop.call_later(self.period, self._check, state)
