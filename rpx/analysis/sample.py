"""Posterior sampling of model parameters from measured resting potentials (``rpx.sample``).

Bayesian counterpart of :func:`rpx.fit`: the same data table (read by
:func:`rpx.analysis.fit_data.load_data`), the same models and parameter vocabulary, the
same unconstrained coordinates (:class:`rpx.analysis.fit_solver.Transform`), but instead
of an optimum with Gauss–Newton errors it returns posterior draws of every free
parameter, per cell, from the No-U-Turn Sampler (NUTS; Hoffman & Gelman 2014, JMLR
15:1593) of BlackJAX (Cabezas et al. 2024, arXiv:2402.10797).

Model of one cell (points i, free parameters θ, optional noise σ)::

    V_i ~ Normal(V_model(θ, conditions_i), sd_i²)     sd_i = V_sd_i when the data give it,
                                                        else one σ per cell (sampled)
    θ_k ~ Uniform(lo_k, hi_k)          in x_k, or in ln x_k for positive log-scaled ones
    σ   ~ LogUniform(noise_bounds)     (mV)

Every parameter is sampled in the logit coordinate z of its box (x = lo + (hi - lo)·s(z),
or ln x = ln lo + (ln hi - ln lo)·s(z), s the logistic function), where the prior
density including the Jacobian is s(z)·(1 - s(z)): each box is mapped to the whole real
line, so the sampler never steps out of it.

Everything runs in one jitted call per batch of cells: ``vmap`` over cells of ``vmap``
over chains of BlackJAX's window adaptation (Stan's warmup: step size by dual averaging
to a target acceptance rate, dense inverse mass matrix from the warmup draws) followed by
``lax.scan`` over NUTS transitions. Convergence diagnostics are BlackJAX's JAX versions
of the rank-normalised split R-hat, bulk and tail effective sample sizes of Vehtari et
al. (2021, Bayesian Analysis 16:667), tested against ArviZ.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import warnings
from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from jax import Array, lax

from rpx.analysis.fit import IdentifiabilityWarning, check_known_domain
from rpx.analysis.fit_data import CELL_COL, DataLike, FitData, load_data
from rpx.analysis.fit_solver import LOG_LOGIT, LOGIT, Transform, forms
from rpx.physics.api import fill_defaults
from rpx.physics.models import Model, get_model
from rpx.physics.params import PARAMS, check_values, param
from rpx.physics.presets import preset as preset_values

# Default prior box of a free parameter without ``bounds``: a log-scaled positive
# parameter spans DEFAULT_DECADES decades either side of its reference value (preset,
# ``fixed`` override or ``center``), clipped to its allowed range; any other parameter
# spans its allowed range.
DEFAULT_DECADES = 3.0
# Default prior box of the noise standard deviation σ (mV), log-uniform.
NOISE_BOUNDS = (0.01, 100.0)
NOISE = "noise_sd"
# Chains start at independent Uniform(-INIT_RADIUS, INIT_RADIUS) draws in the
# unconstrained coordinates, as Stan does by default (Stan Reference Manual,
# "Initialization": uniform on (-2, 2)).
INIT_RADIUS = 2.0
# Convergence criteria of ``converged`` (Vehtari et al. 2021, §4: R-hat < 1.01 and
# bulk and tail ESS above 100 per chain) plus no divergent transition.
RHAT_MAX = 1.01
ESS_PER_CHAIN_MIN = 100.0
# Bits of the per-cell ``convergence_failed`` flag: which criterion a cell missed.
FAILED_RHAT, FAILED_ESS_BULK, FAILED_ESS_TAIL, FAILED_DIVERGENCES = 1, 2, 4, 8
_FAILED_CHECKS = (
    (FAILED_RHAT, "rhat_too_large"),
    (FAILED_ESS_BULK, "bulk_ess_too_small"),
    (FAILED_ESS_TAIL, "tail_ess_too_small"),
    (FAILED_DIVERGENCES, "divergent_transitions"),
)


def convergence_flags(
    max_rhat: np.ndarray,
    min_ess_bulk: np.ndarray,
    min_ess_tail: np.ndarray,
    divergences: np.ndarray,
    chains: int,
) -> np.ndarray:
    """Per cell, the bits of the convergence checks that failed (0: converged).

    The checks (Vehtari et al. 2021, §4): max R-hat < :data:`RHAT_MAX`
    (:data:`FAILED_RHAT`), smallest bulk and tail ESS >= :data:`ESS_PER_CHAIN_MIN` per
    chain (:data:`FAILED_ESS_BULK`, :data:`FAILED_ESS_TAIL`), no divergent transition
    (:data:`FAILED_DIVERGENCES`). A NaN diagnostic fails its check.
    """
    need = ESS_PER_CHAIN_MIN * chains
    return (
        np.where(~(np.asarray(max_rhat) < RHAT_MAX), FAILED_RHAT, 0)
        | np.where(~(np.asarray(min_ess_bulk) >= need), FAILED_ESS_BULK, 0)
        | np.where(~(np.asarray(min_ess_tail) >= need), FAILED_ESS_TAIL, 0)
        | np.where(np.asarray(divergences) > 0, FAILED_DIVERGENCES, 0)
    ).astype(np.int8)


def convergence_failures(cell: object, chains: int) -> str:
    """Why one cell of a :func:`sample` result is not converged, e.g.
    ``"bulk ESS 138 < 200 (100 per chain x 2 chains)"``; ``""`` when it converged.

    Args:
        cell: the result Dataset of one cell (``ds.sel(cell=c)``, or ``ds`` itself when
            there is no cell dimension), with ``convergence_failed``, ``max_rhat``,
            ``min_ess_bulk``, ``min_ess_tail`` and ``divergences``.
        chains: number of chains of the run.
    """
    flags = int(cell["convergence_failed"])
    need = ESS_PER_CHAIN_MIN * chains
    per = f"({ESS_PER_CHAIN_MIN:g} per chain x {chains} chains)"
    reasons = []
    if flags & FAILED_RHAT:
        reasons.append(f"max R-hat {float(cell['max_rhat']):.3f} >= {RHAT_MAX}")
    if flags & FAILED_ESS_BULK:
        reasons.append(f"bulk ESS {float(cell['min_ess_bulk']):.0f} < {need:g} {per}")
    if flags & FAILED_ESS_TAIL:
        reasons.append(f"tail ESS {float(cell['min_ess_tail']):.0f} < {need:g} {per}")
    if flags & FAILED_DIVERGENCES:
        reasons.append(f"{int(cell['divergences'])} divergent transitions")
    return "; ".join(reasons)
# A parameter counts as determined by the data (``determined``) when its posterior
# variance is below half its prior variance in the sampled coordinate (ln x or x), i.e.
# posterior contraction 1 - var_post/var_prior >= CONTRACTION_MIN (the contraction of
# bayesflow.diagnostics.posterior_contraction).
CONTRACTION_MIN = 0.5
# σ_min/σ_max of the stacked Jacobian below which a direction counts as flat in every
# cell (the identifiability pre-check; the same floor as the fit's float64 tolerance).
SV_TOL = 1e-6


# ---------------------------------------------------------------- argument checks
# The next helpers repeat a few lines of private helpers of rpx.analysis.fit (free
# names, bounds, starting/reference value) so that this module depends only on the
# fitter's public names.
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


def _check_pair(name: str, pair: object, lo_min: float, hi_max: float, domain: str) -> tuple:
    try:
        lo, hi = (float(v) for v in pair)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ValueError(f"bounds of {name} must be a pair (lo, hi), got {pair!r}") from None
    if not (lo < hi and math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"bounds of {name} must be finite with lo < hi, got ({lo}, {hi})")
    if lo < lo_min or hi > hi_max:
        raise ValueError(f"bounds ({lo:g}, {hi:g}) of {name} leave its allowed range {domain}")
    return lo, hi


def _reference(name: str, value: float, reference: Mapping[str, float]) -> float:
    """Centre of the default box of a log-scaled parameter (physical units).

    A preset value of 0 (e.g. ``P_Cl`` of a preset without chloride) is replaced by the
    geometric mean of the positive values with the same units, as in ``rpx.fit``.
    """
    if value > 0:
        return value
    same = [
        v for k, v in reference.items()
        if k != name and v > 0 and PARAMS[k].units == PARAMS[name].units
    ]
    if not same:
        raise ValueError(
            f"free parameter {name} has reference value {value:g} {PARAMS[name].units}; "
            "its log-uniform prior needs bounds= (or a positive center=)"
        )
    return math.exp(sum(math.log(v) for v in same) / len(same))


def _prior_box(name: str, ref: float | None) -> tuple[float, float]:
    p = PARAMS[name]
    if p.log_scale and ref is not None:
        lo = max(ref * 10.0**-DEFAULT_DECADES, p.lo)
        hi = min(ref * 10.0**DEFAULT_DECADES, p.hi)
        if lo == 0.0:  # the domain starts at 0: keep the box log-uniform
            lo = ref * 10.0**-DEFAULT_DECADES
        return lo, hi
    return p.lo, p.hi


def _positive_int(label: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{label} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _resolve_dtype(dtype: str | None) -> jnp.dtype:
    if dtype is None:
        return jnp.result_type(float)
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    if dtype == "float64" and not jax.config.jax_enable_x64:
        raise ValueError("dtype='float64' needs jax.config.update('jax_enable_x64', True)")
    return jnp.dtype(dtype)


# ---------------------------------------------------------------- the jitted sampler
@dataclasses.dataclass(frozen=True)
class SamplerConfig:
    """Everything that shapes the compiled sampling program (hashable, so it caches).

    ``transforms`` has one entry per sampled coordinate: the free parameters, then the
    noise σ when ``noise`` (no ``V_sd`` in the data).
    """

    model_fn: Callable[[dict[str, Array]], dict[str, Array]]
    free: tuple[str, ...]
    transforms: tuple[Transform, ...]
    noise: bool
    warmup: int
    draws: int
    target_accept: float
    max_tree_depth: int
    # The model's plain_points where every draw of the cells this program samples lies
    # where the plain closed forms are exact (see _plain_cells): the program then holds
    # those forms only (rpx.physics.formulas.plain_closed_forms); None: the two-form model.
    plain_points: Callable[[dict[str, Array]], Array] | None = None


def _model_V(cfg: SamplerConfig, x: Array, cond: dict, fixed: dict) -> Array:
    # As rpx.analysis.fit_solver._model_V: V at every point, broadcast to the points.
    params = {**fixed, **cond, **{name: x[i] for i, name in enumerate(cfg.free)}}
    V = cfg.model_fn(params)["V"]
    shape = jnp.broadcast_shapes(*(jnp.shape(v) for v in cond.values()), jnp.shape(V))
    return jnp.broadcast_to(V, shape)


def _to_phys(cfg: SamplerConfig, z: Array) -> Array:
    return jnp.stack([t.to_phys(z[i]) for i, t in enumerate(cfg.transforms)])


def log_density(cfg: SamplerConfig, z: Array, cell: dict, fixed: dict) -> Array:
    """Log posterior density (up to a constant) of one cell at unconstrained ``z`` (d,).

    Gaussian likelihood of the measured V (sd from the data or the sampled σ) plus the
    log prior with the Jacobian of the logit map, Σ ln s(z)(1 - s(z)).
    """
    x = _to_phys(cfg, z)
    V = _model_V(cfg, x, cell["cond"], fixed)
    r = jnp.where(cell["mask"], (V - cell["V"]) * cell["w"], 0.0)
    if cfg.noise:
        sigma = x[-1]
        n = jnp.sum(cell["mask"].astype(z.dtype))
        loglik = -0.5 * jnp.sum(r * r) / (sigma * sigma) - n * jnp.log(sigma)
    else:
        loglik = -0.5 * jnp.sum(r * r)
    logprior = -jnp.sum(jax.nn.softplus(z) + jax.nn.softplus(-z))
    out = loglik + logprior
    return jnp.where(jnp.isfinite(out), out, -jnp.inf)


def _one_chain(cfg: SamplerConfig, key: Array, z0: Array, cell: dict, fixed: dict) -> dict:
    """Stan's warmup then NUTS draws of one chain, in one ``fori_loop`` over one kernel.

    The warmup is BlackJAX's building blocks of ``window_adaptation`` composed here
    (Stan's schedule ``build_schedule``: a fast window, doubling slow windows that
    estimate a dense inverse mass matrix by Welford's algorithm, a final fast window;
    step size by dual averaging toward ``target_accept``, its running average kept at
    the end), so that the NUTS kernel is traced and compiled once, not once for the
    warmup and once for the draws. Only the ``draws`` after the warmup are stored.
    """
    import blackjax
    from blackjax.adaptation.mass_matrix import mass_matrix_adaptation
    from blackjax.adaptation.step_size import dual_averaging_adaptation
    from blackjax.adaptation.window_adaptation import build_schedule

    def logdensity(z: Array) -> Array:
        return log_density(cfg, z, cell, fixed)

    kernel = blackjax.nuts.build_kernel()
    mm_init, mm_update, mm_final = mass_matrix_adaptation(False)
    da_init, da_update, da_final = dual_averaging_adaptation(cfg.target_accept)
    with jax.ensure_compile_time_eval():  # a constant of the program
        schedule = np.array(build_schedule(cfg.warmup), dtype=np.int32).reshape(-1, 2)
    stage = jnp.asarray(schedule[:, 0], jnp.int32)
    window_end = jnp.asarray(schedule[:, 1].astype(bool))
    dtype = z0.dtype
    d = z0.shape[0]

    state = blackjax.nuts.init(z0, logdensity)
    mm = mm_init(d)
    da = da_init(jnp.asarray(1.0, dtype))
    keys = jax.random.split(key, cfg.warmup + cfg.draws)
    zeros = jnp.zeros((), dtype)
    trace = {
        "z": jnp.zeros((cfg.draws, d), dtype),
        "log_density": jnp.zeros((cfg.draws,), dtype),
        "divergent": jnp.zeros((cfg.draws,), bool),
        "accept": jnp.zeros((cfg.draws,), dtype),
        "n_steps": jnp.zeros((cfg.draws,), jnp.int32),
    }
    carry = (state, mm, da, jnp.exp(da.log_step_size), mm.inverse_mass_matrix, trace)

    def adapt(i: Array, st: object, acc: Array, mm: object, da: object, imm: Array) -> tuple:
        slow = stage[i] == 1
        da = da_update(da, acc)
        mm_new = mm_update(mm, st.position)
        mm = jax.tree.map(lambda a, b: jnp.where(slow, a, b), mm_new, mm)
        end = window_end[i]
        mm_done = mm_final(mm)
        mm = jax.tree.map(lambda a, b: jnp.where(end, a, b), mm_done, mm)
        imm = jnp.where(end, mm.inverse_mass_matrix, imm)
        da = jax.tree.map(lambda a, b: jnp.where(end, a, b), da_init(da_final(da)), da)
        step = jnp.exp(da.log_step_size)
        last = i == cfg.warmup - 1
        step = jnp.where(last, da_final(da), step)
        return mm, da, step, imm

    def body(i: Array, carry: tuple) -> tuple:
        st, mm, da, step, imm, trace = carry
        st, info = kernel(keys[i], st, logdensity, step, imm, max_num_doublings=cfg.max_tree_depth)
        acc = info.acceptance_rate.astype(dtype)
        if cfg.warmup:
            # The loop index is not batched, so this stays a branch under vmap.
            mm, da, step, imm = lax.cond(
                i < cfg.warmup,
                lambda: adapt(jnp.minimum(i, cfg.warmup - 1), st, acc, mm, da, imm),
                lambda: (mm, da, step, imm),
            )
        # Warmup transitions write slot 0, which the first draw overwrites.
        j = jnp.maximum(i - cfg.warmup, 0)
        rec = {
            "z": st.position,
            "log_density": st.logdensity,
            "divergent": info.is_divergent,
            "accept": acc,
            "n_steps": info.num_integration_steps.astype(jnp.int32),
        }
        trace = jax.tree.map(
            lambda buf, v: lax.dynamic_update_index_in_dim(buf, v, j, 0), trace, rec
        )
        return st, mm, da, step, imm, trace

    _, _, _, step, _, trace = lax.fori_loop(0, cfg.warmup + cfg.draws, body, carry)
    x = jax.vmap(lambda v: _to_phys(cfg, v))(trace["z"])
    return {
        "x": x,
        "log_density": trace["log_density"],
        "divergent": trace["divergent"],
        "accept": jnp.mean(trace["accept"]),
        "n_steps": jnp.mean(trace["n_steps"].astype(dtype)) + zeros,
        "step_size": step,
    }


@functools.lru_cache(maxsize=16)
def build_sampler(cfg: SamplerConfig) -> Callable[..., dict[str, Array]]:
    """Jitted ``run(keys, z0, cells, fixed)`` for ``cfg``.

    Args (of the returned function):
        keys: (C, K) PRNG keys, one per cell and chain.
        z0: (C, K, d) unconstrained starting points.
        cells: dict with ``cond`` (name -> (C, N)), ``V`` (C, N, mV, zero on padding),
            ``w`` (C, N, 1/sd in 1/mV, or ones) and ``mask`` (C, N, bool).
        fixed: parameter name -> 0-d array.

    Returns per cell and chain: draws ``x`` (C, K, draws, d, physical units),
    ``log_density`` and ``divergent`` (C, K, draws), mean ``accept`` rate, mean
    ``n_steps`` (leapfrog steps per transition) and the adapted ``step_size`` (C, K);
    and per cell and coordinate the diagnostics ``rhat``, ``ess_bulk``, ``ess_tail``
    (C, d) computed on the physical draws.
    """
    from blackjax.diagnostics import ess_bulk, ess_tail, rhat

    def run(keys: Array, z0: Array, cells: dict, fixed: dict) -> dict[str, Array]:
        def per_cell(k: Array, z: Array, cell: dict) -> dict:
            out = jax.vmap(lambda kk, zz: _one_chain(cfg, kk, zz, cell, fixed))(k, z)
            x = out["x"]  # (K, draws, d)
            d = x.shape[-1]  # BlackJAX squeezes a single coordinate away; keep (d,)
            out["rhat"] = jnp.reshape(rhat(x, chain_axis=0, sample_axis=1), (d,))
            out["ess_bulk"] = jnp.reshape(ess_bulk(x, chain_axis=0, sample_axis=1), (d,))
            out["ess_tail"] = jnp.reshape(ess_tail(x, chain_axis=0, sample_axis=1), (d,))
            return out

        # BlackJAX mixes Python scalars and int32 counters with the float draws; let it
        # promote as it was written to even when the caller runs with strict promotion.
        with jax.numpy_dtype_promotion("standard"), forms(cfg.plain_points):
            return jax.vmap(per_cell)(keys, z0, cells)

    return jax.jit(run)


# ---------------------------------------------------------------- identifiability
@functools.lru_cache(maxsize=16)
def _build_jacobian(cfg: SamplerConfig) -> Callable[..., Array]:
    """Jitted ``jac(z, cells, fixed)``: dV/dz of the free parameters, (C, N, p)."""
    p = len(cfg.free)
    free_cfg = dataclasses.replace(cfg, transforms=cfg.transforms[:p])

    def V(z: Array, cell: dict, fixed: dict) -> Array:
        x = _to_phys(free_cfg, z)
        return jnp.where(cell["mask"], _model_V(cfg, x, cell["cond"], fixed), 0.0)

    def run(z: Array, cells: dict, fixed: dict) -> Array:
        with forms(cfg.plain_points):
            return jax.vmap(jax.jacfwd(V), in_axes=(None, 0, None))(z, cells, fixed)

    return jax.jit(run)


def _plain_cells(
    m: Model, boxes: Mapping[str, tuple[float, float]], cells: dict, fixed: dict
) -> np.ndarray:
    """Bool per cell: every point of the prior box of the free parameters is one where
    the model's plain closed forms are exact, at every data point of the cell.

    For a model whose ``plain_points`` tests sums nondecreasing in every parameter
    (``Model.plain_monotone``), that holds over a box with lower corner >= 0 when it
    holds at the box's two extreme corners; the draws of a cell never leave its box (the
    logistic maps of the prior). Other models: False for every cell.
    """
    n_cells = cells["V"].shape[0]
    lows = [lo for lo, _ in boxes.values()]
    if m.plain_points is None or not m.plain_monotone or min(lows, default=0.0) < 0:
        return np.zeros(n_cells, bool)
    mask = np.asarray(cells["mask"], bool)
    ok = np.ones(mask.shape, bool)
    for corner in (0, 1):
        values = {**fixed, **cells["cond"], **{n: b[corner] for n, b in boxes.items()}}
        arrays = {k: jnp.asarray(v, cells["V"].dtype) for k, v in values.items()}
        ok &= np.broadcast_to(np.asarray(m.plain_points(arrays)), mask.shape)
    return np.all(ok | ~mask, axis=1)


def _flat_directions(
    cfg: SamplerConfig, cells: dict, fixed: dict, dtype: jnp.dtype
) -> list[np.ndarray]:
    """Unit vectors (in z of the free parameters) along which V is flat in every cell.

    Tested at the centre of the prior box (z = 0) on the Jacobians of all cells stacked,
    with unit weights, as ``rpx.fit`` does at its start.
    """
    p = len(cfg.free)
    J = _build_jacobian(cfg)(jnp.zeros(p, dtype), cells, fixed)
    J = np.asarray(J, dtype=np.float64).reshape(-1, p)
    _, S, Wt = np.linalg.svd(J, full_matrices=False)
    if S[0] == 0:
        return [Wt[k] for k in range(p)]
    return [Wt[k] for k in range(p) if S[k] < SV_TOL * S[0]]


# ---------------------------------------------------------------- the public function
def sample(
    data: DataLike,
    model: str | Model = "ghk",
    free: str | Sequence[str] = ("P_Na",),
    fixed: str | Mapping[str, float] | None = None,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    *,
    preset: str = "default",
    center: Mapping[str, float] | None = None,
    draws: int = 1000,
    chains: int = 4,
    warmup: int = 1000,
    seed: int = 0,
    target_accept: float = 0.8,
    max_tree_depth: int = 10,
    noise_bounds: tuple[float, float] = NOISE_BOUNDS,
    cell_batch: int | None = None,
    dtype: str | None = None,
) -> xr.Dataset:
    """Posterior draws of free model parameters, per cell, from NUTS (BlackJAX).

    Likelihood: V_i ~ Normal(V_model(θ, conditions_i), sd_i²) independently, with sd_i
    the data's ``V_sd`` when given, else one noise σ per cell sampled with the
    parameters (log-uniform prior on ``noise_bounds``, mV). Priors, independent:

    * a free parameter with ``bounds=(lo, hi)``: log-uniform on (lo, hi) when it is
      positive and log-scaled (concentrations, permeabilities, pump rates) and lo > 0,
      else uniform on (lo, hi);
    * without bounds: log-uniform over ``DEFAULT_DECADES`` (3) decades either side of
      its reference value (``center``, else the ``fixed`` override or the preset value;
      a preset value of 0 is replaced by the geometric mean of the positive preset values
      with the same units), clipped to its allowed range; a parameter that is not
      log-scaled (``T``, ``r_pump``, ``z_X``, ``X_o``) is uniform over its allowed range.

    Sampling is in the logit coordinate of each prior box (so draws never leave it):
    ``chains`` chains per cell start at Uniform(-2, 2) draws there (Stan's default),
    run ``warmup`` steps of window adaptation (step size to ``target_accept``, dense
    mass matrix), then ``draws`` NUTS transitions (at most 2^``max_tree_depth`` leapfrog
    steps each). All chains of a batch of ``cell_batch`` cells run in one jitted,
    ``vmap``-ed call; the program compiles once per batch shape.

    Diagnostics per cell and parameter: rank-normalised split R-hat (``rhat``; the
    maximum of the bulk and folded versions), bulk and tail effective sample sizes
    (Vehtari et al. 2021), and the posterior contraction 1 - var_post/var_prior in the
    sampled coordinate (ln x or x). ``determined`` (contraction >= 0.5) says whether
    the data, not the prior box, set a parameter; ``converged`` (per cell) means max
    R-hat < 1.01, bulk and tail ESS >= 100 per chain and no divergent transition. A
    direction along which V does not change in any cell (e.g. the common scale of all
    permeabilities of passive GHK, of which only ratios matter; Hodgkin & Katz 1949)
    raises :class:`rpx.IdentifiabilityWarning`; its posterior is the prior, and the
    ratios of the parameters involved to the one with the largest share are added
    (``<name>_over_<ref>``), with their own diagnostics.

    Args:
        data: a pandas DataFrame, a CSV path or an xarray Dataset of conditions
            (columns named by parameter), measured ``V`` (mV), optional ``V_sd`` (mV)
            and optional ``cell``; as for :func:`rpx.fit`.
        model: registered model name.
        free: names of the parameters to sample (a list, or ``"P_Na,P_Cl"``).
        fixed: a preset name, or overrides {name: value} of preset ``preset`` (not for
            a parameter the data give: ValueError, as :func:`rpx.fit`).
        bounds: {name: (lo, hi)} prior boxes of free parameters, in their units.
        preset: preset giving every value not in ``fixed``.
        center: {name: value} centres of the default boxes of free parameters.
        draws, chains, warmup: posterior draws per chain (>= 4), chains per cell (>= 2,
            for R-hat), adaptation steps per chain (>= 10).
        seed: seed of the chains' starting points and transitions.
        target_accept: target acceptance rate of the step-size adaptation, in (0, 1).
        max_tree_depth: maximum number of trajectory doublings of NUTS (>= 1).
        noise_bounds: (lo, hi) in mV, 0 < lo < hi, of the noise σ's log-uniform prior.
        cell_batch: cells per compiled call (>= 1). Default: 1 on a CPU, where the
            lanes of a batch advance in lock step at the pace of the deepest NUTS tree
            among them and one cell at a time was measured faster
            (``experiments/bench_sample.py``); 4096 on an accelerator (not measured).
        dtype: ``"float32"`` or ``"float64"``; default: JAX's default float.

    Returns:
        An xarray Dataset over ``cell``, ``chain`` and ``draw`` (no ``cell`` dimension
        when the data have no cells): one variable per free parameter (physical units),
        ``noise_sd`` (mV) when the data have no ``V_sd``, ratios for a flat direction,
        ``log_density``, ``divergent``; per (cell, chain) ``step_size``,
        ``acceptance_rate``, ``n_leapfrog``; per (cell, param) ``rhat``, ``ess_bulk``,
        ``ess_tail``, ``mean``, ``sd``, ``contraction``, ``determined``; per cell
        ``max_rhat``, ``min_ess_bulk``, ``min_ess_tail``, ``divergences``,
        ``convergence_failed`` (which check failed: CF flag bits, see
        :func:`convergence_failures`), ``converged``; the data
        (``V_obs``, conditions over ``point``) and every fixed value. Every variable has
        ``units`` and ``long_name``; every floating-point one is in ``dtype``.

    Raises:
        ValueError: unknown model, parameter, column or preset; a free parameter the
            model does not read; a fixed value of a data column; bad bounds, center or
            noise bounds; bad sampler
            settings; missing, NaN or out-of-domain data; a cell with fewer points than
            free parameters.

    Example:
        >>> import pandas as pd
        >>> import rpx
        >>> K_o = [2.5, 5.0, 10.0, 20.0, 50.0, 100.0]
        >>> V = rpx.resting_potential({"K_o": K_o, "P_Na": 0.02})
        >>> df = pd.DataFrame({"K_o": K_o, "V": V, "V_sd": 0.5})
        >>> post = sample(df, free=["P_Na"], draws=200, warmup=200)  # doctest: +SKIP
        >>> float(post["P_Na"].mean() / post["P_K"])                  # doctest: +SKIP
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
            raise ValueError(f"parameter {name!r} is free; its prior is set with bounds=")
        if name not in m.params:
            raise ValueError(f"fixed parameter {name!r} is not read by model {m.name!r}")
    draws = _positive_int("draws", draws, 4)
    chains = _positive_int("chains", chains, 2)
    if draws < ESS_PER_CHAIN_MIN:
        warnings.warn(
            f"draws={draws} per chain is below the {ESS_PER_CHAIN_MIN:g} effective draws per "
            "chain that the convergence check needs: no cell can be reported converged; "
            f"use draws >= {4 * ESS_PER_CHAIN_MIN:g} for a posterior you report",
            UserWarning,
            stacklevel=2,
        )
    warmup = _positive_int("warmup", warmup, 10)
    max_tree_depth = _positive_int("max_tree_depth", max_tree_depth, 1)
    if cell_batch is None:
        cell_batch = 1 if jax.default_backend() == "cpu" else 4096
    cell_batch = _positive_int("cell_batch", cell_batch, 1)
    seed = _positive_int("seed", seed, 0)
    if not (isinstance(target_accept, (int, float)) and 0.0 < target_accept < 1.0):
        raise ValueError(f"target_accept must be in (0, 1), got {target_accept!r}")
    noise_lo, noise_hi = _check_pair(NOISE, noise_bounds, 0.0, math.inf, "(0, inf) mV")
    if noise_lo <= 0:
        raise ValueError(f"noise_bounds must be > 0 mV, got ({noise_lo:g}, {noise_hi:g})")
    dt = _resolve_dtype(dtype)

    bounds = dict(bounds or {})
    center = dict(center or {})
    for label, given in (("bounds", bounds), ("center", center)):
        for name in given:
            if name not in free:
                raise ValueError(f"{label} given for {name!r}, which is not a free parameter")
    for name in set(bounds) & set(center):
        raise ValueError(f"give either bounds or center for {name}, not both")

    data_ = load_data(data, m.params, free, fixed=overrides)
    other = tuple(n for n in m.params if n not in free and n not in data_.conditions)
    fixed_values = {k: float(v) for k, v in fill_defaults(overrides, other, preset).items()}
    for name, value in fixed_values.items():
        check_values(name, value)
    reference = {**preset_values(preset), **{k: float(v) for k, v in overrides.items()}}
    boxes: dict[str, tuple[float, float]] = {}
    for name in free:
        p = PARAMS[name]
        if name in bounds:
            boxes[name] = _check_pair(name, bounds[name], p.lo, p.hi, p.domain_str())
            continue
        ref = None
        if p.log_scale:
            if name in center:
                ref = float(center[name])
                if not (math.isfinite(ref) and ref > 0):
                    raise ValueError(f"center of {name} must be > 0, got {center[name]!r}")
                check_values(name, ref)
            else:
                value = fill_defaults({}, (name,), preset)[name]
                ref = _reference(name, float(reference.get(name, value)), reference)
        elif name in center:
            raise ValueError(
                f"{name} is not log-scaled; its default prior is its whole range "
                f"{p.domain_str()}; give bounds= instead of center="
            )
        boxes[name] = _prior_box(name, ref)
    check_known_domain(m, free, {**fixed_values, **data_.conditions})
    # Features inactive in every cell (strengths fixed at 0) are left out of the program.
    m = m.specialise({**fixed_values, **data_.conditions}, free)

    transforms = [Transform.for_param(PARAMS[n], boxes[n]) for n in free]
    noise = data_.V_sd is None
    if noise:
        transforms.append(Transform(LOG_LOGIT, noise_lo, noise_hi))
    cfg = SamplerConfig(
        m.fn, free, tuple(transforms), noise, warmup, draws, float(target_accept),
        max_tree_depth,
    )
    cells = _cells_arrays(data_, dt)
    fixed_arrays = {k: np.asarray(v, dt) for k, v in fixed_values.items()}
    # The cells whose whole prior box is one where the model's closed forms are exact in
    # plain arithmetic are sampled by a program with those forms only (under vmap the
    # two-form model would evaluate both forms at every point); the others by the
    # two-form program. The choice is made per cell, so a cell's draws do not depend
    # on the cells sampled with it.
    plain = _plain_cells(m, boxes, cells, fixed_arrays)
    plain_cfg = dataclasses.replace(cfg, plain_points=m.plain_points)
    ratios = _ratio_plan(plain_cfg if plain.all() else cfg, cells, fixed_arrays, dt)

    n_cells, d = len(data_.cells), len(transforms)
    # Randomness per cell from (seed, cell index) only: a cell's draws do not depend on
    # how many cells are sampled with it or on the batching.
    z0 = np.stack([
        np.random.default_rng([seed, c]).uniform(-INIT_RADIUS, INIT_RADIUS, (chains, d))
        for c in range(n_cells)
    ])
    root = jax.random.key(seed)
    keys = jax.vmap(lambda c: jax.random.split(jax.random.fold_in(root, c), chains))(
        np.arange(n_cells)
    )
    parts: list[tuple[np.ndarray, dict]] = []
    # float32 sampling with x64 on: BlackJAX's state would mix float32 and float64 (its
    # step sizes and energies follow the default dtype), so it runs with x64 off.
    x64_off = dt == jnp.float32 and jax.config.jax_enable_x64
    with jax.enable_x64(False) if x64_off else contextlib.nullcontext():
        for group, group_cfg in ((np.flatnonzero(plain), plain_cfg),
                                 (np.flatnonzero(~plain), cfg)):
            if group.size == 0:
                continue
            run = build_sampler(group_cfg)
            batch = min(cell_batch, group.size)
            for start in range(0, group.size, batch):
                # pad the last batch by repeating a cell
                idx = group[np.minimum(np.arange(start, start + batch), group.size - 1)]
                sub = jax.tree.map(lambda a, i=idx: a[i], cells)
                out = run(keys[idx], np.asarray(z0[idx], dt), sub, fixed_arrays)
                n = min(batch, group.size - start)
                parts.append((idx[:n], jax.tree.map(lambda a, n=n: np.asarray(a)[:n], out)))
    order = np.argsort(np.concatenate([idx for idx, _ in parts]), kind="stable")
    out = {k: np.concatenate([p_[k] for _, p_ in parts])[order] for k in parts[0][1]}
    return _to_dataset(out, m, cfg, data_, fixed_values, ratios, preset, seed)


def _cells_arrays(data: FitData, dtype: jnp.dtype) -> dict:
    # As rpx.analysis.fit._cells_arrays: the cells as host arrays of ``dtype``.
    w = np.ones_like(data.V) if data.V_sd is None else 1.0 / data.V_sd
    return {
        "cond": {k: np.asarray(v, dtype) for k, v in data.conditions.items()},
        "V": np.where(data.mask, data.V, 0.0).astype(dtype),
        "w": np.asarray(w, dtype),
        "mask": np.asarray(data.mask),
    }


def _ratio_plan(
    cfg: SamplerConfig, cells: dict, fixed: dict, dtype: jnp.dtype
) -> list[tuple[str, str]]:
    """(numerator, reference) pairs to report for directions flat in every cell."""
    pairs: list[tuple[str, str]] = []
    for v in _flat_directions(cfg, cells, fixed, dtype):
        share = np.abs(v)
        # the first free parameter with the largest share (ties within 0.1 %), as rpx.fit
        pick = cfg.free[int(np.flatnonzero(share >= share.max() * (1 - 1e-3))[0])]
        involved = [n for n, c in zip(cfg.free, share, strict=True) if c > 0.05 and n != pick]
        warnings.warn(
            f"parameters {', '.join([pick, *involved])} cannot all be identified from V: "
            "along one direction of them the model's V does not change in any cell (for "
            "the passive GHK model the common scale of the permeabilities, of which only "
            "ratios matter). Their posterior along it is the prior box; the ratios "
            f"{', '.join(f'{n}_over_{pick}' for n in involved)} are reported as well.",
            IdentifiabilityWarning,
            stacklevel=3,
        )
        pairs += [(n, pick) for n in involved if (n, pick) not in pairs]
    return pairs


# ---------------------------------------------------------------- the result Dataset
def _attrs(units: str, long_name: str, **extra: object) -> dict[str, object]:
    return {"units": units, "long_name": long_name, **extra}


def _prior_var(t: Transform) -> float:
    """Prior variance of the sampled coordinate (x for logit, ln x for log-logit)."""
    width = t.hi - t.lo if t.kind == LOGIT else math.log(t.hi) - math.log(t.lo)
    return width * width / 12.0


def _to_dataset(
    out: dict,
    m: Model,
    cfg: SamplerConfig,
    data: FitData,
    fixed: dict[str, float],
    ratios: list[tuple[str, str]],
    preset: str,
    seed: int,
) -> xr.Dataset:
    D = ("cell", "chain", "draw")
    CP = ("cell", "param")
    names = list(cfg.free) + ([NOISE] if cfg.noise else [])
    units = {n: PARAMS[n].units for n in cfg.free} | {NOISE: "mV"}
    longs = {n: PARAMS[n].long_name for n in cfg.free}
    longs[NOISE] = "noise standard deviation of the measured V"
    x = out["x"]  # (C, K, draws, d)
    draws = {n: x[..., i] for i, n in enumerate(names)}
    logs = {n: t.kind == LOG_LOGIT for n, t in zip(names, cfg.transforms, strict=True)}
    prior_var = {n: _prior_var(t) for n, t in zip(names, cfg.transforms, strict=True)}
    rhat = [out["rhat"][:, i] for i in range(len(names))]
    ess_b = [out["ess_bulk"][:, i] for i in range(len(names))]
    ess_t = [out["ess_tail"][:, i] for i in range(len(names))]
    if ratios:
        from blackjax.diagnostics import ess_bulk, ess_tail
        from blackjax.diagnostics import rhat as rhat_fn

        extra = np.stack([draws[a] / draws[b] for a, b in ratios], axis=-1)  # (C, K, S, r)
        xt = jnp.moveaxis(jnp.asarray(extra), 0, 2)  # (K, S, C, r)
        with jax.numpy_dtype_promotion("standard"):
            r_rhat = np.asarray(rhat_fn(xt))
            r_essb = np.asarray(ess_bulk(xt))
            r_esst = np.asarray(ess_tail(xt))
        r_rhat, r_essb, r_esst = (a.reshape(x.shape[0], len(ratios)) for a in (r_rhat, r_essb,
                                                                              r_esst))
        for j, (a, b) in enumerate(ratios):
            n = f"{a}_over_{b}"
            names.append(n)
            draws[n] = extra[..., j]
            units[n] = "1" if units[a] == units[b] else f"{units[a]}/({units[b]})"
            longs[n] = f"{a}/{b} (the ratio the data determine along a flat direction)"
            logs[n] = logs[a] and logs[b]
            prior_var[n] = prior_var[a] + prior_var[b]
            rhat.append(r_rhat[:, j])
            ess_b.append(r_essb[:, j])
            ess_t.append(r_esst[:, j])

    v: dict[str, xr.Variable] = {}
    for n in names:
        v[n] = xr.Variable(D, draws[n], _attrs(units[n], f"posterior draws of {longs[n]}"))
    v["log_density"] = xr.Variable(
        D, out["log_density"], _attrs("1", "log posterior density (unnormalised, sampled coords)")
    )
    v["divergent"] = xr.Variable(D, out["divergent"], _attrs("1", "divergent transition"))
    CK = ("cell", "chain")
    v["step_size"] = xr.Variable(CK, out["step_size"], _attrs("1", "adapted NUTS step size"))
    v["acceptance_rate"] = xr.Variable(
        CK, out["accept"], _attrs("1", "mean acceptance rate of the draws")
    )
    v["n_leapfrog"] = xr.Variable(
        CK, out["n_steps"], _attrs("1", "mean leapfrog steps per transition")
    )

    def stack(arrs: list[np.ndarray]) -> np.ndarray:
        return np.stack(arrs, axis=-1)

    S = data.V.shape[0]
    C = ("cell",)
    coord = {
        n: np.log(draws[n]) if logs[n] else draws[n] for n in names
    }  # the sampled coordinate
    post_var = stack([coord[n].reshape(S, -1).var(axis=1, ddof=1) for n in names])
    contraction = 1.0 - post_var / np.array([prior_var[n] for n in names])
    mean = stack([draws[n].reshape(S, -1).mean(axis=1) for n in names])
    sd = stack([draws[n].reshape(S, -1).std(axis=1, ddof=1) for n in names])
    rhat_a, essb_a, esst_a = stack(rhat), stack(ess_b), stack(ess_t)
    v["rhat"] = xr.Variable(
        CP, rhat_a, _attrs("1", "rank-normalised split R-hat (max of bulk and folded)")
    )
    v["ess_bulk"] = xr.Variable(CP, essb_a, _attrs("1", "bulk effective sample size"))
    v["ess_tail"] = xr.Variable(CP, esst_a, _attrs("1", "tail effective sample size (5%, 95%)"))
    for i, n in enumerate(names):
        v[f"{n}_mean"] = xr.Variable(C, mean[:, i], _attrs(units[n], f"posterior mean of {n}"))
        v[f"{n}_sd"] = xr.Variable(
            C, sd[:, i], _attrs(units[n], f"posterior standard deviation of {n}")
        )
    v["contraction"] = xr.Variable(
        CP, contraction,
        _attrs("1", "posterior contraction 1 - var_post/var_prior in the sampled coordinate "
                    "(ln x for log-uniform priors, else x)"),
    )
    v["determined"] = xr.Variable(
        CP, contraction >= CONTRACTION_MIN,
        _attrs("1", f"the data, not the prior box, set it (contraction >= {CONTRACTION_MIN})"),
    )
    n_div = out["divergent"].reshape(S, -1).sum(axis=1)
    chains = x.shape[1]
    max_rhat = np.max(rhat_a, axis=1)
    v["max_rhat"] = xr.Variable(C, max_rhat, _attrs("1", "largest R-hat over the parameters"))
    v["min_ess_bulk"] = xr.Variable(
        C, np.min(essb_a, axis=1), _attrs("1", "smallest bulk ESS over the parameters")
    )
    v["min_ess_tail"] = xr.Variable(
        C, np.min(esst_a, axis=1), _attrs("1", "smallest tail ESS over the parameters")
    )
    v["divergences"] = xr.Variable(C, n_div, _attrs("1", "number of divergent transitions"))
    failed = convergence_flags(
        max_rhat, np.min(essb_a, axis=1), np.min(esst_a, axis=1), n_div, chains
    )
    v["convergence_failed"] = xr.Variable(
        C,
        failed,
        {
            **_attrs("1", "which convergence checks failed (0: none; bits add up)"),
            "flag_masks": [int(b) for b, _ in _FAILED_CHECKS],
            "flag_meanings": " ".join(m for _, m in _FAILED_CHECKS),
        },
    )
    v["converged"] = xr.Variable(
        C,
        failed == 0,
        _attrs(
            "1",
            f"max R-hat < {RHAT_MAX}, bulk and tail ESS >= {ESS_PER_CHAIN_MIN:g} per chain, "
            "no divergences",
        ),
    )
    v["V_obs"] = xr.Variable(("cell", "point"), data.V, _attrs("mV", "measured resting potential"))
    if data.V_sd is not None:
        v["V_sd"] = xr.Variable(
            ("cell", "point"),
            np.where(data.mask, data.V_sd, np.nan),
            _attrs("mV", "standard deviation of the measured potential"),
        )
    for n, values in data.conditions.items():
        p = PARAMS[n]
        v[n] = xr.Variable(
            ("cell", "point"), np.where(data.mask, values, np.nan), _attrs(p.units, p.long_name)
        )
    for n, value in fixed.items():
        p = PARAMS[n]
        v[n] = xr.Variable((), value, _attrs(p.units, f"{p.long_name} (fixed)"))
    labels = data.cells.astype(object) if data.cells.dtype.kind in "US" else data.cells
    prior = []
    for n, t in zip(list(cfg.free) + ([NOISE] if cfg.noise else []), cfg.transforms,
                    strict=True):
        kind = "log-uniform" if t.kind == LOG_LOGIT else "uniform"
        prior.append(f"{n} ~ {kind}({t.lo:g}, {t.hi:g}) {units[n]}")
    coords = {
        "cell": xr.Variable(C, labels, _attrs("1", "cell label")),
        "chain": xr.Variable(("chain",), np.arange(chains), _attrs("1", "chain")),
        "draw": xr.Variable(("draw",), np.arange(x.shape[2]), _attrs("1", "draw")),
        "param": xr.Variable(
            ("param",), np.array(names, dtype=object), _attrs("1", "sampled quantity")
        ),
        "point": xr.Variable(("point",), np.arange(data.V.shape[1]), _attrs("1", "data point")),
    }
    import blackjax

    # every float in the working precision (the draws'), as rpx.fit's result
    dtype = x.dtype
    v = {k: var.astype(dtype) if var.dtype.kind == "f" else var for k, var in v.items()}
    ds = xr.Dataset(v, coords=coords)
    ds.attrs = {
        "title": f"rpx posterior sample of model {m.name}",
        "model": m.name,
        "preset": preset,
        "free": list(cfg.free),
        "ratios": [f"{a}_over_{b}" for a, b in ratios],
        "prior": prior,
        "likelihood": "Normal(V_model, V_sd^2) with V_sd from the data"
        if not cfg.noise
        else f"Normal(V_model, {NOISE}^2), one {NOISE} per cell",
        "sampler": f"BlackJAX {blackjax.__version__} NUTS, window adaptation, dense mass matrix",
        "chains": chains,
        "draws": cfg.draws,
        "warmup": cfg.warmup,
        "target_accept": cfg.target_accept,
        "max_tree_depth": cfg.max_tree_depth,
        "seed": seed,
    }
    if data.squeeze:
        ds = ds.isel({CELL_COL: 0}, drop=True)
    return ds


