"""The ``sample`` command: posterior draws of model parameters from a CSV of measured potentials."""

from __future__ import annotations

import argparse
import math
from typing import TYPE_CHECKING

import numpy as np

from rpx.cli.common import add_debug_option, command
from rpx.physics.params import PARAMS

if TYPE_CHECKING:
    import xarray as xr


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sample",
        help="sample the posterior of model parameters (NUTS) given measured resting potentials",
        description=(
            "Posterior draws (BlackJAX NUTS) of free parameters of a model, per cell, from a "
            "CSV of conditions (columns named by parameter, e.g. K_o in mM), measured V (mV), "
            "optional V_sd (mV; else a noise sd per cell is sampled) and optional cell. "
            "Priors: uniform within --bounds (log-uniform for positive log-scaled "
            "parameters), by default 3 decades either side of the preset value. Lines "
            "starting with # are comments."
        ),
    )
    p.add_argument("data", help="CSV file of measurements")
    p.add_argument("--model", default="ghk", help="registered model (default: ghk)")
    p.add_argument("--free", required=True, help="comma-separated free parameters, e.g. P_Na,P_Cl")
    p.add_argument("--preset", default="default", help="preset for all other values")
    p.add_argument(
        "--fixed", action="append", default=[], metavar="NAME=VALUE",
        help="override a preset value (repeatable)",
    )
    p.add_argument(
        "--bounds", action="append", default=[], metavar="NAME=LO:HI",
        help="prior box of a free parameter, in its units (repeatable)",
    )
    p.add_argument(
        "--center", action="append", default=[], metavar="NAME=VALUE",
        help="centre of the default 6-decade prior box of a free parameter (repeatable)",
    )
    p.add_argument("--draws", type=int, default=1000, help="draws per chain (default 1000)")
    p.add_argument("--chains", type=int, default=4, help="chains per cell (default 4)")
    p.add_argument("--warmup", type=int, default=1000, help="adaptation steps (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument(
        "--target-accept", type=float, default=0.8, help="target acceptance rate (default 0.8)"
    )
    p.add_argument(
        "--max-tree-depth", type=int, default=10, help="maximum NUTS doublings (default 10)"
    )
    p.add_argument(
        "--noise-bounds", metavar="LO:HI", default="0.01:100",
        help="log-uniform prior box of the noise sd in mV when the data have no V_sd "
             "(default 0.01:100)",
    )
    p.add_argument(
        "--cell-batch", type=int, default=None, metavar="N",
        help="cells per compiled call (default: 1 on a CPU, 4096 on an accelerator)",
    )
    p.add_argument(
        "--dtype", choices=("float32", "float64"), default="float64", help="precision"
    )
    p.add_argument(
        "--show-cells", type=int, default=20, metavar="N",
        help="list at most N cells, then a summary over all (default 20)",
    )
    p.add_argument("-o", "--output", help="write the posterior Dataset to this zarr store")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store")
    add_debug_option(p)
    p.set_defaults(func=command(_sample))


def _pairs(items: list[str], flag: str) -> dict[str, str]:
    # As rpx.cli.fit._pairs.
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ValueError(f"{flag} takes NAME=VALUE, got {item!r}")
        out[name.strip()] = value.strip()
    return out


def _number(text: str, flag: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{flag}: {text!r} is not a number") from None


def _range(text: str, flag: str, name: str = "") -> tuple[float, float]:
    lo, sep, hi = text.partition(":")
    if not sep:
        raise ValueError(f"{flag} takes {name + '=' if name else ''}LO:HI, got {text!r}")
    return _number(lo, flag), _number(hi, flag)


def table(ds: xr.Dataset, show_cells: int = 20) -> str:
    """Posterior mean ± sd, 95 % interval, R-hat and bulk ESS per parameter (and cell).

    With more than ``show_cells`` cells, the first ``show_cells`` are listed, then per
    parameter the median over cells of the posterior mean and sd and of the limits of
    the 95 % intervals, the largest R-hat, and how many cells converged and have no
    divergences.
    """
    from rpx.analysis.sample import convergence_failures

    names = [str(n) for n in ds["param"].values]
    cells = ds["cell"].values if "cell" in ds.dims else [None]
    lines = [
        f"model {ds.attrs['model']}  preset {ds.attrs['preset']}  "
        f"{ds.attrs['chains']} chains x {ds.attrs['draws']} draws  ({ds.attrs['likelihood']})"
    ]
    width = max(len(n) for n in names)
    for cell in cells[:show_cells]:
        row = ds if cell is None else ds.sel(cell=cell)
        if cell is not None:
            lines.append(f"cell {cell}:")
        for n in names:
            x = row[n].values.ravel()
            lo, hi = np.percentile(x, [2.5, 97.5])
            r = row.sel(param=n)
            flag = "" if bool(r["determined"]) else "  prior-dominated"
            lines.append(
                f"  {n:<{width}} = {np.mean(x):.4g} ± {np.std(x, ddof=1):.2g} "
                f"[{lo:.4g}, {hi:.4g}] {ds[n].attrs.get('units', '')}  "
                f"R-hat {float(r['rhat']):.3f}  ESS {float(r['ess_bulk']):.0f}{flag}"
            )
        status = "converged"
        if not bool(row["converged"]):
            why = convergence_failures(row, int(ds.attrs["chains"]))
            status = "NOT converged" + (f": {why}" if why else "")
        lines.append(f"  {int(row['divergences'])} divergences, {status}")
    if len(cells) > show_cells:
        n_cells = len(cells)
        lines.append(f"... {n_cells - show_cells:,} more cells (all in the result Dataset)")
        lines.append(f"all {n_cells:,} cells: median posterior mean ± sd [median 95 % "
                     "interval], largest R-hat")
        for n in names:
            mean = float(np.nanmedian(ds[f"{n}_mean"].values))
            sd = float(np.nanmedian(ds[f"{n}_sd"].values))
            worst = float(np.nanmax(ds["rhat"].sel(param=n).values))
            x = ds[n].transpose("cell", ...).values.reshape(n_cells, -1)
            lo, hi = np.nanmedian(np.percentile(x, [2.5, 97.5], axis=1), axis=1)
            lines.append(
                f"  {n:<{width}} = {mean:.4g} ± {sd:.2g} [{lo:.4g}, {hi:.4g}] "
                f"{ds[n].attrs.get('units', '')}  max R-hat {worst:.3f}"
            )
        lines.append(
            f"  converged {int(ds['converged'].sum()):,}/{n_cells:,}, with divergences "
            f"{int((ds['divergences'] > 0).sum()):,}/{n_cells:,}"
        )
    return "\n".join(lines)


def _sample(args: argparse.Namespace) -> int:
    fixed = {k: _number(v, "--fixed") for k, v in _pairs(args.fixed, "--fixed").items()}
    center = {k: _number(v, "--center") for k, v in _pairs(args.center, "--center").items()}
    bounds = {
        name: _range(text, "--bounds", name)
        for name, text in _pairs(args.bounds, "--bounds").items()
    }
    noise_bounds = _range(args.noise_bounds, "--noise-bounds")
    if args.show_cells < 0:
        raise ValueError(f"--show-cells must be >= 0, got {args.show_cells}")
    for name in [*fixed, *bounds, *center]:
        if name not in PARAMS:
            raise ValueError(f"unknown parameter {name!r}; known parameters: {', '.join(PARAMS)}")
    if not math.isfinite(args.target_accept):
        raise ValueError(f"--target-accept must be in (0, 1), got {args.target_accept}")

    import jax

    if args.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    from rpx.sweep.interrupt import interruptible
    from rpx.sweep.store import check_writable, write_dataset_store

    if args.output:
        check_writable(args.output, overwrite=args.overwrite)
    options = {
        "data": str(args.data), "model": args.model, "free": args.free,
        "preset": args.preset, "fixed": fixed, "bounds": bounds, "center": center,
        "draws": args.draws, "chains": args.chains, "warmup": args.warmup,
        "seed": args.seed, "target_accept": args.target_accept,
        "max_tree_depth": args.max_tree_depth, "noise_bounds": noise_bounds,
        "cell_batch": args.cell_batch, "dtype": args.dtype,
    }
    interrupted = f"interrupted; nothing was written to {args.output}" if args.output else (
        "interrupted")
    with interruptible(lambda: interrupted, grace=0.5):
        ds = _run(args, fixed, bounds, center, noise_bounds)
        if args.output:
            write_dataset_store(ds, args.output, "posterior", options, overwrite=args.overwrite)
    print(table(ds, args.show_cells))
    if args.output:
        print(f"wrote {args.output}")
    return 0 if bool(np.all(ds["converged"].values)) else 1


def _run(
    args: argparse.Namespace, fixed: dict, bounds: dict, center: dict, noise_bounds: tuple
) -> xr.Dataset:
    from rpx.analysis.sample import sample

    return sample(
        args.data,
        model=args.model,
        free=args.free,
        fixed=fixed,
        bounds=bounds,
        preset=args.preset,
        center=center,
        draws=args.draws,
        chains=args.chains,
        warmup=args.warmup,
        seed=args.seed,
        target_accept=args.target_accept,
        max_tree_depth=args.max_tree_depth,
        noise_bounds=noise_bounds,
        cell_batch=args.cell_batch,
        dtype=args.dtype,
    )
