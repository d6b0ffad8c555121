"""The small images of the README's "Plots and notebooks" section, one per figure kind.

    python experiments/readme_figures.py

Writes small stores under experiments/out/readme/ with the rpx commands (sweep, reduce,
sensitivity, fit), draws each with the ``rpx plot`` command printed beside it, and the
time course with ``rpx.plot.timecourse``; the images go to docs/img/. The fit data are
SYNTHETIC (the frog_muscle preset with P_Na/P_K = 0.01, the fit Hodgkin & Horowicz 1959
report, plus 1 mV noise), not measurements. Prints a table: image, command.
"""

from __future__ import annotations

import platform
import shlex
import shutil
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import rpx  # noqa: E402
from rpx import plot  # noqa: E402
from rpx.cli import main  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "experiments" / "out" / "readme"
IMG = ROOT / "docs" / "img"
DPI = "60"

SWEEP = """\
model = "ghk"
preset = "mammalian_neuron"
outputs = ["V", "E_K"]
[[axes]]
name = "K_o"
logspace = [1.0, 100.0, 40]
[[axes]]
name = "P_Na"
logspace = [1e-9, 1e-7, 5]
[[axes]]
name = "Na_i"
linspace = [5.0, 40.0, 4]
[reduce]
marginals = ["V"]
band = [-75.0, -65.0]
[[reduce.histograms]]
name = "V"
range = [-110.0, 0.0]
bins = 44
"""

SENSITIVITY = """\
model = "ghk"
preset = "mammalian_neuron"
outputs = ["V"]
method = "sobol"
n = 512
seed = 0
n_boot = 50
[ranges]
K_o = { lo = 2.5, hi = 10.0, dist = "loguniform" }
K_i = { lo = 70.0, hi = 280.0, dist = "loguniform" }
Na_o = { lo = 72.0, hi = 290.0, dist = "loguniform" }
P_Na = { lo = 2.8e-9, hi = 1.1e-8, dist = "loguniform" }
"""


def rel(p: Path) -> str:
    return str(p.relative_to(ROOT))


def run(argv: list[str], table: list[tuple[str, str]], image: str | None = None) -> None:
    cmd = "rpx " + " ".join(shlex.quote(a) for a in argv)
    code = main(argv)
    if code != 0:
        raise SystemExit(f"failed ({code}): {cmd}")
    if image:
        table.append((image, cmd))


def synthetic_cells() -> pd.DataFrame:
    """SYNTHETIC frog-muscle cells: GHK at P_Na/P_K = 0.01 with K_o·Cl_o constant + 1 mV."""
    p = rpx.preset("frog_muscle")
    K = np.geomspace(2.5, 100.0, 8)
    Cl = p["K_o"] * p["Cl_o"] / K
    rng = np.random.default_rng(1)
    rows = []
    for c, ratio in enumerate([0.008, 0.01, 0.013]):
        V = np.asarray(rpx.resting_potential({**p, "K_o": K, "Cl_o": Cl,
                                              "P_Na": ratio * p["P_K"]}))
        rows.append(pd.DataFrame({"cell": f"cell{c}", "K_o": K, "Cl_o": Cl,
                                  "V": V + rng.standard_normal(K.size), "V_sd": 1.0}))
    return pd.concat(rows)


def main_() -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    IMG.mkdir(parents=True, exist_ok=True)
    table: list[tuple[str, str]] = []
    spec = OUT / "cube.toml"
    spec.write_text(SWEEP)
    cube, red = OUT / "cube.zarr", OUT / "reduced.zarr"
    run(["sweep", rel(spec), "-o", rel(cube), "--quiet"], table)
    run(["plot", rel(cube), "--x", "K_o", "--hue", "P_Na", "--at", "Na_i=10", "--dpi", DPI,
         "-o", rel(IMG / "lines.png")], table, "lines.png")
    run(["plot", rel(cube), "--x", "K_o", "--y", "P_Na", "--at", "Na_i=10", "--band", "-75",
         "-65", "--dpi", DPI, "-o", rel(IMG / "map.png")], table, "map.png")
    run(["reduce", rel(spec), "-o", rel(red), "--quiet"], table)
    run(["plot", rel(red), "--dpi", DPI, "-o", rel(IMG / "histogram.png")], table,
        "histogram.png")
    run(["plot", rel(red), "--x", "K_o", "--dpi", DPI, "-o", rel(IMG / "marginal.png")], table,
        "marginal.png")
    sspec, sens = OUT / "sensitivity.toml", OUT / "sens.zarr"
    sspec.write_text(SENSITIVITY)
    run(["sensitivity", rel(sspec), "--second-order", "-o", rel(sens)], table)
    run(["plot", rel(sens), "--dpi", DPI, "-o", rel(IMG / "sensitivity.png")], table,
        "sensitivity.png")
    data, fit = OUT / "synthetic_cells.csv", OUT / "fit.zarr"
    synthetic_cells().to_csv(data, index=False)
    run(["fit", rel(data), "--free", "P_Na", "--preset", "frog_muscle", "--starts", "2",
         "-o", rel(fit)], table)
    run(["plot", rel(fit), "--x", "K_o", "--dpi", DPI, "-o", rel(IMG / "fit.png")], table,
        "fit.png")
    # time course: Python only (rpx.simulate returns a Dataset)
    cell = rpx.preset("mammalian_neuron") | {"P_Cl": 0.45 * rpx.preset("mammalian_neuron")["P_K"]}
    fractions = np.array([0.0, 0.5])
    t = np.concatenate([[0.0], np.linspace(60.0, 4 * 3600.0, 49)])
    ds = rpx.simulate(cell | {"I_pump_max": np.full(2, 1.5)}, t,
                      [rpx.Event(60.0, scale={"I_pump_max": fractions})])
    ds = ds.assign_coords(pump_fraction=("set", fractions, {"units": "1",
                                                            "long_name": "pump rate left"}))
    fig = plot.timecourse(ds, ["V", "volume", "Na_i", "K_i"])
    fig.savefig(IMG / "timecourse.png", dpi=int(DPI))
    table.append(("timecourse.png", "rpx.plot.timecourse(rpx.simulate(...)) in "
                                    "experiments/readme_figures.py"))
    print(f"machine: {platform.machine()}, {platform.system()}, Python "
          f"{sys.version.split()[0]}, rpx {rpx.__version__}")
    print("command: python experiments/readme_figures.py")
    print(f"{'image':<24} {'bytes':>7}  command")
    for image, cmd in table:
        print(f"{'docs/img/' + image:<24} {(IMG / image).stat().st_size:>7}  {cmd}")


if __name__ == "__main__":
    main_()
