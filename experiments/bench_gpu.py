"""One accelerator benchmark: how fast rpx answers on one GPU (or any JAX device).

Prints one table (each figure the best of a few timed runs after one warm-up run that
compiles; the machine line first):

1. closed-form ``ghk`` points/s: ``rpx.resting_potential`` inside ``jax.jit`` on a 3-D
   grid of K_o x P_Na x Na_i generated on the device from three axis vectors (no host
   arrays), reduced on the device to its mean so that only the evaluation is timed
   (goal on an H100/H200-class GPU: >= 2e11 points/s);
2. V + all 13 gradients of ``ghk`` points/s (``rpx.gradients`` on the device grid);
3. ``ghk_pump`` and ``pump_leak`` steady states/s (root-solved, on device grids);
4. fitted cells/s at 1e5 cells (``rpx.fit``, the cells of ``bench_fit.py``, float64);
5. a sweep of ``ghk`` (V) into a zarr store on local disk (``rpx.run_sweep``) against
   zarr alone writing the same arrays with the same chunks and codec.

Sizes are chosen so the whole script finishes in a few minutes on one H100/H200-class
GPU. ``--tiny`` (or ``RPX_BENCH_TINY=1``) runs every row on a tiny size, on whatever
device JAX has (the test suite runs it on the CPU).

    .venv/bin/python experiments/bench_gpu.py            # on the GPU machine
    .venv/bin/python experiments/bench_gpu.py --tiny     # seconds, any device
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)  # float64 available (the fit row uses it)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from _bench_util import best_time, format_table, host_info  # noqa: E402

import rpx  # noqa: E402

# points per axis (K_o, P_Na, Na_i) of each device grid, and other sizes
FULL = {"ghk": (2048, 1024, 512), "grad": (512, 512, 256), "ghk_pump": (512, 256, 128),
        "pump_leak": (256, 128, 64), "fit_cells": 100_000, "sweep": (2000, 500, 100),
        "repeats": 5}
TINY = {"ghk": (16, 8, 4), "grad": (8, 4, 4), "ghk_pump": (8, 4, 2), "pump_leak": (4, 4, 2),
        "fit_cells": 20, "sweep": (16, 8, 4), "repeats": 2}


def axes(shape: tuple[int, int, int], dtype: jnp.dtype) -> dict[str, jax.Array]:
    """Axis vectors on the device, shaped to broadcast into a grid of ``shape``."""
    n_k, n_p, n_n = shape
    k = jnp.geomspace(1.0, 100.0, n_k, dtype=dtype)[:, None, None]
    p = jnp.geomspace(1e-9, 1e-6, n_p, dtype=dtype)[None, :, None]
    n = jnp.linspace(5.0, 80.0, n_n, dtype=dtype)[None, None, :]
    return {"K_o": k, "P_Na": p, "Na_i": n}


def grid_rate(fn: object, shape: tuple[int, int, int], repeats: int) -> tuple[float, float]:
    """Points/s of ``fn(axes)`` (a jitted function returning a scalar) and its value."""
    points = int(np.prod(shape))
    a = axes(shape, jnp.float32)
    seconds, _, value = best_time(lambda: fn(a), repeats=repeats, budget_s=30.0)  # type: ignore[operator]
    return points / seconds, float(value)


def zarr_alone(data: dict[str, np.ndarray], chunks: tuple[int, ...], root: Path) -> float:
    """Seconds for zarr alone to write ``data`` with the sweep's chunking and codec."""
    import zarr
    from zarr.codecs import ZstdCodec

    from rpx.sweep.store import ZSTD_LEVEL

    group = zarr.open_group(root, mode="w", zarr_format=3)
    arrays = {
        k: group.create_array(k, shape=v.shape, dtype=v.dtype, chunks=chunks,
                              compressors=[ZstdCodec(level=ZSTD_LEVEL)],
                              fill_value=-1 if v.dtype.kind == "i" else np.nan)
        for k, v in data.items()
    }
    t0 = time.perf_counter()
    for k, arr in arrays.items():
        arr[...] = data[k]
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny sizes (any device)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["fit", "sweep"])
    args = parser.parse_args()
    tiny = args.tiny or os.environ.get("RPX_BENCH_TINY") == "1"
    size = TINY if tiny else FULL
    reps = size["repeats"]
    print("\n".join(host_info()))
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}"
          + (" (tiny sizes)" if tiny else ""), flush=True)
    rows: list[list[str]] = []
    start = time.perf_counter()

    def row(what: str, command: str, n: str, value: str) -> None:
        rows.append([what, command, n, value])
        print(" | ".join(rows[-1]), flush=True)

    ghk = jax.jit(lambda a: jnp.mean(rpx.resting_potential(a, model="ghk")))
    r, v = grid_rate(ghk, size["ghk"], reps)
    row(f"ghk V on a device grid (mean {v:.2f} mV)",
        "jit(mean(rpx.resting_potential(axes, model='ghk')))",
        f"{np.prod(size['ghk']):.1e}", f"{r:.2e} points/s")

    def all_gradients(a: dict[str, jax.Array]) -> jax.Array:
        g = rpx.gradients(a, model="ghk")
        return sum(jnp.mean(x) for x in g.values()) + jnp.mean(
            rpx.resting_potential(a, model="ghk"))

    r, _ = grid_rate(jax.jit(all_gradients), size["grad"], reps)
    row("ghk V + all 13 gradients on a device grid",
        "jit(rpx.gradients(axes, model='ghk') + V)", f"{np.prod(size['grad']):.1e}",
        f"{r:.2e} points/s")

    pump = jax.jit(lambda a: jnp.nanmean(rpx.resting_potential(a, model="ghk_pump")))
    r, _ = grid_rate(pump, size["ghk_pump"], reps)
    row("ghk_pump steady states", "jit(rpx.resting_potential(axes, model='ghk_pump'))",
        f"{np.prod(size['ghk_pump']):.1e}", f"{r:.2e} states/s")

    def leak(a: dict[str, jax.Array]) -> jax.Array:
        # Na_i is an output of pump_leak: its third axis varies the pump instead
        b = {"K_o": a["K_o"], "P_Na": a["P_Na"], "I_pump_max": a["Na_i"] / 40.0}
        return jnp.nanmean(rpx.pump_leak_steady_state(b)["V"])

    r, _ = grid_rate(jax.jit(leak), size["pump_leak"], reps)
    row("pump_leak steady states (K_o x P_Na x I_pump_max)",
        "jit(rpx.pump_leak_steady_state(axes))", f"{np.prod(size['pump_leak']):.1e}",
        f"{r:.2e} states/s")

    if "fit" not in args.skip:
        import bench_fit

        n = size["fit_cells"]
        df, _, _ = bench_fit.cells(n)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            seconds, _, ds = best_time(lambda: rpx.fit(df, free=list(bench_fit.FREE)),
                                       repeats=2, budget_s=60.0)
        row(f"fitted cells ({int(ds['converged'].sum())}/{n} converged)",
            "rpx.fit(df, free=['P_Na','P_Cl']) (bench_fit.py cells)", f"{n:.0e}",
            f"{n / seconds:.2e} cells/s")

    if "sweep" not in args.skip:
        import xarray as xr

        n_k, n_p, n_n = size["sweep"]
        spec = rpx.spec_from_dict({
            "model": "ghk",
            "axes": [
                {"name": "K_o", "logspace": [1.0, 100.0, n_k]},
                {"name": "P_Na", "logspace": [1e-9, 1e-6, n_p]},
                {"name": "Na_i", "linspace": [5.0, 80.0, n_n]},
            ],
            "chunks": {"K_o": max(1, n_k // 20)},
        })
        tmp = Path(tempfile.mkdtemp(prefix="rpx-bench-gpu-"))
        try:
            out = tmp / "cube.zarr"
            rpx.run_sweep(spec, out, overwrite=True, quiet=True)  # compiles
            t_sweep = min(
                _timed(lambda: rpx.run_sweep(spec, out, overwrite=True, quiet=True))
                for _ in range(2)
            )
            ds = xr.open_zarr(out)
            data = {k: ds[k].values for k in ds.data_vars}
            t_zarr = min(zarr_alone(data, spec.chunk_shape, tmp / "alone.zarr")
                         for _ in range(2))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        row(f"sweep ghk to local zarr (chunk {spec.chunk_shape})",
            "rpx.run_sweep(spec, 'cube.zarr')", f"{spec.size:.1e}",
            f"{spec.size / t_sweep:.2e} points/s")
        row("zarr alone, same arrays, chunks and codec", "zarr array[...] = data",
            f"{spec.size:.1e}", f"{spec.size / t_zarr:.2e} points/s "
            f"(sweep/zarr {t_zarr / t_sweep:.2f})")

    print()
    print(format_table(["what", "command", "points", "rate"], rows))
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


def _timed(fn: object) -> float:
    t0 = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
