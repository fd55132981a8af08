"""The ``kv`` command line: read and write any kv store from a shell.

``kv [--store URL] get|set|delete|exists|keys|ttl ...``, ``kv copy SRC DST`` and
``kv import FORMAT SOURCE`` (:mod:`kv_core._cli_import`). Values
travel as JSON text on stdin/stdout, exactly as the JSON codec stores them, so
``kv get a | kv set b`` copies a value byte for byte, rich (tagged) values included.
Parsing, error reporting and exit codes live here; the commands themselves live in
:mod:`kv_core._cli_commands`.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import textwrap
from collections.abc import Sequence
from urllib.parse import parse_qsl, urlsplit

from . import __version__
from ._cli_commands import BadDataError, UsageError, load_input, run_command
from ._cli_import import FORMATS, run_import
from ._errors import (
    InvalidKeyError,
    KeyNotFoundError,
    KVError,
    PreconditionFailedError,
    SerializationError,
    UnsupportedOperationError,
)
from ._registry import Registry, _redact, default_registry

__all__ = ["DEFAULT_STORE_URL", "EXIT_CODES", "build_parser", "main"]

#: The store used when neither ``--store`` nor ``KV_STORE_URL`` says otherwise.
DEFAULT_STORE_URL = "file:./.kv"
ENV_STORE_URL = "KV_STORE_URL"

EXIT_OK = 0
EXIT_NOT_FOUND = 1
EXIT_USAGE = 2
EXIT_PRECONDITION = 3
EXIT_DATA = 4
EXIT_BACKEND = 5
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # what a shell reports for a process killed by SIGPIPE

#: Exit code → meaning; printed in ``kv --help``.
EXIT_CODES: dict[int, str] = {
    EXIT_OK: "success",
    EXIT_NOT_FOUND: "the key does not exist (get, ttl, delete; 'exists' answering false)",
    EXIT_USAGE: "bad arguments, bad store URL, invalid key, or the backend is not installed",
    EXIT_PRECONDITION: "--if-absent found the key, or --if-match had a stale etag",
    EXIT_DATA: "a value is not JSON (input to set, or stored bytes for get: try --raw), "
    "or 'keys -0' met a key holding NUL, or an import source's file is not what FORMAT writes",
    EXIT_BACKEND: "the backend failed or cannot be reached",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
    EXIT_BROKEN_PIPE: "the reader of the output went away (e.g. 'kv keys | head')",
}

_EPILOG = """\
Values are JSON. 'set' takes JSON text ('{"name": "Ada"}', 42, true, '"quoted"') and stores
it as the JSON codec does (compact UTF-8), so Python code reading the key gets the same
value; a bare word that is not JSON ('kv set greeting hello') is stored as a string, and
--string stores VALUE as a string whatever it looks like ('kv set zip --string 01234').
'get' prints the value exactly as stored (rich Python values appear in their tagged form,
{"$kv": ...}), so 'kv get a | kv set b' copies a value. Use --raw on get/set for values that
are not JSON (bytes written with another codec).

'keys' prints one key per line, in no particular order. Keys may contain newlines: use
'kv keys -0' for NUL-terminated output (like 'find -print0'), e.g.
'kv keys -0 | xargs -0 -n1 kv get', or 'kv keys --json' (one JSON string per line), the
only form that can carry a key holding NUL itself.

store URL: --store, else $KV_STORE_URL, else file:./.kv (a folder, needs kv-local).
Examples: file:./data, redis://localhost:6379/0, azure://container. (memory:// is refused:
its data would vanish when the command exits.)

exit codes:
""" + "\n".join(f"  {code:<4} {text}" for code, text in EXIT_CODES.items())


def _positive_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not (seconds > 0 and math.isfinite(seconds)):
        raise argparse.ArgumentTypeError(f"must be positive and finite: {text!r}")
    return seconds


class _CommandParser(argparse.ArgumentParser):
    """Parses a command's arguments with options anywhere: ``kv set KEY --ttl 5 VALUE``.

    Plain argparse gives an optional positional (``[VALUE]``) its default as soon as it
    meets the first positional, then rejects the value that follows an option.
    """

    _nested = False

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        if self._nested:  # parse_known_intermixed_args calls back in (Python < 3.13)
            return super().parse_known_args(args, namespace)
        self._nested = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._nested = False


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``kv`` (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(
        prog="kv",
        description="Read and write a kv store from the shell.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"kv (kv-core) {__version__}")
    store_help = f"store URL (default: ${ENV_STORE_URL}, else {DEFAULT_STORE_URL})"
    parser.add_argument("--store", metavar="URL", help=store_help)
    # The same option after the command name ('kv get KEY --store URL'); SUPPRESS keeps
    # the top-level value when it is not repeated there.
    with_store = _CommandParser(add_help=False)
    with_store.add_argument("--store", metavar="URL", default=argparse.SUPPRESS, help=store_help)

    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=_CommandParser
    )

    get = sub.add_parser("get", parents=[with_store], help="print the value of KEY as JSON")
    get.add_argument("key", metavar="KEY")
    get_mode = get.add_mutually_exclusive_group()
    get_mode.add_argument(
        "--raw", action="store_true", help="write the stored bytes as they are, without a newline"
    )
    get_mode.add_argument(
        "--entry",
        action="store_true",
        help='print {"key", "etag", "expires_at", "ttl", "value"} as one JSON object '
        "(read the etag for a later 'set --if-match')",
    )

    put = sub.add_parser(
        "set",
        parents=[with_store],
        help="store a JSON value under KEY (from VALUE, or stdin when omitted or '-')",
    )
    put.add_argument("key", metavar="KEY")
    put.add_argument(
        "value",
        metavar="VALUE",
        nargs="?",
        default="-",
        help="JSON text, a bare word (stored as a string), or '-' for stdin",
    )
    put.add_argument("--ttl", type=_positive_seconds, metavar="SECONDS", help="expire after")
    cond = put.add_mutually_exclusive_group()
    cond.add_argument("--if-absent", action="store_true", help="only create, never overwrite")
    cond.add_argument("--if-match", metavar="ETAG", help="only overwrite this version")
    put_mode = put.add_mutually_exclusive_group()
    put_mode.add_argument("--raw", action="store_true", help="store the bytes as given, unchecked")
    put_mode.add_argument(
        "--string", action="store_true", help="store VALUE as a JSON string, whatever it holds"
    )

    delete = sub.add_parser("delete", parents=[with_store], help="delete KEY")
    delete.add_argument("key", metavar="KEY")
    delete.add_argument("--if-match", metavar="ETAG", help="only delete this version")
    delete.add_argument(
        "--missing-ok", action="store_true", help="exit 0 even if the key does not exist"
    )

    exists = sub.add_parser(
        "exists", parents=[with_store], help="print true/false; exit 0 if KEY exists, else 1"
    )
    exists.add_argument("key", metavar="KEY")

    keys = sub.add_parser(
        "keys", parents=[with_store], help="list the keys starting with PREFIX, one per line"
    )
    keys.add_argument("prefix", metavar="PREFIX", nargs="?", default="")
    keys_format = keys.add_mutually_exclusive_group()
    keys_format.add_argument(
        "-0", "--null", action="store_true", help="end each key with NUL instead of newline"
    )
    keys_format.add_argument(
        "--json", action="store_true", help="print each key as a JSON string, one per line"
    )

    ttl = sub.add_parser(
        "ttl", parents=[with_store], help="print the seconds KEY has left, or null"
    )
    ttl.add_argument("key", metavar="KEY")

    copy = sub.add_parser(
        "copy",
        help="copy every key (bytes and remaining TTL) from one store URL to another",
        description="Copy every key, as raw bytes with its remaining TTL, from SRC_URL to "
        "DST_URL. Shows progress on stderr when it is a terminal; prints the count at the end.",
    )
    copy.add_argument("src", metavar="SRC_URL")
    copy.add_argument("dst", metavar="DST_URL")
    copy.add_argument("--prefix", default="", help="only keys starting with this")
    copy.add_argument(
        "-n", "--no-clobber", action="store_true", help="skip keys that already exist in DST"
    )

    imp = sub.add_parser(
        "import",
        parents=[with_store],
        help="copy the data another library wrote (aiokv, asyncblobdict, py-key-value) "
        "into the store",
        description=textwrap.fill(
            "Copy every entry of SOURCE, written by another library, into the store: values "
            "in kv's plain JSON form (rich types restored where the source tagged them), "
            "remaining TTLs kept (expired entries skipped), py-key-value collections as "
            "namespaces. Nothing is written to SOURCE. Shows progress on stderr when it is a "
            "terminal; prints the counts of keys read, written and skipped at the end.",
            88,
        )
        + "\n\nformats:\n"
        + "\n".join(f"  {name:<14} {what}" for name, what in FORMATS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    imp.add_argument("format", metavar="FORMAT", choices=list(FORMATS), help=", ".join(FORMATS))
    imp.add_argument("source", metavar="SOURCE", help="file, folder or URL (see formats)")
    imp.add_argument(
        "--dry-run", action="store_true", help="read and check everything, write nothing"
    )
    return parser


def _secrets_in(url: str) -> list[str]:
    """Parts of ``url`` that must never be printed (password, key-like query values)."""
    try:
        parts = urlsplit(url)
        found = [parts.password or ""]
        sensitive = ("password", "secret", "key", "token", "sig", "credential")
        found += [v for k, v in parse_qsl(parts.query) if any(s in k.lower() for s in sensitive)]
    except ValueError:
        return []
    return [s for s in found if len(s) >= 3]


def _scrub(message: str, urls: Sequence[str]) -> str:
    """Redact ``urls`` and their secrets from ``message`` (defence in depth)."""
    for url in urls:
        if url:
            message = message.replace(url, _redact(url))
            for secret in _secrets_in(url):
                message = message.replace(secret, "***")
    return " ".join(message.split())  # one line, whatever the backend's message held


def _exit_code(exc: KVError) -> int:
    if isinstance(exc, KeyNotFoundError):
        return EXIT_NOT_FOUND
    if isinstance(exc, (InvalidKeyError, UnsupportedOperationError, UsageError)):
        return EXIT_USAGE
    if isinstance(exc, PreconditionFailedError):
        return EXIT_PRECONDITION
    if isinstance(exc, (SerializationError, BadDataError)):
        return EXIT_DATA
    return EXIT_BACKEND


def main(argv: Sequence[str] | None = None, *, registry: Registry | None = None) -> int:
    """Run ``kv`` with ``argv`` (default ``sys.argv[1:]``) and return the exit code.

    Args:
        argv: The arguments, without the program name.
        registry: Where store URLs are looked up (default: :data:`kv_core.default_registry`);
            tests pass their own.
    """
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    from_default = False
    if args.command != "copy" and not args.store:
        args.store = os.environ.get(ENV_STORE_URL) or DEFAULT_STORE_URL
        from_default = args.store == DEFAULT_STORE_URL
    urls = [args.src, args.dst] if args.command == "copy" else [args.store]
    if registry is None and any(u.split(":", 1)[0].lower() == "memory" for u in urls):
        _fail(
            "memory:// keeps its data inside one process, so every kv command would start "
            "empty: use a folder (file:./data) or a server URL"
        )
        return EXIT_USAGE
    # An import's SOURCE may be a URL with a password too: never print it.
    secret_urls = [*urls, args.source] if args.command == "import" else urls
    try:
        if args.command == "set":
            load_input(args)  # stdin is read before the event loop starts
        if args.command == "import":
            return asyncio.run(run_import(args, registry or default_registry))
        return asyncio.run(run_command(args, registry or default_registry))
    except KVError as exc:
        message = _scrub(str(exc), secret_urls)
        if from_default and isinstance(exc, UnsupportedOperationError):
            message += (
                f" (the default store is {DEFAULT_STORE_URL}; "
                f"choose another with --store or ${ENV_STORE_URL})"
            )
        _fail(message)
        return _exit_code(exc)
    except BrokenPipeError:
        # The reader went away ('kv keys | head'): stop quietly, like other Unix tools.
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        _fail("interrupted")
        return EXIT_INTERRUPTED
    except OSError as exc:  # reading stdin, writing stdout, reading an import's source
        _fail(_scrub(f"{type(exc).__name__}: {exc}", secret_urls))
        return EXIT_BACKEND


def _fail(message: str) -> None:
    print(f"kv: {message}", file=sys.stderr)


def _silence_stdout() -> None:
    # Python would otherwise report the broken pipe again while flushing at exit.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass  # not a real file descriptor (tests): nothing to silence


if __name__ == "__main__":
    raise SystemExit(main())
