"""Hyperkalemia: raised external K+ depolarises a pump–leak cell.

The neuron of ``_pump_leak_cell.py`` rests at its pump–leak steady state in 5 mM K_o;
at t = 60 s K_o is raised to 10, 20 or 40 mM (Na_o unchanged, so the bath osmolarity
rises slightly) and the cell is followed for 2 hours. Dashed lines: the algebraic
steady state (model ``pump_leak``) in the new bath, which the time courses approach.

Usage::

    .venv/bin/python experiments/pump_leak_hyperkalemia.py
    # -> experiments/out/pump_leak_hyperkalemia.png
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))
sys.path.append(str(_HERE.parent))

from _pump_leak_cell import neuron  # noqa: E402

import rpx  # noqa: E402

K_O = np.array([10.0, 20.0, 40.0])


def main() -> None:
    jax.config.update("jax_enable_x64", True)
    cell = neuron() | {"K_o": np.full(K_O.size, 5.0)}
    t = np.concatenate([[0.0], np.linspace(60.0, 2 * 3600.0, 241)])
    ds = rpx.simulate(cell, t, [rpx.Event(60.0, set={"K_o": K_O})])
    assert np.all(ds["status"].values == 0), ds["status"].values
    final = rpx.pump_leak_steady_state(neuron() | {"K_o": K_O})
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    minutes = ds["time"].values / 60.0
    for i, k in enumerate(K_O):
        (line,) = axes[0].plot(minutes, ds["V"].values[i], label=f"K_o = {k:g} mM")
        axes[0].axhline(float(final["V"][i]), ls="--", color=line.get_color(), lw=0.8)
        axes[1].plot(minutes, ds["volume"].values[i], color=line.get_color())
        axes[1].axhline(float(final["volume"][i]), ls="--", color=line.get_color(), lw=0.8)
    axes[0].set_ylabel("V (mV)")
    axes[1].set_ylabel("volume (relative)")
    for ax in axes:
        ax.set_xlabel("time (min)")
    axes[0].legend()
    fig.suptitle("K_o raised from 5 mM at t = 60 s (mammalian neuron; dashed: steady state)")
    fig.tight_layout()
    out = _HERE / "out" / "pump_leak_hyperkalemia.png"
    out.parent.mkdir(exist_ok=True)
    fig.savefig(out, dpi=120)
    for i, k in enumerate(K_O):
        print(
            f"K_o {k:4.0f} mM: V {ds['V'].values[i, 0]:.1f} -> {ds['V'].values[i, -1]:.1f} mV "
            f"(steady state {float(final['V'][i]):.1f} mV), volume "
            f"{ds['volume'].values[i, 0]:.3f} -> {ds['volume'].values[i, -1]:.3f}"
        )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
