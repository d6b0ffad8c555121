"""E_GABA map: E_Cl and V of a pump–leak neuron over a KCC2 × NKCC1 grid, and sensitivities.

    .venv/bin/python experiments/chloride_egaba.py

Cell: the ``mammalian_neuron`` preset (kinetic Luo–Rudy pump, calibrated pump scale and
z_X) with P_Cl = 0.45·P_K, the Hodgkin & Katz 1949 ratio (a borrowed modelling choice,
as in ``pump_leak_ischemia.py``: the preset itself has no resting Cl permeability).
The strengths g_KCC2, g_NKCC1 span 0 and 1e-5 … 1e-1 mS/cm^2: an exploration grid, not
literature values (no measured strength in these units was traced). E_GABA is E_Cl here
(a GABA_A receptor permeable to Cl- only; its HCO3- permeability is not modelled).

Prints two tables (E_Cl and V, mV) and, at a few grid points, the derivatives of E_Cl
with respect to log10 of each strength and to log10 P_Cl (implicit-function-theorem
tangents), with the machine line, and writes the map of E_Cl and V over the grid to
``experiments/out/chloride_egaba.png``.
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

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from _bench_util import host_info  # noqa: E402

import rpx  # noqa: E402
from rpx.physics.pump_leak import pump_leak  # noqa: E402

COMMAND = ".venv/bin/python experiments/chloride_egaba.py"
STRENGTHS = np.array([0.0, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1])


def main() -> None:
    base = rpx.preset("mammalian_neuron")
    base = base | {"P_Cl": 0.45 * float(base["P_K"])}
    p0 = rpx.prepare(base, "pump_leak")
    gk, gn = np.meshgrid(STRENGTHS, STRENGTHS, indexing="ij")
    shape = gk.shape
    p = {k: jnp.broadcast_to(v, shape) for k, v in p0.items()}
    p |= {"g_KCC2": jnp.asarray(gk), "g_NKCC1": jnp.asarray(gn)}
    solve = jax.jit(pump_leak)
    t0 = time.perf_counter()
    out = jax.block_until_ready(solve(p))
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = jax.block_until_ready(solve(p))
    second = time.perf_counter() - t0
    out = {k: np.asarray(v) for k, v in out.items()}

    print(f"# {COMMAND}")
    print(f"# E_K = {out['E_K'][0, 0]:.1f} mV, E_Na = {out['E_Na'][0, 0]:.1f} mV without "
          "cotransporters; (E_Na + E_K)/2 = "
          f"{(out['E_Na'][0, 0] + out['E_K'][0, 0]) / 2:.1f} mV")
    for name in ("E_Cl", "V"):
        print(f"\n{name} (mV); rows g_KCC2, columns g_NKCC1 (mS/cm^2)\n")
        print("| g_KCC2 \\ g_NKCC1 | " + " | ".join(f"{g:g}" for g in STRENGTHS) + " |")
        print("|---:|" + "---:|" * len(STRENGTHS))
        for i, g in enumerate(STRENGTHS):
            cells = [
                f"{v:.1f}" if s == 0 else f"status {s}"
                for v, s in zip(out[name][i], out["status"][i], strict=True)
            ]
            print(f"| {g:g} | " + " | ".join(cells) + " |")

    # Sensitivities of E_Cl: d E_Cl / d log10(x) = ln(10)·x·dE_Cl/dx.
    jvp = jax.jit(lambda a, b: jax.jvp(pump_leak, (a,), (b,)))
    print("\nSensitivity of E_Cl (mV per decade of each parameter)\n")
    print("| g_KCC2 | g_NKCC1 | E_Cl mV | dE_Cl/dlog10 g_KCC2 | dE_Cl/dlog10 g_NKCC1 | "
          "dE_Cl/dlog10 P_Cl |")
    print("|---:|---:|---:|---:|---:|---:|")
    for i, j in ((3, 3), (4, 2), (2, 4), (4, 4)):
        row = {}
        for name in ("g_KCC2", "g_NKCC1", "P_Cl"):
            tangent = {k: jnp.zeros_like(v) for k, v in p.items()}
            tangent[name] = jnp.log(10.0) * p[name]
            _, d = jvp(p, tangent)
            row[name] = float(d["E_Cl"][i, j])
        print(f"| {STRENGTHS[i]:g} | {STRENGTHS[j]:g} | {out['E_Cl'][i, j]:.1f} | "
              f"{row['g_KCC2']:.2f} | {row['g_NKCC1']:.2f} | {row['P_Cl']:.2f} |")
    print(f"\n# {shape[0] * shape[1]} steady states: first call {first:.1f} s (compiles), "
          f"second {second * 1e3:.1f} ms")
    for line in host_info():
        print(f"# {line}")
    path = save_map(out)
    print(f"# wrote {path}")


def save_map(out: dict[str, np.ndarray]) -> Path:
    """E_Cl and V (mV) over the KCC2 × NKCC1 grid as two heat maps with values written in."""
    here = Path(__file__).resolve().parent
    labels = [f"{g:g}" for g in STRENGTHS]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    for ax, name in zip(axes, ("E_Cl", "V"), strict=True):
        values = np.where(out["status"] == 0, out[name], np.nan)
        im = ax.imshow(values, origin="lower", cmap="viridis")
        for i in range(len(STRENGTHS)):
            for j in range(len(STRENGTHS)):
                text = f"{values[i, j]:.0f}" if np.isfinite(values[i, j]) else "n/a"
                ax.text(j, i, text, ha="center", va="center", color="w", fontsize=8)
        ax.set_xticks(range(len(STRENGTHS)), labels)
        ax.set_yticks(range(len(STRENGTHS)), labels)
        ax.set_xlabel("g_NKCC1 (mS/cm^2)")
        ax.set_ylabel("g_KCC2 (mS/cm^2)")
        title = "E_Cl = E_GABA" if name == "E_Cl" else "membrane potential V"
        ax.set_title(f"{title} (mV)")
        fig.colorbar(im, ax=ax, label=f"{name} (mV)")
    fig.suptitle("Pump-leak neuron: KCC2 x NKCC1 (mammalian_neuron, P_Cl = 0.45 P_K)")
    fig.tight_layout()
    path = here / "out" / "chloride_egaba.png"
    path.parent.mkdir(exist_ok=True)
    fig.savefig(path, dpi=120)
    return path.relative_to(here.parent)


if __name__ == "__main__":
    main()
