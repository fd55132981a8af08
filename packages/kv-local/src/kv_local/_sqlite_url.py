"""Parsing of ``sqlite:`` URLs."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qsl, unquote

__all__ = ["parse_sqlite_url"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_FLAGS = ("durable", "fast_reads")


def parse_sqlite_url(url: str) -> tuple[str, dict[str, Any]]:
    """Split a ``sqlite:`` URL into a file path and constructor options.

    ``sqlite:./state.db`` and ``sqlite:state.db`` are relative to the working directory,
    ``sqlite:///srv/state.db`` is absolute, ``sqlite:~/state.db`` is under the home
    folder; ``%XX`` escapes are decoded. Options: ``durable`` and ``fast_reads`` (true or
    false), ``busy_timeout`` (seconds).
    """
    scheme, sep, rest = url.partition(":")
    if not sep or scheme.lower() != "sqlite":
        raise ValueError(f"not a sqlite: URL: {url!r}")
    rest, _, query = rest.partition("?")
    rest = rest.partition("#")[0]
    if rest.startswith("//"):
        host, slash, path = rest[2:].partition("/")
        if host not in ("", "localhost"):
            raise ValueError(f"sqlite: URLs name a local file, not host {host!r}: {url!r}")
        rest = slash + path
    path = os.path.expanduser(unquote(rest))
    if not path:
        raise ValueError(f"the sqlite: URL names no file: {url!r}")
    options: dict[str, Any] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name in _FLAGS:
            if value.lower() not in _TRUE | _FALSE:
                raise ValueError(f"{name} must be true or false, got {value!r}")
            options[name] = value.lower() in _TRUE
        elif name == "busy_timeout":
            try:
                options[name] = float(value)
            except ValueError:
                raise ValueError(f"busy_timeout must be seconds, got {value!r}") from None
        else:
            raise ValueError(
                f"unknown option {name!r} in {url!r} (known: durable, fast_reads, busy_timeout)"
            )
    return path, options
