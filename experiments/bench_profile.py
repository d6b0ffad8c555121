"""Profile-likelihood intervals per second: ``rpx.fit(uncertainty="profile")`` against
scipy profile re-fits cell by cell, side by side in one run.

Cells as in ``experiments/bench_sample.py``: passive GHK of the ``squid_axon`` preset, 10
points (5 external K+ from 2 to 200 mM at two external Cl- levels), 0.5 mV noise given
as ``V_sd``, free P_Na and P_Cl (P_K fixed), 95 % intervals.

* rpx: one ``rpx.fit(..., uncertainty="profile")`` call for all cells (fit, Gauss–Newton
  SEs and both profiles of both parameters in one jitted call; see
  ``rpx/analysis/profile.py``), float64; the plain fit is timed too, so that the
  profile's own share shows.
* scipy reference, cell by cell: ``scipy.optimize.least_squares`` (trust-region
  reflective, 2-point finite-difference Jacobian) fits ln P_Na, ln P_Cl from the preset
  values; the Gauss–Newton SE in ln x comes from its Jacobian; then for each parameter
  and side the parameter is fixed on the same grid of SE multiples as rpx's
  (``rpx.analysis.profile.GRID``, capped at ``REACH``), the other re-fitted by
  ``least_squares`` from the previous grid point, and the walk **stops at the first
  point past the threshold** (rpx walks the whole grid); the limit is interpolated in
  the signed root of the deviance, as rpx does. Timed on at most ``--loop-cells`` cells,
  its rate assumed constant.

"max rel diff" compares the closed limits of both (they should agree to the optimiser
tolerances). Both are timed alike: one untimed call first, then the best of up to 3
calls within ``--budget-s``. Run:

    .venv/bin/python experiments/bench_profile.py                  # 1, 100, 1000 cells
    .venv/bin/python experiments/bench_profile.py --sizes 1 100    # quick
"""

from __future__ import annotations

import argparse
import math
import time
import warnings

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _bench_util import best_time, format_table, host_info  # noqa: E402
from bench_sample import CL_O, FREE, K_O, SD, cells  # noqa: E402
from scipy.optimize import least_squares  # noqa: E402
from scipy.stats import chi2  # noqa: E402

import rpx  # noqa: E402
from rpx.analysis.profile import GRID, REACH  # noqa: E402

LEVEL = 0.95


def ghk_numpy(P_Na: float, P_Cl: float, K_o: np.ndarray, Cl_o: np.ndarray) -> np.ndarray:
    """Passive GHK voltage (mV) of K, Na, Cl for the squid preset (P_Ca = 0), numpy."""
    p = rpx.preset("squid_axon")
    RT_F = rpx.R * p["T"] / rpx.F * 1e3
    num = p["P_K"] * K_o + P_Na * p["Na_o"] + P_Cl * p["Cl_i"]
    den = p["P_K"] * p["K_i"] + P_Na * p["Na_i"] + P_Cl * Cl_o
    return RT_F * np.log(num / den)


def scipy_profile(df: pd.DataFrame) -> np.ndarray:
    """(cells, 2 parameters, 2 sides) interval limits in cm/s (NaN: open side)."""
    K_o, Cl_o = (a.ravel() for a in np.meshgrid(K_O, CL_O))
    base = rpx.preset("squid_axon")
    u0 = np.log([base[k] for k in FREE])
    root = math.sqrt(chi2.ppf(LEVEL, 1))
    out = []
    for _, g in df.groupby("cell", sort=False):
        V = g["V"].to_numpy()

        def res(u: np.ndarray, V: np.ndarray = V) -> np.ndarray:
            return (ghk_numpy(*np.exp(u), K_o, Cl_o) - V) / SD

        fit = least_squares(res, u0)
        u_hat, ssr_min = fit.x, 2.0 * fit.cost
        H = fit.jac.T @ fit.jac
        se = np.sqrt(np.diag(np.linalg.inv(H)))
        lims = np.full((2, 2), np.nan)
        for k in range(2):
            other = 1 - k
            step = min(se[k], REACH / GRID[-1])
            for s, sign in enumerate((-1.0, 1.0)):
                u = u_hat.copy()
                t_prev, q_prev = 0.0, 0.0
                for g_ in GRID:
                    t = step * g_
                    u[k] = u_hat[k] + sign * t

                    def res1(v: np.ndarray, u: np.ndarray = u, other: int = other
                             ) -> np.ndarray:
                        w = u.copy()
                        w[other] = v[0]
                        return res(w)

                    r = least_squares(res1, u[other:other + 1])
                    u[other] = r.x[0]
                    q = math.sqrt(max(2.0 * r.cost - ssr_min, 0.0))
                    if q >= root:
                        frac = (root - q_prev) / (q - q_prev) if q > q_prev else 1.0
                        lims[k, s] = math.exp(u_hat[k] + sign * (t_prev + frac * (t - t_prev)))
                        break
                    t_prev, q_prev = t, q
        out.append(lims)
    return np.array(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 100, 1000])
    parser.add_argument("--loop-cells", type=int, default=200)
    parser.add_argument("--budget-s", type=float, default=20.0)
    args = parser.parse_args()
    print("\n".join(host_info()))
    kw = dict(preset="squid_axon", free=list(FREE), starts=4)
    print(f"settings: {kw}, level {LEVEL}")
    rows = []
    for n in args.sizes:
        df = cells(n)
        t0 = time.perf_counter()
        rpx.fit(df, uncertainty="profile", level=LEVEL, **kw)
        first = time.perf_counter() - t0
        plain, _, _ = best_time(lambda df=df: rpx.fit(df, **kw), repeats=3,
                                budget_s=args.budget_s)
        prof, _, ds = best_time(
            lambda df=df: rpx.fit(df, uncertainty="profile", level=LEVEL, **kw),
            repeats=3, budget_s=args.budget_s,
        )
        m = min(n, args.loop_cells)
        sub = df[df["cell"] < m]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref_s, _, ref = best_time(lambda sub=sub: scipy_profile(sub), repeats=3,
                                      budget_s=args.budget_s, first_counts=True)
        ref_s *= n / m
        mine = np.stack([
            np.stack([ds[f"{k}_ci_lo"].values, ds[f"{k}_ci_hi"].values], axis=-1)
            for k in FREE], axis=-2).reshape(-1, 2, 2)[:m]
        closed = np.isfinite(ref) & np.isfinite(mine) & (mine > 0)
        diff = np.max(np.abs(mine[closed] / ref[closed] - 1.0)) if closed.any() else math.nan
        ident = ds["practically_identifiable"].values
        rows.append([
            f"{n:,}", f"{first:.1f}", f"{plain:.3f}", f"{prof:.3f}", f"{n / prof:,.1f}",
            f"{n / ref_s:,.1f}", f"{ref_s / prof:.1f}", f"{diff:.1e}",
            f"{int(ident.sum())}/{ident.size}",
        ])
        print(rows[-1], flush=True)
    print(format_table(
        ["cells", "first call s", "rpx fit s", "rpx fit+profile s", "rpx cells/s",
         "scipy cells/s", "speed-up", "max rel diff", "closed (rpx)"],
        rows,
    ))


if __name__ == "__main__":
    main()
