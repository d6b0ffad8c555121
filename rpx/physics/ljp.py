"""Liquid junction potentials (LJP) between a pipette solution and a bath (``rpx.ljp``).

Sign convention (the one of JPCalc, Barry 1994, J. Neurosci. Methods 51:107, and of
LJPcalc): the LJP is the potential of the bath relative to the pipette solution at their
junction, V_LJP = V_bath − V_pipette, and a potential measured after zeroing the
amplifier with the pipette in the bath is corrected as

    V_membrane = V_measured − V_LJP.

A K-gluconate pipette against a NaCl bath gives V_LJP ≈ +15 mV (K+ leaves the pipette
faster than gluconate), so the true potential is about 15 mV more negative than read.

Method: the generalised Henderson equation (Barry & Lynch 1991, J. Membr. Biol.
121:101, eq. as used by JPCalc; Ng & Barry 1995, J. Neurosci. Methods 56:37):

    V_bath − V_pipette = −(RT/F) · Σ z_i u_i Δc_i / Σ z_i² u_i Δc_i
                                 · ln(Σ z_i² u_i c_i,bath / Σ z_i² u_i c_i,pipette)

with Δc_i = c_i,bath − c_i,pipette, valence z_i and mobility u_i relative to K+. It
follows from the Nernst–Planck flux equations with zero net current if every
concentration varies *linearly* across the junction. Assumptions, as in JPCalc's default
mode: concentrations stand for activities (activity coefficients 1), mobilities are
their limiting (infinite-dilution) values and their ratios do not depend on temperature
(T enters only through RT/F), every listed species is fully dissociated at the given
concentration, and both solutions are electroneutral. LJPcalc instead solves the
stationary Nernst–Planck equations (Marino et al. 2014, arXiv:1403.3640): constant
fluxes, zero current and electroneutrality, without the linear-profile assumption. Its
documentation states that both give nearly identical LJPs and that Henderson loses
accuracy at high concentrations and with polyvalent ions. ``method="nernst_planck"``
solves that problem here by shooting (numpy/scipy; not jit-able). The three published
JPCalc examples in ``tests/test_ljp.py`` agree with the Henderson form within 0.2 mV, and
the published JLJP (Nernst–Planck) example with the Nernst–Planck form within 0.05 mV.

Mobility table (:data:`IONS`): every value names its source. Relative mobilities are
the table of Ng & Barry (1995) (extracted from Barry & Lynch 1991, Table 1, the table
JPCalc ships), as listed on the CATACOMB "JunctionPotential" help page
(compneuro.org/catacomb/ccmb_help/chemistry/JunctionPotential.html). Methanesulfonate,
methyl sulfate and ATP are not in that list: their values come from the UNSW "Ionic
Mobility Tables" page of JPCalc (medicalsciences.med.unsw.edu.au/research/
research-services/ies/ionicmobilitytables, Table 4) as transcribed in LJPcalc's
``src/IonTable.md``; the methanesulfonate value 0.664 equals λ°(CH3SO3−)/λ°(K+) =
48.8/73.5 of Lange's Handbook of Chemistry (15th ed., Table 8.32). Species for which no
published mobility was found (e.g. phosphocreatine, GTP, BAPTA, pyruvate, QX-314, free
hydroxide at physiological pH) are not in the table; ``rpx.physics.solutions`` keeps
them for charge balance and osmolarity only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

from rpx.physics.constants import MV_PER_V, F, R
from rpx.physics.mobilities import IONS, ion_name
from rpx.physics.solutions import Solution, is_recipe
from rpx.physics.solutions import solution as make_solution

#: Default temperature of :func:`ljp` (K), 25 °C, the reference temperature of the
#: mobility table.
T_DEFAULT = 298.15
#: Default electroneutrality tolerance: |Σ z c| may be at most this fraction of the
#: total cation charge Σ_{z>0} z c of a solution.
NEUTRAL_TOL = 0.02


def _concrete(x: object) -> bool:
    return not isinstance(x, jax.core.Tracer)


def _charge_check(
    label: str, conc: Mapping[str, object], extra_charge: object, tol: float
) -> None:
    """Electroneutrality of concrete concentrations (``extra_charge``: Σ z c of species
    outside the table, mM)."""
    values = [conc[k] for k in conc]
    if not all(_concrete(v) for v in [*values, extra_charge]):
        return
    net = np.asarray(extra_charge, dtype=np.float64)
    pos = np.maximum(net, 0.0)
    for name, c in conc.items():
        zc = IONS[name].z * np.asarray(c, dtype=np.float64)
        net = net + zc
        pos = pos + np.maximum(zc, 0.0)
    net, pos = np.broadcast_arrays(net, pos)
    bad = np.abs(net) > tol * pos + 1e-9
    if np.any(bad):
        n, p = float(net[bad][0]), float(pos[bad][0])
        raise ValueError(
            f"{label} solution is not electroneutral: net charge {n:+.3g} mM against "
            f"{p:.3g} mM of cation charge (tolerance tol={tol:g} of the cation charge); "
            "add the missing counter-ions"
        )


def ion_concentrations(
    solution: Mapping[str, ArrayLike], label: str = "solution"
) -> tuple[dict[str, ArrayLike], ArrayLike]:
    """Canonical ion name -> concentration (mM), and Σ z c of charged species outside
    the mobility table (from a :class:`rpx.physics.solutions.Solution`, else 0).

    A mapping with a key that is a salt and not an ion name is read as a recipe
    (:func:`rpx.physics.solutions.solution`); any other as ion concentrations.

    Raises:
        ValueError: unknown ion or salt, a negative or non-finite concentration.
    """
    if not isinstance(solution, Mapping):
        raise ValueError(
            f"{label} must map ion names (or salts) to concentrations in mM, got "
            f"{type(solution).__name__}"
        )
    extra: ArrayLike = 0.0
    if isinstance(solution, Solution):
        extra = solution.other_charge
        items = dict(solution.ions)
    elif is_recipe(solution):
        try:
            sol = make_solution(solution)
        except ValueError as err:
            raise ValueError(f"{label}: {err}") from None
        extra = sol.other_charge
        items = dict(sol.ions)
    else:
        items = {}
        for name, c in solution.items():
            canon = ion_name(name)
            if canon in items:
                raise ValueError(f"{label}: ion {canon!r} is given twice")
            items[canon] = c
    for name, c in items.items():
        if _concrete(c):
            arr = np.asarray(c, dtype=np.float64)
            if not np.all(np.isfinite(arr)) or np.any(arr < 0):
                bad = float(np.ravel(arr[~(np.isfinite(arr) & (arr >= 0))])[0])
                raise ValueError(
                    f"{label} concentration of {name} is {bad!r} mM; it must be finite "
                    "and >= 0"
                )
    return items, extra


def check_electroneutral(
    solution: Mapping[str, ArrayLike], label: str = "solution", tol: float = NEUTRAL_TOL
) -> None:
    """Raise ``ValueError`` unless |Σ z c| of ``solution`` (ions, a recipe or a
    ``Solution``) is at most ``tol`` times its cation charge (the check of :func:`ljp`)."""
    items, extra = ion_concentrations(solution, label)
    _charge_check(label, items, extra, tol)


def _log_ratio_over_difference(a: Array, b: Array) -> Array:
    """ln(b/a)/(b − a) for a, b > 0, finite (→ 1/a) as b → a, with finite gradients."""
    x = (b - a) / a
    small = jnp.abs(x) < 1e-6
    xs = jnp.where(small, 1.0, x)
    series = (1.0 - x / 2.0 + x * x / 3.0) / a
    return jnp.where(small, series, jnp.log1p(xs) / (xs * a))


def ljp(
    pipette: Mapping[str, ArrayLike],
    bath: Mapping[str, ArrayLike],
    T: ArrayLike = T_DEFAULT,
    *,
    tol: float = NEUTRAL_TOL,
    method: str = "henderson",
) -> Array:
    """Liquid junction potential V_LJP = V_bath − V_pipette (mV).

    The measured potential is corrected as V_membrane = V_measured − V_LJP (JPCalc and
    LJPcalc convention); a K-gluconate pipette in a NaCl bath gives about +15 mV.

    Args:
        pipette, bath: ion name -> concentration (mM), e.g. ``{"K": 145, "Na": 13,
            "Cl": 10, "gluconate": 145, "Mg": 1, "HEPES": 5}`` (names of :data:`IONS`,
            aliases and charge suffixes such as ``"Ca2+"`` accepted; absent ions are
            0); or a recipe of salts such as ``{"K-gluconate": 135, "KCl": 5}`` (read
            by :func:`rpx.physics.solutions.solution`), or a ``Solution``.
            Concentrations are scalars or arrays that broadcast together (batched).
        T: temperature (K), (0, 400]; default 298.15 K.
        tol: electroneutrality tolerance: |Σ z c| of each solution may be at most
            ``tol`` times its cation charge Σ_{z>0} z c (default 0.02).
        method: ``"henderson"`` (default; closed form, jit-able and differentiable) or
            ``"nernst_planck"`` (the stationary Nernst–Planck equations with
            electroneutrality, solved by shooting as LJPcalc/JLJP do; numpy/scipy, concrete
            values only, one solve per element of the broadcast shape).

    Returns:
        V_LJP in mV, shape of the broadcast concentrations. Identical solutions give 0;
        swapping pipette and bath flips the sign.

    Raises:
        ValueError: unknown ion or salt, a negative or non-finite concentration, a
            solution that is not electroneutral within ``tol``, a solution without
            ions, T outside (0, 400] K, an unknown ``method``, or traced values with
            ``method="nernst_planck"``.
        RuntimeError: the Nernst–Planck shooting did not converge.

    Sources: Barry & Lynch 1991 (J. Membr. Biol. 121:101) for Henderson; Marino et al.
    2014 (arXiv:1403.3640) for the stationary Nernst–Planck problem; mobilities in
    :data:`IONS`.
    """
    from rpx.physics.params import check_values

    if _concrete(T):
        arr = np.asarray(T, dtype=np.float64)
        if np.any(arr <= 0):
            raise ValueError(f"T={float(np.min(arr))!r} K must be > 0 (allowed range (0, 400])")
        check_values("T", arr)
    if not (isinstance(tol, (int, float)) and math.isfinite(tol) and 0 <= tol < 1):
        raise ValueError(f"tol must be a number in [0, 1), got {tol!r}")
    if method not in ("henderson", "nernst_planck"):
        raise ValueError(f"method must be 'henderson' or 'nernst_planck', got {method!r}")
    p, p_extra = ion_concentrations(pipette, "pipette")
    b, b_extra = ion_concentrations(bath, "bath")
    _charge_check("pipette", p, p_extra, tol)
    _charge_check("bath", b, b_extra, tol)
    names = sorted(set(p) | set(b))
    if not names:
        raise ValueError("pipette and bath contain no ions")
    num = 0.0  # Σ z u Δc
    sa = 0.0  # Σ z² u c (pipette)
    sb = 0.0  # Σ z² u c (bath)
    for name in names:
        ion = IONS[name]
        cp = jnp.asarray(p.get(name, 0.0))
        cb = jnp.asarray(b.get(name, 0.0))
        num = num + ion.z * ion.mobility * (cb - cp)
        sa = sa + ion.z * ion.z * ion.mobility * cp
        sb = sb + ion.z * ion.z * ion.mobility * cb
    for label, s in (("pipette", sa), ("bath", sb)):
        if _concrete(s) and np.any(np.asarray(s) <= 0):
            raise ValueError(f"{label} solution contains no ions (all concentrations 0)")
    vt = (R * MV_PER_V / F) * jnp.asarray(T)
    if method == "nernst_planck":
        return _nernst_planck(names, p, b, T)
    return -vt * num * _log_ratio_over_difference(jnp.asarray(sa), jnp.asarray(sb))


def _nernst_planck(
    names: list[str], p: Mapping[str, ArrayLike], b: Mapping[str, ArrayLike], T: ArrayLike
) -> Array:
    """Stationary Nernst–Planck LJP (mV) element by element of the broadcast inputs."""
    values = [p.get(n, 0.0) for n in names] + [b.get(n, 0.0) for n in names] + [T]
    if not all(_concrete(v) for v in values):
        raise ValueError("method='nernst_planck' needs concrete values (not inside jit/grad)")
    arrays = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in values))
    n = len(names)
    z = np.array([IONS[k].z for k in names], dtype=np.float64)
    d = np.array([IONS[k].mobility for k in names])
    out = np.empty(arrays[0].shape)
    for idx in np.ndindex(out.shape):
        c0 = np.array([a[idx] for a in arrays[:n]])
        c1 = np.array([a[idx] for a in arrays[n : 2 * n]])
        vt = R * MV_PER_V / F * arrays[-1][idx]
        out[idx] = vt * _planck_shooting(z, d, c0, c1)
    return jnp.asarray(out)


def _planck_shooting(z: np.ndarray, d: np.ndarray, c0: np.ndarray, c1: np.ndarray) -> float:
    """ψ(1) − ψ(0), ψ = Fφ/RT, of the stationary Nernst–Planck junction x ∈ [0, 1].

    Constant fluxes J_i, c_i' = −J_i/D_i − z_i c_i ψ', and electroneutrality Σ z c = const
    gives ψ' = −Σ (z_i J_i/D_i) / Σ z_i² c_i. The fluxes are found by shooting from the
    pipette side (x = 0) so that the profile ends at the bath (x = 1) with zero current
    Σ z_i J_i = 0 (least squares, Levenberg–Marquardt), starting from the fluxes of the
    Henderson (linear) profile at its midpoint.
    """
    from scipy.integrate import solve_ivp
    from scipy.optimize import least_squares

    if np.array_equal(c0, c1):
        return 0.0
    scale = float(max(c0.max(), c1.max()))
    a0, a1 = c0 / scale, c1 / scale
    dz2 = np.sum(np.abs(z) * d * (a0 + a1))

    def shoot(j: np.ndarray) -> np.ndarray:
        def f(_x: float, y: np.ndarray) -> np.ndarray:
            c = y[:-1]
            dpsi = -np.sum(z * j / d) / np.sum(z * z * c)
            return np.append(-j / d - z * c * dpsi, dpsi)

        sol = solve_ivp(f, (0.0, 1.0), np.append(a0, 0.0), method="LSODA", rtol=1e-10,
                        atol=1e-13)
        if not sol.success:
            return np.full(a0.size + 1, np.nan)
        return sol.y[:, -1]

    def residual(j: np.ndarray) -> np.ndarray:
        y = shoot(j)
        return np.append(y[:-1] - a1, np.sum(z * j) / dz2)

    sa, sb = np.sum(z * z * d * a0), np.sum(z * z * d * a1)
    num = np.sum(z * d * (a1 - a0))
    x = (sb - sa) / sa
    dpsi_h = -num * (np.log1p(x) / (sb - sa) if abs(x) > 1e-12 else 1.0 / sa)
    j0 = -d * ((a1 - a0) + z * 0.5 * (a0 + a1) * dpsi_h)
    fit = least_squares(residual, j0, method="lm", xtol=1e-14, ftol=1e-14, gtol=1e-14)
    imbalance = (abs(np.sum(z * a0)) + abs(np.sum(z * a1)))
    if not np.all(np.isfinite(fit.fun)) or np.max(np.abs(fit.fun)) > 1e-8 + 2 * imbalance:
        raise RuntimeError(
            "the stationary Nernst–Planck shooting did not converge for these solutions; "
            "method='henderson' always gives a value"
        )
    return float(shoot(fit.x)[-1])


def correct(V_measured: ArrayLike, V_ljp: ArrayLike) -> Array:
    """The membrane potential V_measured − V_LJP (mV) of a recording whose amplifier was
    zeroed with the pipette in the bath (JPCalc/LJPcalc convention)."""
    return jnp.asarray(V_measured) - jnp.asarray(V_ljp)
