"""Which ion matters? Total Sobol' indices of the resting potential for every preset cell.

For each preset of ``rpx.presets()`` the twelve concentrations and permeabilities of the
passive GHK model (K+, Na+, Cl-, Ca2+: ``K_o K_i Na_o Na_i Cl_o Cl_i Ca_o Ca_i P_K P_Na
P_Cl P_Ca``) vary together, independently and log-uniformly; T is the preset's. The
result is the share of the variance of V that each input carries, alone or through
interactions (the total index ST, Jansen estimator, Saltelli design, N base samples,
N·14 model evaluations per cell, bootstrap 95% half-widths).

Where the ranges come from -- all of them are modelling choices, not literature values:

* every concentration and every nonzero permeability: log-uniform over [x/3, 3x] around
  the preset value x (``rpx preset NAME`` lists each value with its source);
* a permeability that is 0 in the preset (P_Cl and P_Ca in most cells): log-uniform over
  [P_K/1000, P_K/10], i.e. a minor conductance whose size is unknown.

The passive ``ghk`` model is used because only permeability ratios enter it: the
presets give no cell-specific absolute P_K (see their sources), which the pump model
would need. ``--model ghk_pump`` runs the same analysis with the Luo-Rudy pump.

One command, reproducible from the seed::

    .venv/bin/python experiments/which_ion_matters.py --log2n 13 --seed 0

writes ``experiments/out/which_ion_matters.png`` and ``.md`` (the table) and prints it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax
import numpy as np

_HERE = Path(__file__).resolve().parent
sys.path.append(str(_HERE.parent))  # run from a source tree without installing rpx

import rpx  # noqa: E402

INPUTS = ("K_o", "K_i", "Na_o", "Na_i", "Cl_o", "Cl_i", "Ca_o", "Ca_i",
          "P_K", "P_Na", "P_Cl", "P_Ca")
FACTOR = 3.0  # modelling choice: [x/3, 3x] around a nonzero preset value
MINOR = (1e-3, 1e-1)  # modelling choice: a zero preset permeability spans P_K·[1e-3, 1e-1]


def ranges(cell: str) -> dict[str, tuple[float, float, str]]:
    """Log-uniform ranges of every input for preset ``cell`` (see the module docstring)."""
    p = rpx.preset(cell)
    out = {}
    for name in INPUTS:
        if p[name] > 0:
            out[name] = (p[name] / FACTOR, p[name] * FACTOR, "loguniform")
        else:
            out[name] = (p["P_K"] * MINOR[0], p["P_K"] * MINOR[1], "loguniform")
    return out


def table(results: dict[str, object]) -> str:
    """A markdown table: one row per cell, ST of each input (largest per row in bold)."""
    head = "| cell | V mean ± sd (mV) | " + " | ".join(INPUTS) + " |"
    rule = "|---|---:|" + "---:|" * len(INPUTS)
    lines = [head, rule]
    for cell, ds in results.items():
        st = ds.V_ST.values
        cells = [f"**{v:.2f}**" if v == st.max() else f"{v:.2f}" for v in st]
        v = f"{float(ds.V_mean):.1f} ± {float(np.sqrt(ds.V_variance)):.1f}"
        lines.append(f"| {cell} | {v} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def figure(results: dict[str, object], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    st = np.array([ds.V_ST.values for ds in results.values()])
    fig, ax = plt.subplots(figsize=(11, 0.55 * len(results) + 1.8))
    im = ax.imshow(st, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(INPUTS)), INPUTS, rotation=45, ha="right")
    ax.set_yticks(range(len(results)), list(results))
    for i in range(st.shape[0]):
        for j in range(st.shape[1]):
            ax.text(j, i, f"{st[i, j]:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if st[i, j] < 0.6 else "black")
    fig.colorbar(im, ax=ax, label="total Sobol' index of V")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="ghk", choices=("ghk", "ghk_pump"))
    parser.add_argument("--log2n", type=int, default=13, help="N = 2^log2n base samples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-boot", type=int, default=100)
    parser.add_argument("--out", type=Path, default=_HERE / "out")
    args = parser.parse_args()
    jax.config.update("jax_enable_x64", True)
    args.out.mkdir(parents=True, exist_ok=True)
    n = 1 << args.log2n
    results = {}
    t0 = time.perf_counter()
    for cell in rpx.presets():
        results[cell] = rpx.sensitivity(
            args.model, ranges(cell), "sobol", n, preset=cell, outputs=["V"],
            n_boot=args.n_boot, seed=args.seed,
        )
    seconds = time.perf_counter() - t0
    conf = max(float(ds.V_ST_conf.max()) for ds in results.values())
    evals = sum(int(ds.attrs["n_evaluations"]) for ds in results.values())
    text = table(results)
    caption = (
        f"Total Sobol' indices ST of V, model `{args.model}`, N = 2^{args.log2n} base samples "
        f"({evals:,} evaluations in {seconds:.1f} s), seed {args.seed}; largest bootstrap "
        f"95% half-width of any ST: {conf:.3f}. Inputs log-uniform over [x/3, 3x] around "
        f"each preset value; zero preset permeabilities over P_K·[1e-3, 1e-1] (modelling "
        f"choices)."
    )
    stem = "which_ion_matters" + ("" if args.model == "ghk" else f"_{args.model}")
    (args.out / f"{stem}.md").write_text(text + "\n\n" + caption + "\n")
    figure(results, args.out / f"{stem}.png",
           f"Which ion matters: total Sobol' indices of V ({args.model}, N = 2^{args.log2n})")
    print(text + "\n\n" + caption)
    print(f"\nwrote {args.out / f'{stem}.png'} and {args.out / f'{stem}.md'}")


if __name__ == "__main__":
    main()
