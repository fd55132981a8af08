"""Lua scripts for the operations that must be atomic, and the etag they agree on.

An etag identifies a key's *state*: its value and its expiry. It is the SHA1 of the value
in lower-case hex, followed by ``:<absolute expiry in Unix milliseconds>`` when the key
has a TTL (``PEXPIRETIME``, Redis 7.0+). Redis computes the same string inside a script
(``redis.sha1hex`` and ``PEXPIRETIME``), so a conditional write compares etags on the
server in one round trip, and reads compute it locally with :mod:`hashlib` from the value
and the expiry the server reported. A TTL-only rewrite changes the expiry, hence the etag;
rewriting the same bytes with the same absolute expiry keeps it (content-derived).
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
    "SET_PX",
    "TTLS",
    "LazyEtags",
    "Script",
    "etag_of",
    "with_expiry",
]


def etag_of(value: bytes, expires_ms: int = -1) -> str:
    """The etag of ``value`` stored with absolute expiry ``expires_ms`` (-1: none).

    Exactly what :data:`ETAG_LUA` computes on the server.
    """
    return with_expiry(hashlib.sha1(value).hexdigest(), expires_ms)


def with_expiry(sha: str, expires_ms: int) -> str:
    """The etag made of a value's SHA1 hex and its absolute expiry (-1: none)."""
    return sha if expires_ms < 0 else f"{sha}:{expires_ms}"


class LazyEtags(Sequence[str]):
    """The etags of written values, hashed on first access.

    ``Store.set_many`` ignores them; hashing a hundred values it never reads cost more
    than a tenth of an ``MSET`` round trip.
    """

    __slots__ = ("_expiries", "_values")

    def __init__(self, values: list[bytes], expiries: Sequence[int] | None = None) -> None:
        self._values = values
        self._expiries = expiries

    def __len__(self) -> int:
        return len(self._values)

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(len(self._values))[index]]
        at = -1 if self._expiries is None else self._expiries[index]
        return etag_of(self._values[index], at)

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


#: Lua: the etag of the value ``v`` stored at ``k`` (see :func:`etag_of`). Expiries are
#: formatted with ``%d`` (Lua numbers are doubles; kv keeps them below 2^53 ms).
ETAG_LUA = """
local function etag(k, v)
  local at = redis.call('PEXPIRETIME', k)
  if at < 0 then return redis.sha1hex(v) end
  return redis.sha1hex(v) .. ':' .. string.format('%d', at)
end
"""

#: -> false if missing, else {value, pttl, expiry ms}, read in one atomic step.
GET = Script(
    """
local v = redis.call('GET', KEYS[1])
if not v then return false end
return {v, redis.call('PTTL', KEYS[1]), redis.call('PEXPIRETIME', KEYS[1])}
"""
)

#: -> "pttl1,at1,...,pttln,atn" for KEYS. Sent right after an MGET of the same keys:
#: values never pass through Lua (converting 100 KiB through Lua costs Redis ~10x the
#: MGET), and the numbers travel as one string because parsing 2n integers one by one
#: costs more.
TTLS = Script(
    """
local t = {}
for i, k in ipairs(KEYS) do
  t[2 * i - 1] = string.format('%d', redis.call('PTTL', k))
  t[2 * i] = string.format('%d', redis.call('PEXPIRETIME', k))
end
return table.concat(t, ',')
"""
)

#: ARGV: value, px (> 0). An unconditional write with a TTL; -> the expiry it set (ms),
#: which the etag needs and only the server's clock knows.
SET_PX = Script(
    """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return redis.call('PEXPIRETIME', KEYS[1])
"""
)

#: ARGV: value, mode ('a' absent | 'm' match), etag, px ('' none, <= 0 expired at once).
#: -> false if the precondition failed, else the new expiry in ms (-1 none, -2 deleted).
SET_IF = Script(
    ETAG_LUA
    + """
local cur = redis.call('GET', KEYS[1])
if ARGV[2] == 'a' then
  if cur then return false end
elseif not cur or etag(KEYS[1], cur) ~= ARGV[3] then
  return false
end
if ARGV[4] == '' then
  redis.call('SET', KEYS[1], ARGV[1])
  return -1
elseif tonumber(ARGV[4]) > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[4])
  return redis.call('PEXPIRETIME', KEYS[1])
end
redis.call('DEL', KEYS[1])
return -2
"""
)

#: ARGV: etag. -> 1 deleted, 0 precondition failed (stale etag or missing).
DELETE_IF = Script(
    ETAG_LUA
    + """
local cur = redis.call('GET', KEYS[1])
if not cur or etag(KEYS[1], cur) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
"""
)

#: ARGV: etag. -> false if missing, 1 if unchanged (value and expiry), else
#: {value, pttl, expiry ms}.
GET_IF_CHANGED = Script(
    ETAG_LUA
    + """
local v = redis.call('GET', KEYS[1])
if not v then return false end
if etag(KEYS[1], v) == ARGV[1] then return 1 end
return {v, redis.call('PTTL', KEYS[1]), redis.call('PEXPIRETIME', KEYS[1])}
"""
)

#: Every script, loaded on each new connection (SCRIPT LOAD) so EVALSHA hits the cache.
SCRIPTS = (GET, TTLS, SET_PX, SET_IF, DELETE_IF, GET_IF_CHANGED)
