"""Fitting model parameters to measured resting potentials (``rpx.fit``).

Works for every registered model through the registry: the model's ``fn`` and
``params`` and the parameter table are all it uses. See :func:`fit`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import xarray as xr
from xarray.indexes import PandasIndex

from rpx.analysis.fit_data import DataLike, FitData, load_data, show
from rpx.analysis.fit_solver import (
    CONVERGED,
    LOG,
    STATUS_MEANINGS,
    SolverConfig,
    Transform,
    build_lm_solver,
    build_solver,
    plain_forms_first,
    start_points,
    tolerances,
)
from rpx.physics.api import fill_defaults
from rpx.physics.models import Model, get_model
from rpx.physics.params import (
    PARAMS,
    Positive,
    _nonzero_message,
    check_params,
    check_values,
    param,
)
from rpx.physics.presets import preset as preset_values

# Fit with the model's closed forms in plain arithmetic first (a model that declares
# where they are exact: Model.plain_points), and with the two-form model only the cells
# whose fit reached a point where they are not (SolverConfig.plain_points).
PLAIN_FORMS_FIRST = True

class IdentifiabilityWarning(UserWarning):
    """The data cannot determine some combination of the free parameters."""


def _names(free: str | Sequence[str]) -> tuple[str, ...]:
    names = tuple(n.strip() for n in free.split(",")) if isinstance(free, str) else tuple(free)
    return tuple(n for n in names if n)


def _check_free(free: tuple[str, ...], m: Model) -> None:
    if not free:
        raise ValueError("give at least one free parameter")
    for name in free:
        param(name)
        if name not in m.params:
            raise ValueError(
                f"free parameter {name!r} is not read by model {m.name!r}; it reads: "
                f"{', '.join(m.params)}"
            )
    if len(set(free)) != len(free):
        raise ValueError(f"free parameters are repeated: {', '.join(free)}")


def _check_bounds(
    bounds: Mapping[str, tuple[float, float]], free: tuple[str, ...]
) -> dict[str, tuple[float, float]]:
    out = {}
    for name, pair in bounds.items():
        if name not in free:
            raise ValueError(f"bounds given for {name!r}, which is not a free parameter")
        lo, hi = (float(v) for v in pair)
        p = param(name)
        if not (lo < hi and math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError(f"bounds of {name} must be finite with lo < hi, got ({lo}, {hi})")
        if lo < p.lo or hi > p.hi:
            raise ValueError(
                f"bounds ({lo:g}, {hi:g}) of {name} leave its allowed range {p.domain_str()}"
            )
        out[name] = (lo, hi)
    return out


def _start_value(
    name: str,
    value: float,
    bounds: tuple[float, float] | None,
    given: bool,
    reference: Mapping[str, float],
) -> float:
    """Starting value of a free parameter (physical units).

    A log-scaled parameter whose preset value is 0 (e.g. ``P_Cl`` of a preset that
    leaves chloride out) starts at the geometric mean of the positive preset values
    with the same units (the other permeabilities); random starts then spread around
    it by a decade. A starting value given with ``init`` is used as it is.
    """
    if bounds is None:
        if value > 0:
            return value
        same = [
            v for k, v in reference.items()
            if k != name and v > 0 and PARAMS[k].units == PARAMS[name].units
        ]
        if given or value != 0 or not same:
            raise ValueError(
                f"free parameter {name} starts at {value:g} {PARAMS[name].units}, but it is "
                "fitted on a log scale and must start > 0; give a starting value with init="
            )
        return math.exp(sum(math.log(v) for v in same) / len(same))
    lo, hi = bounds
    if lo < value < hi:
        return value
    return math.sqrt(lo * hi) if lo > 0 and PARAMS[name].log_scale else 0.5 * (lo + hi)


def _coordinate(name: str, t: Transform) -> str:
    return f"ln {name}" if t.kind == LOG else f"{t.kind}({name})"


def _direction_text(names: Sequence[str], transforms: Sequence[Transform], v: np.ndarray) -> str:
    terms = [
        f"{c:+.3f}·{_coordinate(n, t)}"
        for n, t, c in zip(names, transforms, v, strict=True)
        if abs(c) > 0.05
    ]
    return " ".join(terms)


def _cells_arrays(data: FitData, dtype: jnp.dtype) -> dict:
    """The cells as host arrays of ``dtype`` (the jitted solver moves them in one go)."""
    w = np.ones_like(data.V) if data.V_sd is None else 1.0 / data.V_sd
    return {
        "cond": {k: np.asarray(v, dtype) for k, v in data.conditions.items()},
        "V": np.where(data.mask, data.V, 0.0).astype(dtype),
        "w": np.asarray(w, dtype),
        "mask": np.asarray(data.mask),
    }


@dataclasses.dataclass(frozen=True)
class _KnownDomain:
    """The model's domain checks as far as they do not depend on the free parameters: a
    permeability group with a free member is dropped; in a positive sum the free factors
    are dropped from each product (the fit can make them > 0), and a sum with an
    all-free product is dropped."""

    nonzero: tuple[tuple[str, ...], ...]
    positive: tuple[Positive, ...]


def _known_domain(m: Model, free: tuple[str, ...]) -> _KnownDomain:
    positive = []
    for p in getattr(m, "positive", ()):
        terms = tuple(tuple(n for n in t if n not in free) for t in p.terms)
        if all(terms):
            positive.append(Positive(p.what, terms) if terms != p.terms else p)
    return _KnownDomain(tuple(g for g in m.nonzero if not any(n in free for n in g)),
                        tuple(positive))


def check_known_domain(
    m: Model, free: tuple[str, ...], values: dict[str, np.ndarray], *, ranges_checked: bool = False
) -> None:
    """The fixed values and data conditions against the model's domain, by the rules of
    :func:`rpx.physics.params.check_params` (ranges, permeability groups and positive
    sums such as the GHK numerator), at every data point.

    ``ranges_checked``: every value has already passed :func:`check_values` in float64
    (as :func:`fit` checks fixed values and :func:`load_data` the conditions); only the
    model's domain (permeability groups, positive sums) is checked then, the same
    checks in the same order as :func:`check_params` makes after the ranges."""
    domain = _known_domain(m, free)
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in values.items()}
    if not ranges_checked:
        check_params(arrays, domain)
        return
    # The model checks of check_params (rpx.physics.params._domain_checks) on float64.
    for group in domain.nonzero:
        if all(g in arrays for g in group) and not np.all(
            functools.reduce(np.logical_or, (arrays[g] > 0 for g in group))
        ):
            raise ValueError(_nonzero_message(group))
    tiny = float(np.finfo(np.float64).tiny)
    for pos in domain.positive:
        if not all(n in arrays for t in pos.terms for n in t):
            continue
        acc = functools.reduce(
            np.logical_or,
            (functools.reduce(np.logical_and, (arrays[n] >= tiny for n in t)) for t in pos.terms),
        )
        if not np.all(acc):
            raise ValueError(pos.message())


@functools.lru_cache(maxsize=1024)
def _check_scalar(name: str, value: float) -> None:
    """:func:`check_values` of one float (float64); a value that passed is not checked
    again (a failing one raises every time: exceptions are not cached)."""
    check_values(name, value)


@functools.lru_cache(maxsize=64)
def _start_points(
    transforms: tuple[Transform, ...], center: tuple[float, ...], k: int, seed: int
) -> np.ndarray:
    """:func:`start_points` (read-only; the same arguments give the same draws)."""
    u = start_points(transforms, np.array(center), k, seed)
    u.flags.writeable = False
    return u


def fit(
    data: DataLike,
    model: str | Model = "ghk",
    free: str | Sequence[str] = ("P_Na",),
    fixed: str | Mapping[str, float] | None = None,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    *,
    preset: str = "default",
    init: Mapping[str, float] | None = None,
    starts: int = 8,
    seed: int = 0,
    adam_steps: int = 200,
    lm_steps: int = 40,
    learning_rate: float = 0.05,
    dtype: str | None = None,
    uncertainty: str = "gauss_newton",
    level: float = 0.95,
) -> xr.Dataset:
    """Fit free parameters of a registered model to measured resting potentials.

    Least squares in V: minimise Σ_i ((V_model(θ, conditions_i) - V_i)/sd_i)² over the
    free parameters θ, separately for every cell, all cells and starts in one jitted,
    ``vmap``-ed call. Each free parameter is optimised in an unconstrained coordinate:
    ln x for quantities bounded only below by 0, a logistic map onto ``bounds`` where
    given (on ln x when lo > 0 and the parameter spans decades). Of ``starts``
    starting points (the preset value, then Gaussian draws around it in those
    coordinates: one decade for log), each cell starts from the one that fits its data
    best and takes at most ``lm_steps`` Levenberg–Marquardt steps with the exact
    Jacobian, stopping once the optimum passes the convergence test and the
    Gauss–Newton step from it is below eps^(2/3). Only cells that then fail the
    convergence test or leave a direction undetermined (e.g. a permeability run off
    towards 0) are refitted from every start, each with at most ``adam_steps`` Adam
    steps (optax; handing over once its loss stops falling) then LM, the best start
    kept (``restarted``). ``iterations`` counts the steps of the kept start.

    Standard errors and correlations are the Gauss–Newton (Laplace) approximation
    Cov = s²·(JᵀJ)⁻¹ at the optimum (s² = 1 when ``V_sd`` is given, else the residual
    variance Σr²/(n - p)), mapped to physical units by the delta method.

    Identifiability: before fitting, the Jacobian at the start is checked for
    directions along which V does not change (σ_min/σ_max of J below a tolerance that
    scales with the dtype's epsilon). For each such direction an
    :class:`IdentifiabilityWarning` names it, the free parameter with the largest
    share in it is held fixed at its start value, and the others are reported also as
    ratios to it (``<name>_over_<held>``). For the passive GHK model with every
    permeability free, the direction is the common scale of all permeabilities (only
    their ratios set V; Hodgkin & Katz 1949, J. Physiol. 108:37). The same test after
    the fit flags cells whose data leave a direction undetermined (``identifiable``).

    Args:
        data: a pandas DataFrame, a CSV path or an xarray Dataset of conditions
            (columns named by parameter, e.g. ``K_o`` in mM), measured ``V`` (mV),
            optional ``V_sd`` (mV) and optional ``cell`` (one fit per cell).
        model: registered model name (``"ghk"``, ``"mullins_noda"``, ``"ghk_pump"``...).
        free: names of the parameters to fit (a list, or ``"P_Na,P_Cl"``).
        fixed: a preset name, or overrides {name: value} of preset ``preset``, for the
            parameters neither free nor in the data (a value for a parameter the data
            give, as a column or through a pipette/bath solution, is a ValueError).
        bounds: optional {name: (lo, hi)} for free parameters, in their units.
        preset: preset giving every value not in ``fixed`` (``rpx.presets()``).
        init: optional starting values of free parameters (default: preset values).
        starts: number of starting points (multi-start), >= 1.
        seed: seed of the random starts.
        adam_steps, lm_steps: iteration budgets of Adam (refits only) and of LM.
        learning_rate: Adam step size in unconstrained units.
        dtype: ``"float32"`` or ``"float64"``; default: JAX's default float.
        uncertainty: ``"gauss_newton"`` (standard errors only) or ``"profile"``: also
            profile-likelihood intervals at ``level`` (see :mod:`rpx.analysis.profile`):
            ``<name>_ci_lo``, ``<name>_ci_hi``, ``practically_identifiable`` and the
            profiles themselves.
        level: confidence level of the profile-likelihood intervals, in (0, 1).

    Returns:
        An xarray Dataset with, per ``cell`` (no ``cell`` dimension when the data have
        no ``cell`` column or dimension): every free parameter's estimate (named by the
        parameter) and standard error (``<name>_se``), ``correlation`` (param, param2),
        ``loss``, ``rmse``, ``status``/``converged``, ``identifiable``, ``flat_direction``,
        ``best_start``, ``iterations``, ``loss_history`` (iteration; after an early stop
        it repeats the last loss), the data and fitted curve
        (``V_obs``, ``V_fit`` and the condition columns over ``point``) and every fixed
        value as a scalar; all with ``units`` and ``long_name``, every floating-point
        variable (profile intervals included) in the working ``dtype``.

    Raises:
        ValueError: unknown model, parameter, column or preset; a free parameter the
            model does not read; a fixed value of a data column; bad bounds; missing,
            NaN or out-of-domain data; a cell with fewer points than free parameters.

    Example:
        >>> import pandas as pd
        >>> import rpx
        >>> K_o = [2.5, 5.0, 10.0, 20.0, 50.0, 100.0]
        >>> P_K = rpx.preset("default")["P_K"]  # fixed in the fit below
        >>> V = rpx.resting_potential({"K_o": K_o, "P_Na": 0.02 * P_K})
        >>> ds = fit(pd.DataFrame({"K_o": K_o, "V": V}), free=["P_Na"], starts=2)
        >>> round(float(ds["P_Na"] / ds["P_K"]), 4)
        0.02
    """
    m = get_model(model)
    free = _names(free)
    _check_free(free, m)
    if isinstance(fixed, str):
        preset, overrides = fixed, {}
    else:
        overrides = dict(fixed or {})
    for name in overrides:
        param(name)
        if name in free:
            raise ValueError(f"parameter {name!r} is free; give its starting value with init=")
        if name not in m.params:
            raise ValueError(f"fixed parameter {name!r} is not read by model {m.name!r}")
    bounds = _check_bounds(bounds or {}, free)
    if int(starts) != starts or starts < 1:
        raise ValueError(f"starts must be a positive integer, got {starts!r}")
    for label, steps in (("adam_steps", adam_steps), ("lm_steps", lm_steps)):
        if int(steps) != steps or steps < 0:
            raise ValueError(f"{label} must be a non-negative integer, got {steps!r}")
    dt = _resolve_dtype(dtype)
    if uncertainty not in ("gauss_newton", "profile"):
        raise ValueError(f"uncertainty must be 'gauss_newton' or 'profile', got {uncertainty!r}")
    if not (isinstance(level, (int, float)) and 0.0 < level < 1.0):
        raise ValueError(f"level must be in (0, 1), got {level!r}")

    data_ = load_data(data, m.params, free, fixed=overrides)
    other = tuple(n for n in m.params if n not in free and n not in data_.conditions)
    fixed_values = {k: float(v) for k, v in fill_defaults(overrides, other, preset).items()}
    for name, value in fixed_values.items():
        _check_scalar(name, value)
    init_values = fill_defaults(dict(init or {}), free, preset)
    for name in init or {}:
        if name not in free:
            raise ValueError(f"init given for {name!r}, which is not a free parameter")
    reference = {**preset_values(preset), **{k: float(v) for k, v in overrides.items()}}
    start = {
        n: _start_value(n, float(init_values[n]), bounds.get(n), n in (init or {}), reference)
        for n in free
    }
    for name, value in start.items():
        _check_scalar(name, value)
    check_known_domain(m, free, {**fixed_values, **data_.conditions}, ranges_checked=True)
    # Features inactive in every cell (strengths fixed at 0) are left out of the program.
    m = m.specialise({**fixed_values, **data_.conditions}, free)

    transforms = {n: Transform.for_param(PARAMS[n], bounds.get(n)) for n in free}
    cells = _cells_arrays(data_, dt)
    held: dict[str, tuple[float, tuple[str, ...]]] = {}
    while True:
        fit_free = tuple(n for n in free if n not in held)
        if not fit_free:
            raise ValueError(
                f"the data cannot identify any of the free parameters {', '.join(free)}: "
                "V does not change with them under these conditions"
            )
        fixed_all = {**fixed_values, **{n: h[0] for n, h in held.items()}}
        cfg = SolverConfig(
            m.fn,
            fit_free,
            tuple(transforms[n] for n in fit_free),
            int(adam_steps),
            int(lm_steps),
            float(learning_rate),
            data_.V_sd is not None,
            m.plain_points if PLAIN_FORMS_FIRST else None,
        )
        center = tuple(transforms[n].from_phys(start[n]) for n in fit_free)
        u0 = np.asarray(_start_points(cfg.transforms, center, int(starts), int(seed)), dt)
        fixed_arrays = {k: np.asarray(v, dt) for k, v in fixed_all.items()}
        out = _two_forms_where_needed(build_lm_solver, cfg, u0, cells, fixed_arrays)
        pick = _flat_at_start(out.pop("J0"), fit_free, transforms, start, dt)
        if pick is None:
            break
        held[pick[0]] = (start[pick[0]], pick[1])
    out = _refit_failed(out, cfg, u0, cells, fixed_arrays)
    _warn_after(out, fit_free, cfg.transforms, data_)
    ds = _to_dataset(out, m, cfg, data_, fixed_all, held, preset, int(starts), dt)
    if uncertainty == "profile":
        from rpx.analysis.profile import add_profile

        ds = add_profile(
            ds, m.fn, free, transforms, held, cells, fixed_values, cfg.absolute_sd, level,
            start, cfg.plain_points,
        )
    return ds


def _refit_failed(
    out: dict[str, np.ndarray], cfg: SolverConfig, u0: np.ndarray, cells: dict, fixed: dict
) -> dict[str, np.ndarray]:
    """Refit the cells that LM from their best start left unconverged or undetermined.

    A cell fails when its result does not pass the convergence test or leaves a
    direction undetermined (e.g. a permeability run off towards 0, where V no longer
    depends on it). The failed cells are refitted as before the Levenberg–Marquardt-first
    solver: Adam then LM from every start, the best kept. They go to
    :func:`build_solver` as one batch, padded to a power of two (by repeating the
    first) so that few batch shapes are compiled; each cell's result does not depend
    on the batch it is in. Adds ``restarted`` (bool per cell).
    """
    failed = np.flatnonzero((out["status"] != CONVERGED) | ~out["identifiable"])
    out["restarted"] = np.zeros(out["status"].shape, dtype=bool)
    # One start and no Adam: the refit would repeat the same LM run.
    if failed.size == 0 or (u0.shape[0] == 1 and cfg.adam_steps == 0):
        return out
    size = 1 << int(failed.size - 1).bit_length()
    take = np.concatenate([failed, np.full(size - failed.size, failed[0])])
    sub = jax.tree.map(lambda a: a[take], cells)
    again = _two_forms_where_needed(build_solver, cfg, u0, sub, fixed)
    out = {k: np.array(v) for k, v in out.items()}
    for key, value in again.items():
        out[key][failed] = value[: failed.size]
    out["restarted"][failed] = True
    return out


def _two_forms_where_needed(
    build: Callable[[SolverConfig], Callable[..., dict]], cfg: SolverConfig, u0: np.ndarray,
    cells: dict, fixed: dict,
) -> dict[str, np.ndarray]:
    """``build(cfg)(u0, cells, fixed)`` as host arrays: the program with the plain closed
    forms first, the two-form program for the cells that need it
    (:func:`~rpx.analysis.fit_solver.plain_forms_first`)."""

    def solve(plain_points: Callable | None, take: np.ndarray | None) -> dict:
        sub = cells if take is None else jax.tree.map(lambda a: a[take], cells)
        return build(dataclasses.replace(cfg, plain_points=plain_points))(u0, sub, fixed)

    return plain_forms_first(solve, cfg.plain_points)


def _resolve_dtype(dtype: str | None) -> jnp.dtype:
    if dtype is None:
        return jnp.result_type(float)
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    if dtype == "float64" and not jax.config.jax_enable_x64:
        raise ValueError("dtype='float64' needs jax.config.update('jax_enable_x64', True)")
    return jnp.dtype(dtype)


def _flat_at_start(
    J: np.ndarray,
    names: tuple[str, ...],
    transforms: dict[str, Transform],
    start: dict[str, float],
    dtype: jnp.dtype,
) -> tuple[str, tuple[str, ...]] | None:
    """The free parameter to hold fixed because V is flat along a direction at the start.

    ``J`` (cells, points, p): the unweighted residual Jacobians at the start. A direction
    is flat when V does not change along it in any cell: the test is on the Jacobians of
    all cells stacked (a direction flat in only some cells is left to the per-cell test
    after the fit). Unit weights, so the test does not depend on V_sd. Warns with
    :class:`IdentifiabilityWarning` when a direction is flat.

    Returns None, or (held name, the other free parameters in its flat direction).
    """
    _, svtol = tolerances(dtype)
    _, S, Wt = np.linalg.svd(
        np.asarray(J, dtype=np.float64).reshape(-1, len(names)), full_matrices=False
    )
    if S[0] > 0 and S[-1] >= svtol * S[0]:
        return None
    v = Wt[-1] * np.sign(Wt[-1][np.argmax(np.abs(Wt[-1]))])
    share = np.abs(v)
    pick = names[int(np.flatnonzero(share >= share.max() * (1 - 1e-3))[0])]
    involved = [n for n, c in zip(names, v, strict=True) if abs(c) > 0.05]
    unit = PARAMS[pick].units
    warnings.warn(
        f"parameters {', '.join(involved)} cannot all be identified from V: along "
        f"{_direction_text(names, [transforms[n] for n in names], v)} the model's V "
        f"does not change (σ_min/σ_max of the Jacobian = {S[-1] / S[0]:.1e}); for the "
        "passive GHK model this is the common scale of the permeabilities, of which "
        f"only ratios matter. Holding {pick} fixed at {start[pick]:g} {unit} (its "
        f"starting value) and reporting the others also as ratios to it "
        f"({', '.join(f'{n}_over_{pick}' for n in involved if n != pick)}).",
        IdentifiabilityWarning,
        stacklevel=3,
    )
    return pick, tuple(n for n in involved if n != pick)


def _warn_after(
    out: dict, names: tuple[str, ...], transforms: tuple[Transform, ...], data: FitData
) -> None:
    bad = np.flatnonzero(~out["identifiable"])
    if bad.size:
        c = bad[0]
        # An estimate on a bound of its box leaves the same flat direction (the bounded
        # coordinate saturates): say so, it is the box, not the data, that is at fault.
        on_bound = [
            (n, b, t)
            for i, (n, t) in enumerate(zip(names, transforms, strict=True))
            if t.kind != "log"
            for b in (t.lo, t.hi)
            if math.isfinite(b) and np.isclose(out["x"][c, i], b, rtol=1e-4, atol=0.0)
        ]
        if on_bound:
            n, b, t = on_bound[0]
            advice = (
                f"{n} = {b:g} {PARAMS[n].units} is on a bound of bounds=({t.lo:g}, {t.hi:g}) "
                "there: the data favour a value outside the box; widen the bounds or check "
                "the data."
            )
        else:
            advice = "Fix one of the parameters involved or add informative conditions."
        warnings.warn(
            f"{bad.size} of {len(data.cells)} cells leave a direction of the free parameters "
            f"undetermined (first: cell {show(data.cells[c])}, along "
            f"{_direction_text(names, transforms, out['flat'][c])}); their standard errors "
            f"are NaN. {advice}",
            IdentifiabilityWarning,
            stacklevel=3,
        )
    failed = np.flatnonzero(out["status"] != CONVERGED)
    if failed.size:
        warnings.warn(
            f"{failed.size} of {len(data.cells)} cells did not converge (first: cell "
            f"{show(data.cells[failed[0]])}); see the status and loss_history variables, or "
            "raise lm_steps or starts",
            RuntimeWarning,
            stacklevel=3,
        )


def _attrs(units: str, long_name: str, **extra: object) -> dict[str, object]:
    return {"units": units, "long_name": long_name, **extra}


def _to_dataset(
    out: dict,
    m: Model,
    cfg: SolverConfig,
    data: FitData,
    fixed: dict[str, float],
    held: dict[str, tuple[float, tuple[str, ...]]],
    preset: str,
    starts: int,
    dtype: jnp.dtype,
) -> xr.Dataset:
    names = list(cfg.free)

    def var(dims: tuple[str, ...], values: object, attrs: dict, cast: bool = True
            ) -> xr.Variable:
        a = np.asarray(values)
        if cast and a.dtype.kind == "f":  # every float in the working precision
            a = a.astype(dtype, copy=False)
        # Data without cells: the one cell's values, no cell dimension.
        if data.squeeze and dims[:1] == ("cell",):
            dims, a = dims[1:], np.asarray(a[0])
        # A numeric array is stored as it is, which is what xarray's checks would conclude.
        return xr.Variable(dims, a, attrs, fastpath=a.dtype.kind not in "OMm")

    C = ("cell",)
    absolute = cfg.absolute_sd
    v: dict[str, xr.Variable] = {}
    for i, n in enumerate(names):
        p = PARAMS[n]
        v[n] = var(C, out["x"][:, i], _attrs(p.units, f"fitted {p.long_name}"))
        v[f"{n}_se"] = var(
            C, out["se"][:, i], _attrs(p.units, f"standard error of fitted {p.long_name}")
        )
    for h, (value, involved) in held.items():
        for i, n in enumerate(names):
            if n not in involved:
                continue
            ph = PARAMS[h]
            units = "1" if PARAMS[n].units == ph.units else f"{PARAMS[n].units}/({ph.units})"
            desc = (
                f"{n}/{h} ({h} held fixed at {value:g} {ph.units}: only the ratio is "
                "identifiable)"
            )
            v[f"{n}_over_{h}"] = var(C, out["x"][:, i] / value, _attrs(units, desc))
            v[f"{n}_over_{h}_se"] = var(
                C, out["se"][:, i] / value, _attrs(units, f"standard error of {n}/{h}")
            )
    v["correlation"] = var(
        ("cell", "param", "param2"), out["corr"], _attrs("1", "correlation of the estimates")
    )
    loss_units = "1" if absolute else "mV^2"
    loss_name = (
        "mean squared standardized residual ((V_fit - V_obs)/V_sd)^2"
        if absolute
        else "mean squared residual (V_fit - V_obs)^2"
    )
    v["loss"] = var(C, out["loss"], _attrs(loss_units, loss_name))
    resid = np.where(data.mask, out["V_fit"] - data.V, np.nan)
    sq = resid**2
    real = ~np.isnan(sq)
    # np.nanmean(sq, axis=1) as numpy computes it (the sum of the non-NaN values over
    # their count), without its overhead; rows without any (all-NaN) go to nanmean,
    # which warns about them.
    rmse = np.sqrt(
        np.sum(np.where(real, sq, 0.0), axis=1) / real.sum(axis=1)
        if real.any(axis=1).all()
        else np.nanmean(sq, axis=1)
    )
    v["rmse"] = var(C, rmse, _attrs("mV", "root mean square residual of V"))
    v["n_points"] = var(C, data.n_points, _attrs("1", "number of data points"))
    v["status"] = var(
        C,
        out["status"],
        _attrs("1", "fit status", flag_values=[0, 1, 2], flag_meanings=STATUS_MEANINGS),
    )
    v["converged"] = var(C, out["status"] == CONVERGED, _attrs("1", "fit converged"))
    v["identifiable"] = var(
        C, out["identifiable"], _attrs("1", "every direction of the free parameters determined")
    )
    v["singular_value_ratio"] = var(
        C, out["sv_ratio"], _attrs("1", "smallest/largest singular value of the Jacobian")
    )
    v["flat_direction"] = var(
        ("cell", "param"),
        out["flat"],
        _attrs(
            "1",
            "least determined direction in unconstrained coordinates (unit vector; ln x for "
            "log-transformed parameters)",
        ),
    )
    v["best_start"] = var(C, out["best_start"], _attrs("1", "index of the best start"))
    v["iterations"] = var(
        C, out["iterations"], _attrs("1", "Adam plus Levenberg-Marquardt steps the best start ran")
    )
    v["restarted"] = var(
        C,
        out["restarted"],
        _attrs(
            "1",
            "refitted with Adam then Levenberg-Marquardt from every start, because "
            "Levenberg-Marquardt from the best start did not converge or left a direction "
            "undetermined",
        ),
    )
    v["loss_history"] = var(
        ("cell", "iteration"), out["history"], _attrs(loss_units, f"{loss_name} per iteration")
    )
    v["V_obs"] = var(("cell", "point"), data.V, _attrs("mV", "measured resting potential"))
    if data.V_sd is not None:
        v["V_sd"] = var(
            ("cell", "point"),
            np.where(data.mask, data.V_sd, np.nan),
            _attrs("mV", "standard deviation of the measured potential"),
        )
    v["V_fit"] = var(
        ("cell", "point"), out["V_fit"], _attrs("mV", f"fitted resting potential ({m.name})")
    )
    for n, values in data.conditions.items():
        p = PARAMS[n]
        v[n] = var(
            ("cell", "point"), np.where(data.mask, values, np.nan), _attrs(p.units, p.long_name)
        )
    for n, value in fixed.items():
        p = PARAMS[n]
        note = "held fixed (not identifiable)" if n in held else "fixed"
        v[n] = var((), value, _attrs(p.units, f"{p.long_name} ({note})"))
    # Strings as object arrays: zarr 3 stores them as variable-length UTF-8.
    labels = data.cells.astype(object) if data.cells.dtype.kind in "US" else data.cells
    coords = (
        {} if data.squeeze else {"cell": var(C, labels, _attrs("1", "cell label"), cast=False)}
    )
    attrs = {
        "title": f"rpx fit of model {m.name}",
        "model": m.name,
        "preset": preset,
        "free": names,
        "held_fixed": list(held),
        "starts": starts,
        "adam_steps": cfg.adam_steps,
        "lm_steps": cfg.lm_steps,
        "sd": "absolute (data V_sd)" if absolute else "estimated from the residuals",
        "method": "Levenberg-Marquardt from the best start in unconstrained coordinates; "
        "cells that fail refitted from every start with optax Adam then "
        "Levenberg-Marquardt; Gauss-Newton standard errors",
    }
    shared = _shared_coords(tuple(names), data.V.shape[1], cfg.adam_steps, cfg.lm_steps)
    return _assemble(v, coords, attrs, shared)


@functools.lru_cache(maxsize=64)
def _shared_coords(
    names: tuple[str, ...], n_points: int, adam_steps: int, lm_steps: int
) -> xr.Coordinates:
    """The coordinates that depend only on the free parameters and sizes (``param``,
    ``param2``, ``point``, ``iteration``, ``stage``) with their indexes, built once per
    process: their arrays are read-only and their (immutable) indexes shared by every
    fit with the same arguments; :func:`_assemble` gives each Dataset its own
    variables (and attributes)."""
    stage = np.array(["adam"] * adam_steps + ["levenberg_marquardt"] * lm_steps, dtype=object)
    names_obj = np.array(names, dtype=object)
    coords = {
        "param": xr.Variable(("param",), names_obj, _attrs("1", "free parameter")),
        "param2": xr.Variable(("param2",), names_obj, _attrs("1", "free parameter")),
        "point": xr.Variable(("point",), np.arange(n_points), _attrs("1", "data point")),
        "iteration": xr.Variable(
            ("iteration",), np.arange(stage.size), _attrs("1", "optimizer iteration")
        ),
        "stage": xr.Variable(("iteration",), stage, _attrs("1", "optimizer stage")),
    }
    stage.flags.writeable = names_obj.flags.writeable = False
    return xr.Coordinates(coords)


def _default_index(name: str, coord: xr.Variable) -> PandasIndex:
    """The default index of dimension coordinate ``name``: what xr.Coordinates builds
    (``PandasIndex.from_variables``), made directly; for integer labels the pandas
    Index is built here (xarray's cast to an index is ``pd.Index(values)`` for them)."""
    if coord.dtype.kind in "iu":
        index = pd.Index(coord.values, name=name)
        return PandasIndex(index, name, coord_dtype=coord.dtype, fastpath=True)
    return PandasIndex(coord.data, name, coord_dtype=coord.dtype)


def _assemble(
    data_vars: dict[str, xr.Variable],
    coords: dict[str, xr.Variable],
    attrs: dict,
    shared: xr.Coordinates,
) -> xr.Dataset:
    """``xr.Dataset(data_vars, coords={**coords, **shared}, attrs=attrs)``, without its
    merge step.

    The variables are built consistent by construction (shared dimensions of equal
    length, no conflicting names), so the general constructor's alignment and merge
    (~1 ms, most of a one-cell fit) are skipped: the shared coordinates and their
    indexes come from ``xr.Coordinates`` (``shared``: built once, see
    :func:`_shared_coords`; each Dataset gets shallow copies of its variables), the
    others (dimension coordinates: ``cell``) get their default index from
    :func:`_default_index`, and the Dataset is assembled from them directly with its
    dimensions given. Where that constructor is unavailable in an xarray version, the
    general one is used; tests check that both give identical Datasets.
    """
    shared_vars = {k: v.copy(deep=False) for k, v in shared.variables.items()}
    try:
        # Each coordinate is a dimension coordinate: its default index is the
        # PandasIndex that xr.Coordinates would build (PandasIndex.from_variables),
        # made here directly.
        indexes = {k: _default_index(k, c) for k, c in coords.items()}
        coord_vars = {}
        for k, idx in indexes.items():
            coord_vars |= idx.create_variables({k: coords[k]})
        variables = {**coord_vars, **shared_vars, **data_vars}
        # The dimensions in order of first appearance, as xarray's calculate_dimensions
        # finds them: every dimension of a data variable is one of a coordinate's.
        dims: dict = {}
        for v in (*coord_vars.values(), *shared_vars.values()):
            for d, n in zip(v.dims, v.shape, strict=True):
                dims.setdefault(d, n)
        return xr.Dataset._construct_direct(
            variables,
            set(coord_vars) | set(shared_vars),
            dims=dims,
            attrs=attrs,
            indexes={**indexes, **shared.xindexes},
        )
    except (AttributeError, TypeError):  # pragma: no cover - other xarray versions
        return xr.Dataset(data_vars, coords={**coords, **shared_vars}, attrs=attrs)
