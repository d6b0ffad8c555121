"""Profile-likelihood intervals of fitted parameters, batched over cells.

Used by ``rpx.fit(..., uncertainty="profile", level=0.95)``. For every cell and every
free parameter θ_k the profile is

    PL_k(t) = min over the other free parameters of SSR(θ_k = t, ...),

and the interval at ``level`` is {t : Δ_k(t) ≤ χ²₁(level)}, with the deviance
Δ_k(t) = PL_k(t) - SSR_min when the data give ``V_sd`` (SSR weighted by 1/V_sd²), and
Δ_k(t) = n·ln(PL_k(t)/SSR_min) otherwise (the noise variance profiled out as well).
A side on which Δ never reaches the threshold leaves that limit open: 0 or +inf for a
parameter fitted in ln x, the bound for a parameter with ``bounds`` (also the limit on
the side of a bound that the estimate sits on); the parameter is then flagged
practically non-identifiable (Raue et al. 2009, Bioinformatics 25:1923,
who define practical non-identifiability by such an open profile).

Computation (one jitted call for all cells, parameters and both sides): starting at the
optimum û, each side walks a fixed grid of steps in the unconstrained coordinate of
θ_k (multiples of its Gauss–Newton standard error, capped so that the farthest point is
:data:`REACH` away), and at every grid point re-fits the other parameters by
Levenberg–Marquardt with the exact Jacobian starting from the previous point's optimum
(continuation). The limit is where the signed root of Δ crosses √χ²₁, interpolated
linearly between grid points (exact for a quadratic profile).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from jax import Array, lax
from scipy.stats import chi2

from rpx.analysis.fit_solver import LOG, LOGIT, Transform, forms, plain_forms_first, plain_safe
from rpx.physics.params import PARAMS

# Grid of one side, in multiples of the step scale (the Gauss–Newton SE in the
# unconstrained coordinate, at most REACH / GRID[-1]).
GRID = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5, 2.75, 3.0, 3.5, 4.0, 5.0,
        6.0, 8.0, 10.0, 13.0, 16.0, 20.0, 25.0, 32.0, 40.0, 50.0, 64.0, 80.0, 100.0)
# Farthest grid point from the optimum in the unconstrained coordinate: 4.3 decades in
# ln x; for a bounded parameter (logit coordinate) within 5e-5 of the bound.
REACH = 10.0
# A locally flat estimate in ln x more than RUN_OFF (4 decades) from its start begins
# its profile walk there (see profile_intervals).
RUN_OFF = math.log(1e4)
# Levenberg–Marquardt iterations at every grid point (warm-started from the previous).
LM_STEPS = 12
# An estimate that reached a bound in floating point is moved in to the fraction EDGE
# of its box (in x, or in ln x for log_logit) before its coordinate is taken:
# logit(EDGE) = -34.5.
EDGE = 1e-15
# An estimate of a parameter with bounds within the fraction ON_BOUND of its box from a
# bound sits on that bound: its limit on that side is the bound (open, flagged), and
# its profile walk starts ON_BOUND inside the box (|logit| = 6.9), from where the walk
# towards the interior reaches the values the data exclude (from the estimate itself,
# the logit of up to 34.5, :data:`REACH` would not leave the bound).
ON_BOUND = 1e-3
LAM_MAX = 1e12


def _phys(transforms: Sequence[Transform], u: Array) -> Array:
    return jnp.stack([t.to_phys(u[i]) for i, t in enumerate(transforms)])


def _residual(
    model_fn: Callable, free: tuple[str, ...], transforms: tuple[Transform, ...],
    u: Array, cell: dict, fixed: dict,
) -> Array:
    # As rpx.analysis.fit_solver._residual (weighted, zero on padding).
    x = _phys(transforms, u)
    params = {**fixed, **cell["cond"], **{n: x[i] for i, n in enumerate(free)}}
    V = model_fn(params)["V"]
    V = jnp.broadcast_to(V, cell["V"].shape)
    return jnp.where(cell["mask"], (V - cell["V"]) * cell["w"], 0.0)


@functools.lru_cache(maxsize=16)
def build_profiler(
    model_fn: Callable, free: tuple[str, ...], transforms: tuple[Transform, ...],
    plain_points: Callable | None = None,
) -> Callable[..., dict[str, Array]]:
    """Jitted ``run(u_hat, u_walk, steps, cells, fixed)``; with ``plain_points`` (the
    model's :attr:`rpx.Model.plain_points`) the program holds the plain closed forms
    and reports ``plain_safe`` per cell (see :class:`rpx.analysis.fit_solver.SolverConfig`).

    Args (of the returned function):
        u_hat: (C, p) optimum per cell in unconstrained coordinates (where the re-fits
            of the other parameters start).
        u_walk: (C, p) where the walk of each parameter starts (its own coordinate;
            the optimum, or a point moved from it, see :func:`profile_intervals`).
        steps: (C, p, G) offsets >= 0 of the grid of one side (the other side is their
            negatives), in the unconstrained coordinate; 0 first (the walk's start).
        cells: as for the fit solver: ``cond`` (name -> (C, N)), ``V``, ``w``, ``mask``.
        fixed: parameter name -> 0-d array.

    Returns ``ssr_min`` (C,) at ``u_hat``, ``ssr`` (C, p, 2, G): the profile's
    weighted sum of squared residuals at every grid point of each side (0: downward,
    1: upward), and ``plain_safe`` (C,).
    """
    p = len(free)

    def res(u: Array, cell: dict, fixed: dict) -> Array:
        return _residual(model_fn, free, transforms, u, cell, fixed)

    def safe(u: Array, cell: dict, fixed: dict) -> Array:
        return plain_safe(plain_points, free, transforms, u, cell["cond"], fixed, cell["mask"])

    def refit(u: Array, k: Array, cell: dict, fixed: dict) -> tuple[Array, Array, Array]:
        """LM on every coordinate but k, from u; returns (u, SSR, plain_safe)."""
        keep = (jnp.arange(p) != k).astype(u.dtype)
        eps = jnp.finfo(u.dtype).eps

        def ssr(v: Array) -> Array:
            r = res(v, cell, fixed)
            return jnp.sum(r * r)

        def step(_: int, state: tuple) -> tuple:
            u, value, lam, ok_forms = state
            J = jax.jacfwd(res)(u, cell, fixed) * keep[None, :]
            r = res(u, cell, fixed)
            g = J.T @ r
            H = J.T @ J
            d = jnp.diagonal(H)
            D = d + eps * jnp.max(d) + jnp.finfo(u.dtype).tiny
            A = H + lam * jnp.diag(D) + jnp.diag(1.0 - keep)
            delta = jnp.linalg.solve(A, -g) * keep
            trial = u + delta
            value_t = ssr(trial)
            ok = jnp.isfinite(value_t) & (value_t <= value) & jnp.all(jnp.isfinite(delta))
            u = jnp.where(ok, trial, u)
            value = jnp.where(ok, value_t, value)
            lam = jnp.clip(jnp.where(ok, lam * 0.3, lam * 10.0), 1e-12, LAM_MAX)
            return u, value, lam, ok_forms & safe(trial, cell, fixed)

        lam0 = jnp.asarray(1e-3, u.dtype)
        u, value, _, ok_forms = lax.fori_loop(
            0, LM_STEPS, step, (u, ssr(u), lam0, safe(u, cell, fixed))
        )
        return u, value, ok_forms

    def side(
        u_hat: Array, u0: Array, k: Array, offsets: Array, cell: dict, fixed: dict
    ) -> tuple[Array, Array]:
        def walk(u: Array, off: Array) -> tuple[Array, tuple[Array, Array]]:
            u = u.at[k].set(u0 + off)
            u, value, ok_forms = refit(u, k, cell, fixed)
            return u, (value, ok_forms)

        _, (values, ok_forms) = lax.scan(walk, u_hat, offsets)
        return values, jnp.all(ok_forms)

    def per_cell(
        u_hat: Array, u_walk: Array, steps: Array, cell: dict, fixed: dict
    ) -> dict:
        r = res(u_hat, cell, fixed)
        ssr_min = jnp.sum(r * r)

        def per_param(k: Array, u0: Array, off: Array) -> tuple[Array, Array]:
            # both sides of the walk in one batch: (2, G) and (2,)
            return jax.vmap(lambda o: side(u_hat, u0, k, o, cell, fixed))(jnp.stack([-off, off]))

        ssr, ok_forms = jax.vmap(per_param)(jnp.arange(p), u_walk, steps)
        return {
            "ssr_min": ssr_min, "ssr": ssr,
            "plain_safe": safe(u_hat, cell, fixed) & jnp.all(ok_forms),
        }

    def run(u_hat: Array, u_walk: Array, steps: Array, cells: dict, fixed: dict) -> dict:
        with forms(plain_points):
            return jax.vmap(per_cell, in_axes=(0, 0, 0, 0, None))(
                u_hat, u_walk, steps, cells, fixed
            )

    return jax.jit(run)


def _logit(f: float) -> float:
    return math.log(f) - math.log1p(-f)


def _per_cell(
    build: Callable[..., Callable[..., dict]], model_fn: Callable, free: tuple[str, ...],
    transforms: tuple[Transform, ...], plain_points: Callable | None, per_cell: tuple,
    cells: dict, fixed: dict,
) -> dict[str, np.ndarray]:
    """``build(model_fn, free, transforms, plain_points)(*per_cell, cells, fixed)`` as host
    arrays: the plain closed forms first, the two-form program for the cells that need
    it (:func:`rpx.analysis.fit_solver.plain_forms_first`). ``per_cell``: arrays with
    the cell axis first."""

    def solve(points: Callable | None, take: np.ndarray | None) -> dict:
        args = (*per_cell, cells)
        if take is not None:
            args = jax.tree.map(lambda a: np.asarray(a)[take], args)
        return build(model_fn, free, transforms, points)(*args, fixed)

    return plain_forms_first(solve, plain_points)


def _cell_safe(
    plain_points: Callable | None, free: tuple[str, ...], transforms: tuple[Transform, ...],
    u: Array, cell: dict, fixed: dict,
) -> Array:
    return plain_safe(plain_points, free, transforms, u, cell["cond"], fixed, cell["mask"])


@functools.lru_cache(maxsize=16)
def _build_gradient(
    model_fn: Callable, free: tuple[str, ...], transforms: tuple[Transform, ...],
    plain_points: Callable | None = None,
) -> Callable[..., dict[str, Array]]:
    """Jitted ``grad(u, cells, fixed)``: ``ssr`` (C,), ``grad`` dSSR/du (C, p) and
    ``plain_safe`` (C,) of every cell."""

    def ssr(u: Array, cell: dict, fixed: dict) -> Array:
        r = _residual(model_fn, free, transforms, u, cell, fixed)
        return jnp.sum(r * r)

    def one(u: Array, cell: dict, fixed: dict) -> dict[str, Array]:
        value, grad = jax.value_and_grad(ssr)(u, cell, fixed)
        safe = _cell_safe(plain_points, free, transforms, u, cell, fixed)
        return {"ssr": value, "grad": grad, "plain_safe": safe}

    def run(u: Array, cells: dict, fixed: dict) -> dict[str, Array]:
        with forms(plain_points):
            return jax.vmap(one, in_axes=(0, 0, None))(u, cells, fixed)

    return jax.jit(run)


def _on_bound_starts(
    model_fn: Callable, free: tuple[str, ...], transforms: tuple[Transform, ...],
    u_hat: np.ndarray, u_walk: np.ndarray, cells: dict, fixed: dict, absolute_sd: bool,
    thr: float, plain_points: Callable | None = None,
) -> None:
    """Move the walk start (``u_walk``, in place) of every estimate on a bound inward.

    At an optimum on a bound the profile deviance rises linearly with the fraction f of
    the box from the bound (the gradient does not vanish there; the others re-fitted
    change it only to second order): Δ ≈ f·|dΔ/df|, and f·(1 - f) = du-to-df. The walk
    starts where that line gives Δ = thr/10, f* = thr / (10·|dΔ/df|), at most
    :data:`ON_BOUND` and at least the estimate's own fraction, so that the threshold is
    crossed where the grid is fine rather than between its coarse far points.
    """
    edge = _logit(ON_BOUND)
    lo = u_hat < edge
    hi = u_hat > -edge
    for k, t in enumerate(transforms):
        if t.kind == LOG:
            lo[:, k] = hi[:, k] = False
    if not (lo | hi).any():
        return
    dtype = np.asarray(cells["V"]).dtype
    out = _per_cell(
        _build_gradient, model_fn, free, transforms, plain_points, (u_hat.astype(dtype),),
        cells, fixed,
    )
    value = np.asarray(out["ssr"], np.float64)
    grad = np.abs(np.asarray(out["grad"], np.float64))
    w = np.where(lo, u_hat, np.where(hi, -u_hat, 0.0))  # logit of the fraction from the bound
    f = 1.0 / (1.0 + np.exp(-w))
    slope = grad / np.maximum(f * (1.0 - f), np.finfo(np.float64).tiny)  # |dSSR/df|
    if not absolute_sd:
        n = np.asarray(cells["mask"]).sum(axis=1).astype(np.float64)
        slope = slope * (n / np.maximum(value, np.finfo(np.float64).tiny))[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        target = np.where(slope > 0, thr / (10.0 * slope), ON_BOUND)
    target = np.clip(np.nan_to_num(target, nan=ON_BOUND), f, ON_BOUND)
    w0 = np.log(target) - np.log1p(-target)
    u_walk[:] = np.where(lo, w0, np.where(hi, -w0, u_walk))


def _from_phys(t: Transform, x: float) -> float:
    """u of a fitted value, also for one that reached the edge of its range (an estimate
    run off to 0, or to a bound, in floating point): the edge is moved in by rounding."""
    if not math.isfinite(x):
        return math.nan
    if t.kind == LOG:
        return math.log(max(x, np.finfo(np.float64).tiny))
    # the fraction of the box (in x, or in ln x for log_logit), kept EDGE inside it
    if t.kind == LOGIT:
        f = (x - t.lo) / (t.hi - t.lo)
    else:
        f = (math.log(max(x, t.lo)) - math.log(t.lo)) / (math.log(t.hi) - math.log(t.lo))
    f = min(max(f, EDGE), 1.0 - EDGE)
    return math.log(f) - math.log1p(-f)


@functools.lru_cache(maxsize=16)
def _build_jacobian(
    model_fn: Callable, free: tuple[str, ...], transforms: tuple[Transform, ...],
    plain_points: Callable | None = None,
) -> Callable[..., dict[str, Array]]:
    """Jitted ``jac(u, cells, fixed)``: ``J`` (C, N, p) of every cell's residuals and
    ``plain_safe`` (C,), compiled once per model, free parameters and transforms (not
    once per call)."""

    def jac(u: Array, cell: dict, fixed: dict) -> dict[str, Array]:
        J = jax.jacfwd(lambda v: _residual(model_fn, free, transforms, v, cell, fixed))(u)
        return {"J": J, "plain_safe": _cell_safe(plain_points, free, transforms, u, cell, fixed)}

    def run(u: Array, cells: dict, fixed: dict) -> dict[str, Array]:
        with forms(plain_points):
            return jax.vmap(jac, in_axes=(0, 0, None))(u, cells, fixed)

    return jax.jit(run)


def _se_u(
    model_fn: Callable, free: tuple[str, ...], transforms: tuple[Transform, ...],
    u_hat: np.ndarray, cells: dict, fixed: dict, plain_points: Callable | None = None,
) -> np.ndarray:
    """Gauss–Newton standard errors in u (C, p) with unit residual variance; NaN or
    huge along flat directions."""

    out = _per_cell(_build_jacobian, model_fn, free, transforms, plain_points, (u_hat,), cells,
                    fixed)
    J = np.asarray(out["J"], dtype=np.float64)
    H = np.einsum("cnp,cnq->cpq", J, J)
    out = np.full(u_hat.shape, np.inf)
    for c in range(H.shape[0]):
        w, V = np.linalg.eigh(H[c])
        if w[-1] <= 0:
            continue
        w = np.maximum(w, w[-1] * 1e-14)
        out[c] = np.sqrt(np.einsum("pk,k,pk->p", V, 1.0 / w, V))
    return out


def profile_intervals(
    model_fn: Callable,
    free: Sequence[str],
    transforms: Sequence[Transform],
    u_hat: np.ndarray,
    cells: dict,
    fixed: dict,
    absolute_sd: bool,
    level: float,
    start: Sequence[float] | None = None,
    plain_points: Callable | None = None,
) -> dict[str, np.ndarray]:
    """Profile-likelihood intervals of every free parameter in every cell.

    Args:
        model_fn: the model's function (params -> outputs with ``V``).
        free, transforms: free parameter names and their unconstrained coordinates.
        u_hat: (C, p) the fitted optimum per cell, unconstrained.
        cells: the fit solver's cell arrays (``cond``, ``V``, ``w``, ``mask``).
        fixed: parameter name -> 0-d array of every other parameter.
        absolute_sd: whether ``w`` holds 1/V_sd of the data (else ones).
        level: confidence level in (0, 1).
        start: optional starting values of the fit (physical units, one per free
            parameter). An estimate fitted in ln x that is locally flat (Gauss–Newton SE
            in u above :data:`REACH`) and ran off more than :data:`RUN_OFF` from its
            start (e.g. a permeability fitted to ~0 that the data cannot tell from 0)
            begins its profile walk at that distance instead, so that the walk reaches
            the values the data do exclude.
        plain_points: the model's :attr:`rpx.Model.plain_points`, if any: the programs
            then run with the plain closed forms, and with the two-form model only for
            the cells that need it (same results to rounding, far less compile time).

    An estimate of a parameter with bounds that sits on a bound (within the fraction
    :data:`ON_BOUND` of its box) gets that bound as its limit on that side, open
    (practically non-identifiable: the data would move it past the bound), and its
    walk starts inside the box (see :func:`_on_bound_starts`), so that the other side's
    limit is where the data exclude values, not the bound it sits on nor the far one.
    A moved walk moves only the parameter's own coordinate: the others are re-fitted
    from the optimum, and Δ is measured from the lowest SSR seen.

    Returns (numpy): ``lo``, ``hi`` (C, p) physical limits; ``lo_open``, ``hi_open``
    (C, p) whether that side never crossed the threshold (or the estimate sits on that
    bound); ``x`` (C, p, 2G+1) the profile points in physical units, ascending, with the
    walk's start (the optimum, or where it was moved to) in the middle; ``deviance``
    (C, p, 2G+1) Δ there.
    """
    free = tuple(free)
    transforms = tuple(transforms)
    dtype = np.asarray(cells["V"]).dtype
    u_hat = np.array(u_hat, dtype=np.float64)
    se = _se_u(model_fn, free, transforms, u_hat.astype(dtype), cells, fixed, plain_points)
    u_walk = u_hat.copy()
    if start is not None:
        for k, (t, x0) in enumerate(zip(transforms, start, strict=True)):
            if t.kind == LOG and x0 > 0:
                u0 = math.log(x0)
                flat = ~(se[:, k] < REACH)
                clamped = np.clip(u_hat[:, k], u0 - RUN_OFF, u0 + RUN_OFF)
                u_walk[:, k] = np.where(flat, clamped, u_hat[:, k])
    thr = float(chi2.ppf(level, 1))
    root = math.sqrt(thr)
    _on_bound_starts(
        model_fn, free, transforms, u_hat, u_walk, cells, fixed, absolute_sd, thr, plain_points
    )
    bounded = np.array([t.kind != LOG for t in transforms])
    # (where _on_bound_starts moved the walk inward)
    on_lo = bounded[None, :] & (u_hat < _logit(ON_BOUND))
    on_hi = bounded[None, :] & (u_hat > -_logit(ON_BOUND))
    on = on_lo | on_hi
    scale = np.minimum(np.where(np.isfinite(se), se, np.inf), REACH / GRID[-1])
    scale = np.where(on, REACH / GRID[-1], scale)
    steps = scale[..., None] * np.asarray((0.0, *GRID))[None, None, :]
    out = _per_cell(
        build_profiler, model_fn, free, transforms, plain_points,
        (u_hat.astype(dtype), u_walk.astype(dtype), steps.astype(dtype)), cells, fixed,
    )
    ssr_min = np.asarray(out["ssr_min"], dtype=np.float64)
    ssr = np.asarray(out["ssr"], dtype=np.float64)  # (C, p, 2, G), G = len(GRID) + 1
    # A profile point below the optimum means the optimum was not the best: measure
    # from the lowest value seen (a conservative choice).
    best = np.minimum(ssr_min, np.nanmin(ssr.reshape(ssr.shape[0], -1), axis=1, initial=np.inf))
    n = np.asarray(cells["mask"]).sum(axis=1).astype(np.float64)
    if absolute_sd:
        dev = ssr - best[:, None, None, None]
    else:
        tiny = np.finfo(np.float64).tiny
        dev = n[:, None, None, None] * np.log(
            np.maximum(ssr, tiny) / np.maximum(best, tiny)[:, None, None, None]
        )
    dev = np.where(np.isfinite(dev), np.maximum(dev, 0.0), np.inf)
    C, p, _, G = ssr.shape
    lo = np.empty((C, p))
    hi = np.empty((C, p))
    lo_open = np.zeros((C, p), bool)
    hi_open = np.zeros((C, p), bool)
    for s, (lim, open_) in enumerate(((lo, lo_open), (hi, hi_open))):
        sign = -1.0 if s == 0 else 1.0
        q = np.sqrt(dev[:, :, s, :])  # (C, p, G), from the walk's start
        above = q >= root
        crossed = above.any(axis=-1)
        j = np.where(crossed, np.argmax(above, axis=-1), G - 1)  # first index at/above
        j = np.maximum(j, 1)
        q1 = np.take_along_axis(q, j[..., None], -1)[..., 0]
        q0 = np.take_along_axis(q, (j - 1)[..., None], -1)[..., 0]
        t1 = np.take_along_axis(steps, j[..., None], -1)[..., 0]
        t0 = np.take_along_axis(steps, (j - 1)[..., None], -1)[..., 0]
        frac = np.clip((root - q0) / np.where(q1 > q0, q1 - q0, 1.0), 0.0, 1.0)
        u_lim = u_walk + sign * (t0 + frac * (t1 - t0))
        side_on = on_lo if s == 0 else on_hi
        for k, tr in enumerate(transforms):
            x = np.asarray(tr.to_phys(jnp.asarray(u_lim[:, k])), dtype=np.float64)
            if tr.kind == LOG:
                edge = 0.0 if s == 0 else math.inf
            else:
                edge = tr.lo if s == 0 else tr.hi
            # an estimate on the bound of this side: the bound is its limit
            lim[:, k] = np.where(crossed[:, k] & ~side_on[:, k], x, edge)
        open_[:] = ~crossed | side_on
    offsets = np.concatenate([-steps[..., :0:-1], steps], axis=-1)
    u_grid = u_walk[..., None] + offsets
    x = np.stack(
        [np.asarray(tr.to_phys(jnp.asarray(u_grid[:, k])), dtype=np.float64)
         for k, tr in enumerate(transforms)],
        axis=1,
    )
    deviance = np.concatenate([dev[:, :, 0, :0:-1], dev[:, :, 1, :]], axis=-1)
    return {"lo": lo, "hi": hi, "lo_open": lo_open, "hi_open": hi_open, "x": x,
            "deviance": deviance}


def add_profile(
    ds: xr.Dataset,
    model_fn: Callable,
    free: Sequence[str],
    transforms: dict[str, Transform],
    held: dict[str, tuple[float, tuple[str, ...]]],
    cells: dict,
    fixed: dict[str, float],
    absolute_sd: bool,
    level: float,
    start: dict[str, float] | None = None,
    plain_points: Callable | None = None,
) -> xr.Dataset:
    """``ds`` (a fit result) with profile-likelihood intervals of every free parameter.

    Every free parameter, held ones included, is profiled with all the others free
    (a parameter in a direction the data cannot determine gets an open, flagged
    interval); ratios ``<n>_over_<held>`` get the interval of ``n`` profiled with the
    held parameter fixed, divided by its value.

    Adds ``<name>_ci_lo``, ``<name>_ci_hi`` (units of the parameter),
    ``practically_identifiable`` (cell, param), ``<name>_profile`` and
    ``<name>_profile_deviance`` over ``profile_point``, and the attribute
    ``profile_level``.
    """
    squeeze = "cell" not in ds.dims
    if squeeze:
        ds = ds.expand_dims("cell")
    free = tuple(free)
    dtype = np.asarray(cells["V"]).dtype
    fixed_free = {k: np.asarray(v, dtype) for k, v in fixed.items() if k not in free}

    def u_of(names: tuple[str, ...]) -> np.ndarray:
        cols = []
        for n in names:
            x = np.asarray(ds[n].values, dtype=np.float64) if n in ds else None
            if n in held or x is None or x.ndim == 0:
                x = np.full(ds.sizes["cell"], held[n][0] if n in held else float(x))
            x = np.broadcast_to(x, (ds.sizes["cell"],))
            cols.append([_from_phys(transforms[n], float(v)) for v in x])
        return np.asarray(cols, dtype=np.float64).T

    full = profile_intervals(
        model_fn, free, tuple(transforms[n] for n in free), u_of(free), cells, fixed_free,
        absolute_sd, level, None if start is None else [start[n] for n in free],
        plain_points,
    )
    # every float in the fit's working precision, as the rest of its result
    full = {k: a.astype(dtype) if a.dtype.kind == "f" else a for k, a in full.items()}
    pct = f"{100 * level:g} %"
    v: dict[str, xr.Variable] = {}
    C = ("cell",)
    PP = ("cell", "profile_point")
    for k, n in enumerate(free):
        p = PARAMS[n]
        v[f"{n}_ci_lo"] = xr.Variable(C, full["lo"][:, k], {
            "units": p.units,
            "long_name": f"lower limit of the {pct} profile-likelihood interval of {n} "
                         "(0 or its lower bound when the profile stays below the threshold)",
        })
        v[f"{n}_ci_hi"] = xr.Variable(C, full["hi"][:, k], {
            "units": p.units,
            "long_name": f"upper limit of the {pct} profile-likelihood interval of {n} "
                         "(inf or its upper bound when the profile stays below the threshold)",
        })
        v[f"{n}_profile"] = xr.Variable(PP, full["x"][:, k], {
            "units": p.units, "long_name": f"{n} at the points of its likelihood profile",
        })
        v[f"{n}_profile_deviance"] = xr.Variable(PP, full["deviance"][:, k], {
            "units": "1",
            "long_name": f"profile deviance of {n} (the others re-fitted), "
                         f"threshold chi2_1({level:g}) = {chi2.ppf(level, 1):.4g}",
        })
    ident = ~(full["lo_open"] | full["hi_open"])
    v["practically_identifiable"] = xr.Variable(
        ("cell", "profile_param"), ident,
        {"units": "1",
         "long_name": "the profile-likelihood interval is closed on both sides (else "
                      "practically non-identifiable, Raue et al. 2009)"},
    )
    if held:
        reduced = tuple(n for n in free if n not in held)
        if reduced:
            fixed_red = {**fixed_free, **{h: np.asarray(val, dtype) for h, (val, _) in
                                          held.items()}}
            red = profile_intervals(
                model_fn, reduced, tuple(transforms[n] for n in reduced), u_of(reduced),
                cells, fixed_red, absolute_sd, level,
                None if start is None else [start[n] for n in reduced], plain_points,
            )
            for h, (value, involved) in held.items():
                for n in involved:
                    k = reduced.index(n)
                    units = ds[f"{n}_over_{h}"].attrs.get("units", "1")
                    for side in ("lo", "hi"):
                        v[f"{n}_over_{h}_ci_{side}"] = xr.Variable(
                            C, (red[side][:, k] / value).astype(dtype),
                            {"units": units,
                             "long_name": f"{'lower' if side == 'lo' else 'upper'} limit of "
                                          f"the {pct} profile-likelihood interval of {n}/{h}"},
                        )
    out = ds.assign(v).assign_coords(
        profile_param=xr.Variable(("profile_param",), np.array(free, dtype=object),
                                  {"units": "1", "long_name": "profiled free parameter"}),
        profile_point=xr.Variable(("profile_point",), np.arange(full["x"].shape[-1]),
                                  {"units": "1", "long_name": "point of a likelihood profile"}),
    )
    out.attrs = {**ds.attrs, "profile_level": level,
                 "uncertainty": "profile likelihood (plus Gauss-Newton standard errors)"}
    if squeeze:
        out = out.isel(cell=0, drop=True)
    return out
