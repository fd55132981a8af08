"""Codecs turn values into bytes and back.

A codec is any object with ``encode(value) -> bytes`` and ``decode(data) -> value``; the
Store wraps whatever either raises into SerializationError naming the key.
"""

from __future__ import annotations

import pickle
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from ._json import JSONCodec

__all__ = [
    "BYTES",
    "JSON",
    "PICKLE",
    "TEXT",
    "BytesCodec",
    "Codec",
    "JSONCodec",
    "PickleCodec",
    "TextCodec",
]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


@runtime_checkable
class Codec(Protocol[T]):
    """Turns values of type ``T`` into bytes and back."""

    #: A short name used in messages (``"json"``, ``"bytes"``).
    name: str

    def encode(self, value: T) -> bytes:
        """Return the bytes to store for ``value``."""
        ...

    def decode(self, data: bytes) -> T:
        """Return the value that ``data`` encodes."""
        ...


class BytesCodec:  # Codec[bytes]; encode also takes bytearray and memoryview
    """Stores ``bytes`` as they are (``bytearray`` and ``memoryview`` are accepted too)."""

    name = "bytes"

    def encode(self, value: bytes | bytearray | memoryview) -> bytes:
        """Return ``value`` as bytes."""
        if type(value) is bytes:
            return value
        if isinstance(value, (bytes, bytearray, memoryview)):  # bytes subclasses too
            return bytes(value)
        raise TypeError(f"the bytes codec stores bytes, not {type(value).__name__}")

    def decode(self, data: bytes) -> bytes:
        """Return ``data`` unchanged."""
        return data

    def __repr__(self) -> str:
        return "BYTES"


class TextCodec:
    """Stores ``str`` as UTF-8 (or another encoding)."""

    name = "text"

    def __init__(self, encoding: str = "utf-8") -> None:
        self.encoding = encoding

    def encode(self, value: str) -> bytes:
        """Encode ``value``; a non-str is a TypeError."""
        if not isinstance(value, str):
            raise TypeError(f"the text codec stores str, not {type(value).__name__}")
        return value.encode(self.encoding)

    def decode(self, data: bytes) -> str:
        """Decode ``data``; invalid bytes raise UnicodeDecodeError."""
        return data.decode(self.encoding)

    def __repr__(self) -> str:
        return "TEXT" if self.encoding == "utf-8" else f"TextCodec({self.encoding!r})"


class PickleCodec(Generic[T]):
    """Stores any picklable value with :mod:`pickle`.

    Warning:
        Unpickling runs code chosen by whoever wrote the data. Use this codec only for
        data that this application alone writes; never for data another party can reach.
    """

    name = "pickle"

    def __init__(self: PickleCodec[Any], protocol: int = pickle.HIGHEST_PROTOCOL) -> None:
        self.protocol = protocol

    def encode(self, value: T) -> bytes:
        """Pickle ``value``."""
        return pickle.dumps(value, protocol=self.protocol)

    def decode(self, data: bytes) -> T:
        """Unpickle ``data`` (unsafe for untrusted data)."""
        value: T = pickle.loads(data)
        return value

    def __repr__(self) -> str:
        return (
            "PICKLE"
            if self.protocol == pickle.HIGHEST_PROTOCOL
            else f"PickleCodec({self.protocol})"
        )


#: The default codec: plain JSON for plain values, tagged JSON for rich Python types.
JSON: JSONCodec[Any] = JSONCodec()
#: Raw bytes, stored as they are.
BYTES = BytesCodec()
#: UTF-8 text.
TEXT = TextCodec()
#: Pickle: opt-in only, unsafe for data anyone else can write.
PICKLE: PickleCodec[Any] = PickleCodec()
