"""The ``info`` command: summarise any rpx store (sweep, reduction, sensitivity, fit).

Sweep stores are summarised from metadata and the per-chunk statistics kept by the
writers (merged into the root attributes when the sweep finishes, read from the
completion markers while it runs): no data chunk is read, whatever the store's size.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np

from rpx.cli.common import add_debug_option, add_storage_options, command


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="summarise an rpx store (sweep, reduction, sensitivity, fit)")
    p.add_argument("store", help="store path or fsspec URL")
    add_storage_options(p)
    add_debug_option(p)
    p.set_defaults(func=command(_info))


def _info(args: argparse.Namespace) -> int:
    from rpx.cli.common import parse_storage_options

    print(store_summary(args.store, parse_storage_options(args.storage_options)))
    return 0


def store_summary(url: str, storage_options: dict | None = None) -> str:
    """A text summary of an rpx store, by its kind: a sweep (dims, model, completion,
    value ranges), a reduction (the space, merged chunks, and the results once
    complete), a sensitivity analysis or a fit."""
    from rpx.sweep.store import open_store, root_attrs, store_exists, store_kind

    store = open_store(url, storage_options, read_only=True)
    if not store_exists(store):
        raise ValueError(f"no zarr store at {url}")
    attrs = root_attrs(store, url)
    kind = store_kind(attrs)
    if kind == "reduction":
        return _reduction_summary(url, store, attrs)
    if kind == "sweep":
        return _sweep_summary(url, store, attrs)
    if kind in ("sensitivity", "fit", "posterior", "predictive"):
        return _dataset_summary(url, store, attrs, kind)
    summary = _timecourse_summary(url, store, attrs)
    if summary is not None:
        return summary
    raise ValueError(f"{url} is a zarr store not written by rpx (no rpx attributes)")


def _timecourse_summary(url: str, store: object, attrs: dict) -> str | None:
    """Summary of a saved time course (``rpx.simulate(...).to_zarr``: a ``time``
    dimension, as :func:`rpx.plot.store_kind` recognises it), or None when ``store`` is
    not one."""
    import xarray as xr

    kind = str(attrs.get("kind", "")).strip().lower()
    import warnings

    try:
        with warnings.catch_warnings():  # a store saved without consolidated metadata
            warnings.simplefilter("ignore", RuntimeWarning)
            ds = xr.open_zarr(store, consolidated=None)
    except Exception:  # noqa: BLE001 - not a readable xarray store: not a time course
        return None
    if "time" not in ds.dims and kind not in ("simulate", "simulation", "timecourse",
                                              "time_course"):
        return None
    lines = [f"store   {url}  (a time course, e.g. saved from rpx.simulate)"]
    if "model" in attrs:
        preset = f"  (preset {attrs['preset']})" if "preset" in attrs else ""
        lines.append(f"model   {attrs['model']}{preset}")
    if str(attrs.get("events", "")).strip() not in ("", "[]", "()"):
        lines.append(f"events  {' '.join(str(attrs['events']).split())[:200]}")
    if "time" in ds.coords and ds.sizes.get("time", 0):
        t = np.asarray(ds["time"].values)
        units = ds["time"].attrs.get("units", "")
        lines.append(f"time    {ds.sizes['time']:,} samples, {t.min():.4g}..{t.max():.4g} "
                     f"{units}".rstrip())
    other = {d: n for d, n in ds.sizes.items() if d != "time"}
    if other:
        lines.append("dims    " + "  ".join(f"{d}={n}" for d, n in other.items()))
    lines.append("variables:")
    for name, var in ds.data_vars.items():
        if var.dtype.kind in "fiub":
            lines.append(_var_line(name, var))
    return "\n".join(lines)


def _header(url: str, attrs: dict, what: str) -> list[str]:
    return [
        f"store   {url}  ({what})",
        f"model   {attrs.get('model', '?')}  (preset {attrs.get('preset', '?')})",
        f"created {attrs.get('created', '?')}  rpx {attrs.get('rpx_version', '?')}",
    ]


def _lock_line(store: object) -> str | None:
    from rpx.sweep.store import LOCK_KEY, StoreLock

    holder = StoreLock(store, "").read()  # type: ignore[arg-type]
    if holder is None:
        return None
    ago = time.time() - float(holder.get("heartbeat", 0.0) or 0.0)
    line = (f"writer  pid {holder.get('pid', '?')} on {holder.get('host', '?')} since "
            f"{holder.get('started', '?')} (heartbeat {ago:.0f} s ago; {LOCK_KEY})")
    if _writer_gone(holder):
        line += " (process gone: the next run takes the lock over)"
    return line


def _writer_gone(holder: dict) -> bool:
    """True when the lock's writer ran on this host and its process no longer exists."""
    import socket

    from rpx.sweep.store import _alive

    pid = holder.get("pid")
    if holder.get("host") != socket.gethostname() or not isinstance(pid, int):
        return False
    return not _alive(pid, holder.get("pid_start"))


def _sweep_summary(url: str, store: object, attrs: dict) -> str:
    """Summary of a sweep store from its metadata and the chunks' statistics. Neither the
    physics nor the (possibly huge) spec JSON is loaded: dims and shapes come from the
    arrays' metadata."""
    import re

    from rpx.sweep.store import (
        bad_markers,
        done_chunks,
        read_markers,
        sweep_stats,
        template_complete,
    )

    lines = _header(url, attrs, "a sweep")
    lock = _lock_line(store)
    if not template_complete(attrs):
        lines.append("status  template incomplete: a run was cut off while creating the store; "
                     "the same command rebuilds it")
        return "\n".join(lines + ([lock] if lock else []))
    meta, fixed, dims = _array_meta(store)
    size = math.prod(n for _, n in dims)
    lines.append("dims    " + "  ".join(f"{d}={n}" for d, n in dims) + f"  ({size:,} points)")
    n_chunks = math.prod(attrs.get("chunk_grid", [0]))
    done_set = done_chunks(store)  # type: ignore[arg-type]
    done = len(done_set)
    # The markers are small: read them all, so that one that does not parse shows here.
    records = read_markers(store, done_set)  # type: ignore[arg-type]
    bad = sorted(bad_markers(records))
    lines.append(f"chunks  {done}/{n_chunks} complete ({100.0 * done / max(n_chunks, 1):.1f}%)")
    if bad:
        lines.append(f"damaged {len(bad)} completion marker(s) do not parse (chunk "
                     f"{', '.join('.'.join(map(str, i)) for i in bad[:5])}"
                     f"{', ...' if len(bad) > 5 else ''}): run `rpx verify --repair`")
    if lock:
        lines.append(lock)
    elif done < n_chunks:
        lines.append("status  partial: run the same command again to resume")
    if fixed:
        lines.append("fixed   " + ", ".join(fixed))
    stats = sweep_stats(store, attrs, done, records)  # type: ignore[arg-type]
    lines.append("variables:" if done == n_chunks else "variables (finished chunks only):")
    for name, var_attrs in meta.items():
        s = stats.get(name)
        if s is None:
            why = "no finished chunk yet" if not done else (
                "no statistics in its markers (written by an older rpx)")
            lines.append(f"  {name:<18} [{var_attrs.get('units', '')}] {why}"
                         f"  ({var_attrs.get('long_name', '')})")
            continue
        lo = "nan" if s["min"] is None else f"{s['min']:.4g}"
        hi = "nan" if s["max"] is None else f"{s['max']:.4g}"
        lines.append(
            f"  {name:<18} [{var_attrs.get('units', '')}] min {lo} max {hi}"
            f"  NaN {s['nan']:,}  ({var_attrs.get('long_name', '')})"
        )
    found = re.search(r'"gradients":\s*(\[[^\]]*\])', str(attrs.get("spec", "")))
    gradients = json.loads(found[1]) if found else []
    if gradients:
        lines.append(f"gradients w.r.t. {', '.join(gradients)}")
    return "\n".join(lines)


def _array_meta(store: object) -> tuple[dict[str, dict], list[str], list[tuple[str, int]]]:
    """``{data variable: attributes}``, ``["K_i=140 mM", ...]`` (the fixed scalars) and the
    dims with their sizes, from the (consolidated) metadata; only the scalar coordinates
    are read, never a data chunk."""
    import zarr

    group = zarr.open_group(store, mode="r", zarr_format=3)  # type: ignore[arg-type]
    arrays = dict(sorted(group.arrays()))
    coords = set()
    for arr in arrays.values():
        coords.update(str(arr.attrs.get("coordinates", "")).split())
    data, fixed, dims = {}, [], []
    for name, arr in arrays.items():
        a = dict(arr.attrs)
        arr_dims = list(getattr(arr.metadata, "dimension_names", None) or [])
        if arr.ndim == 0:
            fixed.append(f"{name}={float(arr[()]):g} {a.get('units', '')}".rstrip())
        elif name not in coords and name not in arr_dims:
            data[name] = a
            dims = dims or list(zip(arr_dims, arr.shape, strict=True))
    return data, fixed, dims


def _reduction_summary(url: str, store: object, attrs: dict) -> str:
    """Summary of a ``rpx reduce`` store; its results are read only once it is complete."""
    import xarray as xr

    from rpx.sweep.spec import spec_from_dict
    from rpx.sweep.store import template_complete

    spec = spec_from_dict(json.loads(attrs["spec"]))
    dims = "  ".join(f"{d}={n}" for d, n in zip(spec.dims, spec.shape, strict=True))
    lines = _header(url, attrs, "reductions of a space; the cube is not stored")
    lines.append(f"space   {dims}  ({spec.size:,} points)")
    if not template_complete(attrs):
        lines.append("status  template incomplete: a run was cut off while creating the store; "
                     "the same command rebuilds it")
        return "\n".join(lines)
    done, total = int(attrs.get("chunks_done", 0)), int(attrs["chunks_total"])
    reductions = json.loads(attrs["reductions"])
    lines += [
        f"chunks  {done}/{total} merged ({100.0 * done / max(total, 1):.1f}%), "
        f"last checkpoint {attrs.get('updated', '?')}",
        "reduce  " + ", ".join(f"{k}={v}" for k, v in sorted(reductions.items())),
    ]
    lock = _lock_line(store)
    if lock:
        lines.append(lock)
    if not attrs.get("complete"):
        lines.append("status  in progress: results are written when every chunk is merged "
                     "(rerun the same command to resume)")
        return "\n".join(lines)
    lines.append("status  complete")
    lines.append("variables:")
    ds = xr.open_zarr(store, consolidated=True)
    for name, var in ds.data_vars.items():
        lines.append(_var_line(name, var))
    return "\n".join(lines)


def _dataset_summary(url: str, store: object, attrs: dict, kind: str) -> str:
    """Summary of a sensitivity or fit store (small: its variables are read)."""
    import xarray as xr

    ds = xr.open_zarr(store, consolidated=None)
    if kind == "sensitivity":
        lines = _header(url, attrs, f"a {attrs.get('method', '?')} sensitivity analysis")
        ranges = json.loads(attrs.get("ranges", "{}"))
        lines.append(
            f"design  n={attrs.get('n', '?')}, {attrs.get('n_evaluations', '?')} evaluations, "
            f"seed {attrs.get('seed', '?')}; outputs {', '.join(attrs.get('outputs', []))}"
        )
        lines.append("ranges  " + ", ".join(
            f"{k} {r.get('lo')}..{r.get('hi')} ({r.get('dist', '')})".replace(" ()", "")
            for k, r in ranges.items()
        ))
    elif kind == "predictive":
        lines = _header(url, attrs, "a posterior predictive map")
        lines.append(f"free    {', '.join(attrs.get('free', []))}; {attrs.get('cells', '?')} "
                     f"cell(s){' pooled' if attrs.get('pooled') else ''} x "
                     f"{attrs.get('draws_per_cell', '?')} draws")
        lines += _space_lines(ds)
    else:
        cells = ds.sizes.get("cell", 1)
        lines = _header(url, attrs, "a fit" if kind == "fit" else "a posterior sample")
        lines.append(f"free    {', '.join(attrs.get('free', []))}; {cells:,} cell(s), "
                     f"{attrs.get('sd', attrs.get('likelihood', ''))}")
        if "converged" in ds:
            lines.append(f"status  converged {int(ds['converged'].sum()):,}/{cells:,}")
    if "options_hash" in attrs:
        lines.append(f"options hash {attrs['options_hash'][:12]}")
    lines.append("variables:")
    for name, var in ds.data_vars.items():
        if var.dtype.kind in "fiub":
            lines.append(_var_line(name, var))
    return "\n".join(lines)


def _space_lines(ds: object) -> list[str]:
    """The space of a posterior predictive map: its dims with sizes, as for a sweep
    (``dims``), then every coordinate over them (the sweep axes, or a design's columns)
    with its count of values, range and units."""
    results = list(ds.data_vars.values())  # type: ignore[attr-defined]
    if not results:
        return []
    # V_nan_fraction spans (cell, *space); else the variable with the most dims
    widest = max(results, key=lambda v: (v.name == "V_nan_fraction", v.ndim))
    space = [d for d in widest.dims if d not in ("cell", "quantile")]
    sizes = ds.sizes  # type: ignore[attr-defined]
    size = math.prod(sizes[d] for d in space)
    lines = ["dims    " + "  ".join(f"{d}={sizes[d]}" for d in space) + f"  ({size:,} points)"]
    axes = [(name, c) for name, c in ds.coords.items()  # type: ignore[attr-defined]
            if c.dims and set(c.dims) <= set(space) and c.dtype.kind in "fiu"]
    if axes:
        lines.append("axes:")
    for name, c in axes:
        values = np.asarray(c.values, dtype=np.float64)
        n = np.unique(values[np.isfinite(values)]).size
        a = c.attrs
        lines.append(f"  {name:<18} [{a.get('units', '')}] {n:,} values "
                     f"{np.nanmin(values):.4g}..{np.nanmax(values):.4g}"
                     f"  ({a.get('long_name', '')})")
    return lines


def _var_line(name: str, var: object) -> str:
    lo, hi, nan = _range(var)
    a = var.attrs  # type: ignore[attr-defined]
    return (f"  {name:<18} [{a.get('units', '')}] min {lo:.4g} max {hi:.4g}"
            f"  NaN {nan:,}  ({a.get('long_name', '')})")


def _range(var: object) -> tuple[float, float, int]:
    """Min, max and NaN count of a small variable (reduction results, fits)."""
    values = np.asarray(var.values)  # type: ignore[attr-defined]
    if values.size == 0:
        return math.nan, math.nan, 0
    if not np.issubdtype(values.dtype, np.floating):
        values = values.astype(np.float64)
        return float(values.min()), float(values.max()), 0
    nan = int(np.isnan(values).sum())
    if nan == values.size:
        return math.nan, math.nan, nan
    return float(np.nanmin(values)), float(np.nanmax(values)), nan
