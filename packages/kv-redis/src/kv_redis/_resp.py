"""Encode commands in the Redis protocol (RESP), faster than redis-py's general packer.

Our arguments are only ``bytes``, ``str`` and ``int``. Small arguments are joined into one
buffer; large values are passed through as separate chunks so they are never copied.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["pack"]

_BIG = 16 * 1024  # values above this go to the socket as their own chunk, uncopied


def pack(commands: Sequence[Sequence[Any]]) -> list[bytes]:
    """Return the wire chunks for ``commands`` (for ``StreamWriter.writelines``)."""
    out: list[bytes] = []
    buf: list[bytes] = []
    for command in commands:
        buf.append(b"*%d\r\n" % len(command))
        for arg in command:
            if isinstance(arg, bytes):
                data = arg
            elif isinstance(arg, str):
                data = arg.encode()
            elif isinstance(arg, int):
                data = b"%d" % arg
            else:
                data = (
                    bytes(arg) if isinstance(arg, (bytearray, memoryview)) else repr(arg).encode()
                )
            size = len(data)
            if size > _BIG:
                buf.append(b"$%d\r\n" % size)
                out.append(b"".join(buf))
                out.append(data)
                buf = [b"\r\n"]
            else:
                buf += (b"$%d\r\n" % size, data, b"\r\n")
    out.append(b"".join(buf))
    return out
