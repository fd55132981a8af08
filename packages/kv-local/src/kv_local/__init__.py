"""kv-local: a kv backend that keeps each key in a plain file under a folder.

>>> from kv_core import Store
>>> from kv_local import LocalDriver
>>> store = Store(LocalDriver("./data"))      # or kv_core.open_store("file:./data")
"""

from __future__ import annotations

from ._driver import LocalDriver

__all__ = ["LocalDriver"]
