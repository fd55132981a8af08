"""Lua scripts for the operations that must be atomic, and the etag they agree on.

The etag of a value is the SHA1 of its bytes in lower-case hex: Redis computes the same
string with ``redis.sha1hex`` inside a script, so a conditional write compares etags on
the server in one round trip, and reads compute it locally with :mod:`hashlib`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, overload

__all__ = [
    "DELETE_IF",
    "GET",
    "GET_IF_CHANGED",
    "SCRIPTS",
    "SET_IF",
    "TTLS",
    "Script",
    "etag_of",
]


def etag_of(value: bytes) -> str:
    """The etag of ``value``: SHA1 hex, exactly what ``redis.sha1hex`` returns."""
    return hashlib.sha1(value).hexdigest()


class LazyEtags(Sequence[str]):
    """The etags of written values, hashed on first access.

    ``Store.set_many`` ignores them; hashing a hundred values it never reads cost more
    than a tenth of an ``MSET`` round trip.
    """

    __slots__ = ("_values",)

    def __init__(self, values: list[bytes]) -> None:
        self._values = values

    def __len__(self) -> int:
        return len(self._values)

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [etag_of(v) for v in self._values[index]]
        return etag_of(self._values[index])

    def __eq__(self, other: object) -> bool:
        # Compares like the list of etags it stands for.
        if isinstance(other, (list, tuple, LazyEtags)):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable-sequence semantics, like list

    def __repr__(self) -> str:
        return f"LazyEtags({len(self._values)} values)"


@dataclass(frozen=True)
class Script:
    """A Lua script sent with EVALSHA, falling back to EVAL on NOSCRIPT."""

    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.source.encode()).hexdigest())

    def evalsha(self, keys: list[bytes], *args: object) -> tuple[Any, ...]:
        """The EVALSHA command for these keys and arguments."""
        return ("EVALSHA", self.sha, len(keys), *keys, *args)

    def eval(self, keys: list[bytes], *args: object) -> tuple[Any, ...]:
        """The EVAL command (sends the source, which also caches it on the server)."""
        return ("EVAL", self.source, len(keys), *keys, *args)


#: -> false if missing, else {value, pttl}. PTTL is read in the same atomic step.
GET = Script(
    """
local v = redis.call('GET', KEYS[1])
if not v then return false end
return {v, redis.call('PTTL', KEYS[1])}
"""
)

#: -> "pttl1,...,pttln" for KEYS. Sent right after an MGET of the same keys: values
#: never pass through Lua (converting 100 KiB through Lua costs Redis ~10x the MGET), and
#: the TTLs travel as one string because parsing n integers one by one costs more.
TTLS = Script(
    """
local t = {}
for i, k in ipairs(KEYS) do t[i] = redis.call('PTTL', k) end
return table.concat(t, ',')
"""
)

#: ARGV: value, mode ('a' absent | 'm' match), etag, px ('' none, <= 0 expired at once).
#: -> 1 written, 0 precondition failed.
SET_IF = Script(
    """
local cur = redis.call('GET', KEYS[1])
if ARGV[2] == 'a' then
  if cur then return 0 end
elseif not cur or redis.sha1hex(cur) ~= ARGV[3] then
  return 0
end
if ARGV[4] == '' then
  redis.call('SET', KEYS[1], ARGV[1])
elseif tonumber(ARGV[4]) > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[4])
else
  redis.call('DEL', KEYS[1])
end
return 1
"""
)

#: ARGV: etag. -> 1 deleted, 0 precondition failed (stale etag or missing).
DELETE_IF = Script(
    """
local cur = redis.call('GET', KEYS[1])
if not cur or redis.sha1hex(cur) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
"""
)

#: ARGV: etag. -> false if missing, {pttl} if unchanged, {value, pttl} if changed.
GET_IF_CHANGED = Script(
    """
local v = redis.call('GET', KEYS[1])
if not v then return false end
local ttl = redis.call('PTTL', KEYS[1])
if redis.sha1hex(v) == ARGV[1] then return {ttl} end
return {v, ttl}
"""
)

#: Every script, loaded on each new connection (SCRIPT LOAD) so EVALSHA hits the cache.
SCRIPTS = (GET, TTLS, SET_IF, DELETE_IF, GET_IF_CHANGED)
