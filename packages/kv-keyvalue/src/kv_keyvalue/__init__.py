"""kv-keyvalue: any kv store behind py-key-value's ``AsyncKeyValue`` protocol.

FastMCP (response caching, OAuth client storage, ...) and other frameworks accept an
``AsyncKeyValue``. Give them a kv store::

    from kv_keyvalue import KeyValueAdapter

    storage = KeyValueAdapter.from_url("redis://localhost:6379/0")
    # or KeyValueAdapter(store.namespace("mcp")) over a Store you already have

py-key-value itself is not needed at run time. When it is installed, every error the
adapter raises is also an instance of the matching ``key_value.aio.errors`` class.
"""

from ._adapter import DEFAULT_COLLECTION, DEFAULT_PAGE_SIZE, KeyValueAdapter
from ._codec import DICT_JSON, DictJSONCodec
from ._collections import MAX_SEGMENT
from ._errors import InvalidTTLError

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_COLLECTION",
    "DEFAULT_PAGE_SIZE",
    "DICT_JSON",
    "MAX_SEGMENT",
    "DictJSONCodec",
    "InvalidTTLError",
    "KeyValueAdapter",
    "__version__",
]
