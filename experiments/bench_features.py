"""Compile time of the pump–leak programs with and without their inactive features.

The pump–leak cell's Ca2+ routes and cotransporters are left out of a traced program
where their strengths are known to be 0 (``rpx.Model.features``). This script measures,
side by side in one process, the time to trace/lower and to compile (XLA) one
evaluation and one forward-mode derivative w.r.t. ``K_o``, for the full program and for
the variant without the features, with the persistent cache off (every row compiles).

    python experiments/bench_features.py

Prints one table (markdown) with the machine line.
"""

from __future__ import annotations

import os

os.environ["RPX_CACHE_DIR"] = "off"

import platform  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

jax.config.update("jax_enable_x64", True)

import rpx  # noqa: E402
from rpx.physics.api import fill_defaults  # noqa: E402
from rpx.physics.models import get_model  # noqa: E402


def timed(fn: object, args: tuple) -> tuple[float, float]:
    t0 = time.perf_counter()
    lowered = jax.jit(fn).lower(*args)
    t1 = time.perf_counter()
    lowered.compile()
    return t1 - t0, time.perf_counter() - t1


def main() -> None:
    print(f"jax {jax.__version__}, python {platform.python_version()}, "
          f"os.cpu_count()={os.cpu_count()}, load average {os.getloadavg()}")
    print("command: python experiments/bench_features.py\n")
    rows = []
    for name in ("pump_leak", "pump_leak_fixed"):
        m = get_model(name)
        p = fill_defaults(rpx.preset("mammalian_neuron"), m.params)
        p = {k: jnp.full((8,), float(v)) for k, v in p.items()}
        for label, variant in (("full", m), ("without Ca2+ routes, cotransporters",
                                             m.variant(("calcium", "cotransport")))):
            fn = variant.fn
            lo, co = timed(fn, (p,))

            def dv(x: jax.Array, q: dict, fn: object = fn) -> jax.Array:
                return jax.jacfwd(lambda y: fn(q | {"K_o": y})["V"])(x)

            glo, gco = timed(dv, (p["K_o"], p))
            rows.append((name, label, lo, co, glo, gco))
    print("| model | program | trace+lower (s) | compile (s) | d/dK_o trace+lower (s) "
          "| d/dK_o compile (s) |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]:.1f} | {r[3]:.1f} | {r[4]:.1f} | {r[5]:.1f} |")


if __name__ == "__main__":
    main()
