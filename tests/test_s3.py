"""Object stores: sweeps and reductions on a real S3-compatible server (moto) on loopback.

The server is started here, on a free port of 127.0.0.1, for this module only; nothing
leaves the machine. Credentials are fake and come from the environment, as they would
for a real bucket.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import s3fs
import xarray as xr
from moto.server import ThreadedMotoServer

from rpx.sweep.reduce import run_reduce
from rpx.sweep.reduce_ops import Reductions
from rpx.sweep.runner import run_sweep
from rpx.sweep.spec import load_spec

BUCKET = "rpx-test"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
SPEC = """
model = "ghk"
dtype = "float64"
outputs = ["V", "E_K"]
[[axes]]
name = "K_o"
logspace = [1.0, 100.0, 60]
[[axes]]
name = "Na_i"
linspace = [5.0, 50.0, 25]
[chunks]
K_o = 1
"""


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """URL of a fresh moto S3 server with an empty bucket; AWS credentials in the env."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    with pytest.MonkeyPatch.context() as mp:
        for k, v in CREDENTIALS.items():
            mp.setenv(k, v)
        _fs(url).mkdir(BUCKET)
        yield url
    server.stop()


def _fs(endpoint: str) -> s3fs.S3FileSystem:
    return s3fs.S3FileSystem(
        client_kwargs={"endpoint_url": endpoint}, skip_instance_cache=True,
        use_listings_cache=False,
    )


def _options(endpoint: str) -> dict:
    return {"client_kwargs": {"endpoint_url": endpoint}}


def _markers(endpoint: str, url: str) -> int:
    fs = _fs(endpoint)
    path = url.removeprefix("s3://") + "/rpx_done"
    return sum(1 for p in fs.ls(path) if p.rsplit("/", 1)[-1][0].isdigit()) if fs.exists(
        path) else 0


def test_sweep_to_s3_killed_resumed_and_read_back(endpoint: str, tmp_path: Path) -> None:
    spec_path = tmp_path / "space.toml"
    spec_path.write_text(SPEC)
    url = f"s3://{BUCKET}/cube.zarr"
    # The command line gets the endpoint from AWS_ENDPOINT_URL, credentials from AWS_*.
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "AWS_ENDPOINT_URL": endpoint}
    cmd = [sys.executable, "-m", "rpx", "sweep", str(spec_path), "-o", url, "--quiet"]
    proc = subprocess.Popen(cmd, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and _markers(endpoint, url) < 10:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = _markers(endpoint, url)
    assert 10 <= done < 60, done

    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    # A request sent just before the kill may still land on the server afterwards, so
    # the resumed run skips at least the chunks counted here.
    written, already = map(int, re.search(
        r"\((\d+) written, (\d+) already done\)", result.stdout).groups())
    assert written + already == 60 and done <= already < 60, result.stdout

    local = tmp_path / "local.zarr"
    run_sweep(load_spec(spec_path), local, quiet=True)
    remote = xr.open_zarr(url, storage_options=_options(endpoint)).load()
    ref = xr.open_zarr(local).load()
    assert remote.attrs["spec_hash"] == ref.attrs["spec_hash"]
    for name in ref.data_vars:
        np.testing.assert_array_equal(remote[name].values, ref[name].values, err_msg=name)
    assert _markers(endpoint, url) == 60


def test_reduce_to_s3_with_storage_options(endpoint: str, tmp_path: Path) -> None:
    spec_path = tmp_path / "space.toml"
    spec_path.write_text(SPEC)
    url = f"s3://{BUCKET}/reduced.zarr"
    red = Reductions(pairs=True)
    first = run_reduce(spec_path, url, red, storage_options=_options(endpoint), quiet=True)
    assert first["reduced"] == 60
    again = run_reduce(spec_path, url, red, storage_options=_options(endpoint), quiet=True)
    assert again["skipped"] == 60 and again["reduced"] == 0
    run_reduce(spec_path, tmp_path / "local.zarr", red, quiet=True)
    remote = xr.open_zarr(url, storage_options=_options(endpoint)).load()
    ref = xr.open_zarr(tmp_path / "local.zarr").load()
    assert remote.attrs["complete"] and sorted(remote.data_vars) == sorted(ref.data_vars)
    for name in ref.data_vars:
        np.testing.assert_array_equal(remote[name].values, ref[name].values, err_msg=name)
    # Checkpointing kept only the latest state array in the bucket.
    states = _fs(endpoint).ls(f"{BUCKET}/reduced.zarr/rpx_state")
    assert [s.rsplit("/", 1)[-1] for s in states if not s.endswith("zarr.json")] == ["g1"]


def test_s3_sweep_killed_while_writing_its_template_is_rebuilt(
    endpoint: str, tmp_path: Path
) -> None:
    """A SIGKILL right after the root metadata reached the bucket: the same command
    rebuilds the template and completes the store; `rpx verify` finds it intact."""
    import store_harness as harness

    spec_path = tmp_path / "space.toml"
    spec_path.write_text(SPEC)
    url = f"s3://{BUCKET}/template-kill.zarr"
    args = ["sweep", spec_path, "-o", url, "--quiet"]
    extra = {"AWS_ENDPOINT_URL": endpoint}
    killed = harness.run(args, kill=r"(^|/)zarr\.json$:1:after", extra_env=extra)
    assert killed.returncode == -9, killed.stderr
    done = harness.run(args, extra_env=extra)
    assert done.returncode == 0 and "(60 written, 0 already done)" in done.stdout, done.stderr
    verify = harness.run(["verify", url], extra_env=extra)
    assert verify.returncode == 0 and "60 of 60 completed chunks intact" in verify.stdout


def test_s3_failures_are_one_line(endpoint: str, tmp_path: Path) -> None:
    """A missing bucket and an unreachable endpoint: one line naming the cause, exit 1."""
    spec_path = tmp_path / "space.toml"
    spec_path.write_text(SPEC)
    base = {**os.environ, "JAX_PLATFORMS": "cpu", "AWS_MAX_ATTEMPTS": "1"}
    for url, env, cause in (
        ("s3://no-such-bucket/x.zarr", {"AWS_ENDPOINT_URL": endpoint}, "bucket not found"),
        (f"s3://{BUCKET}/x.zarr", {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"},
         "cannot reach the object store endpoint"),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "rpx", "sweep", str(spec_path), "-o", url, "--quiet"],
            env={**base, **env}, capture_output=True, text=True, timeout=300,
        )
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 1 and len(lines) == 1, result.stderr
        assert lines[0].startswith(f"rpx: error: {cause}"), lines
