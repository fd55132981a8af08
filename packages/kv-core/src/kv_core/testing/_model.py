"""StoreModelTest: a Hypothesis state machine drives a Store and a dict side by side."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from .._errors import KeyNotFoundError, PreconditionFailedError
from .._store import Store
from ._corpus import WEIRD_KEYS
from ._harness import Harness, TestClock

__all__ = ["StoreModelTest"]

_keys = st.sampled_from(["a", "b", "a/b", "a/c", "b/a", "x" * 40, *WEIRD_KEYS[:12]])
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=8)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=4), inner, max_size=3)
        | st.tuples(inner, inner)
    ),
    max_leaves=6,
)
_ttls = st.none() | st.sampled_from([0.5, 5.0, 30.0])
_prefixes = st.sampled_from(["", "a", "a/", "b", "x", "."])


def _machine(harness: Harness) -> type[RuleBasedStateMachine]:
    class StoreVsDict(RuleBasedStateMachine):
        etags = Bundle("etags")

        def __init__(self) -> None:
            super().__init__()
            self.loop = asyncio.new_event_loop()
            self.clock = TestClock()
            driver = harness.make_driver(clock=self.clock)
            self.clock.adapt_to(driver)
            self.store: Store[Any] = Store(driver)
            self.run(self.store.clear())
            # key -> (value, expires_at in clock seconds or None)
            self.model: dict[str, tuple[Any, float | None]] = {}

        def run(self, coro: Any) -> Any:
            return self.loop.run_until_complete(coro)

        def live(self) -> dict[str, Any]:
            now = self.clock()
            return {k: v for k, (v, exp) in self.model.items() if exp is None or exp > now}

        def expire_model(self) -> None:
            self.model = {k: (v, e) for k, (v, e) in self.model.items() if k in self.live()}

        @rule(key=_keys, value=_json, ttl=_ttls)
        def set(self, key: str, value: Any, ttl: float | None) -> None:
            if ttl is not None and not self.clock.manual:
                # The server's clock starts before ours: keep expiry out of every example
                # rather than asserting inside the window where the two disagree.
                ttl = 3600.0
            self.run(self.store.set(key, value, ttl=ttl))
            self.model[key] = (value, None if ttl is None else self.clock() + ttl)

        @rule(target=etags, key=_keys)
        def get_entry(self, key: str) -> tuple[str, str]:
            live = self.live()
            try:
                entry = self.run(self.store.get_entry(key))
            except KeyNotFoundError:
                assert key not in live
                return (key, "no-such-etag")
            assert key in live
            assert entry.value == live[key]
            return (key, entry.etag)

        @rule(key_etag=etags, value=_json)
        def set_if_match(self, key_etag: tuple[str, str], value: Any) -> None:
            key, etag = key_etag
            try:
                self.run(self.store.set(key, value, if_match=etag))
            except PreconditionFailedError:
                return
            assert key in self.live()
            self.model[key] = (value, None)

        @rule(key=_keys, value=_json)
        def set_if_absent(self, key: str, value: Any) -> None:
            present = key in self.live()
            try:
                self.run(self.store.set(key, value, if_absent=True))
            except PreconditionFailedError:
                assert present
                return
            assert not present
            self.model[key] = (value, None)

        @rule(key=_keys)
        def get(self, key: str) -> None:
            live = self.live()
            got = self.run(self.store.get(key, default=KeyNotFoundError))
            if key in live:
                assert got == live[key]
            else:
                assert got is KeyNotFoundError

        @rule(key=_keys)
        def delete(self, key: str) -> None:
            existed = self.run(self.store.delete(key))
            assert existed == (key in self.live())
            self.model.pop(key, None)

        @rule(key=_keys)
        def increment(self, key: str) -> None:
            live = self.live()
            old = live.get(key)
            if key in live and type(old) is not int:
                return
            new = self.run(self.store.update(key, lambda n: n + 1, default=0))
            assert new == (old or 0) + 1
            exp = self.model[key][1] if key in live else None
            self.model[key] = (new, exp)

        @rule(items=st.dictionaries(_keys, _json, max_size=4))
        def set_many(self, items: dict[str, Any]) -> None:
            self.run(self.store.set_many(items))
            self.model.update({k: (v, None) for k, v in items.items()})

        @rule(keys=st.lists(_keys, max_size=5))
        def get_many(self, keys: list[str]) -> None:
            live = self.live()
            got = self.run(self.store.get_many(keys))
            assert got == {k: live[k] for k in keys if k in live}

        @rule(keys=st.lists(_keys, max_size=5))
        def delete_many(self, keys: list[str]) -> None:
            live = self.live()
            count = self.run(self.store.delete_many(keys))
            assert count == len({k for k in keys if k in live})
            for k in keys:
                self.model.pop(k, None)

        @rule(prefix=_prefixes)
        def keys(self, prefix: str) -> None:
            async def collect() -> list[str]:
                return [k async for k in self.store.keys(prefix)]

            got = self.run(collect())
            assert len(got) == len(set(got))
            assert sorted(got) == sorted(k for k in self.live() if k.startswith(prefix))

        @precondition(lambda self: self.clock.manual)
        @rule(seconds=st.sampled_from([1.0, 10.0]))
        def advance_clock(self, seconds: float) -> None:
            self.clock.advance(seconds)
            self.expire_model()

        @invariant()
        def exists_matches(self) -> None:
            for key in ("a", "a/b"):
                assert self.run(self.store.exists(key)) == (key in self.live())

        def teardown(self) -> None:
            try:
                flush = getattr(self.store.driver, "flush", None)
                if flush is not None:
                    self.run(flush())
                # A fresh driver must see exactly what the model holds.
                fresh: Store[Any] = Store(harness.make_driver(clock=self.clock))
                live = self.live()

                async def snapshot() -> dict[str, Any]:
                    async with fresh:
                        return {k: v async for k, v in fresh.items()}

                assert self.run(snapshot()) == live
                self.run(self.store.clear())
            finally:
                # Close even after a failed step, so a shrinking run leaks no client.
                try:
                    self.run(self.store.aclose())
                finally:
                    self.loop.close()

    return StoreVsDict


class StoreModelTest:
    """Runs the Store-vs-dict state machine against the ``kv_harness`` fixture.

    Subclass in one line; set ``max_examples`` lower for slow backends.
    """

    max_examples: ClassVar[int | None] = None
    step_count: ClassVar[int | None] = None

    def test_store_behaves_like_a_dict(self, kv_harness: Harness) -> None:
        profile = settings()
        run_state_machine_as_test(
            _machine(kv_harness),
            settings=settings(
                profile,
                max_examples=min(profile.max_examples, self.max_examples or profile.max_examples),
                stateful_step_count=self.step_count or profile.stateful_step_count,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
            ),
        )
