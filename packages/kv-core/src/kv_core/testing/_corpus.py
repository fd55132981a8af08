"""Keys and values every driver must store and list back exactly."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

__all__ = ["JSON_VALUES", "RICH_VALUES", "WEIRD_KEYS"]

#: Keys that break naive mappings to paths, blob names or Redis patterns.
WEIRD_KEYS: tuple[str, ...] = (
    "plain",
    "Plain",  # differs only by case from the previous key
    "PLAIN",
    "with space",
    "../x",
    "../../etc/passwd",
    "a/../../b",
    "/abs",
    "a//b",
    "a/",
    "a",
    "a/b",
    "a/b/c",
    ".",
    "..",
    "./.",
    "...",
    "trailing.",
    "trailing/.",
    "CON",
    "con.txt",
    "NUL",
    "a\\b",
    "%2F",
    "%",
    "%%41",
    "~tilde",
    "*",
    "[a-z]?",
    "{hashtag}",
    "tab\there",
    "new\nline",
    "\x00nul",
    "\x7f\x01ctl",
    "emoji 🦄/ünïcödé",
    "日本語/キー",
    "\u200b zero width",
    "x" * 1024,
    "é" * 1024,
    "d/" * 511 + "dd",
    "a:b;c,d'e\"f",
    "$kv",
    "-",
    "_",
    "#",
)

#: Plain JSON values: stored as the JSON any other program writes.
JSON_VALUES: tuple[object, ...] = (
    None,
    True,
    False,
    0,
    -17,
    2**70,
    3.5,
    "",
    "text",
    "ünïcödé 🦄",
    [],
    [1, "two", None, [3.0]],
    {},
    {"name": "Ada", "tags": ["x", "y"], "nested": {"deep": [1, {"k": None}]}},
)

#: Values the JSON codec round-trips through its tags.
RICH_VALUES: tuple[object, ...] = (
    (1, 2, (3, 4)),
    {1, 2, 3},
    frozenset({"a", "b"}),
    b"\x00\xffbytes",
    dt.datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    dt.datetime(2024, 5, 1, 12, 30),
    dt.date(2024, 2, 29),
    dt.time(23, 59, 59, tzinfo=dt.timezone.utc),
    dt.timedelta(days=2, seconds=5, microseconds=7),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    Decimal("3.14159265358979323846264338327950288"),
    {"$kv": "tuple", "v": [1, 2]},  # a user dict that looks like a tag
    {"$kv": "mine"},
    {1: "int key", (1, 2): "tuple key"},
    [{"when": dt.date(2000, 1, 1)}, (None,)],
)
