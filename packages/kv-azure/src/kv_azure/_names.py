"""Reversible, prefix-preserving mapping between kv keys and blob names.

The blob service takes almost any name; kv escapes only what it must (checked against
the service documentation and Azurite):

- ``\\`` (the service and Azurite turn it into ``/``), ASCII control characters (they break
  listings: XML 1.0 cannot carry them), and every non-ASCII character (the service rejects
  several code points, and ASCII names make the 1,024-character limit unambiguous) become
  ``%XX`` per UTF-8 byte. ``%`` itself and ``~`` (the marker below) are escaped too.
  Every other printable ASCII character, upper case included, is kept: ``user/1`` is
  the blob ``user/1``, ``config/app`` is ``config/app``.
- A segment that is empty or ends with ``.`` gets the marker ``~`` *appended*: the service
  trims trailing dots of path segments, drops ``.``/``..`` segments and mishandles empty
  ones (``a//b``, ``dir/``, ``/x``). So ``dir/`` is ``dir/~``, ``../x`` is ``..~/x``,
  ``COM1.`` is ``COM1.~``. A name never ends with ``.`` or ``/``.

Escaping is character by character and the marker is only ever *added* after a complete
segment, so the name of ``prefix + rest`` starts with :func:`list_prefix` of ``prefix``:
a prefix listing is one listing of exactly the names of the keys with that prefix.

Names over :data:`_READABLE` characters or :data:`_MAX_SLASHES` levels are *hashed*: their
first characters (cut between escapes, at most that many), then ``~`` and a SHA-256 of the
key. ``~`` followed by anything but ``/`` never occurs in a plain name, so the two kinds
cannot collide. The full key then travels in blob metadata (``kvkey``, base64url of its
UTF-8), which listings return with the name, so listing stays exact at no extra request.
The cut depends only on the characters before it, so a long prefix cut the same way still
covers every hashed name under it (the listing then filters the decoded keys).
"""

from __future__ import annotations

import base64
import hashlib
import re
import string

from kv_core import InvalidKeyError
from kv_core._keys import unescape_segment

__all__ = [
    "EXPIRES_METADATA",
    "KEY_METADATA",
    "blob_name",
    "expiry_of",
    "key_from_blob",
    "key_metadata",
    "list_prefix",
]

#: Characters kept as they are: printable ASCII but the escape, the marker and ``\``.
_KEPT = frozenset(set(string.printable) - set(string.whitespace) - set("%~\\")) | {" "}
_MARK = "~"
_HASHED = re.compile(r"~[0-9a-f]{64}\Z")
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


def _escape_chars(text: str) -> str:
    if _KEPT.issuperset(text):
        return text
    return "".join([c if c in _KEPT else "".join(f"%{b:02X}" for b in c.encode()) for c in text])


def _needs_mark(segment: str) -> bool:
    return not segment or segment.endswith(".")


def _escape_key(key: str) -> str:
    """The plain (unhashed) name of ``key``."""
    if (
        _KEPT.issuperset(key)
        and key[:1] not in ("", "/")
        and not key.endswith((".", "/"))
        and "./" not in key
        and "//" not in key
    ):
        return key  # the common case: nothing to escape, no segment to mark
    return "/".join(
        [_escape_chars(s) + _MARK if _needs_mark(s) else _escape_chars(s) for s in key.split("/")]
    )


def _cut(text: str) -> int:
    """Length of the readable part of ``text``: within limits, never inside a ``%XX``.

    Depends only on ``text[:_READABLE]`` (and on the slashes in it), so two texts sharing
    their first characters up to a cut share that cut.
    """
    end = min(len(text), _READABLE)
    if text.count("/", 0, end) > _MAX_SLASHES:
        pos = -1
        for _ in range(_MAX_SLASHES + 1):
            pos = text.index("/", pos + 1)
        end = pos
    if text[end - 1 : end] == "%":
        end -= 1
    elif text[end - 2 : end - 1] == "%":
        end -= 2
    return end


def _is_long(escaped: str) -> bool:
    return len(escaped) > _READABLE or escaped.count("/") > _MAX_SLASHES


def blob_name(key: str) -> str:
    """Return the blob name that stores ``key`` (deterministic, injective)."""
    escaped = _escape_key(key)
    if not _is_long(escaped):
        return escaped
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    return f"{escaped[: _cut(escaped)]}{_MARK}{digest}"


def key_metadata(key: str, name: str) -> dict[str, str]:
    """Metadata a blob named ``name`` must carry so its key can be listed: {} if none."""
    if not _HASHED.search(name):
        return {}
    encoded = base64.urlsafe_b64encode(key.encode("utf-8")).decode("ascii").rstrip("=")
    if len(encoded) > _MAX_KEY_METADATA:
        raise InvalidKeyError(
            "key too long for Azure Blob Storage: its UTF-8 form must fit in ~5.9 KB "
            "of blob metadata",
            key=key[:64] + "...",
        )
    return {KEY_METADATA: encoded}


def _decode(name: str, metadata: dict[str, str] | None) -> str | None:
    if _HASHED.search(name):
        encoded = (metadata or {}).get(KEY_METADATA)
        if not encoded:
            return None
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode("utf-8")
    return "/".join([unescape_segment(s[:-1] if s.endswith(_MARK) else s) for s in name.split("/")])


def key_from_blob(name: str, metadata: dict[str, str] | None) -> str | None:
    """Return the key stored in blob ``name``; None for a blob kv did not write.

    A name counts only if it is exactly the name kv gives the decoded key, so a foreign
    blob (``x/./y``, ``bad%zz``, a hashed name without its key) is never listed as a key
    that reads would then not find.
    """
    try:
        key = _decode(name, metadata)
    except ValueError:  # malformed %XX, bad UTF-8 or base64 (binascii.Error is a ValueError)
        return None
    if not key or blob_name(key) != name:
        return None
    return key


def list_prefix(prefix: str) -> str:
    """Return the blob-name prefix of the names of every key starting with ``prefix``.

    The segments ``prefix`` completes (those followed by ``/``) escape and get marked as
    in :func:`blob_name`; the last, possibly partial one only escapes, since the key may
    go on. Past the readable length the result is cut like a hashed name, and then may
    match names of other keys too: callers filter the decoded keys.
    """
    if not prefix:
        return ""
    head, slash, partial = prefix.rpartition("/")
    escaped = f"{_escape_key(head)}/{_escape_chars(partial)}" if slash else _escape_chars(partial)
    return escaped[: _cut(escaped)]


def expiry_of(metadata: dict[str, str] | None) -> float | None:
    """The expiry stored in blob metadata, or None."""
    raw = metadata.get(EXPIRES_METADATA) if metadata else None
    return float(raw) if raw else None
