"""kv-local: a kv backend that keeps each key in a plain file under a folder.

>>> from kv_core import Store
>>> from kv_local import LocalDriver
>>> store = Store(LocalDriver("./data"))      # or kv_core.open_store("file:./data")
>>> from kv_local import SQLiteDriver        # the whole store in one SQLite file
>>> store = Store(SQLiteDriver("./state.db"))  # or kv_core.open_store("sqlite:./state.db")
"""

from __future__ import annotations

from ._driver import LocalDriver
from ._sqlite_driver import SQLiteDriver

__all__ = ["LocalDriver", "SQLiteDriver"]
