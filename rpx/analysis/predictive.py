"""Posterior predictive maps over a sweep space: P(lo <= V <= hi) and quantiles of V.

Given posterior draws of free parameters (:func:`rpx.sample`, a Dataset or the store
``rpx sample ... -o post.zarr`` writes) and a sweep spec (:class:`rpx.SweepSpec`) whose
axes and design are the conditions, every draw is evaluated at every point of the space
and reduced over the draws on the device, chunk by chunk: only the per-point results
(band probability, quantiles, fraction of undefined draws) reach the host, never the
(draws x space) cube.

The reduction engine does the streaming (:func:`rpx.sweep.reduce._reduce_locally`: the
plan's chunk grid, one input replica and one stream per device, a bounded number of
chunks in flight). The draws enter as *batched fixed values*: the chunk kernel
(:func:`rpx.sweep.kernel.chunk_function`) reads every non-swept parameter from its
``fixed`` inputs, and the predictive function ``vmap``s it over a (cells, draws) array
of each free parameter. The chunk shape is chosen so that cells x draws x chunk points
stays below ``max_evaluations``; all chunks and cell batches share one compiled program.

What is predicted is the model's V at the posterior draws (the posterior of the cell's
resting potential under new conditions); the measurement noise of the likelihood
(``V_sd`` or ``noise_sd``) is not added.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from rpx.physics.params import PARAMS
from rpx.sweep.kernel import chunk_function, device_inputs
from rpx.sweep.memory import check_fits
from rpx.sweep.plan import Plan, make_plan
from rpx.sweep.spec import SweepSpec, load_spec, spec_from_dict

KIND = "predictive"
DEFAULT_MAX_EVALUATIONS = 1 << 22  # model evaluations per compiled call
MAX_POOLED_DRAWS = 1 << 24  # cells x draws held per point when pooling
MIN_CHUNK_POINTS = 256  # points per chunk aimed at before batching more cells
CELL = "cell"
QUANTILE = "quantile"


# --------------------------------------------------------------------- input checks
def _posterior(posterior: xr.Dataset | str | Path) -> tuple[xr.Dataset, str, tuple[str, ...]]:
    """The posterior Dataset, how to name it in messages and its free parameters.

    Raises:
        ValueError: no store there, a store of another kind, or no posterior draws.
    """
    if isinstance(posterior, xr.Dataset):
        ds, where = posterior, "the posterior"
    elif isinstance(posterior, (str, Path)):
        from rpx.sweep.store import describe, open_store, root_attrs, store_exists, store_kind

        where = str(posterior)
        store = open_store(where, read_only=True)
        if not store_exists(store):
            raise ValueError(f"posterior: no zarr store at {where}")
        attrs = root_attrs(store, where)
        if store_kind(attrs) != "posterior":
            raise ValueError(
                f"posterior: {where} holds {describe(attrs)}, not an rpx posterior sample "
                "(write one with `rpx sample ... -o post.zarr`)"
            )
        ds = xr.open_zarr(store, consolidated=None)
    else:
        raise ValueError(
            f"posterior must be an xarray Dataset or a store path, got {type(posterior).__name__}"
        )
    free = ds.attrs.get("free")
    if isinstance(free, str):
        free = [f.strip() for f in free.split(",") if f.strip()]
    if not free or "model" not in ds.attrs:
        raise ValueError(f"posterior: {where} names no model and free parameters "
                         "(attributes 'model' and 'free' of rpx.sample)")
    for name in free:
        if name not in ds.data_vars or not {"chain", "draw"} <= set(ds[name].dims):
            raise ValueError(f"posterior: {where} has no draws of {name} over (chain, draw)")
    return ds, where, tuple(str(f) for f in free)


def _draws(ds: xr.Dataset, free: Sequence[str], n: int | None) -> dict[str, np.ndarray]:
    """``{name: (cells, draws)}`` float64, chains concatenated; ``n`` evenly spread ones."""
    out = {}
    for name in free:
        da = ds[name]
        dims = ((CELL,) if CELL in da.dims else ()) + ("chain", "draw")
        x = np.asarray(da.transpose(*dims).values, np.float64)
        x = x.reshape((x.shape[0] if CELL in da.dims else 1, -1))
        if not np.all(np.isfinite(x)):
            raise ValueError(f"posterior: draws of {name} are not all finite")
        out[name] = x
    total = next(iter(out.values())).shape[1]
    if n is not None:
        if isinstance(n, bool) or int(n) != n or not 1 <= n <= total:
            raise ValueError(f"draws must be an integer in 1..{total} (draws in the "
                             f"posterior per cell), got {n!r}")
        idx = np.arange(int(n)) * total // int(n)
        out = {k: v[:, idx] for k, v in out.items()}
    return out


def _spec(spec: SweepSpec | str | Path | Mapping[str, Any]) -> SweepSpec:
    if isinstance(spec, SweepSpec):
        return spec.validate()
    if isinstance(spec, (str, Path)):
        return load_spec(spec)
    if isinstance(spec, Mapping):
        d = dict(spec)
        d.pop("reduce", None)
        return spec_from_dict(d)
    raise ValueError(f"spec must be a SweepSpec, a TOML path or a dict, got {type(spec).__name__}")


def _band(band: Any) -> tuple[float, float] | None:
    if band is None:
        return None
    try:
        lo, hi = (float(b) for b in band)
    except (TypeError, ValueError):
        raise ValueError(f"band must be (lo, hi) in mV, got {band!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
        raise ValueError(f"band needs finite lo <= hi in mV, got {lo:g}, {hi:g}")
    return lo, hi


def _quantiles(quantiles: Any) -> tuple[float, ...]:
    if quantiles is None:
        return ()
    if isinstance(quantiles, (int, float)):
        quantiles = (quantiles,)
    try:
        qs = tuple(float(q) for q in quantiles)
    except (TypeError, ValueError):
        raise ValueError(f"quantiles must be numbers in [0, 1], got {quantiles!r}") from None
    for q in qs:
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantiles must lie in [0, 1], got {q:g}")
    if len(set(qs)) != len(qs):
        raise ValueError(f"quantiles must be distinct, got {list(qs)}")
    if list(qs) != sorted(qs):
        raise ValueError(f"quantiles must be in increasing order, got {list(qs)}")
    return qs


def _chunks(dims: Sequence[str], shape: Sequence[int], points: int) -> tuple[tuple[str, int], ...]:
    """Chunk lengths with at most ``points`` points: whole trailing dimensions first."""
    out = []
    budget = max(1, points)
    for dim, n in reversed(list(zip(dims, shape, strict=True))):
        size = min(n, budget)
        budget = max(1, budget // size)
        out.append((dim, size))
    return tuple(reversed(out))


# ------------------------------------------------------------------ on the device
_FNS: collections.OrderedDict[tuple, tuple[Plan, Any]] = collections.OrderedDict()
_FNS_MAX = 8


def _predictive_fn(
    plan: Plan, free: tuple[str, ...], band: tuple[float, float] | None,
    quantiles: tuple[float, ...], pooled: bool,
) -> Any:
    """Jitted ``f(axes, table, fixed, offsets) -> partials`` of one chunk, where ``fixed``
    holds a (batch, draws) array of every free parameter and 0-d arrays of the others.

    Partials: ``nan`` (batch, *chunk) draws with NaN V; ``in`` draws with lo <= V <= hi;
    ``q`` (quantiles, batch, *chunk) of the non-NaN draws (linear interpolation, numpy's
    default). Pooled: batch 1 over all cells' draws.

    Cached by the structure the chunk kernel reads (model, axis and design names, chunk
    shape, outputs), not by the values of the space: axis values, the design table and
    fixed values are inputs, so spaces of one shape share one compiled program.
    """
    key = (
        plan.model_name, id(plan.model), tuple(a.name for a in plan.axes),
        tuple(r.name for r in plan.design.ranges) if plan.design is not None else None,
        plan.chunk_shape, plan.outputs, plan.gradients, free, band, quantiles, pooled,
    )
    if key in _FNS:
        _FNS.move_to_end(key)
        return _FNS[key][1]
    fn = _build_fn(plan, free, band, quantiles, pooled)
    _FNS[key] = (plan, fn)  # the plan keeps its model alive, so id() stays unique
    while len(_FNS) > _FNS_MAX:
        _FNS.popitem(last=False)
    return fn


def _build_fn(
    plan: Plan, free: tuple[str, ...], band: tuple[float, float] | None,
    quantiles: tuple[float, ...], pooled: bool,
) -> Any:
    chunk_fn = chunk_function(plan)

    def V_of(axes: Any, table: Any, rest: Any, offsets: Any, theta: Any) -> jax.Array:
        return chunk_fn(axes, table, {**rest, **theta}, offsets)["V"]

    over_draws = jax.vmap(V_of, in_axes=(None, None, None, None, 0))
    over_cells = jax.vmap(over_draws, in_axes=(None, None, None, None, 0))

    def fn(axes: Any, table: Any, fixed: Any, offsets: Any) -> dict[str, jax.Array]:
        theta = {n: fixed[n] for n in free}
        rest = {k: v for k, v in fixed.items() if k not in theta}
        V = over_cells(axes, table, rest, offsets, theta)  # (batch, draws, *chunk)
        if pooled:
            V = V.reshape((1, -1) + V.shape[2:])
        out = {"nan": jnp.sum(jnp.isnan(V), axis=1, dtype=jnp.int32)}
        if band is not None:
            inside = (V >= band[0]) & (V <= band[1])
            out["in"] = jnp.sum(inside, axis=1, dtype=jnp.int32)
        if quantiles:
            out["q"] = jnp.nanquantile(V, jnp.asarray(quantiles, V.dtype), axis=1)
        return out

    return jax.jit(fn)


# ---------------------------------------------------------------------- the API
def posterior_predictive(
    posterior: xr.Dataset | str | Path,
    spec: SweepSpec | str | Path | Mapping[str, Any],
    band: tuple[float, float] | None = None,
    quantiles: Sequence[float] | None = None,
    *,
    pooled: bool = False,
    draws: int | None = None,
    max_evaluations: int = DEFAULT_MAX_EVALUATIONS,
    queue_size: int = 2,
    quiet: bool = True,
) -> xr.Dataset:
    """Posterior predictive probability that V lies in a band, and quantiles of V, over
    every point of a sweep space, per cell or pooled over cells.

    For each cell c and point x of the space (its axes and design), with the S posterior
    draws θ_s of the cell's free parameters (all chains): P(lo <= V <= hi) =
    #{s : lo <= V(θ_s, x) <= hi} / S, and the q-quantiles of {V(θ_s, x)} over the draws
    whose V is defined (NaN where the model has no steady state, status != 0; linear
    interpolation as ``numpy.nanquantile``). Pooled, the draws of all cells form one
    sample (the equal-weight mixture of the cells' posteriors). Parameters neither free
    in the posterior nor swept come from the spec (its preset and ``fixed``): give the
    preset and fixed values the posterior was sampled with, or a warning names each
    fixed value that differs. V is the model's potential at the draws; the measurement
    noise of the likelihood is not added. Evaluation streams chunks of the space through
    the reduction engine with the draws as a batched input (cells x draws x chunk
    points <= ``max_evaluations``); the (draws x space) cube is never formed.

    Args:
        posterior: :func:`rpx.sample`'s Dataset, or the path/URL of its store
            (``rpx sample ... -o post.zarr``).
        spec: the space: a :class:`rpx.SweepSpec`, a TOML path (a ``[reduce]`` table is
            ignored) or its dict; its model must be the posterior's, and no free
            parameter may be swept or fixed in it. Its dtype is the working precision
            (float64 needs ``jax_enable_x64``).
        band: ``(lo, hi)`` in mV, finite, lo <= hi (both ends included), or None.
        quantiles: probabilities in [0, 1], distinct, or None.
        pooled: pool the cells' draws instead of one result per cell.
        draws: use this many draws per cell, evenly spread over the chains (default all).
        max_evaluations: model evaluations per compiled call (bounds device memory).
        queue_size: chunks in flight per device.
        quiet: no progress bar (points x cells evaluated).

    Returns:
        xarray Dataset over ``(cell, *space dims)`` (no ``cell`` when pooled or when the
        posterior has none) with ``V_band_probability`` (1; with ``band``),
        ``V_quantile`` (mV, leading dim ``quantile``; with ``quantiles``),
        ``V_nan_fraction`` (1, draws whose V is undefined), per cell ``converged`` and
        ``max_rhat`` copied from the posterior; the space's coordinates with units.
        Every variable and coordinate has ``units`` and ``long_name``; floating-point
        data variables are in the spec's dtype; attributes
        ``kind = "predictive"``, model, preset, the spec as JSON, free parameters,
        draws per cell, band, quantiles.

    Raises:
        ValueError: a posterior that is missing, of another kind or without draws; an
            invalid spec, one of another model or one sweeping or fixing a free
            parameter; neither band nor quantiles; a band not finite with lo <= hi;
            quantiles outside [0, 1] or repeated; ``draws`` outside 1..draws in the
            posterior; ``max_evaluations`` or ``queue_size`` < 1; results larger than
            the available memory.
    """
    band = _band(band)
    qs = _quantiles(quantiles)
    if band is None and not qs:
        raise ValueError("give band=(lo, hi) in mV and/or quantiles")
    for label, value in (("max_evaluations", max_evaluations), ("queue_size", queue_size)):
        if isinstance(value, bool) or int(value) != value or value < 1:
            raise ValueError(f"{label} must be a positive integer, got {value!r}")
    ds, where, free = _posterior(posterior)
    model = str(ds.attrs["model"])
    spec = _spec(spec)
    if spec.model != model:
        raise ValueError(f"spec: model {spec.model!r} is not the posterior's model {model!r}")
    fixed_names = dict(spec.fixed)
    for name in free:
        if name in spec.swept:
            raise ValueError(f"spec: {name} is sampled in the posterior; it cannot be swept")
        if name in fixed_names:
            raise ValueError(f"spec: {name} is sampled in the posterior; it cannot be fixed")
    theta = _draws(ds, free, draws)
    n_cells, n_draws = next(iter(theta.values())).shape
    has_cells = CELL in ds.dims and not pooled

    size = spec.size
    rows = 1 if pooled else n_cells
    check_fits("posterior predictive results", rows * size * (len(qs) + 2), 8)
    if pooled:
        if n_cells * n_draws > MAX_POOLED_DRAWS:
            raise ValueError(
                f"pooled: {n_cells:,} cells x {n_draws:,} draws exceed {MAX_POOLED_DRAWS:,} "
                "draws per point; pass draws= (fewer per cell)"
            )
        batch = n_cells
    else:
        batch = min(n_cells, max(1, max_evaluations // (n_draws * min(size, MIN_CHUNK_POINTS))))
    points = max(1, max_evaluations // (batch * n_draws))
    pspec = dataclasses.replace(
        spec, outputs=("V",), gradients=(), log_gradients=False,
        chunks=_chunks(spec.dims, spec.shape, points),
    )
    plan = make_plan(pspec)
    for name in free:
        if name not in plan.fixed:
            raise ValueError(f"model {model!r} does not read {name}")
    _warn_fixed(ds, plan, free)

    fn = _predictive_fn(plan, free, band, qs, bool(pooled))
    axes, table, fixed = device_inputs(plan)
    dtype = jnp.dtype(plan.dtype)
    nan_n = np.zeros((rows, *plan.shape), np.int64)
    in_n = np.zeros((rows, *plan.shape), np.int64) if band is not None else None
    q_v = np.full((len(qs), rows, *plan.shape), np.nan) if qs else None

    from tqdm.auto import tqdm

    from rpx.sweep.reduce import _reduce_locally

    todo = list(plan.chunk_indices())
    bar = tqdm(total=plan.size * n_cells, unit="pt", unit_scale=True, disable=quiet,
               desc=f"{plan.model_name} predictive", dynamic_ncols=True)
    try:
        for start in range(0, n_cells, batch):
            stop = min(start + batch, n_cells)
            take = np.minimum(np.arange(start, start + batch), n_cells - 1)  # pad the last
            inputs = (axes, table, {**fixed, **{k: jnp.asarray(v[take], dtype)
                                                 for k, v in theta.items()}})
            r0, r1 = (0, 1) if pooled else (start, stop)

            def fold(index: tuple[int, ...], p: Mapping[str, Any], r0: int = r0, r1: int = r1,
                     cells_done: int = stop - start) -> None:
                region = plan.chunk_slices(index)
                trim = tuple(slice(0, s.stop - s.start) for s in region)
                nrow = r1 - r0
                nan_n[(slice(r0, r1), *region)] = np.asarray(p["nan"])[(slice(0, nrow), *trim)]
                if in_n is not None:
                    in_n[(slice(r0, r1), *region)] = np.asarray(p["in"])[(slice(0, nrow), *trim)]
                if q_v is not None:
                    q_v[(slice(None), slice(r0, r1), *region)] = np.asarray(p["q"])[
                        (slice(None), slice(0, nrow), *trim)]
                bar.update(plan.chunk_points(index) * cells_done)

            _reduce_locally(plan, None, todo, int(queue_size), fold, fn=fn, inputs=inputs)
    finally:
        bar.close()

    per = n_draws * (n_cells if pooled else 1)
    return _dataset(ds, spec, plan, free, band, qs, pooled, has_cells, per,
                    nan_n, in_n, q_v, where)


def _warn_fixed(ds: xr.Dataset, plan: Plan, free: Sequence[str]) -> None:
    """Warn for each value the spec fixes differently from the posterior's fixed values."""
    for name, value in plan.fixed.items():
        if name in free or name not in ds.data_vars or ds[name].ndim != 0:
            continue
        then = float(ds[name].values)
        if not math.isclose(value, then, rel_tol=1e-6, abs_tol=0.0):
            warnings.warn(
                f"{name} = {value:g} {PARAMS[name].units} in the spec, but the posterior "
                f"was sampled with {name} = {then:g}",
                stacklevel=3,
            )


def _attrs(units: str, long_name: str, **extra: Any) -> dict[str, Any]:
    return {"units": units, "long_name": long_name, **extra}


def _dataset(
    ds: xr.Dataset, spec: SweepSpec, plan: Plan, free: Sequence[str],
    band: tuple[float, float] | None, qs: tuple[float, ...], pooled: bool, has_cells: bool,
    per: int, nan_n: np.ndarray, in_n: np.ndarray | None, q_v: np.ndarray | None, where: str,
) -> xr.Dataset:
    dims = ((CELL,) if has_cells else ()) + plan.dims

    def shaped(a: np.ndarray) -> np.ndarray:
        return a if has_cells else a[0]

    who = "the cells' pooled posterior" if pooled else "the cell's posterior"
    v: dict[str, xr.Variable] = {}
    if in_n is not None:
        lo, hi = band
        v["V_band_probability"] = xr.Variable(dims, shaped(in_n / per), _attrs(
            "1", f"posterior predictive probability that {lo:g} <= V <= {hi:g} mV "
                 f"({who} draws)", band=[lo, hi]))
    if q_v is not None:
        v["V_quantile"] = xr.Variable(
            (QUANTILE, *dims), q_v if has_cells else q_v[:, 0], _attrs(
                "mV", f"posterior predictive quantile of the resting membrane potential "
                      f"({who} draws with a defined V)"))
    v["V_nan_fraction"] = xr.Variable(dims, shaped(nan_n / per), _attrs(
        "1", "fraction of posterior draws with no valid V (model status != 0)"))
    for name in ("converged", "max_rhat"):
        if name not in ds.data_vars or ds[name].dims not in ((), (CELL,)):
            continue
        x = np.asarray(ds[name].values)
        if has_cells:
            v[name] = xr.Variable(ds[name].dims, x, dict(ds[name].attrs))
        else:  # one posterior, or cells pooled: all converged, the largest R-hat
            attrs = dict(ds[name].attrs)
            if x.ndim:
                attrs["long_name"] = f"{attrs.get('long_name', name)} (over the pooled cells)"
            v[name] = xr.Variable((), np.all(x) if name == "converged" else np.nanmax(x), attrs)
    coords: dict[str, xr.Variable] = {}
    for c in plan.coords:
        if c.dims == () and c.name in free:
            continue
        coords[c.name] = xr.Variable(c.dims, c.values, dict(c.attrs))
    if has_cells:
        labels = np.asarray(ds[CELL].values)
        if labels.dtype.kind in "US":  # as rpx.fit: zarr 3 stores these as variable-length
            labels = labels.astype(object)
        coords[CELL] = xr.Variable(
            (CELL,), labels, dict(ds[CELL].attrs) or _attrs("1", "cell label"))
    if qs:
        coords[QUANTILE] = xr.Variable(
            (QUANTILE,), np.asarray(qs), _attrs("1", "probability level of the quantile"))
    from rpx import __version__
    from rpx.sweep.store import now

    dt = np.dtype(plan.dtype)  # every float in the spec's working precision
    v = {k: var.astype(dt) if var.dtype.kind == "f" else var for k, var in v.items()}
    out = xr.Dataset(v, coords)
    out.attrs = {
        "title": f"rpx posterior predictive of model {plan.model_name} over a space of "
                 f"{plan.size:,} points",
        "kind": KIND,
        "rpx_version": __version__,
        "model": plan.model_name,
        "preset": spec.preset,
        "spec": spec.to_json(),
        "spec_hash": spec.hash(),
        "posterior": where,
        "free": list(free),
        "draws_per_cell": int(per // (int(ds.sizes.get(CELL, 1)) if pooled else 1)),
        "cells": int(ds.sizes.get(CELL, 1)),
        "pooled": bool(pooled),
        "band": [] if band is None else list(band),
        "quantiles": list(qs),
        "noise": "not added: the distribution is that of the model's V at the posterior draws",
        "created": now(),
    }
    return out
