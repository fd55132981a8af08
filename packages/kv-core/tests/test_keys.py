"""Key rules (DESIGN §4) and the reversible escaping drivers use for names."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kv_core import MAX_KEY_LENGTH, InvalidKeyError, validate_key
from kv_core._keys import escape_segment, unescape_segment
from kv_core.testing import WEIRD_KEYS

# Safe characters, or %XX tokens (upper-case hex, the only upper case an output holds).
ESCAPED = re.compile(r"(?:[a-z0-9\-_.~]|%[0-9A-F]{2})*")
WINDOWS_DEVICES = {"con", "prn", "aux", "nul"} | {
    f"{p}{i}" for p in ("com", "lpt") for i in range(10)
}


class MyStr(str):
    __slots__ = ()


# -- validate_key -------------------------------------------------------------------------


@pytest.mark.parametrize("key", [*WEIRD_KEYS, "k", "x" * MAX_KEY_LENGTH, "🦄" * MAX_KEY_LENGTH])
def test_valid_keys_are_returned_unchanged(key: str) -> None:
    assert validate_key(key) == key


@given(st.text(min_size=1, max_size=MAX_KEY_LENGTH))
def test_any_nonempty_text_up_to_the_limit_is_valid(key: str) -> None:
    assert validate_key(key) == key


def test_str_subclass_is_accepted_as_a_plain_str() -> None:
    result = validate_key(MyStr("abc"))
    assert result == "abc"
    assert type(result) is str


@pytest.mark.parametrize(
    ("key", "message", "named"),
    [
        ("", "must not be empty", "''"),
        ("x" * (MAX_KEY_LENGTH + 1), "at most 1024 characters, got 1025", "xxxx"),
        ("é" * (MAX_KEY_LENGTH + 1), "at most 1024 characters", "éé"),
        ("a\ud800b", "lone surrogates", "a?b"),
        ("\udfff", "lone surrogates", "?"),
        (b"bytes", "must be a str, not bytes", "b'bytes'"),
        (1, "must be a str, not int", "1"),
        (None, "must be a str, not NoneType", "None"),
    ],
)
def test_invalid_keys_raise_invalid_key_error_naming_the_key(
    key: object, message: str, named: str
) -> None:
    with pytest.raises(InvalidKeyError) as info:
        validate_key(key)
    assert isinstance(info.value, ValueError)
    assert message in str(info.value)
    assert info.value.key is not None
    assert f"key={info.value.key!r}" in str(info.value)
    assert named in str(info.value)


# -- escape_segment / unescape_segment -------------------------------------------------------


@given(st.text())
def test_escape_round_trips(text: str) -> None:
    assert unescape_segment(escape_segment(text)) == text


@given(st.text())
def test_escape_output_alphabet(text: str) -> None:
    escaped = escape_segment(text)
    assert ESCAPED.fullmatch(escaped), escaped
    assert "/" not in escaped
    assert escaped not in (".", "..")
    assert not escaped.endswith(".")
    stem = escaped.partition(".")[0].lower()
    assert stem not in WINDOWS_DEVICES


@given(st.text(), st.text())
def test_escape_is_injective_even_ignoring_case(a: str, b: str) -> None:
    if a != b:
        assert escape_segment(a).lower() != escape_segment(b).lower()


@given(st.text(alphabet="aAbB.%~-_ ", max_size=6))
def test_escape_is_injective_over_case_variants(text: str) -> None:
    variants = {text, text.upper(), text.lower(), text.swapcase()}
    escaped = {escape_segment(v).lower() for v in variants}
    assert len(escaped) == len(variants)


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("", ""),
        ("plain-key_1.txt~", "plain-key_1.txt~"),
        ("A", "%41"),
        ("/", "%2F"),
        ("%", "%25"),
        (".", "%2E"),
        ("..", ".%2E"),
        ("...", "..%2E"),
        ("a.", "a%2E"),
        ("é", "%C3%A9"),
        ("con", "co%6E"),
        ("nul.txt", "nu%6C.txt"),
        ("com1", "com%31"),
        ("console", "console"),
        ("CON", "%43%4F%4E"),
    ],
)
def test_escape_examples(text: str, escaped: str) -> None:
    assert escape_segment(text) == escaped
    assert unescape_segment(escaped) == text


@pytest.mark.parametrize("key", WEIRD_KEYS)
def test_weird_keys_escape_per_segment_and_back(key: str) -> None:
    segments = key.split("/")
    escaped = [escape_segment(s) for s in segments]
    assert all(ESCAPED.fullmatch(e) for e in escaped)
    assert "/".join(unescape_segment(e) for e in escaped) == key


def test_custom_safe_set() -> None:
    safe = frozenset("abcABC")
    assert escape_segment("aBc", safe=safe) == "aBc"
    assert escape_segment("aBd", safe=safe) == "aB%64"
    assert escape_segment("CON", safe=frozenset("CON")) == "CO%4E"
    assert unescape_segment("CO%4E") == "CON"


def test_unescape_accepts_lower_case_hex() -> None:
    assert unescape_segment("%2f%c3%a9") == "/é"


@pytest.mark.parametrize("bad", ["%", "%4", "a%4", "%zz", "%+1", "% 1", "%-1", "%FF", "%C3"])
def test_unescape_of_malformed_text_raises_value_error(bad: str) -> None:
    with pytest.raises(ValueError):
        unescape_segment(bad)
