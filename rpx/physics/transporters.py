"""Cation–chloride cotransporters (KCC2, NKCC1) and the pump–leak steady state with them.

Flux laws (thermodynamically consistent: each transporter stops exactly where its
free energy of transport is zero). With RT/F in mV and a strength g in mS/cm^2, the
outward transport rate, as F times the cycle rate per membrane area, is in uA/cm^2:

    J_KCC2  = g_KCC2 ·(RT/F)·ln(K_i·Cl_i / (K_o·Cl_o))            = g_KCC2 ·(E_Cl − E_K)
    J_NKCC1 = g_NKCC1·(RT/F)·ln(Na_i·K_i·Cl_i² / (Na_o·K_o·Cl_o²)) = g_NKCC1·(2E_Cl − E_Na − E_K)

Each KCC2 cycle moves one K+ and one Cl− out (J_KCC2 > 0) or in; each NKCC1 cycle
one Na+, one K+ and two Cl−. Both are electroneutral. The KCC2 law is the one of
Düsterwald, Currin, Burman, Akerman, Kay & Raimondo, "Biophysical models reveal the
relative importance of transporter proteins and impermeant anions in chloride
homeostasis" (bioRxiv 216150, 2017; their code, github.com/ChrisCurrin/
multi-compartment_multi-anion, compartment.py: ``jkcc2 = pkcc2*(ek - ecl)``, an
inward rate); the NKCC1 law is the same log-ratio law for the 1:1:2 stoichiometry.

Steady state (pump–leak cell of :mod:`rpx.physics.pump_leak` plus the cotransporters),
with outward GHK leak currents I_ion and the Na/K pump current I_p:

* Na:  I_Na + 3·I_p + J_NKCC1 = 0
* K:   I_K − 2·I_p + J_KCC2 + J_NKCC1 = 0
* Cl:  −I_Cl + J_KCC2 + 2·J_NKCC1 = 0      (I_Cl outward current = Cl− influx)
* electroneutrality and osmotic balance, combined as H = 0 and X_i = (Osm_o − 2·Cl_i)/(1 − z_X)
  (as in :mod:`rpx.physics.pump_leak`; the transporters are electroneutral and the three
  balances sum to zero total membrane current).

Ca2+ (optional: present where ``p`` holds :data:`CALCIUM`; every strength 0 by default)
enters through a GHK leak (``P_Ca``), the Na/Ca exchanger (:func:`ncx_current`, Luo &
Rudy 1994: 3 Na+ : 1 Ca2+, one net charge per cycle) and the plasma-membrane Ca2+ pump
(:func:`pmca_current`, the Luo–Rudy sarcolemmal Ca pump, a Ca2+ current). Then

* Na:  I_Na + 3·I_p + J_NKCC1 + 3·I_NCX = 0
* Ca:  I_Ca + I_PMCA − 2·I_NCX = 0     (Ca2+ charge; the exchanger moves one Ca2+ per
  net charge, so its Ca2+ charge current is 2·I_NCX)
* electroneutrality Na_i + K_i − Cl_i + 2·Ca_i + z_X·X_i = 0 and osmotic balance
  Na_i + K_i + Cl_i + Ca_i + X_i = Osm_o: H gains (2 − z_X)·Ca_i and
  X_i = (Osm_o − 2·Cl_i + Ca_i)/(1 − z_X).

The Ca balance is linear in Ca_i for the leak and the exchanger and Michaelis–Menten for
the pump, so for given V and Na_i its one root is a quadratic's (:func:`calcium_steady`)
and Ca_i is eliminated from the Newton system (which stays 4 × 4). The bath's Ca2+
stays inside its lumped monovalent counter-ion (Osm_o unchanged, as without Ca2+), so
that a cell without Ca2+ routes is the cell of :mod:`rpx.physics.pump_leak` exactly. With
no Ca2+ route at all the cell holds no Ca2+ (Ca_i = 0); with only the pump too.
The sum of the balances, Na + K − Cl + 2·Ca, is the total membrane current
I_Na + I_K + I_Cl + I_Ca + I_p + I_NCX + I_PMCA: zero at every steady state.

Chloride is no longer passive, so the state is not closed-form in Cl and depends on P_Cl
(where no Cl route exists at all, P_Cl = 0 without cotransporters, Cl_i takes its
passive limit Cl_o·e^u). The four equations are solved together in y = (u, ln Na_i, ln
K_i, w), u = FV/RT, w = logit(2·Cl_i/Osm_o) (so that every iterate has X_i > 0, a finite
volume), by Newton's method with a backtracking line search on the scaled residual
(Armijo condition; Nocedal & Wright, Numerical Optimization, 2nd ed., Alg. 3.1) and a
cap of 2 on each step component (so exponentials cannot overflow), starting from the
transporter-free steady state. In the logarithms the cotransporter fluxes are linear, so
strong transporters make the system more nearly linear, not stiffer. A set is ``ok``
when the scaled residual is at most 1000 ulps; one whose iterates head to w → ∞
(X_i/Osm_o < 1e-12) is reported as unbounded swelling, any other failure as not
converged. Gradients follow from the implicit function theorem (dy/dθ = −J_y⁻¹·J_θ),
never from the iterations. Uniqueness with transporters is not proven, and
:func:`rpx.physics.pump_leak.residual_sign_changes` does not cover them;
:func:`rpx.physics.pump_leak.transporter_sign_changes` counts their steady states
numerically (``experiments/transporters_uniqueness.py``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

from rpx.physics import formulas as phys
from rpx.physics.roots import NOT_CONVERGED, OK

Params = Mapping[str, Array]

# Names of the transporter strengths (parameter table), each 0 = absent.
STRENGTHS = ("g_KCC2", "g_NKCC1")
# The parameters the transporter steady state reads in addition to the pump–leak ones.
EXTRA = ("P_Cl", *STRENGTHS)
# The Ca2+ routes (GHK leak, Na/Ca exchanger, plasma-membrane Ca pump) and their constants;
# the strengths P_Ca, I_NCX_max, I_PMCA_max are 0 = absent.
CA_STRENGTHS = ("P_Ca", "I_NCX_max", "I_PMCA_max")
CALCIUM = ("Ca_o", *CA_STRENGTHS, "Km_Na_NCX", "Km_Ca_NCX", "k_sat_NCX", "eta_NCX", "Km_PMCA")

_MAX_ITER = 300
_HALVINGS = 24
_MAX_STEP = 2.0


def _safe_log(g: ArrayLike) -> Callable[[ArrayLike], Array]:
    """ln, evaluated at 1 where the strength g is 0 and the concentration is 0, so that
    an absent transporter has a rate of exactly 0 even in a bath free of its ions (and
    elsewhere the true logarithm, so that the rate's derivative w.r.t. g at g = 0 is
    right)."""
    on = jnp.asarray(g) > 0
    return lambda c: jnp.log(jnp.where(on | (jnp.asarray(c) > 0), c, 1.0))


def kcc2_flux(
    g: ArrayLike, K_i: ArrayLike, K_o: ArrayLike, Cl_i: ArrayLike, Cl_o: ArrayLike, T: ArrayLike
) -> Array:
    """Outward KCC2 rate as F times cycles per area (uA/cm^2): g·(RT/F)·ln(K_i·Cl_i/(K_o·Cl_o)).

    ``g`` in mS/cm^2, concentrations in mM (> 0 where g > 0), ``T`` in K; exactly 0
    where g = 0, and where E_Cl = E_K (Düsterwald et al., bioRxiv 216150: the inward rate
    j = g·(E_K − E_Cl)).
    """
    ln = _safe_log(g)
    log_ratio = ln(K_i) + ln(Cl_i) - ln(K_o) - ln(Cl_o)
    return g * phys.thermal_voltage(T) * log_ratio


def nkcc1_flux(
    g: ArrayLike,
    Na_i: ArrayLike,
    Na_o: ArrayLike,
    K_i: ArrayLike,
    K_o: ArrayLike,
    Cl_i: ArrayLike,
    Cl_o: ArrayLike,
    T: ArrayLike,
) -> Array:
    """Outward NKCC1 rate (uA/cm^2): g·(RT/F)·ln(Na_i·K_i·Cl_i²/(Na_o·K_o·Cl_o²)).

    Zero exactly where 2·E_Cl = E_Na + E_K. ``g`` in mS/cm^2, concentrations in mM (> 0).
    """
    ln = _safe_log(g)
    log_ratio = ln(Na_i) + ln(K_i) + 2.0 * ln(Cl_i) - ln(Na_o) - ln(K_o) - 2.0 * ln(Cl_o)
    return g * phys.thermal_voltage(T) * log_ratio


def _ncx_terms(
    V: ArrayLike,
    Na_i: ArrayLike,
    Na_o: ArrayLike,
    Ca_o: ArrayLike,
    I_max: ArrayLike,
    Km_Na: ArrayLike,
    Km_Ca: ArrayLike,
    k_sat: ArrayLike,
    eta: ArrayLike,
    T: ArrayLike,
) -> tuple[Array, Array]:
    """(A, B) with the Luo–Rudy exchanger current I_NCX = A − B·Ca_i (uA/cm^2, uA/cm^2/mM).

    Both are >= 0; A is the forward term (3 Na+ out, Ca2+ in), B·Ca_i the reverse one.
    """
    u = V / phys.thermal_voltage(T)
    denom = (Km_Na**3 + Na_o**3) * (Km_Ca + Ca_o) * (1.0 + k_sat * jnp.exp((eta - 1.0) * u))
    scale = I_max / denom
    return scale * jnp.exp(eta * u) * Na_i**3 * Ca_o, scale * jnp.exp((eta - 1.0) * u) * Na_o**3


def ncx_current(
    V: ArrayLike,
    Na_i: ArrayLike,
    Na_o: ArrayLike,
    Ca_i: ArrayLike,
    Ca_o: ArrayLike,
    I_max: ArrayLike,
    Km_Na: ArrayLike,
    Km_Ca: ArrayLike,
    k_sat: ArrayLike,
    eta: ArrayLike,
    T: ArrayLike,
) -> Array:
    """Na/Ca exchanger current (uA/cm^2, outward +; Luo & Rudy 1994, Circ. Res. 74:1071).

        I_NCX = I_max/((Km_Na³ + Na_o³)(Km_Ca + Ca_o)(1 + k_sat·e^((η−1)u)))
                · (e^(ηu)·Na_i³·Ca_o − e^((η−1)u)·Na_o³·Ca_i),     u = FV/RT

    (the form and constants as in the CellML transcription of Luo & Rudy 1994 in the
    pigreads package, docs/models/luo1994dynamic.rst). One cycle moves 3 Na+ out and
    1 Ca2+ in when I_NCX > 0 (reverse mode), the opposite when I_NCX < 0 (forward mode,
    Ca2+ extrusion), one net charge per cycle: I_NCX = F·cycle rate. It vanishes
    exactly at V = 3·E_Na − 2·E_Ca. Arguments broadcast; concentrations in mM, V in mV,
    ``I_max`` in uA/cm^2, ``k_sat`` and ``eta`` dimensionless, T in K.
    """
    A, B = _ncx_terms(V, Na_i, Na_o, Ca_o, I_max, Km_Na, Km_Ca, k_sat, eta, T)
    return A - B * Ca_i


def pmca_current(Ca_i: ArrayLike, I_max: ArrayLike, Km: ArrayLike) -> Array:
    """Plasma-membrane Ca2+ pump current (uA/cm^2, outward +): I_max·Ca_i/(Km + Ca_i).

    The sarcolemmal Ca pump of Luo & Rudy 1994 (Circ. Res. 74:1071; I_pCa = 1.15
    uA/cm^2, K_m,pCa = 0.5 uM there). As in that model it is a Ca2+ current (two charges
    out per Ca2+; the countertransported H+ are not modelled) and it does not depend on V.
    ``Ca_i``, ``Km`` in mM (Km > 0), ``I_max`` in uA/cm^2.
    """
    return I_max * Ca_i / (Km + Ca_i)


def _ca_terms(V: Array, Na_i: Array, p: Params) -> tuple[Array, ...]:
    """Coefficients of the Ca balance in Ca_i: leak a·Ca_i − b, exchanger A − B·Ca_i."""
    T = p["T"]
    one = jnp.ones_like(Na_i)
    a = phys.ghk_current(V, p["P_Ca"], 0.0 * one, one, 2, T)
    b = -phys.ghk_current(V, p["P_Ca"], p["Ca_o"] * one, 0.0 * one, 2, T)
    A, B = _ncx_terms(
        V, Na_i, p["Na_o"], p["Ca_o"], p["I_NCX_max"], p["Km_Na_NCX"], p["Km_Ca_NCX"],
        p["k_sat_NCX"], p["eta_NCX"], T,
    )  # fmt: skip
    return a, b, A, B


def calcium_steady(V: Array, Na_i: Array, p: Params) -> Array:
    """Ca_i (mM) that zeroes the Ca2+ flux at V (mV) and Na_i (mM): closed form.

    The outward Ca2+ charge current I_Ca + I_PMCA − 2·I_NCX (GHK leak through ``P_Ca``,
    pump, exchanger) is a·C − b + M·C/(K + C) − 2·(A − B·C) with C = Ca_i, every
    coefficient >= 0, so it increases in C and its one root in C >= 0 is the positive
    root of α·C² + (α·K − β + M)·C − β·K = 0, α = a + 2B, β = b + 2A, M = I_PMCA_max,
    K = Km_PMCA (evaluated in the cancellation-free form for either sign of the linear
    coefficient). Without any Ca2+ route it is 0 (a cell without Ca2+), and so is it
    with the pump alone.
    """
    a, b, A, B = _ca_terms(V, Na_i, p)
    alpha = a + 2.0 * B
    beta = b + 2.0 * A
    M, K = p["I_PMCA_max"], p["Km_PMCA"]
    q = alpha * K - beta + M
    disc = q * q + 4.0 * alpha * beta * K
    root = jnp.where(disc > 0, jnp.sqrt(jnp.where(disc > 0, disc, 1.0)), 0.0)
    den = q + root
    c_pos = jnp.where(den > 0, 2.0 * beta * K / jnp.where(den > 0, den, 1.0), 0.0)
    c_neg = (root - q) / (2.0 * jnp.where(alpha > 0, alpha, 1.0))
    return jnp.where(q >= 0, c_pos, c_neg)


def _pump(V: Array, Na_i: Array, p: Params, kinetic: bool) -> Array:
    if kinetic:
        return phys.nak_pump_current(
            V, Na_i, p["Na_o"], p["K_o"], p["I_pump_max"], p["Km_Na_i"], p["Km_K_o"], p["T"]
        )
    return p["I_pump_fixed"] + 0.0 * V


def fluxes(V: Array, c: Mapping[str, Array], p: Params, kinetic: bool) -> dict[str, Array]:
    """Leak, pump, cotransporter and Ca2+ rates (uA/cm^2, outward +) at V and concentrations ``c``.

    ``c`` holds ``Na_i``, ``K_i``, ``Cl_i`` and, where ``p`` has the Ca2+ parameters
    (:data:`CALCIUM`), ``Ca_i`` (mM; the steady value :func:`calcium_steady` if absent);
    ``p`` the pump–leak parameters, ``P_Cl`` and the strengths. Returns ``I_Na``, ``I_K``,
    ``I_Cl``, ``I_pump``, ``J_KCC2``, ``J_NKCC1``, with Ca2+ also ``Ca_i``, ``I_Ca``,
    ``I_NCX``, ``I_PMCA``, and the net outward ion rates ``Na``, ``K``, ``Cl`` (and
    ``Ca``) (F times mol/(cm^2 s)).
    """
    T = p["T"]
    I_na = phys.ghk_current(V, p["P_Na"], p["Na_o"], c["Na_i"], 1, T)
    I_k = phys.ghk_current(V, p["P_K"], p["K_o"], c["K_i"], 1, T)
    I_cl = phys.ghk_current(V, p["P_Cl"], p["Cl_o"], c["Cl_i"], -1, T)
    I_p = _pump(V, c["Na_i"], p, kinetic)
    j_kcc = kcc2_flux(p["g_KCC2"], c["K_i"], p["K_o"], c["Cl_i"], p["Cl_o"], T)
    j_nkcc = nkcc1_flux(
        p["g_NKCC1"], c["Na_i"], p["Na_o"], c["K_i"], p["K_o"], c["Cl_i"], p["Cl_o"], T
    )
    out = {
        "I_Na": I_na, "I_K": I_k, "I_Cl": I_cl, "I_pump": I_p,
        "J_KCC2": j_kcc, "J_NKCC1": j_nkcc,
        "Na": I_na + 3.0 * I_p + j_nkcc,
        "K": I_k - 2.0 * I_p + j_kcc + j_nkcc,
        "Cl": -I_cl + j_kcc + 2.0 * j_nkcc,
    }  # fmt: skip
    if all(k in p for k in CALCIUM):
        ca = c["Ca_i"] if "Ca_i" in c else calcium_steady(V, c["Na_i"], p)
        a, b, A, B = _ca_terms(V, c["Na_i"], p)
        I_ncx = A - B * ca
        I_ca = a * ca - b
        I_pmca = pmca_current(ca, p["I_PMCA_max"], p["Km_PMCA"])
        out |= {
            "Ca_i": ca, "I_Ca": I_ca, "I_NCX": I_ncx, "I_PMCA": I_pmca,
            "Na": out["Na"] + 3.0 * I_ncx,
            "Ca": 0.5 * (I_ca + I_pmca) - I_ncx,
        }  # fmt: skip
    return out


def _osmolarity(p: Params) -> Array:
    """Bath osmolarity (mM), as :func:`rpx.physics.pump_leak.external_osmolarity`."""
    cations = p["Na_o"] + p["K_o"]
    return cations + p["Cl_o"] + jnp.abs(cations - p["Cl_o"]) + p["X_o"]


def _residual_and_scale(y: Array, p: Params, kinetic: bool) -> tuple[Array, Array]:
    """The four steady-state equations at y = (u, ln Na_i, ln K_i, w) and their scales.

    w = logit(2·Cl_i/Osm_o), so that 0 < Cl_i < Osm_o/2, i.e. X_i > 0 (finite volume), for
    every y: Newton cannot land on a root without a finite volume.
    """
    osm = _osmolarity(p)
    vt = phys.thermal_voltage(p["T"])
    log_cl = jnp.log(0.5 * osm) + jax.nn.log_sigmoid(y[3])
    c = {"Na_i": jnp.exp(y[1]), "K_i": jnp.exp(y[2]), "Cl_i": jnp.exp(log_cl)}
    f = fluxes(y[0] * vt, c, p, kinetic)
    z = p["z_X"]
    sodium = (1.0 - z) * (c["Na_i"] + c["K_i"])
    chloride = (1.0 + z) * c["Cl_i"]
    H = sodium - chloride + z * osm
    calcium = "Ca" in f
    if calcium:
        # Electroneutrality Na + K − Cl + 2 Ca + z·X = 0 and osmotic balance
        # Na + K + Cl + Ca + X = Osm_o, X eliminated: H gains (2 − z)·Ca_i.
        divalent = (2.0 - z) * f["Ca_i"]
        H = H + divalent
    a = {k: jnp.abs(v) for k, v in f.items()}
    cl_row = f["Cl"]
    # No Cl route at all (P_Cl = 0, no cotransporter; reached only with a Ca2+ route on):
    # the Cl balance is 0 = 0, so Cl_i takes its limit P_Cl -> 0, Cl_i = Cl_o·e^u,
    # as in the transporter-free reduction.
    no_cl = (p["P_Cl"] == 0) & (p["g_KCC2"] == 0) & (p["g_NKCC1"] == 0)
    passive_cl = log_cl - jnp.log(p["Cl_o"]) - y[0]
    cl_row = jnp.where(no_cl, passive_cl, cl_row)
    r = jnp.stack([f["Na"], f["K"], cl_row, H])
    # A GHK current is a difference of one-way fluxes: its rounding error scales with
    # them (they cancel where an ion is near equilibrium, e.g. passive Cl).
    V = y[0] * vt
    for ion, z_ion, c_in in (("Na", 1, c["Na_i"]), ("K", 1, c["K_i"]), ("Cl", -1, c["Cl_i"])):
        P, c_out = p[f"P_{ion}"], p[f"{ion}_o"]
        a[f"I_{ion}"] = jnp.abs(phys.ghk_current(V, P, 0.0 * c_out, c_in, z_ion, p["T"])) + (
            jnp.abs(phys.ghk_current(V, P, c_out, 0.0 * c_in, z_ion, p["T"]))
        )
    # A cotransporter rate is g·(RT/F) times a difference of logarithms: its rounding
    # error scales with the logarithms' sizes, not with the (small) rate at the root.
    logs = {k: jnp.abs(jnp.log(p[k])) for k in ("Na_o", "K_o", "Cl_o")}
    a["J_KCC2"] = a["J_KCC2"] + jnp.abs(p["g_KCC2"]) * vt * (
        jnp.abs(y[2]) + jnp.abs(log_cl) + logs["K_o"] + logs["Cl_o"]
    )
    a["J_NKCC1"] = a["J_NKCC1"] + jnp.abs(p["g_NKCC1"]) * vt * (
        jnp.abs(y[1]) + jnp.abs(y[2]) + 2.0 * jnp.abs(log_cl)
        + logs["Na_o"] + logs["K_o"] + 2.0 * logs["Cl_o"]
    )  # fmt: skip
    na_scale = a["I_Na"] + 3.0 * a["I_pump"] + a["J_NKCC1"]
    h_scale = jnp.abs(sodium) + jnp.abs(chloride) + jnp.abs(z * osm)
    if calcium:
        # The exchanger current is a difference of its two one-way terms.
        _, _, A, B = _ca_terms(V, c["Na_i"], p)
        na_scale = na_scale + 3.0 * (jnp.abs(A) + jnp.abs(B * f["Ca_i"]))
        h_scale = h_scale + jnp.abs(divalent)
    cl_scale = a["I_Cl"] + a["J_KCC2"] + 2.0 * a["J_NKCC1"]
    cl_scale = jnp.where(
        no_cl, jnp.abs(log_cl) + jnp.abs(jnp.log(p["Cl_o"])) + jnp.abs(y[0]), cl_scale
    )
    scale = jnp.stack([
        na_scale,
        a["I_K"] + 2.0 * a["I_pump"] + a["J_KCC2"] + a["J_NKCC1"],
        cl_scale,
        h_scale,
    ])  # fmt: skip
    return r, scale


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _implicit(f: Callable[[Array, Params], Array], y: Array, theta: Params) -> Array:
    """``y`` unchanged; its tangent w.r.t. ``theta`` from f(y, θ) = 0 (vector form)."""
    del f, theta
    return y


@_implicit.defjvp
def _implicit_jvp(f: Callable, primals: tuple, tangents: tuple) -> tuple[Array, Array]:
    y, theta = primals
    _, dtheta = tangents
    _, df_dtheta = jax.jvp(lambda th: f(y, th), (theta,), (dtheta,))
    jac = jax.jacfwd(f)(y, theta)
    return y, -jnp.linalg.solve(jac, df_dtheta)


def _solve_point(p: Params, y0: Array, kinetic: bool) -> tuple[Array, Array, Array]:
    """Newton with backtracking for one parameter set (scalars): (y, status, swelling).

    ``swelling``: not converged with the iterate heading to infinite volume
    (X_i/Osm_o below 1e-12).
    """
    p_c = jax.lax.stop_gradient(p)
    eps = jnp.finfo(y0.dtype).eps

    def f(y: Array, th: Params) -> Array:
        return _residual_and_scale(y, th, kinetic)[0]

    def merit(y: Array, scale: Array) -> Array:
        r, _ = _residual_and_scale(y, p_c, kinetic)
        m = jnp.max(jnp.abs(r) / scale)
        return jnp.where(jnp.isfinite(m), m, jnp.inf)

    def scaled(y: Array) -> tuple[Array, Array]:
        r, s = _residual_and_scale(y, p_c, kinetic)
        s = jnp.maximum(s, jnp.finfo(y.dtype).tiny)
        return jnp.max(jnp.abs(r) / s), s

    tol_stop = 8.0 * eps

    def cond(c: tuple) -> Array:
        it, _, res, step = c
        return (it < _MAX_ITER) & (res > tol_stop) & (step > tol_stop) & jnp.isfinite(res)

    def body(c: tuple) -> tuple:
        it, y, res, _ = c
        _, s = scaled(y)
        jac = jax.jacfwd(f)(y, p_c)
        r = f(y, p_c)
        d = -jnp.linalg.solve(jac, r)
        big = jnp.max(jnp.abs(d))
        d = jnp.where(big > _MAX_STEP, d * (_MAX_STEP / big), d)
        lams = 0.5 ** jnp.arange(_HALVINGS, dtype=y.dtype)
        trial = jax.vmap(lambda lam: merit(y + lam * d, s))(lams)
        m0 = jnp.max(jnp.abs(r) / s)
        accept = trial <= (1.0 - 1e-4 * lams) * m0
        k = jnp.where(jnp.any(accept), jnp.argmax(accept), _HALVINGS - 1)
        lam = lams[k]
        y_new = y + lam * d
        res_new, _ = scaled(y_new)
        step = jnp.max(jnp.abs(lam * d) / (1.0 + jnp.abs(y_new)))
        step = jnp.where(jnp.isfinite(step), step, 0.0)
        return it + 1, y_new, res_new, step

    res0, _ = scaled(y0)
    _, y, res, _ = jax.lax.while_loop(cond, body, (0, y0, res0, jnp.asarray(jnp.inf, y0.dtype)))
    ok = jnp.isfinite(res) & (res <= 1000.0 * eps) & jnp.all(jnp.isfinite(y))
    status = jnp.where(ok, OK, NOT_CONVERGED).astype(jnp.int32)
    swelling = ~ok & (y[3] > 12.0 * jnp.log(10.0))
    y = jnp.where(ok, y, jnp.nan)
    return _implicit(f, y, p), status, swelling


def solve(p: Params, y0: Array, kinetic: bool) -> tuple[dict[str, Array], Array, Array]:
    """Transporter steady state of parameter sets ``p`` (all of one shape S).

    Args:
        p: pump–leak parameters plus ``P_Cl``, ``g_KCC2``, ``g_NKCC1``, each of shape S.
        y0: starting points (u, ln Na_i, ln K_i, ln Cl_i), shape S + (4,); Cl_i must be
            below Osm_o/2.
        kinetic: Luo–Rudy pump (else the fixed ``I_pump_fixed``).

    Returns:
        ``({"u", "Na_i", "K_i", "Cl_i"}, status, swelling)``: u = FV/RT and
        concentrations (mM), NaN where status (int32, 0 ok, 2 not converged) is not 0,
        with implicit gradients; ``swelling`` (bool) where the failed iteration was
        heading to an infinite volume.
    """
    shape = jnp.shape(y0)[:-1]
    n = int(np.prod(shape, dtype=np.int64))
    flat = {k: jnp.reshape(v, (n,)) for k, v in p.items()}
    half_osm = 0.5 * _osmolarity(p)
    cl0 = jnp.exp(y0[..., 3])
    w0 = jnp.log(cl0) - jnp.log(half_osm - cl0)  # logit(Cl_i/(Osm_o/2))
    z0 = jnp.concatenate([y0[..., :3], w0[..., None]], axis=-1)
    y, status, swelling = jax.vmap(lambda pp, yy: _solve_point(pp, yy, kinetic))(
        flat, jnp.reshape(z0, (n, 4))
    )
    y = jnp.reshape(y, (*shape, 4))
    out = {
        "u": y[..., 0],
        "Na_i": jnp.exp(y[..., 1]),
        "K_i": jnp.exp(y[..., 2]),
        "Cl_i": half_osm * jax.nn.sigmoid(y[..., 3]),
    }
    if all(k in p for k in CALCIUM):
        out["Ca_i"] = calcium_steady(out["u"] * phys.thermal_voltage(p["T"]), out["Na_i"], p)
    return out, jnp.reshape(status, shape), jnp.reshape(swelling, shape)


def _balances_at(
    u: Array, p: Params, x0: Array, kinetic: bool, tol: float | None = None, max_iter: int = 60
) -> tuple[Array, Array, Array]:
    """The Na, K and Cl balances solved at a fixed u = FV/RT for one parameter set (scalars).

    Unknowns x = (ln Na_i, ln K_i, w), w = logit(2·Cl_i/Osm_o), from ``x0`` (shape (3,));
    Ca_i is the closed form :func:`calcium_steady`. At fixed u the balances have at most
    one solution (their Jacobian is a P-matrix everywhere; see
    :func:`rpx.physics.pump_leak.transporter_sign_changes`), found by Newton's method
    (rows scaled, at most ``max_iter`` steps) with the backtracking line search and step
    cap of :func:`_solve_point`. Returns (x, ok, H):
    ``ok`` where the scaled residual is at most ``tol`` (default 1000 ulps), and H (mM)
    the remaining equation (electroneutrality with osmotic balance, the fourth row of the
    full system) at x, so that the steady states are the zeros of H along u.
    """
    p_c = jax.lax.stop_gradient(p)
    eps = jnp.finfo(x0.dtype).eps

    def full(x: Array) -> tuple[Array, Array]:
        return _residual_and_scale(jnp.concatenate([u[None], x]), p_c, kinetic)

    def f(x: Array) -> Array:
        return full(x)[0][:3]

    def merit(x: Array, s: Array) -> Array:
        m = jnp.max(jnp.abs(f(x)) / s)
        return jnp.where(jnp.isfinite(m), m, jnp.inf)

    def scaled(x: Array) -> tuple[Array, Array]:
        r, s = full(x)
        s = jnp.maximum(s[:3], jnp.finfo(x.dtype).tiny)
        return jnp.max(jnp.abs(r[:3]) / s), s

    tol_stop = 8.0 * eps

    def cond(c: tuple) -> Array:
        it, _, res, step = c
        return (it < max_iter) & (res > tol_stop) & (step > tol_stop) & jnp.isfinite(res)

    def body(c: tuple) -> tuple:
        it, x, _, _ = c
        m0, s = scaled(x)
        # Rows scaled by their term magnitudes (they span many decades at strongly
        # negative u, where the concentrations reach ~e^30).
        d = -jnp.linalg.solve(jax.jacfwd(f)(x) / s[:, None], f(x) / s)
        big = jnp.max(jnp.abs(d))
        d = jnp.where(big > _MAX_STEP, d * (_MAX_STEP / big), d)
        lams = 0.5 ** jnp.arange(_HALVINGS, dtype=x.dtype)
        trial = jax.vmap(lambda lam: merit(x + lam * d, s))(lams)
        accept = trial <= (1.0 - 1e-4 * lams) * m0
        lam = lams[jnp.where(jnp.any(accept), jnp.argmax(accept), _HALVINGS - 1)]
        x_new = x + lam * d
        res_new, _ = scaled(x_new)
        step = jnp.max(jnp.abs(lam * d) / (1.0 + jnp.abs(x_new)))
        return it + 1, x_new, res_new, jnp.where(jnp.isfinite(step), step, 0.0)

    res0, _ = scaled(x0)
    _, x, res, _ = jax.lax.while_loop(cond, body, (0, x0, res0, jnp.asarray(jnp.inf, x0.dtype)))
    limit = 1000.0 * eps if tol is None else tol
    ok = jnp.isfinite(res) & (res <= limit) & jnp.all(jnp.isfinite(x))
    return x, ok, full(x)[0][3]
