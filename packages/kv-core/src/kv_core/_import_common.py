"""What every ``kv import`` source yields, and the helpers the source readers share.

A source reader is an async iterator of :class:`Found`: one per entry of the source, with
the kv key (and namespace) it becomes, its value in kv's plain form, and its expiry on the
wall clock; or, when the entry cannot be imported, why not. Readers never write to their
source: files are opened for reading, SQLite databases read-only, Redis only scanned and read.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from ._cli_commands import BadDataError

__all__ = ["Found", "epoch_of_iso", "load_json_file", "load_json_text", "read_bytes", "read_many"]


@dataclass(frozen=True)
class Found:
    """One entry of a source.

    Attributes:
        key: The kv key it becomes (under ``namespace``).
        namespace: The namespace it goes to ("" for the store itself).
        value: The value in kv's plain form (rich types restored where the source tagged
            them), written with kv's JSON codec.
        expires_at: When it expires, in seconds since the epoch (wall clock), or None.
        skip: Why it is not imported (a short reason, used to group the count), or None.
        detail: More about the skip, shown with the entry's name.
        name: How the source names the entry, for messages.
        counted: False for bookkeeping entries (e.g. the marker of a hashed collection),
            which are written but not counted as keys read or written.
    """

    key: str
    value: object = None
    namespace: str = ""
    expires_at: float | None = None
    skip: str | None = None
    detail: str = ""
    name: str = ""
    counted: bool = True

    @classmethod
    def skipped(cls, name: str, reason: str, detail: str = "") -> Found:
        """An entry named ``name`` in the source that is not imported, and why."""
        return cls(key="", skip=reason, detail=detail, name=name)


def load_json_text(data: bytes | str, what: str) -> object:
    """Parse JSON as the libraries' ``json.loads`` does (UTF-8).

    NaN and Infinity are accepted here, as ``json.dumps`` writes them: the one value holding
    them is then skipped as not storable (kv's JSON codec refuses them), not the whole source.

    Raises:
        ValueError: naming ``what`` and the problem.
    """
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        return json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ValueError(f"{what} is not JSON: {exc}") from None


def read_bytes(path: str) -> bytes:
    """The content of the file at ``path`` (opened read-only: sources are never written)."""
    with open(path, "rb") as f:
        return f.read()


def read_many(paths: list[str]) -> list[bytes | None]:
    """The contents of ``paths`` (one thread hop for many small files, not one each).

    None for a file deleted since it was listed: it is no longer there to import.
    """
    found: list[bytes | None] = []
    for path in paths:
        try:
            found.append(read_bytes(path))
        except FileNotFoundError:
            found.append(None)
    return found


def load_json_file(path: str, what: str) -> object:
    """Read and parse the JSON file at ``path`` (a BadDataError when it is not JSON)."""
    data = read_bytes(path)
    try:
        return load_json_text(data, what)
    except ValueError as exc:
        raise BadDataError(str(exc)) from None


def epoch_of_iso(text: object) -> float | None:
    """Seconds since the epoch of an ISO 8601 timestamp (naive means UTC), None if absent.

    Raises:
        ValueError: ``text`` is neither None nor an ISO 8601 timestamp.
    """
    if text is None:
        return None
    if not isinstance(text, str):
        raise ValueError(f"expected an ISO 8601 timestamp, got {type(text).__name__}")
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.timestamp()
