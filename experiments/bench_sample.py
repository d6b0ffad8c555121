"""Cells sampled per second: ``rpx.sample`` (one batched call) against a per-cell loop.

Every cell: the passive GHK model of the ``squid_axon`` preset, 10 points (5 external
K+ from 2 to 200 mM at two external Cl- levels), 0.5 mV noise given as ``V_sd``, free
P_Na and P_Cl (P_K fixed), default log-uniform priors. rpx samples all cells in one
call (``--chains`` chains of ``--warmup`` adaptation steps and ``--draws`` NUTS draws
each, float64, diagnostics included); the reference is the same sampler called once
per cell (a per-cell sampler in a Python loop, its one-cell program compiled once),
timed on at most ``--loop-cells`` cells and its rate assumed constant. The table also
gives the largest R-hat, the smallest bulk ESS and the number of divergences over all
cells of the batched run.

Both are timed alike: one untimed call first (compilation: for rpx the first call on all
cells, reported as "first call"; for the loop one cell), then the best of up to 3 calls
within a time budget. With ``--loop-cells`` at least the largest size the loop runs over
the same cells as rpx (cells differ in cost: a cell whose chains need deep NUTS trees
costs many times an easy one, so a rate measured on a few cells is biased).
``--profile`` times instead ``rpx.fit`` with and without ``uncertainty="profile"`` on
the same cells (no per-cell reference; ``experiments/bench_profile.py`` has scipy's).
Run:

    .venv/bin/python experiments/bench_sample.py                  # 1, 100, 1000 cells
    .venv/bin/python experiments/bench_sample.py --sizes 1 100    # quick
    .venv/bin/python experiments/bench_sample.py --profile --sizes 1 100 1000
"""

from __future__ import annotations

import argparse
import time

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _bench_util import best_time, format_table, host_info  # noqa: E402

import rpx  # noqa: E402

FREE = ("P_Na", "P_Cl")
SD = 0.5  # mV
K_O = np.geomspace(2.0, 200.0, 5)  # mM
CL_O = np.array([280.0, 560.0])  # mM


def cells(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` synthetic cells as a long table."""
    K_o, Cl_o = (a.ravel() for a in np.meshgrid(K_O, CL_O))
    rng = np.random.default_rng(seed)
    base = rpx.preset("squid_axon")
    truth = {k: base[k] * np.exp(0.3 * rng.standard_normal(n)) for k in FREE}
    V = np.asarray(
        rpx.resting_potential(
            {"K_o": K_o[None], "Cl_o": Cl_o[None], **{k: v[:, None] for k, v in truth.items()}}
        )
    ) + SD * rng.standard_normal((n, K_o.size))
    return pd.DataFrame(
        {
            "cell": np.repeat(np.arange(n), K_o.size),
            "K_o": np.tile(K_o, n),
            "Cl_o": np.tile(Cl_o, n),
            "V": V.ravel(),
            "V_sd": SD,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 100, 1000])
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--loop-cells", type=int, default=5)
    parser.add_argument("--budget-s", type=float, default=60.0)
    parser.add_argument("--profile", action="store_true", help="time profile intervals")
    args = parser.parse_args()
    print("\n".join(host_info()))
    if args.profile:
        profile_table(args)
        return
    kw = dict(
        preset="squid_axon", free=list(FREE), draws=args.draws, warmup=args.warmup,
        chains=args.chains,
    )
    print(f"settings: {kw}")

    def per_cell(sub: pd.DataFrame) -> None:
        for _, g in sub.groupby("cell", sort=False):
            rpx.sample(g.drop(columns="cell"), **kw)

    rows = []
    for n in args.sizes:
        df = cells(n)
        t0 = time.perf_counter()
        rpx.sample(df, **kw)
        first = time.perf_counter() - t0  # compiles; the timed calls follow at once
        seconds, _, ds = best_time(
            lambda df=df: rpx.sample(df, **kw), repeats=3, budget_s=args.budget_s,
            first_counts=True,
        )
        m = min(n, args.loop_cells)
        sub = df[df["cell"] < m]
        per_cell(sub[sub["cell"] == 0])  # compiles the one-cell program
        best, _, _ = best_time(lambda sub=sub: per_cell(sub), repeats=3, budget_s=args.budget_s,
                               first_counts=True)
        loop_s = best * n / m
        rows.append(
            [
                f"{n:,}", f"{first:.1f}", f"{seconds:.2f}", f"{n / seconds:,.2f}",
                f"{n / loop_s:,.2f}", f"{loop_s / seconds:.1f}",
                f"{float(ds['rhat'].max()):.4f}", f"{float(ds['ess_bulk'].min()):,.0f}",
                f"{int(ds['divergences'].sum())}",
            ]
        )
        print(rows[-1], flush=True)
    print(
        format_table(
            [
                "cells", "first call s", "rpx s", "rpx cells/s", "per-cell loop cells/s",
                "speed-up", "max R-hat", "min bulk ESS", "divergences",
            ],
            rows,
        )
    )


def profile_table(args: argparse.Namespace) -> None:
    """Cells per second of profile-likelihood intervals: rpx.fit with and without them."""
    rows = []
    kw = dict(preset="squid_axon", free=list(FREE), starts=4)
    for n in args.sizes:
        df = cells(n)
        t0 = time.perf_counter()
        rpx.fit(df, uncertainty="profile", **kw)
        first = time.perf_counter() - t0
        plain, _, _ = best_time(lambda df=df: rpx.fit(df, **kw), repeats=3,
                                budget_s=args.budget_s)
        prof, _, ds = best_time(lambda df=df: rpx.fit(df, uncertainty="profile", **kw),
                                repeats=3, budget_s=args.budget_s)
        extra = prof - plain
        rows.append([
            f"{n:,}", f"{first:.1f}", f"{plain:.3f}", f"{prof:.3f}", f"{n / prof:,.1f}",
            f"{n / max(extra, 1e-9):,.1f}",
            f"{int(ds['practically_identifiable'].sum())}/{ds['practically_identifiable'].size}",
        ])
        print(rows[-1], flush=True)
    print(format_table(
        ["cells", "first call s", "fit s", "fit+profile s", "cells/s (fit+profile)",
         "cells/s (profile part)", "closed intervals"],
        rows,
    ))


if __name__ == "__main__":
    main()
