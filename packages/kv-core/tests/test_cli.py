"""The ``kv`` command line, run in-process against memory stores of a private registry.

Only kv-core is needed: a ``testmem://NAME`` scheme maps each NAME to a dict and a clock
that outlive single invocations, so one command sees what the previous one wrote.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from kv_core import (
    BYTES,
    JSON,
    BackendUnavailableError,
    MemoryDriver,
    RawEntry,
    Registry,
    Store,
    __version__,
)
from kv_core._cli import DEFAULT_STORE_URL, EXIT_CODES, main
from kv_core.testing import WEIRD_KEYS


class FrozenClock:
    """A clock that moves only when told to, so TTLs print exactly."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Result:
    code: int
    out: bytes
    err: str

    @property
    def text(self) -> str:
        return self.out.decode("utf-8")


@dataclass
class Kv:
    """Runs ``main()`` in-process and keeps the ``testmem://`` stores between runs."""

    capsys: pytest.CaptureFixture[bytes]
    monkeypatch: pytest.MonkeyPatch
    data: dict[str, dict[str, RawEntry]] = field(default_factory=dict)
    clocks: dict[str, FrozenClock] = field(default_factory=dict)
    registry: Registry = field(default_factory=lambda: Registry(use_entry_points=False))

    def __post_init__(self) -> None:
        self.registry.register("testmem", self._factory)

    def _factory(self, url: str, **options: Any) -> MemoryDriver:
        name = url.split("://", 1)[1]
        return MemoryDriver(data=self.data.setdefault(name, {}), clock=self.clock(name))

    def clock(self, name: str = "main") -> FrozenClock:
        # Each store gets its own clock, far apart, so copy must translate expiries.
        return self.clocks.setdefault(name, FrozenClock(1_000_000.0 * (len(self.clocks) + 1)))

    def __call__(self, *argv: str, stdin: bytes | None = None) -> Result:
        self.capsys.readouterr()  # drop anything earlier
        if stdin is not None:
            self.monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        code = main(list(argv), registry=self.registry)
        out, err = self.capsys.readouterr()
        return Result(code, out, err.decode("utf-8"))

    def store(self, name: str = "main") -> Store[Any]:
        return self.registry.open_store(f"testmem://{name}")

    def put(self, key: str, value: Any, *, codec: Any = JSON, ttl: float | None = None) -> None:
        async def go() -> None:
            async with self.store().with_codec(codec) as s:
                await s.set(key, value, ttl=ttl)

        asyncio.run(go())

    def fetch(self, key: str, *, name: str = "main", codec: Any = JSON) -> Any:
        async def go() -> Any:
            async with self.store(name).with_codec(codec) as s:
                return await s.get(key, default="<missing>")

        return asyncio.run(go())


@pytest.fixture
def kv(capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch) -> Kv:
    monkeypatch.setenv("KV_STORE_URL", "testmem://main")
    return Kv(capsysbinary, monkeypatch)


def assert_one_line_error(result: Result, code: int) -> None:
    assert result.code == code, result
    assert result.err.startswith("kv: ")
    assert result.err.count("\n") == 1, result.err
    assert "Traceback" not in result.err


# -- get and set ---------------------------------------------------------------------------


def test_set_then_get_prints_the_json_text_as_given(kv: Kv) -> None:
    assert kv("set", "user/1", '{"name": "Ada", "tags": [1, 2.5, null]}').code == 0
    result = kv("get", "user/1")
    assert result.code == 0
    assert result.out == b'{"name": "Ada", "tags": [1, 2.5, null]}\n'
    assert kv.fetch("user/1") == {"name": "Ada", "tags": [1, 2.5, None]}


@pytest.mark.parametrize("value_arg", [[], ["-"]])
def test_set_reads_stdin_when_value_is_omitted_or_dash(kv: Kv, value_arg: list[str]) -> None:
    # A BOM and the trailing newline of 'echo' are not part of the value.
    result = kv("set", "k", *value_arg, stdin=b'\xef\xbb\xbf  {"\xc3\xa9": "\xe2\x82\xac"}\n')
    assert result.code == 0, result
    assert kv.fetch("k") == {"é": "€"}
    assert kv("get", "k").out == '{"é": "€"}\n'.encode()


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
        shown = os.read(main_fd, 65536).decode("utf-8")
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


def test_default_registry_opens_memory_through_entry_points(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--store", "memory://", "exists", "k"]) == 1
    assert capsys.readouterr().out == "false\n"


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
    assert done.returncode == 1
    assert done.stderr == "kv: no such key (key='missing', store=memory://)\n"
    assert done.stdout == ""
