"""Independent high-precision reference of the rpx physics, in mpmath.

Nothing here imports rpx: every formula is written again from its source, in
arbitrary precision, so that the tests compare rpx against a second implementation
rather than against itself. Units: mV, mM, cm/s, uA/cm^2, K. V = V_in - V_out,
outward current positive.

Sources: Goldman 1943 (J. Gen. Physiol. 27:37) and Hodgkin & Katz 1949 (J. Physiol.
108:37) for the GHK current and voltage equations; Mullins & Noda 1963 (J. Gen.
Physiol. 47:117) for the pump-balance voltage; Luo & Rudy 1994 (Circ. Res. 74:1071)
for the Na/K-ATPase current; CODATA 2018 for the exact R and F.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import mpmath
import numpy as np
from mpmath import mp, mpf

mp.dps = 40

# CODATA 2018 exact defining constants (Tiesinga et al., Rev. Mod. Phys. 93, 025010, 2021).
N_A = mpf("6.02214076e23")  # 1/mol
E_CHARGE = mpf("1.602176634e-19")  # C
K_B = mpf("1.380649e-23")  # J/K
R = N_A * K_B  # J/(mol K)
F = N_A * E_CHARGE  # C/mol

VALENCE = {"K": 1, "Na": 1, "Cl": -1, "Ca": 2}

Number = float | mpf


def thermal_mV(T: Number) -> mpf:
    """RT/F in mV."""
    return R * mpf(T) / F * 1000


def nernst(c_out: Number, c_in: Number, z: int, T: Number) -> mpf:
    """E = (RT/zF) ln(c_out/c_in), mV."""
    return thermal_mV(T) / z * mpmath.log(mpf(c_out) / mpf(c_in))


def ghk_current(V: Number, P: Number, c_out: Number, c_in: Number, z: int, T: Number) -> mpf:
    """GHK current density (uA/cm^2, outward +); the exact limit P z F (c_in - c_out) at V = 0.

    With P in cm/s and c in mM = 1e-6 mol/cm^3, P F c is 1e-6 A/cm^2 = 1 uA/cm^2.
    """
    V, P, c_out, c_in = mpf(V), mpf(P), mpf(c_out), mpf(c_in)
    if V == 0:
        return P * z * F * (c_in - c_out)
    u = z * V / thermal_mV(T)
    e = mpmath.exp(-u)
    return P * z * F * u * (c_in - c_out * e) / (1 - e)


def ghk_current_dV(V: Number, P: Number, c_out: Number, c_in: Number, z: int, T: Number) -> mpf:
    """dI/dV of the GHK current (uA/cm^2/mV), exact at V = 0: P z F (c_in + c_out)/2 · zF/RT."""
    if mpf(V) == 0:
        return mpf(P) * z * F * (mpf(c_in) + mpf(c_out)) / 2 * z / thermal_mV(T)
    return central_diff(lambda v: ghk_current(v, P, c_out, c_in, z, T), V)


def ghk_magnitude(V: Number, P: Number, c_out: Number, c_in: Number, z: int, T: Number) -> mpf:
    """|P z F|·(c_in·g(u) + c_out·g(-u)) with g(u) = u/(1 - e^(-u)) > 0, uA/cm^2.

    The size of the two terms whose difference is the GHK current: rounding errors scale
    with this, not with the current itself, which vanishes at the reversal potential.
    """
    u = z * mpf(V) / thermal_mV(T)
    g_u = -u / mpmath.expm1(-u) if u != 0 else mpf(1)
    g_mu = u / mpmath.expm1(u) if u != 0 else mpf(1)
    return abs(mpf(P) * z * F) * (mpf(c_in) * g_u + mpf(c_out) * g_mu)


def passive_current(V: Number, p: Mapping[str, Number]) -> mpf:
    """Sum of the K, Na, Cl and Ca GHK currents at V for parameters ``p`` (flat names)."""
    return mpmath.fsum(
        ghk_current(V, p[f"P_{ion}"], p[f"{ion}_o"], p[f"{ion}_i"], z, p["T"])
        for ion, z in VALENCE.items()
    )


def permeant_nernst(p: Mapping[str, Number]) -> list[mpf]:
    """Nernst potentials (mV) of the ions with non-zero permeability."""
    return [
        nernst(p[f"{ion}_o"], p[f"{ion}_i"], z, p["T"])
        for ion, z in VALENCE.items()
        if mpf(p[f"P_{ion}"]) != 0
    ]


def ghk_voltage_closed(p: Mapping[str, Number]) -> mpf:
    """GHK voltage equation without Ca (K, Na, Cl), mV."""
    m = {k: mpf(v) for k, v in p.items()}
    num = m["P_K"] * m["K_o"] + m["P_Na"] * m["Na_o"] + m["P_Cl"] * m["Cl_i"]
    den = m["P_K"] * m["K_i"] + m["P_Na"] * m["Na_i"] + m["P_Cl"] * m["Cl_o"]
    return thermal_mV(m["T"]) * mpmath.log(num / den)


def increasing_root(f: Callable[[mpf], mpf], lo: mpf, hi: mpf) -> mpf:
    """Zero of an increasing function: widen [lo, hi] until it brackets, then Illinois.

    The Illinois variant of regula falsi (Dowell & Jarratt 1971, BIT 11:168) keeps a
    bracket at every step, so it cannot diverge; it stops when the bracket is narrower
    than 1e-32 (relative to 1 + |x|), far below float64 resolution.
    """
    lo, hi = mpf(lo), mpf(hi)
    width = max(hi - lo, mpf(1))
    f_lo, f_hi = f(lo), f(hi)
    while f_lo > 0:
        lo, width = lo - width, 2 * width
        f_lo = f(lo)
    while f_hi < 0:
        hi, width = hi + width, 2 * width
        f_hi = f(hi)
    side = 0
    for _ in range(1000):
        if f_lo == 0:
            return lo
        if f_hi == 0:
            return hi
        x = (lo * f_hi - hi * f_lo) / (f_hi - f_lo)
        if hi - lo < mpf("1e-32") * (1 + abs(x)):
            return x
        fx = f(x)
        if fx < 0:
            lo, f_lo = x, fx
            if side == -1:
                f_hi /= 2
            side = -1
        elif fx > 0:
            hi, f_hi = x, fx
            if side == 1:
                f_lo /= 2
            side = 1
        else:
            return x
    raise RuntimeError("reference root solve did not converge")


def ghk_voltage(p: Mapping[str, Number]) -> mpf:
    """Zero of the summed K, Na, Cl, Ca GHK currents, mV.

    Without Ca (P_Ca = 0) the closed GHK voltage equation; otherwise a root solve of the
    current balance (never the quadratic that rpx uses). Every GHK current has the sign
    of V - E_ion, so the root lies between the smallest and largest Nernst potential.
    """
    if mpf(p["P_Ca"]) == 0:
        return ghk_voltage_closed(p)
    E = permeant_nernst(p)
    return increasing_root(lambda v: passive_current(v, p), min(E), max(E))


def mullins_noda(p: Mapping[str, Number]) -> mpf:
    """V = (RT/F) ln((r P_K K_o + P_Na Na_o) / (r P_K K_i + P_Na Na_i)), mV."""
    m = {k: mpf(v) for k, v in p.items()}
    num = m["r_pump"] * m["P_K"] * m["K_o"] + m["P_Na"] * m["Na_o"]
    den = m["r_pump"] * m["P_K"] * m["K_i"] + m["P_Na"] * m["Na_i"]
    return thermal_mV(m["T"]) * mpmath.log(num / den)


def pump_current(V: Number, p: Mapping[str, Number]) -> mpf:
    """Luo & Rudy (1994) Na/K-ATPase current density, uA/cm^2 (outward +).

    I = I_max f(V) / (1 + (Km_Na_i/Na_i)^1.5) · K_o/(K_o + Km_K_o),
    f = 1/(1 + 0.1245 e^(-0.1 FV/RT) + 0.0365 σ e^(-FV/RT)),  σ = (e^(Na_o/67.3) - 1)/7.
    """
    m = {k: mpf(v) for k, v in p.items()}
    w = mpf(V) / thermal_mV(m["T"])
    sigma = (mpmath.exp(m["Na_o"] / mpf("67.3")) - 1) / 7
    f = 1 / (1 + mpf("0.1245") * mpmath.exp(-w / 10) + mpf("0.0365") * sigma * mpmath.exp(-w))
    na = 1 / (1 + (m["Km_Na_i"] / m["Na_i"]) ** mpf("1.5"))
    k = m["K_o"] / (m["K_o"] + m["Km_K_o"])
    return m["I_pump_max"] * f * na * k


def total_current(V: Number, p: Mapping[str, Number]) -> mpf:
    """GHK currents of K, Na, Cl, Ca plus the pump current, uA/cm^2."""
    return passive_current(V, p) + pump_current(V, p)


def ghk_pump(p: Mapping[str, Number]) -> mpf:
    """Zero of the total current (passive GHK plus Luo–Rudy pump), mV."""
    E = permeant_nernst(p)
    return increasing_root(lambda v: total_current(v, p), min(E), max(E))


def central_diff(f: Callable[[mpf], mpf], x: Number, h: Number | None = None) -> mpf:
    """Central difference (f(x+h) - f(x-h)) / 2h, by default with h = 1e-12·|x|.

    At 40 digits the truncation error (h² f'''/6, about 1e-24 relative) and the rounding
    error (about 1e-40/h relative) both lie far below float64 resolution, so for the
    tests this is the exact derivative. At x = 0 a step ``h`` must be given.
    """
    x = mpf(x)
    if h is None:
        if x == 0:
            raise ValueError("central_diff at x = 0 needs an explicit step h")
        h = mpf("1e-12") * abs(x)
    h = mpf(h)
    return (f(x + h) - f(x - h)) / (2 * h)


def partial(
    model: Callable[[Mapping[str, Number]], mpf],
    p: Mapping[str, Number],
    name: str,
    h: Number | None = None,
) -> mpf:
    """∂model/∂p[name] by a high-precision central difference (step ``h``, see central_diff)."""

    def g(x: mpf) -> mpf:
        return model({**p, name: x})

    return central_diff(g, p[name], h)


def ghk_pump_implicit_grad(p: Mapping[str, Number], names: list[str]) -> dict[str, mpf]:
    """dV/dθ = -(∂I/∂θ)/(∂I/∂V) at the reference zero V of the total current I(V, θ)."""
    V = ghk_pump(p)
    dI_dV = central_diff(lambda v: total_current(v, p), V, h=mpf("1e-10"))
    return {
        name: -central_diff(lambda x, name=name: total_current(V, {**p, name: x}), p[name])
        / dI_dV
        for name in names
    }


# ------------------------------------------------------------------------ test domain
CONC_MM = (1e-3, 1e3)  # concentration range of the issue, mM
P_RATIO = (1e-4, 1e2)  # P_Na/P_K, P_Cl/P_K, P_Ca/P_K
P_K_CM_S = (1e-7, 1e-5)  # absolute scale of P_K, cm/s (squid axon: 1e-6)
T_K = (273.0, 320.0)  # temperature, K


def _loguniform(rng: np.random.RandomState, lo: float, hi: float, n: int) -> np.ndarray:
    return 10.0 ** rng.uniform(np.log10(lo), np.log10(hi), n)


def sample(seed: int, n: int, *, calcium: bool = True, pump: bool = False) -> dict[str, np.ndarray]:
    """``n`` random parameter points (float64 numpy arrays) of the test domain.

    Concentrations log-uniform over CONC_MM, P_K log-uniform over P_K_CM_S, the other
    permeabilities P_K times a log-uniform ratio over P_RATIO (P_Ca = 0 unless
    ``calcium``), T uniform over T_K, the Mullins–Noda ratio r_pump uniform in [1, 3].
    With ``pump`` the Luo–Rudy constants are spread log-uniformly a decade either side of
    their defaults (Km_Na_i 10 mM, Km_K_o 1.5 mM, I_pump_max 1.5 uA/cm^2).
    """
    rng = np.random.RandomState(seed)
    p = {f"{ion}_{side}": _loguniform(rng, *CONC_MM, n) for ion in VALENCE for side in "oi"}
    p["P_K"] = _loguniform(rng, *P_K_CM_S, n)
    for ion in ("Na", "Cl", "Ca"):
        p[f"P_{ion}"] = p["P_K"] * _loguniform(rng, *P_RATIO, n)
    if not calcium:
        p["P_Ca"] = np.zeros(n)
    p["T"] = rng.uniform(*T_K, n)
    p["r_pump"] = rng.uniform(1.0, 3.0, n)
    if pump:
        p["I_pump_max"] = _loguniform(rng, 0.15, 15.0, n)
        p["Km_Na_i"] = _loguniform(rng, 1.0, 100.0, n)
        p["Km_K_o"] = _loguniform(rng, 0.15, 15.0, n)
    return p


def point(p: Mapping[str, np.ndarray], i: int) -> dict[str, float]:
    """Point ``i`` of a sample as a dict of Python floats."""
    return {k: float(v[i]) for k, v in p.items()}


def on_sample(fn: Callable[[dict[str, float]], mpf], p: Mapping[str, np.ndarray]) -> np.ndarray:
    """``fn`` (a reference model of one point) on every point of a sample, as float64."""
    n = len(next(iter(p.values())))
    return np.array([float(fn(point(p, i))) for i in range(n)])


def assert_close(
    got: object, want: object, tol: object, what: str, inputs: Mapping[str, object] | None = None
) -> None:
    """Assert |got - want| <= tol elementwise (NaN fails); report the worst point's inputs."""
    got, want, tol = np.broadcast_arrays(
        np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64), np.asarray(tol)
    )
    err = np.abs(got - want)
    bad = ~(err <= tol)
    if not bad.any():
        return
    ratio = np.where(np.isnan(err), np.inf, err / tol)
    i = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
    where = ""
    if inputs is not None:
        where = ", inputs " + ", ".join(
            f"{k}={np.broadcast_to(np.asarray(v), got.shape)[i]!r}" for k, v in inputs.items()
        )
    raise AssertionError(
        f"{what}: {int(bad.sum())} of {bad.size} values off; worst at {i}: got {got[i]!r}, "
        f"expected {want[i]!r}, |error| {err[i]:.3g} > tolerance {tol[i]:.3g}{where}"
    )
