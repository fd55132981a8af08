"""kv-cache: a bounded in-process cache in front of any kv driver.

Quick start::

    from kv_core import Store, open_store
    from kv_cache import CachedDriver, CacheMode

    store = Store(CachedDriver(inner_driver, mode=CacheMode.WRITE_THROUGH))
    store = open_store("cache+redis://localhost:6379/0", mode="write_back")
"""

from ._core import CacheStats
from ._driver import CachedDriver
from ._options import CacheMode, ConflictPolicy, MergeFunction
from ._result import FlushConflictError, FlushFailedError, FlushResult, FlushStatus, KeyOutcome
from ._url import split_cache_url

__version__ = "0.1.0"

__all__ = [
    "CacheMode",
    "CacheStats",
    "CachedDriver",
    "ConflictPolicy",
    "FlushConflictError",
    "FlushFailedError",
    "FlushResult",
    "FlushStatus",
    "KeyOutcome",
    "MergeFunction",
    "__version__",
    "split_cache_url",
]
