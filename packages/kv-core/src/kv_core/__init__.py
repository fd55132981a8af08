"""kv-core: async key-value storage with one Store API over pluggable backends.

Quick start::

    from kv_core import Store, MemoryDriver, open_store

    async with open_store("file:./data") as store:   # needs kv-local
        await store.set("user/1", {"name": "Ada"}, ttl=60)
        await store.get("user/1")
"""

from ._codecs import BYTES, JSON, PICKLE, TEXT, BytesCodec, Codec, JSONCodec, PickleCodec, TextCodec
from ._driver import NOT_MODIFIED, BatchDriver, Capability, Driver, NotModified, RawEntry
from ._entry import Entry
from ._errors import (
    BackendError,
    BackendUnavailableError,
    InvalidKeyError,
    KeyNotFoundError,
    KVError,
    OutcomeUnknownError,
    PreconditionFailedError,
    SerializationError,
    StoreClosedError,
    UnsupportedOperationError,
    ValueTooLargeError,
)
from ._keys import MAX_KEY_LENGTH, escape_segment, unescape_segment, validate_key
from ._locks import KeyGate
from ._memory import MemoryDriver
from ._registry import INSTALL_HINTS, Registry, default_registry, open_driver, open_store
from ._store import KEEP_TTL, Store

__version__ = "0.1.0"

__all__ = [
    "BYTES",
    "INSTALL_HINTS",
    "JSON",
    "KEEP_TTL",
    "MAX_KEY_LENGTH",
    "NOT_MODIFIED",
    "PICKLE",
    "TEXT",
    "BackendError",
    "BackendUnavailableError",
    "BatchDriver",
    "BytesCodec",
    "Capability",
    "Codec",
    "Driver",
    "Entry",
    "InvalidKeyError",
    "JSONCodec",
    "KVError",
    "KeyGate",
    "KeyNotFoundError",
    "MemoryDriver",
    "NotModified",
    "OutcomeUnknownError",
    "PickleCodec",
    "PreconditionFailedError",
    "RawEntry",
    "Registry",
    "SerializationError",
    "Store",
    "StoreClosedError",
    "TextCodec",
    "UnsupportedOperationError",
    "ValueTooLargeError",
    "__version__",
    "default_registry",
    "escape_segment",
    "open_driver",
    "open_store",
    "unescape_segment",
    "validate_key",
]
