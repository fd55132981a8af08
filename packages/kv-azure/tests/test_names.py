"""Key ↔ blob-name mapping: reversible, injective, within the service's name rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kv_azure._names import blob_name, key_from_blob, key_metadata, list_prefix
from kv_core.testing import WEIRD_KEYS

keys = st.text(
    st.characters(blacklist_categories=("Cs",)) | st.sampled_from("/.%~"), min_size=1, max_size=40
)
LONG_KEYS = [
    "x" * 1024,
    "😀" * 1024,
    "/".join("a" * 400),
    "ns/" * 300 + "k",
    "A" * 2000,  # namespaced keys may exceed 1024 characters
]


def _check_name_rules(name: str) -> None:
    assert 0 < len(name) <= 1024
    assert name.count("/") < 254
    assert not name.endswith((".", "/"))
    for segment in name.split("/"):
        assert segment not in ("", ".", "..")
    assert name.isascii()
    assert all(c.isalnum() or c in "-_.%~/" for c in name)


@pytest.mark.parametrize("key", [*WEIRD_KEYS, *LONG_KEYS], ids=repr)
def test_weird_and_long_keys_map_reversibly_within_the_rules(key: str) -> None:
    name = blob_name(key)
    _check_name_rules(name)
    assert key_from_blob(name, key_metadata(key, name)) == key


@given(keys)
def test_every_key_round_trips(key: str) -> None:
    name = blob_name(key)
    _check_name_rules(name)
    assert key_from_blob(name, key_metadata(key, name)) == key


@given(keys, keys)
def test_different_keys_get_different_names(a: str, b: str) -> None:
    if a != b:
        assert blob_name(a) != blob_name(b)


@given(keys, keys)
def test_listing_prefix_covers_every_key_with_that_prefix(prefix: str, rest: str) -> None:
    key = prefix + rest
    assert blob_name(key).startswith(list_prefix(prefix))


@pytest.mark.parametrize("key", LONG_KEYS, ids=lambda k: k[:8])
@pytest.mark.parametrize("cut", [0, 1, 3, 500, 900, 1000])
def test_listing_prefix_covers_hashed_names(key: str, cut: int) -> None:
    assert blob_name(key).startswith(list_prefix(key[:cut]))


def test_short_keys_carry_no_metadata_and_long_ones_do() -> None:
    assert key_metadata("user/1", blob_name("user/1")) == {}
    assert "kvkey" in key_metadata("x" * 1024, blob_name("x" * 1024))


def test_foreign_blobs_are_not_keys() -> None:
    assert key_from_blob("bad%zz", None) is None
    assert key_from_blob("x~" + "0" * 64, None) is None  # hashed name without its key
