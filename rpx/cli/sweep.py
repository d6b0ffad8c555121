"""The ``sweep`` command: evaluate a parameter space into a zarr store."""

from __future__ import annotations

import argparse

from rpx.cli.common import add_run_options, check_run_options, command, read_spec_file


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="evaluate a parameter space into a zarr store")
    p.add_argument("spec", help="TOML sweep spec (see examples/)")
    p.add_argument("-o", "--output", required=True, help="store path or fsspec URL")
    add_run_options(p)
    p.set_defaults(func=command(_sweep))


def _sweep(args: argparse.Namespace) -> int:
    options = check_run_options(args)  # bad options and unreadable specs: before JAX loads
    read_spec_file(args.spec)

    import jax

    from rpx.cli.common import run_maybe_distributed
    from rpx.sweep.runner import describe_sweep, run_sweep
    from rpx.sweep.spec import load_spec

    spec = load_spec(args.spec)
    if spec.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    if args.dry_run:
        print(describe_sweep(spec, args.output, storage_options=options))
        return 0
    kw = dict(
        resume=args.resume, overwrite=args.overwrite, quiet=args.quiet,
        storage_options=options, force=args.force,
    )
    summary = run_maybe_distributed(args, run_sweep, spec, args.output, **kw)
    print(
        f"{args.output}: {summary['points']:,} points in {summary['chunks']} chunks "
        f"({summary['written']} written, {summary['skipped']} already done)"
    )
    return 0
