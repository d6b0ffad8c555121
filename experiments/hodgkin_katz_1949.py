"""Hodgkin & Katz (1949, J. Physiol. 108:37): squid giant axon, V against [K]o and [Na]o.

Their fit at rest: the constant-field equation with P_K : P_Na : P_Cl = 1 : 0.04 : 0.45.
rpx fits P_Na and P_Cl with P_K fixed at the ``squid_axon`` preset (only ratios matter:
with all three free, rpx.fit warns and holds one fixed).

rpx/data/hodgkin_katz_1949.csv holds no traced measurements (see its header), so this
script compares with the published fit (see experiments/_classic.py). Run:

    .venv/bin/python experiments/hodgkin_katz_1949.py

Writes experiments/out/hodgkin_katz_1949.png and prints the ratios.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from _classic import OUT, bundled, figure, fit_cells, ratio_table, synthetic

import rpx

PRESET = "squid_axon"
PUBLISHED = {"P_Na": 0.04, "P_Cl": 0.45}  # relative to P_K, Hodgkin & Katz 1949
FREE = ["P_Na", "P_Cl"]
NOISE_MV = 1.0  # illustrative measurement noise of the synthetic cells
N_CELLS = 1000


def main() -> None:
    base = rpx.preset(PRESET)
    measured = bundled("hodgkin_katz_1949")
    if len(measured):
        data, label = measured.drop(columns="source"), "measured (rpx/data)"
    else:
        # Illustrative design, not the paper's: 6 K_o in sea-water Na+, then 4 Na_o
        # (Na+ replaced, K_o as in sea water).
        K_o = np.concatenate([np.geomspace(5.0, 200.0, 6), np.full(4, base["K_o"])])
        Na_o = np.concatenate([np.full(6, base["Na_o"]), base["Na_o"] * np.array([1, .5, .33, .2])])
        design = pd.DataFrame({"K_o": K_o, "Na_o": Na_o})
        truth = {k: v * base["P_K"] for k, v in PUBLISHED.items()}
        data = synthetic(design, truth, PRESET, N_CELLS, NOISE_MV, seed=0)
        label = f"synthetic: published fit + {NOISE_MV:g} mV noise"
    ds = fit_cells(data, FREE, PRESET)
    print(f"Hodgkin & Katz 1949, squid axon ({ds.sizes['cell']} cells, {label})")
    print(ratio_table(ds, FREE, PUBLISHED))
    print(f"converged: {int(ds['converged'].sum())}/{ds.sizes['cell']}")

    K_o = np.geomspace(2.0, 400.0, 200)
    curve = pd.DataFrame({"K_o": K_o})
    published = rpx.resting_potential(
        {**base, "K_o": K_o, **{k: v * base["P_K"] for k, v in PUBLISHED.items()}}
    )
    cell = int(ds["cell"][0])
    fitted = rpx.resting_potential(
        {**base, "K_o": K_o, **{k: float(ds[k][0]) for k in FREE}}
    )
    E_K = rpx.nernst(K_o, base["K_i"], 1, base["T"])
    path = OUT / "hodgkin_katz_1949.png"
    one = ds.isel(point=ds["Na_o"].isel(cell=0).values == base["Na_o"])
    figure(
        path, "Hodgkin & Katz 1949: squid axon in sea water, varied [K]o", "K_o", one, cell,
        curve, np.asarray(published), np.asarray(fitted), np.asarray(E_K), label,
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
