"""dask.distributed sweeps and reductions on a real LocalCluster of worker processes.

Same cube or same reductions (bit for bit) as one process, and the same resume.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from distributed import Client, LocalCluster

from rpx.sweep import reduce as _reduce
from rpx.sweep.reduce import run_reduce
from rpx.sweep.reduce_ops import Histogram, Reductions
from rpx.sweep.runner import run_sweep
from rpx.sweep.spec import Axis, SweepSpec, load_spec
from rpx.sweep.store import done_chunks, marker_key, open_store

SPEC = SweepSpec(
    model="ghk",
    axes=(Axis.logspace("K_o", 1.0, 100.0, 11), Axis.logspace("P_Na", 1e-9, 1e-6, 9)),
    outputs=("V", "currents"),
    gradients=("K_o",),
    dtype="float64",
    chunks=(("K_o", 3), ("P_Na", 4)),
).validate()


# A 20 x 7 space in 5 chunks, for the command-line tests.
CLI_SPEC = """
model = "ghk"
dtype = "float64"
[[axes]]
name = "K_o"
logspace = [1.0, 100.0, 20]
[[axes]]
name = "Na_i"
linspace = [5.0, 50.0, 7]
[chunks]
K_o = 4
"""
RED = Reductions(
    histograms=(Histogram("V", -100.0, 50.0, 30),),
    marginals=("V", "dV_dK_o"),
    extremes=("V",),
    band=(-90.0, -50.0),
    pairs=True,
)


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                     dashboard_address=None) as cluster,
        Client(cluster) as c,
    ):
        yield c


def _rpx(*args: str) -> subprocess.CompletedProcess:
    """``python -m rpx ARGS`` on the CPU, output captured."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    return subprocess.run([sys.executable, "-m", "rpx", *args], env=env, capture_output=True,
                          text=True, timeout=300)


def _ran_a_sweep() -> bool:
    from rpx.sweep.distributed import _WORKER_CACHE

    return bool(_WORKER_CACHE)


def _assert_same_cube(a: Path, b: Path) -> None:
    x, y = xr.open_zarr(a).load(), xr.open_zarr(b).load()
    assert sorted(x.data_vars) == sorted(y.data_vars)
    for name in y.data_vars:
        # Same XLA program on the same CPU: the values are identical, not just close.
        np.testing.assert_array_equal(x[name].values, y[name].values, err_msg=name)
    assert done_chunks(open_store(a)) == done_chunks(open_store(b))


def test_cluster_sweep_equals_single_process_and_resumes(client: Client, tmp_path: Path) -> None:
    local = tmp_path / "local.zarr"
    run_sweep(SPEC, local, quiet=True)
    out = tmp_path / "cluster.zarr"
    summary = run_sweep(SPEC, out, client=client, chunks_per_task=2, quiet=True)
    n = int(np.prod(SPEC.chunk_grid))
    assert summary == {"points": 99, "chunks": n, "skipped": 0, "written": n, "tasks": 6}
    # Both worker processes took part (each caches the sweep it ran chunks of).
    assert list(client.run(_ran_a_sweep).values()) == [True, True]
    _assert_same_cube(out, local)

    # Lose three chunks (markers and data) and rerun: exactly those are recomputed.
    store = open_store(out)
    lost = sorted(done_chunks(store))[2:5]
    for index in lost:
        (out / marker_key(index)).unlink()
        for var in ("V", "I_K", "dV_dK_o"):
            (out / var / "c" / "/".join(map(str, index))).unlink()
    again = run_sweep(SPEC, out, client=client, quiet=True)
    assert again["skipped"] == n - 3 and again["written"] == 3 and again["tasks"] == 3
    _assert_same_cube(out, local)


def test_cli_sweep_on_a_scheduler_address(client: Client, tmp_path: Path) -> None:
    spec_path = tmp_path / "space.toml"
    spec_path.write_text(CLI_SPEC)
    out = tmp_path / "cli.zarr"
    args = ["sweep", str(spec_path), "-o", str(out), "--quiet",
            "--scheduler", client.scheduler.address]
    result = _rpx(*args)
    assert result.returncode == 0, result.stderr
    assert "(5 written, 0 already done)" in result.stdout
    local = tmp_path / "local.zarr"
    run_sweep(load_spec(spec_path), local, quiet=True)
    _assert_same_cube(out, local)
    result = _rpx(*args)
    assert "(0 written, 5 already done)" in result.stdout


def test_bad_cluster_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="chunks_per_task"):
        run_sweep(SPEC, tmp_path / "x.zarr", client=object(), chunks_per_task=0, quiet=True)
    assert not (tmp_path / "x.zarr").exists()


def test_cli_sweep_on_its_own_local_cluster(tmp_path: Path) -> None:
    spec_path = tmp_path / "space.toml"
    spec_path.write_text("""
model = "ghk"
dtype = "float64"
[[axes]]
name = "K_o"
logspace = [1.0, 100.0, 8]
[chunks]
K_o = 3
""")
    out = tmp_path / "workers.zarr"
    result = _rpx("sweep", str(spec_path), "-o", str(out), "--quiet", "--workers", "2")
    assert result.returncode == 0, result.stderr
    assert "(3 written, 0 already done)" in result.stdout
    local = tmp_path / "local.zarr"
    run_sweep(load_spec(spec_path), local, quiet=True)
    _assert_same_cube(out, local)


def _ran_a_reduction() -> bool:
    from rpx.sweep.distributed import _WORKER_CACHE

    return any(key[0] == "reduce" for key in _WORKER_CACHE)


def _assert_same_reductions(a: Path, b: Path) -> None:
    x, y = xr.open_zarr(a).load(), xr.open_zarr(b).load()
    assert x.attrs["complete"] and sorted(x.data_vars) == sorted(y.data_vars)
    for name in y.data_vars:
        # Partials from the same XLA program, merged in the same chunk order.
        np.testing.assert_array_equal(x[name].values, y[name].values, err_msg=name)


def test_cluster_reduce_equals_single_process_and_resumes(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = tmp_path / "local.zarr"
    run_reduce(SPEC, local, RED, quiet=True)
    out = tmp_path / "cluster.zarr"
    summary = run_reduce(SPEC, out, RED, client=client, chunks_per_task=2, quiet=True)
    n = int(np.prod(SPEC.chunk_grid))
    assert summary == {"points": 99, "chunks": n, "skipped": 0, "reduced": n, "tasks": 6}
    assert list(client.run(_ran_a_reduction).values()) == [True, True]
    _assert_same_reductions(out, local)

    # Interrupt a local run after 4 merged chunks (checkpoint after every chunk), then
    # finish it on the cluster: the 4 are skipped and the result is still identical.
    merge, calls = _reduce.merge, []

    def failing_merge(*args: object) -> None:
        if len(calls) == 4:
            raise KeyboardInterrupt
        calls.append(args[3])
        merge(*args)

    monkeypatch.setattr(_reduce, "merge", failing_merge)
    resumed = tmp_path / "resumed.zarr"
    with pytest.raises(KeyboardInterrupt):
        run_reduce(SPEC, resumed, RED, quiet=True, checkpoint_s=0)
    monkeypatch.setattr(_reduce, "merge", merge)
    again = run_reduce(SPEC, resumed, RED, client=client, chunks_per_task=3, quiet=True)
    assert again["skipped"] == 4 and again["reduced"] == n - 4 and again["tasks"] == 3
    _assert_same_reductions(resumed, local)


def test_cli_reduce_on_a_scheduler_address(client: Client, tmp_path: Path) -> None:
    spec_path = tmp_path / "space.toml"
    spec_path.write_text(CLI_SPEC + '[reduce]\nmarginals = ["V"]\n')
    out = tmp_path / "cli.zarr"
    result = _rpx("reduce", str(spec_path), "-o", str(out), "--quiet", "--pairs",
                  "--scheduler", client.scheduler.address, "--chunks-per-task", "2")
    assert result.returncode == 0, result.stderr
    assert "(5 this run, 0 already merged) in 3 dask task(s)" in result.stdout
    spec, red = _reduce.load_reduce_spec(spec_path)
    local = tmp_path / "local.zarr"
    run_reduce(spec, local, dataclasses.replace(red, pairs=True), quiet=True)
    _assert_same_reductions(out, local)


def test_bad_cluster_reduce_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="chunks_per_task"):
        run_reduce(SPEC, tmp_path / "x.zarr", RED, client=object(), chunks_per_task=0)
    assert not (tmp_path / "x.zarr").exists()


def test_ctrl_c_on_a_cluster_run_cancels_its_tasks_and_resumes(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C (the interrupt flag) ends a cluster sweep or reduction without waiting for
    its tasks; the lock is released and the same call completes the store."""
    import contextlib
    import threading
    import time

    from rpx.sweep import interrupt
    from rpx.sweep.distributed import _completed

    slow = [client.submit(time.sleep, 30, pure=False) for _ in range(2)]
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    from distributed import as_completed

    assert list(_completed(as_completed(slow), stop)) == []  # returned before any finished
    client.cancel(slow)

    @contextlib.contextmanager
    def pressed(message: object, grace: object = None) -> Iterator[threading.Event]:
        event = threading.Event()
        event.set()
        yield event

    monkeypatch.setattr(interrupt, "interruptible", pressed)
    monkeypatch.setattr(_reduce, "interruptible", pressed)
    out, red_out = tmp_path / "cube.zarr", tmp_path / "red.zarr"
    with pytest.raises(interrupt.Interrupted, match=r"interrupted after 0 of 12 chunks; run"):
        run_sweep(SPEC, out, client=client, quiet=True)
    with pytest.raises(interrupt.Interrupted, match=r"of 12 chunks; run the same command"):
        run_reduce(SPEC, red_out, RED, client=client, quiet=True)
    assert not (out / "rpx.lock").exists() and not (red_out / "rpx.lock").exists()
    monkeypatch.undo()
    assert run_sweep(SPEC, out, client=client, quiet=True)["written"] == 12
    run_sweep(SPEC, tmp_path / "local.zarr", quiet=True)
    _assert_same_cube(out, tmp_path / "local.zarr")
    assert run_reduce(SPEC, red_out, RED, client=client, quiet=True)["chunks"] == 12
