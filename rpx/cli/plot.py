"""``rpx plot``: the figure of any rpx store, chosen by what the store holds.

* sweep cube: ``--x`` (lines, one per ``--hue`` value) or ``--x --y`` (a colour map,
  ``--band LO HI`` hatched), other dims held at ``--at NAME=VALUE`` (default: middle);
* reduction: ``--x`` the marginal mean with its spread, ``--x --y`` a pair marginal as
  a map, neither: the histogram of ``--var``;
* sensitivity: the indices of output ``--var`` (bars with CIs, S2 as a matrix);
* fit: data, fitted curves per cell against condition ``--x``, estimates ± SE;
* time course (a saved ``rpx.simulate`` result): ``--var V,volume,...`` against time.
"""

from __future__ import annotations

import argparse

from rpx.cli.common import (
    add_debug_option,
    add_storage_options,
    command,
    parse_storage_options,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plot",
        help="figure of a store: sweep, reduction, sensitivity, fit or time course (recognised)",
        description=__doc__.split("\n", 2)[2].replace("``", "") if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("store", help="store path or fsspec URL written by rpx")
    p.add_argument("--x", help="dimension (or fit condition) on the horizontal axis")
    p.add_argument("--hue", help="sweep: dimension giving one line per value")
    p.add_argument("--y", help="second dimension: draw a colour map with contours")
    p.add_argument(
        "--var",
        help="variable (sweep, reduction: default V; reduction also e.g. V_mean_by_K_o), "
             "output (sensitivity), or comma-separated variables (time course)",
    )
    p.add_argument(
        "--at", action="append", default=[], metavar="NAME=VALUE",
        help="value (nearest grid value, inside the axis) of another dimension; "
             "default: its middle value",
    )
    p.add_argument(
        "--nernst", default="auto",
        help="Nernst line: auto (K+ when the variable is a voltage), none, or an ion K/Na/Cl/Ca",
    )
    p.add_argument("--band", nargs=2, type=float, metavar=("LO", "HI"),
                   help="map: hatch the grid points with LO <= value <= HI")
    p.add_argument("--xscale", default="auto", choices=("auto", "linear", "log"))
    p.add_argument("--yscale", default="auto", choices=("auto", "linear", "log"))
    p.add_argument("--cells", type=int, default=6, metavar="N",
                   help="fit: fitted curves of at most N cells (default 6)")
    p.add_argument("--dpi", type=int, default=150)
    p.add_argument("-o", "--output", required=True, help="image file (.png, .pdf, .svg)")
    add_storage_options(p)
    add_debug_option(p)
    p.set_defaults(func=command(_plot))


def _parse_at(items: list[str]) -> dict[str, float]:
    at = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            at[name] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise ValueError(f"--at {item!r}: expected NAME=VALUE with a number")
    return at


def _only(args: argparse.Namespace, kind: str, allowed: set[str]) -> None:
    given = {
        "--x": args.x, "--hue": args.hue, "--y": args.y, "--at": args.at,
        "--band": args.band,
    }
    extra = [k for k, v in given.items() if v and k not in allowed]
    if extra:
        raise ValueError(f"{', '.join(extra)} do(es) not apply to a {kind} store")


def _figure(ds, kind: str, args: argparse.Namespace):  # noqa: ANN001, ANN202
    from rpx import plot

    if kind == "sweep":
        _only(args, kind, {"--x", "--hue", "--y", "--at", "--band"})
        if not args.x:
            dims = ", ".join(map(str, ds.dims))
            raise ValueError(f"--x is required for a sweep store; dims: {dims}")
        var = args.var or "V"
        at = _parse_at(args.at)
        if args.y:
            if args.hue:
                raise ValueError("--hue and --y exclude each other (lines or a map)")
            return plot.voltage_map(ds, args.x, args.y, var=var, at=at, band=args.band,
                                    xscale=args.xscale, yscale=args.yscale)
        if args.band:
            raise ValueError("--band needs a map (--y)")
        ion = None if args.nernst.lower() == "none" else args.nernst
        return plot.voltage_lines(ds, args.x, args.hue, var=var, at=at, nernst_ion=ion,
                                  xscale=args.xscale)
    if kind == "reduction":
        _only(args, kind, {"--x", "--y"})
        var = args.var or "V"
        if args.y:
            if not args.x:
                raise ValueError("--y needs --x")
            base = plot.parse_marginal(var)[0] if plot.parse_marginal(var) else var
            for name in (f"{base}_mean_by_{args.x}_and_{args.y}",
                         f"{base}_mean_by_{args.y}_and_{args.x}"):
                if name in ds:
                    return plot.voltage_map(ds[name], args.x, args.y, xscale=args.xscale,
                                            yscale=args.yscale)
            raise ValueError(f"no pair marginal of {base} over {args.x} and {args.y} "
                             "(reduce with --pairs)")
        if args.x:
            return plot.marginal(ds, args.x, var=var, xscale=args.xscale)
        parsed = plot.parse_marginal(var)
        if parsed:
            return plot.marginal(ds, parsed[2], var=var, xscale=args.xscale)
        return plot.histogram(ds, var=var)
    if kind == "sensitivity":
        _only(args, kind, set())
        return plot.sensitivity(ds, args.var)
    if kind == "fit":
        _only(args, kind, {"--x"})
        if args.cells < 1:
            raise ValueError(f"--cells must be >= 1, got {args.cells}")
        return plot.fit_result(ds, args.x, max_cells=args.cells)
    _only(args, kind, set())
    names = [v for v in (args.var or "").split(",") if v] or None
    return plot.timecourse(ds, names)


def _plot(args: argparse.Namespace) -> int:
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import xarray as xr

    from rpx import plot
    from rpx.sweep.store import open_store, store_exists

    if args.dpi < 10 or args.dpi > 2400:
        raise ValueError(f"--dpi must lie in [10, 2400], got {args.dpi}")
    store = open_store(args.store, read_only=True,
                       storage_options=parse_storage_options(args.storage_options))
    if not store_exists(store):
        raise ValueError(f"no zarr store at {args.store}")
    with warnings.catch_warnings():  # stores without consolidated metadata open all the same
        warnings.simplefilter("ignore", RuntimeWarning)
        ds = xr.open_zarr(store)
    kind = plot.store_kind(ds)
    out = _figure(ds, kind, args)
    fig = out.figure if hasattr(out, "figure") and not hasattr(out, "savefig") else out
    try:
        fig.savefig(args.output, dpi=args.dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    print(f"wrote {args.output} ({kind} store)")
    return 0
