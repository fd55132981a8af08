"""The harness a driver package gives the shared test suites."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from .._driver import Capability, Driver, RawEntry
from .._memory import MemoryDriver

__all__ = ["Harness", "MemoryHarness", "TestClock", "UrlHarness"]


@runtime_checkable
class Harness(Protocol):
    """Makes drivers that all reach one isolated piece of storage.

    A harness is plain configuration: loop-agnostic, and picklable when it is used by
    :class:`~kv_core.testing.CrossProcessConformance` (it is sent to other processes).
    """

    def make_driver(self, *, clock: Callable[[], float] | None = None) -> Driver:
        """A new driver over the same storage as every other driver of this harness."""
        ...

    def make_unreachable_driver(self) -> Driver | None:
        """A driver whose backend cannot be reached, or None if that cannot happen."""
        ...


class UrlHarness:
    """A harness that opens drivers by URL through the default registry (picklable).

    Args:
        url: The store URL, e.g. ``"redis://127.0.0.1:7001/0"``.
        unreachable_url: A URL of the same scheme that nothing answers, if any.
        options: Keyword options for the driver factory (``prefix=...``, ...).
    """

    def __init__(self, url: str, *, unreachable_url: str | None = None, **options: Any) -> None:
        self.url = url
        self.unreachable_url = unreachable_url
        self.options = options

    def make_driver(self, *, clock: Callable[[], float] | None = None) -> Driver:
        """Open ``url`` (with ``clock`` when given)."""
        from .._registry import open_driver

        extra = {} if clock is None else {"clock": clock}
        return open_driver(self.url, **self.options, **extra)

    def make_unreachable_driver(self) -> Driver | None:
        """Open ``unreachable_url``, if one was given."""
        from .._registry import open_driver

        if self.unreachable_url is None:
            return None
        return open_driver(self.unreachable_url, **self.options)

    def __repr__(self) -> str:
        return f"UrlHarness({self.url!r})"


class MemoryHarness:
    """Harness for :class:`~kv_core.MemoryDriver`: every driver shares one dict."""

    def __init__(self) -> None:
        self.data: dict[str, RawEntry] = {}

    def make_driver(self, *, clock: Callable[[], float] | None = None) -> Driver:
        """A MemoryDriver over the shared dict."""
        return MemoryDriver(clock=clock or time.time, data=self.data)

    def make_unreachable_driver(self) -> Driver | None:
        """Memory is always reachable."""
        return None


class TestClock:
    """A clock that tests move forward by hand.

    In manual mode (the default) time stands still at the moment the clock was made
    and moves only by :meth:`advance`/:meth:`elapse`, so no step of a test can expire a
    key by taking long on a slow machine. For drivers whose backend expires keys itself
    (Capability.NATIVE_TTL) an offset would not move the server's clock, so the clock
    follows real time and :meth:`elapse` sleeps.
    """

    __test__ = False  # not a pytest test class

    def __init__(self) -> None:
        self.start = time.time()
        self.offset = 0.0
        self.manual = True

    def __call__(self) -> float:
        return (self.start if self.manual else time.time()) + self.offset

    def adapt_to(self, driver: Driver) -> TestClock:
        """Follow real time when ``driver`` expires keys natively."""
        self.manual = not (driver.capabilities & Capability.NATIVE_TTL)
        return self

    def advance(self, seconds: float) -> None:
        """Move the clock forward (manual mode only)."""
        self.offset += seconds

    async def elapse(self, seconds: float) -> None:
        """Let ``seconds`` pass: instantly in manual mode, by sleeping otherwise."""
        if self.manual:
            self.offset += seconds
        else:
            await asyncio.sleep(seconds)
