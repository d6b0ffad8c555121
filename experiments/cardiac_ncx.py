"""Cardiac Na/Ca exchange: Na+ loading (Na/K pump inhibition) raises Ca_i through the NCX.

    .venv/bin/python experiments/cardiac_ncx.py   # -> experiments/out/cardiac_ncx.png

Cell: the ``cardiac_ventricular_myocyte`` preset (kinetic Luo–Rudy Na/K pump with the
preset's calibrated scale I_pump_max) plus the Luo & Rudy 1994 Na/Ca exchanger and
sarcolemmal Ca2+ pump (their constants from the parameter table). The preset's leaks and
pump are ~15 times weaker than Luo–Rudy's (its I_pump_max is calibrated to its own
leaks), so the exchanger and Ca pump are scaled by the same factor I_pump_max/1.5: they
keep Luo–Rudy's ratios 2000 : 1.15 : 1.5 to the Na/K pump (a modelling choice, not a
measurement). No resting Ca2+ permeability was traced: P_Ca is calibrated (one number)
so that Ca_i = 100 nM, the presets' free cytosolic Ca2+, with the exchanger at that
strength and the pump at 100 %. Na+ loading: the Na/K pump scaled to 100 … 30 % (as by
a cardiac glycoside), for exchanger strengths 0, 0.5, 1 and 2 times the scaled Luo–Rudy
value.

Prints the table (Na_i, Ca_i, V, E_Ca, the exchanger's reversal 3·E_Na − 2·E_Ca and its
current) with the machine line and writes the figure.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import matplotlib  # noqa: E402
import numpy as np  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))
from _bench_util import host_info  # noqa: E402

import rpx  # noqa: E402
from rpx.physics.pump_leak import pump_leak  # noqa: E402

COMMAND = ".venv/bin/python experiments/cardiac_ncx.py"
NCX_FACTORS = np.array([0.0, 0.5, 1.0, 2.0])
PUMP_FRACTIONS = np.array([1.0, 0.8, 0.6, 0.45, 0.35, 0.3])
CA_TARGET = 1e-4  # mM: the presets' free cytosolic Ca2+ (100 nM)


def main() -> None:
    p0 = rpx.prepare(rpx.preset("cardiac_ventricular_myocyte"), "pump_leak")
    scale = float(p0["I_pump_max"]) / 1.5  # Luo–Rudy ratios to this cell's Na/K pump
    ncx_lr, pmca_lr = 2000.0 * scale, 1.15 * scale
    solve = jax.jit(pump_leak)

    # Calibration of P_Ca: Ca_i(P_Ca) increases; a log grid, then one refinement.
    grid = np.geomspace(float(p0["P_K"]) * 1e-8, float(p0["P_K"]), 400)
    t0 = time.perf_counter()
    cal = {k: jnp.broadcast_to(v, grid.shape) for k, v in p0.items()}
    cal |= {"I_NCX_max": jnp.full(grid.shape, ncx_lr), "I_PMCA_max": jnp.full(grid.shape, pmca_lr)}
    for _ in range(2):
        ca = np.asarray(solve(cal | {"P_Ca": jnp.asarray(grid)})["Ca_i"])
        k = int(np.searchsorted(ca, CA_TARGET))
        grid = np.geomspace(grid[max(k - 1, 0)], grid[min(k, grid.size - 1)], 400)
    ca = np.asarray(solve(cal | {"P_Ca": jnp.asarray(grid)})["Ca_i"])
    p_ca = float(np.exp(np.interp(np.log(CA_TARGET), np.log(ca), np.log(grid))))
    first = time.perf_counter() - t0

    nf, pf = np.meshgrid(NCX_FACTORS, PUMP_FRACTIONS, indexing="ij")
    p = {k: jnp.broadcast_to(v, nf.shape) for k, v in p0.items()}
    p |= {
        "P_Ca": jnp.full(nf.shape, p_ca),
        "I_NCX_max": jnp.asarray(nf * ncx_lr),
        "I_PMCA_max": jnp.full(nf.shape, pmca_lr),
        "I_pump_max": jnp.asarray(pf * float(p0["I_pump_max"])),
    }
    t0 = time.perf_counter()
    out = jax.block_until_ready(solve(p))
    second = time.perf_counter() - t0
    out = {k: np.asarray(v) for k, v in out.items()}

    print(f"# {COMMAND}")
    print(f"# cardiac_ventricular_myocyte: I_pump_max = {float(p0['I_pump_max']):.4g} uA/cm^2, "
          f"I_NCX_max (factor 1) = {ncx_lr:.4g} uA/cm^2, I_PMCA_max = {pmca_lr:.4g} uA/cm^2, "
          f"P_Ca = {p_ca:.4g} cm/s (calibrated: Ca_i = 100 nM at factor 1, pump 100 %), "
          f"P_Ca/P_K = {p_ca / float(p0['P_K']):.3g}")
    print("\n| NCX factor | pump % | Na_i mM | Ca_i nM | V mV | E_Ca mV | 3E_Na-2E_Ca mV "
          "| I_NCX uA/cm^2 | I_PMCA uA/cm^2 | status |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    rev = 3 * out["E_Na"] - 2 * out["E_Ca"]
    for i, f in enumerate(NCX_FACTORS):
        for j, frac in enumerate(PUMP_FRACTIONS):
            print(f"| {f:g} | {100 * frac:.0f} | {out['Na_i'][i, j]:.2f} | "
                  f"{1e6 * out['Ca_i'][i, j]:.1f} | {out['V'][i, j]:.2f} | "
                  f"{out['E_Ca'][i, j]:.1f} | {rev[i, j]:.1f} | {out['I_NCX'][i, j]:.3g} | "
                  f"{out['I_PMCA'][i, j]:.3g} | {out['status'][i, j]} |")
    print(f"\n# calibration {first:.1f} s (compiles), {nf.size} steady states "
          f"{second * 1e3:.1f} ms (compiles again: new shape)")
    for line in host_info():
        print(f"# {line}")

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for i, f in enumerate(NCX_FACTORS):
        label = f"NCX x {f:g}"
        axes[0].plot(out["Na_i"][i], 1e6 * out["Ca_i"][i], "o-", label=label)
        axes[1].plot(out["Na_i"][i], out["V"][i], "o-", label=label)
    axes[0].set_yscale("log")
    axes[0].set_ylabel("Ca_i (nM)")
    axes[1].set_ylabel("V (mV)")
    for ax in axes:
        ax.set_xlabel("Na_i (mM), Na/K pump 100 % (left point) to 30 %")
    axes[0].legend()
    fig.suptitle("Cardiac pump-leak cell: Na+ loading and the Na/Ca exchanger")
    fig.tight_layout()
    path = _HERE / "out" / "cardiac_ncx.png"
    path.parent.mkdir(exist_ok=True)
    fig.savefig(path, dpi=120)
    print(f"# wrote {path.relative_to(_HERE.parent)}")


if __name__ == "__main__":
    main()
