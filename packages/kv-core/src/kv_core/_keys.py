"""Key rules (DESIGN §4) and the reversible escaping helpers drivers share."""

from __future__ import annotations

from ._errors import InvalidKeyError

__all__ = ["MAX_KEY_LENGTH", "escape_segment", "unescape_segment", "validate_key"]

MAX_KEY_LENGTH = 1024


def validate_key(key: object) -> str:
    """Return ``key`` if it is a valid key, else raise InvalidKeyError naming it.

    A key is a non-empty ``str`` of at most 1024 characters without lone surrogates.
    This runs on every operation, so the common case (short ASCII) costs two checks.
    """
    if type(key) is str and 0 < len(key) <= MAX_KEY_LENGTH and key.isascii():
        return key
    if not isinstance(key, str):
        raise InvalidKeyError(f"a key must be a str, not {type(key).__name__}", key=repr(key))
    if not key:
        raise InvalidKeyError("a key must not be empty", key=key)
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKeyError(
            f"a key must be at most {MAX_KEY_LENGTH} characters, got {len(key)}",
            key=key[:64] + "...",
        )
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidKeyError(
            "a key must not contain lone surrogates", key=key.encode("utf-8", "replace").decode()
        ) from None
    return str(key)


# Characters that survive unescaped in a file or blob name segment on every platform.
_SAFE = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.~")


def escape_segment(text: str, *, safe: frozenset[str] = _SAFE) -> str:
    """Escape ``text`` reversibly into ``[a-z0-9-_.~%]`` plus ``safe``.

    Upper-case letters are escaped too, so two keys that differ only by case never
    share a name on a case-insensitive file system. Every other character becomes
    ``%XX`` per UTF-8 byte. ``.`` and ``..`` and a trailing dot are escaped as well,
    because file systems and blob stores treat them specially.
    """
    if all(c in safe for c in text) and text not in (".", "..") and not text.endswith("."):
        return text
    out = [c if c in safe else "".join(f"%{b:02X}" for b in c.encode("utf-8")) for c in text]
    escaped = "".join(out)
    if escaped in (".", "..") or escaped.endswith("."):
        escaped = escaped[:-1] + "%2E"
    return escaped


def unescape_segment(text: str) -> str:
    """Invert :func:`escape_segment`."""
    if "%" not in text:
        return text
    data = bytearray()
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == "%":
            data.append(int(text[i + 1 : i + 3], 16))
            i += 3
        else:
            data.extend(c.encode("utf-8"))
            i += 1
    return data.decode("utf-8")
