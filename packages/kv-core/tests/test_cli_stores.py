"""The ``kv`` command line: listing keys, copying between stores, choosing the store."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import pytest
from kv_core import (
    BYTES,
    BackendUnavailableError,
    MemoryDriver,
)
from kv_core._cli import DEFAULT_STORE_URL, main
from kv_core.testing import WEIRD_KEYS

from ._cli_support import Kv, assert_one_line_error

# -- keys ----------------------------------------------------------------------------------


def test_keys_lists_one_per_line_with_prefix(kv: Kv) -> None:
    for key in ("user/1", "user/2", "users", "team/1"):
        kv("set", key, "0")
    assert sorted(kv("keys").text.splitlines()) == ["team/1", "user/1", "user/2", "users"]
    assert sorted(kv("keys", "user/").text.splitlines()) == ["user/1", "user/2"]
    assert kv("keys", "nothing/").out == b""


def test_keys_null_terminated_lists_weird_keys_and_reports_those_holding_nul(kv: Kv) -> None:
    for key in WEIRD_KEYS:
        kv.put(key, 1)
    holding_nul = sorted(k for k in WEIRD_KEYS if "\0" in k)
    assert holding_nul  # the corpus must exercise the one key -0 cannot carry
    result = kv("keys", "-0")
    assert result.out.endswith(b"\0")
    listed = [k.decode("utf-8") for k in result.out.split(b"\0")[:-1]]
    assert sorted(listed) == sorted(k for k in WEIRD_KEYS if "\0" not in k)
    # Leaving a key out is never silent: each one is named and the exit code says so.
    assert result.code == 4
    for key in holding_nul:
        assert repr(key) in result.err
    assert "kv keys --json" in result.err
    assert "newline" not in result.err  # -0 is the safe way for newlines


def test_keys_json_lists_every_weird_key_exactly(kv: Kv) -> None:
    import json

    for key in WEIRD_KEYS:
        kv.put(key, 1)
    result = kv("keys", "--json")
    assert result.code == 0
    assert result.err == ""
    lines = result.out.split(b"\n")
    assert lines.pop() == b""
    assert sorted(json.loads(line) for line in lines) == sorted(WEIRD_KEYS)


def test_keys_warns_once_when_a_key_holds_a_newline(kv: Kv) -> None:
    kv.put("two\nlines", 1)
    kv.put("more\nlines", 1)
    result = kv("keys")
    assert result.code == 0
    assert result.err.count("a key holds a newline; list keys with -0 or --json") == 1


def test_keys_lists_many_keys_across_write_batches(kv: Kv) -> None:
    wanted = {f"k{i:04d}" for i in range(600)}
    for key in wanted:
        kv.put(key, 0)
    assert set(kv("keys").text.splitlines()) == wanted


# -- copy ----------------------------------------------------------------------------------


def _seed(kv: Kv, name: str, items: dict[str, bytes], ttl: float | None = None) -> None:
    async def go() -> None:
        async with kv.store(name).with_codec(BYTES) as s:
            for key, value in items.items():
                await s.set(key, value, ttl=ttl)

    asyncio.run(go())


def test_copy_moves_every_key_with_its_bytes_and_remaining_ttl(kv: Kv) -> None:
    kv.clock("src")
    kv.clock("dst")  # a different clock: copy must carry remaining seconds, not timestamps
    forever = {f"f{i:03d}": f'{{"i": {i}}}'.encode() for i in range(150)}  # > one batch
    _seed(kv, "src", forever)
    _seed(kv, "src", {"blob": b"\xff\x00", "weird\nkey": b"1"})
    _seed(kv, "src", {"session": b'"s"'}, ttl=100)
    kv.clock("src").now += 40  # 60 s left

    result = kv("copy", "testmem://src", "testmem://dst")
    assert result.code == 0, result
    assert result.out == b"copied 153 keys\n"
    assert result.err == ""  # stderr is not a terminal here: no progress

    dst = kv.data["dst"]
    assert {k: e.value for k, e in dst.items()} == {k: e.value for k, e in kv.data["src"].items()}
    assert dst["session"].expires_at == kv.clock("dst").now + 60
    assert dst["f000"].expires_at is None


def test_copy_with_prefix_and_no_clobber(kv: Kv) -> None:
    _seed(kv, "a", {"user/1": b"1", "user/2": b"2", "team/1": b"3"})
    _seed(kv, "b", {"user/1": b'"kept"'})
    result = kv("copy", "testmem://a", "testmem://b", "--prefix", "user/", "-n")
    assert result.code == 0
    assert result.out == b"copied 1 key, skipped 1 that already existed\n"
    assert {k: e.value for k, e in kv.data["b"].items()} == {"user/1": b'"kept"', "user/2": b"2"}


def test_copy_skips_keys_expired_in_the_source(kv: Kv) -> None:
    _seed(kv, "src", {"old": b"1"}, ttl=5)
    _seed(kv, "src", {"new": b"2"})
    kv.clock("src").now += 5
    assert kv("copy", "testmem://src", "testmem://dst").out == b"copied 1 key\n"
    assert set(kv.data["dst"]) == {"new"}


def test_copy_shows_progress_on_a_terminal(kv: Kv) -> None:
    _seed(kv, "src", {f"k{i}": b"0" for i in range(130)})
    main_fd, side_fd = os.openpty()
    terminal = open(side_fd, "w", encoding="utf-8")  # noqa: SIM115 - closed below
    try:
        kv.monkeypatch.setattr(sys, "stderr", terminal)
        code = main(["copy", "testmem://src", "testmem://dst"], registry=kv.registry)
        terminal.flush()
        os.set_blocking(main_fd, False)
        received = b""
        while True:  # one read may return only part of what the terminal holds
            try:
                piece = os.read(main_fd, 65536)
            except BlockingIOError:
                break
            if not piece:
                break
            received += piece
        shown = received.decode("utf-8")
    finally:
        kv.monkeypatch.undo()
        terminal.close()
        os.close(main_fd)
    assert code == 0
    assert "copying: 130 keys" in shown
    assert shown.endswith("\r")  # the progress line is wiped at the end
    assert len(kv.data["dst"]) == 130


# -- choosing the store --------------------------------------------------------------------


def test_store_option_and_environment_pick_the_store(kv: Kv) -> None:
    assert kv("--store", "testmem://other", "set", "k", "1").code == 0
    assert set(kv.data["other"]) == {"k"}
    assert kv("get", "k", "--store", "testmem://other").out == b"1\n"  # after the command
    assert kv("get", "k").code == 1  # $KV_STORE_URL is testmem://main
    kv.monkeypatch.setenv("KV_STORE_URL", "testmem://other")
    assert kv("get", "k").out == b"1\n"


def test_missing_backend_prints_the_install_hint(kv: Kv) -> None:
    # The private registry has no file:// driver, whatever is installed.
    result = kv("--store", "file:./data", "get", "k")
    assert_one_line_error(result, 2)
    assert result.err == "kv: file:// needs: pip install kv-local\n"


def test_default_store_is_the_local_folder(kv: Kv) -> None:
    assert DEFAULT_STORE_URL == "file:./.kv"
    kv.monkeypatch.delenv("KV_STORE_URL")
    result = kv("keys")
    assert_one_line_error(result, 2)
    assert "file:// needs: pip install kv-local" in result.err
    assert "the default store is file:./.kv" in result.err


def test_copy_to_a_missing_backend_prints_the_hint(kv: Kv) -> None:
    _seed(kv, "src", {"k": b"1"})
    result = kv("copy", "testmem://src", "redis://localhost:1/0")
    assert_one_line_error(result, 2)
    assert "redis:// needs: pip install kv-redis" in result.err


def test_unknown_scheme_and_non_url(kv: Kv) -> None:
    unknown = kv("--store", "nope://x", "get", "k")
    assert_one_line_error(unknown, 2)
    assert "no kv backend handles nope://" in unknown.err
    not_url = kv("--store", "./data", "get", "k")
    assert_one_line_error(not_url, 2)
    assert "not a store URL" in not_url.err


def test_memory_urls_are_refused_by_the_command_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Each kv command is a new process: a memory store would be empty every time.
    for argv in (["--store", "memory://", "exists", "k"], ["copy", "memory://", "memory://b"]):
        assert main(argv) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert "memory:// keeps its data inside one process" in captured.err


def test_invalid_key_is_a_usage_error(kv: Kv) -> None:
    assert_one_line_error(kv("get", ""), 2)
    assert_one_line_error(kv("set", "k" * 1025, "1"), 2)


def test_secrets_in_the_url_are_never_printed(kv: Kv) -> None:
    def leaky(url: str, **options: Any) -> MemoryDriver:
        raise BackendUnavailableError(f"cannot reach {url}")

    def refusing(url: str, **options: Any) -> MemoryDriver:
        raise ValueError(f"bad URL {url}")

    kv.registry.register("leaky", leaky)
    kv.registry.register("refusing", refusing)
    url = "user:s3cr3t-pw@host:1/0?token=tok-123&db=1"
    for scheme, code in (("leaky", 5), ("refusing", 2)):
        result = kv("--store", f"{scheme}://{url}", "get", "k")
        assert_one_line_error(result, code)
        assert "s3cr3t-pw" not in result.err
        assert "tok-123" not in result.err
        assert "host:1" in result.err  # the rest stays, to say which store failed
