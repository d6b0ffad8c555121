"""The jitted fitting core: unconstrained transforms, Levenberg–Marquardt, Adam, uncertainty.

Everything here is a pure function of arrays. :func:`build_lm_solver` builds the first
program: for every cell (``vmap``) the loss at each start, then Levenberg–Marquardt
from the best start, iterated by ``jax.lax.while_loop`` over the whole batch (no Python
per iteration) until every cell has stopped or its budget is spent; the few cells still
running at the end go on as a small batch of their own (:func:`_lm_loop`), and the
fixed values travel as one array (one compiled program per model, free set, fixed
names and shapes). :func:`build_solver`
builds the refit for cells that fail: every start of every such cell, Adam then LM.

The least-squares problem of one cell, in unconstrained coordinates u, is

    r_i(u) = m_i · (V_model(x(u), conditions_i) - V_i) / sd_i,   L(u) = Σ r_i² / n,

with m_i = 0 on padding. Levenberg–Marquardt with Marquardt's diagonal scaling
(Marquardt 1963, J. SIAM 11:431; Nocedal & Wright, Numerical Optimization, 2nd ed.,
§10.3) converges tightly using the exact Jacobian from ``jax.jacfwd``; in the refit,
Adam (Kingma & Ba 2015, ``optax.adam``) first moves every start into a basin.

Uncertainty is the Gauss–Newton (Laplace) approximation at the optimum: with the
singular value decomposition J = U S Wᵀ of the weighted Jacobian,
Cov(u) = s² · W S⁻² Wᵀ, where s² = 1 when per-point standard deviations are given
(they are taken as absolute) and s² = Σ r² / (n - p) otherwise. Standard errors in
physical units follow from the delta method, SE(x) = |dx/du| · SE(u); correlations are
unchanged by the elementwise transforms.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import Array, lax

from rpx.physics import formulas
from rpx.physics.params import Param

# Status codes of one fit (stored as the ``status`` variable).
CONVERGED = 0
NOT_CONVERGED = 1
NON_FINITE = 2
STATUS_MEANINGS = "converged not_converged non_finite"

LOG, LOGIT, LOG_LOGIT = "log", "logit", "log_logit"

# Early stopping. Adam hands over to Levenberg–Marquardt once its loss has not fallen
# by a relative ADAM_RTOL for ADAM_PATIENCE consecutive steps; LM stops when the
# optimum passes the convergence test and the Gauss–Newton step from it is below
# eps^(2/3) relative, or when its damping reaches LAM_MAX. The budgets adam_steps and
# lm_steps are maxima.
ADAM_RTOL = 1e-3
ADAM_PATIENCE = 10
LAM_MAX = 1e12
# Adam's gradient uses forward mode up to this many free parameters, reverse mode above.
FORWARD_MAX_PARAMS = 8
# At the rounding floor of the loss (within FLOOR times its rounding error from that of V),
# LM accepts a step that lowers the optimality cosine instead.
FLOOR = 8
# Linear systems of up to this many free parameters are solved by an unrolled Cholesky.
SMALL_P = 8


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
    # The model's Model.plain_points, or None. With it, the programs hold the model's
    # closed forms in plain arithmetic only (rpx.physics.formulas.plain_closed_forms;
    # under vmap the two-form model evaluates both forms at every point, several times
    # the work and the compile time) and report per cell (``plain_safe``) whether every
    # point at which they evaluated the model is one where the plain forms are exact;
    # the caller refits the other cells with the two-form model (plain_points=None).
    plain_points: Callable[[dict[str, Array]], Array] | None = None

    def forms(self) -> contextlib.AbstractContextManager:
        """The context to trace this configuration's programs in."""
        return forms(self.plain_points)


def forms(plain_points: Callable | None) -> contextlib.AbstractContextManager:
    """The context to trace a program in: the plain closed forms only where
    ``plain_points`` is given (see :class:`SolverConfig`), else the two-form model."""
    if plain_points is None:
        return contextlib.nullcontext()
    return formulas.plain_closed_forms()


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


def _plain_safe(
    cfg: SolverConfig, u: Array, cond: dict[str, Array], fixed: dict[str, Array],
    mask: Array | None = None,
) -> Array:
    return plain_safe(cfg.plain_points, cfg.free, cfg.transforms, u, cond, fixed, mask)


def plain_safe(
    plain_points: Callable | None, free: tuple[str, ...], transforms: tuple[Transform, ...],
    u: Array, cond: dict[str, Array], fixed: dict[str, Array], mask: Array | None = None,
) -> Array:
    """Whether the plain closed forms are exact at every point (where ``mask``) at which
    the model is evaluated for ``u``; True when the program holds the two-form model
    (``plain_points`` None), and for a non-finite ``u`` (a step that the solvers reject
    whatever the model gives there: ``lm_step`` and the profile's re-fit test the step
    itself)."""
    if plain_points is None:
        return jnp.asarray(True)
    x = jnp.stack([t.to_phys(u[i]) for i, t in enumerate(transforms)])
    ok = plain_points({**fixed, **cond, **{name: x[i] for i, name in enumerate(free)}})
    if mask is not None:
        ok = jnp.broadcast_to(ok, jnp.broadcast_shapes(jnp.shape(ok), mask.shape)) | ~mask
    return jnp.all(ok) | ~jnp.all(jnp.isfinite(u))


def _residual_and_V(
    cfg: SolverConfig, u: Array, cell: dict[str, Array], fixed: dict[str, Array]
) -> tuple[Array, Array]:
    """The weighted residuals and the model's V (broadcast to the points)."""
    V = _model_V(cfg, u, cell["cond"], fixed)
    return jnp.where(cell["mask"], (V - cell["V"]) * cell["w"], 0.0), V


def _residual(
    cfg: SolverConfig, u: Array, cell: dict[str, Array], fixed: dict[str, Array]
) -> Array:
    return _residual_and_V(cfg, u, cell, fixed)[0]


def _optimality(J: Array, r: Array, cell: dict, eps: Array) -> tuple[Array, Array]:
    """(cosine, exact): the convergence test of a least-squares optimum.

    ``cosine`` = |Jᵀr| / (|J|_F·|r|) is the cosine between the residual and the column
    space of J (zero at a stationary point). ``exact``: residuals at the rounding level
    of V itself, where the data are fitted exactly and the cosine measures only
    rounding noise.
    """
    norm_r = jnp.sqrt(jnp.sum(r * r))
    cosine = jnp.sqrt(jnp.sum((J.T @ r) ** 2)) / (
        jnp.sqrt(jnp.sum(J * J)) * norm_r + jnp.finfo(r.dtype).tiny
    )
    scale = jnp.sqrt(jnp.sum((cell["V"] * cell["w"]) ** 2))
    return cosine, norm_r <= 1e3 * eps * scale


def _normal_equations(J: Array, r: Array, eps: Array) -> tuple[Array, Array, Array]:
    """Gradient Jᵀr, Gauss–Newton matrix JᵀJ and the LM scaling diagonal D (the diagonal
    of JᵀJ, lifted off 0 by eps times its largest entry and the smallest normal number)."""
    g = J.T @ r
    H = J.T @ J
    d = jnp.diagonal(H)
    return g, H, d + eps * jnp.max(d) + jnp.finfo(J.dtype).tiny


def _solve_spd(A: Array, b: Array) -> Array:
    """x with A x = b for a symmetric positive definite (p, p) A.

    Up to SMALL_P unknowns by a Cholesky factorisation unrolled into elementwise
    operations (no LAPACK call per cell and start under ``vmap``); a factor that is not
    positive gives a non-finite x, which the caller rejects. Larger systems by
    ``jnp.linalg.solve``.
    """
    p = b.shape[-1]
    if p > SMALL_P:
        return jnp.linalg.solve(A, b)
    L: list[list[Array]] = [[] for _ in range(p)]
    for j in range(p):
        L[j].append(jnp.sqrt(A[j, j] - sum((L[j][k] ** 2 for k in range(j)), start=0.0)))
        for i in range(j + 1, p):
            L[i].append(
                (A[i, j] - sum((L[i][k] * L[j][k] for k in range(j)), start=0.0)) / L[j][j]
            )
    y: list[Array] = []
    for i in range(p):
        y.append((b[i] - sum((L[i][k] * y[k] for k in range(i)), start=0.0)) / L[i][i])
    x: list[Array] = [y[0]] * p
    for i in reversed(range(p)):
        x[i] = (y[i] - sum((L[k][i] * x[k] for k in range(i + 1, p)), start=0.0)) / L[i][i]
    return jnp.stack(x)


class _Problem:
    """Residuals, loss and the two optimiser steps of one start on one cell."""

    def __init__(self, cfg: SolverConfig, cell: dict, fixed: dict, gtol: float) -> None:
        self.cfg, self.cell, self.fixed, self.gtol = cfg, cell, fixed, gtol
        self.n = jnp.sum(cell["mask"].astype(cell["V"].dtype))
        self.opt = optax.apply_if_finite(
            optax.adam(cfg.learning_rate), max_consecutive_errors=1 << 30
        )

    def res(self, u: Array) -> Array:
        return _residual(self.cfg, u, self.cell, self.fixed)

    def res_aux(self, u: Array) -> tuple[Array, tuple[Array, Array]]:
        """(r, (r, V)): for ``jax.jacfwd(..., has_aux=True)``, which then gives J, r and
        the model's V at ``u`` from one evaluation."""
        r, V = _residual_and_V(self.cfg, u, self.cell, self.fixed)
        return r, (r, V)

    def point(self, J: Array, r: Array) -> tuple[Array, ...]:
        """What the LM step and its stop test use at a point: (cosine, exact) of
        :func:`_optimality` and (g, H, D) of :func:`_normal_equations`; computed once
        per point (for the trial point of each step) and carried in the LM state."""
        eps = jnp.finfo(r.dtype).eps
        cosine, exact = _optimality(J, r, self.cell, eps)
        return (cosine, exact, *_normal_equations(J, r, eps))

    def loss(self, u: Array) -> Array:
        r = self.res(u)
        return jnp.sum(r * r) / self.n

    def safe(self, u: Array) -> Array:
        """:func:`_plain_safe` at ``u`` on this cell's points."""
        return _plain_safe(self.cfg, u, self.cell["cond"], self.fixed, self.cell["mask"])

    def adam_init(self, u0: Array) -> tuple:
        """The Adam state at ``u0``: (u, optimiser state, best loss, steps since it
        fell, steps, plain_safe so far)."""
        zero = jnp.asarray(0, jnp.int32)
        return (
            u0, self.opt.init(u0), jnp.asarray(jnp.inf, u0.dtype), zero, zero,
            jnp.asarray(True),
        )

    def adam_step(self, state: tuple) -> tuple[tuple, Array]:
        """One Adam step (a no-op once the start has stopped); the loss before it."""
        u, opt_state, ref, since, n, safe = state
        if u.shape[0] <= FORWARD_MAX_PARAMS:
            # Few parameters: the gradient from the forward-mode Jacobian (one JVP per
            # parameter, batched) is cheaper than a reverse pass through the model.
            J, (r, _) = jax.jacfwd(self.res_aux, has_aux=True)(u)
            value, grad = jnp.sum(r * r) / self.n, 2.0 * (J.T @ r) / self.n
        else:
            value, grad = jax.value_and_grad(self.loss)(u)
        # optax's bias correction raises a float to an int32 step count; allow that
        # promotion here even when the caller runs with strict dtype promotion.
        with jax.numpy_dtype_promotion("standard"):
            updates, opt_state = self.opt.update(grad, opt_state, u)
        better = value < ref * (1.0 - ADAM_RTOL)
        done = since >= ADAM_PATIENCE
        new = (
            optax.apply_updates(u, updates),
            opt_state,
            jnp.where(better, value, ref),
            jnp.where(better, jnp.zeros_like(since), since + 1),
            n + 1,
            safe & self.safe(u),
        )
        return jax.tree.map(lambda old, x: jnp.where(done, old, x), state, new), value

    def lm_init(self, u: Array) -> tuple:
        """The LM state at ``u``: (u, loss, damping, (J, r, V), stopped, steps, point,
        plain_safe so far)."""
        J, (r, V) = jax.jacfwd(self.res_aux, has_aux=True)(u)
        zero = jnp.asarray(0, jnp.int32)
        value = jnp.sum(r * r) / self.n
        lam = jnp.asarray(1e-3, u.dtype)
        pt = self.point(J, r)
        return u, value, lam, (J, r, V), self.lm_stop(u, lam, pt), zero, pt, self.safe(u)

    def lm_stop(self, u: Array, lam: Array, pt: tuple[Array, ...]) -> Array:
        """Whether LM stops at ``u`` (see :meth:`lm_step`), from :meth:`point` at ``u``."""
        eps = jnp.finfo(u.dtype).eps
        cosine, exact, g, H, D = pt
        # Distance to the optimum: the (barely damped) Gauss–Newton step from here.
        # Damping by sqrt(eps) keeps it finite along an undetermined direction.
        xtol = eps ** (2.0 / 3.0)
        newton = _solve_spd(H + jnp.sqrt(eps) * jnp.diag(D), -g)
        small = jnp.sqrt(jnp.sum(newton * newton)) <= xtol * (jnp.sqrt(jnp.sum(u * u)) + xtol)
        return (((cosine <= self.gtol) | exact) & small) | (lam >= LAM_MAX)

    def lm_step(self, state: tuple) -> tuple[tuple, Array]:
        """One Levenberg–Marquardt step, or the decision to stop; the loss after it.

        The state carries the Jacobian and residuals of the current point; each step
        evaluates them once, at the trial point. A trial is accepted when it lowers the
        loss, or, at the rounding floor of the loss (within FLOOR times its rounding error
        from that of V), when it lowers the optimality cosine |Jᵀr|/(|J||r|): near the
        optimum the gradient resolves the position far better than the loss does.

        Stops when the convergence test passes and the Gauss–Newton step from the
        current point (its distance to the optimum) is below eps^(2/3) relative, or when
        the damping has reached its ceiling (every recent step rejected: no further
        progress is possible). The test (:meth:`lm_stop`) is made on the point a step
        arrives at, so that a stopped start costs no further batched step.
        """
        u, value, lam, (J, r, V), done, n, pt, safe = state
        eps = jnp.finfo(u.dtype).eps
        cosine, _, g, H, D = pt
        step = _solve_spd(H + lam * jnp.diag(D), -g)
        trial = u + step
        J_t, (r_t, V_t) = jax.jacfwd(self.res_aux, has_aux=True)(trial)
        value_t = jnp.sum(r_t * r_t) / self.n
        pt_t = self.point(J_t, r_t)
        cosine_t = pt_t[0]
        # Rounding error of the loss from that of V (eps·|V|, which the residuals cancel).
        floor = 2.0 * eps * jnp.sum(jnp.abs(r * self.cell["V"] * self.cell["w"])) / self.n
        lower = (value_t <= value) | (
            (value_t <= value + FLOOR * floor) & (cosine_t < cosine)
        )
        ok = jnp.isfinite(value_t) & lower & jnp.all(jnp.isfinite(step)) & ~done
        new = (trial, value_t, J_t, r_t, V_t, pt_t)
        u, value, J, r, V, pt = jax.tree.map(
            lambda x, y: jnp.where(ok, x, y), new, (u, value, J, r, V, pt)
        )
        lam = jnp.where(done, lam, jnp.clip(jnp.where(ok, lam * 0.3, lam * 10.0), 1e-12, LAM_MAX))
        n = jnp.where(done, n, n + 1)
        # The trial point counts where the step was taken (a stopped start's is unused).
        safe = safe & (done | self.safe(trial))
        done = done | self.lm_stop(u, lam, pt)
        return (u, value, lam, (J, r, V), done, n, pt, safe), value

    def status(self, u: Array, value: Array, pt: tuple | None = None) -> tuple[Array, Array]:
        """(loss, status) at the end: converged, not converged or non-finite.

        ``pt``: :meth:`point` at ``u`` where already known.
        """
        if pt is None:
            J, (r, _) = jax.jacfwd(self.res_aux, has_aux=True)(u)
            cosine, exact = _optimality(J, r, self.cell, jnp.finfo(u.dtype).eps)
        else:
            cosine, exact = pt[:2]
        finite = jnp.isfinite(value) & jnp.all(jnp.isfinite(u))
        status = jnp.where(
            finite, jnp.where((cosine <= self.gtol) | exact, CONVERGED, NOT_CONVERGED), NON_FINITE
        ).astype(jnp.int32)
        return jnp.where(finite, value, jnp.inf), status


def _batched(method: str, cfg: SolverConfig, fixed: dict, gtol: float) -> Callable:
    """``method`` of :class:`_Problem` over (cells, starts): ``f(cells, *args)``."""

    def one(cell: dict, *args: object) -> object:
        return getattr(_Problem(cfg, cell, fixed, gtol), method)(*args)

    def per_cell(cell: dict, *args: object) -> object:
        return jax.vmap(lambda *a: one(cell, *a))(*args)

    return jax.vmap(per_cell)


def _run(step: Callable, state: tuple, hist: Array, offset: int, steps: int, active: Callable):
    """Iterate ``step`` over the whole batch until no start is ``active`` or ``steps`` ran.

    The loop counter is one scalar for the batch (stopped starts are frozen inside
    ``step``), so the history is written with a scalar index. Returns the final state,
    the history and the number of iterations run.
    """

    if steps == 0:
        return state, hist, jnp.asarray(0, jnp.int32)

    def cond(carry: tuple) -> Array:
        i, st, _ = carry
        return (i < steps) & jnp.any(active(st))

    def body(carry: tuple) -> tuple:
        i, st, h = carry
        st, value = step(st)
        return i + 1, st, lax.dynamic_update_index_in_dim(h, value, offset + i, axis=2)

    i, state, hist = lax.while_loop(cond, body, (jnp.asarray(0, jnp.int32), state, hist))
    return state, hist, i


# The batched LM loop gathers the cells still running into a batch of 1/4 of the cells
# once no more than that many run, and those into one of 1/COMPACT of the cells, so that
# the slowest cells do not keep the whole batch iterating (batches of fewer than COMPACT
# cells are not compacted).
COMPACT = 16


def _lm_loop(
    lm: Callable, cells: dict, state: tuple, hist: Array, offset: int, steps: int
) -> tuple[tuple, Array]:
    """Iterate the batched LM ``step`` until every cell has stopped or ``steps`` ran.

    As :func:`_run`, but once at most C // 4 of the C cells are still running, those are
    gathered (padded with a stopped cell, whose frozen state the step leaves as it is)
    into a batch of C // 4 that iterates on alone, and scattered back; within it, the
    same again at C // COMPACT. A cell's result is the same as in a loop over the whole
    batch: its steps are the same and stopped cells do not change. ``state`` and
    ``hist`` have a starts axis of size 1. The history is written up to each cell's own
    stop; the caller fills the rest.
    """
    if steps == 0:
        return state, hist

    def running(st: tuple) -> Array:
        return jnp.any(~st[4], axis=1)

    def loop(cells: dict, st: tuple, h: Array, i: Array, until: int) -> tuple:
        def cond(carry: tuple) -> Array:
            i, st, _ = carry
            return (i < steps) & (jnp.sum(running(st)) > until)

        def body(carry: tuple) -> tuple:
            i, st, h = carry
            st, value = lm(cells, st)
            return i + 1, st, lax.dynamic_update_index_in_dim(h, value, offset + i, axis=2)

        return lax.while_loop(cond, body, (i, st, h))

    def level(cells: dict, st: tuple, h: Array, i: Array, sizes: tuple[int, ...]) -> tuple:
        if not sizes:
            _, st, h = loop(cells, st, h, i, 0)
            return st, h
        size = sizes[0]
        i, st, h = loop(cells, st, h, i, size)
        run = running(st)
        # At most `size` cells run here (or the budget is spent), so a stopped one exists.
        take = jnp.nonzero(run, size=size, fill_value=jnp.argmin(run))[0]
        sub = functools.partial(jax.tree.map, lambda a: a[take])
        s_st, s_h = level(sub(cells), sub(st), h[take], i, sizes[1:])
        st = jax.tree.map(lambda a, b: a.at[take].set(b), st, s_st)
        return st, h.at[take].set(s_h)

    n = cells["V"].shape[0]
    sizes = tuple(sorted({n // 4, n // COMPACT} - {0}, reverse=True)) if n >= COMPACT else ()
    return level(cells, state, hist, jnp.asarray(0, jnp.int32), sizes)


def _uncertainty(
    cfg: SolverConfig, u: Array, cell: dict, fixed: dict, svtol: float, JrV: tuple | None = None
) -> dict:
    """Standard errors, correlations, identifiability and the fitted V at ``u``; ``JrV``:
    the Jacobian, residuals and model V at ``u`` where already known."""
    if JrV is None:
        J = jax.jacfwd(lambda v: _residual(cfg, v, cell, fixed))(u)
        r, V = _residual_and_V(cfg, u, cell, fixed)
    else:
        J, r, V = JrV
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
    LM iterations), ``status``, ``iterations``, ``best_start``, and the uncertainty of
    the best start (``se``, ``se_u``, ``corr``, ``identifiable``, ``sv_ratio``, ``flat``,
    ``V_fit``).
    """

    def solve(starts: Array, cells: dict, fixed: dict) -> dict[str, Array]:
        with cfg.forms():
            return traced(starts, cells, fixed)

    def traced(starts: Array, cells: dict, fixed: dict) -> dict[str, Array]:
        gtol, svtol = tolerances(starts.dtype)
        n_cells, n_starts = cells["V"].shape[0], starts.shape[0]
        batch = functools.partial(_batched, cfg=cfg, fixed=fixed, gtol=gtol)
        total = cfg.adam_steps + cfg.lm_steps
        hist = jnp.zeros((n_cells, n_starts, total), starts.dtype)
        u0 = jnp.broadcast_to(starts, (n_cells, *starts.shape))

        # Adam, until every start has stopped (no relative fall of the loss by
        # ADAM_RTOL in ADAM_PATIENCE steps) or adam_steps; stopped starts record the
        # loss where they stopped.
        adam = batch("adam_step")
        state = batch("adam_init")(cells, u0)
        state, hist, _ = _run(
            lambda st: adam(cells, st), state, hist, 0, cfg.adam_steps,
            lambda st: st[3] < ADAM_PATIENCE,
        )
        u, n_adam, adam_safe = state[0], state[4], state[5]
        # Levenberg–Marquardt, until every start has stopped or lm_steps.
        lm = batch("lm_step")
        state = batch("lm_init")(cells, u)
        idx = jnp.arange(total, dtype=jnp.int32)
        hist = jnp.where(
            (idx >= n_adam[..., None]) & (idx < cfg.adam_steps), state[1][..., None], hist
        )
        state, hist, i_lm = _run(
            lambda st: lm(cells, st), state, hist, cfg.adam_steps, cfg.lm_steps,
            lambda st: ~st[4],
        )
        u, value, n_lm = state[0], state[1], state[5]
        safe = jnp.all(adam_safe & state[7], axis=1)  # every start of the cell
        hist = jnp.where(idx >= cfg.adam_steps + i_lm, value[..., None], hist)
        loss, status = batch("status")(cells, u, value)
        runs = {
            "u": u, "loss": loss, "history": hist, "status": status,
            "iterations": n_adam + n_lm,
        }

        def per_cell(run: dict, cell: dict) -> dict[str, Array]:
            best = jnp.argmin(run["loss"])
            out = {k: v[best] for k, v in run.items()}
            out["best_start"] = best.astype(jnp.int32)
            out |= _uncertainty(cfg, out["u"], cell, fixed, svtol)
            return out

        out = jax.vmap(per_cell)(runs, cells)
        out["plain_safe"] = safe
        return out

    return jax.jit(solve)


@functools.lru_cache(maxsize=32)
def build_lm_solver(cfg: SolverConfig) -> Callable[..., dict[str, Array]]:
    """Jitted ``solve(starts, cells, fixed)``: Levenberg–Marquardt from the best start.

    For every cell, the loss is evaluated at each of the K starts (one model evaluation
    each) and LM runs from the start that fits that cell's data best, for at most
    ``cfg.lm_steps`` steps; no Adam. A cell whose result does not pass the convergence
    test is refitted by the caller with :func:`build_solver` (Adam then LM from every
    start). The loop over LM steps is :func:`_lm_loop`. Arguments and returned keys as
    :func:`build_solver`, plus ``J0`` (C, N, p):
    the unweighted residual Jacobian of every cell at the first start, for the
    identifiability check before the fit. ``history`` holds the loss at the start for
    the Adam iterations (none ran) and then LM's. The returned arrays are on the host
    (numpy; see :func:`_packed`).
    """

    def solve(starts: Array, cells: dict, fixed: dict, shared: bool) -> dict[str, Array]:
        with cfg.forms():
            return traced(starts, cells, fixed, shared)

    def traced(starts: Array, cells: dict, fixed: dict, shared: bool) -> dict[str, Array]:
        gtol, svtol = tolerances(starts.dtype)
        n_cells = cells["V"].shape[0]
        batch = functools.partial(_batched, cfg=cfg, fixed=fixed, gtol=gtol)
        if shared:
            # Every cell has the same conditions (and no padding): the model's V at
            # each start, and its Jacobian at the first, are evaluated once for all.
            cond0 = {k: v[0] for k, v in cells["cond"].items()}
            V_starts = jax.vmap(lambda v: _model_V(cfg, v, cond0, fixed))(starts)

            def start_losses(cell: dict) -> Array:
                n = jnp.sum(cell["mask"].astype(cell["V"].dtype))
                r = jnp.where(cell["mask"], (V_starts - cell["V"]) * cell["w"], 0.0)
                return jnp.sum(r * r, axis=-1) / n

            losses = jax.vmap(start_losses)(cells)
            safe = jnp.broadcast_to(
                jnp.all(jax.vmap(lambda v: _plain_safe(cfg, v, cond0, fixed))(starts)),
                (n_cells,),
            )
        else:
            every = jnp.broadcast_to(starts, (n_cells, *starts.shape))
            losses = batch("loss")(cells, every)
            safe = jnp.all(batch("safe")(cells, every), axis=1)
        best = jnp.argmin(jnp.where(jnp.isnan(losses), jnp.inf, losses), axis=1)
        u0 = starts[best][:, None, :]
        total = cfg.adam_steps + cfg.lm_steps
        idx = jnp.arange(total, dtype=jnp.int32)
        lm = batch("lm_step")
        state = batch("lm_init")(cells, u0)
        hist = jnp.where(
            idx < cfg.adam_steps, state[1][..., None], jnp.zeros((n_cells, 1, total), u0.dtype)
        )
        state, hist = _lm_loop(lm, cells, state, hist, cfg.adam_steps, cfg.lm_steps)
        u, value, JrV, n_lm, pt = state[0], state[1], state[3], state[5], state[6]
        # The starts (their losses chose the start; the first also gives J0) and every
        # point LM evaluated.
        safe = safe & state[7][:, 0]
        # From its stop on, a cell's loss stays where it stopped (the step that stops
        # it does not count in n_lm).
        hist = jnp.where(idx >= cfg.adam_steps + n_lm[..., None], value[..., None], hist)
        loss, status = batch("status")(cells, u, value, pt)
        runs = {"u": u, "loss": loss, "history": hist, "status": status, "iterations": n_lm}
        out = jax.tree.map(lambda a: a[:, 0], runs)
        out["best_start"] = best.astype(jnp.int32)
        JrV = jax.tree.map(lambda a: a[:, 0], JrV)
        out |= jax.vmap(lambda v, cell, jrv: _uncertainty(cfg, v, cell, fixed, svtol, jrv))(
            out["u"], cells, JrV
        )

        def jac0(cell: dict) -> Array:
            unit = {**cell, "w": jnp.ones_like(cell["w"])}
            return jax.jacfwd(lambda v: _residual(cfg, v, unit, fixed))(starts[0])

        if shared:  # no padding: the unweighted residual Jacobian is the model's
            J0 = jax.jacfwd(lambda v: _model_V(cfg, v, cond0, fixed))(starts[0])
            out["J0"] = jnp.broadcast_to(J0, (n_cells, *J0.shape))
        else:
            out["J0"] = jax.vmap(jac0)(cells)
        out["plain_safe"] = safe
        return out

    return _packed(solve)


def _same_conditions(cells: dict) -> bool:
    """Whether every cell has the same condition values at every point and no padding
    (host arrays): the solver then evaluates what depends only on the conditions once."""
    mask = np.asarray(cells["mask"])
    if mask.shape[0] < 2 or not mask.all():
        return False
    return all(
        bool((c == c[:1]).all()) for c in (np.asarray(v) for v in cells["cond"].values())
    )


def _packed(solve: Callable) -> Callable[..., dict[str, Array]]:
    """Jit ``solve(starts, cells, fixed, shared)`` with the fixed values passed as one
    vector and ``shared`` (static) telling whether all cells have the same conditions.

    Each array argument of a jitted call costs a host-to-device transfer of its own;
    the fixed parameters (a dozen scalars) go over as one array and are unpacked in the
    program. Compiled once per set of fixed names (and shapes and dtypes).
    """

    layouts: dict[tuple, tuple] = {}

    def key_of(starts: Array, cells: dict, names: tuple[str, ...], shared: bool) -> tuple:
        V = cells["V"]
        cond = tuple(sorted(cells["cond"]))  # in the order of the traced pytree
        return names, shared, tuple(starts.shape), V.shape[1:], str(V.dtype), cond

    def unpack(
        starts: Array, cells: dict, names: tuple[str, ...], values: Array, shared: bool
    ) -> tuple[Array, Array]:
        out = solve(starts, cells, {k: values[i] for i, k in enumerate(names)}, shared)
        # All results in two arrays (floating point; integers and flags), one row per
        # cell: each output array costs a transfer of its own. The layout is known when
        # the program is traced and kept for unpacking on the host.
        n_cells = cells["V"].shape[0]
        layout, floats, ints = [], [], []
        for k, a in out.items():
            group = floats if jnp.issubdtype(a.dtype, jnp.floating) else ints
            width = math.prod(a.shape[1:])
            start = sum(x.shape[1] for x in group)
            layout.append((k, group is floats, a.shape[1:], a.dtype, start, start + width))
            group.append(a.reshape(n_cells, width).astype(starts.dtype if group is floats
                                                          else jnp.int32))
        layouts[key_of(starts, cells, names, shared)] = tuple(layout)
        empty = jnp.zeros((n_cells, 0), jnp.int32)
        return jnp.concatenate(floats, axis=1), (jnp.concatenate(ints, axis=1) if ints else empty)

    jitted = jax.jit(unpack, static_argnums=(2, 4))

    def call(starts: Array, cells: dict, fixed: dict) -> dict[str, np.ndarray]:
        names = tuple(fixed)
        values = (
            np.stack([np.asarray(fixed[k]) for k in names])
            if names
            else np.zeros(0, np.asarray(starts).dtype)
        )
        shared = _same_conditions(cells)
        floats, ints = (np.asarray(a) for a in jitted(starts, cells, names, values, shared))
        key = key_of(starts, cells, names, shared)
        if key not in layouts:  # traced elsewhere (not expected): trace it here
            jax.eval_shape(lambda s, c, v: unpack(s, c, names, v, shared), starts, cells, values)
        layout = layouts[key]
        out = {}
        for k, is_float, shape, dtype, a, b in layout:
            x = (floats if is_float else ints)[:, a:b].reshape((-1, *shape))
            out[k] = x if is_float else x.astype(dtype)
        return out

    return call


@functools.lru_cache(maxsize=32)
def build_jacobian(cfg: SolverConfig) -> Callable[..., Array]:
    """Jitted ``jac(u, cells, fixed)``: the weighted residual Jacobians (C, N, p) of all cells."""

    def jac(u: Array, cell: dict, fixed: dict) -> Array:
        return jax.jacfwd(lambda v: _residual(cfg, v, cell, fixed))(u)

    return jax.jit(jax.vmap(jac, in_axes=(None, 0, None)))


def start_points(
    transforms: tuple[Transform, ...], center: np.ndarray, k: int, seed: int
) -> np.ndarray:
    """``k`` starts in u (float64, shape (k, p)): the center, then Gaussian draws around it."""
    rng = np.random.default_rng(seed)
    spread = np.array([t.start_spread for t in transforms])
    draws = center + spread * rng.standard_normal((max(k - 1, 0), len(transforms)))
    return np.vstack([center[None, :], draws])


def plain_forms_first(
    solve: Callable[[Callable | None, np.ndarray | None], dict],
    plain_points: Callable | None,
) -> dict[str, np.ndarray]:
    """The results of a per-cell program, from the program with the plain closed forms
    where they are exact at every point it evaluated, and from the two-form program for
    the other cells.

    ``solve(plain_points, take)`` runs the program built with ``plain_points`` (None:
    the two-form model) on the cells ``take`` (None: all) and returns arrays with the
    cell axis first, among them ``plain_safe`` (bool per cell, see
    :class:`SolverConfig`). The cells run again go as one batch padded to a power of
    two (by repeating the first), so that few shapes are compiled. Returns host arrays,
    without ``plain_safe``; every cell's result is that of the two-form program, to
    rounding.
    """
    out = {k: np.asarray(v) for k, v in solve(plain_points, None).items()}
    safe = out.pop("plain_safe").astype(bool)
    if plain_points is None or safe.all():
        return out
    redo = np.flatnonzero(~safe)
    size = 1 << int(redo.size - 1).bit_length()
    again = solve(None, np.concatenate([redo, np.full(size - redo.size, redo[0])]))
    out = {k: np.array(v) for k, v in out.items()}
    for key, value in out.items():
        value[redo] = np.asarray(again[key])[: redo.size]
    return out
