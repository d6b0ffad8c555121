"""The ``reduce`` command: reductions of a parameter space, stored instead of the cube."""

from __future__ import annotations

import argparse
import dataclasses

from rpx.cli.common import add_run_options, command, parse_storage_options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reduce",
        help="histograms, marginals, extremes and band fractions of a space, without the cube",
    )
    p.add_argument("spec", help="TOML sweep spec, optionally with a [reduce] table")
    p.add_argument("-o", "--output", required=True, help="results store path or fsspec URL")
    p.add_argument(
        "--band", nargs=2, type=float, metavar=("LO", "HI"), help="V band in mV (default -80 -60)"
    )
    p.add_argument("--pairs", action="store_true", help="also reduce over every pair of axes")
    p.add_argument(
        "--checkpoint-s", type=float, default=30.0, metavar="S",
        help="seconds between resumable checkpoints (0: after every chunk)",
    )
    add_run_options(p)
    p.set_defaults(func=command(_reduce))


def _reduce(args: argparse.Namespace) -> int:
    import jax

    from rpx.cli.common import run_maybe_distributed
    from rpx.sweep.reduce import describe_reduce, load_reduce_spec, run_reduce

    spec, red = load_reduce_spec(args.spec)
    if args.band is not None:
        red = dataclasses.replace(red, band=tuple(args.band))
    if args.pairs:
        red = dataclasses.replace(red, pairs=True)
    if spec.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    if args.dry_run:
        print(describe_reduce(spec, args.output, red))
        return 0
    kw = dict(
        resume=args.resume, overwrite=args.overwrite, quiet=args.quiet,
        storage_options=parse_storage_options(args.storage_options),
        checkpoint_s=args.checkpoint_s, force=args.force,
    )
    summary = run_maybe_distributed(args, run_reduce, spec, args.output, red, **kw)
    print(
        f"{args.output}: {summary['points']:,} points in {summary['chunks']} chunks reduced "
        f"({summary['reduced']} this run, {summary['skipped']} already merged) "
        + (f"in {summary['tasks']} dask task(s)" if "tasks" in summary
           else f"on {summary['devices']} device(s)")
    )
    return 0
