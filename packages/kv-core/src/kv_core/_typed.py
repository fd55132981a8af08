"""Typed decoding for :class:`~kv_core.JSONCodec`: decoded JSON into dataclasses or models.

``JSONCodec(User)`` decodes into ``User``: pydantic models through their own
``model_validate``; dataclasses by following their type hints into nested dataclasses,
enums (Enum, IntEnum, StrEnum, Flag: stored as their value), ``Literal``, lists, sets,
tuples, dicts and ``Optional``/unions of them.

pydantic's ``TypeAdapter`` is deliberately not used for dataclasses even when pydantic is
installed: a dataclass must decode the same way whether or not some other package happens
to be importable.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Callable
from typing import Any, cast

__all__ = ["converter"]


def converter(cls: type[Any]) -> Callable[[object], Any]:
    """Return the function that turns decoded JSON into ``cls``.

    Raises:
        TypeError: ``cls`` is neither a dataclass nor a pydantic model.
    """
    validate = getattr(cls, "model_validate", None)
    if callable(validate):
        return cast("Callable[[object], Any]", validate)
    if dataclasses.is_dataclass(cls):
        return lambda value: _build_top(cls, value)
    raise TypeError(f"JSONCodec(type=...) takes a dataclass or a pydantic model, not {cls!r}")


def _build_top(cls: type[Any], value: object) -> Any:
    if not isinstance(value, dict):
        got = type(value).__name__
        raise TypeError(f"expected a JSON object for {cls.__qualname__}, got a {got}")
    return _build(cls, value)


_HINTS: dict[type[Any], dict[str, Any]] = {}


def _hints(cls: type[Any]) -> dict[str, Any]:
    """The resolved field types of a dataclass, computed once per class."""
    hints = _HINTS.get(cls)
    if hints is None:
        try:
            try:
                hints = typing.get_type_hints(cls)
            except NameError:  # a class defined in a function that names itself
                hints = typing.get_type_hints(cls, localns={cls.__name__: cls})
        except Exception:
            # Annotations naming something not importable from the class's module (a class
            # defined inside a function): use what the fields say, unresolved names as Any.
            hints = {
                f.name: Any if isinstance(f.type, str) else f.type for f in dataclasses.fields(cls)
            }
        _HINTS[cls] = hints
    return hints


_UNION_ORIGINS: tuple[object, ...] = (typing.Union, types.UnionType)  # Optional[X], X | Y


def _build(tp: Any, value: Any) -> Any:
    """Build ``tp`` from decoded JSON, following type hints into nested dataclasses."""
    origin = typing.get_origin(tp)
    if origin is not None and dataclasses.is_dataclass(origin):  # a generic dataclass Box[int]
        return _build(origin, value)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, dict):
            return value
        hints = _hints(tp)
        kwargs = {
            f.name: _build(hints.get(f.name, Any), value[f.name])
            for f in dataclasses.fields(tp)
            if f.init and f.name in value
        }
        return tp(**kwargs)
    if isinstance(tp, type) and callable(getattr(tp, "model_validate", None)):  # pydantic
        return cast(Any, tp).model_validate(value)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return value if isinstance(value, tp) else tp(value)  # ValueError if not a member
    args = typing.get_args(tp)
    if origin is typing.Literal:
        for a in args:  # Literal[Color.RED] holds members; the JSON holds their values
            if isinstance(a, enum.Enum) and a.value == value and type(a.value) is type(value):
                return a
        return value
    if origin in _UNION_ORIGINS:  # Optional[X], X | None, X | Y
        if value is None:
            return None
        for a in args:
            if a is not type(None) and _fits(a, value):
                return _build(a, value)
        return value
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
    return value


def _fits(tp: Any, value: object) -> bool:
    """Whether ``value`` (decoded JSON) can be built into ``tp``: picks a Union member."""
    target = typing.get_origin(tp) or tp
    if dataclasses.is_dataclass(target) or hasattr(target, "model_validate"):
        return isinstance(value, dict)
    if target in (list, set, frozenset, tuple):
        return isinstance(value, (list, tuple, set, frozenset))
    if isinstance(target, type) and issubclass(target, enum.Enum):
        return any(m.value == value and type(m.value) is type(value) for m in target) or (
            issubclass(target, enum.Flag) and isinstance(value, int) and not isinstance(value, bool)
        )
    if isinstance(target, type):
        return isinstance(value, target)
    if target is typing.Literal:
        return any(getattr(a, "value", a) == value for a in typing.get_args(tp))
    return False
