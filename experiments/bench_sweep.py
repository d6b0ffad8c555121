"""End-to-end sweep throughput against the storage limit, measured side by side.

For each model: (1) ``rpx.run_sweep`` of a space to a local zarr 3 store (evaluation,
transfer, compression and writing, overlapped; the kernel is compiled by a warm-up run
first), and (2) the storage limit: zarr alone writing the very same arrays (same shape,
dtype, chunking and zstd codec) from memory, each array in one assignment so that zarr
stores its chunks concurrently. Prints a table; ratio = sweep rate / storage rate.

    .venv/bin/python experiments/bench_sweep.py            # default sizes
    .venv/bin/python experiments/bench_sweep.py --quick    # small sanity run
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr
import zarr
from zarr.codecs import ZstdCodec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_util import format_table, host_info, rate  # noqa: E402

from rpx.sweep.runner import run_sweep  # noqa: E402
from rpx.sweep.spec import spec_from_dict  # noqa: E402
from rpx.sweep.store import ZSTD_LEVEL  # noqa: E402


def space(model: str, n_k: int) -> dict:
    return {
        "model": model,
        "axes": [
            {"name": "K_o", "logspace": [1.0, 100.0, n_k]},
            {"name": "P_Na", "logspace": [1e-9, 1e-6, 200]},
            {"name": "Na_i", "linspace": [5.0, 80.0, 100]},
        ],
        "chunks": {"K_o": max(1, n_k // 20)},
    }


def zarr_alone(data: dict[str, np.ndarray], chunks: tuple[int, ...], root: Path) -> float:
    """Seconds for zarr alone to write ``data`` with the sweep's chunking and codec.

    Each array is written in one assignment, so zarr encodes and stores its chunks
    concurrently (its own async pool and codec threads): the fastest zarr can store
    these arrays on this machine, i.e. the storage limit of a sweep.
    """
    group = zarr.open_group(root, mode="w", zarr_format=3)
    arrays = {
        k: group.create_array(
            k, shape=v.shape, dtype=v.dtype, chunks=chunks,
            compressors=[ZstdCodec(level=ZSTD_LEVEL)],
            fill_value=-1 if v.dtype.kind == "i" else np.nan,
        )
        for k, v in data.items()
    }
    t0 = time.perf_counter()
    for k, a in arrays.items():
        a[...] = data[k]
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    sizes = {"ghk": 40 if args.quick else 5000, "ghk_pump": 20 if args.quick else 200}
    print("\n".join(host_info()), end="\n\n")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model, n_k in sizes.items():
            spec = spec_from_dict(space(model, n_k))
            out = Path(tmp) / f"{model}.zarr"
            run_sweep(spec, out, overwrite=True, quiet=True)  # compile and warm up
            t_sweep = min(
                _timed(lambda spec=spec, out=out: run_sweep(spec, out, overwrite=True, quiet=True))
                for _ in range(args.repeats)
            )
            ds = xr.open_zarr(out)
            data = {k: ds[k].values for k in ds.data_vars}
            t_store = min(
                zarr_alone(data, spec.chunk_shape, Path(tmp) / "alone.zarr")
                for _ in range(args.repeats)
            )
            shutil.rmtree(Path(tmp) / "alone.zarr")
            nbytes = sum(v.nbytes for v in data.values())
            rows.append([
                model, f"{spec.size:.1e}", str(spec.chunk_shape), f"{nbytes / 2**20:.0f}",
                rate(spec.size, t_sweep), rate(spec.size, t_store), f"{t_store / t_sweep:.2f}",
            ])
    print(format_table(
        ["model", "points", "chunk", "MiB", "sweep pt/s", "zarr-alone pt/s", "sweep/limit"], rows
    ))


def _timed(fn: object) -> float:
    t0 = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
