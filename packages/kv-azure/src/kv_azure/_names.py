"""Reversible mapping between kv keys and blob names.

Each ``/``-separated segment of a key is escaped with :func:`kv_core._keys.escape_segment`
into ``[a-zA-Z0-9-_.%]`` (blob names are case-sensitive, so upper case stays as is). That
removes everything the blob service or a URL treats specially: ``.`` and ``..`` segments,
trailing dots, ``%``, ``\\``, control characters. An empty segment (``a//b``, a trailing
``/``) becomes ``~``, a character escaped everywhere else, so names never end with ``/``.

Blob names are limited to 1,024 characters and 254 segments, while a key may be 1,024
characters before escaping and namespacing. A name over the limits is *hashed*: its first
:data:`_READABLE` characters (cut on a character boundary), then ``~`` and a SHA-256 of the
key. The full key then travels in blob metadata (``kvkey``, base64url of its UTF-8), which
listings return with the name, so listing stays exact and costs no extra request.
Because the readable part is a prefix of the escaped key, a prefix listing still finds
hashed names: :func:`list_prefix` cuts the escaped prefix the same way.
"""

from __future__ import annotations

import base64
import hashlib
import string

from kv_core import InvalidKeyError
from kv_core._keys import escape_segment, unescape_segment

__all__ = [
    "EXPIRES_METADATA",
    "KEY_METADATA",
    "blob_name",
    "expiry_of",
    "key_from_blob",
    "key_metadata",
    "list_prefix",
]

_SAFE = frozenset(string.ascii_letters + string.digits + "-_.")
_EMPTY = "~"
_HASH_MARK = "~"
#: Readable characters kept in a hashed name: 1024 - "~" - 64 hex digits, with margin.
_READABLE = 900
#: At most this many ``/`` in a name (the service allows 254 segments).
_MAX_SLASHES = 200
#: Metadata key holding the full key of a hashed name.
KEY_METADATA = "kvkey"
#: Metadata key of the absolute expiry (the driver's clock, seconds, ``repr`` of a float).
EXPIRES_METADATA = "kvexpires"
#: The service limits all metadata of a blob to 8 KiB; leave room for the expiry.
_MAX_KEY_METADATA = 7_900


def _escape(segment: str) -> str:
    return escape_segment(segment, safe=_SAFE) if segment else _EMPTY


def _escape_key(key: str) -> str:
    if "/" not in key:
        return _escape(key)
    return "/".join([_escape(s) for s in key.split("/")])


def _cut(text: str) -> int:
    """Length of the readable part of ``text``: within limits, on a character boundary."""
    end = min(len(text), _READABLE)
    if text.count("/", 0, end) > _MAX_SLASHES:
        pos = -1
        for _ in range(_MAX_SLASHES + 1):
            pos = text.index("/", pos + 1)
        end = pos
    # Never split "%XX", nor a multi-byte UTF-8 character (continuation bytes %80-%BF).
    while end < len(text) and (
        text[end - 1 : end] == "%"
        or text[end - 2 : end - 1] == "%"
        or (text[end] == "%" and text[end + 1] in "89AB")
    ):
        end -= 1
    return end


def _is_long(escaped: str) -> bool:
    return len(escaped) > _READABLE or escaped.count("/") > _MAX_SLASHES


def blob_name(key: str) -> str:
    """Return the blob name that stores ``key`` (deterministic, injective)."""
    escaped = _escape_key(key)
    if not _is_long(escaped):
        return escaped
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    return f"{escaped[: _cut(escaped)]}{_HASH_MARK}{digest}"


def key_metadata(key: str, name: str) -> dict[str, str]:
    """Metadata a blob named ``name`` must carry so its key can be listed: {} if none."""
    if not _is_hashed(name):
        return {}
    encoded = base64.urlsafe_b64encode(key.encode("utf-8")).decode("ascii").rstrip("=")
    if len(encoded) > _MAX_KEY_METADATA:
        raise InvalidKeyError(
            "key too long for Azure Blob Storage: its UTF-8 form must fit in ~5.9 KB "
            "of blob metadata",
            key=key[:64] + "...",
        )
    return {KEY_METADATA: encoded}


def _is_hashed(name: str) -> bool:
    last = name.rpartition("/")[2]
    return last != _EMPTY and _HASH_MARK in last


def key_from_blob(name: str, metadata: dict[str, str] | None) -> str | None:
    """Return the key stored in blob ``name``; None for a blob kv did not write."""
    if _is_hashed(name):
        encoded = (metadata or {}).get(KEY_METADATA)
        if not encoded:
            return None
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode("utf-8")
    try:
        return "/".join(["" if s == _EMPTY else unescape_segment(s) for s in name.split("/")])
    except (ValueError, IndexError):
        return None  # a foreign blob whose name is not an escaped key


def list_prefix(prefix: str) -> str:
    """Return a blob-name prefix shared by the names of every key starting with ``prefix``.

    Whole segments escape as in :func:`blob_name`. The last, partial segment escapes
    character by character without its trailing dots (which escape differently at the end
    of a segment), and the result is cut like a hashed name's readable part. The prefix
    may match more than ``prefix`` does; callers filter the decoded keys.
    """
    head, _, partial = prefix.rpartition("/")
    partial = escape_segment(partial.rstrip("."), safe=_SAFE) if partial.rstrip(".") else ""
    escaped = f"{_escape_key(head)}/{partial}" if prefix.count("/") else partial
    return escaped[: _cut(escaped)]


def expiry_of(metadata: dict[str, str] | None) -> float | None:
    """The expiry stored in blob metadata, or None."""
    raw = metadata.get(EXPIRES_METADATA) if metadata else None
    return float(raw) if raw else None
