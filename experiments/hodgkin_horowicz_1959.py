"""Hodgkin & Horowicz (1959, J. Physiol. 148:127): frog muscle, V vs [K]o at constant [K]o·[Cl]o.

Their fit: the constant-field equation with P_Na/P_K = 0.01 and chloride in equilibrium
(no net Cl current at rest, so P_Cl drops out). rpx fits P_Na with P_K fixed at the
``frog_muscle`` preset (only the ratio matters), P_Cl = 0.

rpx/data/hodgkin_horowicz_1959.csv holds no traced measurements (see its header), so
this script compares with the published fit (see experiments/_classic.py). Run:

    .venv/bin/python experiments/hodgkin_horowicz_1959.py

Writes experiments/out/hodgkin_horowicz_1959.png and prints the ratios.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from _classic import OUT, bundled, figure, fit_cells, ratio_table, synthetic

import rpx

PRESET = "frog_muscle"
PUBLISHED = {"P_Na": 0.01}  # P_Na/P_K, Hodgkin & Horowicz 1959
FREE = ["P_Na"]
NOISE_MV = 1.0  # illustrative measurement noise of the synthetic cells
N_CELLS = 1000


def main() -> None:
    base = rpx.preset(PRESET)
    product = base["K_o"] * base["Cl_o"]  # mM^2, held constant as in the experiments
    measured = bundled("hodgkin_horowicz_1959")
    if len(measured):
        data, label = measured.drop(columns="source"), "measured (rpx/data)"
    else:
        # Illustrative design, not the paper's: 8 K_o from 2.5 to 100 mM.
        K_o = np.geomspace(2.5, 100.0, 8)
        design = pd.DataFrame({"K_o": K_o, "Cl_o": product / K_o})
        truth = {"P_Na": PUBLISHED["P_Na"] * base["P_K"]}
        data = synthetic(design, truth, PRESET, N_CELLS, NOISE_MV, seed=0)
        label = f"synthetic: published fit + {NOISE_MV:g} mV noise"
    ds = fit_cells(data, FREE, PRESET)
    print(f"Hodgkin & Horowicz 1959, frog muscle ({ds.sizes['cell']} cells, {label})")
    print(ratio_table(ds, FREE, PUBLISHED))
    print(f"converged: {int(ds['converged'].sum())}/{ds.sizes['cell']}")

    K_o = np.geomspace(1.0, 200.0, 200)
    curve = pd.DataFrame({"K_o": K_o, "Cl_o": product / K_o})
    conditions = {"K_o": K_o, "Cl_o": curve["Cl_o"].to_numpy()}
    published = rpx.resting_potential(
        {**base, **conditions, "P_Na": PUBLISHED["P_Na"] * base["P_K"]}
    )
    cell = int(ds["cell"][0])
    fitted = rpx.resting_potential({**base, **conditions, "P_Na": float(ds["P_Na"][0])})
    E_K = rpx.nernst(K_o, base["K_i"], 1, base["T"])
    path = OUT / "hodgkin_horowicz_1959.png"
    figure(
        path, "Hodgkin & Horowicz 1959: frog muscle, [K]o·[Cl]o constant", "K_o", ds, cell,
        curve, np.asarray(published), np.asarray(fitted), np.asarray(E_K), label,
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
