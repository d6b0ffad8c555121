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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ValueError as err:
        print(f"rpx: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
