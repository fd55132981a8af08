"""BYTES, TEXT and PICKLE codecs, and the Codec protocol."""

from __future__ import annotations

import datetime as dt
import pickle
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kv_core import BYTES, JSON, PICKLE, TEXT, BytesCodec, Codec, PickleCodec, TextCodec


class MyBytes(bytes):
    pass


@given(st.binary())
def test_bytes_round_trip_unchanged(data: bytes) -> None:
    assert BYTES.encode(data) is data  # no copy on the hot path
    assert BYTES.decode(data) == data


@pytest.mark.parametrize(
    "value", [bytearray(b"abc"), memoryview(b"abc"), MyBytes(b"abc"), memoryview(b"xabcx")[1:4]]
)
def test_bytes_accepts_bytes_like(value: bytes) -> None:
    encoded = BYTES.encode(value)
    assert encoded == b"abc"
    assert type(encoded) is bytes


@pytest.mark.parametrize("value", ["text", 1, None, [1], {"a": b"x"}], ids=repr)
def test_bytes_rejects_other_types(value: object) -> None:
    with pytest.raises(TypeError, match=rf"bytes codec stores bytes, not {type(value).__name__}"):
        BYTES.encode(value)  # type: ignore[arg-type]


@given(st.text())
def test_text_round_trips_as_utf8(text: str) -> None:
    data = TEXT.encode(text)
    assert data == text.encode("utf-8")
    assert TEXT.decode(data) == text


@pytest.mark.parametrize("value", [b"bytes", 1, None, ["a"]], ids=repr)
def test_text_rejects_other_types(value: object) -> None:
    with pytest.raises(TypeError, match=rf"text codec stores str, not {type(value).__name__}"):
        TEXT.encode(value)  # type: ignore[arg-type]


def test_text_other_encoding_and_invalid_bytes() -> None:
    latin = TextCodec("latin-1")
    assert latin.encode("é") == b"\xe9"
    assert latin.decode(b"\xe9") == "é"
    with pytest.raises(UnicodeDecodeError):
        TEXT.decode(b"\xff")
    with pytest.raises(UnicodeEncodeError):
        TEXT.encode("\ud800")  # a lone surrogate is not UTF-8


class Custom:
    def __init__(self, x: int) -> None:
        self.x = x

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Custom) and other.x == self.x

    __hash__ = None  # type: ignore[assignment]


@pytest.mark.parametrize(
    "value", [Custom(3), {1: {2, 3}}, dt.datetime(2024, 1, 1), None, (1, [b"x"])], ids=repr
)
def test_pickle_round_trips_anything_picklable(value: object) -> None:
    assert PICKLE.decode(PICKLE.encode(value)) == value


def test_pickle_protocol_is_configurable() -> None:
    data = PickleCodec(protocol=2).encode([1])
    assert data[:2] == b"\x80\x02"
    assert pickle.loads(data) == [1]


def test_pickle_of_unpicklable_raises() -> None:
    with pytest.raises((TypeError, AttributeError, pickle.PicklingError)):
        PICKLE.encode(lambda: None)


@pytest.mark.parametrize("codec", [JSON, BYTES, TEXT, PICKLE], ids=repr)
def test_shipped_codecs_satisfy_the_protocol(codec: Codec[Any]) -> None:
    assert isinstance(codec, Codec)
    assert isinstance(codec.name, str)


def test_names_and_reprs() -> None:
    assert (BYTES.name, TEXT.name, PICKLE.name, JSON.name) == ("bytes", "text", "pickle", "json")
    assert (repr(BYTES), repr(TEXT), repr(PICKLE)) == ("BYTES", "TEXT", "PICKLE")
    assert repr(TextCodec("latin-1")) == "TextCodec('latin-1')"
    assert repr(PickleCodec(2)) == "PickleCodec(2)"
    assert isinstance(BYTES, BytesCodec)
