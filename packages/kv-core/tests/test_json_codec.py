"""The JSON codec (DESIGN §5): plain JSON stays plain, rich types round-trip through tags."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import math
import uuid
from collections import OrderedDict
from decimal import Decimal
from typing import Any, Literal, NamedTuple, Optional, Union
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kv_core import JSON, JSONCodec
from kv_core._json import _is_plain
from kv_core.testing import JSON_VALUES, RICH_VALUES

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


def plain_dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def roundtrip(value: object) -> object:
    return JSON.decode(JSON.encode(value))


# -- strategies ------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
plain_json = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        # A "$kv" key is the one thing a plain dict cannot hold (it gets a dict tag).
        | st.dictionaries(st.text().filter(lambda k: k != "$kv"), inner, max_size=4)
    ),
    max_leaves=20,
)
fixed_offsets = st.builds(
    dt.timezone,
    st.timedeltas(min_value=-dt.timedelta(hours=23, minutes=59), max_value=dt.timedelta(hours=23)),
)
zones = st.none() | st.just(dt.timezone.utc) | fixed_offsets | st.timezones()
hashable_rich = (
    json_scalars
    | st.binary(max_size=16)
    | st.uuids()
    | st.decimals(allow_nan=False)
    | st.dates()
    | st.datetimes(timezones=zones)
    | st.times(timezones=zones)
    | st.timedeltas()
)
rich = st.recursive(
    hashable_rich,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(st.text(), inner, max_size=4)
        | st.dictionaries(hashable_rich, inner, max_size=4)
        | st.sets(hashable_rich, max_size=4)
        | st.frozensets(hashable_rich, max_size=4)
        # Dicts shaped like our tags must come back as the dicts they are.
        | st.fixed_dictionaries(
            {"$kv": st.sampled_from(["tuple", "dict", "set", "x"])}, optional={"v": inner}
        )
    ),
    max_leaves=20,
)


def same(a: object, b: object) -> bool:
    """Equality that also checks the types, zones and offsets == would let slide."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (dt.datetime, dt.time)):
        assert isinstance(b, (dt.datetime, dt.time))
        return a == b and a.tzinfo == b.tzinfo and a.utcoffset() == b.utcoffset()
    if isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple))
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        assert isinstance(b, dict)
        return a.keys() == b.keys() and all(same(v, b[k]) for k, v in a.items())
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return a == b


# -- plain JSON ------------------------------------------------------------------------


@pytest.mark.parametrize("value", JSON_VALUES, ids=repr)
def test_plain_values_are_written_as_plain_json(value: object) -> None:
    assert JSON.encode(value) == plain_dumps(value)
    assert JSON.decode(JSON.encode(value)) == value


@given(plain_json)
def test_any_plain_value_is_exactly_json_dumps(value: object) -> None:
    assert _is_plain(value)  # the fast path: no tag walk
    data = JSON.encode(value)
    assert data == plain_dumps(value)
    assert json.loads(data) == value  # any other program reads it
    assert JSON.decode(data) == value


def test_fast_path_classification() -> None:
    assert _is_plain({"a": [1, 2.5, None, True, "x", {"b": []}]})
    assert _is_plain([])
    assert not _is_plain((1, 2))
    assert not _is_plain({"a": (1,)})
    assert not _is_plain([{"$kv": "tuple", "v": [1]}])
    assert not _is_plain({1: "int key"})
    assert not _is_plain(b"bytes")
    assert not _is_plain([dt.date(2024, 1, 1)])


def test_unicode_is_written_as_utf8_not_escaped() -> None:
    assert JSON.encode({"k": "ünï 🦄"}) == '{"k":"ünï 🦄"}'.encode()


# -- rich types ------------------------------------------------------------------------


@pytest.mark.parametrize("value", RICH_VALUES, ids=repr)
def test_corpus_rich_values_round_trip(value: object) -> None:
    assert same(roundtrip(value), value)


@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(2024, 5, 1, 12, 0, tzinfo=PARIS),
        dt.datetime(2024, 1, 1, 12, 0, tzinfo=PARIS),
        dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc),
        dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=-3, minutes=-30))),
        dt.datetime(2024, 5, 1, 12, 0, 0, 1),
        # Ambiguous wall time (clocks go back): both folds are different instants.
        dt.datetime(2024, 11, 3, 1, 30, tzinfo=NEW_YORK, fold=0),
        dt.datetime(2024, 11, 3, 1, 30, tzinfo=NEW_YORK, fold=1),
        # Skipped wall time (clocks go forward): kept as written, not normalised.
        dt.datetime(2024, 3, 31, 2, 30, tzinfo=PARIS),
        dt.time(8, 15, tzinfo=PARIS),
        # Sub-second offsets, which Python 3.11's fromisoformat alone would turn into UTC.
        dt.datetime(2000, 1, 1, tzinfo=dt.timezone(dt.timedelta(microseconds=1))),
        dt.time(1, 2, tzinfo=dt.timezone(-dt.timedelta(hours=1, seconds=1, microseconds=5))),
        dt.time(8, 15, 1, 999, tzinfo=dt.timezone(dt.timedelta(hours=5))),
        dt.date(1, 1, 1),
        dt.timedelta(days=-3, microseconds=1),
        dt.timedelta.max,
    ],
    ids=repr,
)
def test_dates_and_times_round_trip_with_zones(value: object) -> None:
    back = roundtrip(value)
    assert same(back, value)
    if isinstance(value, dt.datetime):
        assert isinstance(back, dt.datetime)
        assert back.fold == value.fold


def test_zoneinfo_name_is_kept() -> None:
    value = dt.datetime(2024, 5, 1, 12, 0, tzinfo=PARIS)
    tag = json.loads(JSON.encode(value))
    assert tag["tz"] == "Europe/Paris"
    back = roundtrip(value)
    assert isinstance(back, dt.datetime)
    assert back.tzinfo is PARIS
    # The name matters: six months later the same zone has another offset.
    assert (back + dt.timedelta(days=180)).utcoffset() == dt.timedelta(hours=1)


def test_unknown_zone_name_keeps_the_instant() -> None:
    data = b'{"$kv":"datetime","v":"2024-05-01T12:00:00+02:00","tz":"Not/AZone"}'
    back = JSON.decode(data)
    assert back == dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize(
    "value",
    [
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        Decimal("-0.000000000000000000000000001"),
        Decimal("1E+400"),
        b"",
        b"\x00\xff" * 100,
        set(),
        frozenset(),
        {frozenset({1, 2}), (1, "a"), None},
        (),
        ((),),
        {(1, 2): "tuple key", 3: "int key", None: "null key", 1.5: "float key", True: "bool"},
        {dt.date(2024, 1, 1): [b"x", {"y": (1,)}]},
        [{"when": dt.date(2000, 1, 1)}, (None,), {"s": {Decimal("1.10")}}],
    ],
    ids=repr,
)
def test_rich_types_round_trip(value: object) -> None:
    assert same(roundtrip(value), value)


def test_bytearray_comes_back_as_bytes() -> None:
    assert roundtrip(bytearray(b"ab")) == b"ab"


@given(rich)
def test_any_rich_value_round_trips(value: object) -> None:
    assert same(roundtrip(value), value)


@given(rich)
def test_encoding_is_valid_json(value: object) -> None:
    json.loads(JSON.encode(value))  # strict parse: no NaN, no Infinity


# -- user data that looks like a tag ------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        {"$kv": "tuple", "v": [1]},
        {"$kv": "bytes", "v": "aGVsbG8="},
        {"$kv": "datetime", "v": "2024-01-01T00:00:00", "tz": "UTC"},
        {"$kv": "dict", "v": [[1, 2]]},
        {"$kv": "tuple", "v": [1], "extra": True},
        {"$kv": "mine"},
        {"$kv": None},
        {"nested": {"$kv": "set", "v": [1, 2]}},
        [{"$kv": "tuple", "v": [{"$kv": "tuple", "v": []}]}],
    ],
    ids=repr,
)
def test_user_dict_that_looks_like_a_tag_comes_back_as_that_dict(value: object) -> None:
    back = roundtrip(value)
    assert same(back, value)


@pytest.mark.parametrize(
    "data",
    [
        b'{"$kv":"unknown","v":1}',
        b'{"$kv":1,"v":1}',
        b'{"$kv":"tuple"}',
        b'{"$kv":"tuple","v":[1],"other":2}',
        b'{"$kv":"tuple","v":[1],"tz":"UTC"}',  # only datetime and time carry a zone
        b'{"$kv":"tuple","v":5}',
        b'{"$kv":"date","v":"not a date"}',
        b'{"$kv":"bytes","v":"!!not base64!!"}',
        b'{"$kv":"decimal","v":"abc"}',
        b'{"$kv":"uuid","v":"nope"}',
        b'{"$kv":"timedelta","v":"x"}',
        b'{"$kv":"timedelta","v":[1e300]}',
        b'{"$kv":"dict","v":[[1]]}',
        b'{"$kv":"set","v":[[1]]}',
    ],
)
def test_foreign_data_with_a_kv_key_is_a_plain_dict(data: bytes) -> None:
    """Another program wrote a "$kv" key that is not one of our tags: keep its dict."""
    assert JSON.decode(data) == json.loads(data)


# -- rejected values ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [math.nan, math.inf, -math.inf, [1.0, math.nan], {"x": (math.inf,)}, {1: -math.inf}],
    ids=repr,
)
def test_nan_and_infinity_are_rejected(value: object) -> None:
    with pytest.raises(ValueError, match="JSON"):
        JSON.encode(value)


class Unsupported:
    pass


@pytest.mark.parametrize(
    "value", [Unsupported(), [1, {"a": Unsupported()}], object(), memoryview(b"x"), 1j], ids=repr
)
def test_unsupported_types_raise_a_helpful_type_error(value: object) -> None:
    with pytest.raises(
        TypeError, match=r"JSON cannot store a .*(Unsupported|object|memoryview|complex).*PICKLE"
    ):
        JSON.encode(value)


@pytest.mark.parametrize("data", [b"", b"{", b"nope", b'{"a":1}x', b"\xff\xfe\x00", b"[1,]"])
def test_invalid_json_raises(data: bytes) -> None:
    with pytest.raises(ValueError):
        JSON.decode(data)


# -- subclasses of supported types are stored as their base ------------------------------


class Color(str, enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


class Point(NamedTuple):
    x: int
    y: int


class MyDate(dt.datetime):
    pass


def test_str_enum_is_stored_as_its_value_not_its_name() -> None:
    assert JSON.encode(Color.RED) == b'"red"'
    assert JSON.encode({Color.RED: Level.HIGH}) == b'{"red":3}'  # plain, readable elsewhere


def test_subclasses_are_stored_as_their_base_type() -> None:
    assert roundtrip(Point(1, 2)) == (1, 2)
    assert roundtrip(OrderedDict(a=1)) == {"a": 1}
    assert same(roundtrip(MyDate(2024, 1, 2, tzinfo=PARIS)), dt.datetime(2024, 1, 2, tzinfo=PARIS))


# -- typed decoding ----------------------------------------------------------------------


@dataclasses.dataclass
class Address:
    city: str
    zip: str = "00000"


@dataclasses.dataclass
class User:
    name: str
    born: dt.date
    address: Address
    previous: list[Address] = dataclasses.field(default_factory=list)
    manager: Optional[User] = None  # noqa: UP045 (both spellings of Optional are tested)
    tags: set[str] = dataclasses.field(default_factory=set)
    pair: tuple[int, Address] | None = None
    by_name: dict[str, Address] = dataclasses.field(default_factory=dict)
    extra: Any = None
    maybe_list: list[Address] | None = None
    computed: int = dataclasses.field(default=0, init=False)


@dataclasses.dataclass
class Box:
    items: list[Address]


def make_user() -> User:
    boss = User("Grace", dt.date(1906, 12, 9), Address("Arlington"))
    return User(
        "Ada",
        dt.date(1815, 12, 10),
        Address("London", "W1"),
        previous=[Address("Paris"), Address("Turin", "10100")],
        manager=boss,
        tags={"math", "engines"},
        pair=(7, Address("Rome")),
        by_name={"home": Address("Marylebone")},
        extra={"free": [1, 2]},
        maybe_list=[Address("Oxford")],
    )


@pytest.mark.parametrize("codec", [JSONCodec(User), JSON.typed(User)], ids=["JSONCodec", "typed"])
def test_typed_decoding_builds_nested_dataclasses(codec: JSONCodec[User]) -> None:
    user = make_user()
    back = codec.decode(codec.encode(user))
    assert back == user
    assert isinstance(back.address, Address)
    assert isinstance(back.manager, User)
    assert all(isinstance(a, Address) for a in back.previous)
    assert isinstance(back.maybe_list, list)
    assert isinstance(back.maybe_list[0], Address)


def test_dataclasses_are_written_as_plain_objects() -> None:
    data = JSON.encode(Address("Paris"))
    assert json.loads(data) == {"city": "Paris", "zip": "00000"}
    assert JSON.decode(data) == {"city": "Paris", "zip": "00000"}  # untyped: a dict


def test_typed_decoding_uses_defaults_and_ignores_unknown_fields() -> None:
    codec = JSONCodec(Address)
    assert codec.decode(b'{"city":"Oslo","country":"NO"}') == Address("Oslo")


def test_typed_decoding_of_optional_none() -> None:
    user = User("Solo", dt.date(2000, 1, 1), Address("Nowhere"))
    back = JSONCodec(User).decode(JSONCodec(User).encode(user))
    assert back.manager is None
    assert back.maybe_list is None


def test_typed_decoding_list_field() -> None:
    codec = JSONCodec(Box)
    assert codec.decode(b'{"items":[{"city":"A"},{"city":"B","zip":"1"}]}') == Box(
        [Address("A"), Address("B", "1")]
    )


def test_typed_decoding_of_a_non_object_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="Address"):
        JSONCodec(Address).decode(b"[1, 2]")


def test_typed_decoding_of_a_missing_field_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        JSONCodec(Address).decode(b'{"zip":"1"}')


def test_typed_decoding_of_a_dataclass_defined_in_a_function() -> None:
    @dataclasses.dataclass
    class Node:
        name: str
        parent: Node | None = None

    codec = JSONCodec(Node)
    back = codec.decode(codec.encode(Node("leaf", Node("root"))))
    assert back == Node("leaf", Node("root"))
    assert isinstance(back.parent, Node)


def test_typed_decoding_with_unresolvable_annotations_keeps_plain_values() -> None:
    @dataclasses.dataclass
    class Inner:
        x: int

    @dataclasses.dataclass
    class Outer:
        inner: Inner  # "Inner" cannot be resolved from the module: decoded as a dict
        n: int = 0

    codec = JSONCodec(Outer)
    back = codec.decode(codec.encode(Outer(Inner(1), 3)))
    assert back.n == 3
    assert back.inner == {"x": 1}  # type: ignore[comparison-overlap]


@pytest.mark.parametrize("not_a_model", [int, dict, "User"])
def test_typed_needs_a_dataclass_or_model(not_a_model: Any) -> None:
    with pytest.raises(TypeError, match="dataclass or a pydantic model"):
        JSONCodec(not_a_model)


def test_repr_and_name() -> None:
    assert repr(JSON) == "JSON"
    assert repr(JSONCodec(User)) == "JSONCodec(User)"
    assert JSON.name == "json"


# -- enums and Literal in typed decoding (issue 11 item 7) -------------------------------


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Rank(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Perm(enum.Flag):
    READ = 1
    WRITE = 2


class Mode(str, enum.Enum):  # a StrEnum that also works on Python 3.10
    FAST = "fast"


@dataclasses.dataclass
class Tagged:
    colour: Colour
    level: Rank
    perm: Perm
    mode: Mode
    kind: Literal["a", "b"] = "a"
    maybe: Optional[Optional[Colour]] = None  # noqa: UP045 - the nested Optional is the point
    either: Union[int, Colour, None] = None  # noqa: UP007
    member: Literal[Colour.RED, 5] = 5
    many: list[Optional[Colour]] = dataclasses.field(default_factory=list)  # noqa: UP045
    by_name: dict[str, Rank] = dataclasses.field(default_factory=dict)


def test_typed_decoding_restores_enums_flags_literals_and_nested_optionals() -> None:
    value = Tagged(
        Colour.BLUE, Rank.HIGH, Perm.READ | Perm.WRITE, Mode.FAST, "b",
        Colour.RED, Colour.BLUE, Colour.RED, [None, Colour.RED], {"x": Rank.LOW},
    )  # fmt: skip
    codec = JSONCodec(Tagged)
    data = codec.encode(value)
    assert json.loads(data) == {  # stored as the members' plain values
        "colour": "blue", "level": 2, "perm": 3, "mode": "fast", "kind": "b", "maybe": "red",
        "either": "blue", "member": "red", "many": [None, "red"], "by_name": {"x": 1},
    }  # fmt: skip
    back = codec.decode(data)
    assert back == value
    assert type(back.colour) is Colour
    assert type(back.level) is Rank
    assert type(back.perm) is Perm
    assert type(back.mode) is Mode
    assert type(back.maybe) is Colour
    assert type(back.either) is Colour
    assert back.member is Colour.RED
    assert type(back.many[1]) is Colour
    assert type(back.by_name["x"]) is Rank


def test_a_plain_enum_is_stored_as_its_value_without_a_type() -> None:
    assert JSON.encode({"c": Colour.RED, "p": Perm.WRITE}) == b'{"c":"red","p":2}'
    assert roundtrip([Colour.BLUE]) == ["blue"]


def test_typed_decoding_of_an_unknown_enum_value_is_an_error() -> None:
    data = JSONCodec(Tagged).encode(Tagged(Colour.RED, Rank.LOW, Perm.READ, Mode.FAST))
    with pytest.raises(ValueError, match="purple"):
        JSONCodec(Tagged).decode(data.replace(b'"red"', b'"purple"'))


# -- the private CPython internals the fast paths use (issue 11, "Also") -----------------


def test_the_prebuilt_c_encoder_writes_what_the_public_encoder_writes() -> None:
    from kv_core import _json

    fast = _json._c_encoder()
    assert fast is not None, "this CPython's c_make_encoder signature changed: fast path off"
    for value in [*JSON_VALUES, {"é": ["\u2028", 1.5e300, -0.0, 2**70]}]:
        assert fast(value) == _json._dumps(value)


def test_without_the_c_encoder_the_codec_falls_back_to_the_json_module(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kv_core import _json

    monkeypatch.setattr(json.encoder, "c_make_encoder", None)
    assert _json._c_encoder() is None

    def wrong_signature(*args: object) -> object:
        raise TypeError("c_make_encoder() takes 10 arguments")

    monkeypatch.setattr(json.encoder, "c_make_encoder", wrong_signature)
    assert _json._c_encoder() is None  # a future signature turns the fast path off, not kv


def test_the_direct_scanner_reads_what_json_loads_reads() -> None:
    from kv_core import _json

    loads = _json._c_loads(None)
    for value in JSON_VALUES:
        data = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
        assert loads(data) == json.loads(data)
    for odd in (b" 1", b"1 ", b"\xef\xbb\xbf{}", '"\u00e9"'.encode("utf-16")):
        assert loads(odd) == json.loads(odd)  # handed to json.loads, which decides
    with pytest.raises(ValueError):
        loads(b"[1,")
