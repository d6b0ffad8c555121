"""At hand: how long one question takes, from the command line and from Python.

One table, each figure the best of several runs, ratios measured side by side in this
run (issue "At hand"):

* ``import rpx``, ``rpx --help``, ``rpx calc`` with an empty compilation cache (cold)
  and with a warm one, a one-line bad-input error: each in a new process, wall time;
* ``rpx.resting_potential(params, model="ghk")`` on float32 numpy arrays (``K_o``,
  ``P_Na``, ``Na_i`` of N points; the rest scalars of the default preset) against the
  same GHK formula in numpy, at 1e4, 1e6, 1e7 points; the same call inside the user's
  own ``jax.jit`` on device arrays;
* ``rpx.gradients`` of ``ghk`` with respect to all 13 parameters (V is computed inside)
  against V and the 13 hand-derived derivatives in numpy (implicit differentiation of
  the GHK quadratic, checked against rpx to float32 rounding);
* ``rpx.gradients({"K_o": [5, 10]}, model="ghk_pump", wrt=["K_o", "P_Na"], log10=True)``
  in a new process (cold, warm cache) and repeated in one process;
* ``rpx.fit`` of 1 / 1,000 / 10,000 cells against ``scipy.optimize.least_squares`` cell
  by cell (the cells and the scipy reference of ``bench_fit.py``; ``rpx.fit`` as it is);
  the first fit of one cell in a new process (empty and warm cache), with Gauss–Newton
  standard errors and with profile-likelihood intervals, and the first ``rpx.sample``
  of one cell (NUTS, 4 chains);
* ``rpx.simulate``: the first call in a new process with an empty cache and with a warm
  one (``bench_simulate.py``'s cell, one parameter set, no events).

Targets (2-core CPU): --help <= 0.5 s, calc warm <= 1.5 s and cold <= 8 s, eager >= 1.5x
numpy at 1e6-1e7 points, under jit >= 5x, gradients >= 2x, fit 1 cell >= 1x and 1,000
cells >= 20x scipy, simulate warm <= 5 s.

    .venv/bin/python experiments/bench_at_hand.py            # the full table
    .venv/bin/python experiments/bench_at_hand.py --quick    # small sizes, fewer repeats
    .venv/bin/python experiments/bench_at_hand.py --skip eager gradients fit simulate
                                                  # the command-line rows only

The command-line rows run with their own cache directory (``RPX_CACHE_DIR``): "cold" is
an empty one (nothing compiled, nothing traced), "warm" one that a first run filled
(compiled programs in ``xla/``, traced ones in ``exported/``; see ``rpx._config``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from _bench_util import best_time, format_table, host_info  # noqa: E402

import rpx  # noqa: E402

PY = sys.executable
RPX = [PY, "-m", "rpx"]
MV_PER_V = 1e3
FREE = ["P_Na", "P_Cl"]  # the free parameters of bench_fit.py's cells


# ------------------------------------------------------------------ processes
def _env(cache: str | None) -> dict[str, str]:
    env = {**os.environ}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    env["RPX_CACHE_DIR"] = cache if cache is not None else "off"
    return env


def process_time(cmd: list[str], cache: str | None, repeats: int,
                 fresh_cache: bool = False) -> str:
    """Best wall time of a new process running ``cmd`` and the CPU time (user + system)
    of that run, as text; with ``fresh_cache`` every run gets its own empty cache
    directory (a cold start). CPU time is what a busy machine changes least."""
    best, cpu = float("inf"), float("nan")
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            where = tmp if fresh_cache else cache
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            subprocess.run(cmd, env=_env(where), capture_output=True, check=False, timeout=900)
            wall = time.perf_counter() - t0
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if wall < best:
                best = wall
                cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return f"{best:.2f} s (CPU {cpu:.2f} s)"


def process_output(code: str, cache: str | None) -> dict:
    """Run Python ``code`` in a new process; it prints one JSON object last."""
    proc = subprocess.run([PY, "-c", code], env=_env(cache), capture_output=True, text=True,
                          check=True, timeout=1800)
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------- numpy reference
def np_ghk(p: Mapping[str, np.ndarray]) -> np.ndarray:
    """Passive GHK voltage (mV): the positive root x = e^(-FV/RT) of a x^2 + b x - c."""
    A_out = p["P_K"] * p["K_o"] + p["P_Na"] * p["Na_o"] + p["P_Cl"] * p["Cl_i"]
    A_in = p["P_K"] * p["K_i"] + p["P_Na"] * p["Na_i"] + p["P_Cl"] * p["Cl_o"]
    a = A_out + 4.0 * p["P_Ca"] * p["Ca_o"]
    c = A_in + 4.0 * p["P_Ca"] * p["Ca_i"]
    b = A_out - A_in
    s = np.sqrt(b * b + 4.0 * a * c)
    x = np.where(b >= 0, 2.0 * c / (np.abs(b) + s), (np.abs(b) + s) / (2.0 * a))
    phi = (rpx.R * MV_PER_V / rpx.F) * p["T"]
    return -phi * np.log(x)


def np_ghk_and_gradients(p: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """V and its 13 partial derivatives, hand-derived: G(x) = a x^2 + b x - c = 0 with
    V = -phi ln x gives dV/dtheta = (phi / (x G'(x))) dG/dtheta, and dV/dT = V/T."""
    A_out = p["P_K"] * p["K_o"] + p["P_Na"] * p["Na_o"] + p["P_Cl"] * p["Cl_i"]
    A_in = p["P_K"] * p["K_i"] + p["P_Na"] * p["Na_i"] + p["P_Cl"] * p["Cl_o"]
    a = A_out + 4.0 * p["P_Ca"] * p["Ca_o"]
    c = A_in + 4.0 * p["P_Ca"] * p["Ca_i"]
    b = A_out - A_in
    s = np.sqrt(b * b + 4.0 * a * c)
    x = np.where(b >= 0, 2.0 * c / (np.abs(b) + s), (np.abs(b) + s) / (2.0 * a))
    phi = (rpx.R * MV_PER_V / rpx.F) * p["T"]
    V = -phi * np.log(x)
    k = phi / (x * (2.0 * a * x + b))
    g_out = k * (x * x + x)  # dV/dA_out
    g_in = -k * (x + 1.0)  # dV/dA_in
    g_ca_out, g_ca_in = 4.0 * k * x * x, -4.0 * k
    return {
        "V": V,
        "dV_dK_o": g_out * p["P_K"], "dV_dK_i": g_in * p["P_K"],
        "dV_dNa_o": g_out * p["P_Na"], "dV_dNa_i": g_in * p["P_Na"],
        "dV_dCl_i": g_out * p["P_Cl"], "dV_dCl_o": g_in * p["P_Cl"],
        "dV_dCa_o": g_ca_out * p["P_Ca"], "dV_dCa_i": g_ca_in * p["P_Ca"],
        "dV_dP_K": g_out * p["K_o"] + g_in * p["K_i"],
        "dV_dP_Na": g_out * p["Na_o"] + g_in * p["Na_i"],
        "dV_dP_Cl": g_out * p["Cl_i"] + g_in * p["Cl_o"],
        "dV_dP_Ca": g_ca_out * p["Ca_o"] + g_ca_in * p["Ca_i"],
        "dV_dT": V / p["T"],
    }  # fmt: skip


def inputs(n: int, seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(swept float32 arrays of n points, every ghk parameter in float32 for numpy)."""
    rng = np.random.default_rng(seed)
    base = rpx.preset("default")
    swept = {
        "K_o": (base["K_o"] * np.exp(rng.uniform(-2, 2, n))).astype(np.float32),
        "P_Na": (base["P_Na"] * np.exp(rng.uniform(-2, 2, n))).astype(np.float32),
        "Na_i": (base["Na_i"] * np.exp(rng.uniform(-1, 0.4, n))).astype(np.float32),
    }
    full = {k: np.float32(base[k]) for k in rpx.get_model("ghk").params} | swept
    return swept, full


# ---------------------------------------------------------------------- rows
def ratio(numpy_s: float, rpx_s: float) -> str:
    return f"{numpy_s / rpx_s:.2f}x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e4, 1e6, 1e7])
    parser.add_argument("--fit-sizes", type=int, nargs="+", default=[1, 1000, 10000])
    parser.add_argument("--skip", nargs="*", default=[],
                        choices=["cli", "eager", "gradients", "fit", "simulate"])
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.fit_sizes = [1e4, 1e5], [1, 100]
    reps = 2 if args.quick else 5
    print("\n".join(host_info()))
    print(f"command: {' '.join([Path(PY).name, *sys.argv])}\n", flush=True)
    rows: list[list[str]] = []

    def row(what: str, command: str, value: str, ref: str = "", r: str = "") -> None:
        rows.append([what, command, value, ref, r])
        print(" | ".join(rows[-1]), flush=True)

    cache = tempfile.mkdtemp(prefix="rpx-bench-cache-")
    calc = ["calc", "--preset", "mammalian_neuron", "--K_o", "10"]
    if "cli" not in args.skip:
        t = process_time([PY, "-c", "import rpx"], cache, reps)
        row("import rpx", "python -c 'import rpx'", t)
        t = process_time([*RPX, "--help"], cache, reps)
        row("rpx --help", "rpx --help", t)
        t = process_time([*RPX, *calc], None, 2 if args.quick else 3, fresh_cache=True)
        row("rpx calc, cold (empty cache)", "rpx " + " ".join(calc), t)
        process_time([*RPX, *calc], cache, 1)  # fills the cache
        t = process_time([*RPX, *calc], cache, reps)
        row("rpx calc, warm cache", "rpx " + " ".join(calc), t)
        t = process_time([*RPX, "calc", "--K_o", "-5"], cache, reps)
        row("bad input (exit 2)", "rpx calc --K_o -5", t)

    if "eager" not in args.skip:
        for n in (int(s) for s in args.sizes):
            swept, full = inputs(n)
            budget = 5.0 if n >= 1e6 else 2.0
            t_np, _, v_np = best_time(lambda full=full: np_ghk(full), repeats=reps,
                                      budget_s=budget, first_counts=True)
            t_rpx, _, v = best_time(
                lambda swept=swept: rpx.resting_potential(swept, model="ghk"),
                repeats=reps, budget_s=budget,
            )
            err = float(np.max(np.abs(np.asarray(v) - v_np)))
            row(f"resting_potential ghk, {n:.0e} pts (max abs dV {err:.1e} mV)",
                "rpx.resting_potential(numpy float32)", f"{n / t_rpx:.2e} pts/s",
                f"{n / t_np:.2e} pts/s", ratio(t_np, t_rpx))
            dev = {k: jnp.asarray(x) for k, x in swept.items()}
            user = jax.jit(lambda d: rpx.resting_potential(d, model="ghk"))
            t_jit, _, _ = best_time(lambda dev=dev, user=user: user(dev), repeats=reps,
                                    budget_s=budget)
            row(f"same, inside the user's jax.jit, {n:.0e} pts",
                "jax.jit(lambda d: rpx.resting_potential(d))", f"{n / t_jit:.2e} pts/s",
                f"{n / t_np:.2e} pts/s", ratio(t_np, t_jit))
            fn = rpx.get_model("ghk").fn
            bare = jax.jit(lambda d, fn=fn: fn(d)["V"])
            dev_full = {k: jnp.asarray(x) for k, x in full.items()}
            t_bare, _, _ = best_time(lambda d=dev_full, bare=bare: bare(d), repeats=reps,
                                     budget_s=budget)
            row(f"bare model function under jax.jit (no checks), {n:.0e} pts",
                "jax.jit(get_model('ghk').fn)", f"{n / t_bare:.2e} pts/s",
                f"{n / t_np:.2e} pts/s", ratio(t_np, t_bare))
            del dev, dev_full

    if "gradients" not in args.skip:
        n = int(max(args.sizes))
        swept, full = inputs(n)
        t_np, _, ref = best_time(lambda: np_ghk_and_gradients(full), repeats=reps,
                                 budget_s=5.0, first_counts=True)
        t_g, _, g = best_time(lambda: rpx.gradients(swept, model="ghk"), repeats=reps,
                              budget_s=5.0)
        # largest difference relative to each derivative's largest magnitude (pointwise
        # relative differences blow up where a derivative crosses zero)
        worst = max(
            float(np.max(np.abs(np.asarray(g[k]) - ref[k])) / np.max(np.abs(ref[k])))
            for k in g if np.any(ref[k] != 0)
        )
        row(f"V + all 13 gradients, ghk, {n:.0e} pts (max scaled diff {worst:.0e})",
            "rpx.gradients(numpy float32, model='ghk')", f"{n / t_g:.2e} pts/s",
            f"{n / t_np:.2e} pts/s", ratio(t_np, t_g))
        code = (
            "import time; t0 = time.perf_counter(); import rpx, json, numpy as np;"
            "g = rpx.gradients({'K_o': [5.0, 10.0]}, model='ghk_pump', wrt=['K_o', 'P_Na'],"
            " log10=True); np.asarray(g['dV_dK_o']);"
            "print(json.dumps({'s': time.perf_counter() - t0, 'cpu': time.process_time()}))"
        )
        with tempfile.TemporaryDirectory() as tmp:
            cold = process_output(code, tmp)
            warm = min((process_output(code, tmp) for _ in range(2)), key=lambda r: r["s"])
        again, _, _ = best_time(
            lambda: rpx.gradients({"K_o": [5.0, 10.0]}, model="ghk_pump",
                                  wrt=["K_o", "P_Na"], log10=True),
            repeats=reps, budget_s=2.0,
        )
        cmd = "rpx.gradients({'K_o': [5, 10]}, model='ghk_pump', wrt=['K_o','P_Na'], log10=True)"
        row("gradients ghk_pump: new process, empty cache", cmd,
            f"{cold['s']:.2f} s (CPU {cold['cpu']:.2f} s)")
        row("gradients ghk_pump: new process, warm cache", cmd,
            f"{warm['s']:.2f} s (CPU {warm['cpu']:.2f} s)")
        row("gradients ghk_pump: again in the same process", cmd, f"{1e3 * again:.1f} ms")

    if "fit" not in args.skip:
        for n in args.fit_sizes:
            code = FIT.format(here=str(_HERE), n=n, scipy_cells=min(n, 200 if n > 1 else 1),
                              repeats=200 if n == 1 else 3)
            r = process_output(code, cache)
            row(f"fit {n:,} cells (max rel diff {r['diff']:.0e})",
                "rpx.fit(df, free=['P_Na','P_Cl'])", f"{n / r['rpx']:,.0f} cells/s",
                f"{n / r['scipy']:,.0f} cells/s", ratio(r["scipy"], r["rpx"]))
        first_calls = [
            ("fit 1 cell, first call, new process, {}", f"rpx.fit(df, free={FREE}, "
             f"uncertainty='{u}')") for u in ("gauss_newton", "profile")
        ] + [("sample 1 cell, first call, new process, {}",
              f"rpx.sample(df, free={FREE}, draws=300, warmup=300, chains=4, seed=0)")]
        for what, call in first_calls:
            code = FIRST_CALL.format(here=str(_HERE), call=call)
            with tempfile.TemporaryDirectory() as tmp:
                cold = process_output(code, tmp)
                warm = min((process_output(code, tmp) for _ in range(2)),
                           key=lambda r: r["first"])
            for label, r in (("empty cache", cold), ("warm cache", warm)):
                row(what.format(label), call, f"{r['first']:.2f} s (CPU {r['cpu']:.2f} s)")

    if "simulate" not in args.skip:
        code = SIMULATE.format(here=str(_HERE))
        with tempfile.TemporaryDirectory() as tmp:
            cold = process_output(code, tmp)
            warm = min((process_output(code, tmp) for _ in range(2)), key=lambda r: r["first"])
        for label, r in (("empty cache", cold), ("warm cache", warm)):
            row(f"simulate first call, new process, {label} (with imports {r['total']:.1f} s)",
                "rpx.simulate(neuron, t) (61 times, 1 set)",
                f"{r['first']:.1f} s (CPU {r['cpu']:.1f} s)")

    print()
    print(format_table(["what", "command", "rpx", "reference (numpy/scipy)", "ratio"], rows))


# The fit rows: bench_fit.py's cells and scipy reference, rpx.fit as it is; one untimed
# call each, then timed calls of the two taken in turn (so that both see the same
# machine), the best of each: 3 rounds (200 for one cell, whose milliseconds a busy
# machine disturbs most), within a time budget.
FIT = """
import sys, json, time, warnings
sys.path.insert(0, {here!r})
import numpy as np
import bench_fit as bf
import rpx
df, K_o, Cl_o = bf.cells({n})
m = {scipy_cells}
sub = df[df["cell"] < m]
warnings.simplefilter("ignore")
ds, ref = rpx.fit(df, free=list(bf.FREE)), bf.scipy_fit(sub, K_o, Cl_o)
t = ts = float("inf")
start = time.perf_counter()
for _ in range({repeats}):
    t0 = time.perf_counter()
    ds = rpx.fit(df, free=list(bf.FREE))
    np.asarray(ds[bf.FREE[0]].values)
    t1 = time.perf_counter()
    ref = bf.scipy_fit(sub, K_o, Cl_o)
    t2 = time.perf_counter()
    t, ts = min(t, t1 - t0), min(ts, t2 - t1)
    if t2 - start > 40.0:
        break
ours = np.stack([ds[k].values[:m] for k in bf.FREE], axis=1)
print(json.dumps({{"rpx": t, "scipy": ts * {n} / m,
                  "diff": float(np.max(np.abs(ours / ref - 1.0)))}}))
"""

# The first fit or posterior sample of one cell (bench_fit.py's) in a new process: ``call``
# on the table ``df``, made before the clock starts.
FIRST_CALL = """
import sys, json, time, warnings
sys.path.insert(0, {here!r})
import bench_fit as bf
import rpx
df, K_o, Cl_o = bf.cells(1)
t1, c1 = time.perf_counter(), time.process_time()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    ds = {call}
t2, c2 = time.perf_counter(), time.process_time()
print(json.dumps({{"first": t2 - t1, "cpu": c2 - c1}}))
"""

SIMULATE = """
import time
t0 = time.perf_counter()
import sys, json
sys.path.insert(0, {here!r})
import jax
jax.config.update("jax_enable_x64", True)
import numpy as np
import rpx
from _pump_leak_cell import neuron
cell = neuron()
t1, c1 = time.perf_counter(), time.process_time()
ds = rpx.simulate(cell, np.linspace(0.0, 3600.0, 61))
ds["V"].values
t2, c2 = time.perf_counter(), time.process_time()
print(json.dumps({{"first": t2 - t1, "total": t2 - t0, "cpu": c2 - c1}}))
"""


if __name__ == "__main__":
    main()
