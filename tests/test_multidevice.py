"""Several JAX devices: chunks of sweeps and reductions are spread over all of them.

The host platform is split into 4 CPU devices with ``XLA_FLAGS``, which must be set
before jax is imported, so the multi-device runs happen in a fresh Python process; the
single-device references are computed here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import xarray as xr

from rpx.sweep.reduce import run_reduce
from rpx.sweep.reduce_ops import Reductions
from rpx.sweep.runner import run_sweep
from rpx.sweep.spec import load_spec

SPEC = """
model = "ghk"
dtype = "float64"
outputs = ["V"]
[[axes]]
name = "K_o"
logspace = [1.0, 100.0, 30]
[[axes]]
name = "P_Na"
logspace = [1e-9, 1e-6, 13]
[chunks]
K_o = 3
P_Na = 5
"""

SCRIPT = """
import collections, json, sys
import jax
jax.config.update("jax_enable_x64", True)
import rpx.sweep.reduce, rpx.sweep.store
from rpx.sweep.reduce import run_reduce
from rpx.sweep.reduce_ops import Reductions
from rpx.sweep.runner import run_sweep

written = collections.Counter()
write = rpx.sweep.store.ChunkWriter.write
def counting_write(self, index, region, data):
    written.update(str(d) for d in data["V"].devices())
    write(self, index, region, data)
rpx.sweep.store.ChunkWriter.write = counting_write

reduced = collections.Counter()
place = rpx.sweep.reduce.place_offsets
def counting_place(offsets, device):
    reduced[str(device)] += 1
    return place(offsets, device)
rpx.sweep.reduce.place_offsets = counting_place

spec, cube, res = sys.argv[1:]
sweep = run_sweep(spec, cube, quiet=True)
red = run_reduce(spec, res, Reductions(pairs=True), quiet=True)
print(json.dumps({"devices": len(jax.devices()), "sweep": sweep, "reduce": red,
                  "written": written, "reduced": reduced}))
"""


def test_chunks_are_spread_over_four_devices_with_unchanged_results(tmp_path: Path) -> None:
    spec_path = tmp_path / "space.toml"
    spec_path.write_text(SPEC)
    env = {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
    }
    cube, res = tmp_path / "cube4.zarr", tmp_path / "res4.zarr"
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(spec_path), str(cube), str(res)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["devices"] == 4
    assert report["sweep"]["devices"] == 4 and report["reduce"]["devices"] == 4
    # 30 chunks round-robin over 4 devices: 8, 8, 7, 7, as written and as reduced.
    expected = {f"cpu:{i}": n for i, n in enumerate([8, 8, 7, 7])}
    assert report["written"] == expected and report["reduced"] == expected

    spec = load_spec(spec_path)
    run_sweep(spec, tmp_path / "cube1.zarr", quiet=True)
    a, b = xr.open_zarr(cube).load(), xr.open_zarr(tmp_path / "cube1.zarr").load()
    for name in b.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)

    # Partials are merged in chunk order whatever device made them: identical results.
    run_reduce(spec, tmp_path / "res1.zarr", Reductions(pairs=True), quiet=True)
    a, b = xr.open_zarr(res).load(), xr.open_zarr(tmp_path / "res1.zarr").load()
    for name in b.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
