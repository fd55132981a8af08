"""Compressed: values compressed behind a small self-describing header."""

from __future__ import annotations

import struct
import zlib

from .._driver import Driver
from .._errors import SerializationError
from ._transform import Transform

__all__ = ["MAGIC", "Compressed"]

#: First bytes of every value this layer rewrites. 0xC0 never starts valid UTF-8, so no
#: JSON or text value can be mistaken for an envelope; raw binary that happens to start
#: with these bytes is itself wrapped (method "stored") when written through the layer.
MAGIC = b"\xc0KVZ"
_HEADER = struct.Struct(">4sBQ")  # magic, method, original size
_STORED = 0  # the original bytes follow verbatim
_ZLIB = 1  # a zlib stream (with its Adler-32 check) follows
_METHODS = {"zlib": _ZLIB}


class Compressed(Transform):
    """Compresses values on write and decompresses them on read.

    A compressed value is ``MAGIC + method + original size + payload`` (13 bytes of
    header). A value that does not start with ``MAGIC`` is returned as it is stored, so
    data written before the layer was added still reads. Values shorter than
    ``threshold``, values that compression would not shrink, and values larger than
    ``max_decompressed`` are stored as they are (wrapped with method "stored" only if
    they happen to start with ``MAGIC``).

    Reading a value whose declared or actual decompressed size exceeds
    ``max_decompressed`` raises SerializationError without inflating it (no
    decompression bomb); so does a truncated header, an unknown method, a corrupt
    payload or a size mismatch. A damaged value is never returned as missing, and never
    as the envelope.

    Etags and expiries are the inner driver's. Streams are read and written whole (see
    :class:`Transform`). Place it above Encrypted (compress, then encrypt).

    Args:
        inner: The wrapped driver.
        algorithm: ``"zlib"`` (the standard library).
        threshold: Values shorter than this many bytes are stored uncompressed.
        level: Compression level (zlib: 0-9).
        max_decompressed: The largest value this layer will inflate, in bytes.
    """

    def __init__(
        self,
        inner: Driver,
        *,
        algorithm: str = "zlib",
        threshold: int = 1024,
        level: int = 6,
        max_decompressed: int = 64 << 20,
    ) -> None:
        super().__init__(inner)
        if algorithm not in _METHODS:
            raise ValueError(f"unknown compression algorithm {algorithm!r}; known: zlib")
        if threshold < 0 or max_decompressed < 0:
            raise ValueError("threshold and max_decompressed must be non-negative")
        if not 0 <= level <= 9:
            raise ValueError(f"zlib level must be 0-9, got {level}")
        self.algorithm = algorithm
        self.threshold = threshold
        self.level = level
        self.max_decompressed = max_decompressed

    def __repr__(self) -> str:
        return f"Compressed({self.inner!r}, algorithm={self.algorithm!r})"

    def _encode(self, key: str, value: bytes) -> bytes:
        size = len(value)
        if self.threshold <= size <= self.max_decompressed:
            packed = zlib.compress(value, self.level)
            if len(packed) + _HEADER.size < size:
                return _HEADER.pack(MAGIC, _ZLIB, size) + packed
        if value[:4] == MAGIC:
            return _HEADER.pack(MAGIC, _STORED, size) + value
        return value

    def _bad(self, key: str, why: str) -> SerializationError:
        return SerializationError(
            f"compressed value is unreadable: {why}", key=key, store=self.name
        )

    def _decode(self, key: str, data: bytes) -> bytes:
        if data[:4] != MAGIC:
            return data  # written before compression was switched on, or small
        if len(data) < _HEADER.size:
            raise self._bad(key, "truncated header")
        _, method, size = _HEADER.unpack_from(data)
        body = memoryview(data)[_HEADER.size :]
        if method == _STORED:
            if len(body) != size:
                raise self._bad(key, f"{len(body)} bytes stored, header says {size}")
            return bytes(body)
        if method != _ZLIB:
            raise self._bad(key, f"unknown method {method}")
        if size > self.max_decompressed:
            raise self._bad(
                key, f"decompressed size {size} exceeds the limit of {self.max_decompressed} bytes"
            )
        inflater = zlib.decompressobj()
        try:
            # Never inflate more than the header promised (+1 to notice a lie).
            out = inflater.decompress(body, size + 1)
        except zlib.error as exc:
            raise self._bad(key, f"corrupt zlib data ({exc})") from exc
        if len(out) != size or not inflater.eof or inflater.unconsumed_tail or inflater.unused_data:
            raise self._bad(key, f"payload does not match the declared size {size}")
        return out
