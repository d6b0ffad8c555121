"""Crash safety: SIGKILL a real ``rpx sweep`` process at random moments, rerun, compare bytes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from rpx.sweep.runner import run_sweep
from rpx.sweep.spec import load_spec
from rpx.sweep.store import done_chunks, open_store

SPEC = """
model = "ghk_pump"
outputs = ["V", "I_pump"]
gradients = ["K_o"]
[[axes]]
name = "K_o"
logspace = [1.0, 100.0, 240]
[[axes]]
name = "P_Na"
logspace = [1e-9, 1e-6, 500]
[chunks]
K_o = 4
"""


def _files(root: Path) -> dict[str, bytes]:
    """Every chunk and metadata file except the root metadata (its attrs hold a timestamp)."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root) != Path("zarr.json")
    }


def test_sigkill_at_random_moments_then_resume_is_bit_identical(tmp_path: Path) -> None:
    spec_path = tmp_path / "space.toml"
    spec_path.write_text(SPEC)
    spec = load_spec(spec_path)
    total = int(np.prod(spec.chunk_grid))
    reference = tmp_path / "reference.zarr"
    run_sweep(spec, reference, quiet=True)

    out = tmp_path / "killed.zarr"
    cmd = [sys.executable, "-m", "rpx", "sweep", str(spec_path), "-o", str(out), "--quiet"]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    rng = np.random.default_rng(0)
    partial_states = []
    done = 0
    for _ in range(3):
        target = int(rng.integers(done + 1, done + 1 + (total - done) // 3))
        proc = subprocess.Popen(cmd, env=env)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if out.exists() and (out / "zarr.json").exists():
                if len(done_chunks(open_store(out))) >= target:
                    break
            time.sleep(0.01)
        time.sleep(float(rng.uniform(0.0, 0.05)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        done = len(done_chunks(open_store(out)))
        partial_states.append(done)
    # The kills happened in the middle of the work, not before or after it.
    assert any(0 < d < total for d in partial_states), partial_states

    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"{total - partial_states[-1]} written" in result.stdout
    assert len(done_chunks(open_store(out))) == total
    assert _files(out) == _files(reference)
