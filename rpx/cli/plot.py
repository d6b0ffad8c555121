"""``rpx plot``: a figure of a sweep store (lines against one axis, or a map over two)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plot",
        help="plot a sweep store: V against --x (a line per --hue value), or a map over --x, --y",
    )
    p.add_argument("store", help="store path or fsspec URL written by `rpx sweep`")
    p.add_argument("--x", required=True, help="swept parameter on the horizontal axis")
    p.add_argument("--hue", help="swept parameter giving one line per value")
    p.add_argument("--y", help="second swept parameter: draw a colour map with contours")
    p.add_argument("--var", default="V", help="variable to plot (default V)")
    p.add_argument(
        "--at",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="value (nearest) of another swept dimension; default: its middle value",
    )
    p.add_argument("--nernst", default="K", help="ion whose Nernst line to draw, or 'none'")
    p.add_argument("-o", "--output", required=True, help="image file (.png, .pdf, .svg)")
    p.set_defaults(func=_plot)


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


def _plot(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import xarray as xr

    from rpx import plot
    from rpx.sweep.store import open_store, store_exists

    store = open_store(args.store, read_only=True)
    if not store_exists(store):
        raise ValueError(f"no zarr store at {args.store}")
    ds = xr.open_zarr(store)
    if args.var not in ds:
        raise ValueError(f"--var {args.var!r} is not in the store; variables: {list(ds.data_vars)}")
    at = _parse_at(args.at)
    if args.y:
        ax = plot.voltage_map(ds, args.x, args.y, var=args.var, at=at)
    else:
        ion = None if args.nernst.lower() == "none" else args.nernst
        ax = plot.voltage_lines(ds, args.x, args.hue, var=args.var, at=at, nernst_ion=ion)
    ax.figure.tight_layout()
    ax.figure.savefig(args.output, dpi=150)
    plt.close(ax.figure)
    print(f"wrote {args.output}")
    return 0
