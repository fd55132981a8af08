"""Parsing of ``file:`` URLs."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qsl, unquote

__all__ = ["parse_file_url"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_file_url(url: str) -> tuple[str, dict[str, Any]]:
    """Split a ``file:`` URL into a folder path and constructor options.

    ``file:./data`` and ``file:data`` are relative to the working directory,
    ``file:///srv/data`` (or ``file://localhost/srv/data``) is absolute, ``file:~/data``
    is under the home folder. ``%XX`` escapes in the path are decoded.
    """
    scheme, sep, rest = url.partition(":")
    if not sep or scheme.lower() != "file":
        raise ValueError(f"not a file: URL: {url!r}")
    rest, _, query = rest.partition("?")
    rest = rest.partition("#")[0]
    if rest.startswith("//"):
        host, slash, path = rest[2:].partition("/")
        if host not in ("", "localhost"):
            raise ValueError(f"file: URLs name a local folder, not host {host!r}: {url!r}")
        rest = slash + path
    path = os.path.expanduser(unquote(rest))
    if not path:
        raise ValueError(f"the file: URL names no folder: {url!r}")
    options: dict[str, Any] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name not in ("durable", "syncfs"):
            raise ValueError(f"unknown option {name!r} in {url!r} (known: durable, syncfs)")
        if value.lower() not in _TRUE | _FALSE:
            raise ValueError(f"{name} must be true or false, got {value!r}")
        options[name] = value.lower() in _TRUE
    return path, options
