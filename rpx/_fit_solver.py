"""The jitted fitting core: unconstrained transforms, Adam then Levenberg–Marquardt, uncertainty.

Everything here is a pure function of arrays. One call of the function built by
:func:`build_solver` fits every cell from every start: ``vmap`` over cells of ``vmap``
over starts of a loop written with ``jax.lax.scan`` (no Python per iteration).

The least-squares problem of one cell, in unconstrained coordinates u, is

    r_i(u) = m_i · (V_model(x(u), conditions_i) - V_i) / sd_i,   L(u) = Σ r_i² / n,

with m_i = 0 on padding. Adam (Kingma & Ba 2015, ``optax.adam``) moves every start into
a basin; Levenberg–Marquardt with Marquardt's diagonal scaling (Marquardt 1963, J. SIAM
11:431; Nocedal & Wright, Numerical Optimization, 2nd ed., §10.3) then converges
tightly using the exact Jacobian from ``jax.jacfwd``.

Uncertainty is the Gauss–Newton (Laplace) approximation at the optimum: with the
singular value decomposition J = U S Wᵀ of the weighted Jacobian,
Cov(u) = s² · W S⁻² Wᵀ, where s² = 1 when per-point standard deviations are given
(they are taken as absolute) and s² = Σ r² / (n - p) otherwise. Standard errors in
physical units follow from the delta method, SE(x) = |dx/du| · SE(u); correlations are
unchanged by the elementwise transforms.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import Array, lax

from rpx._params import Param

# Status codes of one fit (stored as the ``status`` variable).
CONVERGED = 0
NOT_CONVERGED = 1
NON_FINITE = 2
STATUS_MEANINGS = "converged not_converged non_finite"

LOG, LOGIT, LOG_LOGIT = "log", "logit", "log_logit"


@dataclasses.dataclass(frozen=True)
class Transform:
    """Map between a free parameter x and its unconstrained coordinate u.

    ``log``: x = e^u on (0, ∞), for positive quantities.
    ``logit``: x = lo + (hi - lo)·σ(u) on (lo, hi).
    ``log_logit``: ln x = ln lo + (ln hi - ln lo)·σ(u), for bounds with lo > 0 on a
    parameter that spans decades. σ is the logistic function.
    """

    kind: str
    lo: float = 0.0
    hi: float = math.inf

    @classmethod
    def for_param(cls, p: Param, bounds: tuple[float, float] | None) -> Transform:
        """Log for a parameter bounded only below by 0; logit-style within given bounds."""
        if bounds is None:
            return cls(LOG)
        lo, hi = float(bounds[0]), float(bounds[1])
        return cls(LOG_LOGIT if (lo > 0 and p.log_scale) else LOGIT, lo, hi)

    def to_phys(self, u: Array) -> Array:
        if self.kind == LOG:
            return jnp.exp(u)
        s = jax.nn.sigmoid(u)
        if self.kind == LOGIT:
            return self.lo + (self.hi - self.lo) * s
        return jnp.exp(math.log(self.lo) + (math.log(self.hi) - math.log(self.lo)) * s)

    def dphys_du(self, u: Array) -> Array:
        """dx/du (> 0)."""
        if self.kind == LOG:
            return jnp.exp(u)
        s = jax.nn.sigmoid(u)
        if self.kind == LOGIT:
            return (self.hi - self.lo) * s * (1.0 - s)
        return self.to_phys(u) * (math.log(self.hi) - math.log(self.lo)) * s * (1.0 - s)

    def from_phys(self, x: float) -> float:
        """u for a physical value strictly inside the transform's range (float64, host)."""
        if self.kind == LOG:
            return math.log(x)
        if self.kind == LOGIT:
            t = (x - self.lo) / (self.hi - self.lo)
        else:
            t = (math.log(x) - math.log(self.lo)) / (math.log(self.hi) - math.log(self.lo))
        return math.log(t) - math.log1p(-t)

    @property
    def start_spread(self) -> float:
        """Standard deviation of random starts in u: a decade for log, 1 for logit-style."""
        return math.log(10.0) if self.kind == LOG else 1.0


@dataclasses.dataclass(frozen=True)
class SolverConfig:
    """Everything that shapes the compiled fitting program (hashable, so it caches)."""

    model_fn: Callable[[dict[str, Array]], dict[str, Array]]
    free: tuple[str, ...]
    transforms: tuple[Transform, ...]
    adam_steps: int
    lm_steps: int
    learning_rate: float
    absolute_sd: bool


def tolerances(dtype: jnp.dtype) -> tuple[float, float]:
    """(gradient tolerance, singular-value ratio tolerance) for ``dtype``.

    The first bounds the cosine between the residual and the column space of J at a
    converged optimum; the second is the smallest σ_min/σ_max of J accepted as
    identifiable. Both scale with the machine epsilon (float32 1.2e-7, float64 2.2e-16)
    and are floored at values that keep float64 meaningful.
    """
    eps = float(jnp.finfo(dtype).eps)
    return max(1e-6, 1e4 * eps), max(1e-6, 1e3 * eps)


def _phys(cfg: SolverConfig, u: Array) -> Array:
    return jnp.stack([t.to_phys(u[i]) for i, t in enumerate(cfg.transforms)])


def _model_V(cfg: SolverConfig, u: Array, cond: dict[str, Array], fixed: dict[str, Array]) -> Array:
    x = _phys(cfg, u)
    params = {**fixed, **cond, **{name: x[i] for i, name in enumerate(cfg.free)}}
    V = cfg.model_fn(params)["V"]
    shape = jnp.broadcast_shapes(*(jnp.shape(v) for v in cond.values()), jnp.shape(V))
    return jnp.broadcast_to(V, shape)


def _residual(
    cfg: SolverConfig, u: Array, cell: dict[str, Array], fixed: dict[str, Array]
) -> Array:
    V = _model_V(cfg, u, cell["cond"], fixed)
    return jnp.where(cell["mask"], (V - cell["V"]) * cell["w"], 0.0)


def _fit_one_start(cfg: SolverConfig, u0: Array, cell: dict, fixed: dict, gtol: float) -> dict:
    n = jnp.sum(cell["mask"].astype(u0.dtype))

    def res(u: Array) -> Array:
        return _residual(cfg, u, cell, fixed)

    def res_aux(u: Array) -> tuple[Array, Array]:
        r = res(u)
        return r, r

    def loss(u: Array) -> Array:
        r = res(u)
        return jnp.sum(r * r) / n

    opt = optax.apply_if_finite(optax.adam(cfg.learning_rate), max_consecutive_errors=1 << 30)

    def adam_step(carry: tuple, _: None) -> tuple:
        u, state = carry
        value, grad = jax.value_and_grad(loss)(u)
        # optax's bias correction raises a float to an int32 step count; allow that
        # promotion here even when the caller runs with strict dtype promotion.
        with jax.numpy_dtype_promotion("standard"):
            updates, state = opt.update(grad, state, u)
        return (optax.apply_updates(u, updates), state), value

    (u, _), hist_adam = lax.scan(adam_step, (u0, opt.init(u0)), length=cfg.adam_steps)

    def lm_step(carry: tuple, _: None) -> tuple:
        u, value, lam = carry
        J, r = jax.jacfwd(res_aux, has_aux=True)(u)
        g = J.T @ r
        H = J.T @ J
        d = jnp.diagonal(H)
        D = d + jnp.finfo(u.dtype).eps * jnp.max(d) + jnp.finfo(u.dtype).tiny
        step = jnp.linalg.solve(H + lam * jnp.diag(D), -g)
        trial = u + step
        value_t = loss(trial)
        ok = jnp.isfinite(value_t) & (value_t <= value) & jnp.all(jnp.isfinite(step))
        u = jnp.where(ok, trial, u)
        value = jnp.where(ok, value_t, value)
        lam = jnp.clip(jnp.where(ok, lam * 0.3, lam * 10.0), 1e-12, 1e12)
        return (u, value, lam), value

    lam0 = jnp.asarray(1e-3, dtype=u0.dtype)
    (u, value, _), hist_lm = lax.scan(lm_step, (u, loss(u), lam0), length=cfg.lm_steps)

    J = jax.jacfwd(res)(u)
    r = res(u)
    norm_r = jnp.sqrt(jnp.sum(r * r))
    cosine = jnp.sqrt(jnp.sum((J.T @ r) ** 2)) / (
        jnp.sqrt(jnp.sum(J * J)) * norm_r + jnp.finfo(u.dtype).tiny
    )
    finite = jnp.isfinite(value) & jnp.all(jnp.isfinite(u))
    # Residuals at the rounding level of V itself: the data are fitted exactly and the
    # cosine test is meaningless (it measures rounding noise).
    scale = jnp.sqrt(jnp.sum((cell["V"] * cell["w"]) ** 2))
    exact = norm_r <= 1e3 * jnp.finfo(u.dtype).eps * scale
    status = jnp.where(
        finite, jnp.where((cosine <= gtol) | exact, CONVERGED, NOT_CONVERGED), NON_FINITE
    ).astype(jnp.int32)
    return {
        "u": u,
        "loss": jnp.where(finite, value, jnp.inf),
        "history": jnp.concatenate([hist_adam, hist_lm]),
        "status": status,
    }


def _uncertainty(cfg: SolverConfig, u: Array, cell: dict, fixed: dict, svtol: float) -> dict:
    J = jax.jacfwd(lambda v: _residual(cfg, v, cell, fixed))(u)
    r = _residual(cfg, u, cell, fixed)
    n = jnp.sum(cell["mask"].astype(u.dtype))
    p = u.shape[0]
    s2 = jnp.asarray(1.0, u.dtype) if cfg.absolute_sd else jnp.sum(r * r) / (n - p)
    _, S, Wt = jnp.linalg.svd(J, full_matrices=False)
    ratio = S[-1] / S[0]
    identifiable = (S[0] > 0) & (ratio >= svtol)
    S_safe = jnp.maximum(S, S[0] * svtol + jnp.finfo(u.dtype).tiny)
    cov_u = s2 * (Wt.T / S_safe**2) @ Wt
    se_u = jnp.sqrt(jnp.diagonal(cov_u))
    corr = cov_u / (se_u[:, None] * se_u[None, :])
    dxdu = jnp.stack([t.dphys_du(u[i]) for i, t in enumerate(cfg.transforms)])
    flat = Wt[-1] * jnp.sign(Wt[-1][jnp.argmax(jnp.abs(Wt[-1]))])
    nan = jnp.asarray(jnp.nan, u.dtype)
    V = _model_V(cfg, u, cell["cond"], fixed)
    return {
        "x": _phys(cfg, u),
        "se": jnp.where(identifiable, se_u * dxdu, nan),
        "se_u": jnp.where(identifiable, se_u, nan),
        "corr": jnp.where(identifiable, corr, nan),
        "identifiable": identifiable,
        "sv_ratio": ratio,
        "flat": flat,
        "V_fit": jnp.where(cell["mask"], V, nan),
    }


@functools.lru_cache(maxsize=32)
def build_solver(cfg: SolverConfig) -> Callable[..., dict[str, Array]]:
    """Jitted ``solve(starts, cells, fixed)`` for ``cfg``.

    Args (of the returned function):
        starts: (K, p) unconstrained starting points, shared by every cell.
        cells: dict with ``cond`` (name -> (C, N)), ``V`` (C, N, mV, zero on padding),
            ``w`` (C, N, 1/sd in 1/mV, or ones) and ``mask`` (C, N, bool).
        fixed: parameter name -> 0-d array.

    Returns per cell: the best start's ``u``, ``x``, ``loss``, ``history`` (Adam then
    LM iterations), ``status``, ``best_start``, and the uncertainty of the best start
    (``se``, ``se_u``, ``corr``, ``identifiable``, ``sv_ratio``, ``flat``, ``V_fit``).
    """

    def solve(starts: Array, cells: dict, fixed: dict) -> dict[str, Array]:
        gtol, svtol = tolerances(starts.dtype)

        def per_cell(cell: dict) -> dict[str, Array]:
            runs = jax.vmap(lambda u0: _fit_one_start(cfg, u0, cell, fixed, gtol))(starts)
            best = jnp.argmin(runs["loss"])
            out = {k: v[best] for k, v in runs.items()}
            out["best_start"] = best.astype(jnp.int32)
            out |= _uncertainty(cfg, out["u"], cell, fixed, svtol)
            return out

        return jax.vmap(per_cell)(cells)

    return jax.jit(solve)


@functools.lru_cache(maxsize=32)
def build_jacobian(cfg: SolverConfig) -> Callable[..., Array]:
    """Jitted ``jac(u, cell, fixed)``: the weighted residual Jacobian (N, p) of one cell."""

    def jac(u: Array, cell: dict, fixed: dict) -> Array:
        return jax.jacfwd(lambda v: _residual(cfg, v, cell, fixed))(u)

    return jax.jit(jac)


def start_points(
    transforms: tuple[Transform, ...], center: np.ndarray, k: int, seed: int
) -> np.ndarray:
    """``k`` starts in u (float64, shape (k, p)): the center, then Gaussian draws around it."""
    rng = np.random.default_rng(seed)
    spread = np.array([t.start_spread for t in transforms])
    draws = center + spread * rng.standard_normal((max(k - 1, 0), len(transforms)))
    return np.vstack([center[None, :], draws])
