"""Pump–leak steady states per second (models ``pump_leak`` and ``pump_leak_fixed``).

Random parameter sets (log-uniform K_o, Na_o, Cl_o, P_K, P_Na, pump strength; uniform
z_X, X_o; T = 310 K) are solved by the jitted, vectorised model function, in float32 and
float64, with and without forward-mode gradients of every output w.r.t. K_o and P_Na
(the implicit-function-theorem tangents a sweep stores). Timings exclude compilation
(one untimed call first). The fraction of sets with a steady state (status 0) is
printed beside each rate, and for float32 the largest |ΔV| against float64 over the
sets where both converge, so the rates cannot silently compare failed solves.

Usage::

    .venv/bin/python experiments/bench_pump_leak.py            # 1e5 sets
    .venv/bin/python experiments/bench_pump_leak.py --quick    # 1e4 sets
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))
sys.path.append(str(_HERE.parent))

from _bench_util import best_time, format_table, host_info, rate  # noqa: E402

from rpx.physics.pump_leak import pump_leak, pump_leak_fixed  # noqa: E402


def sets(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)

    def logu(lo: float, hi: float) -> np.ndarray:
        return 10 ** rng.uniform(np.log10(lo), np.log10(hi), n)

    return {
        "K_o": logu(2.0, 40.0), "Na_o": logu(100.0, 200.0), "Cl_o": logu(80.0, 160.0),
        "P_K": logu(1e-7, 1e-5), "P_Na": logu(1e-9, 1e-6), "T": np.full(n, 310.0),
        "z_X": rng.uniform(-1.5, -0.5, n), "X_content": np.full(n, 100.0),
        "X_o": rng.uniform(0.0, 20.0, n), "I_pump_max": logu(0.1, 10.0),
        "I_pump_fixed": logu(0.01, 1.0), "Km_Na_i": np.full(n, 10.0),
        "Km_K_o": np.full(n, 1.5),
    }  # fmt: skip


def with_gradients(fn):  # noqa: ANN001, ANN201 - a model function in, a jittable out
    def f(p: dict[str, jax.Array]) -> tuple[dict, dict]:
        def floats(sub: dict[str, jax.Array]) -> dict[str, jax.Array]:
            out = fn({**p, **sub})
            return {k: v for k, v in out.items() if k != "status"}

        wrt = {"K_o": p["K_o"], "P_Na": p["P_Na"]}
        out, lin = jax.linearize(floats, wrt)
        tangents = {
            k: lin({j: jnp.where(j == k, 1.0, 0.0) * jnp.ones_like(v) for j, v in wrt.items()})
            for k in wrt
        }
        return out, tangents

    return f


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    jax.config.update("jax_enable_x64", True)
    sizes = (10_000,) if args.quick else (100_000,)
    rows = []
    for n in sizes:
        host = sets(n)
        for name, fn in (("pump_leak", pump_leak), ("pump_leak_fixed", pump_leak_fixed)):
            ref = None
            for dtype in (jnp.float64, jnp.float32):
                p = {k: jnp.asarray(v, dtype) for k, v in host.items()}
                solve = jax.jit(fn)
                sec, calls, out = best_time(lambda p=p, s=solve: s(p), repeats=3, budget_s=20.0)
                ok = np.asarray(out["status"]) == 0
                note = ""
                if dtype == jnp.float64:
                    ref = out
                else:
                    both = ok & (np.asarray(ref["status"]) == 0)
                    dv = np.abs(np.asarray(out["V"], np.float64) - np.asarray(ref["V"]))[both]
                    note = f"max abs dV vs float64 {dv.max():.1e} mV"
                grad = jax.jit(with_gradients(fn))
                gsec, _, _ = best_time(lambda p=p, g=grad: g(p), repeats=3, budget_s=20.0)
                rows.append([
                    name, jnp.dtype(dtype).name, f"{n:.0e}", rate(n, sec), rate(n, gsec),
                    f"{ok.mean():.3f}", note,
                ])  # fmt: skip
                print(rows[-1], flush=True)
    print()
    print(format_table(
        ["model", "dtype", "sets", "steady states/s", "with d/dK_o, d/dP_Na /s",
         "fraction ok", "check"], rows,
    ))  # fmt: skip
    print()
    print("\n".join(host_info()))


if __name__ == "__main__":
    main()
