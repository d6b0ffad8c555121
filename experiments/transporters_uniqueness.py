"""How many steady states has the pump–leak cell with cotransporters, NCX and PMCA?

The cell of ``rpx.physics.transporters`` (KCC2, NKCC1, Na/Ca exchanger, Ca2+ pump and
leak) is solved by Newton's method on a reduced 4 × 4 system. This script counts its
steady states independently of that solver with
``rpx.physics.pump_leak.transporter_sign_changes``: at each of ``--n`` grid points in
u = FV/RT ∈ [−16, 6] (about −430 to +160 mV at 37 C) the Na, K and Cl balances (which
have at most one solution at fixed u: their Jacobian is a P-matrix, see that function's
docstring) are solved, and the sign changes of the remaining equation H(u) along the
grid are the steady states. The count is compared with the solver's status and root.

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

    .venv/bin/python experiments/transporters_uniqueness.py                 # 2^8 per preset
    .venv/bin/python experiments/transporters_uniqueness.py --log2 4 --n 256  # quick
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
from rpx.physics.pump_leak import (  # noqa: E402
    FIXED,
    KINETIC,
    pump_leak,
    pump_leak_fixed,
    transporter_sign_changes,
)
from rpx.physics.transporters import CALCIUM, EXTRA  # noqa: E402

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
    ap.add_argument("--log2", type=int, default=8, help="2^LOG2 Sobol' strengths per preset")
    ap.add_argument("--n", type=int, default=1024, help="grid points in u")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=64, help="sets per jitted call")
    args = ap.parse_args()
    sets = design(args.log2, args.seed)
    total = len(sets["K_o"])
    step = 22.0 / (args.n - 1)
    print(
        f"{len(rpx.presets())} presets × 2^{args.log2} Sobol' strengths = {total:,} sets per "
        f"pump (seed {args.seed}); grid {args.n} points over u in [-16, 6] (step {step:.3f})\n"
    )
    print(
        "| pump | sets | 0 roots | 1 root | >1 roots | sign change across unsolved points "
        "| status 0 | status 0, 1 root at the solver's V | status 0, 0 roots "
        "| status ≠ 0, >= 1 root | s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    odd = []
    for pump, kinetic in (("kinetic", True), ("fixed", False)):
        count = jax.jit(lambda p, k=kinetic: transporter_sign_changes(p, k, n=args.n))
        solve = jax.jit(pump_leak if kinetic else pump_leak_fixed)
        t0 = time.perf_counter()
        parts: dict[str, list] = {}
        for b in range(0, total, args.batch):
            p = {k: jnp.asarray(sets[k][b : b + args.batch]) for k in NAMES}
            c = count(p)
            out = solve(p)
            u_sol = out["V"] / thermal_voltage(p["T"])
            for k, v in (*c.items(), ("status", out["status"]), ("u_sol", u_sol)):
                parts.setdefault(k, []).append(np.asarray(v))
        dt = time.perf_counter() - t0
        r = {k: np.concatenate(v) for k, v in parts.items()}
        roots, ok = r["roots"], r["status"] == 0
        at_root = ok & (roots == 1) & (np.abs(r["u_first"] - r["u_sol"]) <= step)
        print(
            f"| {pump} | {total:,} | {np.sum(roots == 0):,} | {np.sum(roots == 1):,} "
            f"| {np.sum(roots > 1):,} | {np.sum(r['gaps'] > 0):,} | {np.sum(ok):,} "
            f"| {np.sum(at_root):,} | {np.sum(ok & (roots == 0)):,} "
            f"| {np.sum(~ok & (roots >= 1)):,} | {dt:.0f} |"
        )
        flag = (roots != 1) | (r["gaps"] > 0) | (ok != at_root) | (r["interior"] > 0)
        flag = flag | (r["mismatch"] > 0)
        for i in np.flatnonzero(flag):
            odd.append((pump, i, r))
    print(
        "\nSets that are not 'one root, solved there, every point between solved' (first 12 "
        "per pump):"
    )
    shown = {"kinetic": 0, "fixed": 0}
    for pump, i, r in odd:
        shown[pump] += 1
        if shown[pump] > 12:
            continue
        print(
            f"  {pump} {sets['preset'][i]}",
            {k: float(f"{sets[k][i]:.3g}") for k in BOX},
            {
                k: (float(f"{r[k][i]:.4g}") if r[k].dtype.kind == "f" else int(r[k][i]))
                for k in ("roots", "gaps", "interior", "mismatch", "status", "u_first", "u_sol")
            },
        )
    print(f"  ({len(odd)} in all)")


if __name__ == "__main__":
    main()
