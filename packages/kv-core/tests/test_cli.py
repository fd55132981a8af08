"""The ``kv`` command line: reading, writing, conditions, expiry and the program itself."""

from __future__ import annotations

import datetime as dt
import io
import os
import subprocess
import sys
import uuid
from decimal import Decimal
from typing import Any

import pytest
from kv_core import (
    BYTES,
    JSON,
    __version__,
)
from kv_core._cli import EXIT_CODES, main

from ._cli_support import Kv, assert_one_line_error

# -- get and set ---------------------------------------------------------------------------


def test_set_stores_json_as_the_codec_would_and_get_prints_it(kv: Kv) -> None:
    # Compact UTF-8, as Store.set would write the same value: both faces agree byte for byte.
    assert kv("set", "user/1", '{"name": "Ada", "tags": [1, 2.5, null]}').code == 0
    result = kv("get", "user/1")
    assert result.code == 0
    assert result.out == b'{"name":"Ada","tags":[1,2.5,null]}\n'
    assert kv.fetch("user/1") == {"name": "Ada", "tags": [1, 2.5, None]}


@pytest.mark.parametrize("value_arg", [[], ["-"]])
def test_set_reads_stdin_when_value_is_omitted_or_dash(kv: Kv, value_arg: list[str]) -> None:
    # A BOM and the trailing newline of 'echo' are not part of the value.
    result = kv("set", "k", *value_arg, stdin=b'\xef\xbb\xbf  {"\xc3\xa9": "\xe2\x82\xac"}\n')
    assert result.code == 0, result
    assert kv.fetch("k") == {"é": "€"}
    assert kv("get", "k").out == '{"é":"€"}\n'.encode()


def test_set_from_a_terminal_says_it_reads_stdin(kv: Kv) -> None:
    class Terminal(io.TextIOWrapper):
        def isatty(self) -> bool:
            return True

    kv.monkeypatch.setattr(sys, "stdin", Terminal(io.BytesIO(b"42")))
    result = kv("set", "n")
    assert result.code == 0
    assert "reading the value from stdin" in result.err
    assert kv.fetch("n") == 42


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"a": 1', "Expecting"),
        (b"", "empty input"),
        (b"   \n", "empty input"),
        (b"NaN", "NaN is not valid JSON"),
        (b"[Infinity]", "Infinity is not valid JSON"),
        (b'"\xff"', "not UTF-8 (byte 0xff at offset 1)"),
        (b"hello", "Expecting value"),
    ],
)
def test_set_rejects_what_is_not_json_naming_the_key(kv: Kv, data: bytes, reason: str) -> None:
    result = kv("set", "conf/x", stdin=data)
    assert_one_line_error(result, 4)
    assert "the value for key 'conf/x' is not JSON" in result.err
    assert reason in result.err
    assert kv.fetch("conf/x") == "<missing>"


def test_options_may_come_between_key_and_value(kv: Kv) -> None:
    assert kv("set", "k", "--ttl", "5", '"v"').code == 0
    assert kv.fetch("k") == "v"
    assert kv("ttl", "k").out == b"5.0\n"
    assert kv("set", "n", "--if-absent", "-7").code == 0  # a negative number is a value
    assert kv.fetch("n") == -7


def test_set_raw_stores_bytes_unchecked_and_get_raw_writes_them_back(kv: Kv) -> None:
    blob = b"\x00\xff binary\n"
    assert kv("set", "blob", "--raw", stdin=blob).code == 0
    assert kv.fetch("blob", codec=BYTES) == blob
    assert kv("get", "blob", "--raw").out == blob  # no newline added


def test_set_value_argument_keeps_its_exact_bytes(kv: Kv) -> None:
    # argv arrives decoded with surrogateescape; --raw must store the original bytes.
    arg = b"caf\xe9".decode("utf-8", "surrogateescape")
    assert kv("set", "latin1", "--raw", arg).code == 0
    assert kv.fetch("latin1", codec=BYTES) == b"caf\xe9"


def test_get_prints_rich_values_in_their_stored_tagged_form(kv: Kv) -> None:
    value = {
        "when": dt.datetime(2024, 5, 1, 12, tzinfo=dt.timezone.utc),
        "id": uuid.UUID(int=7),
        "price": Decimal("9.99"),
        "raw": b"\x00\x01",
        "pair": (1, 2),
        "$kv": "a user key that looks like a tag",
    }
    kv.put("rich", value)
    result = kv("get", "rich")
    assert result.code == 0
    assert result.out == JSON.encode(value) + b"\n"
    # Piping get into set copies the value exactly: Python reads the same rich value back.
    assert kv("set", "copy", stdin=result.out).code == 0
    assert kv.fetch("copy") == value
    assert kv.fetch("copy", codec=BYTES) == JSON.encode(value)


def test_get_of_bytes_that_are_not_json_fails_and_suggests_raw(kv: Kv) -> None:
    kv.put("pickle", b"\x80\x04K\x01.", codec=BYTES)
    result = kv("get", "pickle")
    assert_one_line_error(result, 4)
    assert "not UTF-8 JSON" in result.err
    assert "kv get --raw" in result.err
    assert "'pickle'" in result.err
    assert result.out == b""
    kv.put("text", b"plain words", codec=BYTES)
    assert_one_line_error(kv("get", "text"), 4)


def test_get_entry_prints_etag_and_expiry_with_the_value(kv: Kv) -> None:
    import json

    assert kv("set", "k", "[1, 2]", "--ttl", "90").code == 0
    result = kv("get", "k", "--entry")
    assert result.code == 0
    entry = json.loads(result.out)
    assert entry["key"] == "k"
    assert entry["value"] == [1, 2]
    assert entry["ttl"] == 90.0
    assert entry["expires_at"] == kv.clock()() + 90
    assert isinstance(entry["etag"], str)
    assert entry["etag"]


def test_missing_key_exits_1_for_get_ttl_and_delete(kv: Kv) -> None:
    for command in ("get", "ttl", "delete"):
        result = kv(command, "nope")
        assert_one_line_error(result, 1)
        assert "no such key" in result.err
        assert "'nope'" in result.err
        assert result.out == b""


# -- conditional writes --------------------------------------------------------------------


def test_if_absent_creates_once(kv: Kv) -> None:
    assert kv("set", "lock", '"me"', "--if-absent").code == 0
    result = kv("set", "lock", '"you"', "--if-absent")
    assert_one_line_error(result, 3)
    assert "already exists" in result.err
    assert kv.fetch("lock") == "me"


def test_if_match_writes_only_over_the_version_read(kv: Kv) -> None:
    import json

    kv("set", "n", "1")
    etag = json.loads(kv("get", "n", "--entry").out)["etag"]
    assert kv("set", "n", "2", "--if-match", etag).code == 0
    stale = kv("set", "n", "3", "--if-match", etag)
    assert_one_line_error(stale, 3)
    assert kv.fetch("n") == 2
    assert_one_line_error(kv("delete", "n", "--if-match", etag), 3)
    assert kv.fetch("n") == 2


def test_if_absent_and_if_match_are_exclusive(kv: Kv) -> None:
    result = kv("set", "k", "1", "--if-absent", "--if-match", "x")
    assert result.code == 2
    assert "not allowed with" in result.err
    assert kv.fetch("k") == "<missing>"


# -- delete, exists, ttl -------------------------------------------------------------------


def test_delete_removes_the_key(kv: Kv) -> None:
    kv("set", "k", "true")
    assert kv("delete", "k").code == 0
    assert kv.fetch("k") == "<missing>"
    assert kv("delete", "k", "--missing-ok").code == 0


def test_exists_prints_and_exits_accordingly(kv: Kv) -> None:
    kv("set", "here", "null")  # a stored null exists
    assert (kv("exists", "here").code, kv("exists", "here").out) == (0, b"true\n")
    assert (kv("exists", "gone").code, kv("exists", "gone").out) == (1, b"false\n")


def test_ttl_prints_seconds_left_then_the_key_expires(kv: Kv) -> None:
    assert kv("set", "session", '{"u": 1}', "--ttl", "60.5").code == 0
    assert kv("ttl", "session").out == b"60.5\n"
    kv.clock().now += 60
    assert kv("ttl", "session").out == b"0.5\n"
    kv.clock().now += 1
    assert kv("get", "session").code == 1
    assert kv("ttl", "session").code == 1


def test_ttl_of_a_key_without_expiry_is_null(kv: Kv) -> None:
    kv("set", "forever", "1")
    assert kv("ttl", "forever").out == b"null\n"


@pytest.mark.parametrize("ttl", ["0", "-5", "nan", "inf", "soon"])
def test_bad_ttl_is_a_usage_error(kv: Kv, ttl: str) -> None:
    result = kv("set", "k", "1", "--ttl", ttl)
    assert result.code == 2
    assert "--ttl" in result.err
    assert kv.fetch("k") == "<missing>"


# -- the program itself --------------------------------------------------------------------


def test_help_documents_exit_codes_and_null_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for code, meaning in EXIT_CODES.items():
        assert f"{code:<4} {meaning}" in text
    assert "kv keys -0" in text
    assert "KV_STORE_URL" in text


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["frobnicate"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"kv (kv-core) {__version__}\n"


def test_a_closed_pipe_stops_quietly(kv: Kv) -> None:
    class ClosedPipe(io.BytesIO):
        def write(self, data: Any) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    kv.put("k", 1)
    kv.monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(ClosedPipe()))
    assert main(["keys"], registry=kv.registry) == 141


def test_module_entry_point_runs_as_a_program() -> None:
    env = {k: v for k, v in os.environ.items() if k != "KV_STORE_URL"}
    done = subprocess.run(
        [sys.executable, "-m", "kv_core._cli", "--store", "memory://", "get", "missing"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    # memory:// would start empty on every call: refused, with the reason (issue 12 item 3).
    assert done.returncode == 2
    assert done.stderr.startswith("kv: memory:// keeps its data inside one process")
    assert done.stderr.count("\n") == 1
    assert done.stdout == ""


def test_a_bare_word_is_stored_as_a_string(kv: Kv) -> None:
    # Issue 12 item 3: 'kv set x hello' is what a shell user types.
    assert kv("set", "greeting", "hello").code == 0
    assert kv.fetch("greeting") == "hello"
    assert kv("get", "greeting").out == b'"hello"\n'
    assert kv("set", "n", "42").code == 0
    assert kv.fetch("n") == 42
    assert kv("set", "yes", "true").code == 0
    assert kv.fetch("yes") is True
    assert kv("set", "phrase", "hello world").code == 0
    assert kv.fetch("phrase") == "hello world"
    assert kv("set", "nan", "NaN").code == 0  # not JSON, so a word like any other
    assert kv.fetch("nan") == "NaN"


def test_string_option_stores_the_value_as_a_string_whatever_it_looks_like(kv: Kv) -> None:
    for text in ("01234", "42", "true", '{"a": 1}', "null"):
        assert kv("set", "s", "--string", text).code == 0
        assert kv.fetch("s") == text


@pytest.mark.parametrize(
    "typo", ['{"name": "Ada"', "[1, 2", '"unterminated', "1e999", "007", "12abc"]
)
def test_text_that_starts_like_json_must_be_valid_json(kv: Kv, typo: str) -> None:
    result = kv("set", "k", typo)
    assert result.code == 4, result
    assert "not JSON" in result.err
    assert "--string" in result.err
    assert kv.fetch("k") == "<missing>"


def test_stdin_values_must_be_json(kv: Kv) -> None:
    result = kv("set", "k", "-", stdin=b"hello\n")
    assert result.code == 4
    assert kv.fetch("k") == "<missing>"
