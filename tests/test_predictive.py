"""rpx.posterior_predictive and ``rpx predict``: band probabilities and quantiles of V over
a sweep space against a brute-force evaluation of every draw at every point.

The posteriors here are synthetic draws laid out as ``rpx.sample`` stores them (dims
cell, chain, draw; attributes ``model`` and ``free``), so that the checks are exact and
fast: the reference evaluates all draws at all points with ``rpx.evaluate`` (float64)
and counts with numpy. Small ``max_evaluations`` force several chunks (edge chunks
included) and several cell batches.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import rpx
from rpx.analysis.predictive import posterior_predictive
from rpx.cli import main
from rpx.sweep.store import write_dataset_store

PRESET = "mammalian_neuron"
BAND = (-75.0, -65.0)  # mV
QS = (0.05, 0.5, 0.95)
K_O = tuple(np.geomspace(2.0, 20.0, 5).tolist())  # mM
NA_O = (100.0, 145.0)  # mM


def synthetic_posterior(cells: int | None = 3, chains: int = 2, draws: int = 30,
                        seed: int = 0) -> xr.Dataset:
    """Draws of P_Na and P_K around the preset's, spread so that V straddles ``BAND``."""
    rng = np.random.default_rng(seed)
    shape = (cells or 1, chains, draws)
    p = rpx.preset(PRESET)
    scale = np.exp(0.3 * rng.standard_normal((cells or 1, 1, 1)))  # per-cell centre
    draws_ = {
        "P_Na": p["P_Na"] * scale * np.exp(0.6 * rng.standard_normal(shape)),
        "P_K": p["P_K"] * np.exp(0.2 * rng.standard_normal(shape)),
    }
    dims = ("cell", "chain", "draw")
    v = {n: (dims, x, {"units": "cm/s", "long_name": f"posterior draws of {n}"})
         for n, x in draws_.items()}
    v["converged"] = (("cell",), np.array([True] * (cells or 1)),
                      {"units": "1", "long_name": "converged"})
    v["K_i"] = ((), p["K_i"], {"units": "mM", "long_name": "K_i (fixed)"})
    ds = xr.Dataset(v, coords={"cell": ("cell", [f"c{i}" for i in range(cells or 1)],
                                        {"units": "1", "long_name": "cell label"})})
    ds.attrs = {"model": "ghk", "preset": PRESET, "free": ["P_Na", "P_K"]}
    return ds.isel(cell=0, drop=True) if cells is None else ds


def grid_spec(**kw: object) -> rpx.SweepSpec:
    return rpx.SweepSpec(
        model="ghk", preset=PRESET, dtype="float64",
        axes=(rpx.Axis("K_o", K_O), rpx.Axis("Na_o", NA_O)), **kw,
    )


def brute_force(ds: xr.Dataset, params: dict[str, np.ndarray]) -> np.ndarray:
    """V (cells, *space, draws) of every draw at every point, in one rpx.evaluate call."""
    cells = ds.sizes.get("cell", 1)
    nd = next(iter(params.values())).ndim
    theta = {n: ds[n].values.reshape(cells, *([1] * nd), -1) for n in ds.attrs["free"]}
    space = {k: v[None, ..., None] for k, v in params.items()}
    return np.asarray(rpx.evaluate({**space, **theta}, model="ghk", base=PRESET)["V"])


def grid_V(ds: xr.Dataset) -> np.ndarray:
    K, Na = np.meshgrid(np.asarray(K_O), np.asarray(NA_O), indexing="ij")
    return brute_force(ds, {"K_o": K, "Na_o": Na})


def test_band_probability_and_quantiles_per_cell_equal_brute_force() -> None:
    ds = synthetic_posterior()
    # 60 draws per cell and 400 evaluations per call: one cell per batch, chunks of
    # 6 points over a 5 x 2 grid (edge chunks padded)
    out = posterior_predictive(ds, grid_spec(), band=BAND, quantiles=QS, max_evaluations=400)
    V = grid_V(ds)
    assert 0.1 < np.mean((V >= BAND[0]) & (V <= BAND[1])) < 0.9  # a real test of counting
    inside = ((V >= BAND[0]) & (V <= BAND[1])).sum(-1)
    np.testing.assert_array_equal(out["V_band_probability"].values, inside / V.shape[-1])
    np.testing.assert_allclose(out["V_quantile"].values, np.quantile(V, QS, axis=-1),
                               rtol=1e-12, atol=1e-12)
    assert out["V_band_probability"].dims == ("cell", "K_o", "Na_o")
    assert out["V_quantile"].dims == ("quantile", "cell", "K_o", "Na_o")
    np.testing.assert_array_equal(out["V_nan_fraction"].values, 0.0)
    # a thinned posterior
    thin = posterior_predictive(ds, grid_spec(), band=BAND, draws=20, max_evaluations=400)
    idx = np.arange(20) * 60 // 20
    want = ((V[..., idx] >= BAND[0]) & (V[..., idx] <= BAND[1])).mean(-1)
    np.testing.assert_array_equal(thin["V_band_probability"].values, want)
    assert thin.attrs["draws_per_cell"] == 20


def test_pooled_over_cells_on_a_sampled_design() -> None:
    ds = synthetic_posterior(cells=4)
    spec = rpx.SweepSpec(
        model="ghk", preset=PRESET, dtype="float64",
        axes=(rpx.Axis("Na_o", NA_O),),
        design=rpx.Design("sobol", 8, (rpx.Range("K_o", 2.0, 20.0, log=True),), seed=1),
    )
    out = posterior_predictive(ds, spec, band=BAND, quantiles=QS, pooled=True,
                               max_evaluations=1000)
    pts = spec.design.points()[:, 0]
    K, Na = np.meshgrid(pts, np.asarray(NA_O), indexing="ij")  # (sample, Na_o)
    V = brute_force(ds, {"K_o": K.T, "Na_o": Na.T})  # (cells, Na_o, sample, draws)
    V = np.moveaxis(V, 0, -2).reshape(len(NA_O), 8, -1)  # all cells' draws together
    np.testing.assert_array_equal(out["V_band_probability"].values,
                                  ((V >= BAND[0]) & (V <= BAND[1])).mean(-1))
    np.testing.assert_allclose(out["V_quantile"].values, np.quantile(V, QS, axis=-1),
                               rtol=1e-12, atol=1e-12)
    assert out["V_band_probability"].dims == ("Na_o", "sample")
    assert "cell" not in out.dims and out.attrs["pooled"] and out.attrs["cells"] == 4
    np.testing.assert_allclose(out["K_o"].values, pts)


def test_undefined_draws_are_outside_the_band_and_left_out_of_quantiles(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where the model has no valid V (status != 0, V NaN) a draw counts as outside the
    band and the quantiles are those of the defined draws (numpy.nanquantile)."""
    import jax.numpy as jnp

    from rpx.physics import models as _models
    from rpx.physics.models import Model, Output

    def fn(p: dict) -> dict:
        bad = p["P_Na"] > 2e-8
        V = jnp.where(bad, jnp.nan, -90.0 + 0.5 * p["K_o"] + 1e9 * p["P_Na"])
        return {"V": V, "status": jnp.where(bad, 2, 0).astype(jnp.int32)}

    model = Model(name="test_nan_model", fn=fn, params=("K_o", "P_Na"),
                  description="NaN test model",
                  outputs={"V": Output("mV", "test voltage"),
                           "status": Output("1", "test status", integer=True)})
    monkeypatch.setitem(_models._REGISTRY, model.name, model)  # for this test only
    rng = np.random.default_rng(5)
    x = 1e-8 * np.exp(0.8 * rng.standard_normal((2, 2, 40)))
    ds = xr.Dataset({"P_Na": (("cell", "chain", "draw"), x,
                              {"units": "cm/s", "long_name": "draws"})},
                    coords={"cell": ["a", "b"]},
                    attrs={"model": "test_nan_model", "free": ["P_Na"]})
    K = np.array([1.0, 5.0, 20.0])
    spec = rpx.SweepSpec(model="test_nan_model", dtype="float64",
                         axes=(rpx.Axis("K_o", tuple(K.tolist())),))
    out = posterior_predictive(ds, spec, band=BAND, quantiles=QS)
    xs = x.reshape(2, 1, -1)
    V = np.where(xs > 2e-8, np.nan, -90.0 + 0.5 * K[None, :, None] + 1e9 * xs)
    assert 0 < np.isnan(V).mean() < 0.5
    np.testing.assert_array_equal(out["V_nan_fraction"].values, np.isnan(V).mean(-1))
    with np.errstate(invalid="ignore"):
        inside = ((V >= BAND[0]) & (V <= BAND[1])).mean(-1)
    assert 0 < inside.mean() < 1
    np.testing.assert_array_equal(out["V_band_probability"].values, inside)
    np.testing.assert_allclose(out["V_quantile"].values, np.nanquantile(V, QS, axis=-1),
                               rtol=1e-12)


def test_labels_units_and_attributes() -> None:
    out = posterior_predictive(synthetic_posterior(cells=None), grid_spec(), band=BAND,
                               quantiles=QS)
    assert "cell" not in out.dims  # a posterior without cells gives none
    for name, var in {**out.data_vars, **out.coords}.items():
        assert var.attrs.get("units") and var.attrs.get("long_name"), name
    assert out["V_band_probability"].attrs["units"] == "1"
    assert "-75 <= V <= -65 mV" in out["V_band_probability"].attrs["long_name"]
    assert out["V_quantile"].attrs["units"] == "mV"
    assert out["K_o"].attrs["units"] == "mM" and out["Na_i"].attrs["units"] == "mM"
    assert "P_Na" not in out.coords and "P_K" not in out.coords  # sampled, not fixed
    assert out.attrs["kind"] == "predictive" and out.attrs["model"] == "ghk"
    assert out.attrs["band"] == list(BAND) and out.attrs["quantiles"] == list(QS)
    assert rpx.spec_from_dict(json.loads(out.attrs["spec"])) == grid_spec()


def test_a_differing_fixed_value_is_named() -> None:
    ds = synthetic_posterior()
    with pytest.warns(UserWarning, match=r"K_i = 150 mM in the spec, but the posterior "
                                         r"was sampled with K_i = 140"):
        posterior_predictive(ds, grid_spec(fixed=(("K_i", 150.0),)), band=BAND)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        posterior_predictive(ds, grid_spec(), band=BAND)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "give band=.* and/or quantiles"),
        ({"band": (-60.0, -70.0)}, "band needs finite lo <= hi"),
        ({"band": (-60.0, np.inf)}, "band needs finite lo <= hi"),
        ({"band": (1.0,)}, r"band must be \(lo, hi\)"),
        ({"quantiles": (0.5, 1.5)}, r"quantiles must lie in \[0, 1\], got 1.5"),
        ({"quantiles": (0.5, 0.5)}, "quantiles must be distinct"),
        ({"quantiles": (0.95, 0.05)}, "quantiles must be in increasing order"),
        ({"band": BAND, "draws": 61}, r"draws must be an integer in 1..60"),
        ({"band": BAND, "max_evaluations": 0}, "max_evaluations must be a positive integer"),
        ({"band": BAND, "spec": grid_spec().__class__(model="mullins_noda", axes=(
            rpx.Axis("K_o", K_O),))}, "model 'mullins_noda' is not the posterior's model 'ghk'"),
        ({"band": BAND, "spec": rpx.SweepSpec(model="ghk", axes=(rpx.Axis("P_Na", (1e-8,)),))},
         "P_Na is sampled in the posterior; it cannot be swept"),
        ({"band": BAND, "spec": grid_spec(fixed=(("P_K", 1e-7),))},
         "P_K is sampled in the posterior; it cannot be fixed"),
    ],
)
def test_bad_input_is_one_line_value_error(kwargs: dict, match: str) -> None:
    spec = kwargs.pop("spec", grid_spec())
    with pytest.raises(ValueError, match=match) as info:
        posterior_predictive(synthetic_posterior(), spec, **kwargs)
    assert "\n" not in str(info.value)


def test_bad_posterior_is_one_line_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no zarr store at"):
        posterior_predictive(tmp_path / "none.zarr", grid_spec(), band=BAND)
    fit = tmp_path / "fit.zarr"
    write_dataset_store(xr.Dataset(attrs={"model": "ghk", "free": ["P_Na"]}), fit, "fit", {})
    with pytest.raises(ValueError, match="holds an rpx fit .*not an rpx posterior sample"):
        posterior_predictive(fit, grid_spec(), band=BAND)
    ds = synthetic_posterior().drop_vars("P_K")
    with pytest.raises(ValueError, match="no draws of P_K"):
        posterior_predictive(ds, grid_spec(), band=BAND)


SPEC_TOML = """
model = "ghk"
preset = "mammalian_neuron"
dtype = "float64"
[[axes]]
name = "K_o"
logspace = [2.0, 20.0, 5]
[[axes]]
name = "Na_o"
values = [100.0, 145.0]
"""


def test_cli_writes_the_same_results(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ds = synthetic_posterior()
    post = tmp_path / "post.zarr"
    write_dataset_store(ds, post, "posterior", {})
    spec = tmp_path / "space.toml"
    spec.write_text(SPEC_TOML)
    out = tmp_path / "pred.zarr"
    args = ["predict", str(post), str(spec), "--band", "-75", "-65",
            "--quantiles", "0.05,0.5,0.95", "-o", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "P(-75 <= V <= -65 mV)" in text and f"wrote {out}" in text
    got = xr.open_zarr(out)
    want = posterior_predictive(ds, grid_spec(), band=BAND, quantiles=QS)
    np.testing.assert_array_equal(got["V_band_probability"].values,
                                  want["V_band_probability"].values)
    np.testing.assert_array_equal(got["V_quantile"].values, want["V_quantile"].values)
    assert got.attrs["kind"] == "predictive"
    assert main(["info", str(out)]) == 0
    assert "a posterior predictive map" in capsys.readouterr().out
    assert got["V_band_probability"].attrs["units"] == "1"
    assert main(args) == 2  # an existing store is refused without --overwrite
    assert "pass --overwrite" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ([], "give --band LO HI and/or --quantiles"),
        (["--band", "-60", "-70"], "--band needs finite LO <= HI"),
        (["--quantiles", "0.5,x"], "--quantiles: 'x' is not a number"),
        (["--quantiles", "2"], "--quantiles must lie in [0, 1]"),
        (["--band", "-75", "-65", "--draws", "0"], "--draws must be a positive integer"),
        (["--band", "-75", "-65", "--draws", "1000"], "draws must be an integer in 1..60"),
    ],
)
def test_cli_bad_input_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture, extra: list[str], match: str
) -> None:
    post = tmp_path / "post.zarr"
    write_dataset_store(synthetic_posterior(), post, "posterior", {})
    spec = tmp_path / "space.toml"
    spec.write_text(SPEC_TOML)
    assert main(["predict", str(post), str(spec), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rpx: error: ") and match in err and err.count("\n") == 1


def test_cli_bad_files_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    spec = tmp_path / "space.toml"
    spec.write_text(SPEC_TOML)
    assert main(["predict", str(tmp_path / "none.zarr"), str(spec), "--band", "-75",
                 "-65"]) == 2
    assert "no zarr store at" in capsys.readouterr().err
    post = tmp_path / "post.zarr"
    write_dataset_store(synthetic_posterior(), post, "posterior", {})
    other = tmp_path / "other.toml"
    other.write_text(SPEC_TOML.replace('"ghk"', '"mullins_noda"'))
    assert main(["predict", str(post), str(other), "--band", "-75", "-65"]) == 2
    assert "is not the posterior's model 'ghk'" in capsys.readouterr().err
    assert main(["predict", str(post), str(tmp_path / "no.toml"), "--band", "-75",
                 "-65"]) == 2
    assert "cannot read spec" in capsys.readouterr().err


def test_posterior_predictive_is_public_and_lazy() -> None:
    assert rpx.posterior_predictive is posterior_predictive


@pytest.mark.parametrize("pooled", [False, True])
def test_convergence_flags_are_kept_without_a_cell_dimension(pooled: bool) -> None:
    """A posterior without cells, or cells pooled: the result still says whether the
    posterior converged (all pooled cells) and its largest R-hat."""
    ds = synthetic_posterior(cells=None if not pooled else 2)
    ds["converged"] = ds["converged"].copy(data=np.zeros(ds["converged"].shape, bool))
    ds["max_rhat"] = ds["converged"].copy(data=np.full(ds["converged"].shape, 1.3))
    ds["max_rhat"].attrs = {"units": "1", "long_name": "largest R-hat"}
    out = posterior_predictive(ds, grid_spec(), band=BAND, pooled=pooled)
    assert out["converged"].dims == () and not bool(out["converged"])
    assert out["max_rhat"].dims == () and float(out["max_rhat"]) == 1.3


def test_info_on_a_predictive_store_lists_its_axes(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """`rpx info` on a posterior predictive store: its space's dims and every axis with
    its number of values, range and units, as for a sweep."""
    ds = posterior_predictive(synthetic_posterior(), grid_spec(), band=BAND, quantiles=QS)
    out = tmp_path / "pred.zarr"
    write_dataset_store(ds, out, "predictive", {})
    assert main(["info", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "dims    K_o=5  Na_o=2  (10 points)" in lines, lines
    start = lines.index("axes:")
    k_o, na_o = lines[start + 1].split(), lines[start + 2].split()
    assert k_o[:5] == ["K_o", "[mM]", "5", "values", "2..20"], lines
    assert na_o[:5] == ["Na_o", "[mM]", "2", "values", "100..145"], lines


def test_a_real_posterior_through_the_predictive(tmp_path: Path) -> None:
    """rpx.sample's own draws (2 cells, float64), written as `rpx sample -o` writes
    them, give the band probabilities and quantiles of every draw evaluated directly."""
    import pandas as pd

    p = rpx.preset(PRESET)
    K, Na = (a.ravel() for a in np.meshgrid(K_O, NA_O, indexing="ij"))
    true = {"P_Na": p["P_Na"] * np.array([[0.7], [1.5]])}
    V = np.asarray(rpx.evaluate({"K_o": K[None], "Na_o": Na[None], **true}, model="ghk",
                                base=PRESET)["V"])
    V = V + 0.5 * np.random.default_rng(0).standard_normal(V.shape)
    df = pd.DataFrame({"cell": np.repeat(["a", "b"], K.size), "K_o": np.tile(K, 2),
                       "Na_o": np.tile(Na, 2), "V": V.ravel(), "V_sd": 0.5})
    post = rpx.sample(df, model="ghk", free=["P_Na"], preset=PRESET, draws=100, warmup=100,
                      chains=2, seed=0, cell_batch=2, dtype="float64")
    assert {str(v.dtype) for v in post.data_vars.values() if v.dtype.kind == "f"} == {
        "float64"}
    store = tmp_path / "post.zarr"
    write_dataset_store(post, store, "posterior", {})
    got = posterior_predictive(str(store), grid_spec(), band=BAND, quantiles=QS,
                               max_evaluations=400)
    theta = post["P_Na"].values.reshape(2, 1, 1, -1)
    Kg, Nag = np.meshgrid(np.asarray(K_O), np.asarray(NA_O), indexing="ij")
    ref = np.asarray(rpx.evaluate({"K_o": Kg[None, ..., None], "Na_o": Nag[None, ..., None],
                                   "P_Na": theta}, model="ghk", base=PRESET)["V"])
    inside = ((ref >= BAND[0]) & (ref <= BAND[1])).mean(axis=-1)
    np.testing.assert_allclose(got["V_band_probability"].values, inside, atol=1e-12)
    np.testing.assert_allclose(got["V_quantile"].values,
                               np.moveaxis(np.quantile(ref, QS, axis=-1), 0, 0), rtol=1e-10)
    assert list(got["cell"].values) == ["a", "b"]
    np.testing.assert_array_equal(got["converged"].values, post["converged"].values)
    # the cells' posteriors differ as their P_Na do: lower P_Na, more negative V
    assert np.all(got["V_quantile"].sel(quantile=0.5).values[0]
                  < got["V_quantile"].sel(quantile=0.5).values[1])
