"""The ``predict`` command: posterior predictive maps of V over a sweep space."""

from __future__ import annotations

import argparse
import math
from typing import TYPE_CHECKING

from rpx.cli.common import add_debug_option, command, read_spec_file

if TYPE_CHECKING:
    import xarray as xr


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="posterior predictive probability of a V band, and V quantiles, over a space",
        description=(
            "For each cell of a posterior store (rpx sample ... -o post.zarr) and each point "
            "of the space of a TOML sweep spec (same model; free parameters neither swept "
            "nor fixed there): the fraction of posterior draws with LO <= V <= HI (--band) "
            "and quantiles of V over the draws (--quantiles), or both pooled over cells. "
            "The space is streamed chunk by chunk; the draws x space cube is never stored. "
            "Measurement noise is not added."
        ),
    )
    p.add_argument("posterior", help="posterior store written by `rpx sample -o`")
    p.add_argument("spec", help="TOML sweep spec of the conditions (see examples/)")
    p.add_argument("--band", nargs=2, type=float, metavar=("LO", "HI"), help="V band in mV")
    p.add_argument(
        "--quantiles", metavar="Q,Q,...",
        help="comma-separated probabilities in [0, 1], e.g. 0.05,0.5,0.95",
    )
    p.add_argument("--pooled", action="store_true", help="pool the draws of all cells")
    p.add_argument(
        "--draws", type=int, default=None, metavar="N",
        help="use N draws per cell, evenly spread over the chains (default: all)",
    )
    p.add_argument(
        "--max-evaluations", type=int, default=1 << 22, metavar="N",
        help="model evaluations per compiled call (default 4194304)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("-o", "--output", help="write the result Dataset to this zarr store")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store")
    add_debug_option(p)
    p.set_defaults(func=command(_predict))


def parse_quantiles(text: str | None) -> tuple[float, ...]:
    """``"0.05,0.5"`` → (0.05, 0.5); ValueError naming ``--quantiles`` otherwise."""
    if text is None:
        return ()
    out = []
    for item in text.split(","):
        try:
            q = float(item)
        except ValueError:
            raise ValueError(f"--quantiles: {item.strip()!r} is not a number") from None
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"--quantiles must lie in [0, 1], got {q:g}")
        out.append(q)
    return tuple(out)


def _predict(args: argparse.Namespace) -> int:
    # Bad options and unreadable specs: before JAX loads.
    qs = parse_quantiles(args.quantiles)
    if args.band is None and not qs:
        raise ValueError("give --band LO HI and/or --quantiles")
    if args.band is not None:
        lo, hi = args.band
        if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
            raise ValueError(f"--band needs finite LO <= HI in mV, got {lo:g} {hi:g}")
    if args.draws is not None and args.draws < 1:
        raise ValueError(f"--draws must be a positive integer, got {args.draws}")
    if args.max_evaluations < 1:
        raise ValueError(f"--max-evaluations must be a positive integer, got "
                         f"{args.max_evaluations}")
    d = read_spec_file(args.spec)

    import jax

    if d.get("dtype") == "float64":
        jax.config.update("jax_enable_x64", True)
    from rpx.analysis.predictive import KIND, posterior_predictive
    from rpx.sweep.interrupt import interruptible
    from rpx.sweep.store import check_writable, write_dataset_store

    if args.output:
        check_writable(args.output, overwrite=args.overwrite)
    options = {
        "posterior": str(args.posterior), "spec": str(args.spec),
        "band": list(args.band) if args.band is not None else None, "quantiles": list(qs),
        "pooled": args.pooled, "draws": args.draws, "max_evaluations": args.max_evaluations,
    }
    message = f"interrupted; nothing was written to {args.output}" if args.output else (
        "interrupted")
    with interruptible(lambda: message, grace=0.5):
        ds = posterior_predictive(
            args.posterior, args.spec, band=args.band, quantiles=qs or None,
            pooled=args.pooled, draws=args.draws, max_evaluations=args.max_evaluations,
            quiet=args.quiet,
        )
        if args.output:
            write_dataset_store(ds, args.output, KIND, options, overwrite=args.overwrite)
    print(summary(ds))
    if args.output:
        print(f"wrote {args.output}")
    return 0


def summary(ds: xr.Dataset) -> str:
    """A few lines: the space, the draws, and the spread of each result over it."""
    import json

    import numpy as np

    space = [d for d in ds["V_nan_fraction"].dims if d != "cell"]
    shape = " x ".join(f"{d}={ds.sizes[d]}" for d in space)
    cells = "pooled over " if ds.attrs["pooled"] else ""
    lines = [
        f"posterior predictive of model {ds.attrs['model']} (preset "
        f"{json.loads(ds.attrs['spec'])['preset']}) over {shape}: {cells}"
        f"{ds.attrs['cells']} cell(s) x {ds.attrs['draws_per_cell']} draws"
    ]

    def spread(x: np.ndarray) -> str:
        x = x[np.isfinite(x)]
        if x.size == 0:
            return "no defined value"
        lo, med, hi = np.min(x), np.median(x), np.max(x)
        return f"min {lo:.3g}, median {med:.3g}, max {hi:.3g}"

    if "V_band_probability" in ds:
        lo, hi = ds.attrs["band"]
        lines.append(f"P({lo:g} <= V <= {hi:g} mV): "
                     f"{spread(ds['V_band_probability'].values)} over cells and points")
    if "V_quantile" in ds:
        for q in ds["quantile"].values:
            lines.append(f"V quantile {q:g} (mV): "
                         f"{spread(ds['V_quantile'].sel(quantile=q).values)}")
    nan = float(np.max(ds["V_nan_fraction"].values))
    if nan > 0:
        lines.append(f"draws with no valid V: up to {nan:.3g} of a point's draws")
    if "converged" in ds and not bool(np.all(ds["converged"].values)):
        n = int(np.sum(~ds["converged"].values.astype(bool)))
        lines.append(f"{n} cell(s) of the posterior are NOT converged (rpx info on the "
                     "posterior store names the failed checks)")
    return "\n".join(lines)
