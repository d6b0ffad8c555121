"""Ctrl-C: a real SIGINT to ``rpx sweep``, ``rpx reduce``, ``rpx sensitivity`` and
``rpx fit`` subprocesses stops each with one line and exit status 130; sweeps and
reductions leave a store that the same command completes bit-identically.

The subprocesses run through ``tests/store_harness.py``: store writes are slowed down
(so the run is still going when the signal comes) and logged (so the signal is sent
during the phase under test); ``--stall`` makes a computation sleep for ten minutes, as
a long compiled computation would. Generous timeouts, no timing assertions.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import store_harness as harness
import xarray as xr
from test_crash import SPEC, _files

from rpx.cli import main

LINE = "run the same command again to resume"


def _start(args: list, log: Path, **kw: object) -> subprocess.Popen:
    return subprocess.Popen(
        harness.command(args), env=harness.env(log=log, **kw), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )


def _interrupt_when(proc: subprocess.Popen, log: Path, needle: str) -> tuple[str, str]:
    """Send SIGINT once ``needle`` appears in the write log; return stdout, stderr."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if log.exists() and needle in log.read_text():
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    return proc.communicate(timeout=300)


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    return lines[0]


def test_sigint_stops_a_sweep_which_then_resumes_bit_identical(tmp_path: Path) -> None:
    spec = tmp_path / "space.toml"
    spec.write_text(SPEC)
    reference, out, log = tmp_path / "reference.zarr", tmp_path / "out.zarr", tmp_path / "log"
    args = ["sweep", spec, "-o", out, "--quiet"]
    proc = _start(args, log, delay=0.3)
    _, err = _interrupt_when(proc, log, "rpx_done/1.0")
    assert proc.returncode == 130, err
    line = _one_line(err)
    assert line.startswith("rpx: interrupted after ") and line.endswith(f"of 8 chunks; {LINE}")
    k = int(line.split()[3])
    assert 0 < k < 8
    assert not (out / "rpx.lock").exists()  # released on the way out
    assert main(["sweep", str(spec), "-o", str(reference), "--quiet"]) == 0
    again = harness.run(args)
    assert again.returncode == 0 and f"({8 - k} written, {k} already done)" in again.stdout
    assert _files(out) == _files(reference)


def test_sigint_stops_a_reduction_after_a_checkpoint(tmp_path: Path) -> None:
    spec = tmp_path / "space.toml"
    spec.write_text(SPEC)
    out, log = tmp_path / "out.zarr", tmp_path / "log"
    args = ["reduce", spec, "-o", out, "--quiet", "--checkpoint-s", "0"]
    proc = _start(args, log, delay=0.2)
    _, err = _interrupt_when(proc, log, "rpx_state/g2/")
    assert proc.returncode == 130, err
    line = _one_line(err)
    assert line.startswith("rpx: interrupted after ") and line.endswith(f"of 8 chunks; {LINE}")
    assert not (out / "rpx.lock").exists()
    assert harness.run(args).returncode == 0
    reference = tmp_path / "reference.zarr"
    assert main([*map(str, args[:3]), str(reference), "--quiet", "--checkpoint-s", "0"]) == 0
    a, b = xr.open_zarr(out).load(), xr.open_zarr(reference).load()
    for name in b.variables:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


SENSITIVITY = """
model = "ghk"
method = "sobol"
n = 8
[ranges]
K_o = { lo = 2.0, hi = 20.0 }
"""


def test_sigint_stops_sensitivity_and_fit_in_a_long_computation(tmp_path: Path) -> None:
    spec = tmp_path / "sens.toml"
    spec.write_text(SENSITIVITY)
    csv = tmp_path / "data.csv"
    csv.write_text("K_o,V\n2.5,-90\n5,-80\n10,-65\n20,-50\n")
    for args, stall in (
        (["sensitivity", spec, "-o", tmp_path / "s.zarr"], "rpx.analysis.sensitivity:sensitivity"),
        (["fit", csv, "--free", "P_Na", "-o", tmp_path / "f.zarr"], "rpx.analysis.fit:fit"),
    ):
        log = tmp_path / f"{args[0]}.log"
        proc = _start(args, log, stall=stall)
        _, err = _interrupt_when(proc, log, "STALL")
        assert proc.returncode == 130, err
        assert _one_line(err) == f"rpx: interrupted; nothing was written to {args[-1]}"
        assert not Path(args[-1]).exists()
