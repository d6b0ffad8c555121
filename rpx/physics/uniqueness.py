"""How many steady states has the pump–leak cell with transporters? A check with a verdict.

The cell of :mod:`rpx.physics.transporters` (Na/K pump, GHK leaks, KCC2, NKCC1 and,
optionally, the Ca2+ leak, Na/Ca exchanger and Ca2+ pump) is solved by Newton's method on
a 4 × 4 system; uniqueness of its steady state is not proven. This module counts the
steady states without that solver and says, per parameter set, whether the count is
conclusive.

Reduction (as in :func:`rpx.physics.pump_leak.transporter_sign_changes`). At fixed
u = FV/RT the Na, K and Cl balances (Ca_i in closed form, :func:`calcium_steady
<rpx.physics.transporters.calcium_steady>`) have at most one solution x(u) = (ln Na_i,
ln K_i, ln Cl_i): their Jacobian is a P-matrix on all of R³ (the proof is in that
function's docstring; Gale–Nikaidô). Where it exists the solution is a smooth function of
u (implicit function theorem; a P-matrix is nonsingular), and the steady states are the
zeros of the remaining equation, electroneutrality with osmotic balance,

    H(u) = (1 − z_X)·(Na_i + K_i) − (1 + z_X)·Cl_i + (2 − z_X)·Ca_i + z_X·Osm_o,

along that curve, at which X_i = (Osm_o − 2·Cl_i + Ca_i)/(1 − z_X) > 0 (a finite volume).
Here the balances are solved in ln Cl_i (not in the solver's logit), so the curve is
followed also where it leaves X_i > 0; zeros of H there are not steady states and are
counted apart.

Where no steady state can lie (proven, :func:`voltage_bounds`). Adding the Na and K
balances and subtracting the Cl balance, the cotransporters cancel: every solution of the
balances has zero total membrane current,

    T = I_Na + I_K + I_Cl + I_p + 3·I_NCX = 0,  with the Ca balance 3·I_NCX = 1.5·(I_Ca + I_PMCA).

At a steady state osmotic balance Na_i + K_i + Cl_i + Ca_i + X_i = Osm_o holds with every
term >= 0, so every intracellular concentration lies in [0, Osm_o). With g(s) = s/(1 −
e^(−s)) (increasing; I_ion = z·F·P·(c_i·g(z·u) − c_o·g(−z·u)), :func:`rpx.physics.
formulas.ghk_current`) each current is then bounded above and below by functions of u
alone, each nondecreasing in u:

* upper: I_Na <= F·P_Na·(Osm_o·g(u) − Na_o·g(−u)), likewise K; I_Cl <= F·P_Cl·Cl_o·g(u);
  I_p <= the Luo–Rudy pump at Na_i = Osm_o (its f_NaK increases with u; the fixed pump is
  I_pump_fixed); 3·I_NCX <= the smaller of 3·A(u) (the exchanger's forward term at
  Na_i = Osm_o; A increases with u for eta_NCX <= 1) and 1.5·(2·F·P_Ca·(Osm_o·g(2u) −
  Ca_o·g(−2u)) + I_PMCA_max·Osm_o/(Km_PMCA + Osm_o));
* lower: I_Na >= −F·P_Na·Na_o·g(−u), likewise K; I_Cl >= F·P_Cl·(Cl_o·g(u) − Osm_o·g(−u));
  I_p >= 0 (kinetic) or I_pump_fixed; 3·I_NCX >= the larger of −3·B(u)·Osm_o (B·Ca_i the
  exchanger's reverse term; B decreases with u) and −3·F·P_Ca·Ca_o·g(−2u).

So the upper bound C(u) and the lower bound L(u) of T increase with u, and T = 0 needs
C(u) >= 0 >= L(u): every steady state lies in [u_lo, u_hi], C(u_lo) = 0, L(u_hi) = 0
(found by bisection). The bound is infinite where a side has no restoring leak (e.g.
u_hi with P_Cl = 0 and no fixed pump): then the check is not conclusive.

The count (:func:`count_steady_states`). From a point on the curve (the steady-state
solver's root where it has one, else the balances solved at u = 0 or at u_lo, u_hi), the
curve is followed down to u_lo and up to u_hi by continuation: each step predicts x
linearly from the last two points and corrects by Newton's method (rows scaled by the
magnitudes of their terms, step cap, backtracking); a failed step is halved (adaptive
refinement where the balances are hard to solve) down to ``h_min``, where the lane gives
up and the check is not conclusive. Steps are at most ``h_max`` in u. Every sign change
of H between neighbouring points is refined by bisection to ``u_tol`` (with the balances
solved to 1000 ulps there; where a midpoint's sign of H cannot be decided, within
~1e-13 of the zero, the bracket reached must be below ``u_refined``), and the sign of
X_i at the refined zero says whether it is a steady state. Near misses are refined too:
where three neighbouring values of H have one sign but the parabola through them
crosses zero between them, H is evaluated at the parabola's vertex (a pair of zeros
closer than the step would show there).

A set is ``conclusive`` when both bounds are finite, the curve was followed over all of
[u_lo, u_hi], every sign change was refined,
and, where the solver's root is given, it is one of the refined zeros. What remains
beyond proof: two zeros closer together than the continuation's step with no near-miss
signal between them (H would have to turn back within one step), and the rounding of H
within ~``tol`` of a zero.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

from rpx.physics import formulas as phys
from rpx.physics import transporters
from rpx.physics.constants import F

Params = Mapping[str, ArrayLike]

_PUMP = {True: ("I_pump_max", "Km_Na_i", "Km_K_o"), False: ("I_pump_fixed",)}
_COMMON = ("K_o", "Na_o", "Cl_o", "P_K", "P_Na", "T", "z_X", "X_content", "X_o")
# |u| beyond which the bounds' search gives up (u = ±4096 is ±110 V at 37 C).
_U_SEARCH = 4096.0
_MAX_STEP = 2.0


def _names(p: Params, kinetic: bool) -> tuple[str, ...]:
    names = (*_COMMON, *_PUMP[kinetic], *transporters.EXTRA)
    if all(k in p for k in transporters.CALCIUM):
        names = (*names, *transporters.CALCIUM)
    return names


def _osm(p: Mapping[str, Array]) -> Array:
    cations = p["Na_o"] + p["K_o"]
    return cations + p["Cl_o"] + jnp.abs(cations - p["Cl_o"]) + p["X_o"]


def _g(s: Array) -> tuple[Array, Array]:
    return phys._ghk_kernels(s)


def _current_bounds(u: Array, p: Mapping[str, Array], kinetic: bool) -> tuple[Array, Array]:
    """(C(u), L(u)): upper and lower bounds (uA/cm^2) of the total membrane current T at u
    over every state with intracellular concentrations in [0, Osm_o) (module docstring)."""
    osm = _osm(p)
    g_u, g_mu = _g(u)
    leak_up = F * (
        p["P_Na"] * (osm * g_u - p["Na_o"] * g_mu)
        + p["P_K"] * (osm * g_u - p["K_o"] * g_mu)
        + p["P_Cl"] * p["Cl_o"] * g_u
    )
    leak_lo = F * (
        -p["P_Na"] * p["Na_o"] * g_mu
        - p["P_K"] * p["K_o"] * g_mu
        + p["P_Cl"] * (p["Cl_o"] * g_u - osm * g_mu)
    )
    vt = phys.thermal_voltage(p["T"])
    if kinetic:
        pump_up = phys.nak_pump_current(
            u * vt, osm, p["Na_o"], p["K_o"], p["I_pump_max"], p["Km_Na_i"], p["Km_K_o"], p["T"]
        )
        pump_lo = jnp.zeros_like(u)
    else:
        pump_up = pump_lo = jnp.broadcast_to(p["I_pump_fixed"], jnp.shape(u))
    upper, lower = leak_up + pump_up, leak_lo + pump_lo
    if "Ca_o" in p:
        # Exchanger I_NCX = A − B·Ca_i (Luo–Rudy 1994), in logarithms so that nothing
        # overflows at any u: ln(1 + k·e^((η−1)u)) by logaddexp.
        eta, k = p["eta_NCX"], p["k_sat_NCX"]
        den = (p["Km_Na_NCX"] ** 3 + p["Na_o"] ** 3) * (p["Km_Ca_NCX"] + p["Ca_o"])
        k_safe = jnp.where(k > 0, k, 1.0)
        l_sat = jnp.where(k > 0, jnp.logaddexp(0.0, jnp.log(k_safe) + (eta - 1.0) * u), 0.0)
        scale = p["I_NCX_max"] / den
        a_max = scale * osm**3 * p["Ca_o"] * jnp.exp(eta * u - l_sat)
        b = scale * p["Na_o"] ** 3 * jnp.exp((eta - 1.0) * u - l_sat)
        g2, g2m = _g(2.0 * u)
        pmca = p["I_PMCA_max"] * osm / (p["Km_PMCA"] + osm)
        ca_up = 1.5 * (2.0 * F * p["P_Ca"] * (osm * g2 - p["Ca_o"] * g2m) + pmca)
        ca_lo = -3.0 * F * p["P_Ca"] * p["Ca_o"] * g2m
        upper = upper + jnp.minimum(3.0 * a_max, ca_up)
        lower = lower + jnp.maximum(-3.0 * b * osm, ca_lo)
    return upper, lower


def _edge(f, p: Mapping[str, Array], lower_side: bool) -> Array:
    """u where the increasing f(u) crosses 0: the smallest u with f >= 0 (``lower_side``)
    or the largest with f <= 0; ∓inf if |u| up to :data:`_U_SEARCH` does not bracket it."""
    shape = jnp.shape(p["K_o"])
    zero = jnp.zeros(shape)
    # Bracket by doubling away from 0, then bisect (float64: 200 halvings reach ulps).
    steps = jnp.asarray(2.0 ** np.arange(13))  # 1 ... 4096
    f0 = f(zero)
    if lower_side:
        # need a with f(a) < 0 and b with f(b) >= 0
        fa = jax.vmap(lambda s: f(zero - s))(steps)
        fb = jax.vmap(lambda s: f(zero + s))(steps)
        a = jnp.where(f0 < 0, 0.0, -steps[jnp.argmax(fa < 0, axis=0)])
        a_ok = (f0 < 0) | jnp.any(fa < 0, axis=0)
        b = jnp.where(f0 >= 0, 0.0, steps[jnp.argmax(fb >= 0, axis=0)])
        b_ok = (f0 >= 0) | jnp.any(fb >= 0, axis=0)
    else:
        # need a with f(a) <= 0 and b with f(b) > 0
        fa = jax.vmap(lambda s: f(zero - s))(steps)
        fb = jax.vmap(lambda s: f(zero + s))(steps)
        a = jnp.where(f0 <= 0, 0.0, -steps[jnp.argmax(fa <= 0, axis=0)])
        a_ok = (f0 <= 0) | jnp.any(fa <= 0, axis=0)
        b = jnp.where(f0 > 0, 0.0, steps[jnp.argmax(fb > 0, axis=0)])
        b_ok = (f0 > 0) | jnp.any(fb > 0, axis=0)

    def body(_: int, ab: tuple) -> tuple:
        lo, hi = ab
        mid = 0.5 * (lo + hi)
        fm = f(mid)
        left = (fm >= 0) if lower_side else (fm > 0)
        return jnp.where(left, lo, mid), jnp.where(left, mid, hi)

    a, b = jax.lax.fori_loop(0, 200, body, (a, b))
    if lower_side:
        # every u < a has f < 0: the bound is a (conservative: f(a) < 0 <= f(b))
        return jnp.where(~a_ok, -jnp.inf, jnp.where(~b_ok, jnp.inf, a))
    return jnp.where(~b_ok, jnp.inf, jnp.where(~a_ok, -jnp.inf, b))


@functools.lru_cache(maxsize=8)
def _bounds_fn(kinetic: bool):
    def run(p: dict) -> tuple[Array, Array]:
        lo = _edge(lambda u: _current_bounds(u, p, kinetic)[0], p, True)
        hi = _edge(lambda u: _current_bounds(u, p, kinetic)[1], p, False)
        return lo, hi

    return jax.jit(run)


def _flat(p: Params, kinetic: bool) -> tuple[dict[str, Array], tuple[int, ...]]:
    from rpx.physics.params import PARAMS

    # Names a preset leaves out take the parameter table's default (z_X, X_content,
    # X_o, the cotransporter strengths...), as at every entry point; a name without one
    # is a KeyError.
    p = dict(p)
    for k in (*_COMMON, *_PUMP[kinetic], *transporters.EXTRA):
        if k not in p and k in PARAMS and PARAMS[k].default is not None:
            p[k] = PARAMS[k].default
    names = _names(p, kinetic)
    arrs = {k: jnp.asarray(p[k], jnp.float64) for k in names}
    shape = jnp.broadcast_shapes(*(jnp.shape(v) for v in arrs.values()))
    m = math.prod(shape)
    return {k: jnp.reshape(jnp.broadcast_to(v, shape), (m,)) for k, v in arrs.items()}, shape


def voltage_bounds(p: Params, kinetic: bool) -> tuple[np.ndarray, np.ndarray]:
    """Proven bounds (u_lo, u_hi), in u = FV/RT, on every steady state of the cell.

    Outside [u_lo, u_hi] the total membrane current cannot vanish at any state with
    intracellular concentrations in [0, Osm_o) (module docstring), so no steady state
    (osmotic balance with X_i > 0) lies there (u_lo <= u_hi, since C >= L). −inf/+inf
    where the bound was not found for |u| <= 4096.

    Args:
        p: parameters as for :func:`rpx.physics.pump_leak.steady_state` with ``P_Cl``,
            ``g_KCC2``, ``g_NKCC1`` (Ca2+ parameters optional), broadcasting to shape S.
        kinetic: Luo–Rudy pump (else the fixed ``I_pump_fixed``).

    Returns:
        Two float64 arrays of shape S. Runs in float64.
    """
    with jax.enable_x64(True):
        flat, shape = _flat(p, kinetic)
        lo, hi = _bounds_fn(kinetic)(flat)
        return np.reshape(np.asarray(lo), shape), np.reshape(np.asarray(hi), shape)


def _balances(x: Array, u: Array, p: Mapping[str, Array], kinetic: bool) -> tuple[Array, ...]:
    """Na, K, Cl balance rows at u and x = (ln Na_i, ln K_i, ln Cl_i), their scales
    (sums of the magnitudes of their terms), H (mM) and X_i·(1 − z_X) (mM)."""
    vt = phys.thermal_voltage(p["T"])
    V = u * vt
    c = {"Na_i": jnp.exp(x[0]), "K_i": jnp.exp(x[1]), "Cl_i": jnp.exp(x[2])}
    f = transporters.fluxes(V, c, p, kinetic)
    T = p["T"]
    one_way = {}
    for ion, z, c_in in (("Na", 1, c["Na_i"]), ("K", 1, c["K_i"]), ("Cl", -1, c["Cl_i"])):
        P, c_out = p[f"P_{ion}"], p[f"{ion}_o"]
        one_way[ion] = jnp.abs(phys.ghk_current(V, P, 0.0 * c_out, c_in, z, T)) + jnp.abs(
            phys.ghk_current(V, P, c_out, 0.0 * c_in, z, T)
        )
    # The cotransporter rates from the logarithms themselves (as in kcc2_flux and
    # nkcc1_flux), so that they stay finite where a concentration underflows (a fixed
    # pump can drive ln Na_i to ~ -1e5 against a weak NKCC1).
    ln_o = {k: jnp.log(jnp.where(p[k] > 0, p[k], 1.0)) for k in ("Na_o", "K_o", "Cl_o")}
    j_k = jnp.where(
        p["g_KCC2"] > 0, p["g_KCC2"] * vt * (x[1] + x[2] - ln_o["K_o"] - ln_o["Cl_o"]), 0.0
    )
    j_n = jnp.where(
        p["g_NKCC1"] > 0,
        p["g_NKCC1"] * vt
        * (x[0] + x[1] + 2.0 * x[2] - ln_o["Na_o"] - ln_o["K_o"] - 2.0 * ln_o["Cl_o"]),
        0.0,
    )  # fmt: skip
    logs = {k: jnp.abs(v) for k, v in ln_o.items()}
    jk = jnp.abs(j_k) + p["g_KCC2"] * vt * (
        jnp.abs(x[1]) + jnp.abs(x[2]) + logs["K_o"] + logs["Cl_o"]
    )
    jn = jnp.abs(j_n) + p["g_NKCC1"] * vt * (
        jnp.abs(x[0]) + jnp.abs(x[1]) + 2.0 * jnp.abs(x[2])
        + logs["Na_o"] + logs["K_o"] + 2.0 * logs["Cl_o"]
    )  # fmt: skip
    row_na = f["I_Na"] + 3.0 * f["I_pump"] + j_n
    row_k = f["I_K"] - 2.0 * f["I_pump"] + j_k + j_n
    row_cl = -f["I_Cl"] + j_k + 2.0 * j_n
    pump = jnp.abs(f["I_pump"])
    s_na = one_way["Na"] + 3.0 * pump + jn
    z_x = p["z_X"]
    osm = _osm(p)
    ca = jnp.zeros_like(u)
    if "Ca_i" in f:
        ca = f["Ca_i"]
        _, _, A, B = transporters._ca_terms(V, c["Na_i"], p)
        s_na = s_na + 3.0 * (jnp.abs(A) + jnp.abs(B * ca))
        row_na = row_na + 3.0 * f["I_NCX"]
    no_cl = (p["P_Cl"] == 0) & (p["g_KCC2"] == 0) & (p["g_NKCC1"] == 0)
    cl_row = jnp.where(no_cl, x[2] - jnp.log(p["Cl_o"]) - u, row_cl)
    s_cl = jnp.where(
        no_cl,
        jnp.abs(x[2]) + jnp.abs(jnp.log(p["Cl_o"])) + jnp.abs(u),
        one_way["Cl"] + jk + 2.0 * jn,
    )
    r = jnp.stack([row_na, row_k, cl_row])
    s = jnp.stack([s_na, one_way["K"] + 2.0 * pump + jk + jn, s_cl])
    H = (1.0 - z_x) * (c["Na_i"] + c["K_i"]) - (1.0 + z_x) * c["Cl_i"] + (2.0 - z_x) * ca
    H = H + z_x * osm
    return r, s, H, osm - 2.0 * c["Cl_i"] + ca


def _newton_point(
    u: Array, p: Mapping[str, Array], x0: Array, kinetic: bool, tol: Array, max_iter: Array
) -> tuple[Array, Array, Array, Array, Array]:
    """Balances at fixed u from x0, one set (scalars): (x, ok, sign_ok, H, X_i·(1 − z_X)).

    ``ok``: scaled residual <= ``tol``. ``sign_ok`` (whatever the residual): the sign of H
    at the true solution is that at x to first order: the Newton correction d = −J⁻¹r
    left at x is small
    (max |d| < 1e-2) and moves H by less than a quarter of |H| (Σ |∂H/∂x_i·d_i|); where
    the balances are too ill-conditioned to meet ``tol`` (strongly negative u, where the
    concentrations reach e^30), this still decides H's sign, which is all the count needs.
    """
    tiny = jnp.finfo(x0.dtype).tiny

    def scaled(x: Array) -> tuple[Array, Array, Array]:
        r, s, _, _ = _balances(x, u, p, kinetic)
        s = jnp.maximum(s, tiny)
        m = jnp.max(jnp.abs(r) / s)
        return jnp.where(jnp.isfinite(m), m, jnp.inf), r, s

    def direction(x: Array) -> tuple[Array, Array]:
        _, r, s = scaled(x)
        jac = jax.jacfwd(lambda y: _balances(y, u, p, kinetic)[0])(x)
        return -jnp.linalg.solve(jac / s[:, None], r / s), r

    def cond(c: tuple) -> Array:
        it, _, res, step = c
        return (it < max_iter) & (res > tol) & (step > 1e-15)

    def body(c: tuple) -> tuple:
        it, x, m0, _ = c
        d, _ = direction(x)
        big = jnp.max(jnp.abs(d))
        d = jnp.where(big > _MAX_STEP, d * (_MAX_STEP / big), d)
        d = jnp.where(jnp.all(jnp.isfinite(d)), d, 0.0)
        lams = 0.5 ** jnp.arange(12, dtype=x.dtype)
        trial = jax.vmap(lambda lam: scaled(x + lam * d)[0])(lams)
        accept = trial <= (1.0 - 1e-4 * lams) * m0
        k = jnp.where(jnp.any(accept), jnp.argmax(accept), 11)
        x_new = x + lams[k] * d
        m_new = trial[k]
        better = m_new < m0
        x_new = jnp.where(better, x_new, x)
        step = jnp.where(better, jnp.max(jnp.abs(lams[k] * d)), 0.0)
        return it + 1, x_new, jnp.minimum(m_new, m0), step

    m0, _, _ = scaled(x0)
    _, x, res, _ = jax.lax.while_loop(cond, body, (0, x0, m0, jnp.asarray(jnp.inf, x0.dtype)))
    _, _, H, xz = _balances(x, u, p, kinetic)
    finite = jnp.all(jnp.isfinite(x)) & jnp.isfinite(H)
    ok = (res <= tol) & finite
    d, _ = direction(x)
    grad_h = jax.grad(lambda y: _balances(y, u, p, kinetic)[2])(x)
    moved = jnp.sum(jnp.abs(grad_h * d))
    sign_ok = finite & jnp.all(jnp.isfinite(d)) & (jnp.max(jnp.abs(d)) < 1e-2)
    sign_ok = sign_ok & (moved < 0.25 * jnp.abs(H))
    return x, ok, sign_ok, H, xz


@functools.lru_cache(maxsize=16)
def _newton_fn(kinetic: bool):
    return jax.jit(
        jax.vmap(
            lambda u, p, x0, tol, it: _newton_point(u, p, x0, kinetic, tol, it),
            (0, 0, 0, None, None),
        )
    )


def _solve(
    kinetic: bool, tol: float, max_iter: int, u: np.ndarray, p: Mapping[str, np.ndarray],
    x0: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """Batched :func:`_newton_point` on the host's arrays, padded to a power of two (>= 64)
    so that few batch sizes, hence few programs, are compiled."""
    n = len(u)
    size = max(64, 1 << max(0, (n - 1).bit_length()))
    pad = lambda a: np.concatenate([a, np.repeat(a[:1], size - n, axis=0)])  # noqa: E731
    out = _newton_fn(kinetic)(
        jnp.asarray(pad(np.asarray(u, np.float64))),
        {k: jnp.asarray(pad(v)) for k, v in p.items()},
        jnp.asarray(pad(np.asarray(x0, np.float64))),
        jnp.asarray(tol, jnp.float64),
        jnp.asarray(max_iter, jnp.int32),
    )
    return tuple(np.array(a)[:n] for a in out)


def _cell_guess(p: Mapping[str, np.ndarray], u: np.ndarray) -> np.ndarray:
    """A starting guess for the balances: Na_i = Osm_o/30, K_i = Osm_o/3, Cl_i at
    equilibrium at u capped at Osm_o/4 (the solver's guess, :mod:`rpx.physics.pump_leak`;
    a start, not a physical value)."""
    osm = p["Na_o"] + p["K_o"] + p["Cl_o"] + np.abs(p["Na_o"] + p["K_o"] - p["Cl_o"]) + p["X_o"]
    cl = np.minimum(np.log(p["Cl_o"]) + u, np.log(osm / 4.0))
    return np.stack([np.log(osm / 30.0), np.log(osm / 3.0), cl], -1)


def count_steady_states(
    p: Params,
    kinetic: bool,
    start: Mapping[str, ArrayLike] | None = None,
    *,
    h_max: float = 0.02,
    h_min: float = 1e-6,
    tol: float = 1e-10,
    u_tol: float = 1e-9,
    u_refined: float = 1e-6,
    max_steps: int = 100_000,
) -> dict[str, np.ndarray]:
    """Steady states of the cell with transporters, counted along u with a verdict.

    The method, the proven bounds and what ``conclusive`` means are in the module
    docstring. Runs on the host (a loop of jitted, batched Newton solves; not jit-able)
    in float64.

    Args:
        p: parameters as for :func:`rpx.physics.pump_leak.steady_state` with ``P_Cl``,
            ``g_KCC2``, ``g_NKCC1`` (Ca2+ parameters optional), broadcasting to shape S.
        kinetic: Luo–Rudy pump (else the fixed ``I_pump_fixed``).
        start: optional steady state from the solver (``V`` in mV, ``Na_i``, ``K_i``,
            ``Cl_i`` in mM, ``status``; shape S): where its status is 0 the curve is
            followed from it, and its root must be among the zeros for ``conclusive``.
        h_max: largest continuation step in u (0.02 is ~0.5 mV at 37 C).
        h_min: smallest step before a lane gives up (the check is then not conclusive).
        tol: largest scaled residual of the balances at an accepted point.
        u_tol: width (in u) to which each sign change is refined by bisection.
        u_refined: width (in u) below which a sign change counts as refined where the
            bisection had to stop early (the sign of H undecided at a midpoint).
        max_steps: safety cap on continuation steps per direction.

    Returns:
        A dict of numpy arrays of shape S: ``roots`` (int, zeros of H with X_i > 0: the
        steady states), ``roots_unphysical`` (int, zeros with X_i <= 0: not steady
        states), ``u_lo``, ``u_hi`` (the proven bounds of :func:`voltage_bounds`),
        ``covered`` (bool, the curve followed over all of [u_lo, u_hi]), ``refined``
        (bool, every sign change bracketed to ``u_refined`` or better),
        ``near_misses`` (int, parabola-vertex checks made; each found pair of zeros is in
        ``roots``), ``solver_root`` (bool, the solver's root is one of the zeros; True
        where no solver root was given), ``conclusive`` (bool), ``u_first``,
        ``u_last`` (first and last steady state, in u; NaN if none), ``u_down``,
        ``u_up`` (how far down and up the curve was followed; NaN where no point on it
        was found), ``points`` (int, points on the curve) and ``h_smallest`` (smallest
        accepted step).

    Names missing from ``p`` that have a default in the parameter table (``z_X``,
    ``X_content``, ``X_o``, ``g_KCC2``...) take it, so a preset can be passed as it is.

    Raises:
        KeyError: if ``p`` lacks a parameter of the model without a table default.
    """
    with jax.enable_x64(True):
        return _count(p, kinetic, start, h_max, h_min, tol, u_tol, u_refined, max_steps)


def _count(
    p, kinetic, start, h_max, h_min, tol, u_tol, u_refined, max_steps
) -> dict[str, np.ndarray]:
    flat, shape = _flat(p, kinetic)
    m = flat["K_o"].shape[0]
    lo, hi = (np.asarray(a) for a in _bounds_fn(kinetic)(flat))
    finite = np.isfinite(lo) & np.isfinite(hi)
    empty = finite & (lo > hi)  # a guard: C >= L makes lo <= hi
    run = finite & ~empty
    host = {k: np.asarray(v) for k, v in flat.items()}
    vt = np.asarray(phys.thermal_voltage(flat["T"]))
    solve = functools.partial(_solve, kinetic, tol)
    # zeros are refined with the balances solved to ~1000 ulps (as the solver's root)
    fine = functools.partial(_solve, kinetic, 1000.0 * np.finfo(np.float64).eps)

    # ---- a starting point on the curve
    u0 = np.where(run, np.clip(0.0, lo, hi), 0.0)
    x_bath = np.stack([np.log(host["Na_o"]), np.log(host["K_o"]), np.log(host["Cl_o"])], -1)
    x0 = x_bath - np.array([1.0, 1.0, -1.0]) * u0[:, None]
    have = np.zeros(m, bool)
    u_sol = np.full(m, np.nan)
    if start is not None:
        st = np.reshape(np.broadcast_to(np.asarray(start["status"]), shape), (m,)) == 0
        V = np.reshape(np.broadcast_to(np.asarray(start["V"], np.float64), shape), (m,))
        xs = np.stack(
            [np.log(np.reshape(np.broadcast_to(np.asarray(start[k], np.float64), shape), (m,)))
             for k in ("Na_i", "K_i", "Cl_i")], -1,
        )  # fmt: skip
        u_sol = np.where(st, V / vt, np.nan)
        good = st & np.all(np.isfinite(xs), -1) & np.isfinite(u_sol)
        x_s, ok_s, _, _, _ = solve(
            100, np.where(good, u_sol, 0.0), host, np.where(good[:, None], xs, 0.0)
        )
        use = good & ok_s & run
        u0 = np.where(use, u_sol, u0)
        x0 = np.where(use[:, None], x_s, x0)
        have = use
    for u_try in (u0, np.where(run, lo, 0.0), np.where(run, hi, 0.0)):
        passive = np.clip(x_bath - np.array([1.0, 1.0, -1.0]) * u_try[:, None], -700, 700)
        for guess in (passive, _cell_guess(host, u_try)):
            need = run & ~have
            if not np.any(need):
                break
            x_t, ok_t, _, _, _ = solve(200, u_try, host, guess)
            new = need & ok_t
            u0 = np.where(new, u_try, u0)
            x0 = np.where(new[:, None], x_t, x0)
            have = have | new
    _, _, _, H0, xz0 = solve(0, u0, host, x0)

    # ---- continuation, both directions in one batch of 2m lanes
    lanes = {k: np.concatenate([v, v]) for k, v in host.items()}
    x_bath2 = np.concatenate([x_bath, x_bath])
    direction = np.concatenate([-np.ones(m), np.ones(m)])
    end = np.concatenate([lo, hi])
    u = np.concatenate([u0, u0])
    x = np.concatenate([x0, x0])
    slope = np.zeros((2 * m, 3))
    h = np.full(2 * m, h_max)
    active = np.concatenate([have, have]) & np.isfinite(end)
    active &= direction * (end - u) > 0
    reached = ~active & np.concatenate([have, have]) & np.isfinite(end)
    failed = np.zeros(2 * m, bool)
    h_small = np.full(2 * m, np.inf)
    rec_u, rec_x, rec_H, rec_xz, rec_lane = [], [], [], [], []
    for _ in range(max_steps):
        if not np.any(active):
            break
        du = direction * np.minimum(h, np.abs(end - u))
        ut = np.where(active, u + du, u)
        xp = np.where(active[:, None], x + slope * du[:, None], x)
        xn, ok, sure, Hn, xzn = solve(24, ut, lanes, xp)
        ok = ok | sure
        retry = np.flatnonzero(active & ~ok)
        if len(retry):
            # Failed from the prediction: from the last point's x, and from the passive
            # ions at the new u (both are starts, the solution at u is unique).
            sub = {k: v[retry] for k, v in lanes.items()}
            guess = x_bath2[retry] - np.array([1.0, 1.0, -1.0]) * ut[retry, None]
            for x_try in (x[retry], np.clip(guess, -700.0, 700.0), _cell_guess(sub, ut[retry])):
                xr, okr, surer, Hr, xzr = solve(60, ut[retry], sub, x_try)
                okr = okr | surer
                fix = okr & ~ok[retry]
                xn[retry[fix]], Hn[retry[fix]], xzn[retry[fix]] = xr[fix], Hr[fix], xzr[fix]
                ok[retry[fix]] = True
        acc = active & ok
        rej = active & ~ok
        if np.any(acc):
            idx = np.flatnonzero(acc)
            rec_u.append(ut[idx]); rec_x.append(xn[idx]); rec_H.append(Hn[idx])  # noqa: E702
            rec_xz.append(xzn[idx]); rec_lane.append(idx % m)  # noqa: E702
        slope = np.where(acc[:, None], (xn - x) / np.where(acc, du, 1.0)[:, None], slope)
        h_small = np.where(acc, np.minimum(h_small, np.abs(du)), h_small)
        x = np.where(acc[:, None], xn, x)
        u = np.where(acc, ut, u)
        h = np.where(acc, np.minimum(2.0 * h, h_max), np.where(rej, 0.5 * h, h))
        done = acc & (u == end)
        reached |= done
        gave_up = rej & (h < h_min)
        failed |= gave_up
        active &= ~done & ~gave_up
    failed |= active  # step cap hit
    covered_lane = reached & ~failed
    u_down = np.where(have, u[:m], np.nan)
    u_up = np.where(have, u[m:], np.nan)
    covered = (covered_lane[:m] & covered_lane[m:]) | empty

    # ---- points per set, sorted in u
    if rec_u:
        P_u = np.concatenate([*rec_u, u0[have]])
        P_x = np.concatenate([*rec_x, x0[have]])
        P_H = np.concatenate([*rec_H, H0[have]])
        P_xz = np.concatenate([*rec_xz, xz0[have]])
        P_set = np.concatenate([*rec_lane, np.flatnonzero(have)])
    else:
        P_u, P_x, P_H = u0[have], x0[have], H0[have]
        P_xz, P_set = xz0[have], np.flatnonzero(have)
    order = np.lexsort((P_u, P_set))
    P_u, P_x, P_H, P_xz, P_set = P_u[order], P_x[order], P_H[order], P_xz[order], P_set[order]
    sgn = np.sign(P_H)
    keep = sgn != 0
    P_u, P_x, P_H, P_xz, P_set, sgn = (a[keep] for a in (P_u, P_x, P_H, P_xz, P_set, sgn))
    same = P_set[1:] == P_set[:-1]
    change = same & (sgn[1:] != sgn[:-1])

    # ---- near misses: three points of one sign whose parabola crosses zero between them
    tri = same[:-1] & same[1:] & (sgn[:-2] == sgn[1:-1]) & (sgn[1:-1] == sgn[2:])
    u1, u2, u3 = P_u[:-2], P_u[1:-1], P_u[2:]
    H1, H2, H3 = P_H[:-2], P_H[1:-1], P_H[2:]
    with np.errstate(all="ignore"):
        d1 = (H2 - H1) / (u2 - u1)
        d2 = (H3 - H2) / (u3 - u2)
        a2 = (d2 - d1) / (u3 - u1)
        vertex = 0.5 * (u1 + u2) - d1 / (2.0 * a2)
        h_vertex = H2 + d1 * (vertex - u2) + a2 * (vertex - u1) * (vertex - u2)
    suspect = tri & (a2 != 0) & np.isfinite(vertex) & (vertex > u1) & (vertex < u3)
    suspect &= np.sign(h_vertex) == -sgn[1:-1]
    near = np.zeros(m, int)
    extra_pairs = np.zeros(m, int)
    if np.any(suspect):
        j = np.flatnonzero(suspect)
        sets = P_set[j + 1]
        sub_v = {k: v[sets] for k, v in host.items()}
        xv, okv, surev, Hv, _ = solve(24, vertex[j], sub_v, P_x[j + 1])
        np.add.at(near, sets, 1)
        flipped = (okv | surev) & (np.sign(Hv) == -sgn[j + 1])
        np.add.at(extra_pairs, sets[flipped], 1)

    # ---- refine every sign change by bisection
    roots = np.zeros(m, int)
    roots_bad = np.zeros(m, int)
    refined = np.ones(m, bool)
    solver_root = np.where(np.isfinite(u_sol), False, True)
    first = np.full(m, np.nan)
    last = np.full(m, np.nan)
    if np.any(change):
        j = np.flatnonzero(change)
        sets = P_set[j]
        sub = {k: v[sets] for k, v in host.items()}
        a, b = P_u[j].copy(), P_u[j + 1].copy()
        xa, xb = P_x[j].copy(), P_x[j + 1].copy()
        sa = sgn[j].copy()
        going = np.ones(len(j), bool)  # False once a midpoint's sign cannot be decided
        xz_mid = np.where(np.abs(P_H[j]) < np.abs(P_H[j + 1]), P_xz[j], P_xz[j + 1])
        while np.any((b - a > u_tol) & going):
            mid = 0.5 * (a + b)
            xm, okm, _, Hm, xzm = fine(24, mid, sub, 0.5 * (xa + xb))
            # Where the balances are ill-conditioned (a dominant transporter's one-way
            # terms in a row's scale) a start between the ends may stall: from either end,
            # then, as a last resort, the sign of H to first order at a looser solve.
            for start_x, sure_only in ((xa, False), (xb, False), (None, True)):
                if np.all(okm):
                    break
                bad = np.flatnonzero(~okm)
                sub_b = {k: v[bad] for k, v in sub.items()}
                if sure_only:
                    xl, _, okl, Hl, xzl = solve(24, mid[bad], sub_b, xm[bad])
                else:
                    xl, okl, _, Hl, xzl = fine(24, mid[bad], sub_b, start_x[bad])
                fix = bad[okl]
                xm[fix], Hm[fix], xzm[fix], okm[fix] = xl[okl], Hl[okl], xzl[okl], True
            go = (b - a > u_tol) & going
            going &= okm | ~go
            left = go & okm & (np.sign(Hm) == sa)  # the zero is right of mid
            right = go & okm & ~left
            a = np.where(left, mid, a)
            xa = np.where(left[:, None], xm, xa)
            b = np.where(right, mid, b)
            xb = np.where(right[:, None], xm, xb)
            xz_mid = np.where(go & okm, xzm, xz_mid)
        phys_root = xz_mid > 0
        np.add.at(roots, sets[phys_root], 1)
        np.add.at(roots_bad, sets[~phys_root], 1)
        # A bracket whose bisection stopped early (the sign of H undecided at a midpoint,
        # within ~1e-13 of the zero where H is tiny) still places the zero to its width.
        np.logical_and.at(refined, sets, b - a <= max(u_tol, u_refined))
        at = 0.5 * (a + b)
        hit = np.abs(at - u_sol[sets]) <= (b - a) + 1e-6 * (1.0 + np.abs(at))
        np.logical_or.at(solver_root, sets, hit & phys_root)
        for s_, u_ in zip(sets[phys_root], at[phys_root], strict=True):
            first[s_] = u_ if np.isnan(first[s_]) else min(first[s_], u_)
            last[s_] = u_ if np.isnan(last[s_]) else max(last[s_], u_)
    roots = roots + 2 * extra_pairs
    # the solver's root, where given, must lie within the proven bounds (a consistency
    # check of the bounds themselves)
    inside = ~np.isfinite(u_sol) | ((u_sol >= lo) & (u_sol <= hi))
    conclusive = finite & covered & refined & solver_root & inside & (extra_pairs == 0)
    conclusive |= empty & ~np.isfinite(u_sol)
    points = np.bincount(P_set, minlength=m)
    h_small = np.minimum(h_small[:m], h_small[m:])
    out = {
        "roots": roots, "roots_unphysical": roots_bad, "u_lo": lo, "u_hi": hi,
        "covered": covered, "refined": refined, "near_misses": near,
        "solver_root": solver_root, "conclusive": conclusive, "u_first": first,
        "u_last": last, "u_down": u_down, "u_up": u_up, "points": points,
        "h_smallest": h_small,
    }  # fmt: skip
    return {k: np.reshape(v, shape) for k, v in out.items()}
