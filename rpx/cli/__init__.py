"""The ``rpx`` command line. Exit codes: 0 ok, 2 bad input, 1 failure.

Each command lives in its own module exposing ``register(subparsers)``, which adds a
subparser whose ``func`` default takes the parsed arguments and returns an exit code.

Command modules import only the standard library, numpy and the JAX-free parameter and
preset tables at module level: building the parser, ``--help``, ``--version``,
``rpx models``, ``rpx presets`` and the checks of command-line values run before JAX,
xarray or zarr are imported (tested in ``tests/test_cli.py``).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Modules that each contribute commands (``register(subparsers)``).
_COMMAND_MODULES = (
    "rpx.cli.models",
    "rpx.cli.presets",
    "rpx.cli.calc",
    "rpx.cli.sweep",
    "rpx.cli.info",
    "rpx.cli.verify",
    "rpx.cli.fit",
    "rpx.cli.sample",
    "rpx.cli.predict",
    "rpx.cli.reduce",
    "rpx.cli.sensitivity",
    "rpx.cli.plot",
    "rpx.cli.ljp",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rpx", description="rpx, the resting-potential explorer"
    )
    parser.add_argument(
        "--version", action="version", version=f"rpx {_version()}",
        help="print the rpx version and exit",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rpx")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    """The parser of command ``name`` (for its own usage line in errors)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and name in action.choices:
            return action.choices[name]
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 failure, 2 bad input, 130
    Ctrl-C, 141 when the reader of the output left, as ``rpx calc | head`` does)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(_join_negative_values(argv))
    if extra:  # an unknown option of a command: that command's usage, not rpx's
        _subparser(parser, args.command).error(
            f"unrecognized arguments: {' '.join(extra)}"
        )
    try:
        return int(args.func(args) or 0)
    except ValueError as err:
        print(f"rpx: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError as err:
        if _stdout_open():  # a pipe or socket other than our output: a failure
            from rpx.cli.common import outside_cause

            print(f"rpx: error: {outside_cause(err)}", file=sys.stderr)
            return 1
        return _reader_left()


# A negative number in exponent notation: argparse takes -5 and -0.5 as values (also of
# options with several values, e.g. --band -80 -60), but -1e-9 looks like an option.
_NEGATIVE = r"-(\d+\.?\d*|\.\d+)[eE][-+]?\d+"


def _join_negative_values(argv: Sequence[str] | None) -> list[str]:
    """``--name -1e-9`` as ``--name=-1e-9``, so that a negative value in exponent notation
    reaches the option (and its range check) instead of failing to parse."""
    import re

    args = list(sys.argv[1:] if argv is None else argv)
    out: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        nxt = args[i + 1] if i + 1 < len(args) else None
        if (
            a.startswith("--") and "=" not in a and a != "--" and nxt is not None
            and re.fullmatch(_NEGATIVE, nxt)
        ):
            out.append(f"{a}={nxt}")
            i += 2
            continue
        out.append(a)
        i += 1
    return out


def _stdout_open() -> bool:
    """False when standard output is a pipe whose reader has gone (or cannot be told)."""
    import os
    import select
    import stat

    try:
        fd = sys.stdout.fileno()
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return True
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        return not any(ev & select.POLLERR for _, ev in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


def _reader_left() -> int:
    """The reader of standard output has gone (``| head``): exit quietly, like a shell
    tool killed by SIGPIPE. Standard output is pointed at /dev/null so that Python's
    flush at exit does not raise again (the recipe of the Python ``signal`` docs)."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass  # a replaced sys.stdout (tests) has no descriptor to redirect
    return 141


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
