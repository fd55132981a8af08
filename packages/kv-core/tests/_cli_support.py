"""Helpers for the ``kv`` command-line tests: an in-process runner over memory stores.

Only kv-core is needed: a ``testmem://NAME`` scheme maps each NAME to a dict and a clock
that outlive single invocations, so one command sees what the previous one wrote.
"""

from __future__ import annotations

import asyncio
import io
import sys
from dataclasses import dataclass, field
from typing import Any

import pytest
from kv_core import (
    JSON,
    MemoryDriver,
    RawEntry,
    Registry,
    Store,
)
from kv_core._cli import main


class FrozenClock:
    """A clock that moves only when told to, so TTLs print exactly."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Result:
    code: int
    out: bytes
    err: str

    @property
    def text(self) -> str:
        return self.out.decode("utf-8")


@dataclass
class Kv:
    """Runs ``main()`` in-process and keeps the ``testmem://`` stores between runs."""

    capsys: pytest.CaptureFixture[bytes]
    monkeypatch: pytest.MonkeyPatch
    data: dict[str, dict[str, RawEntry]] = field(default_factory=dict)
    clocks: dict[str, FrozenClock] = field(default_factory=dict)
    registry: Registry = field(default_factory=lambda: Registry(use_entry_points=False))

    def __post_init__(self) -> None:
        self.registry.register("testmem", self._factory)

    def _factory(self, url: str, **options: Any) -> MemoryDriver:
        name = url.split("://", 1)[1]
        return MemoryDriver(data=self.data.setdefault(name, {}), clock=self.clock(name))

    def clock(self, name: str = "main") -> FrozenClock:
        # Each store gets its own clock, far apart, so copy must translate expiries.
        return self.clocks.setdefault(name, FrozenClock(1_000_000.0 * (len(self.clocks) + 1)))

    def __call__(self, *argv: str, stdin: bytes | None = None) -> Result:
        self.capsys.readouterr()  # drop anything earlier
        if stdin is not None:
            self.monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        code = main(list(argv), registry=self.registry)
        out, err = self.capsys.readouterr()
        return Result(code, out, err.decode("utf-8"))

    def store(self, name: str = "main") -> Store[Any]:
        return self.registry.open_store(f"testmem://{name}")

    def put(self, key: str, value: Any, *, codec: Any = JSON, ttl: float | None = None) -> None:
        async def go() -> None:
            async with self.store().with_codec(codec) as s:
                await s.set(key, value, ttl=ttl)

        asyncio.run(go())

    def fetch(self, key: str, *, name: str = "main", codec: Any = JSON) -> Any:
        async def go() -> Any:
            async with self.store(name).with_codec(codec) as s:
                return await s.get(key, default="<missing>")

        return asyncio.run(go())


def assert_one_line_error(result: Result, code: int) -> None:
    assert result.code == code, result
    assert result.err.startswith("kv: ")
    assert result.err.count("\n") == 1, result.err
    assert "Traceback" not in result.err
