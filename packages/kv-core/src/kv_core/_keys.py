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
# Device names Windows reserves in any case, also with an extension ("con.txt").
_RESERVED = frozenset(
    {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}
)


def _reserved_stem(name: str) -> str | None:
    stem = name.partition(".")[0]
    return stem if 3 <= len(stem) <= 4 and stem.lower() in _RESERVED else None


def _pct(c: str) -> str:
    return "".join(f"%{b:02X}" for b in c.encode("utf-8"))


def escape_segment(text: str, *, safe: frozenset[str] = _SAFE) -> str:
    """Escape ``text`` reversibly into ``[a-z0-9-_.~]`` (plus ``safe``) and ``%XX`` tokens.

    Every character outside ``safe`` becomes ``%XX`` per UTF-8 byte, in upper-case hex.
    Upper-case letters are escaped too, so two keys that differ only by case never
    share a name on a case-insensitive file system (the only upper-case letters in the
    output are hex digits, whose case is fixed). ``.`` and ``..``, a trailing dot and the
    Windows device names (``con``, ``nul.txt``, ``com1``...) are escaped as well, because
    file systems and blob stores treat them specially. ``safe`` must not contain ``%``.

    Raises:
        UnicodeEncodeError: ``text`` holds a lone surrogate (never a valid key).
    """
    if (
        all(c in safe for c in text)
        and text not in (".", "..")
        and not text.endswith(".")
        and _reserved_stem(text) is None
    ):
        return text
    escaped = "".join([c if c in safe else _pct(c) for c in text])
    if escaped in (".", "..") or escaped.endswith("."):
        escaped = escaped[:-1] + "%2E"
    stem = _reserved_stem(escaped)
    if stem is not None:  # "con.txt" -> "co%6E.txt": no longer a device name
        escaped = stem[:-1] + _pct(stem[-1]) + escaped[len(stem) :]
    return escaped


_HEX = frozenset("0123456789abcdefABCDEF")


def unescape_segment(text: str) -> str:
    """Invert :func:`escape_segment`.

    Raises:
        ValueError: ``text`` holds a ``%`` not followed by two hex digits, or the escapes
            are not UTF-8 (UnicodeDecodeError).
    """
    if "%" not in text:
        return text
    data = bytearray()
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == "%":
            token = text[i + 1 : i + 3]
            # int() alone would take "%4", "%+1" or "% 1": accept exactly two hex digits.
            if len(token) != 2 or not _HEX.issuperset(token):
                raise ValueError(f"malformed escape {text[i : i + 3]!r} in {text!r}")
            data.append(int(token, 16))
            i += 3
        else:
            data.extend(c.encode("utf-8"))
            i += 1
    return data.decode("utf-8")
