"""kv for blocking code: scripts, Django views, notebooks, test fixtures (DESIGN §11).

::

    from kv_core.sync import open_store

    with open_store("file:./data") as store:
        store.set("user/1", {"name": "Ada"}, ttl=60)
        store.get("user/1")
        for key in store.keys(prefix="user/"):
            ...

Each :class:`SyncStore` runs one private event loop in a background thread and forwards
every call to the async :class:`~kv_core.Store`, so both faces follow the same rules.
"""

from ._sync import SyncStore, open_store

__all__ = ["SyncStore", "open_store"]
