"""Pure physics: Nernst, GHK current and voltage equations, the Na/K pump, Mullins–Noda.

All functions are pure functions of JAX arrays that broadcast together; none jits,
none switches precision; the result dtype follows the inputs. Units: voltage mV,
concentration mM, permeability cm/s, current density uA/cm^2, temperature K.

Sign conventions: V = V_in - V_out; outward membrane current is positive.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from jax import Array
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
        c_out: extracellular concentration (mM), > 0.
        c_in: intracellular concentration (mM), > 0.
        z: valence of the ion (e.g. +1 for K+, -1 for Cl-, +2 for Ca2+), non-zero.
        T: temperature (K), > 0.

    Returns:
        The potential V_in - V_out (mV) at which the ion is in equilibrium.

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
    The root is taken in the form that avoids cancellation for either sign of b, and the
    coefficients are normalised (a + c = 1) so that nothing under- or overflows in float32
    before x itself would.
    """
    A_out = P_K * K_o + P_Na * Na_o + P_Cl * Cl_i
    A_in = P_K * K_i + P_Na * Na_i + P_Cl * Cl_o
    a = A_out + 4.0 * P_Ca * Ca_o
    c = A_in + 4.0 * P_Ca * Ca_i
    inv_scale = 1.0 / (a + c)
    a, c, b = a * inv_scale, c * inv_scale, (A_out - A_in) * inv_scale
    s = jnp.sqrt(b * b + 4.0 * a * c)
    t = jnp.abs(b) + s
    # b >= 0: x = 2c / (b + s);  b < 0: x = (s - b) / (2a). Both denominators are >= s > 0
    # and no intermediate exceeds x itself or a + c = 1 in magnitude, so one log of the
    # ratio is exact wherever x = e^(-FV/RT) is representable (|V| < ~2000 mV in float32).
    positive = b >= 0
    x = jnp.where(positive, 2.0 * c, t) / jnp.where(positive, t, 2.0 * a)
    return -thermal_voltage(T) * jnp.log(x)


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
    num = r_pump * P_K * K_o + P_Na * Na_o
    den = r_pump * P_K * K_i + P_Na * Na_i
    return thermal_voltage(T) * (jnp.log(num) - jnp.log(den))


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
    positive. f_NaK is evaluated as exp(-logsumexp(...)) so that it neither overflows
    nor loses its gradient at strongly negative V or large Na_o.
    """
    w = jnp.asarray(V) / thermal_voltage(T)  # FV/RT
    x = Na_o / 67.3
    log_sigma = x + jnp.log(-jnp.expm1(-x)) - math.log(7.0)
    log_denominator = jnp.logaddexp(
        jnp.logaddexp(0.0, math.log(0.1245) - 0.1 * w), math.log(0.0365) + log_sigma - w
    )
    f_nak = jnp.exp(-log_denominator)
    na_term = 1.0 / (1.0 + (Km_Na_i / Na_i) ** 1.5)
    k_term = K_o / (K_o + Km_K_o)
    return I_pump_max * f_nak * na_term * k_term
