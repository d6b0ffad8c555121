"""Reductions: equal to the full cube reduced with xarray, validated, resumable after SIGKILL."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from rpx.sweep import reduce as _reduce
from rpx.sweep.plan import make_plan
from rpx.sweep.reduce import load_reduce_spec, run_reduce
from rpx.sweep.reduce_ops import Histogram, Reductions
from rpx.sweep.runner import run_sweep
from rpx.sweep.spec import Axis, Design, Range, SweepSpec

# Chunks that do not divide the axes, so edge chunks (padded on the device) are covered.
SPEC = SweepSpec(
    model="ghk",
    axes=(
        Axis.logspace("K_o", 1.0, 100.0, 7),
        Axis.linspace("Na_i", 5.0, 50.0, 5),
        Axis.logspace("P_Na", 1e-9, 1e-6, 6),
    ),
    outputs=("V", "E_K"),
    gradients=("K_o",),
    dtype="float64",
    chunks=(("K_o", 3), ("Na_i", 2), ("P_Na", 4)),
).validate()
RED = Reductions(
    histograms=(Histogram("V", -100.0, 50.0, 30), Histogram("dV_dK_o", 0.0, 20.0, 8)),
    marginals=("V", "dV_dK_o"),
    pairs=True,
    extremes=("V", "E_K"),
    band=(-70.0, -40.0),
)


def _cube(spec: SweepSpec, path: Path) -> xr.Dataset:
    run_sweep(spec, path, quiet=True)
    return xr.open_zarr(path).load()


def _check_against_cube(res: xr.Dataset, cube: xr.Dataset, red: Reductions) -> None:
    """Every stored reduction equals the same reduction of the full cube with xarray.

    float64 throughout: the only differences are the order of summation (per-chunk sums
    merged with Chan's update vs one pass), a few ulps of the values reduced.
    """
    dims = list(cube.V.dims)
    groups = [(d,) for d in dims] + (list(combinations(dims, 2)) if red.pairs else [])
    for g in groups:
        by, rest = "_and_".join(g), [d for d in dims if d not in g]
        for name in red.marginals:
            x = cube[name]
            for stat, ref in [
                ("mean", x.mean(rest)), ("var", x.var(rest)),
                ("min", x.min(rest)), ("max", x.max(rest)),
            ]:
                got = res[f"{name}_{stat}_by_{by}"].transpose(*g)
                np.testing.assert_allclose(got.values, ref.transpose(*g).values,
                                           rtol=1e-12, atol=1e-12 * float(abs(x).max()))
            np.testing.assert_array_equal(
                res[f"{name}_count_by_{by}"].transpose(*g).values,
                x.notnull().sum(rest).transpose(*g).values,
            )
        if red.band is not None:
            lo, hi = red.band
            frac = ((cube.V >= lo) & (cube.V <= hi)).mean(rest).transpose(*g)
            np.testing.assert_allclose(
                res[f"V_band_fraction_by_{by}"].transpose(*g).values, frac.values, rtol=1e-14
            )
    if red.band is not None:
        lo, hi = red.band
        inside = float(((cube.V >= lo) & (cube.V <= hi)).mean())
        assert 0 < inside < 1
        assert float(res.V_band_fraction) == pytest.approx(inside, rel=1e-14)
    for h in red.histograms:
        edges = res[f"{h.name}_bin_edge"].values
        values = cube[h.name].values.ravel()
        np.testing.assert_array_equal(res[f"{h.name}_hist"].values,
                                      np.histogram(values, bins=edges)[0])
        assert int(res[f"{h.name}_below"]) == int((values < edges[0]).sum())
        assert int(res[f"{h.name}_above"]) == int((values > edges[-1]).sum())
        assert int(res[f"{h.name}_nan"]) == int(np.isnan(values).sum())
        assert (int(res[f"{h.name}_hist"].sum()) + int(res[f"{h.name}_below"])
                + int(res[f"{h.name}_above"]) + int(res[f"{h.name}_nan"])) == values.size
    for name in red.extremes:
        for which in ("min", "max"):
            at = getattr(cube[name], f"arg{which}")(...)  # first occurrence, C order
            assert float(res[f"{name}_{which}"]) == float(getattr(cube[name], which)())
            for dim, i in at.items():
                assert float(res[f"{name}_arg{which}_{dim}"]) == float(cube[dim][int(i)])


def test_reductions_equal_the_full_cube_reduced_with_xarray(tmp_path: Path) -> None:
    summary = run_reduce(SPEC, tmp_path / "r.zarr", RED, quiet=True)
    assert summary["reduced"] == int(np.prod(SPEC.chunk_grid)) == 18
    res = xr.open_zarr(tmp_path / "r.zarr")
    assert res.attrs["complete"] and res.attrs["chunks_done"] == 18
    assert res.V_mean_by_K_o.attrs["units"] == "mV"
    assert res.V_var_by_K_o.attrs["units"] == "mV^2"
    assert res.dV_dK_o_var_by_Na_i.attrs["units"] == "(mV/mM)^2"
    assert res.K_o.attrs["units"] == "mM" and float(res.K_i) > 0
    _check_against_cube(res, _cube(SPEC, tmp_path / "c.zarr"), RED)


def test_design_dimension_and_extreme_design_coordinates(tmp_path: Path) -> None:
    spec = SweepSpec(
        model="ghk",
        axes=(Axis.logspace("K_o", 2.0, 50.0, 3),),
        design=Design("sobol", 64, (Range("P_Na", 1e-9, 1e-6, log=True), Range("T", 280, 310))),
        dtype="float64",
        chunks=(("K_o", 2), ("sample", 20)),
    ).validate()
    red = Reductions(band=(-75.0, -55.0))
    run_reduce(spec, tmp_path / "r.zarr", red, quiet=True)
    res = xr.open_zarr(tmp_path / "r.zarr")
    cube = _cube(spec, tmp_path / "c.zarr")
    _check_against_cube(res, cube, red)
    i = int(cube.V.argmin(...)["sample"])
    assert int(res.V_argmin_sample) == i
    assert float(res.V_argmin_P_Na) == float(cube.P_Na[i])
    assert float(res.V_argmin_T) == float(cube["T"][i])


def test_float32_reductions_agree_with_the_float32_cube(tmp_path: Path) -> None:
    spec = SweepSpec(**{**SPEC.__dict__, "dtype": "float32"}).validate()
    red = Reductions(histograms=(), marginals=("V",), extremes=(), band=None)
    run_reduce(spec, tmp_path / "r.zarr", red, quiet=True)
    res = xr.open_zarr(tmp_path / "r.zarr")
    V = _cube(spec, tmp_path / "c.zarr").V.astype(np.float64)
    # float32 values (eps 6e-8) summed in float32 within a chunk: a few ulps of |V|.
    np.testing.assert_allclose(res.V_mean_by_P_Na, V.mean(["K_o", "Na_i"]), rtol=1e-5)
    np.testing.assert_allclose(res.V_var_by_P_Na, V.var(["K_o", "Na_i"]), rtol=1e-4)


@pytest.mark.parametrize(
    ("red", "message"),
    [
        (Reductions(marginals=("W",)), "unknown variable 'W'"),
        (Reductions(histograms=(Histogram("V", 0.0, -1.0, 10),)), "finite lo < hi"),
        (Reductions(histograms=(Histogram("V", -1.0, 1.0, 0),)), "bins must be >= 1"),
        (Reductions(band=(-60.0, -80.0)), "band needs finite lo <= hi"),
        (Reductions(extremes=("status",)), "unknown variable 'status'"),
    ],
)
def test_invalid_reductions_name_the_entry_and_write_nothing(
    tmp_path: Path, red: Reductions, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        run_reduce(SPEC, tmp_path / "r.zarr", red, quiet=True)
    assert not (tmp_path / "r.zarr").exists()


def _attrs(store: Path) -> dict:
    try:
        return json.loads((store / "zarr.json").read_text())["attributes"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return {}


def test_checkpoint_sets_pointer_and_count_in_one_root_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kill can fall between any two writes: the root metadata must be written once."""
    from zarr.storage import LocalStore

    run_reduce(SPEC, tmp_path / "r.zarr", RED, quiet=True)
    store = LocalStore(tmp_path / "r.zarr")
    writes: list[str] = []
    original = LocalStore.set

    async def counting_set(self: LocalStore, key: str, value: object) -> None:
        writes.append(key)
        await original(self, key, value)

    monkeypatch.setattr(LocalStore, "set", counting_set)
    plan = make_plan(SPEC)
    state = _reduce.empty_state(plan, RED)
    state["done"][0, 0, 0] = True
    _reduce._write_checkpoint(store, plan, state, 7)
    assert writes.count("zarr.json") == 1
    attrs = _attrs(tmp_path / "r.zarr")
    assert attrs["rpx_state"] == "rpx_state/g7" and attrs["chunks_done"] == 1


def _interrupt_after(chunks: int, out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run SPEC/RED into ``out`` with a checkpoint per chunk; stop after ``chunks`` merges."""
    merge, calls = _reduce.merge, []

    def failing_merge(*args: object) -> None:
        if len(calls) == chunks:
            raise KeyboardInterrupt
        calls.append(1)
        merge(*args)

    monkeypatch.setattr(_reduce, "merge", failing_merge)
    with pytest.raises(KeyboardInterrupt):
        run_reduce(SPEC, out, RED, quiet=True, checkpoint_s=0)
    monkeypatch.setattr(_reduce, "merge", merge)


def test_resume_removes_states_left_by_a_kill(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kill after the root points at g<k> but before g<k-1> is deleted leaves g<k-1>."""
    import shutil

    out = tmp_path / "r.zarr"
    _interrupt_after(3, out, monkeypatch)
    current = _attrs(out)["rpx_state"]
    assert current == "rpx_state/g3"
    shutil.copytree(out / current, out / "rpx_state" / "g2")  # as if the kill came then
    summary = run_reduce(SPEC, out, RED, quiet=True)
    assert summary["skipped"] == 3
    final = _attrs(out)["rpx_state"].split("/")[1]
    assert sorted(p.name for p in (out / "rpx_state").iterdir()) == [final, "zarr.json"]
    reference = tmp_path / "reference.zarr"
    run_reduce(SPEC, reference, RED, quiet=True)
    a, b = xr.open_zarr(out).load(), xr.open_zarr(reference).load()
    for name in b.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


def test_info_reports_progress_then_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`rpx info` on a reduction store: merged chunks while running, results once complete."""
    import warnings

    from rpx.cli.info import store_summary

    out = tmp_path / "r.zarr"
    _interrupt_after(5, out, monkeypatch)
    n = int(np.prod(SPEC.chunk_grid))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no consolidated-metadata or all-NaN warnings
        partial = store_summary(str(out))
    assert f"chunks  5/{n} merged" in partial and "status  in progress" in partial
    assert "space   K_o=7  Na_i=5  P_Na=6  (210 points)" in partial
    assert "variables" not in partial

    run_reduce(SPEC, out, RED, quiet=True)
    done = store_summary(str(out))
    assert f"chunks  {n}/{n} merged (100.0%)" in done and "status  complete" in done
    assert "V_hist" in done and "V_mean_by_K_o " in done


def test_sigkilled_reduce_resumes_bit_identical_and_other_reductions_are_refused(
    tmp_path: Path,
) -> None:
    spec_path = tmp_path / "space.toml"
    spec_path.write_text("""
model = "ghk"
dtype = "float64"
outputs = ["V", "E_K"]
[[axes]]
name = "K_o"
logspace = [1.0, 100.0, 40]
[[axes]]
name = "P_Na"
logspace = [1e-9, 1e-6, 30]
[chunks]
K_o = 1
[reduce]
marginals = ["V", "E_K"]
[[reduce.histograms]]
name = "V"
range = [-120.0, 40.0]
bins = 64
""")
    reference = tmp_path / "reference.zarr"
    cmd = [sys.executable, "-m", "rpx", "reduce", str(spec_path), "--band", "-90", "-50",
           "--pairs", "--checkpoint-s", "0", "--quiet"]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    spec, red = load_reduce_spec(spec_path)
    red = dataclasses.replace(red, band=(-90.0, -50.0), pairs=True)  # as on the command line
    run_reduce(spec, reference, red, quiet=True)

    out = tmp_path / "killed.zarr"
    proc = subprocess.Popen([*cmd, "-o", str(out)], env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and _attrs(out).get("chunks_done", 0) < 12:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    merged = _attrs(out)["chunks_done"]
    assert 12 <= merged < 40 and not _attrs(out)["complete"]

    result = subprocess.run([*cmd, "-o", str(out)], env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    # The resumed run continues from the checkpoint the root attributes name, which is
    # exactly the number of chunks they report (one write sets pointer and count).
    assert f"({40 - merged} this run, {merged} already merged)" in result.stdout
    a, b = xr.open_zarr(out).load(), xr.open_zarr(reference).load()
    assert a.attrs["complete"] and sorted(a.data_vars) == sorted(b.data_vars)
    for name in b.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
    assert a.V_mean_by_K_o_and_P_Na.shape == (40, 30)
    assert float(a.V_band_fraction) > 0

    refused = subprocess.run(
        [sys.executable, "-m", "rpx", "reduce", str(spec_path), "-o", str(out), "--quiet"],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert refused.returncode == 2 and "use --overwrite" in refused.stderr


def test_nan_points_and_integer_outputs_are_reduced_like_xarray_skipna(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import jax.numpy as jnp

    from rpx.physics import models as _models
    from rpx.physics.models import Model, Output

    def fn(p: dict) -> dict:
        bad = (p["K_o"] > 50.0) | (p["K_o"] * p["Na_i"] > 400.0)  # whole rows and points
        V = jnp.where(bad, jnp.nan, -80.0 + p["K_o"] - 0.1 * p["Na_i"])
        return {"V": V, "status": jnp.where(bad, 2, 0).astype(jnp.int32)}

    model = Model(
        name="test_nan_model", fn=fn, params=("K_o", "Na_i"), description="NaN test model",
        outputs={"V": Output("mV", "test voltage"),
                 "status": Output("1", "test status", integer=True)},
    )
    monkeypatch.setitem(_models._REGISTRY, model.name, model)  # registered for this test only
    spec = SweepSpec(
        model="test_nan_model",
        axes=(Axis.linspace("K_o", 1.0, 60.0, 9), Axis.linspace("Na_i", 5.0, 50.0, 8)),
        dtype="float64", chunks=(("K_o", 4), ("Na_i", 3)),
    ).validate()
    red = Reductions(
        histograms=(Histogram("V", -90.0, 0.0, 9), Histogram("status", -0.5, 2.5, 3)),
        marginals=("V", "status"), pairs=True, extremes=("V",), band=(-70.0, -30.0),
    )
    run_reduce(spec, tmp_path / "r.zarr", red, quiet=True)
    res = xr.open_zarr(tmp_path / "r.zarr").load()
    cube = _cube(spec, tmp_path / "c.zarr")
    assert 0 < int(res.V_nan) < spec.size and (res.V_count_by_K_o == 0).any()
    np.testing.assert_array_equal(res.status_hist.values, [spec.size - int(res.V_nan), 0,
                                                           int(res.V_nan)])
    _check_against_cube(res, cube, red)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    ("hist", "uniform"),
    [
        (Histogram("V", -150.0, 100.0, 250), True),
        (Histogram("V", -100.0, 50.0, 30), True),
        (Histogram("V", 1000.0, 1000.01, 160), False),  # float32: bins of ~2 ulps
    ],
)
def test_histogram_bins_are_exact_at_every_edge_and_its_neighbours(
    hist: Histogram, uniform: bool, dtype: str
) -> None:
    import jax.numpy as jnp

    from rpx.sweep.reduce_ops import _histogram, _uniform_scale

    edges = hist.edges(dtype)
    assert (_uniform_scale(edges) is not None) == (uniform or dtype == "float64")
    rng = np.random.default_rng(0)
    span = edges[-1] - edges[0]
    x = np.concatenate([
        edges, np.nextafter(edges, -np.inf), np.nextafter(edges, np.inf),
        rng.uniform(edges[0] - span / 10, edges[-1] + span / 10, 5000),
        [np.nan, np.inf, -np.inf],
    ]).astype(dtype)
    x = x[~((x != 0) & (np.abs(x) < np.finfo(dtype).tiny))]  # XLA flushes subnormals to 0
    valid = rng.random(x.size) < 0.9
    counts = np.asarray(_histogram(jnp.asarray(x), jnp.asarray(valid), edges, hist))
    kept = x[valid]
    finite = kept[~np.isnan(kept)]
    np.testing.assert_array_equal(counts[1:-2], np.histogram(finite, bins=edges)[0])
    assert counts[0] == (finite < edges[0]).sum() and counts[-2] == (finite > edges[-1]).sum()
    assert counts[-1] == np.isnan(kept).sum() and counts.sum() == valid.sum()
