"""Safeguarded root finding for monotone scalar functions, vectorised, with implicit gradients.

The solver works elementwise on arrays (so it composes with ``vmap`` and broadcasting),
under ``jit``, with a fixed iteration budget. Its derivative is never obtained by
differentiating the iterations: the root is passed through :func:`implicit_root`,
whose JVP applies the implicit function theorem, dx/dθ = -(∂f/∂θ)/(∂f/∂x).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import Array, lax

Residual = Callable[[Array, Any], Array]

# Status codes of a root solve (stored as the ``status`` variable of sweeps).
OK = 0
NOT_BRACKETED = 1
NOT_CONVERGED = 2
STATUS_MEANINGS = "ok not_bracketed not_converged"


def _value_and_slope(f: Residual, x: Array, theta: Any) -> tuple[Array, Array]:
    return jax.jvp(lambda v: f(v, theta), (x,), (jnp.ones_like(x),))


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def implicit_root(f: Residual, x: Array, theta: Any) -> Array:
    """Return ``x`` unchanged; its tangent w.r.t. ``theta`` comes from f(x, θ) = 0."""
    del f, theta
    return x


@implicit_root.defjvp
def _implicit_root_jvp(f: Residual, primals: tuple, tangents: tuple) -> tuple[Array, Array]:
    x, theta = primals
    _, dtheta = tangents
    _, df_dtheta = jax.jvp(lambda th: f(x, th), (theta,), (dtheta,))
    _, df_dx = _value_and_slope(f, x, theta)
    return x, -df_dtheta / df_dx


@jax.custom_jvp
def nan_where(ok: Array, x: Array) -> Array:
    """``x`` where ``ok``, else NaN, and NaN tangents where not ``ok`` too.

    ``jnp.where(ok, x, nan)`` alone has a zero derivative where ``ok`` is False, so a
    sweep would store dV/dθ = 0 next to V = NaN; with this, status != 0 gives NaN values
    and NaN gradients in forward and reverse mode.
    """
    return jnp.where(ok, x, jnp.nan)


@nan_where.defjvp
def _nan_where_jvp(primals: tuple, tangents: tuple) -> tuple[Array, Array]:
    ok, x = primals
    _, dx = tangents
    # A product with a constant (not a select with a NaN constant) is linear in dx, so
    # reverse mode (its transpose) carries the NaN too.
    return nan_where(ok, x), dx * jnp.where(ok, 1.0, jnp.nan).astype(jnp.result_type(dx))


def mask_outputs(
    ok: Array, outputs: dict[str, Array], inputs: Any
) -> dict[str, Array]:
    """Every float output NaN where not ``ok``, with NaN derivatives w.r.t. every input.

    Each output gets a zero link to every input (0·θ summed), so that under
    :func:`nan_where` the derivative w.r.t. an input whose path to the output passes a
    ``where`` (and would otherwise be 0) is NaN too, in forward and reverse mode. Where
    ``ok`` the values and derivatives are unchanged.
    """
    leaves = [
        x for x in jax.tree.leaves(inputs) if jnp.issubdtype(jnp.result_type(x), jnp.floating)
    ]
    link = sum((0.0 * x for x in leaves), jnp.zeros((), jnp.result_type(*leaves)))
    return {
        k: nan_where(ok, v + link.astype(v.dtype)) if jnp.issubdtype(v.dtype, jnp.floating) else v
        for k, v in outputs.items()
    }


def increasing_root(
    f: Residual,
    theta: Any,
    hi: Array,
    step: float,
    *,
    max_expand: int = 16,
    max_iter: int = 60,
) -> tuple[Array, Array]:
    """Root of ``f(·, theta)``, elementwise strictly increasing in x, below a known upper bound.

    The caller supplies ``hi`` with f(hi) >= 0. The lower end of the bracket starts at
    ``hi - step`` and the step doubles (at most ``max_expand`` times) until f(lo) <= 0.
    Then Newton steps, starting from ``hi``, are taken inside the bracket, falling back
    to bisection whenever a step would leave it (Press et al., Numerical Recipes, 3rd
    ed., §9.4 "rtsafe"), until the step is below a tolerance tied to the dtype's
    resolution or ``max_iter`` is spent.

    Args:
        f: residual ``f(x, theta) -> array``, elementwise in x.
        theta: pytree of arrays (the parameters), differentiated through implicitly.
        hi: upper bracket (same shape as the result).
        step: initial distance to the lower bracket end (units of x).

    Returns:
        ``(x, status)``: the root (NaN where no root was found) and an int32 status:
        ``OK``, ``NOT_BRACKETED`` or ``NOT_CONVERGED``. ``x`` carries implicit gradients.
    """
    theta_c = lax.stop_gradient(theta)
    hi = lax.stop_gradient(hi)
    dtype = hi.dtype
    eps = jnp.finfo(dtype).eps

    def expand_cond(c: tuple) -> Array:
        k, _, f_lo = c
        return (k < max_expand) & jnp.any(f_lo > 0)

    def expand_body(c: tuple) -> tuple:
        k, lo, f_lo = c
        new_lo = jnp.where(f_lo > 0, hi - step * 2.0 ** (k + 1), lo)
        return k + 1, new_lo, jnp.where(f_lo > 0, f(new_lo, theta_c), f_lo)

    lo0 = hi - step
    _, lo, f_lo = lax.while_loop(expand_cond, expand_body, (0, lo0, f(lo0, theta_c)))
    bracketed = f_lo <= 0

    def small(x: Array, dx: Array, width: Array) -> Array:
        # Converged: the last step, or the bracket, is within a few ulps of x.
        tol = 64 * eps * (1.0 + jnp.abs(x))
        return (jnp.abs(dx) <= tol) | (width <= tol)

    def newton_cond(c: tuple) -> Array:
        it, x, lo, hi_, dx, _ = c
        return (it < max_iter) & ~jnp.all(small(x, dx, hi_ - lo))

    def newton_body(c: tuple) -> tuple:
        it, x, lo, hi_, dx, dx_old = c
        fx, dfx = _value_and_slope(f, x, theta_c)
        lo = jnp.where(fx <= 0, x, lo)
        hi_ = jnp.where(fx >= 0, x, hi_)
        newton = x - fx / dfx
        # rtsafe: bisect when the Newton step leaves the bracket or does not at least
        # halve the step before last (which stops two-point ping-pong on curved f).
        # A step landing on the bracket's end (a zero step included) is kept.
        inside = (newton >= lo) & (newton <= hi_) & jnp.isfinite(newton)
        fast = 2.0 * jnp.abs(newton - x) <= jnp.abs(dx_old)
        x_new = jnp.where(inside & fast, newton, 0.5 * (lo + hi_))
        # Elements already converged stay put while others iterate (under vmap).
        x_new = jnp.where((fx == 0) | small(x, dx, hi_ - lo), x, x_new)
        return it + 1, x_new, lo, hi_, x_new - x, dx

    width0 = hi - lo
    init = (0, hi, lo, hi, width0, width0)
    it, x, lo, hi_, dx, _ = lax.while_loop(newton_cond, newton_body, init)
    converged = small(x, dx, hi_ - lo)
    status = jnp.where(
        bracketed, jnp.where(converged, OK, NOT_CONVERGED), NOT_BRACKETED
    ).astype(jnp.int32)
    x = jnp.where(status == OK, x, jnp.nan)
    return implicit_root(f, x, theta), status
