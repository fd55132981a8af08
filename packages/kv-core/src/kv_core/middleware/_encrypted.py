"""Encrypted: AES-256-GCM bound to the key, with key ids for rotation (kv-core[encryption])."""

from __future__ import annotations

import os
import struct
from collections.abc import Mapping
from typing import Any

from .._driver import Driver
from .._errors import SerializationError
from ._transform import Transform

__all__ = ["MAGIC", "Encrypted"]

#: First bytes of every encrypted value (0xC1 never starts valid UTF-8).
MAGIC = b"\xc1KVE"
_VERSION = 1
_NONCE = 12
_TAG = 16
_PREFIX = struct.Struct(">4sBB")  # magic, version, key id length


def _aesgcm() -> Any:
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("Encrypted needs: pip install 'kv-core[encryption]'") from exc
    return AESGCM


class Encrypted(Transform):
    """Encrypts every value with AES-256-GCM, bound to the full key it is stored under.

    A stored value is ``MAGIC + version + key id length + key id + nonce + ciphertext +
    tag``. The associated data is that header followed by the full key (namespace
    included), so:

    - a ciphertext copied under another key fails to decrypt (SerializationError);
    - a changed byte anywhere (header, key id, nonce, ciphertext, tag) fails;
    - a value without the header (plaintext, or written before encryption was switched
      on) raises SerializationError: plaintext is never passed through;
    - a key id this layer does not know raises SerializationError naming the id.

    Nothing is ever turned into a silent None. New writes use ``primary``; values written
    under another id in ``keys`` still read, which is how keys rotate (add the new key,
    make it primary, rewrite the old values at leisure, then drop the old key). Nonces
    are 96 random bits per write: rotate before 2**32 writes under one key.

    Etags and expiries are the inner driver's. Streams are read and written whole (see
    :class:`Transform`). Moving ciphertexts to another key or namespace needs
    re-encryption, by design. Key material never appears in ``repr`` or errors.

    Args:
        inner: The wrapped driver.
        keys: ``{key_id: 32 bytes}``; ids are 1-255 bytes of UTF-8.
        primary: The id that encrypts new writes (may be omitted when ``keys`` has one).
    """

    def __init__(
        self, inner: Driver, *, keys: Mapping[str, bytes], primary: str | None = None
    ) -> None:
        super().__init__(inner)
        aesgcm = _aesgcm()
        from cryptography.exceptions import InvalidTag

        self._invalid_tag: type[Exception] = InvalidTag
        if not keys:
            raise ValueError("Encrypted needs at least one key")
        if primary is None:
            if len(keys) != 1:
                raise ValueError("primary= is required when more than one key is given")
            primary = next(iter(keys))
        if primary not in keys:
            raise ValueError(f"primary key id {primary!r} is not in keys")
        self._ciphers: dict[bytes, Any] = {}
        for key_id, material in keys.items():
            encoded = key_id.encode("utf-8") if isinstance(key_id, str) else b""
            if not 1 <= len(encoded) <= 255:
                raise ValueError(f"key ids must be 1-255 bytes of UTF-8, got {key_id!r}")
            if not isinstance(material, (bytes, bytearray)) or len(material) != 32:
                raise ValueError(f"key {key_id!r} must be 32 bytes (AES-256)")
            self._ciphers[encoded] = aesgcm(bytes(material))
        self.primary = primary
        self._primary_id = primary.encode("utf-8")
        self._primary_header = (
            _PREFIX.pack(MAGIC, _VERSION, len(self._primary_id)) + self._primary_id
        )

    def __repr__(self) -> str:
        ids = [i.decode() for i in self._ciphers]
        return f"Encrypted({self.inner!r}, key_ids={ids!r}, primary={self.primary!r})"

    @staticmethod
    def _bound(header: bytes, key: str) -> bytes:
        # surrogatepass: keys are valid str without lone surrogates, but never fail here.
        return header + key.encode("utf-8", "surrogatepass")

    def _encode(self, key: str, value: bytes) -> bytes:
        header = self._primary_header
        nonce = os.urandom(_NONCE)
        sealed: bytes = self._ciphers[self._primary_id].encrypt(
            nonce, value, self._bound(header, key)
        )
        return header + nonce + sealed

    def _bad(self, key: str, why: str) -> SerializationError:
        return SerializationError(f"encrypted value is unreadable: {why}", key=key, store=self.name)

    def _decode(self, key: str, data: bytes) -> bytes:
        if data[:4] != MAGIC:
            raise self._bad(key, "no encryption header (plaintext is never passed through)")
        if len(data) < _PREFIX.size:
            raise self._bad(key, "truncated header")
        _, version, id_len = _PREFIX.unpack_from(data)
        if version != _VERSION:
            raise self._bad(key, f"unknown format version {version}")
        end = _PREFIX.size + id_len
        if len(data) < end + _NONCE + _TAG:
            raise self._bad(key, "truncated value")
        key_id = data[_PREFIX.size : end]
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise self._bad(key, f"unknown key id {key_id.decode('utf-8', 'replace')!r}")
        nonce = data[end : end + _NONCE]
        try:
            # A view: no copy of the (possibly large) ciphertext before decrypting it.
            sealed = memoryview(data)[end + _NONCE :]
            plain: bytes = cipher.decrypt(nonce, sealed, self._bound(data[:end], key))
        except self._invalid_tag as exc:
            raise self._bad(
                key, "authentication failed (wrong key, another key's value, or tampered)"
            ) from exc
        return plain
