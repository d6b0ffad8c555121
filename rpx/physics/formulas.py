"""Pure physics: Nernst, GHK current and voltage equations, the Na/K pump, Mullins–Noda.

All functions are pure functions of JAX arrays that broadcast together; none jits,
none switches precision; the result dtype follows the inputs. Units: voltage mV,
concentration mM, permeability cm/s, current density uA/cm^2, temperature K.

Sign conventions: V = V_in - V_out; outward membrane current is positive.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
from collections.abc import Callable, Iterator

import jax
import jax.numpy as jnp
from jax import Array, lax
from jax.custom_derivatives import SymbolicZero
from jax.typing import ArrayLike

from rpx.physics.constants import MV_PER_V, F, R

# Below this |u| the GHK kernel uses its Taylor series (error < |u|^4/720 ≈ 1.4e-15).
_U_SMALL = 1e-3


def thermal_voltage(T: ArrayLike) -> Array:
    """RT/F in mV at temperature ``T`` (K)."""
    return (R * MV_PER_V / F) * jnp.asarray(T)


def nernst(c_out: ArrayLike, c_in: ArrayLike, z: ArrayLike, T: ArrayLike) -> Array:
    """Nernst equilibrium potential E = (RT/zF)·ln(c_out/c_in), in mV.

    Args:
        c_out: extracellular concentration (mM), >= 0.
        c_in: intracellular concentration (mM), >= 0.
        z: valence of the ion (e.g. +1 for K+, -1 for Cl-, +2 for Ca2+), non-zero.
        T: temperature (K), in [200, 400] (the public ``rpx.nernst`` refuses other
            values: T is in kelvin).

    Returns:
        The potential V_in - V_out (mV) at which the ion is in equilibrium. An ion with
        one zero side has no equilibrium at any finite voltage: the result is then
        -inf or +inf (sign of z·ln(c_out/c_in)), by design, and stored and printed so
        (``rpx calc`` adds a note); both sides zero give NaN.

    Example:
        >>> round(float(nernst(10.0, 100.0, 1, 310.15)), 2)
        -61.54
    """
    c_out, c_in = jnp.asarray(c_out), jnp.asarray(c_in)
    return thermal_voltage(T) / z * (jnp.log(c_out) - jnp.log(c_in))


def _ghk_kernels(u: Array) -> tuple[Array, Array]:
    """Return g(u) and g(-u) with g(u) = u / (1 - e^(-u)), finite for all u.

    g is smooth (g(0) = 1, g'(0) = 1/2). One exp and one expm1 of -|u| serve both
    values, so nothing overflows for any |u|; near u = 0 a Taylor series replaces the
    0/0 form, with the double-``where`` pattern so that gradients stay finite there.
    """
    small = jnp.abs(u) < _U_SMALL
    a = jnp.where(small, 1.0, jnp.abs(u))  # |u|, made safe for the 0/0 branch
    g_pos = a / -jnp.expm1(-a)  # g(|u|)
    g_neg = g_pos * jnp.exp(-a)  # g(-|u|) = |u| e^(-|u|) / (1 - e^(-|u|))
    taylor_common = 1.0 + u * u / 12.0
    g_u = jnp.where(small, taylor_common + u / 2.0, jnp.where(u >= 0, g_pos, g_neg))
    g_mu = jnp.where(small, taylor_common - u / 2.0, jnp.where(u >= 0, g_neg, g_pos))
    return g_u, g_mu


def ghk_current(
    V: ArrayLike, P: ArrayLike, c_out: ArrayLike, c_in: ArrayLike, z: ArrayLike, T: ArrayLike
) -> Array:
    """Goldman–Hodgkin–Katz current density of one ion, in uA/cm^2 (outward positive).

    I = P·z·F·u·(c_in - c_out·e^(-u)) / (1 - e^(-u)),   u = zFV/(RT)

    (Goldman 1943, J. Gen. Physiol. 27:37; Hodgkin & Katz 1949, J. Physiol. 108:37).
    With P in cm/s and c in mM (= 1e-6 mol/cm^3) the product P·F·c is in uA/cm^2.
    At V = 0 the 0/0 form has the limit P·z·F·(c_in - c_out), and the value and its
    gradient are finite and smooth there; nothing overflows for |V| up to 1000 mV in
    float32 (in fact for any finite V).

    Args:
        V: membrane potential V_in - V_out (mV).
        P: permeability (cm/s), >= 0.
        c_out, c_in: extracellular and intracellular concentrations (mM).
        z: valence (non-zero).
        T: temperature (K).
    """
    u = z * jnp.asarray(V) / thermal_voltage(T)
    g_u, g_mu = _ghk_kernels(u)
    return P * z * F * (c_in * g_u - c_out * g_mu)


def ghk_voltage(
    K_o: ArrayLike,
    K_i: ArrayLike,
    Na_o: ArrayLike,
    Na_i: ArrayLike,
    Cl_o: ArrayLike,
    Cl_i: ArrayLike,
    Ca_o: ArrayLike,
    Ca_i: ArrayLike,
    P_K: ArrayLike,
    P_Na: ArrayLike,
    P_Cl: ArrayLike,
    P_Ca: ArrayLike,
    T: ArrayLike,
) -> Array:
    """Zero-current (reversal) potential of passive K+, Na+, Cl- and Ca2+ GHK currents, mV.

    With P_Ca = 0 this is the GHK voltage equation
    V = (RT/F)·ln((P_K K_o + P_Na Na_o + P_Cl Cl_i) / (P_K K_i + P_Na Na_i + P_Cl Cl_o)).
    With Ca2+ the zero of the summed GHK currents is, in x = e^(-FV/RT), the positive
    root of  a·x² + b·x - c = 0  with
    a = A_out + 4·P_Ca·Ca_o,  b = A_out - A_in,  c = A_in + 4·P_Ca·Ca_i,
    A_out = P_K K_o + P_Na Na_o + P_Cl Cl_i,  A_in = P_K K_i + P_Na Na_i + P_Cl Cl_o
    (obtained by multiplying the current balance by (1 - x)(1 + x)/(F·FV/RT)).
    The root is taken in the form that avoids cancellation for either sign of b, and
    everything is evaluated in logarithms (:func:`log_sum_of_products`), so that V is
    finite with finite gradients wherever the numerator a and the denominator c are
    positive, even when every product P·c underflows the dtype.
    """
    args = (K_o, K_i, Na_o, Na_i, Cl_o, Cl_i, Ca_o, Ca_i, P_K, P_Na, P_Cl, P_Ca, T)
    return _plain_or_logs(_ghk_voltage_plain, _ghk_voltage_logs, args, _ghk_sums)


def _ghk_sums(K_o, K_i, Na_o, Na_i, Cl_o, Cl_i, Ca_o, Ca_i, P_K, P_Na, P_Cl, P_Ca, T):  # noqa: ANN001, ANN202
    """(A_out, A_in, a, c) of :func:`ghk_voltage` in plain arithmetic."""
    A_out = P_K * K_o + P_Na * Na_o + P_Cl * Cl_i
    A_in = P_K * K_i + P_Na * Na_i + P_Cl * Cl_o
    return A_out, A_in, A_out + 4.0 * P_Ca * Ca_o, A_in + 4.0 * P_Ca * Ca_i


@jax.custom_jvp
def _ghk_voltage_plain(*args: Array) -> Array:
    """:func:`ghk_voltage` in plain arithmetic, for sums well inside the dtype's range.

    x = 2c/(b + s) for b >= 0 and (s - b)/(2a) for b < 0, s = sqrt(b² + 4ac): both
    forms are free of cancellation on their side. Its derivative is the closed form of
    :func:`_ghk_voltage_plain_jvp` (a few products per direction, which keeps the
    13 derivatives of ``rpx.gradients`` about as cheap as the value).
    """
    return _ghk_plain_parts(*args)[0]


def _ghk_plain_parts(*args: Array) -> tuple[Array, Array, Array]:
    """(V, x, s) of the plain form."""
    A_out, A_in, a, c = _ghk_sums(*args)
    b = A_out - A_in
    s = jnp.sqrt(b * b + 4.0 * a * c)
    pos = b >= 0
    x = jnp.where(pos, 2.0 * c, s - b) / jnp.where(pos, b + s, 2.0 * a)
    return -thermal_voltage(args[-1]) * jnp.log(x), x, s


@functools.partial(_ghk_voltage_plain.defjvp, symbolic_zeros=True)
def _ghk_voltage_plain_jvp(primals: tuple, tangents: tuple) -> tuple[Array, Array]:
    """dV by implicit differentiation of G(x) = a x² + b x − c = 0, V = −(RT/F) ln x:

    dV = k·[(x² + x)·dA_out − (x + 1)·dA_in + x²·dC_out − dC_in] + (V/T)·dT,
    k = (RT/F)/(x·G'(x)), G'(x) = 2ax + b = s, C_out = 4 P_Ca Ca_o, C_in = 4 P_Ca Ca_i
    (exact everywhere, b = 0 included). Arguments without a tangent (symbolic zeros)
    contribute no term, so that a derivative w.r.t. one parameter reads only the
    arrays it needs.
    """
    K_o, K_i, Na_o, Na_i, Cl_o, Cl_i, Ca_o, Ca_i, P_K, P_Na, P_Cl, P_Ca, T = primals
    (dK_o, dK_i, dNa_o, dNa_i, dCl_o, dCl_i, dCa_o, dCa_i,
     dP_K, dP_Na, dP_Cl, dP_Ca, dT) = tangents  # fmt: skip
    V, x, s = _ghk_plain_parts(*primals)
    k = thermal_voltage(T) / (x * s)
    dA_out = _dot([(dP_K, K_o), (dK_o, P_K), (dP_Na, Na_o), (dNa_o, P_Na), (dP_Cl, Cl_i),
                   (dCl_i, P_Cl)])
    dA_in = _dot([(dP_K, K_i), (dK_i, P_K), (dP_Na, Na_i), (dNa_i, P_Na), (dP_Cl, Cl_o),
                  (dCl_o, P_Cl)])
    dC_out = _dot([(dP_Ca, 4.0 * Ca_o), (dCa_o, 4.0 * P_Ca)])
    dC_in = _dot([(dP_Ca, 4.0 * Ca_i), (dCa_i, 4.0 * P_Ca)])
    inner = _dot([(dA_out, x * x + x), (dA_in, -(x + 1.0)), (dC_out, x * x), (dC_in, -1.0)])
    dV = _dot([(inner, k), (dT, V / T)])
    return V, jnp.zeros_like(V) if dV is None else jnp.broadcast_to(dV, jnp.shape(V))


def _dot(terms: list[tuple[object, object]]) -> Array | None:
    """Σ tangent·factor over the terms whose tangent is not a symbolic zero (None: none)."""
    total = None
    for t, factor in terms:
        if t is None or isinstance(t, SymbolicZero):
            continue
        total = t * factor if total is None else total + t * factor
    return total


def _ghk_voltage_logs(K_o, K_i, Na_o, Na_i, Cl_o, Cl_i, Ca_o, Ca_i, P_K, P_Na, P_Cl, P_Ca, T):  # noqa: ANN001, ANN202
    """:func:`ghk_voltage` in logarithms: finite wherever a, c > 0, at any magnitude."""
    l_out = log_sum_of_products([(P_K, K_o), (P_Na, Na_o), (P_Cl, Cl_i)])
    l_in = log_sum_of_products([(P_K, K_i), (P_Na, Na_i), (P_Cl, Cl_o)])
    l_a = log_sum_of_products([(P_K, K_o), (P_Na, Na_o), (P_Cl, Cl_i), (4.0 * P_Ca, Ca_o)])
    l_c = log_sum_of_products([(P_K, K_i), (P_Na, Na_i), (P_Cl, Cl_o), (4.0 * P_Ca, Ca_i)])
    return -thermal_voltage(T) * _log_positive_root(l_out, l_in, l_a, l_c)


# Sums of products in [2^-50, 2^50] keep every square and product of two sums of the
# plain formulas far inside float32's normal range (2^-126 .. 2^128).
_PLAIN_LO = 2.0**-50
_PLAIN_HI = 2.0**50


def _plain_or_logs(
    plain: Callable[..., Array],
    logs: Callable[..., Array],
    args: tuple[ArrayLike, ...],
    sums: Callable[..., tuple[Array, ...]],
) -> Array:
    """``plain(*args)`` where plain arithmetic is exact to rounding everywhere, else ``logs``.

    The plain form is taken when every argument is >= 0 and every sum of products
    that ``sums`` returns lies in [2^-50, 2^50] at every point (NaN and inf fail
    both): there nothing under- or overflows and the two forms agree to a few units of
    rounding. Otherwise (permeabilities or concentrations at extreme magnitudes, a zero
    sum, a negative or non-finite input) the whole array takes the logarithmic form,
    whose edge behaviour is documented with the function. One fused reduction decides;
    under ``vmap`` with a batched decision both forms are evaluated and selected per
    point. Derivatives are those of the form taken.
    """
    arrays = _same_dtype(args)
    if _PLAIN_ONLY.get():
        return plain(*arrays)
    return _choose(plain, logs, sums, *arrays)


def _same_dtype(args: tuple[ArrayLike, ...]) -> list[Array]:
    arrays = [jnp.asarray(x) for x in args]
    dtype = jnp.result_type(*arrays)
    return [x.astype(dtype) for x in arrays]


# Set (at trace time) by the compiled entry points for concrete inputs of a model that
# declares where its closed forms are exact (``Model.plain_ok``): the program then holds
# the plain forms only, and the entry point runs the two-form program instead wherever
# that declaration is False somewhere (rpx.physics.api.run_checked).
_PLAIN_ONLY: contextvars.ContextVar[bool] = contextvars.ContextVar("rpx_plain_only", default=False)


@contextlib.contextmanager
def plain_closed_forms() -> Iterator[None]:
    """Trace :func:`ghk_voltage` and :func:`mullins_noda_voltage` in plain arithmetic
    only (no choice of form, no logarithmic form in the program).

    Only for callers that establish beforehand, with :func:`ghk_voltage_plain_points` or
    :func:`mullins_noda_plain_points` of the very arrays the formulas receive, that the
    plain form is exact at every point, and that use another program otherwise.
    """
    token = _PLAIN_ONLY.set(True)
    try:
        yield
    finally:
        _PLAIN_ONLY.reset(token)


def _plain_points(sums: Callable[..., tuple[Array, ...]], arrays: list[Array]) -> Array:
    """Elementwise: True where every argument is >= 0 and every sum lies in [2^-50, 2^50]."""
    ok = jnp.ones((), bool)
    for x in arrays:
        ok = ok & (x >= 0)
    for total in sums(*arrays):
        ok = ok & (total >= _PLAIN_LO) & (total <= _PLAIN_HI)
    return ok


def _plain_form_ok(sums: Callable[..., tuple[Array, ...]], arrays: tuple[Array, ...]) -> Array:
    """The one reduction of :func:`_plain_or_logs`: True where the plain form is exact."""
    return jnp.all(_plain_points(sums, list(arrays)))


def ghk_voltage_plain_points(*args: ArrayLike) -> Array:
    """Boolean array (broadcast shape of the 13 arguments of :func:`ghk_voltage`, same
    order): True where its plain-arithmetic form is exact to rounding."""
    return _plain_points(_ghk_sums, _same_dtype(args))


def mullins_noda_plain_points(*args: ArrayLike) -> Array:
    """Boolean array (broadcast shape of the 8 arguments of :func:`mullins_noda_voltage`,
    same order): True where its plain-arithmetic form is exact to rounding."""
    return _plain_points(_mullins_noda_sums, _same_dtype(args))


def _select_form(
    plain: Callable[..., object],
    logs: Callable[..., object],
    sums: Callable[..., tuple[Array, ...]],
    arrays: tuple[Array, ...],
) -> object:
    shape = jnp.broadcast_shapes(*(jnp.shape(x) for x in arrays))

    def branch(f: Callable[..., object]) -> Callable[..., object]:
        return lambda *xs: jax.tree.map(lambda y: jnp.broadcast_to(y, shape), f(*xs))

    return lax.cond(_plain_form_ok(sums, arrays), branch(plain), branch(logs), *arrays)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0, 1, 2))
def _choose(
    plain: Callable[..., Array],
    logs: Callable[..., Array],
    sums: Callable[..., tuple[Array, ...]],
    *arrays: Array,
) -> Array:
    return _select_form(plain, logs, sums, arrays)


@functools.partial(_choose.defjvp, symbolic_zeros=True)
def _choose_jvp(
    plain: Callable[..., Array],
    logs: Callable[..., Array],
    sums: Callable[..., tuple[Array, ...]],
    primals: tuple,
    tangents: tuple,
) -> tuple[Array, Array]:
    """The value and the pointwise partial derivatives w.r.t. the arguments that carry a
    tangent, computed inside the chosen form; the tangent itself is their sum with the
    tangents outside it. So the (often many, ``vmap``-ed) tangents never enter the
    branch, and one evaluation of the partial derivatives serves them all.
    """
    live = [i for i, t in enumerate(tangents) if not isinstance(t, SymbolicZero)]

    def with_partials(form: Callable[..., Array]) -> Callable[..., tuple]:
        def f(*xs: Array) -> tuple:
            partials = []
            for i in live:
                one_hot = tuple(
                    jnp.ones_like(x) if j == i else jnp.zeros_like(x) for j, x in enumerate(xs)
                )
                value, d = jax.jvp(form, xs, one_hot)
                partials.append(d)
            return (form(*xs) if not live else value), tuple(partials)

        return f

    value, partials = _select_form(with_partials(plain), with_partials(logs), sums, primals)
    tangent = jnp.zeros_like(value)
    for i, d in zip(live, partials, strict=True):
        tangent = tangent + d * tangents[i]
    return value, tangent


def _log_positive_root(l_out: Array, l_in: Array, l_a: Array, l_c: Array) -> Array:
    """ln x of the positive root of a·x² + b·x − c = 0, b = A_out − A_in, from the logs.

    x = 2c/(|b| + s) for b >= 0 and (|b| + s)/(2a) for b < 0, s = sqrt(b² + 4ac): the
    cancellation-free forms, evaluated in logarithms (ln|b| from ln A_out − ln A_in with
    expm1) so that nothing under- or overflows wherever a, c > 0.
    """
    both_empty = jnp.isneginf(l_out) & jnp.isneginf(l_in)  # only Ca2+ permeant: b = 0
    d = jnp.where(both_empty, 0.0, l_out - l_in)
    zero = d == 0
    d_safe = jnp.where(zero, 1.0, jnp.abs(d))
    l_b = jnp.where(zero, -jnp.inf, jnp.maximum(l_out, l_in) + jnp.log(-jnp.expm1(-d_safe)))
    l_s = 0.5 * jnp.logaddexp(2.0 * l_b, _LOG4 + l_a + l_c)
    # At b = 0 exactly, ln|b| = -inf carries no derivative, but t = b + s does:
    # d(ln t) = (db + ds)/s with db = A_out·(d ln A_out - d ln A_in). d0 is 0 there (its
    # tangent that of ln A_out - ln A_in) and 0 with no tangent elsewhere.
    d0 = jnp.where(zero, d, 0.0)
    l_t = jnp.where(zero, l_s + jnp.exp(l_out - l_s) * d0, jnp.logaddexp(l_b, l_s))
    return jnp.where(d >= 0, _LOG2 + l_c - l_t, l_t - _LOG2 - l_a)


_LOG2 = math.log(2.0)
_LOG4 = math.log(4.0)


def log_sum_of_products(terms: list[tuple[ArrayLike, ...]]) -> Array:
    """ln(Σ_j Π_k f_jk) for factors f_jk >= 0, without under- or overflow.

    Each positive factor is split into its binary exponent (``frexp``, a constant for
    differentiation) and a mantissa; the sum is taken relative to its largest term, so
    products far below the smallest float (P·c ~ 1e-60) neither vanish nor lose the
    result, and the value and its gradient are finite wherever one product is >= the
    smallest normal number. Factors below that count as 0 (XLA flushes subnormal numbers
    to zero on CPU); a product with a zero factor contributes 0 to the sum but keeps
    its derivative (e.g. dV/dP_Cl at P_Cl = 0). All products zero: -inf.
    """
    arrays = [[jnp.asarray(f) for f in t] for t in terms]
    dtype = jnp.result_type(*(f for t in arrays for f in t))
    tiny = jnp.finfo(dtype).tiny
    mantissas, exps, live = [], [], []
    for t in arrays:
        m = jnp.ones((), dtype)
        e = jnp.zeros((), dtype)
        alive = jnp.ones((), bool)
        for f in t:
            f = f.astype(dtype)
            pos = f >= tiny
            _, k = jnp.frexp(lax.stop_gradient(jnp.where(pos, f, 1.0)))
            k = k.astype(dtype)
            m = m * (f * jnp.exp2(-k))  # in [0.5, 1) where positive; exact scaling
            e = e + k
            alive = alive & pos
        mantissas.append(m)
        exps.append(e)
        live.append(alive)
    e_max = jnp.full(jnp.broadcast_shapes(*(jnp.shape(e) for e in exps)), -jnp.inf, dtype)
    for e, alive in zip(exps, live, strict=True):
        e_max = jnp.maximum(e_max, jnp.where(alive, e, -jnp.inf))
    any_alive = jnp.isfinite(e_max)
    e_ref = jnp.where(any_alive, e_max, 0.0)
    cap = float(jnp.finfo(dtype).maxexp - 8)
    total = jnp.zeros((), dtype)
    for m, e in zip(mantissas, exps, strict=True):
        # Dead terms (a zero factor) are 0 but keep their tangent; their exponent gap is
        # capped so that the (unused) scale factor cannot overflow.
        total = total + m * jnp.exp2(jnp.minimum(e - e_ref, cap))
    log_total = jnp.log(jnp.where(any_alive, total, 1.0))
    return jnp.where(any_alive, log_total + e_ref * _LOG2, -jnp.inf)


def mullins_noda_voltage(
    K_o: ArrayLike,
    K_i: ArrayLike,
    Na_o: ArrayLike,
    Na_i: ArrayLike,
    P_K: ArrayLike,
    P_Na: ArrayLike,
    r_pump: ArrayLike,
    T: ArrayLike,
) -> Array:
    """Mullins–Noda pump-balance steady state, mV.

    V = (RT/F)·ln((r·P_K·K_o + P_Na·Na_o) / (r·P_K·K_i + P_Na·Na_i))

    where r is the pump's Na:K coupling ratio (3:2 gives r = 1.5): at steady state the
    passive Na influx equals r times the passive K efflux (Mullins & Noda 1963,
    J. Gen. Physiol. 47:117).
    """
    args = (K_o, K_i, Na_o, Na_i, P_K, P_Na, r_pump, T)
    return _plain_or_logs(_mullins_noda_plain, _mullins_noda_logs, args, _mullins_noda_sums)


def _mullins_noda_sums(K_o, K_i, Na_o, Na_i, P_K, P_Na, r_pump, T):  # noqa: ANN001, ANN202
    return r_pump * P_K * K_o + P_Na * Na_o, r_pump * P_K * K_i + P_Na * Na_i


def _mullins_noda_plain(*args: Array) -> Array:
    num, den = _mullins_noda_sums(*args)
    return thermal_voltage(args[-1]) * jnp.log(num / den)


def _mullins_noda_logs(K_o, K_i, Na_o, Na_i, P_K, P_Na, r_pump, T):  # noqa: ANN001, ANN202
    l_num = log_sum_of_products([(r_pump, P_K, K_o), (P_Na, Na_o)])
    l_den = log_sum_of_products([(r_pump, P_K, K_i), (P_Na, Na_i)])
    return thermal_voltage(T) * (l_num - l_den)


def nak_pump_current(
    V: ArrayLike,
    Na_i: ArrayLike,
    Na_o: ArrayLike,
    K_o: ArrayLike,
    I_pump_max: ArrayLike,
    Km_Na_i: ArrayLike,
    Km_K_o: ArrayLike,
    T: ArrayLike,
) -> Array:
    """Na/K-ATPase current density (Luo & Rudy 1994, Circ. Res. 74:1071), uA/cm^2, outward.

    I_NaK = I_pump_max · f_NaK(V) · 1/(1 + (Km_Na_i/Na_i)^1.5) · K_o/(K_o + Km_K_o),
    f_NaK = 1 / (1 + 0.1245·e^(-0.1·FV/RT) + 0.0365·σ·e^(-FV/RT)),
    σ = (e^(Na_o/67.3) - 1)/7.

    One pump cycle (3 Na+ out, 2 K+ in) moves one net charge outward, so the current is
    positive. f_NaK is evaluated in logarithms (ln(1 + 0.1245·e^(−0.1·FV/RT)) by
    logaddexp, the σ term relative to it) so that it neither overflows nor loses its
    gradient at strongly negative V or large Na_o; the saturation terms are written as
    ratios <= 1. Zero concentrations are allowed: Na_i = 0 or K_o = 0 stop the pump
    (I = 0) and Na_o = 0 removes the σ term, with finite gradients.
    """
    w = jnp.asarray(V) / thermal_voltage(T)  # FV/RT
    x = jnp.asarray(Na_o) / 67.3
    l_a = jnp.logaddexp(0.0, math.log(0.1245) - 0.1 * w)  # ln(1 + 0.1245 e^(-0.1 w))
    # ln(1 + 0.0365 σ e^(-w) / A): for x > 1 from ln σ; for x <= 1 σ = expm1(x)/7 stays
    # linear (its derivative is finite at Na_o = 0), with the exponent capped where the
    # term is so large that f_NaK is 0 to the dtype's precision anyway.
    big = x > 1.0
    x_big = jnp.where(big, x, 2.0)
    x_small = jnp.where(big, 0.0, x)
    l_sigma_big = x_big + jnp.log(-jnp.expm1(-x_big)) - math.log(7.0)
    l_term_big = math.log(0.0365) + l_sigma_big - w - l_a
    cap = 0.5 * math.log(float(jnp.finfo(jnp.result_type(w)).max))
    term_small = (0.0365 / 7.0) * jnp.expm1(x_small) * jnp.exp(jnp.minimum(-w - l_a, cap))
    log1p_term = jnp.where(big, jnp.logaddexp(0.0, l_term_big), jnp.log1p(term_small))
    f_nak = jnp.exp(-(l_a + log1p_term))
    Na_i, Km_Na_i = jnp.asarray(Na_i), jnp.asarray(Km_Na_i)
    na_term = _saturation_15(Na_i, Km_Na_i)
    k_term = K_o / (K_o + Km_K_o)
    return I_pump_max * f_nak * na_term * k_term


def _saturation_15(c: Array, km: Array) -> Array:
    """1 / (1 + (km/c)^1.5) for c >= 0, km > 0, as a ratio <= 1 either way (no overflow;
    0 with a finite derivative at c = 0)."""
    big = c >= km
    q = jnp.where(big, km / jnp.where(big, c, 1.0), c / jnp.where(big, 1.0, km))
    q15 = q**1.5  # the power rule gives a derivative of 0 at q = 0
    return jnp.where(big, 1.0 / (1.0 + q15), q15 / (1.0 + q15))
