"""How many steady states has the pump–leak cell with cotransporters, NCX and PMCA?

The cell of ``rpx.physics.transporters`` (KCC2, NKCC1, Na/Ca exchanger, Ca2+ pump and
leak) is solved by Newton's method on a reduced 4 × 4 system. This script counts its
steady states independently of that solver with
``rpx.physics.uniqueness.count_steady_states``: every steady state lies in proven
bounds [u_lo, u_hi] of u = FV/RT (``voltage_bounds``: outside them the total membrane
current cannot vanish at any state with intracellular concentrations below Osm_o); the
Na, K and Cl balances (at most one solution at fixed u: their Jacobian is a P-matrix)
are followed along u over all of [u_lo, u_hi] by continuation with adaptive steps (at
most ``--h`` in u), and every sign change of the remaining equation H(u) is refined by
bisection. Each set gets a verdict: ``conclusive`` when the bounds are finite, the curve
was followed over all of them, every sign change was refined and the solver's root
(where it has one) is among the zeros.

Design: every preset × 2^LOG2 Sobol' points over the four transporter strengths,
log-uniform over g_KCC2, g_NKCC1 in [1e-6, 1e3] mS/cm^2, I_NCX_max in [1e-2, 1e6]
uA/cm^2 and I_PMCA_max in [1e-4, 1e3] uA/cm^2: the upper ends are those of the parameter
table, the lower ends (the table's domains start at 0, which log-uniform sampling cannot
reach; strengths of 0 are the cell without them, checked by
``experiments/pump_leak_uniqueness.py``) are a choice made here, not literature values.
P_Ca is 1e-4·P_K and, where a preset has no Cl leak, P_Cl = 0.1·P_K: test values as in
``tests/test_transporters.py``, no traced source. Other parameters are the presets'
(defaults where a preset has none).

Usage::

    .venv/bin/python experiments/transporters_uniqueness.py            # 2^6 per preset
    .venv/bin/python experiments/transporters_uniqueness.py --log2 3   # quick
"""

from __future__ import annotations

import argparse
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from scipy.stats import qmc  # noqa: E402

import rpx  # noqa: E402
from rpx.physics.api import fill_defaults  # noqa: E402
from rpx.physics.formulas import thermal_voltage  # noqa: E402
from rpx.physics.pump_leak import FIXED, KINETIC, pump_leak, pump_leak_fixed  # noqa: E402
from rpx.physics.transporters import CALCIUM, EXTRA  # noqa: E402
from rpx.physics.uniqueness import count_steady_states  # noqa: E402

NAMES = tuple(sorted(set(KINETIC) | set(FIXED) | set(EXTRA) | set(CALCIUM)))
# name: (lo, hi), sampled log-uniformly
BOX = {
    "g_KCC2": (1e-6, 1e3),
    "g_NKCC1": (1e-6, 1e3),
    "I_NCX_max": (1e-2, 1e6),
    "I_PMCA_max": (1e-4, 1e3),
}


def design(log2: int, seed: int) -> dict[str, np.ndarray]:
    """Every preset × 2^log2 Sobol' strengths, as flat arrays of one length."""
    x = qmc.Sobol(len(BOX), seed=seed).random_base2(log2)
    strengths = {
        k: np.exp(np.log(lo) + x[:, j] * np.log(hi / lo))
        for j, (k, (lo, hi)) in enumerate(BOX.items())
    }
    rows: dict[str, list] = {k: [] for k in (*NAMES, "preset")}
    for name in rpx.presets():
        base = {k: float(np.asarray(v)) for k, v in fill_defaults(rpx.preset(name), NAMES).items()}
        if base["P_Cl"] == 0:
            base["P_Cl"] = 0.1 * base["P_K"]
        base["P_Ca"] = 1e-4 * base["P_K"]
        m = len(x)
        for k in NAMES:
            rows[k].append(strengths[k] if k in BOX else np.full(m, base[k]))
        rows["preset"].append(np.full(m, name))
    return {k: np.concatenate(v) for k, v in rows.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--log2", type=int, default=6, help="2^LOG2 Sobol' strengths per preset")
    ap.add_argument("--h", type=float, default=0.02, help="largest continuation step in u")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    sets = design(args.log2, args.seed)
    total = len(sets["K_o"])
    print(
        f"{len(rpx.presets())} presets × 2^{args.log2} Sobol' strengths = {total:,} sets per "
        f"pump (seed {args.seed}); continuation steps <= {args.h} in u\n"
    )
    print(
        "| pump | sets | u_lo .. u_hi (mV, widest) | conclusive | 0 steady states "
        "| 1 | >1 | zeros with X_i <= 0 | status 0 | status 0, its root among the zeros "
        "| status ≠ 0, >= 1 steady state | s |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    odd = []
    for pump, kinetic in (("kinetic", True), ("fixed", False)):
        t0 = time.perf_counter()
        p = {k: jnp.asarray(sets[k]) for k in NAMES}
        out = {k: np.asarray(v) for k, v in
               jax.jit(pump_leak if kinetic else pump_leak_fixed)(p).items()}  # fmt: skip
        r = count_steady_states(p, kinetic, out, h_max=args.h)
        dt = time.perf_counter() - t0
        vt = np.asarray(thermal_voltage(p["T"]))
        roots, ok, fine = r["roots"], out["status"] == 0, r["conclusive"]
        lo_mv, hi_mv = np.min(r["u_lo"] * vt), np.max(r["u_hi"] * vt)
        print(
            f"| {pump} | {total:,} | {lo_mv:.0f} .. {hi_mv:.0f} | {np.sum(fine):,} "
            f"| {np.sum(fine & (roots == 0)):,} | {np.sum(fine & (roots == 1)):,} "
            f"| {np.sum(fine & (roots > 1)):,} | {np.sum(r['roots_unphysical'] > 0):,} "
            f"| {np.sum(ok):,} | {np.sum(ok & r['solver_root']):,} "
            f"| {np.sum(~ok & (roots >= 1)):,} | {dt:.0f} |"
        )
        for i in np.flatnonzero(~fine | (roots != 1) | (r["roots_unphysical"] > 0)):
            odd.append((pump, i, r, out["status"][i], out["V"][i], vt[i]))
    print("\nSets that are not 'conclusive, one steady state' or have a zero with X_i <= 0:")
    for pump, i, r, status, V, vt in odd:
        print(
            f"  {pump} {sets['preset'][i]}",
            {k: float(f"{sets[k][i]:.3g}") for k in BOX},
            {"status": int(status), "V_solver": float(f"{V:.4g}")},
            {
                k: (float(f"{r[k][i] * (vt if k.startswith('u_') else 1):.4g}")
                    if r[k].dtype.kind == "f" else int(r[k][i]))
                for k in ("conclusive", "roots", "roots_unphysical", "covered", "refined",
                          "u_lo", "u_hi", "u_down", "u_up", "u_first")
            },  # fmt: skip
        )
    print(f"  ({len(odd)} in all; u_* in mV)")


if __name__ == "__main__":
    main()
