"""Compressed and Encrypted: tamper, swap, downgrade and bomb tests, rotation, legacy data."""

from __future__ import annotations

import os
import struct
import zlib
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from kv_core import BYTES, MemoryDriver, SerializationError, Store
from kv_core.middleware import Compressed, Encrypted, stack
from kv_core.middleware._compressed import MAGIC as ZMAGIC
from kv_core.middleware._encrypted import MAGIC as EMAGIC

from ._middleware_support import KEY_A, KEY_B

TEXT = b'{"name": "Ada", "bio": "' + b"analytical engine " * 200 + b'"}'


def _raw(driver: MemoryDriver) -> Store[bytes]:
    return Store(driver, codec=BYTES)


async def _unreadable(store: Store[Any], key: str) -> SerializationError:
    """Every read path raises SerializationError naming the key (never None, never bytes)."""
    for attempt in (store.get(key), store.get(key, default=None), store.get_entry(key)):
        with pytest.raises(SerializationError) as info:
            await attempt
        assert key in str(info.value)
    with pytest.raises(SerializationError):
        await store.get_many([key])
    with pytest.raises(SerializationError):
        [kv async for kv in store.items()]
    return info.value


# -- Compressed ---------------------------------------------------------------------------


async def test_compressed_values_shrink_and_round_trip_with_the_inner_etag() -> None:
    inner = MemoryDriver()
    store = Store(Compressed(inner), codec=BYTES)
    etag = await store.set("doc", TEXT)
    stored = await inner.get("doc")
    assert stored is not None
    assert stored.value.startswith(ZMAGIC)
    assert len(stored.value) < len(TEXT) // 10
    assert stored.etag == etag == (await store.get_entry("doc")).etag
    assert await store.get("doc") == TEXT


async def test_small_and_incompressible_values_are_stored_as_they_are() -> None:
    inner = MemoryDriver()
    store = Store(Compressed(inner, threshold=64), codec=BYTES)
    await store.set("small", b"short")
    noise = os.urandom(4096)
    await store.set("noise", noise)
    assert (await inner.get("small")).value == b"short"  # type: ignore[union-attr]
    assert (await inner.get("noise")).value == noise  # type: ignore[union-attr]
    assert await store.get("noise") == noise


async def test_values_written_before_compression_still_read() -> None:
    inner = MemoryDriver()
    await Store(inner).set("legacy", {"written": "before"})
    await _raw(inner).set("legacy-bytes", TEXT)
    store: Store[Any] = Store(Compressed(inner))
    assert await store.get("legacy") == {"written": "before"}
    assert await store.with_codec(BYTES).get("legacy-bytes") == TEXT


async def test_a_raw_value_that_starts_with_the_magic_is_wrapped_not_misread() -> None:
    inner = MemoryDriver()
    store = Store(Compressed(inner, threshold=1 << 20), codec=BYTES)
    lookalike = ZMAGIC + b"\x01" + struct.pack(">Q", 5) + b"not zlib"
    await store.set("lookalike", lookalike)
    stored = (await inner.get("lookalike")).value  # type: ignore[union-attr]
    assert stored != lookalike
    assert stored.startswith(ZMAGIC + b"\x00")  # method "stored"
    assert await store.get("lookalike") == lookalike
    await store.set("magic-only", ZMAGIC)
    assert await store.get("magic-only") == ZMAGIC


async def test_a_decompression_bomb_is_refused_without_inflating_it() -> None:
    inner = MemoryDriver()
    bomb = zlib.compress(b"\0" * (64 << 20), 9)  # 64 MiB of zeros in ~64 KiB
    # An honest header above the limit: refused from the header alone.
    await _raw(inner).set("honest", ZMAGIC + b"\x01" + struct.pack(">Q", 64 << 20) + bomb)
    # A lying header (says 100 bytes): inflating stops at 101 bytes.
    await _raw(inner).set("liar", ZMAGIC + b"\x01" + struct.pack(">Q", 100) + bomb)
    store = Store(Compressed(inner, max_decompressed=1 << 20), codec=BYTES)
    error = await _unreadable(store, "honest")
    assert "exceeds the limit" in str(error)
    error = await _unreadable(store, "liar")
    assert "declared size" in str(error)


async def test_a_value_above_the_limit_is_written_uncompressed_so_it_stays_readable() -> None:
    inner = MemoryDriver()
    store = Store(Compressed(inner, max_decompressed=1000), codec=BYTES)
    await store.set("big", TEXT)
    assert (await inner.get("big")).value == TEXT  # type: ignore[union-attr]
    assert await store.get("big") == TEXT


@pytest.mark.parametrize(
    ("name", "damage"),
    [
        ("truncated header", lambda v: v[:8]),
        ("flipped payload byte", lambda v: v[:20] + bytes([v[20] ^ 1]) + v[21:]),
        ("truncated payload", lambda v: v[:-3]),
        ("trailing garbage", lambda v: v + b"junk"),
        ("unknown method", lambda v: v[:4] + b"\x09" + v[5:]),
        ("size mismatch", lambda v: v[:5] + struct.pack(">Q", 7) + v[13:]),
        ("stored size mismatch", lambda v: ZMAGIC + b"\x00" + struct.pack(">Q", 99) + b"abc"),
    ],
)
async def test_corrupt_compressed_data_raises_serialization_error(name: str, damage: Any) -> None:
    inner = MemoryDriver()
    store = Store(Compressed(inner), codec=BYTES)
    await store.set("k", TEXT)
    good = (await inner.get("k")).value  # type: ignore[union-attr]
    await _raw(inner).set("k", damage(good))
    await _unreadable(store, "k")


@given(st.binary(max_size=3000), st.integers(0, 2000))
@example(ZMAGIC, 0)
@example(ZMAGIC + b"\x01" + b"\0" * 8, 10_000)
@example(b"", 0)
async def test_any_value_round_trips_through_compressed(value: bytes, threshold: int) -> None:
    store = Store(Compressed(MemoryDriver(), threshold=threshold), codec=BYTES)
    await store.set("k", value)
    assert await store.get("k") == value


# -- Encrypted ----------------------------------------------------------------------------


def _encrypted(inner: MemoryDriver, **options: Any) -> Store[Any]:
    options.setdefault("keys", {"2026-11": KEY_A})
    return Store(Encrypted(inner, **options))


async def test_encrypted_values_round_trip_and_hide_the_plaintext() -> None:
    inner = MemoryDriver()
    store = _encrypted(inner)
    etag = await store.set("user/1", {"secret": "analytical engine"})
    stored = await inner.get("user/1")
    assert stored is not None
    assert stored.value.startswith(EMAGIC)
    assert b"analytical" not in stored.value
    assert stored.etag == etag
    assert await store.get("user/1") == {"secret": "analytical engine"}
    await store.with_codec(BYTES).set("empty", b"")
    assert await store.with_codec(BYTES).get("empty") == b""
    # A fresh nonce per write: the same value never encrypts to the same bytes.
    await store.set("user/2", {"secret": "analytical engine"})
    assert (await inner.get("user/2")).value != stored.value  # type: ignore[union-attr]


async def test_a_ciphertext_copied_under_another_key_fails_to_decrypt() -> None:
    inner = MemoryDriver()
    store = _encrypted(inner)
    await store.set("alice/balance", 100)
    await store.set("mallory/balance", 1)
    stolen = (await inner.get("alice/balance")).value  # type: ignore[union-attr]
    await _raw(inner).set("mallory/balance", stolen)
    error = await _unreadable(store, "mallory/balance")
    assert "authentication failed" in str(error)
    # Same key under another namespace is another key too.
    await _raw(inner).set("ns/alice/balance", stolen)
    await _unreadable(store, "ns/alice/balance")


async def test_plaintext_is_never_passed_through() -> None:
    inner = MemoryDriver()
    await Store(inner).set("legacy", {"written": "before encryption"})
    await _raw(inner).set("empty", b"")
    store = _encrypted(inner)
    error = await _unreadable(store, "legacy")
    assert "no encryption header" in str(error)
    await _unreadable(store, "empty")
    # A value that only carries the header cannot pass either.
    await _raw(inner).set("header-only", EMAGIC + b"\x01\x07" + b"2026-11")
    await _unreadable(store, "header-only")


async def test_every_single_byte_tampering_is_detected() -> None:
    inner = MemoryDriver()
    store = _encrypted(inner)
    await store.set("k", "short value")
    good = (await inner.get("k")).value  # type: ignore[union-attr]
    for i in range(len(good)):
        await _raw(inner).set("k", good[:i] + bytes([good[i] ^ 0x01]) + good[i + 1 :])
        with pytest.raises(SerializationError):
            await store.get("k")
    for cut in (1, 16, len(good) - 1):
        await _raw(inner).set("k", good[:cut])
        with pytest.raises(SerializationError):
            await store.get("k")
    await _raw(inner).set("k", good + b"\0")
    with pytest.raises(SerializationError):
        await store.get("k")


async def test_keys_rotate_old_values_read_new_ones_use_the_primary() -> None:
    inner = MemoryDriver()
    old = _encrypted(inner, keys={"2026-11": KEY_A})
    await old.set("k", "under A")
    rotated = _encrypted(inner, keys={"2026-11": KEY_A, "2026-12": KEY_B}, primary="2026-12")
    assert await rotated.get("k") == "under A"
    await rotated.set("k2", "under B")
    assert b"2026-12" in (await inner.get("k2")).value  # type: ignore[union-attr]
    retired = _encrypted(inner, keys={"2026-12": KEY_B})
    assert await retired.get("k2") == "under B"
    error = await _unreadable(retired, "k")
    assert "unknown key id '2026-11'" in str(error)


async def test_the_same_key_id_with_other_key_material_fails() -> None:
    inner = MemoryDriver()
    await _encrypted(inner, keys={"id": KEY_A}).set("k", 1)
    await _unreadable(_encrypted(inner, keys={"id": KEY_B}), "k")


async def test_a_swapped_key_id_in_the_header_fails() -> None:
    inner = MemoryDriver()
    both = {"aaaa": KEY_A, "bbbb": KEY_B}
    store = _encrypted(inner, keys=both, primary="aaaa")
    await store.set("k", 1)
    good = (await inner.get("k")).value  # type: ignore[union-attr]
    await _raw(inner).set("k", good.replace(b"aaaa", b"bbbb", 1))
    await _unreadable(store, "k")


def test_encrypted_validates_keys_and_never_shows_them() -> None:
    inner = MemoryDriver()
    with pytest.raises(ValueError, match="32 bytes"):
        Encrypted(inner, keys={"k": b"short"})
    with pytest.raises(ValueError, match="primary"):
        Encrypted(inner, keys={"a": KEY_A, "b": KEY_B})
    with pytest.raises(ValueError, match="not in keys"):
        Encrypted(inner, keys={"a": KEY_A}, primary="b")
    with pytest.raises(ValueError, match="at least one"):
        Encrypted(inner, keys={})
    with pytest.raises(ValueError, match="key ids"):
        Encrypted(inner, keys={"x" * 256: KEY_A})
    shown = repr(Encrypted(inner, keys={"a": KEY_A}))
    assert KEY_A.hex() not in shown
    assert repr(KEY_A) not in shown
    assert "'a'" in shown


async def test_compressed_over_encrypted_compresses_first() -> None:
    inner = MemoryDriver()
    store = Store(stack(inner, lambda d: Encrypted(d, keys={"a": KEY_A}), Compressed), codec=BYTES)
    await store.set("doc", TEXT)
    stored = (await inner.get("doc")).value  # type: ignore[union-attr]
    assert stored.startswith(EMAGIC)
    assert len(stored) < len(TEXT) // 10  # the plaintext was compressed before encryption
    assert await store.get("doc") == TEXT


@given(st.binary(max_size=2000), st.text(min_size=1, max_size=40))
@example(b"", "k")
@example(EMAGIC, "\x00")
async def test_any_value_under_any_key_round_trips_through_encrypted(
    value: bytes, key: str
) -> None:
    store = Store(Encrypted(MemoryDriver(), keys={"a": KEY_A}), codec=BYTES)
    await store.set(key, value)
    assert await store.get(key) == value
