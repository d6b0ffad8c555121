"""Throughput of ``rpx.run_reduce``: points per second of a streamed on-device reduction.

Reduces a 4-axis ``ghk`` space (K_o, P_Na, Na_i, Cl_i; float32) with the default
reductions (histogram of V, marginal count/mean/variance/min/max of V along every axis,
argmin/argmax, fraction of the space with -80 <= V <= -60 mV along every axis), and with
``--pairs`` also along every pair of axes. The first run compiles; the best of the timed
runs is reported, with the time a 1e12-point space would take at that rate. With
``--workers N`` every reduction also runs on a dask LocalCluster of N single-threaded
worker processes (``run_reduce(..., client=...)``), side by side with the local run.

    .venv/bin/python experiments/bench_reduce.py                      # 1e8 points
    .venv/bin/python experiments/bench_reduce.py --workers 2          # and on 2 dask workers
    .venv/bin/python experiments/bench_reduce.py --side 1000 --chunk 1048576   # 1e12 points
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_util import format_table, host_info, rate  # noqa: E402

from rpx.sweep.reduce import run_reduce  # noqa: E402
from rpx.sweep.reduce_ops import Reductions  # noqa: E402
from rpx.sweep.spec import spec_from_dict  # noqa: E402


def space(side: int, chunk_points: int) -> dict:
    """``side``^4 points, chunks of whole trailing axes holding about ``chunk_points``."""
    inner = side * side * side
    chunks = (
        {"K_o": max(1, chunk_points // inner)} if chunk_points >= inner
        else {"K_o": 1, "P_Na": max(1, chunk_points // (side * side))}
    )
    return {
        "model": "ghk",
        "dtype": "float32",
        "axes": [
            {"name": "K_o", "logspace": [1.0, 100.0, side]},
            {"name": "P_Na", "logspace": [1e-9, 1e-6, side]},
            {"name": "Na_i", "linspace": [5.0, 80.0, side]},
            {"name": "Cl_i", "linspace": [10.0, 120.0, side]},
        ],
        "chunks": chunks,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=100, help="points per axis (4 axes)")
    parser.add_argument("--chunk", type=int, default=1 << 20, help="points per chunk")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workers", type=int, default=0, help="also on N dask workers")
    parser.add_argument("--chunks-per-task", type=int, default=4)
    args = parser.parse_args()
    spec = spec_from_dict(space(args.side, args.chunk))
    print("\n".join(host_info()), end="\n\n")
    rows = []
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        where: list[tuple[str, dict]] = [("local", {})]
        if args.workers:
            from distributed import Client, LocalCluster

            cluster = stack.enter_context(LocalCluster(
                n_workers=args.workers, threads_per_worker=1, dashboard_address=None
            ))
            client = stack.enter_context(Client(cluster))
            where.append((f"dask, {args.workers} workers",
                          {"client": client, "chunks_per_task": args.chunks_per_task}))
        for label, red in [("default", Reductions()), ("with pairs", Reductions(pairs=True))]:
            for name, kw in where:
                out = Path(tmp) / "r.zarr"
                times = []
                for _ in range(args.repeats + 1):  # the first run includes compilation
                    t0 = time.perf_counter()
                    run_reduce(spec, out, red, overwrite=True, quiet=True, **kw)
                    times.append(time.perf_counter() - t0)
                best = min(times[1:])
                rows.append([
                    label, name, f"{spec.size:.1e}", str(spec.chunk_shape), f"{times[0]:.1f}",
                    f"{best:.2f}", rate(spec.size, best), f"{1e12 * best / spec.size:.3g}",
                ])
    print(format_table(
        ["reductions", "where", "points", "chunk", "first run s", "best s", "pt/s",
         "s per 1e12 pt"],
        rows,
    ))


if __name__ == "__main__":
    main()
