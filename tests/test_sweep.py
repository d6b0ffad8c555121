"""Sweep engine: spec validation, cube contents, chunk layout, compilation, resume, URLs."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr
import zarr

import rpx
from rpx.sweep.kernel import device_inputs, make_chunk_fn
from rpx.sweep.plan import make_plan
from rpx.sweep.runner import run_sweep
from rpx.sweep.spec import Axis, Design, Range, SweepSpec, load_spec, spec_from_dict
from rpx.sweep.store import done_chunks, open_store

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def small_spec(**kw: object) -> SweepSpec:
    base = dict(
        model="ghk",
        axes=(Axis.logspace("K_o", 1.0, 100.0, 7), Axis.linspace("Na_i", 5.0, 50.0, 5)),
        outputs=("V", "nernst"),
        dtype="float64",
        chunks=(("K_o", 3), ("Na_i", 2)),
    )
    base.update(kw)
    return SweepSpec(**base).validate()


# ------------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"model": "nope"}, "unknown model 'nope'"),
        ({"axes": [{"name": "K_x", "values": [1.0]}]}, "unknown parameter 'K_x'"),
        ({"axes": [{"name": "K_o", "values": []}]}, "axis K_o is empty"),
        ({"axes": [{"name": "K_o", "values": [1.0, -2.0]}]}, "K_o=-2.0 is outside"),
        ({"axes": [{"name": "K_o", "logspace": [0.0, 10.0, 5]}]}, "logspace needs start > 0"),
        ({"axes": [{"name": "K_o", "linspace": [1.0, 10.0, 0]}]}, "num must be a positive"),
        ({"axes": [{"name": "T", "values": [0.0]}]}, "T=0.0 is outside its allowed range"),
        ({"axes": [{"name": "r_pump", "values": [1.5]}]}, "r_pump is not read by this model"),
        ({"chunks": {"K_o": 0}}, "chunks: K_o=0 does not fit"),
        ({"chunks": {"K_o": 99}}, "chunks: K_o=99 does not fit"),
        ({"chunks": {"P_K": 1}}, "'P_K' is not a dimension"),
        ({"fixed": {"K_o": 3.0}}, "K_o is both swept and fixed"),
        ({"fixed": {"P_K": 0.0, "P_Na": 0.0, "P_Cl": 0.0}}, "are all zero"),
        ({"outputs": ["W"]}, "unknown output 'W'"),
        ({"dtype": "float16"}, "dtype must be one of"),
        ({"preset": "octopus"}, "unknown preset 'octopus'"),
        ({"colour": "red"}, "unknown spec entries"),
        (
            {"design": {"method": "sobol", "n": 8, "ranges": [{"name": "P_K", "lo": 2e-6,
                                                                "hi": 1e-6}]}},
            "lo must be < hi",
        ),
        ({"design": {"method": "magic", "n": 8, "ranges": []}}, "design method 'magic'"),
    ],
)
def test_invalid_spec_names_the_entry_and_writes_nothing(
    tmp_path: Path, entry: dict, message: str
) -> None:
    d = {"model": "ghk", "axes": [{"name": "K_o", "values": [1.0, 10.0]}], **entry}
    out = tmp_path / "out.zarr"
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        run_sweep(spec_from_dict(d), out, quiet=True)
    assert not out.exists()


def test_spec_round_trips_through_dict_and_hash_is_stable() -> None:
    spec = small_spec(
        design=Design("sobol", 16, (Range("P_Na", 1e-9, 1e-6, log=True),), seed=3),
        gradients=("K_o", "P_Na"),
        log_gradients=True,
    )
    again = spec_from_dict(json.loads(spec.to_json()))
    assert again == spec
    assert again.hash() == spec.hash()
    assert small_spec(dtype="float32").hash() != spec.hash()


# examples/sensitivity.toml is a global-sensitivity spec (tests/test_global.py) and
# examples/solutions.toml a junction-potential recipe (rpx ljp); the others are sweeps.
NOT_SWEEPS = {"sensitivity.toml", "solutions.toml"}
SWEEP_EXAMPLES = sorted(p for p in EXAMPLES.glob("*.toml") if p.name not in NOT_SWEEPS)


@pytest.mark.parametrize("path", SWEEP_EXAMPLES, ids=lambda p: p.name)
def test_examples_load(path: Path) -> None:
    assert load_spec(path).size > 0


# --------------------------------------------------------------------- cube contents
def test_cube_matches_pointwise_evaluation_and_is_labelled(tmp_path: Path) -> None:
    spec = small_spec(fixed=(("P_Na", 2e-8),), gradients=("K_o",), log_gradients=True)
    run_sweep(spec, tmp_path / "c.zarr", quiet=True)
    ds = xr.open_zarr(tmp_path / "c.zarr")
    assert ds.V.dims == ("K_o", "Na_i")
    K, N = np.meshgrid(ds.K_o.values, ds.Na_i.values, indexing="ij")
    expect = rpx.resting_potential({"K_o": K, "Na_i": N, "P_Na": 2e-8}, model="ghk")
    # Same float64 arithmetic in the same order: equal to rounding.
    np.testing.assert_allclose(ds.V.values, np.asarray(expect), rtol=1e-12)
    E_K = rpx.nernst(K, np.float64(ds.K_i), 1, np.float64(ds.T))
    np.testing.assert_allclose(ds.E_K.values, np.asarray(E_K), rtol=1e-12)
    grad = jax.vmap(
        jax.grad(lambda k, n: rpx.resting_potential({"K_o": k, "Na_i": n, "P_Na": 2e-8}))
    )(jnp.asarray(K.ravel()), jnp.asarray(N.ravel()))
    np.testing.assert_allclose(ds.dV_dK_o.values.ravel(), np.asarray(grad), rtol=1e-10)
    np.testing.assert_allclose(
        ds.dV_dlog10_K_o.values, ds.dV_dK_o.values * K * np.log(10.0), rtol=1e-12
    )
    for name in [*ds.data_vars, *ds.coords]:
        if name in ds.dims and name not in spec.swept:
            continue
        assert ds[name].attrs.get("units"), name
        assert ds[name].attrs.get("long_name"), name
    assert ds.dV_dK_o.attrs["units"] == "mV/mM"
    assert ds.dV_dlog10_K_o.attrs["units"] == "mV/decade"
    assert float(ds.P_Na) == 2e-8 and ds.P_Na.attrs["units"] == "cm/s"
    assert ds.attrs["model"] == "ghk" and ds.attrs["spec_hash"] == spec.hash()
    assert spec_from_dict(json.loads(ds.attrs["spec"])) == spec
    assert ds.attrs["rpx_version"] == rpx.__version__ and ds.attrs["created"]


def test_permeability_gradient_units_are_bracketed(tmp_path: Path) -> None:
    spec = small_spec(gradients=("P_Na",))
    run_sweep(spec, tmp_path / "g.zarr", quiet=True)
    assert xr.open_zarr(tmp_path / "g.zarr").dV_dP_Na.attrs["units"] == "mV/(cm/s)"


def test_design_gives_a_sample_dimension(tmp_path: Path) -> None:
    design = Design("sobol", 32, (Range("P_Na", 1e-9, 1e-6, log=True), Range("T", 280, 310)))
    spec = SweepSpec(
        model="ghk_pump", axes=(Axis("K_o", (2.0, 20.0)),), design=design, dtype="float64",
        chunks=(("sample", 10),),
    ).validate()
    run_sweep(spec, tmp_path / "d.zarr", quiet=True)
    ds = xr.open_zarr(tmp_path / "d.zarr")
    assert ds.V.dims == ("K_o", "sample") and ds.sizes["sample"] == 32
    assert ds.P_Na.dims == ("sample",)
    assert 1e-9 <= ds.P_Na.min() and ds.P_Na.max() <= 1e-6
    np.testing.assert_array_equal(ds.P_Na.values, design.points()[:, 0])
    expect = rpx.resting_potential(
        {"K_o": ds.K_o.values[:, None], "P_Na": ds.P_Na.values, "T": ds["T"].values},
        model="ghk_pump",
    )
    np.testing.assert_allclose(ds.V.values, np.asarray(expect), rtol=1e-10)
    assert (ds.status.values == 0).all()


@pytest.mark.parametrize("method", ["uniform", "loguniform", "sobol", "lhs"])
def test_designs_are_reproducible_and_in_range(method: str) -> None:
    d = Design(method, 64, (Range("K_o", 1.0, 100.0, log=True), Range("T", 280.0, 310.0)), 7)
    pts = d.points()
    np.testing.assert_array_equal(pts, d.points())
    assert pts.shape == (64, 2)
    assert (pts[:, 0] >= 1.0).all() and (pts[:, 0] <= 100.0).all()
    assert (pts[:, 1] >= 280.0).all() and (pts[:, 1] <= 310.0).all()


# ---------------------------------------------------------------- layout and compile
def test_chunk_keys_are_exactly_the_evaluation_chunks(tmp_path: Path) -> None:
    spec = small_spec()  # shape (7, 5), chunks (3, 2) -> grid (3, 3)
    run_sweep(spec, tmp_path / "k.zarr", quiet=True)
    store = open_store(tmp_path / "k.zarr")
    expected = {(i, j) for i in range(3) for j in range(3)}
    assert done_chunks(store) == expected
    keys = {p.relative_to(tmp_path / "k.zarr" / "V" / "c").parts for p in
            (tmp_path / "k.zarr" / "V" / "c").rglob("*") if p.is_file()}
    assert {tuple(int(x) for x in k) for k in keys} == expected
    arr = zarr.open_array(tmp_path / "k.zarr" / "V", mode="r")
    assert arr.chunks == (3, 2)
    assert "zstd" in str(arr.metadata.codecs).lower()


def test_kernel_compiles_once_for_all_chunks_including_edges() -> None:
    plan = make_plan(small_spec(gradients=("K_o",)))
    kernel = make_chunk_fn(plan)
    axes, table, fixed = device_inputs(plan)
    for index in plan.chunk_indices():
        kernel(axes, table, fixed, jnp.asarray(plan.chunk_offsets(index)))
    assert kernel._cache_size() == 1
    assert make_plan(small_spec(gradients=("K_o",))) is plan  # one plan per spec


# -------------------------------------------------------------------- resume, errors
def test_rerun_resumes_and_other_specs_are_refused(tmp_path: Path) -> None:
    out = tmp_path / "r.zarr"
    spec = small_spec()
    first = run_sweep(spec, out, quiet=True)
    assert first["written"] == 9
    again = run_sweep(spec, out, quiet=True)
    assert again == {**first, "skipped": 9, "written": 0}
    before = sorted(p.read_bytes() for p in out.rglob("*") if p.is_file())
    with pytest.raises(ValueError, match="holds a different sweep"):
        run_sweep(small_spec(dtype="float32"), out, quiet=True)
    assert sorted(p.read_bytes() for p in out.rglob("*") if p.is_file()) == before
    assert run_sweep(small_spec(dtype="float32"), out, overwrite=True, quiet=True)["written"] == 9
    with pytest.raises(ValueError, match="cannot resume"):
        run_sweep(spec, tmp_path / "missing.zarr", resume=True, quiet=True)


def test_overwrite_refuses_a_directory_that_is_not_a_store(tmp_path: Path) -> None:
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "thesis.tex").write_text("x")
    with pytest.raises(ValueError, match="is not a zarr store"):
        run_sweep(small_spec(), tmp_path / "precious", overwrite=True, quiet=True)
    assert (tmp_path / "precious" / "thesis.tex").exists()


def test_missing_chunks_are_recomputed_identically(tmp_path: Path) -> None:
    out = tmp_path / "m.zarr"
    spec = small_spec()
    run_sweep(spec, out, quiet=True)
    reference = xr.open_zarr(out).V.values
    chunk = out / "V" / "c" / "1" / "2"
    original = chunk.read_bytes()
    chunk.write_bytes(b"garbage")  # a torn write whose marker never made it
    (out / "rpx_done" / "1.2").unlink()
    summary = run_sweep(spec, out, quiet=True)
    assert summary["written"] == 1
    assert chunk.read_bytes() == original
    np.testing.assert_array_equal(xr.open_zarr(out).V.values, reference)


def test_fsspec_url_store(tmp_path: Path) -> None:
    url = f"memory://rpx-test-{tmp_path.name}/cube.zarr"
    spec = small_spec()
    run_sweep(spec, url, quiet=True)
    ds = xr.open_zarr(open_store(url, read_only=True))
    local = tmp_path / "l.zarr"
    run_sweep(spec, local, quiet=True)
    np.testing.assert_array_equal(ds.V.values, xr.open_zarr(local).V.values)
    assert run_sweep(spec, url, quiet=True)["skipped"] == 9


def test_spec_containers_may_be_lists_dicts_and_arrays() -> None:
    """A spec built from numpy arrays, lists and a dict equals the tuple-built one."""
    as_tuples = SweepSpec(
        model="ghk", axes=(Axis("K_o", (2.0, 5.0, 10.0)),), fixed=(("P_Na", 2e-8),),
        outputs=("V", "E_K"), gradients=("K_o",),
        design=Design("sobol", 8, (Range("T", 280.0, 310.0),)),
    )
    as_given = SweepSpec(
        model="ghk", axes=[Axis("K_o", np.array([2, 5, 10]))], fixed={"P_Na": 2e-8},
        outputs=["V", "E_K"], gradients="K_o",
        design=Design("sobol", 8, [Range("T", 280.0, 310.0)]),
    )
    assert as_given == as_tuples and hash(as_given) == hash(as_tuples)
    assert as_given.hash() == as_tuples.hash()
    assert make_plan(as_given).shape == (3, 8)
