"""The JSON codec: plain JSON for plain values, tagged JSON for rich Python types.

Plain values (dict with str keys, list, str, int, float, bool, None) are stored as the
JSON any other program writes. Other types become a *tag*, a JSON object whose first key
is ``"$kv"``::

    {"$kv": "datetime", "v": "2024-05-01T12:00:00+02:00", "tz": "Europe/Paris"}
    {"$kv": "bytes", "v": "aGVsbG8="}
    {"$kv": "tuple", "v": [1, 2]}
    {"$kv": "dict", "v": [["$kv", "mine"], [1, "int key"]]}

A user dict that itself has a ``"$kv"`` key, or has non-str keys, is written as a ``dict``
tag holding its items as pairs, so nothing a user stores is ever mistaken for a tag; and a
``"$kv"`` object that another program wrote and that is not a valid tag is read back as
the dict it is. Subclasses of supported types (``class Color(str, Enum)``, IntEnum,
NamedTuple, OrderedDict, datetime subclasses) are stored as their base type. Decoding
into dataclasses and pydantic models lives in :mod:`kv_core._typed`.

Speed: encoding walks the value once in Python to decide whether it is plain (cheap next
to ``json.dumps``); decoding only installs an ``object_hook`` when the bytes contain the
literal ``"$kv"``, so plain data decodes at the speed of ``json.loads``.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import json
import re
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Generic, TypeVar, cast, overload

from ._typed import converter

__all__ = ["JSONCodec"]

T = TypeVar("T")

_TAG = "$kv"
_TAG_BYTES = b'"$kv"'
_PLAIN_SCALARS = frozenset({str, int, float, bool, type(None)})

_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_dumps = _ENCODER.encode


def _c_encoder() -> Callable[[object], str] | None:
    """The C encoder, built once.

    ``JSONEncoder.encode`` builds a new C encoder object on every call and checks for
    cycles; calling one prebuilt encoder saves microseconds per value. Without the cycle
    check a cyclic value overflows the stack, which the Store reports as a
    SerializationError all the same.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # a Python without the _json accelerator
        return None
    try:
        encoder = make(
            None,
            _ENCODER.default,
            json.encoder.encode_basestring,
            None,
            ":",
            ",",
            False,
            False,
            False,
        )
        if "".join(encoder({"a": [1, 2.5, None, "é"]}, 0)) != '{"a":[1,2.5,null,"é"]}':
            return None
    except Exception:  # a future signature: the stdlib path still works
        return None
    return lambda value: "".join(encoder(value, 0))


def _c_loads(object_hook: Callable[[dict[str, Any]], object] | None) -> Callable[[bytes], Any]:
    """``json.loads`` for bytes, calling the C scanner directly.

    ``json.loads`` sniffs the encoding and matches whitespace in Python before the C
    scanner runs. The value kv writes is compact UTF-8, so the scanner is called on it
    directly; anything else (other encodings, a BOM, surrounding whitespace, trailing
    data, invalid JSON) falls back to ``json.loads``, which decides and reports exactly
    as it always does.
    """
    decoder: Any = json.JSONDecoder(object_hook=object_hook)  # scan_once is untyped
    scan: Callable[[str, int], tuple[Any, int]] = decoder.scan_once

    def loads(data: bytes) -> Any:
        try:
            text = data.decode("utf-8")
            value, end = scan(text, 0)
        except (UnicodeDecodeError, StopIteration, ValueError):
            return json.loads(data, object_hook=object_hook)
        if end != len(text):
            return json.loads(data, object_hook=object_hook)
        return value

    return loads


def _is_plain(obj: object) -> bool:
    """True if ``obj`` is JSON as it is: no tuples, no rich types, no dict needing a tag.

    A plain loop with a set lookup per item measured fastest (variants with
    ``set(map(type, ...))`` lose as soon as a dict holds a nested container).
    """
    t = type(obj)
    if t is dict:
        d = cast("dict[object, object]", obj)
        if _TAG in d:
            return False
        for k, v in d.items():
            if type(k) is not str:
                return False
            if type(v) not in _PLAIN_SCALARS and not _is_plain(v):
                return False
        return True
    if t is list:
        for v in cast("list[object]", obj):
            if type(v) not in _PLAIN_SCALARS and not _is_plain(v):
                return False
        return True
    return t in _PLAIN_SCALARS


def _zone_name(tz: dt.tzinfo | None) -> str | None:
    key = getattr(tz, "key", None)  # zoneinfo.ZoneInfo keeps its IANA name here
    return key if isinstance(key, str) else None


def _to_json(obj: object) -> object:
    """Convert ``obj`` into plain JSON values, tagging what JSON cannot say."""
    t = type(obj)
    if t in _PLAIN_SCALARS:
        return obj
    if t is dict:
        d = cast("dict[object, object]", obj)
        if _TAG not in d and all(isinstance(k, str) for k in d):
            # str subclasses (StrEnum keys) are written as the plain str they hold.
            plain = {str.__str__(cast(str, k)): _to_json(v) for k, v in d.items()}
            if len(plain) == len(d):
                return plain
        return {_TAG: "dict", "v": [[_to_json(k), _to_json(v)] for k, v in d.items()]}
    if t is list:
        return [_to_json(v) for v in cast("list[object]", obj)]
    if t is tuple:
        return {_TAG: "tuple", "v": [_to_json(v) for v in cast("tuple[object, ...]", obj)]}
    if t is dt.datetime:
        value = cast("dt.datetime", obj)
        return _with_zone({_TAG: "datetime", "v": value.isoformat()}, value.tzinfo)
    if t is dt.date:
        return {_TAG: "date", "v": cast("dt.date", obj).isoformat()}
    if t is dt.time:
        tvalue = cast("dt.time", obj)
        return _with_zone({_TAG: "time", "v": tvalue.isoformat()}, tvalue.tzinfo)
    if t is dt.timedelta:
        td = cast("dt.timedelta", obj)
        return {_TAG: "timedelta", "v": [td.days, td.seconds, td.microseconds]}
    if t is uuid.UUID:
        return {_TAG: "uuid", "v": str(obj)}
    if t is Decimal:
        return {_TAG: "decimal", "v": str(obj)}
    if t is bytes or t is bytearray:
        return {_TAG: "bytes", "v": base64.b64encode(cast("bytes", obj)).decode("ascii")}
    if t is set or t is frozenset:
        return {_TAG: t.__name__, "v": [_to_json(v) for v in cast("set[object]", obj)]}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _to_json(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    dump = getattr(obj, "model_dump", None)  # pydantic v2 models, without importing pydantic
    if callable(dump):
        return _to_json(dump(mode="json"))
    base = _base_of(obj)
    if base is not None:
        return _to_json(base)
    raise TypeError(
        f"JSON cannot store a {t.__module__}.{t.__qualname__}; convert it to a supported type "
        "(dict, list, str, int, float, bool, None, tuple, set, bytes, datetime, date, time, "
        "timedelta, UUID, Decimal, an Enum, a dataclass) or use another codec (e.g. PICKLE)"
    )


def _base_of(obj: object) -> object | None:
    """Return ``obj`` as an instance of the supported type it subclasses, or None.

    Subclasses (IntEnum, ``class Color(str, Enum)``, NamedTuple, OrderedDict, datetime
    subclasses) are stored as their base type. The base type's own conversion is called
    (``str.__str__``, not ``str()``) because enums override ``__str__`` and ``__int__``
    would be free to lie.
    """
    if isinstance(obj, str):
        return str.__str__(obj)
    if isinstance(obj, int):  # bool cannot be subclassed, so this is an int subclass
        return int.__int__(obj)
    if isinstance(obj, float):
        return float.__float__(obj)
    if isinstance(obj, dict):
        return dict(cast("dict[object, object]", obj))
    if isinstance(obj, list):
        return list(cast("list[object]", obj))
    if isinstance(obj, tuple):
        return tuple(cast("tuple[object, ...]", obj))
    if isinstance(obj, frozenset):
        return frozenset(cast("frozenset[object]", obj))
    if isinstance(obj, set):
        return set(cast("set[object]", obj))
    if isinstance(obj, (bytes, bytearray)):
        return bytes(obj)
    # datetime is a subclass of date: test it first.
    if isinstance(obj, dt.datetime):
        return dt.datetime(
            obj.year, obj.month, obj.day, obj.hour, obj.minute, obj.second,
            obj.microsecond, obj.tzinfo, fold=obj.fold,
        )  # fmt: skip
    if isinstance(obj, dt.date):
        return dt.date(obj.year, obj.month, obj.day)
    if isinstance(obj, dt.time):
        return dt.time(obj.hour, obj.minute, obj.second, obj.microsecond, obj.tzinfo, fold=obj.fold)
    if isinstance(obj, dt.timedelta):
        return dt.timedelta(obj.days, obj.seconds, obj.microseconds)
    if isinstance(obj, uuid.UUID):
        return uuid.UUID(int=obj.int)
    if isinstance(obj, Decimal):
        return Decimal(obj)
    if isinstance(obj, enum.Enum):  # Enum and Flag: their value (typed decoding restores them)
        return cast(object, obj.value)
    return None


def _with_zone(tag: dict[str, object], tz: dt.tzinfo | None) -> dict[str, object]:
    name = _zone_name(tz)
    if name is not None:
        tag["tz"] = name
    return tag


def _zone(name: object) -> dt.tzinfo | None:
    if not isinstance(name, str):
        return None
    from zoneinfo import ZoneInfo

    try:
        return ZoneInfo(name)
    except (ValueError, LookupError):
        # Not installed here (no tzdata) or not a zone name: the fixed offset stays.
        return None


# A UTC offset with microseconds, which Python 3.11's fromisoformat parses as +00:00.
_OFFSET_FRACTION = re.compile(r"([+-])(\d\d):(\d\d):(\d\d)\.(\d{6})$")

_D = TypeVar("_D", dt.datetime, dt.time)


def _fromiso(cls: type[_D], text: str) -> _D:
    value = cls.fromisoformat(text)
    match = _OFFSET_FRACTION.search(text)
    if match is None:
        return value
    sign, hours, minutes, seconds, micros = match.groups()
    offset = dt.timedelta(
        hours=int(hours), minutes=int(minutes), seconds=int(seconds), microseconds=int(micros)
    )
    return value.replace(tzinfo=dt.timezone(-offset if sign == "-" else offset))


def _decode_datetime(d: dict[str, Any]) -> object:
    value = _fromiso(dt.datetime, d["v"])
    zone = _zone(d.get("tz"))
    if zone is None or value.tzinfo is None:
        return value
    # Same wall time in the named zone, with the fold that gives the offset written, so
    # ambiguous and skipped (DST gap) times come back exactly as they were.
    offset = value.utcoffset()
    for fold in (0, 1):
        local = value.replace(tzinfo=zone, fold=fold)
        if local.utcoffset() == offset:
            return local
    return value.astimezone(zone)  # the zone's rules changed since: keep the instant


def _decode_time(d: dict[str, Any]) -> object:
    value = _fromiso(dt.time, d["v"])
    zone = _zone(d.get("tz"))
    return value.replace(tzinfo=zone) if zone is not None else value


_DECODERS: dict[str, Callable[[dict[str, Any]], object]] = {
    "tuple": lambda d: tuple(d["v"]),
    "set": lambda d: set(d["v"]),
    "frozenset": lambda d: frozenset(d["v"]),
    "dict": lambda d: dict(d["v"]),
    "datetime": _decode_datetime,
    "date": lambda d: dt.date.fromisoformat(d["v"]),
    "time": _decode_time,
    "timedelta": lambda d: dt.timedelta(*d["v"]),
    "uuid": lambda d: uuid.UUID(d["v"]),
    "decimal": lambda d: Decimal(d["v"]),
    "bytes": lambda d: base64.b64decode(d["v"], validate=True),
}
_TAG_KEYS = frozenset({_TAG, "v"})
_ZONED_TAG_KEYS = frozenset({_TAG, "v", "tz"})
_ZONED = frozenset({"datetime", "time"})
# What a decoder raises on a value that is not what our encoder writes (binascii.Error
# and ZoneInfoNotFoundError are ValueError and KeyError; decimal errors are ArithmeticError).
_NOT_OURS = (ValueError, TypeError, LookupError, ArithmeticError)


def _object_hook(d: dict[str, Any]) -> object:
    if _TAG not in d:
        return d
    kind = d[_TAG]
    decoder = _DECODERS.get(kind) if isinstance(kind, str) else None
    if (
        decoder is None
        or "v" not in d
        or not d.keys() <= (_ZONED_TAG_KEYS if kind in _ZONED else _TAG_KEYS)
    ):
        # Not one of ours (another program wrote it): keep it as the dict it is.
        return d
    try:
        return decoder(d)
    except _NOT_OURS:
        # Shaped like a tag but holding something our encoder never writes: the same.
        return d


_encode = _c_encoder() or _dumps
_loads_plain = _c_loads(None)
_loads_tagged = _c_loads(_object_hook)


class JSONCodec(Generic[T]):
    """JSON with rich Python types, and optionally a target type for decoding.

    Args:
        type: When given (a dataclass or a pydantic model class), decoded values are
            turned into it: ``JSONCodec(User)`` round-trips ``User`` instances.
    """

    name = "json"

    @overload
    def __init__(self: JSONCodec[Any], type: None = None) -> None: ...
    @overload
    def __init__(self, type: type[T]) -> None: ...

    def __init__(self, type: type[T] | None = None) -> None:
        self.type = type
        self._convert: Callable[[object], T] | None = converter(type) if type is not None else None

    def typed(self, cls: type[T]) -> JSONCodec[T]:
        """Return a JSON codec that decodes into ``cls``."""
        return JSONCodec(cls)

    def encode(self, value: T) -> bytes:
        """Encode ``value`` as compact UTF-8 JSON; NaN and infinities are rejected."""
        if not _is_plain(value):
            value = cast("T", _to_json(value))
        return _encode(value).encode("utf-8")

    def decode(self, data: bytes) -> T:
        """Decode JSON bytes, restoring tagged rich types (and ``type`` if given)."""
        value = _loads_tagged(data) if _TAG_BYTES in data else _loads_plain(data)
        if self._convert is not None:
            return self._convert(value)
        return cast("T", value)

    def __repr__(self) -> str:
        return "JSON" if self.type is None else f"JSONCodec({self.type.__qualname__})"
