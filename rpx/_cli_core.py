"""Core commands: ``presets``, ``calc``, ``sweep`` and ``info``."""

from __future__ import annotations

import argparse
import json
import math

import numpy as np

from rpx._params import PARAMS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("presets", help="list the parameter presets with their sources")
    p.add_argument("name", nargs="?", help="show every value and source of one preset")
    p.set_defaults(func=_presets)

    p = sub.add_parser("calc", help="resting potential of every model and Nernst potentials")
    p.add_argument("--preset", default="default", help="preset to start from")
    for name, prm in PARAMS.items():
        p.add_argument(f"--{name}", type=float, metavar=prm.units, help=prm.long_name)
    p.set_defaults(func=_calc)

    p = sub.add_parser("sweep", help="evaluate a parameter space into a zarr store")
    p.add_argument("spec", help="TOML sweep spec (see examples/)")
    p.add_argument("-o", "--output", required=True, help="store path or fsspec URL")
    add_run_options(p)
    p.set_defaults(func=_sweep)

    p = sub.add_parser("info", help="summarise a sweep or reduction store")
    p.add_argument("store", help="store path or fsspec URL")
    p.set_defaults(func=_info)


def _presets(args: argparse.Namespace) -> int:
    from rpx._presets import preset_info, presets

    if args.name:
        info = preset_info(args.name)
        print(f"{info.name}: {info.description}")
        print(f"reported V: {info.V_range[0]:g} .. {info.V_range[1]:g} mV ({info.V_source})")
        for k, v in info.values.items():
            print(f"  {k:>10} = {v:<12g} {PARAMS[k].units:<8} {info.sources[k]}")
        return 0
    for name in presets():
        info = preset_info(name)
        print(f"{name:<28} {info.description}")
    return 0


def _calc(args: argparse.Namespace) -> int:
    from rpx._api import evaluate
    from rpx._models import equilibrium_potentials, models
    from rpx._presets import preset

    given = {k: getattr(args, k) for k in PARAMS if getattr(args, k) is not None}
    values = {**preset(args.preset), **given}
    print(f"preset {args.preset}" + (f" with {given}" if given else ""))
    for name in models():
        try:
            v = float(evaluate(given, model=name, base=args.preset)["V"])
        except ValueError as err:
            if "no default" in str(err):
                continue
            raise
        print(f"  V[{name}] = {v:8.2f} mV")
    E = equilibrium_potentials({k: np.float64(v) for k, v in values.items()})
    for k, v in E.items():
        print(f"  {k:<4} = {float(v):8.2f} mV")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    import jax

    from rpx._cli_cluster import run_maybe_distributed
    from rpx._spec import load_spec
    from rpx._sweep import run_sweep

    spec = load_spec(args.spec)
    if spec.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    kw = dict(
        resume=args.resume, overwrite=args.overwrite, quiet=args.quiet,
        storage_options=parse_storage_options(args.storage_options),
    )
    summary = run_maybe_distributed(args, run_sweep, spec, args.output, **kw)
    print(
        f"{args.output}: {summary['points']:,} points in {summary['chunks']} chunks "
        f"({summary['written']} written, {summary['skipped']} already done)"
    )
    return 0


def add_storage_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--storage-options", metavar="JSON",
        help='fsspec options for URLs, e.g. \'{"client_kwargs": {"endpoint_url": "..."}}\' '
             "(credentials also come from the usual environment variables)",
    )


def add_run_options(p: argparse.ArgumentParser) -> None:
    """Resume/overwrite, progress, storage and cluster options of the store-writing commands."""
    p.add_argument("--resume", action="store_true", help="require an existing store to resume")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_storage_options(p)
    add_cluster_options(p)


def add_cluster_options(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--scheduler", metavar="ADDRESS", help="run chunk tasks on a dask.distributed cluster"
    )
    where.add_argument(
        "--workers", type=int, metavar="N", help="run chunk tasks on a local cluster of N processes"
    )
    p.add_argument(
        "--chunks-per-task", type=int, default=1, metavar="K", help="chunks per dask task"
    )


def parse_storage_options(text: str | None) -> dict:
    """The ``--storage-options`` JSON object (``{}`` when not given)."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"--storage-options is not valid JSON: {err}") from None
    if not isinstance(value, dict):
        raise ValueError("--storage-options must be a JSON object")
    return value


def _info(args: argparse.Namespace) -> int:
    print(store_summary(args.store))
    return 0


def store_summary(url: str) -> str:
    """A text summary of an rpx store: a sweep (dims, model, completion, value ranges) or a
    reduction (the space, merged chunks, and the results once complete)."""
    import xarray as xr
    import zarr

    from rpx._store import done_chunks, open_store, store_exists

    store = open_store(url, read_only=True)
    if not store_exists(store):
        raise ValueError(f"no zarr store at {url}")
    attrs = dict(zarr.open_group(store, mode="r", zarr_format=3, use_consolidated=False).attrs)
    if "reduce_hash" in attrs:
        return _reduction_summary(url, store, attrs)
    ds = xr.open_zarr(store)
    lines = [f"store   {url}"]
    lines.append(f"model   {ds.attrs.get('model', '?')}  (preset {ds.attrs.get('preset', '?')})")
    lines.append(f"created {ds.attrs.get('created', '?')}  rpx {ds.attrs.get('rpx_version', '?')}")
    size = math.prod(ds.sizes.values())
    dims = "  ".join(f"{d}={n}" for d, n in ds.sizes.items())
    lines.append(f"dims    {dims}  ({size:,} points)")
    grid = ds.attrs.get("chunk_grid", [])
    n_chunks = math.prod(grid) if grid else 0
    done = len(done_chunks(store))
    lines.append(f"chunks  {done}/{n_chunks} complete ({100.0 * done / max(n_chunks, 1):.1f}%)")
    fixed = [k for k, v in ds.coords.items() if v.ndim == 0]
    if fixed:
        lines.append(
            "fixed   "
            + ", ".join(f"{k}={float(ds[k]):g} {ds[k].attrs.get('units', '')}" for k in fixed)
        )
    lines.append("variables:")
    for name, var in ds.data_vars.items():
        lo, hi, nan = _range(var)
        lines.append(
            f"  {name:<18} [{var.attrs.get('units', '')}] min {lo:.4g} max {hi:.4g}"
            f"  NaN {nan:,}  ({var.attrs.get('long_name', '')})"
        )
    spec = json.loads(ds.attrs["spec"]) if "spec" in ds.attrs else {}
    if spec.get("gradients"):
        lines.append(f"gradients w.r.t. {', '.join(spec['gradients'])}")
    return "\n".join(lines)


def _reduction_summary(url: str, store: object, attrs: dict) -> str:
    """Summary of a ``rpx reduce`` store; its results are read only once it is complete."""
    import xarray as xr

    from rpx._spec import spec_from_dict

    spec = spec_from_dict(json.loads(attrs["spec"]))
    done, total = int(attrs.get("chunks_done", 0)), int(attrs["chunks_total"])
    dims = "  ".join(f"{d}={n}" for d, n in zip(spec.dims, spec.shape, strict=True))
    reductions = json.loads(attrs["reductions"])
    lines = [
        f"store   {url}  (reductions of a space; the cube is not stored)",
        f"model   {attrs.get('model', '?')}  (preset {attrs.get('preset', '?')})",
        f"created {attrs.get('created', '?')}  rpx {attrs.get('rpx_version', '?')}",
        f"space   {dims}  ({spec.size:,} points)",
        f"chunks  {done}/{total} merged ({100.0 * done / max(total, 1):.1f}%), "
        f"last checkpoint {attrs.get('updated', '?')}",
        "reduce  " + ", ".join(f"{k}={v}" for k, v in sorted(reductions.items())),
    ]
    if not attrs.get("complete"):
        lines.append("status  in progress: results are written when every chunk is merged "
                     "(rerun the same command to resume)")
        return "\n".join(lines)
    lines.append("status  complete")
    lines.append("variables:")
    ds = xr.open_zarr(store, consolidated=True)
    for name, var in ds.data_vars.items():
        lo, hi, nan = _range(var)
        lines.append(
            f"  {name:<18} [{var.attrs.get('units', '')}] min {lo:.4g} max {hi:.4g}"
            f"  NaN {nan:,}  ({var.attrs.get('long_name', '')})"
        )
    return "\n".join(lines)


def _range(var: object) -> tuple[float, float, int]:
    import dask

    data = var.data  # type: ignore[attr-defined]
    if np.issubdtype(var.dtype, np.integer):  # type: ignore[attr-defined]
        lo, hi = dask.compute(data.min(), data.max())
        return float(lo), float(hi), 0
    lo, hi, nan = dask.compute(
        dask.array.nanmin(data), dask.array.nanmax(data), dask.array.isnan(data).sum()
    )
    return float(lo), float(hi), int(nan)
