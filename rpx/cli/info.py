"""The ``info`` command: summarise a sweep or reduction store."""

from __future__ import annotations

import argparse
import json
import math

import numpy as np


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="summarise a sweep or reduction store")
    p.add_argument("store", help="store path or fsspec URL")
    p.set_defaults(func=_info)


def _info(args: argparse.Namespace) -> int:
    print(store_summary(args.store))
    return 0


def store_summary(url: str) -> str:
    """A text summary of an rpx store: a sweep (dims, model, completion, value ranges) or a
    reduction (the space, merged chunks, and the results once complete)."""
    import xarray as xr
    import zarr

    from rpx.sweep.store import done_chunks, open_store, store_exists

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

    from rpx.sweep.spec import spec_from_dict

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
