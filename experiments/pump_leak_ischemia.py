"""Pump block (ischemia, ouabain): slow depolarisation and swelling of a pump–leak cell.

The neuron of ``_pump_leak_cell.py`` rests at its pump–leak steady state; at t = 60 s
the Na/K pump is scaled to 0 %, 25 % or 50 % of its maximal rate and the cell is
followed for 4 hours with ``rpx.simulate`` (one vmapped run over the three cases).

Usage::

    .venv/bin/python experiments/pump_leak_ischemia.py
    # -> experiments/out/pump_leak_ischemia.png
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

FRACTIONS = np.array([0.0, 0.25, 0.5])


def main() -> None:
    jax.config.update("jax_enable_x64", True)
    cell = neuron() | {"I_pump_max": np.full(FRACTIONS.size, 1.5)}
    t = np.concatenate([[0.0], np.linspace(60.0, 4 * 3600.0, 241)])
    ds = rpx.simulate(cell, t, [rpx.Event(60.0, scale={"I_pump_max": FRACTIONS})])
    assert np.all(ds["status"].values == 0), ds["status"].values
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharex=True)
    hours = ds["time"].values / 3600.0
    for i, frac in enumerate(FRACTIONS):
        label = f"pump at {frac:.0%}"
        axes[0, 0].plot(hours, ds["V"].values[i], label=label)
        axes[0, 1].plot(hours, ds["volume"].values[i], label=label)
        axes[1, 0].plot(hours, ds["Na_i"].values[i], label=label)
        axes[1, 1].plot(hours, ds["K_i"].values[i], label=label)
    for ax, name in zip(axes.flat, ("V", "volume", "Na_i", "K_i"), strict=True):
        ax.set_ylabel(f"{name} ({ds[name].attrs['units']})")
    for ax in axes[1]:
        ax.set_xlabel("time (h)")
    axes[0, 0].legend()
    fig.suptitle("Pump block at t = 60 s: depolarisation and swelling (mammalian neuron)")
    fig.tight_layout()
    out = _HERE / "out" / "pump_leak_ischemia.png"
    out.parent.mkdir(exist_ok=True)
    fig.savefig(out, dpi=120)
    for i, frac in enumerate(FRACTIONS):
        print(
            f"pump {frac:4.0%}: V {ds['V'].values[i, 0]:.1f} -> {ds['V'].values[i, -1]:.1f} mV, "
            f"volume {ds['volume'].values[i, 0]:.3f} -> {ds['volume'].values[i, -1]:.3f}, "
            f"Na_i {ds['Na_i'].values[i, 0]:.1f} -> {ds['Na_i'].values[i, -1]:.1f} mM"
        )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
