"""Logged: one log line per operation, without values and, on request, without keys."""

from __future__ import annotations

import hashlib
import logging

from .._driver import Driver, RawEntry
from ._observed import Observed, _clock

__all__ = ["Logged"]


class Logged(Observed):
    """Logs one line per operation: operation, key, outcome, duration, store.

    ``kv get 'user/1' hit 0.012ms store=redis://cache:6379/0``

    - Keys are written with ``repr``, so a key holding a newline or a control character
      cannot forge a log line (no log injection). With ``hash_keys=True`` each key is
      replaced by ``#`` and 16 hex digits of a BLAKE2b hash (keyed with ``salt`` when
      given, so short keys cannot be guessed from the log), still the same for the same
      key, so lines can be correlated.
    - Values are never logged, nor their sizes' contents; errors are logged by type name
      only (their messages name keys, which ``hash_keys`` must hide). The store is its
      redacted ``name``: no password, connection string or account key.
    - The default level is DEBUG: nothing appears unless asked for. When the logger is
      not enabled for the level, the layer costs one check per operation.

    Batches log the number of keys; ``keys``/``clear`` log the prefix and the count.

    Args:
        inner: The wrapped driver.
        logger: Where to log; ``logging.getLogger("kv_core.middleware")`` by default.
        level: The level of every line (DEBUG by default).
        error_level: The level of lines for failed operations (``level`` by default).
        hash_keys: Log a hash of each key instead of the key.
        salt: Up to 64 bytes keying the hash (keep it out of the logs).
    """

    def __init__(
        self,
        inner: Driver,
        *,
        logger: logging.Logger | None = None,
        level: int = logging.DEBUG,
        error_level: int | None = None,
        hash_keys: bool = False,
        salt: bytes = b"",
    ) -> None:
        super().__init__(inner)
        if len(salt) > 64:
            raise ValueError("salt must be at most 64 bytes")
        self.logger = logger or logging.getLogger("kv_core.middleware")
        self.level = level
        self.error_level = level if error_level is None else error_level
        self.hash_keys = hash_keys
        self._salt = bytes(salt)

    def __repr__(self) -> str:
        level = logging.getLevelName(self.level)
        return f"Logged({self.inner!r}, logger={self.logger.name!r}, level={level})"

    # get and set are the hot path: when the logger is off they only forward.

    async def get(self, key: str) -> RawEntry | None:
        """Read ``key`` (logged as a hit or a miss)."""
        if not self.logger.isEnabledFor(self.level):
            started = _clock()
            try:
                return await self.inner.get(key)
            except BaseException as exc:
                if self.logger.isEnabledFor(self.error_level):
                    self._record("get", key, started, "error", error=exc)
                raise
        return await super().get(key)

    async def set(
        self,
        key: str,
        value: bytes,
        *,
        expires_at: float | None = None,
        if_match: str | None = None,
        if_absent: bool = False,
    ) -> str:
        """Write ``value`` (logged without it)."""
        if not self.logger.isEnabledFor(self.level):
            started = _clock()
            try:
                return await self.inner.set(
                    key, value, expires_at=expires_at, if_match=if_match, if_absent=if_absent
                )
            except BaseException as exc:
                if self.logger.isEnabledFor(self.error_level):
                    self._record("set", key, started, "error", error=exc)
                raise
        return await super().set(
            key, value, expires_at=expires_at, if_match=if_match, if_absent=if_absent
        )

    def _key_text(self, key: str) -> str:
        if self.hash_keys:
            digest = hashlib.blake2b(
                key.encode("utf-8", "surrogatepass"), digest_size=8, key=self._salt
            )
            return "#" + digest.hexdigest()
        return repr(key)

    def _record(
        self,
        op: str,
        key: str | None,
        started: float,
        outcome: str,
        *,
        error: BaseException | None = None,
        count: int = 1,
        bytes_in: int = 0,
        bytes_out: int = 0,
        hits: int = 0,
    ) -> None:
        level = self.level if error is None else self.error_level
        if not self.logger.isEnabledFor(level):
            return
        millis = (_clock() - started) * 1000
        if key is None:
            subject = f"<{count} keys>"
        elif op in ("keys", "clear"):
            subject = f"prefix={self._key_text(key)} <{count} keys>"
        else:
            subject = self._key_text(key)
        if error is not None:
            outcome = f"error {type(error).__name__}"
        elif op in ("get_many", "get_values"):
            outcome = f"{hits} hits"
        self.logger.log(
            level, "kv %s %s %s %.3fms store=%s", op, subject, outcome, millis, self.name
        )
