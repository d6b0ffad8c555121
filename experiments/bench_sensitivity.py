"""Time per index set: rpx.sensitivity against SALib 1.6 on the same model and N.

The model is the passive GHK voltage of K+, Na+ and Cl- (Hodgkin & Katz 1949) with
eight varied inputs (all six concentrations, P_Na and P_Cl; P_K, T fixed at the
``squid_axon`` preset), each uniform over [x/3, 3x] around its preset value x. These
ranges are a modelling choice for a benchmark, not literature values.

* ``rpx``: ``rpx.sensitivity`` end to end (design, jitted chunked evaluation of the rpx
  model, estimators with ``n_boot`` bootstrap resamples), after one untimed call that
  compiles the kernel. DGSM uses rpx's exact forward-mode gradients.
* ``SALib``: ``SALib.sample`` + a vectorised numpy reference of the same model + the
  matching ``SALib.analyze`` (the same number of bootstrap resamples); DGSM from
  SALib's forward differences (step 1e-6·x), which need N·(D + 1) evaluations.

The numpy reference is checked against rpx at the SALib points (max |ΔV| printed), and
the indices of the two tools are printed side by side (different random designs, so
they agree within their confidence intervals, not to rounding).

``--big`` adds the size named in the issue, rpx alone: Sobol' first and total indices
with N = 2^20 base samples over 12 inputs (the eight above plus P_K, Ca_o, Ca_i over
[x/3, 3x] and T over [0.95 T, 1.05 T], the same kind of modelling choice), i.e.
14.7 million model evaluations.

Usage::

    .venv/bin/python experiments/bench_sensitivity.py            # N = 2^14
    .venv/bin/python experiments/bench_sensitivity.py --log2n 12  # quicker
    .venv/bin/python experiments/bench_sensitivity.py --big      # plus N = 2^20, D = 12
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax
import numpy as np

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))
sys.path.append(str(_HERE.parent))  # run from a source tree without installing rpx

from _bench_util import format_table, host_info  # noqa: E402

import rpx  # noqa: E402

PRESET = "squid_axon"
VARIED = ("K_o", "K_i", "Na_o", "Na_i", "Cl_o", "Cl_i", "P_Na", "P_Cl")
FACTOR = 3.0  # modelling choice: each input uniform over [x/3, 3x] around the preset


def ranges() -> dict[str, tuple[float, float]]:
    p = rpx.preset(PRESET)
    return {k: (p[k] / FACTOR, p[k] * FACTOR) for k in VARIED}


def numpy_ghk(X: np.ndarray) -> np.ndarray:
    """V (mV) = (RT/F) ln((P_K K_o + P_Na Na_o + P_Cl Cl_i)/(P_K K_i + P_Na Na_i + P_Cl Cl_o)).

    Columns of ``X`` in the order of VARIED; P_K and T from the preset (P_Ca = 0 there).
    """
    p = rpx.preset(PRESET)
    c = dict(zip(VARIED, X.T, strict=True))
    num = p["P_K"] * c["K_o"] + c["P_Na"] * c["Na_o"] + c["P_Cl"] * c["Cl_i"]
    den = p["P_K"] * c["K_i"] + c["P_Na"] * c["Na_i"] + c["P_Cl"] * c["Cl_o"]
    return 1e3 * rpx.R * p["T"] / rpx.F * np.log(num / den)


def salib_problem() -> dict:
    r = ranges()
    return {"num_vars": len(r), "names": list(r), "bounds": [list(b) for b in r.values()]}


def run_salib(method: str, n: int, n_boot: int) -> tuple[float, dict, int, float]:
    """(seconds, indices, evaluations, max |numpy - rpx| in mV) of SALib's pipeline."""
    from SALib.analyze import dgsm, morris, sobol
    from SALib.sample import finite_diff
    from SALib.sample import morris as morris_sample
    from SALib.sample import sobol as sobol_sample

    problem = salib_problem()
    t0 = time.perf_counter()
    if method == "sobol":
        X = sobol_sample.sample(problem, n, calc_second_order=False, seed=1)
        Y = numpy_ghk(X)
        S = sobol.analyze(problem, Y, calc_second_order=False, num_resamples=n_boot, seed=1)
    elif method == "morris":
        X = morris_sample.sample(problem, n, num_levels=4, seed=1)
        Y = numpy_ghk(X)
        S = morris.analyze(problem, X, Y, num_levels=4, num_resamples=n_boot, seed=1)
    else:
        X = finite_diff.sample(problem, n, delta=1e-6, seed=1)
        Y = numpy_ghk(X)
        S = dgsm.analyze(problem, X, Y, num_resamples=n_boot, seed=1)
    seconds = time.perf_counter() - t0
    sub = X[:: max(1, len(X) // 4096)]
    fixed = {k: v for k, v in rpx.preset(PRESET).items() if k not in VARIED}
    V = rpx.resting_potential({**fixed, **dict(zip(VARIED, sub.T, strict=True))}, "ghk")
    diff = float(np.max(np.abs(np.asarray(V) - numpy_ghk(sub))))
    return seconds, S, len(X), diff


def run_rpx(method: str, n: int, n_boot: int) -> tuple[float, object]:
    kw = dict(preset=PRESET, n_boot=n_boot, seed=1, outputs=["V"])
    rpx.sensitivity("ghk", ranges(), method, n, **kw)  # compile
    t0 = time.perf_counter()
    ds = rpx.sensitivity("ghk", ranges(), method, n, **kw)
    return time.perf_counter() - t0, ds


def run_big(n_boot: int) -> None:
    p = rpx.preset(PRESET)
    big = {**ranges(), **{k: (p[k] / FACTOR, p[k] * FACTOR) for k in ("P_K", "Ca_o", "Ca_i")},
           "T": (0.95 * p["T"], 1.05 * p["T"])}
    n = 1 << 20
    rpx.sensitivity("ghk", big, "sobol", 1 << 10, preset=PRESET, n_boot=n_boot)  # compile
    t0 = time.perf_counter()
    ds = rpx.sensitivity("ghk", big, "sobol", n, preset=PRESET, n_boot=n_boot, seed=1)
    seconds = time.perf_counter() - t0
    print(f"\nrpx alone, sobol, N = 2^20, D = {len(big)}: {ds.attrs['n_evaluations']:,} "
          f"evaluations in {seconds:.1f} s (n_boot = {n_boot})")
    print(ds[["V_ST", "V_ST_conf"]].to_dataframe()[["V_ST", "V_ST_conf"]].to_string(
        float_format=lambda v: f"{v:.4f}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--log2n", type=int, default=14, help="N = 2^log2n base samples")
    parser.add_argument("--trajectories", type=int, default=1000, help="Morris r")
    parser.add_argument("--n-boot", type=int, default=100)
    parser.add_argument("--big", action="store_true", help="also N = 2^20, D = 12 (rpx)")
    args = parser.parse_args()
    jax.config.update("jax_enable_x64", True)
    n = 1 << args.log2n
    print("\n".join(host_info()))
    print(f"model ghk, D = {len(VARIED)} uniform inputs (x/3..3x around {PRESET}), "
          f"float64, n_boot = {args.n_boot}\n")
    rows, compare = [], []
    for method, size in (("sobol", n), ("morris", args.trajectories), ("dgsm", n)):
        t_rpx, ds = run_rpx(method, size, args.n_boot)
        t_sa, S, evals_sa, diff = run_salib(method, size, args.n_boot)
        key = {"sobol": ("ST", "ST"), "morris": ("mu_star", "mu_star"),
               "dgsm": ("dgsm_bound", "dgsm")}[method]
        rows.append([method, str(size), f"{ds.attrs['n_evaluations']:,}", f"{t_rpx:.3f}",
                     f"{evals_sa:,}", f"{t_sa:.3f}", f"{t_sa / t_rpx:.1f}x", f"{diff:.1e}"])
        compare.append((method, key, ds, S))
    print(format_table(["method", "N or r", "rpx evals", "rpx s", "SALib evals", "SALib s",
                        "speed-up", "max ΔV (mV)"], rows))
    for method, (k_rpx, k_sa), ds, S in compare:
        print(f"\n{method}: rpx {k_rpx} vs SALib {k_sa}")
        for i, name in enumerate(VARIED):
            print(f"  {name:>5}  {float(ds[f'V_{k_rpx}'][i]):9.4f}  {float(S[k_sa][i]):9.4f}")
    if args.big:
        run_big(args.n_boot)


if __name__ == "__main__":
    main()
