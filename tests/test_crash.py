"""Crash safety in every phase: SIGKILL a real ``rpx sweep`` / ``rpx reduce`` process at
exact store writes (template, chunks or checkpoints, finishing), rerun the same command,
compare with an uninterrupted run bit for bit.

The kills come from ``tests/store_harness.py``: the subprocess sends itself SIGKILL just
before or after the N-th write whose key matches a pattern, so every phase is hit
deterministically, with no timing.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import store_harness as harness
import xarray as xr

from rpx.cli import main

SPEC = """
model = "ghk"
dtype = "float64"
outputs = ["V", "E_K"]
[[axes]]
name = "K_o"
logspace = [1.0, 100.0, 8]
[[axes]]
name = "Na_i"
linspace = [5.0, 50.0, 6]
[chunks]
K_o = 2
Na_i = 3
[reduce]
histograms = [{ name = "V", lo = -120.0, hi = 0.0, bins = 12 }]
"""

ROOT = r"^zarr\.json$"


def _files(root: Path) -> dict[str, bytes]:
    """Every file of a store; the root metadata without its creation time."""
    out = {}
    for p in sorted(root.rglob("*")):
        if not p.is_file():
            continue
        rel = str(p.relative_to(root))
        data = p.read_bytes()
        if rel == "zarr.json":
            meta = json.loads(data)
            meta["attributes"].pop("created", None)
            data = json.dumps(meta, sort_keys=True).encode()
        out[rel] = data
    return out


def _killed(args: list[str], kill: str) -> None:
    result = harness.run(args, kill=kill)
    assert result.returncode == -9, (kill, result.returncode, result.stderr[-2000:])


def test_sweep_killed_in_every_phase_resumes_bit_identical(tmp_path: Path) -> None:
    spec = tmp_path / "space.toml"
    spec.write_text(SPEC)
    reference, out = tmp_path / "reference.zarr", tmp_path / "killed.zarr"
    assert main(["sweep", str(spec), "-o", str(reference), "--quiet"]) == 0
    args = ["sweep", spec, "-o", out, "--quiet"]
    for kill in (
        f"{ROOT}:1:before",        # template: only the lock exists
        f"{ROOT}:1:after",         # template: the root metadata and nothing else
        f"{ROOT}:3:after",         # template: published, not yet consolidated
        r"rpx_done/\d:3:before",   # chunks: a chunk's data written, its marker not
        f"{ROOT}:1:after",         # finishing: statistics merged, not consolidated
    ):
        _killed(args, kill)
    final = harness.run(args)
    assert final.returncode == 0, final.stderr
    assert "took over the lock" in final.stderr  # the last kill left its lock behind
    assert _files(out) == _files(reference)
    assert main(["verify", str(out)]) == 0


def test_reduce_killed_in_every_phase_resumes_bit_identical(tmp_path: Path) -> None:
    spec = tmp_path / "space.toml"
    spec.write_text(SPEC)
    reference, out = tmp_path / "reference.zarr", tmp_path / "killed.zarr"
    args = ["reduce", spec, "--quiet", "--checkpoint-s", "0"]
    assert main([*map(str, args), "-o", str(reference)]) == 0
    args += ["-o", out]
    for kill in (
        f"{ROOT}:1:after",              # template: the root and nothing else
        r"rpx_state/g0/c/0:1:after",    # template: state written, not pointed at
        r"rpx_state/g\d+/c/0:3:before",  # checkpoints: between two checkpoints
        r"^V_hist/c/:1:after",          # results: partly written
    ):
        _killed(args, kill)
    final = harness.run(args)
    assert final.returncode == 0, final.stderr
    a, b = xr.open_zarr(out).load(), xr.open_zarr(reference).load()
    assert set(a.variables) == set(b.variables)
    for name in b.variables:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
    assert a.attrs["complete"] and a.attrs["chunks_done"] == 8
