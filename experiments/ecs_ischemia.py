"""Ischemia with a finite extracellular space: pump block, K+ accumulation, swelling.

    .venv/bin/python experiments/ecs_ischemia.py   # -> experiments/out/ecs_ischemia.png

Cell: the ``mammalian_neuron`` preset with P_Cl = 0.45·P_K (the Hodgkin & Katz 1949
ratio, a borrowed modelling choice as in ``pump_leak_ischemia.py``), default pump, red-cell
P_f and volume/area. At t = 60 s the Na/K pump is blocked (scaled to 0 % or 25 %) and
the cell is followed for 4 h, once in an infinite bath and once with a finite
extracellular space of 0.25 cell volumes (``ecs_ratio``): an extracellular volume
fraction of 0.2 of the tissue, the typical value of brain extracellular space measured
with tetramethylammonium (Syková & Nicholson 2008, Physiol. Rev. 88:1277, abstract).
The space starts with the bath's concentrations; K+, Na+, Cl− and water then move
between cell and space with total amounts and volume conserved (one cell and its share
of the space: no blood flow, no glia, no diffusion to distant tissue).

Prints V, K_o, Na_i, cell and extracellular volume before and after and writes the figure.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import matplotlib  # noqa: E402
import numpy as np  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))
from _bench_util import host_info  # noqa: E402

import rpx  # noqa: E402

COMMAND = ".venv/bin/python experiments/ecs_ischemia.py"
PUMP = np.array([0.0, 0.0, 0.25, 0.25])
ECS = np.array([0.0, 0.25, 0.0, 0.25])  # 0 = infinite bath


def main() -> None:
    base = {k: float(np.asarray(v)) for k, v in rpx.preset("mammalian_neuron").items()}
    cell = {k: np.full(PUMP.size, v) for k, v in base.items()}
    cell |= {"P_Cl": np.full(PUMP.size, 0.45 * base["P_K"]), "ecs_ratio": ECS}
    t = np.concatenate([[0.0], np.linspace(60.0, 4 * 3600.0, 241)])
    ds = rpx.simulate(cell, t, [rpx.Event(60.0, scale={"I_pump_max": PUMP})])
    print(f"# {COMMAND}")
    print("\n| pump | extracellular space | status | V mV (0 → 4 h) | K_o mM | Na_i mM "
          "| cell volume | extracellular volume |")
    print("|---:|---|---:|---|---|---|---|---|")
    for i in range(PUMP.size):
        space = "infinite bath" if ECS[i] == 0 else f"{ECS[i]:g} cell volumes"
        def span(k: str, fmt: str = ".1f", i: int = i) -> str:
            v = ds[k].values[i]
            return f"{v[0]:{fmt}} → {v[-1]:{fmt}}"
        vol_ecs = "∞" if ECS[i] == 0 else span("vol_ecs", ".3f")
        print(f"| {PUMP[i]:.0%} | {space} | {int(ds['status'].values[i])} | {span('V')} | "
              f"{span('K_ecs', '.2f')} | {span('Na_i')} | {span('volume', '.3f')} | "
              f"{vol_ecs} |")
    for line in host_info():
        print(f"# {line}")

    hours = ds["time"].values / 3600.0
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharex=True)
    for i in range(PUMP.size):
        space = "infinite bath" if ECS[i] == 0 else f"ECS {ECS[i]:g} cell vol."
        style = "-" if ECS[i] > 0 else "--"
        label = f"pump {PUMP[i]:.0%}, {space}"
        axes[0, 0].plot(hours, ds["V"].values[i], style, label=label)
        axes[0, 1].plot(hours, ds["K_ecs"].values[i], style, label=label)
        axes[1, 0].plot(hours, ds["volume"].values[i], style, label=label)
        axes[1, 1].plot(hours, ds["Na_i"].values[i], style, label=label)
    for ax, name in zip(axes.flat, ("V", "K_ecs", "volume", "Na_i"), strict=True):
        ax.set_ylabel(f"{name} ({ds[name].attrs['units']})")
    for ax in axes[1]:
        ax.set_xlabel("time (h)")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle("Pump block at t = 60 s: finite extracellular space vs infinite bath")
    fig.tight_layout()
    path = _HERE / "out" / "ecs_ischemia.png"
    path.parent.mkdir(exist_ok=True)
    fig.savefig(path, dpi=120)
    print(f"# wrote {path.relative_to(_HERE.parent)}")


if __name__ == "__main__":
    main()
