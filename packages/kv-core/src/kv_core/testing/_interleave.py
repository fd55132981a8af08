"""Controlled interleavings: driver wrappers that let a test decide when calls happen.

Two wrappers over any driver (they forward every optional method the inner driver has and
declare the same capabilities):

- :class:`GatedDriver`: every call waits until the test releases it::

      gated = GatedDriver(MemoryDriver())
      cache = CachedDriver(gated, mode="write_back")
      flushing = asyncio.create_task(cache.flush())
      call = await gated.next_call("set")      # the flush's upload, held at the gate
      ...                                      # do something while it is in flight
      call.release()                           # now it reaches the backend
      await call.finished()                    # and has returned

  ``gated.gating = False`` lets calls through untouched (set-up and checks).

- :class:`SeededDelayDriver`: every call waits a random number of event-loop turns
  (``asyncio.sleep(0)``) before and after reaching the inner driver, drawn from a seeded
  generator: a schedule is reproducible from its seed, and no wall-clock sleep is needed.

:func:`run_schedules` runs many seeded random schedules of concurrent Store operations
against a sequential model (see :class:`ScheduleModel`) and reports every divergence with
the seed that reproduces it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .._driver import Capability, Driver, NotModified, RawEntry

__all__ = [
    "CallHandle",
    "GatedDriver",
    "InterceptingDriver",
    "ScheduleFailure",
    "ScheduleSetup",
    "SeededDelayDriver",
    "default_schedule_count",
    "run_schedule",
    "run_schedules",
]

R = TypeVar("R")


class InterceptingDriver:
    """A driver that forwards every call to ``inner`` through :meth:`around`.

    Subclasses override :meth:`around`; every required and optional Driver method goes
    through it, with the method name and the key(s) it concerns.
    """

    def __init__(self, inner: Driver) -> None:
        self.inner = inner
        self.name = inner.name
        self.clock = inner.clock
        self.capabilities: Capability = inner.capabilities

    async def around(
        self, method: str, keys: tuple[str, ...], call: Callable[[], Awaitable[R]]
    ) -> R:
        """Run ``call`` (the inner driver's method); override to delay or hold it."""
        return await call()

    def _inner(self) -> Any:
        return self.inner

    async def get(self, key: str) -> RawEntry | None:
        """Forwarded to the inner driver."""
        return await self.around("get", (key,), lambda: self.inner.get(key))

    async def set(
        self,
        key: str,
        value: bytes,
        *,
        expires_at: float | None = None,
        if_match: str | None = None,
        if_absent: bool = False,
    ) -> str:
        """Forwarded to the inner driver."""
        return await self.around(
            "set",
            (key,),
            lambda: self.inner.set(
                key, value, expires_at=expires_at, if_match=if_match, if_absent=if_absent
            ),
        )

    async def delete(self, key: str, *, if_match: str | None = None) -> bool:
        """Forwarded to the inner driver."""
        return await self.around(
            "delete", (key,), lambda: self.inner.delete(key, if_match=if_match)
        )

    async def keys(self, prefix: str = "") -> AsyncIterator[str]:
        """Forwarded to the inner driver (listed in one call)."""

        async def collect() -> list[str]:
            return [k async for k in self.inner.keys(prefix)]

        for key in await self.around("keys", (prefix,), collect):
            yield key

    async def exists(self, key: str) -> bool:
        """Forwarded to the inner driver."""
        return await self.around("exists", (key,), lambda: self._inner().exists(key))

    async def get_many(self, keys: Sequence[str]) -> list[RawEntry | None]:
        """Forwarded to the inner driver."""
        return await self.around("get_many", tuple(keys), lambda: self._inner().get_many(keys))

    async def set_many(
        self, items: Sequence[tuple[str, bytes]], *, expires_at: float | None = None
    ) -> Sequence[str]:
        """Forwarded to the inner driver."""
        keys = tuple(k for k, _ in items)
        return await self.around(
            "set_many", keys, lambda: self._inner().set_many(items, expires_at=expires_at)
        )

    async def delete_many(self, keys: Sequence[str]) -> int:
        """Forwarded to the inner driver."""
        return await self.around(
            "delete_many", tuple(keys), lambda: self._inner().delete_many(keys)
        )

    async def clear(self, prefix: str) -> int:
        """Forwarded to the inner driver."""
        return await self.around("clear", (prefix,), lambda: self._inner().clear(prefix))

    async def get_if_changed(self, key: str, etag: str) -> RawEntry | NotModified | None:
        """Forwarded to the inner driver."""
        return await self.around(
            "get_if_changed", (key,), lambda: self._inner().get_if_changed(key, etag)
        )

    async def read_stream(self, key: str, *, chunk_size: int = 1 << 16) -> AsyncIterator[bytes]:
        """Forwarded to the inner driver (the gate applies to opening the stream)."""
        stream = self._inner().read_stream(key, chunk_size=chunk_size)
        first = await self.around("read_stream", (key,), lambda: _first(stream))
        if first is None:
            return
        yield first
        async for chunk in stream:
            yield chunk

    async def write_stream(
        self, key: str, chunks: AsyncIterable[bytes], *, expires_at: float | None = None
    ) -> str:
        """Forwarded to the inner driver."""
        return await self.around(
            "write_stream",
            (key,),
            lambda: self._inner().write_stream(key, chunks, expires_at=expires_at),
        )

    async def aclose(self) -> None:
        """Close the inner driver (never held)."""
        await self.inner.aclose()


async def _first(stream: AsyncIterator[bytes]) -> bytes | None:
    async for chunk in stream:
        return chunk
    return None


@dataclass(eq=False)
class CallHandle(Generic[R]):
    """One call held by a :class:`GatedDriver` until the test releases it.

    Attributes:
        method: The driver method (``"get"``, ``"set"``, ``"get_many"``, ...).
        keys: The key(s) the call concerns.
    """

    method: str
    keys: tuple[str, ...]
    _go: asyncio.Future[BaseException | None] = field(repr=False)
    _done: asyncio.Future[Any] = field(repr=False)
    _claimed: bool = field(repr=False, default=False)

    @property
    def key(self) -> str:
        """The first key of the call."""
        return self.keys[0] if self.keys else ""

    def release(self) -> None:
        """Let the call reach the inner driver."""
        if not self._go.done():
            self._go.set_result(None)

    def fail(self, error: BaseException) -> None:
        """Make the call raise ``error`` without reaching the inner driver."""
        if not self._go.done():
            self._go.set_result(error)

    @property
    def released(self) -> bool:
        """True once :meth:`release` or :meth:`fail` was called."""
        return self._go.done()

    async def finished(self) -> Any:
        """Wait until the call returned; give its result (or raise its error)."""
        return await asyncio.shield(self._done)


class GatedDriver(InterceptingDriver):
    """A driver whose calls each wait until the test releases them.

    Args:
        inner: The driver that does the work.
        methods: Only these methods are held (all of them by default); others pass.
    """

    def __init__(self, inner: Driver, *, methods: Sequence[str] | None = None) -> None:
        super().__init__(inner)
        self.methods = None if methods is None else frozenset(methods)
        #: While False, every call passes straight through (set-up, final checks).
        self.gating = True
        self._waiting: list[CallHandle[Any]] = []
        self._arrived: asyncio.Event | None = None
        #: Every call held so far, in arrival order (released or not).
        self.history: list[CallHandle[Any]] = []

    async def around(
        self, method: str, keys: tuple[str, ...], call: Callable[[], Awaitable[R]]
    ) -> R:
        """Hold the call until its handle is released."""
        if not self.gating or (self.methods is not None and method not in self.methods):
            return await call()
        loop = asyncio.get_running_loop()
        handle: CallHandle[R] = CallHandle(method, keys, loop.create_future(), loop.create_future())
        handle._done.add_done_callback(_retrieve)
        self._waiting.append(handle)
        self.history.append(handle)
        if self._arrived is not None:
            self._arrived.set()
        try:
            error = await handle._go
            if error is not None:
                raise error
            result = await call()
        except BaseException as exc:
            if not handle._done.done():
                if isinstance(exc, asyncio.CancelledError):
                    handle._done.cancel()
                else:
                    handle._done.set_exception(exc)
            raise
        finally:
            if handle in self._waiting:
                self._waiting.remove(handle)
        handle._done.set_result(result)
        return result

    def _match(self, method: str | None, key: str | None) -> CallHandle[Any] | None:
        for handle in self._waiting:
            if handle.released or handle._claimed:
                continue
            if method is not None and handle.method != method:
                continue
            if key is not None and key not in handle.keys:
                continue
            handle._claimed = True
            return handle
        return None

    async def next_call(self, method: str | None = None, key: str | None = None) -> CallHandle[Any]:
        """Wait for the next held call (of ``method`` / concerning ``key``) not yet handed out."""
        while True:
            handle = self._match(method, key)
            if handle is not None:
                return handle
            self._arrived = asyncio.Event()
            await self._arrived.wait()

    def pending(self) -> list[CallHandle[Any]]:
        """Calls held right now, in arrival order."""
        return [h for h in self._waiting if not h.released]

    def release_all(self) -> None:
        """Release every held call."""
        for handle in list(self._waiting):
            handle.release()


def _retrieve(future: asyncio.Future[Any]) -> None:
    # The test may never look at a call's outcome; do not log it as unretrieved.
    if not future.cancelled():
        future.exception()


class SeededDelayDriver(InterceptingDriver):
    """A driver whose calls each wait a seeded random number of event-loop turns.

    Before and after reaching the inner driver a call yields ``0..max_turns`` times
    (``asyncio.sleep(0)``), so a write may land long before its caller hears of it, and
    concurrent calls finish in an order drawn from ``seed``. Same seed, same order.
    """

    def __init__(self, inner: Driver, seed: int, *, max_turns: int = 6) -> None:
        super().__init__(inner)
        self.random = random.Random(seed)
        self.max_turns = max_turns
        self.calls = 0

    async def _turns(self) -> None:
        for _ in range(self.random.randint(0, self.max_turns)):
            await asyncio.sleep(0)

    async def around(
        self, method: str, keys: tuple[str, ...], call: Callable[[], Awaitable[R]]
    ) -> R:
        """Delay, call, delay."""
        self.calls += 1
        await self._turns()
        result = await call()
        await self._turns()
        return result


# -- seeded random schedules against a sequential model -------------------------------------
#
# The model. Each task owns two keys and is the only writer of them, so the operations on
# one key are sequential (issued one after another by one task) and the model can say
# exactly what each of them must return. Tasks run concurrently and the driver delays every
# backend call by seeded event-loop turns, so the operations of different tasks (and the
# cache's flushes, evictions and revalidations they cause) interleave in every order the
# seeds draw. Reads of other tasks' keys are checked the way linearizability asks: the
# value seen must be one the key held at some moment between the call and its return.
#
# Etags: an etag obtained since the key's last change must be accepted; an etag that
# identified a different state (value or expiry) must be refused; an old etag of the very
# same state may go either way (content-derived etags are allowed, DESIGN §6).


@dataclass
class ScheduleSetup:
    """What one schedule runs against; built by the test for each seed.

    Attributes:
        store: The Store under test (its driver delays calls with ``SeededDelayDriver``).
        backend: A Store over the bare storage, without delays or cache: used to put the
            read-only filler keys in place and to check what the backend holds at the end.
        flush: Writes pending data to the backend (a write-back cache's ``flush``); must
            never raise in these schedules (there is no other writer). None: no-op.
        check: Invariants checked after every operation (e.g. a cache's bounds).
    """

    store: Any
    backend: Any
    flush: Callable[[], Awaitable[Any]] | None = None
    check: Callable[[], None] | None = None


@dataclass
class ScheduleFailure:
    """A schedule whose outcome the sequential model does not allow."""

    seed: int
    message: str
    trace: list[str]

    def __str__(self) -> str:
        steps = "\n".join(f"    {line}" for line in self.trace[-60:])
        return (
            f"schedule seed={self.seed} diverged: {self.message}\n"
            f"  reproduce: run_schedule(make_setup, seed={self.seed})\n"
            f"  last steps (completion order):\n{steps}"
        )


def default_schedule_count() -> int:
    """Ten schedules per Hypothesis example of the active profile (kv-ci: 1,000)."""
    from hypothesis import settings

    return 10 * settings().max_examples


class _Divergence(AssertionError):
    pass


_ABSENT = None
_FILLERS = 24


@dataclass
class _Key:
    # (value, has_ttl), or None when absent; every state the key went through.
    history: list[tuple[int, bool] | None] = field(default_factory=lambda: [None])
    inflight: bool = False
    current: set[str] = field(default_factory=set)
    states: dict[str, tuple[int, bool] | None] = field(default_factory=dict)

    @property
    def state(self) -> tuple[int, bool] | None:
        return self.history[-1]

    def moved(self, state: tuple[int, bool] | None, etag: str | None = None) -> None:
        self.history.append(state)
        self.current = set()
        if etag is not None:
            self.saw(etag)

    def saw(self, etag: str) -> None:
        self.current.add(etag)
        self.states[etag] = self.state

    def verdict(self, etag: str) -> bool | None:
        """True: the write must succeed; False: it must fail; None: either."""
        if self.state is None:
            return False
        if etag in self.current:
            return True
        if etag in self.states and self.states[etag] == self.state:
            return None
        return False


class _Run:
    def __init__(self, setup: ScheduleSetup, seed: int, tasks: int, ops: int) -> None:
        self.setup = setup
        self.seed = seed
        self.tasks = tasks
        self.ops = ops
        self.keys = {f"t{t}/{n}": _Key() for t in range(tasks) for n in "ab"}
        self.trace: list[str] = []
        self.reads: list[tuple[str, dict[str, Any], dict[str, tuple[int, int]]]] = []

    def fail(self, message: str) -> None:
        raise _Divergence(message)

    def expect(self, ok: bool, message: str) -> None:
        if not ok:
            self.fail(message)

    def checked(self) -> None:
        if self.setup.check is not None:
            self.setup.check()

    async def task(self, t: int) -> None:
        from .._errors import KeyNotFoundError, PreconditionFailedError

        rng = random.Random(self.seed * 7919 + t)
        store = self.setup.store
        own = [f"t{t}/a", f"t{t}/b"]
        everyone = list(self.keys)
        for step in range(self.ops):
            key = rng.choice(own)
            model = self.keys[key]
            op = rng.choice(_OPS)
            value = rng.randint(0, 4)  # small: equal states recur (content etags, ABA)
            ttl = rng.choice([None, None, 3600.0])
            for k in own:  # set_many and get_many touch both
                self.keys[k].inflight = True
            note = f"t{t}.{step} {op} {key}"
            try:
                if op == "get":
                    got = await store.get(key, default=_ABSENT)
                    want = None if model.state is None else model.state[0]
                    self.expect(got == want, f"{note}: got {got!r}, model {want!r}")
                elif op == "get_entry":
                    try:
                        entry = await store.get_entry(key)
                    except KeyNotFoundError:
                        self.expect(model.state is None, f"{note}: missing, model {model.state}")
                    else:
                        state = (entry.value, entry.expires_at is not None)
                        self.expect(
                            state == model.state, f"{note}: got {state}, model {model.state}"
                        )
                        model.saw(entry.etag)
                        note += f" etag={entry.etag}"
                elif op == "exists":
                    got = await store.exists(key)
                    self.expect(got == (model.state is not None), f"{note}: exists={got}")
                elif op == "set":
                    etag = await store.set(key, value, ttl=ttl)
                    model.moved((value, ttl is not None), etag)
                    note += f" {value} ttl={ttl} -> {etag}"
                elif op == "set_if_absent":
                    note += f" {value}"
                    try:
                        etag = await store.set(key, value, if_absent=True)
                    except PreconditionFailedError:
                        self.expect(model.state is not None, f"{note}: refused, key absent")
                        model.moved(model.state)
                        note += " refused"
                    else:
                        self.expect(model.state is None, f"{note}: accepted over {model.state}")
                        model.moved((value, False), etag)
                elif op in ("set_if_match", "delete_if_match"):
                    etag = _pick_etag(rng, model)
                    verdict = model.verdict(etag)
                    note += f" if_match={etag} (model: {verdict})"
                    try:
                        if op == "set_if_match":
                            new = await store.set(key, value, if_match=etag)
                        else:
                            await store.delete(key, if_match=etag)
                            new = None
                    except PreconditionFailedError:
                        self.expect(verdict is not True, f"{note}: refused a current etag")
                        model.moved(model.state)
                        note += " refused"
                    else:
                        self.expect(verdict is not False, f"{note}: accepted a stale etag")
                        if op == "set_if_match":
                            model.moved((value, False), new)
                        else:
                            model.moved(None)
                elif op == "delete":
                    existed = await store.delete(key)
                    want = model.state is not None
                    self.expect(existed == want, f"{note}: returned {existed}, model {want}")
                    model.moved(None)
                elif op == "update":
                    old = model.state
                    new_value = await store.update(key, lambda n: n + 1, default=0)
                    want = (0 if old is None else old[0]) + 1
                    self.expect(new_value == want, f"{note}: {new_value}, model {want}")
                    model.moved((want, old is not None and old[1]))
                elif op == "set_many":
                    values = {k: rng.randint(0, 4) for k in own}
                    await store.set_many(values)
                    for k, v in values.items():
                        self.keys[k].moved((v, False))
                    note += f" {values}"
                elif op == "get_many_own":
                    got = await store.get_many(own)
                    want_many = {k: s[0] for k in own if (s := self.keys[k].state) is not None}
                    self.expect(got == want_many, f"{note}: got {got}, model {want_many}")
                elif op == "get_many_all":
                    chosen = rng.sample(everyone, k=min(4, len(everyone)))
                    start = {k: len(self.keys[k].history) - 1 for k in chosen}
                    got = await store.get_many(chosen)
                    end = {
                        k: len(self.keys[k].history) - 1 + (1 if self.keys[k].inflight else 0)
                        for k in chosen
                    }
                    self.reads.append((note, got, {k: (start[k], end[k]) for k in chosen}))
                    note += f" -> {got}"
                elif op == "flush":
                    if self.setup.flush is not None:
                        await self.setup.flush()
                elif op == "fillers":
                    names = [f"fill/{rng.randrange(_FILLERS)}" for _ in range(3)]
                    got = await store.get_many(names)
                    want_fill = {n: int(n.split("/")[1]) for n in names}
                    self.expect(got == want_fill, f"{note}: fillers {got}")
                    one = names[0]
                    self.expect(await store.get(one) == int(one.split("/")[1]), f"{note}: {one}")
                else:  # "turn": let other tasks run
                    await asyncio.sleep(0)
            except _Divergence:
                self.trace.append(note + " DIVERGED")
                raise
            except Exception as exc:
                self.trace.append(f"{note} raised {exc!r}")
                raise _Divergence(f"{note}: unexpected {type(exc).__name__}: {exc}") from exc
            finally:
                for k in own:
                    self.keys[k].inflight = False
            self.trace.append(note)
            self.checked()

    def check_reads(self) -> None:
        for note, got, windows in self.reads:
            for key, (first, last) in windows.items():
                history = self.keys[key].history
                allowed = {None if s is None else s[0] for s in history[first : last + 1]}
                seen = got.get(key)
                if key not in got:
                    seen = None
                self.expect(
                    seen in allowed, f"{note}: {key}={seen!r}, allowed {sorted(allowed, key=str)}"
                )

    async def final(self) -> None:
        if self.setup.flush is not None:
            await self.setup.flush()
        backend = self.setup.backend
        store = self.setup.store
        for key, model in self.keys.items():
            raw = await backend.driver.get(key)
            seen = None
            if raw is not None:
                seen = (await backend.get(key), raw.expires_at is not None)
            self.expect(seen == model.state, f"final: backend {key}={seen}, model {model.state}")
            got = await store.get(key, default=_ABSENT)
            want = None if model.state is None else model.state[0]
            self.expect(got == want, f"final: store {key}={got!r}, model {want!r}")


_OPS = [
    "get", "get_entry", "exists", "set", "set", "set_if_absent", "set_if_match",
    "set_if_match", "delete", "delete_if_match", "update", "update", "set_many",
    "get_many_own", "get_many_all", "flush", "fillers", "fillers", "turn",
]  # fmt: skip


def _pick_etag(rng: random.Random, model: _Key) -> str:
    known = sorted(model.states)
    current = sorted(model.current)
    roll = rng.random()
    if current and roll < 0.6:
        return rng.choice(current)
    if known and roll < 0.9:
        return rng.choice(known)
    return "no-such-etag"


async def _schedule(
    setup: ScheduleSetup, seed: int, tasks: int, ops: int
) -> ScheduleFailure | None:
    run = _Run(setup, seed, tasks, ops)
    try:
        for i in range(_FILLERS):
            await setup.backend.set(f"fill/{i}", i)
        try:
            await asyncio.gather(*(run.task(t) for t in range(tasks)))
            run.check_reads()
            await run.final()
        except _Divergence as exc:
            return ScheduleFailure(seed, str(exc), run.trace)
        except Exception as exc:
            return ScheduleFailure(seed, f"unexpected {type(exc).__name__}: {exc}", run.trace)
    finally:
        await setup.store.aclose()
        await setup.backend.aclose()
    return None


def run_schedule(
    make_setup: Callable[[int], ScheduleSetup],
    seed: int,
    *,
    tasks: int = 3,
    ops: int = 14,
    hang_after: float = 60.0,
) -> ScheduleFailure | None:
    """Run one seeded schedule in a fresh event loop; return its divergence, if any.

    ``make_setup(seed)`` is called inside the loop and must put ``SeededDelayDriver(...,
    seed)`` under the store. ``hang_after`` only guards against a deadlock in the code
    under test (reported as a divergence); it is never part of what is checked.
    """

    async def main() -> ScheduleFailure | None:
        setup = make_setup(seed)
        try:
            return await asyncio.wait_for(_schedule(setup, seed, tasks, ops), hang_after)
        except asyncio.TimeoutError:
            return ScheduleFailure(seed, f"did not finish in {hang_after}s (deadlock?)", [])

    return asyncio.run(main())


def run_schedules(
    make_setup: Callable[[int], ScheduleSetup],
    count: int | None = None,
    *,
    first_seed: int = 0,
    tasks: int = 3,
    ops: int = 14,
) -> list[ScheduleFailure]:
    """Run ``count`` schedules (default :func:`default_schedule_count`); return divergences.

    Seeds are ``first_seed .. first_seed + count - 1``; ``KV_SCHEDULE_SEED`` in the
    environment runs only that seed (to reproduce a reported failure).
    """
    import os

    only = os.environ.get("KV_SCHEDULE_SEED")
    seeds = (
        [int(only)] if only else range(first_seed, first_seed + (count or default_schedule_count()))
    )
    failures = []
    for seed in seeds:
        failure = run_schedule(make_setup, seed, tasks=tasks, ops=ops)
        if failure is not None:
            failures.append(failure)
    return failures
