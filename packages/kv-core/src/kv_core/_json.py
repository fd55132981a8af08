"""The JSON codec: plain JSON for plain values, tagged JSON for rich Python types.

Plain values (dict with str keys, list, str, int, float, bool, None) are stored as the
JSON any other program writes. Other types become a *tag*, a JSON object whose first key
is ``"$kv"``::

    {"$kv": "datetime", "v": "2024-05-01T12:00:00+02:00", "tz": "Europe/Paris"}
    {"$kv": "bytes", "v": "aGVsbG8="}
    {"$kv": "tuple", "v": [1, 2]}
    {"$kv": "dict", "v": [["$kv", "mine"], [1, "int key"]]}

A user dict that itself has a ``"$kv"`` key, or has non-str keys, is written as a ``dict``
tag holding its items as pairs, so nothing a user stores is ever mistaken for a tag.

Speed: encoding walks the value once in Python to decide whether it is plain (cheap next
to ``json.dumps``); decoding only installs an ``object_hook`` when the bytes contain the
literal ``"$kv"``, so plain data decodes at the speed of ``json.loads``.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import typing
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Generic, TypeVar, cast

__all__ = ["JSONCodec"]

T = TypeVar("T")

_TAG = "$kv"
_TAG_BYTES = b'"$kv"'
_PLAIN_SCALARS = frozenset({str, int, float, bool, type(None)})

_dumps = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
_loads = json.loads


def _is_plain(obj: object) -> bool:
    """True if ``obj`` is JSON as it is: no tuples, no rich types, no dict needing a tag."""
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
        if _TAG in d or any(type(k) is not str for k in d):
            return {_TAG: "dict", "v": [[_to_json(k), _to_json(v)] for k, v in d.items()]}
        return {k: _to_json(v) for k, v in d.items()}
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
    # Subclasses of plain types (IntEnum, StrEnum, str subclasses) are stored as their base.
    for base in (bool, int, float, str):
        if isinstance(obj, base):
            return base(obj)
    if isinstance(obj, (list, tuple, dict)):
        return _to_json(
            dict(obj)
            if isinstance(obj, dict)
            else (list(obj) if isinstance(obj, list) else tuple(obj))
        )
    raise TypeError(f"JSON cannot store a {t.__qualname__}; use a codec that can (e.g. PICKLE)")


def _with_zone(tag: dict[str, object], tz: dt.tzinfo | None) -> dict[str, object]:
    name = _zone_name(tz)
    if name is not None:
        tag["tz"] = name
    return tag


def _zone(name: object) -> dt.tzinfo | None:
    if not isinstance(name, str):
        return None
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def _decode_datetime(d: dict[str, Any]) -> object:
    value = dt.datetime.fromisoformat(d["v"])
    zone = _zone(d.get("tz"))
    return value.astimezone(zone) if zone is not None and value.tzinfo else value


def _decode_time(d: dict[str, Any]) -> object:
    value = dt.time.fromisoformat(d["v"])
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
_TAG_KEYS = frozenset({_TAG, "v", "tz"})


def _object_hook(d: dict[str, Any]) -> object:
    if _TAG not in d:
        return d
    decoder = _DECODERS.get(d[_TAG]) if isinstance(d[_TAG], str) else None
    if decoder is None or "v" not in d or not d.keys() <= _TAG_KEYS:
        # Not one of ours (another program wrote it): keep it as the dict it is.
        return d
    return decoder(d)


class JSONCodec(Generic[T]):
    """JSON with rich Python types, and optionally a target type for decoding.

    Args:
        type: When given (a dataclass or a pydantic model class), decoded values are
            turned into it: ``JSONCodec(User)`` round-trips ``User`` instances.
    """

    name = "json"

    def __init__(self, type: type[T] | None = None) -> None:
        self.type = type
        self._convert: Callable[[object], T] | None = _converter(type) if type is not None else None

    def typed(self, cls: type[T]) -> JSONCodec[T]:
        """Return a JSON codec that decodes into ``cls``."""
        return JSONCodec(cls)

    def encode(self, value: T) -> bytes:
        """Encode ``value`` as compact UTF-8 JSON; NaN and infinities are rejected."""
        if not _is_plain(value):
            value = cast("T", _to_json(value))
        return _dumps(value).encode("utf-8")

    def decode(self, data: bytes) -> T:
        """Decode JSON bytes, restoring tagged rich types (and ``type`` if given)."""
        value = json.loads(data, object_hook=_object_hook) if _TAG_BYTES in data else _loads(data)
        if self._convert is not None:
            return self._convert(value)
        return cast("T", value)

    def __repr__(self) -> str:
        return "JSON" if self.type is None else f"JSONCodec({self.type.__qualname__})"


def _converter(cls: type[Any]) -> Callable[[object], Any]:
    validate = getattr(cls, "model_validate", None)
    if callable(validate):
        return cast("Callable[[object], Any]", validate)
    if dataclasses.is_dataclass(cls):
        return lambda value: _build(cls, value)
    raise TypeError(f"JSONCodec(type=...) takes a dataclass or a pydantic model, not {cls!r}")


def _build(tp: Any, value: Any) -> Any:
    """Build ``tp`` from decoded JSON, following type hints into nested dataclasses."""
    if dataclasses.is_dataclass(tp) and isinstance(value, dict):
        hints = typing.get_type_hints(tp)
        kwargs = {
            f.name: _build(hints.get(f.name, Any), value[f.name])
            for f in dataclasses.fields(tp)
            if f.name in value
        }
        return cast(Any, tp)(**kwargs)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if (
        origin in (list, set, frozenset, tuple)
        and args
        and isinstance(value, (list, tuple, set, frozenset))
    ):
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            return tuple(_build(a, v) for a, v in zip(args, value, strict=False))
        return origin(_build(args[0], v) for v in value)
    if origin is dict and len(args) == 2 and isinstance(value, dict):
        return {k: _build(args[1], v) for k, v in value.items()}
    if args and origin is not None and value is not None:  # Optional[X] / X | None
        for a in args:
            if a is not type(None) and dataclasses.is_dataclass(a):
                return _build(a, value)
    return value
