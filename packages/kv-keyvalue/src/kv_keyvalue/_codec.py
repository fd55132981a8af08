"""The codec the adapter stores values with: a dict as plain JSON, nothing else.

py-key-value values are dicts with str keys. kv's default JSON codec would tag rich
types (datetime, UUID, ...) so that they round-trip; py-key-value's stores refuse them,
and so does this codec, so what lands in the backend is always the plain JSON any other
program reads, and what a framework gets back is exactly what ``json.loads`` gives.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["DICT_JSON", "DictJSONCodec"]

# Compact, UTF-8, and NaN/infinities refused (they are not JSON). No ``default``: a value
# json cannot write (datetime, UUID, Decimal, a pydantic object) raises TypeError. No
# cycle check (it costs a tenth of the encoding): a cyclic value raises RecursionError,
# which the Store reports as SerializationError all the same.
_encode = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":"), check_circular=False
).encode
_decode = json.loads


class DictJSONCodec:
    """Encode a mapping with str keys as a JSON object; decode a JSON object to a new dict.

    What ``json.dumps`` accepts is accepted (tuples are written as lists, as every
    py-key-value store that serialises does); anything else raises TypeError or
    ValueError, which the Store reports as SerializationError.
    """

    name = "dict-json"

    def encode(self, value: Mapping[str, Any]) -> bytes:
        """The value as compact UTF-8 JSON."""
        if type(value) is not dict:
            if not isinstance(value, Mapping):
                raise TypeError(f"values must be dicts, not {type(value).__name__}")
            value = dict(value)
        for key in value:
            if not isinstance(key, str):
                raise TypeError(f"dict keys must be str, not {type(key).__name__}")
        return _encode(value).encode("utf-8")

    def decode(self, data: bytes) -> dict[str, Any]:
        """A new dict from the stored JSON object."""
        value = _decode(data)
        if type(value) is not dict:
            raise TypeError(f"the stored JSON is a {type(value).__name__}, not an object")
        return value

    def __repr__(self) -> str:
        return "DICT_JSON"


#: The shared instance (the codec holds no state).
DICT_JSON = DictJSONCodec()
