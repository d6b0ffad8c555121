"""The ``fit`` command: fit free parameters of a model to a CSV of measured potentials."""

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
        "fit",
        help="fit model parameters to measured resting potentials (CSV) and print estimates ± SE",
        description=(
            "Fit free parameters of a model to a CSV of conditions (columns named by "
            "parameter, e.g. K_o in mM), measured V (mV), optional V_sd (mV) and optional "
            "cell. Lines starting with # are comments."
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
        "--init", action="append", default=[], metavar="NAME=VALUE",
        help="starting value of a free parameter (repeatable)",
    )
    p.add_argument(
        "--bounds", action="append", default=[], metavar="NAME=LO:HI",
        help="bounds of a free parameter, in its units (repeatable)",
    )
    p.add_argument("--starts", type=int, default=8, help="random starts per cell (default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random starts")
    p.add_argument("--adam-steps", type=int, default=200, help="Adam iterations (default 200)")
    p.add_argument("--lm-steps", type=int, default=40, help="Levenberg-Marquardt iterations")
    p.add_argument(
        "--dtype", choices=("float32", "float64"), default="float64",
        help="precision (default float64; rpx.fit in Python defaults to JAX's float dtype)"
    )
    p.add_argument(
        "--show-cells", type=int, default=20, metavar="N",
        help="list at most N cells, then a summary over all (default 20)",
    )
    p.add_argument(
        "--uncertainty", choices=("gauss_newton", "profile"), default="gauss_newton",
        help="also compute profile-likelihood intervals (profile); default gauss_newton",
    )
    p.add_argument(
        "--level", type=float, default=0.95, help="level of the profile intervals (0.95)"
    )
    p.add_argument("-o", "--output", help="write the result Dataset to this zarr store")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store")
    add_debug_option(p)
    p.set_defaults(func=command(_fit))


def _pairs(items: list[str], flag: str) -> dict[str, str]:
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


def _fmt(x: float, se: float) -> str:
    if not math.isfinite(se):
        return f"{x:.4g} ± n/a"
    return f"{x:.4g} ± {se:.2g}"


def table(ds: xr.Dataset, show_cells: int = 20) -> str:
    """Estimates ± standard errors of a fit result, one line per parameter (and cell).

    With more than ``show_cells`` cells, the first ``show_cells`` are listed and a
    summary over all cells follows: per parameter the median estimate, its 2.5–97.5 %
    spread over cells and the median standard error (with profile intervals: the
    median lower and upper limits over cells and how many cells have both sides
    closed), then how many cells converged and are identifiable.
    """
    estimates = list(ds.attrs["free"])
    # a derived ratio is an estimate where it has a standard error (its profile
    # limits ``_ci_lo``/``_ci_hi`` and profile curves are not)
    estimates += [n for n in ds.data_vars if "_over_" in n and f"{n}_se" in ds.data_vars]
    cells = ds["cell"].values if "cell" in ds.dims else [None]
    lines = [f"model {ds.attrs['model']}  preset {ds.attrs['preset']}  ({ds.attrs['sd']})"]
    held = [h for h in ds.attrs.get("held_fixed", []) if h in ds]
    width = max(len(n) for n in [*estimates, *held])
    for cell in cells[:show_cells]:
        row = ds if cell is None else ds.sel(cell=cell)
        if cell is not None:
            lines.append(f"cell {cell}:")
        for n in estimates:
            units = ds[n].attrs.get("units", "")
            x, se = float(row[n]), float(row[f"{n}_se"])
            ci = ""
            if f"{n}_ci_lo" in ds:
                lo, hi = float(row[f"{n}_ci_lo"]), float(row[f"{n}_ci_hi"])
                ci = f"  {100 * ds.attrs['profile_level']:g} % profile CI [{lo:.4g}, {hi:.4g}]"
            if ci and not _closed_here(row, n, lo, hi):
                ci += " (open: not practically identifiable)"
            lines.append(f"  {n:<{width}} = {_fmt(x, se):<24} {units}{ci}")
        for h in held:
            # A parameter held at its start: the estimates and SEs above hold given it.
            ci = ""
            if f"{h}_ci_lo" in ds:
                lo, hi = float(row[f"{h}_ci_lo"]), float(row[f"{h}_ci_hi"])
                ci = f"  {100 * ds.attrs['profile_level']:g} % profile CI [{lo:.4g}, {hi:.4g}]"
            lines.append(
                f"  {h:<{width}} = {float(row[h]):.4g} {ds[h].attrs.get('units', '')}  held "
                f"fixed (not identifiable; the values above are given it){ci}"
            )
        status = "converged" if bool(row["converged"]) else "NOT converged"
        ident = "" if bool(row["identifiable"]) else ", NOT identifiable"
        lines.append(
            f"  rmse {float(row['rmse']):.3g} mV over {int(row['n_points'])} points, "
            f"{status}{ident}"
        )
    if len(cells) > show_cells:
        n_cells = len(cells)
        lines.append(f"... {n_cells - show_cells:,} more cells (all in the result Dataset)")
        lines.append(f"all {n_cells:,} cells: median [2.5 %, 97.5 %] of the estimates, median SE")
        for n in estimates:
            x, se = ds[n].values, ds[f"{n}_se"].values
            lo, mid, hi = np.nanpercentile(x, [2.5, 50.0, 97.5])
            med_se = float(np.nanmedian(se)) if np.isfinite(se).any() else math.nan
            ci = ""
            if f"{n}_ci_lo" in ds:
                ci_lo = np.asarray(ds[f"{n}_ci_lo"].values, np.float64)
                ci_hi = np.asarray(ds[f"{n}_ci_hi"].values, np.float64)
                closed = int(np.sum(np.isfinite(ci_lo) & np.isfinite(ci_hi)
                                    & _closed(ds, n, ci_lo.shape)))
                ci = (f"  {100 * ds.attrs['profile_level']:g} % profile CI median "
                      f"[{np.nanmedian(ci_lo):.4g}, {np.nanmedian(ci_hi):.4g}], "
                      f"closed in {closed:,}/{n_cells:,}")
            lines.append(
                f"  {n:<{width}} = {mid:.4g} [{lo:.4g}, {hi:.4g}], SE {med_se:.2g}  "
                f"{ds[n].attrs.get('units', '')}{ci}"
            )
        lines.append(
            f"  converged {int(ds['converged'].sum()):,}/{n_cells:,}, "
            f"identifiable {int(ds['identifiable'].sum()):,}/{n_cells:,}"
        )
    return "\n".join(lines)


def _closed_here(row: xr.Dataset, name: str, lo: float, hi: float) -> bool:
    """Whether one cell's profile interval of ``name`` is closed on both sides."""
    if "practically_identifiable" in row and name in row["profile_param"].values:
        return bool(row["practically_identifiable"].sel(profile_param=name))
    return math.isfinite(lo) and math.isfinite(hi) and lo > 0


def _closed(ds: xr.Dataset, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """Per cell, whether the profile interval of ``name`` is closed on both sides
    (``practically_identifiable``; a ratio ``<n>_over_<held>`` by that of ``n`` profiled
    with the held one fixed: its limits are finite and inside the range)."""
    if "practically_identifiable" in ds and name in ds["profile_param"].values:
        return np.asarray(ds["practically_identifiable"].sel(profile_param=name).values, bool)
    lo = np.asarray(ds[f"{name}_ci_lo"].values, np.float64)
    return np.broadcast_to(lo > 0, shape)


def _fit(args: argparse.Namespace) -> int:
    import jax

    if args.dtype == "float64":
        jax.config.update("jax_enable_x64", True)

    fixed = {k: _number(v, "--fixed") for k, v in _pairs(args.fixed, "--fixed").items()}
    init = {k: _number(v, "--init") for k, v in _pairs(args.init, "--init").items()}
    bounds = {}
    for name, text in _pairs(args.bounds, "--bounds").items():
        lo, sep, hi = text.partition(":")
        if not sep:
            raise ValueError(f"--bounds takes NAME=LO:HI, got {name}={text}")
        bounds[name] = (_number(lo, "--bounds"), _number(hi, "--bounds"))
    if args.show_cells < 0:
        raise ValueError(f"--show-cells must be >= 0, got {args.show_cells}")
    for name in [*fixed, *init, *bounds]:
        if name not in PARAMS:
            raise ValueError(f"unknown parameter {name!r}; known parameters: {', '.join(PARAMS)}")
    from rpx.sweep.interrupt import interruptible
    from rpx.sweep.store import check_writable, write_dataset_store

    if args.output:
        check_writable(args.output, overwrite=args.overwrite)
    interrupted = f"interrupted; nothing was written to {args.output}" if args.output else (
        "interrupted")
    with interruptible(lambda: interrupted, grace=0.5):
        ds = _run_fit(args, fixed, init, bounds)
        if args.output:
            write_dataset_store(
                ds, args.output, "fit", _fit_options(args, fixed, init, bounds),
                overwrite=args.overwrite,
            )
    print(table(ds, args.show_cells))
    if args.output:
        print(f"wrote {args.output}")
    return 0 if bool(np.all(ds["converged"].values)) else 1


def _fit_options(args: argparse.Namespace, fixed: dict, init: dict, bounds: dict) -> dict:
    """The options of a fit as stored with its result (with the data file's SHA-256)."""
    import hashlib
    from pathlib import Path

    return {
        "data": str(args.data),
        "data_sha256": hashlib.sha256(Path(args.data).read_bytes()).hexdigest(),
        "model": args.model, "free": args.free, "preset": args.preset, "fixed": fixed,
        "init": init, "bounds": bounds, "starts": args.starts, "seed": args.seed,
        "adam_steps": args.adam_steps, "lm_steps": args.lm_steps, "dtype": args.dtype,
        "uncertainty": args.uncertainty, "level": args.level,
    }


def _run_fit(args: argparse.Namespace, fixed: dict, init: dict, bounds: dict) -> xr.Dataset:
    from rpx.analysis.fit import fit

    return fit(
        args.data,
        model=args.model,
        free=args.free,
        fixed=fixed,
        bounds=bounds,
        preset=args.preset,
        init=init,
        starts=args.starts,
        seed=args.seed,
        adam_steps=args.adam_steps,
        lm_steps=args.lm_steps,
        dtype=args.dtype,
        uncertainty=args.uncertainty,
        level=args.level,
    )
