"""Middleware: drivers that wrap a driver, stacked in any order under one Store.

Each layer is a Driver over a Driver: it sees the full key (namespace included) and the
encoded bytes, keeps the inner driver's etags and expiries, and forwards what it does not
change. Standard library only, except :class:`Encrypted` (``pip install
'kv-core[encryption]'``, which brings ``cryptography``)::

    from functools import partial
    from kv_core import Store, MemoryDriver
    from kv_core.middleware import Compressed, Retry, Stats, Timeout, stack

    driver = stack(
        MemoryDriver(),                      # innermost: the backend
        partial(Timeout, read=0.5, write=2.0),
        Retry,
        Compressed,
        Stats,                               # outermost: sees what callers do
    )
    store = Store(driver)

See the package README ("Middleware") for what each layer guarantees and what it does not.
"""

from __future__ import annotations

from collections.abc import Callable

from .._driver import Driver
from ._base import Middleware
from ._compressed import Compressed
from ._deadline import Timeout
from ._encrypted import Encrypted  # imports cryptography only when one is constructed
from ._guards import ReadOnly, SizeLimit, TTLPolicy
from ._logged import Logged
from ._retry import Fallback, Retry
from ._router import Router
from ._stats import LatencyHistogram, OperationStats, Stats
from ._transform import Transform

__all__ = [
    "Compressed",
    "Encrypted",
    "Fallback",
    "LatencyHistogram",
    "Logged",
    "Middleware",
    "OperationStats",
    "ReadOnly",
    "Retry",
    "Router",
    "SizeLimit",
    "Stats",
    "TTLPolicy",
    "Timeout",
    "Transform",
    "stack",
]


def stack(driver: Driver, *layers: Callable[[Driver], Driver]) -> Driver:
    """Wrap ``driver`` in ``layers``, innermost first; return the outermost driver.

    Each layer is called with the driver built so far: a middleware class, a
    ``functools.partial`` of one with its options, or any callable returning a Driver
    (``lambda d: Fallback(d, replica)``). ``stack(d, A, B)`` is ``B(A(d))``.
    """
    for layer in layers:
        driver = layer(driver)
    return driver
