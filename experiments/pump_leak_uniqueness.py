"""How many pump–leak steady states? A root count over a wide parameter box.

Uniqueness of the pump–leak steady state is proven without the pump (see
``rpx.physics.pump_leak``) but not with it. This script counts the sign changes of the
reduced residual −H(u) (``rpx.physics.pump_leak.residual_sign_changes``: 4096 grid points
spanning 40 in u = FV/RT below the bracket's upper end, ~0.25 mV apart at 37 C) for
Sobol' samples of a box that covers and exceeds the presets, for the kinetic
(Luo–Rudy) and the fixed pump, and compares the count with the solver's status.

The box is an exploration range chosen here, not literature values: K_o 1–100 mM,
Na_o 20–500 mM, Cl_o 20–600 mM, P_K 1e-8–1e-5 cm/s, P_Na/P_K 1e-3–1, z_X −2–0,
X_o 0–200 mM, I_pump_max and I_pump_fixed 0.01–100 uA/cm^2, Km_Na_i 2–50 mM,
Km_K_o 0.2–5 mM, T 278–310 K (log-uniform for the positive quantities that span
decades, uniform otherwise).

Usage::

    .venv/bin/python experiments/pump_leak_uniqueness.py            # 2^14 sets per pump
    .venv/bin/python experiments/pump_leak_uniqueness.py --log2 10  # quick
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
from rpx.physics.pump_leak import residual_sign_changes  # noqa: E402

# name: (lo, hi, log-uniform)
BOX = {
    "K_o": (1.0, 100.0, True),
    "Na_o": (20.0, 500.0, True),
    "Cl_o": (20.0, 600.0, True),
    "P_K": (1e-8, 1e-5, True),
    "P_Na_over_P_K": (1e-3, 1.0, True),
    "z_X": (-2.0, 0.0, False),
    "X_o": (0.0, 200.0, False),
    "I_pump": (0.01, 100.0, True),
    "Km_Na_i": (2.0, 50.0, True),
    "Km_K_o": (0.2, 5.0, True),
    "T": (278.0, 310.0, False),
}


def sample(log2: int, seed: int) -> dict[str, np.ndarray]:
    u = qmc.Sobol(len(BOX), seed=seed).random_base2(log2)
    out = {}
    for j, (name, (lo, hi, log)) in enumerate(BOX.items()):
        x = u[:, j]
        out[name] = np.exp(np.log(lo) + x * np.log(hi / lo)) if log else lo + x * (hi - lo)
    out["P_Na"] = out.pop("P_Na_over_P_K") * out["P_K"]
    pump = out.pop("I_pump")
    out["I_pump_max"], out["I_pump_fixed"] = pump, pump
    out["X_content"] = np.full_like(pump, 100.0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--log2", type=int, default=14, help="2^LOG2 Sobol' sets per pump")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=1024, help="sets per jitted call")
    args = ap.parse_args()
    sets = sample(args.log2, args.seed)
    n = len(sets["K_o"])
    print(f"{n:,} Sobol' sets per pump (seed {args.seed}); grid 4096 points over 40 in u\n")
    print("| pump | sets | 0 roots | 1 root | >1 roots | status 0 with 1 root | status 0 | s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for pump, kinetic in (("kinetic", True), ("fixed", False)):
        model = rpx.get_model("pump_leak" if kinetic else "pump_leak_fixed")
        keys = [k for k in sets if k in model.params]
        count = jax.jit(lambda p, k=kinetic: residual_sign_changes(p, k))
        t0 = time.perf_counter()
        counts, status = [], []
        for b in range(0, n, args.batch):
            p = {k: jnp.asarray(sets[k][b : b + args.batch]) for k in keys}
            counts.append(np.asarray(count(p)))
            status.append(np.asarray(rpx.pump_leak_steady_state(p, pump)["status"]))
        dt = time.perf_counter() - t0
        c, s = np.concatenate(counts), np.concatenate(status)
        print(f"| {pump} | {n:,} | {np.sum(c == 0):,} | {np.sum(c == 1):,} | {np.sum(c > 1):,} "
              f"| {np.sum((s == 0) & (c == 1)):,} | {np.sum(s == 0):,} | {dt:.0f} |")
        many = np.flatnonzero(c > 1)
        for i in many[:3]:
            print("   more than one root:", {k: float(f"{sets[k][i]:.4g}") for k in keys},
                  "count", int(c[i]), "status", int(s[i]))


if __name__ == "__main__":
    main()
