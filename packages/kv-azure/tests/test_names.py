"""Key ↔ blob-name mapping: reversible, injective, prefix-preserving, within the name rules."""

from __future__ import annotations

import string

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from kv_azure._names import blob_name, key_from_blob, key_metadata, list_prefix
from kv_core.testing import WEIRD_KEYS

# Characters the mapping treats specially, and Windows device names (escaped by an earlier
# version, which broke prefixes), mixed with arbitrary text.
_PIECES = st.sampled_from(
    ["/", ".", "..", "%", "~", "\\", " ", "CON", "con", "NUL", "AUX", "COM1", "LPT1", "%2E"]
)
keys = (
    st.lists(
        st.text(st.characters(blacklist_categories=("Cs",)), max_size=6) | _PIECES,
        min_size=1,
        max_size=8,
    )
    .map("".join)
    .filter(bool)
)
LONG_KEYS = [
    "x" * 1024,
    "😀" * 1024,
    "/".join("a" * 400),
    "ns/" * 300 + "k",
    "A" * 2000,  # namespaced keys may exceed 1024 characters
    "a." * 500,
    "%" * 1024,
]
# (prefix, key starting with it) pairs that an earlier escaping (Windows device names,
# trailing dots replaced by %2E) mapped to names not sharing a prefix.
PREFIX_CASES = [
    ("con", "config/app"),
    ("con", "console"),
    ("con", "con"),
    ("aux", "auxiliary"),
    ("prn", "prnt"),
    ("com1", "com10"),
    ("lpt1", "lpt1x"),
    ("Con", "Contact"),
    ("COM1.", "COM1."),
    ("COM1", "COM1."),
    ("NUL", "NUL0"),
    ("a.", "a./b"),
    ("a.", "a.b"),
    ("a/.", "a/./b"),
    ("a/.", "a/..x"),
    ("a/", "a//b"),
    ("/", "//"),
    ("x", "x\\y"),
]
_NAME_CHARS = set(string.printable) - set(string.whitespace) - {"\\"} | {" "}


def _check_name_rules(name: str) -> None:
    assert 0 < len(name) <= 1024
    assert name.count("/") < 254
    assert not name.endswith((".", "/"))
    for segment in name.split("/"):
        assert segment
        assert not segment.endswith(".")  # the service trims trailing dots of segments
    assert set(name) <= _NAME_CHARS


@pytest.mark.parametrize("key", [*WEIRD_KEYS, *LONG_KEYS], ids=repr)
def test_weird_and_long_keys_map_reversibly_within_the_rules(key: str) -> None:
    name = blob_name(key)
    _check_name_rules(name)
    assert key_from_blob(name, key_metadata(key, name)) == key


def test_names_are_escaped_only_as_much_as_the_service_needs() -> None:
    assert blob_name("user/1") == "user/1"
    assert blob_name("config/app") == "config/app"
    assert blob_name("CON") == "CON"  # Windows device names mean nothing to the service
    assert blob_name("Upper Case?&=#") == "Upper Case?&=#"
    assert blob_name("COM1.") == "COM1.~"  # the service would trim the dot
    assert blob_name("../x") == "..~/x"
    assert blob_name("a//b") == "a/~/b"
    assert blob_name("dir/") == "dir/~"
    assert blob_name("a\\b") == "a%5Cb"  # the service reads \ as /
    assert blob_name("%~é\n") == "%25%7E%C3%A9%0A"


@given(keys)
def test_every_key_round_trips(key: str) -> None:
    name = blob_name(key)
    _check_name_rules(name)
    assert key_from_blob(name, key_metadata(key, name)) == key


@given(keys, keys)
def test_different_keys_get_different_names(a: str, b: str) -> None:
    if a != b:
        assert blob_name(a) != blob_name(b)


@pytest.mark.parametrize(("prefix", "key"), PREFIX_CASES)
def test_listing_prefix_covers_keys_an_earlier_escaping_missed(prefix: str, key: str) -> None:
    assert blob_name(key).startswith(list_prefix(prefix))


@given(keys, keys)
@example("NUL", "0")  # found by Hypothesis under the Windows device-name escaping
@example("COM1.", "")
@example("con", "fig/app")
@example("a.", "/b")
def test_listing_prefix_covers_every_key_with_that_prefix(prefix: str, rest: str) -> None:
    assert blob_name(prefix + rest).startswith(list_prefix(prefix))


@given(keys, keys)
@example("con", "config")
@example("a.", "a.~")
@example("a", "a.")
def test_listing_prefix_covers_only_keys_with_that_prefix(prefix: str, key: str) -> None:
    # Within the readable length a prefix listing is exact: no other key's name matches.
    name = blob_name(key)
    if len(list_prefix(prefix)) < 900 and not key_metadata(key, name):  # neither cut nor hashed
        assert name.startswith(list_prefix(prefix)) == key.startswith(prefix)


@pytest.mark.parametrize("key", LONG_KEYS, ids=lambda k: k[:8])
@pytest.mark.parametrize("cut", [0, 1, 3, 500, 899, 900, 901, 1000])
def test_listing_prefix_covers_hashed_names(key: str, cut: int) -> None:
    assert blob_name(key).startswith(list_prefix(key[:cut]))


def test_short_keys_carry_no_metadata_and_long_ones_do() -> None:
    assert key_metadata("user/1", blob_name("user/1")) == {}
    assert "kvkey" in key_metadata("x" * 1024, blob_name("x" * 1024))


@pytest.mark.parametrize(
    "name",
    [
        "bad%zz",  # malformed escape
        "x~" + "0" * 64,  # hashed name without its key
        "x/./y",  # not the name kv gives "x/./y"
        "co%6E",  # an earlier version's name of "con"
        "a%2E",  # an earlier version's name of "a."
        "é",  # kv escapes non-ASCII
        "%C3",  # not UTF-8
    ],
)
def test_foreign_blobs_are_not_keys(name: str) -> None:
    assert key_from_blob(name, None) is None
