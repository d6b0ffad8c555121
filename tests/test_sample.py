"""rpx.sample: posterior draws against the truth and the fit, diagnostics, identifiability.

Synthetic cells follow tests/test_fit.py: passive GHK of the squid axon preset (P_K
fixed, P_Na and P_Cl free), external K+ from 2 to 200 mM in two external Cl- levels,
Gaussian noise of known standard deviation. Samplers run small (a few cells, hundreds
of draws) so that each compiled program runs in seconds.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import rpx
from rpx.analysis.sample import sample
from rpx.cli import main

FREE = ["P_Na", "P_Cl"]
SD = 0.5  # mV
K_O = np.geomspace(2.0, 200.0, 5)  # mM
CL_O = np.array([280.0, 560.0])  # mM
TRUE_MEAN = {"P_Na": 0.04 * 3.3e-7, "P_Cl": 0.45 * 3.3e-7}  # cm/s, Hodgkin & Katz 1949
P_K = 3.3e-7  # cm/s, the squid preset's
WELL = {"free": FREE, "draws": 1000, "warmup": 300, "chains": 4, "seed": 0, "cell_batch": 3}


def synthetic_cells(
    n: int, seed: int, with_sd: bool = True
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    truth = {k: v * np.exp(0.3 * rng.standard_normal(n)) for k, v in TRUE_MEAN.items()}
    K_o, Cl_o = (a.ravel() for a in np.meshgrid(K_O, CL_O))
    V = np.asarray(
        rpx.resting_potential(
            {
                "K_o": K_o[None, :],
                "Cl_o": Cl_o[None, :],
                **{k: v[:, None] for k, v in truth.items()},
            }
        )
    )
    V = V + SD * rng.standard_normal(V.shape)
    df = pd.DataFrame(
        {
            "cell": np.repeat(np.arange(n), K_o.size),
            "K_o": np.tile(K_o, n),
            "Cl_o": np.tile(Cl_o, n),
            "V": V.ravel(),
        }
    )
    if with_sd:
        df["V_sd"] = SD
    return df, truth


@pytest.fixture(scope="module")
def well() -> tuple[pd.DataFrame, dict[str, np.ndarray], xr.Dataset]:
    """Four cells in batches of three (the second padded); the batch test and the
    command line reuse its compiled program."""
    df, truth = synthetic_cells(4, seed=3)
    return df, truth, sample(df, **WELL)


def test_posterior_covers_the_truth(well: tuple) -> None:
    _, truth, ds = well
    for name in FREE:
        # In ln P, where the posterior is closest to Gaussian; 4 posterior SDs leave a
        # chance below 1e-4 per cell of a miss by noise alone.
        ln = np.log(ds[name].values).reshape(ds.sizes["cell"], -1)
        z = (ln.mean(axis=1) - np.log(truth[name])) / ln.std(axis=1)
        assert np.all(np.abs(z) < 4.0), (name, z)
        lo, hi = np.percentile(ds[name].values.reshape(ds.sizes["cell"], -1), [0.5, 99.5], axis=1)
        assert np.all((lo < truth[name]) & (truth[name] < hi)), name


def test_well_identified_cells_agree_with_the_fit(well: tuple) -> None:
    """Mean within 0.25 posterior SD of the fit, SD within 25 % of the Gauss–Newton SE."""
    df, _, ds = well
    fit = rpx.fit(df, free=FREE, starts=2)
    for name in FREE:
        mean, sd = ds[f"{name}_mean"].values, ds[f"{name}_sd"].values
        assert np.all(np.abs(mean - fit[name].values) <= 0.25 * sd), name
        ratio = sd / fit[f"{name}_se"].values
        assert np.all((ratio > 0.75) & (ratio < 1.25)), (name, ratio)
    assert float(ds["rhat"].max()) < 1.01
    assert int(ds["divergences"].sum()) == 0
    assert bool(ds["converged"].all()) and bool(ds["determined"].all())
    assert np.all(ds["contraction"].values > 0.99)


def test_dataset_dims_units_and_attributes(well: tuple) -> None:
    _, _, ds = well
    for name in FREE:
        assert ds[name].dims == ("cell", "chain", "draw")
        assert ds[name].attrs["units"] == "cm/s"
        assert ds[f"{name}_mean"].attrs["units"] == "cm/s"
    assert ds.sizes["chain"] == 4 and ds.sizes["draw"] == 1000 and ds.sizes["cell"] == 4
    assert ds["rhat"].dims == ("cell", "param")
    assert list(ds["param"].values) == FREE
    assert ds["divergences"].dims == ("cell",)
    for key in [*ds.data_vars, *ds.coords]:
        assert "units" in ds[key].attrs and "long_name" in ds[key].attrs, key
    assert ds.attrs["model"] == "ghk" and ds.attrs["free"] == FREE
    assert any("log-uniform" in p for p in ds.attrs["prior"])
    assert "V_sd" in ds.attrs["likelihood"]
    # draws stay inside the default prior box: 3 decades around the preset value
    preset = rpx.preset("default")
    for name in FREE:
        x = ds[name].values
        assert np.all((x > preset[name] * 1e-3) & (x < preset[name] * 1e3))


def test_diagnostics_match_arviz(well: tuple) -> None:
    """R-hat equals ArviZ's rank-normalised split R-hat; the ESS estimates agree to 1 %.

    BlackJAX ends Geyer's initial monotone sequence with a slightly different last term
    than ArviZ (and Stan), which moves the ESS by about 0.1 % here.
    """
    az = pytest.importorskip("arviz")
    _, _, ds = well
    for c in range(ds.sizes["cell"]):
        for name in FREE:
            draws = ds[name].isel(cell=c).values  # (chain, draw)
            row = ds.isel(cell=c).sel(param=name)
            assert float(row["rhat"]) == pytest.approx(float(az.rhat(draws)), rel=1e-9)
            for method in ("bulk", "tail"):
                assert float(row[f"ess_{method}"]) == pytest.approx(
                    float(az.ess(draws, method=method)), rel=1e-2
                )


def test_noise_sd_is_sampled_without_V_sd() -> None:
    """No V_sd column: one noise sd per cell joins the parameters; no cell column: no
    cell dimension."""
    rng = np.random.default_rng(5)
    K_o = np.geomspace(2.0, 200.0, 20)
    true_P_Na = 0.04 * P_K
    V = np.asarray(rpx.resting_potential({"K_o": K_o, "P_Na": true_P_Na}))
    df = pd.DataFrame({"K_o": K_o, "V": V + SD * rng.standard_normal(K_o.size)})
    ds = sample(df, free=["P_Na"], draws=400, warmup=300, chains=2, seed=1)
    assert "cell" not in ds.dims and ds["P_Na"].dims == ("chain", "draw")
    assert list(ds["param"].values) == ["P_Na", "noise_sd"]
    assert ds["noise_sd"].attrs["units"] == "mV"
    lo, hi = np.percentile(ds["noise_sd"].values, [0.5, 99.5])
    assert lo < SD < hi and hi < 3 * SD
    lo, hi = np.percentile(ds["P_Na"].values, [0.5, 99.5])
    assert lo < true_P_Na < hi
    assert float(ds["rhat"].max()) < 1.05
    assert "noise_sd" in ds.attrs["likelihood"]


def test_flat_direction_reports_ratios_and_wide_posteriors() -> None:
    """All GHK permeabilities free: only ratios matter (Hodgkin & Katz 1949)."""
    df, truth = synthetic_cells(2, seed=7)
    with pytest.warns(rpx.IdentifiabilityWarning, match="P_K, P_Na, P_Cl"):
        ds = sample(df, free=["P_K", "P_Na", "P_Cl"], draws=200, warmup=200, chains=4, seed=2)
    assert ds.attrs["ratios"] == ["P_Na_over_P_K", "P_Cl_over_P_K"]
    assert list(ds["param"].values) == ["P_K", "P_Na", "P_Cl", "P_Na_over_P_K", "P_Cl_over_P_K"]
    det = ds["determined"]
    assert not det.sel(param=["P_K", "P_Na", "P_Cl"]).any()
    assert det.sel(param=["P_Na_over_P_K", "P_Cl_over_P_K"]).all()
    for name in ("P_Na", "P_Cl"):
        ln = np.log(ds[f"{name}_over_P_K"].values.reshape(2, -1))
        z = (ln.mean(axis=1) - np.log(truth[name] / P_K)) / ln.std(axis=1)
        assert np.all(np.abs(z) < 4.0), (name, z)
        assert ds[f"{name}_over_P_K"].attrs["units"] == "1"
    # the scale itself: the posterior spans decades of P_K
    lo, hi = np.percentile(np.log10(ds["P_K"].values.reshape(2, -1)), [2.5, 97.5], axis=1)
    assert np.all(hi - lo > 2.0)


def test_cell_batches_give_the_same_draws(well: tuple) -> None:
    """Cells 0-2 alone (one batch of the same shape) draw exactly what they drew in the
    fixture's batched run: per-cell randomness depends on the seed and the cell only."""
    df, _, batched = well
    alone = sample(df[df["cell"] < 3], **WELL)
    for name in (*FREE, "rhat", "divergences"):
        np.testing.assert_array_equal(alone[name].values, batched[name].values[:3])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"draws": 0}, "draws must be an integer >= 4"),
        ({"chains": 1}, "chains must be an integer >= 2"),
        ({"warmup": 2.5}, "warmup must be an integer >= 10"),
        ({"target_accept": 1.5}, r"target_accept must be in \(0, 1\)"),
        ({"max_tree_depth": 0}, "max_tree_depth must be an integer >= 1"),
        ({"cell_batch": 0}, "cell_batch must be an integer >= 1"),
        ({"noise_bounds": (0.0, 5.0)}, "noise_bounds must be > 0 mV"),
        ({"noise_bounds": (5.0, 1.0)}, "bounds of noise_sd must be finite with lo < hi"),
        ({"bounds": {"P_Na": (1e-9, 2.0)}}, r"bounds \(1e-09, 2\) of P_Na leave its allowed"),
        ({"bounds": {"P_K": (1e-9, 1e-6)}}, "bounds given for 'P_K', which is not a free"),
        ({"bounds": {"P_Na": "wide"}}, "bounds of P_Na must be a pair"),
        ({"center": {"P_Na": -1.0}}, "center of P_Na must be > 0"),
        ({"free": ["P_Na", "T"], "center": {"T": 300.0}}, "T is not log-scaled"),
        ({"free": ["I_pump_max"]}, "free parameter 'I_pump_max' is not read by model 'ghk'"),
        ({"free": []}, "give at least one free parameter"),
        ({"fixed": {"P_Na": 1e-8}}, "parameter 'P_Na' is free"),
        ({"dtype": "float16"}, "dtype must be 'float32' or 'float64'"),
    ],
)
def test_bad_input_is_one_line_value_error(kwargs: dict, match: str) -> None:
    df, _ = synthetic_cells(1, seed=0)
    args = {"free": FREE, **kwargs}
    with pytest.raises(ValueError, match=match) as err:
        sample(df, **args)
    assert "\n" not in str(err.value)


def test_bad_data_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="data need a column 'V'"):
        sample(pd.DataFrame({"K_o": [5.0, 10.0]}), free=["P_Na"])
    with pytest.raises(ValueError, match="2 data points but 3 free parameters"):
        sample(pd.DataFrame({"K_o": [5.0, 10.0], "V": [-60.0, -50.0]}),
               free=["P_Na", "P_Cl", "P_K"])


def test_cli_writes_a_posterior_store(
    well: tuple, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """The command with the fixture's data and settings (so the compiled program is
    reused) prints the table, writes the store and gives the same draws."""
    df, _, ds_api = well
    csv = tmp_path / "cells.csv"
    df.to_csv(csv, index=False)
    out = tmp_path / "post.zarr"
    args = [
        "sample", str(csv), "--free", "P_Na,P_Cl", "--draws", "1000", "--warmup", "300",
        "--chains", "4", "--cell-batch", "3", "--show-cells", "2", "-o", str(out),
    ]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "cell 0:" in text and "R-hat" in text and "2 more cells" in text
    assert f"wrote {out}" in text
    ds = xr.open_zarr(out, consolidated=False)
    assert ds["P_Na"].dims == ("cell", "chain", "draw") and ds.sizes["draw"] == 1000
    assert ds["P_Na"].attrs["units"] == "cm/s" and "rhat" in ds
    np.testing.assert_allclose(ds["P_Na"].values, ds_api["P_Na"].values, rtol=1e-12)
    assert ds.attrs["kind"] == "posterior" and "options_hash" in ds.attrs
    assert main(["info", str(out)]) == 0
    assert "a posterior sample" in capsys.readouterr().out
    # an existing store is refused before any sampling, unless --overwrite
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "holds an rpx posterior sample" in err and "pass --overwrite" in err


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--bounds", "P_Na=1e-9"], "--bounds takes P_Na=LO:HI"),
        (["--noise-bounds", "1:x"], "--noise-bounds: 'x' is not a number"),
        (["--fixed", "Q=1"], "unknown parameter 'Q'"),
        (["--draws", "0"], "draws must be an integer >= 4"),
    ],
)
def test_cli_bad_input_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture, extra: list[str], match: str
) -> None:
    df, _ = synthetic_cells(1, seed=0)
    csv = tmp_path / "cells.csv"
    df.to_csv(csv, index=False)
    assert main(["sample", str(csv), "--free", "P_Na", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rpx: error: ") and match in err and err.count("\n") == 1


def test_sample_is_public_and_lazy() -> None:
    assert rpx.sample is sample
    assert "sample" in dir(rpx)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert callable(rpx.sample)


def test_failed_convergence_names_the_failed_check(well: tuple) -> None:
    """R-hat 1.003 with bulk ESS 138 and tail ESS 278 from 2 chains misses only the bulk
    ESS check (200 needed): the flag, the stored variable and the printed line say so."""
    from rpx.analysis.sample import FAILED_ESS_BULK, convergence_flags
    from rpx.cli.sample import table

    flags = convergence_flags(
        np.array([1.003, 1.02, np.nan]), np.array([138.0, 500, 500]),
        np.array([278.0, 150, 500]), np.array([0, 0, 2]), chains=2,
    )
    assert flags.tolist() == [FAILED_ESS_BULK, 1 | 4, 1 | 8]
    _, _, ds = well
    var = ds["convergence_failed"]
    assert var.dims == ("cell",) and np.all(var.values == 0) and bool(ds["converged"].all())
    assert var.attrs["flag_meanings"].split()[1] == "bulk_ess_too_small"
    assert "units" in ds["min_ess_tail"].attrs
    bad = ds.copy()
    bad["convergence_failed"] = var.copy(data=np.array([0, FAILED_ESS_BULK, 0, 0], np.int8))
    bad["converged"] = bad["convergence_failed"] == 0
    bad["min_ess_bulk"] = ds["min_ess_bulk"].copy(data=np.array([900.0, 138.0, 900, 900]))
    text = table(bad)
    assert "NOT converged: bulk ESS 138 < 400 (100 per chain x 4 chains)" in text
    assert text.count("NOT converged") == 1


def test_too_few_draws_for_the_convergence_check_warn_before_sampling() -> None:
    """draws < 100 per chain can never pass the ESS check: said before any sampling
    (the warning raised as an error here, so nothing is sampled)."""
    df, _ = synthetic_cells(1, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        with pytest.raises(UserWarning, match=r"draws=50 per chain is below the 100"):
            sample(df, free=["P_Na"], draws=50, warmup=50, chains=2)


def test_summary_over_many_cells_prints_the_intervals(well: tuple) -> None:
    """`rpx sample` on more cells than it lists: the summary over all cells gives each
    parameter's median 95 % interval limits, as the per-cell lines give the intervals."""
    from rpx.cli.sample import table

    _, _, ds = well
    text = table(ds, show_cells=1)
    summary = text.split("all 4 cells:")[1].splitlines()
    for name in FREE:
        (line,) = [ln for ln in summary if ln.strip().startswith(f"{name} ")]
        x = ds[name].values.reshape(4, -1)
        lo, hi = np.median(np.percentile(x, [2.5, 97.5], axis=1), axis=1)
        assert f"[{lo:.4g}, {hi:.4g}] cm/s" in line, line


def test_every_float_of_a_sample_is_in_the_working_dtype(well: tuple) -> None:
    """Draws, diagnostics, data and fixed values alike in the working precision (float64
    here, x64)."""
    _, _, ds = well
    floats = {n: str(v.dtype) for n, v in ds.data_vars.items() if v.dtype.kind == "f"}
    assert set(floats.values()) == {"float64"}, floats
    assert {"P_Na", "rhat", "V_obs", "K_i", "P_Na_mean", "contraction"} <= set(floats)


def test_float32_sampling_with_x64_on() -> None:
    """dtype='float32' while jax_enable_x64 is on (as in this suite): the sampler runs in
    float32 and every float of the result is float32."""
    assert jax.config.jax_enable_x64
    K_o = np.geomspace(2.0, 100.0, 6)
    V = np.asarray(rpx.resting_potential({"K_o": K_o}))
    df = pd.DataFrame({"K_o": K_o, "V": V + 0.3, "V_sd": 0.5})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = rpx.sample(df, free=["P_Na"], draws=100, chains=2, warmup=100, dtype="float32")
    floats = {n: str(v.dtype) for n, v in ds.data_vars.items() if v.dtype.kind == "f"}
    assert set(floats.values()) == {"float32"}, floats
    assert np.all(np.isfinite(ds["P_Na"].values))


def test_cells_whose_prior_box_needs_the_two_form_model_are_sampled_with_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A cell whose whole prior box lies where the plain closed forms are exact is
    sampled by the program with those forms only; cell 1, whose P_K (a data column) is
    1e12 times smaller, reaches sums of P x c below 2^-50 mM cm/s at the box's lower
    corner and is sampled by the two-form program. Each cell's draws (which depend on
    the seed and the cell's index) are those of the same program without the other:
    cell 0 sampled alone, cell 1 with every cell sampled by the two-form program."""
    import importlib

    sample_module = importlib.import_module("rpx.analysis.sample")
    df, _ = synthetic_cells(2, seed=9)
    df["P_K"] = np.where(df["cell"] == 1, 1e-12, 1.0) * P_K
    kw = {"free": FREE, "bounds": {"P_Na": (1e-22, 1e-5), "P_Cl": (1e-22, 1e-5)},
          "draws": 30, "warmup": 30, "chains": 2, "seed": 3}
    calls: list[tuple[bool, int]] = []
    build = sample_module.build_sampler

    def spy(cfg: object) -> object:
        run = build(cfg)

        def counted(keys: object, z0: np.ndarray, cells: dict, fixed: dict) -> object:
            calls.append((cfg.plain_points is not None, len(z0)))
            return run(keys, z0, cells, fixed)

        return counted

    monkeypatch.setattr(sample_module, "build_sampler", spy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # too few draws for the convergence checks
        both = rpx.sample(df, **kw, cell_batch=2)
        assert calls == [(True, 1), (False, 1)]
        first = rpx.sample(df[df["cell"] == 0], **kw)
        monkeypatch.setattr(sample_module, "_plain_cells", lambda m, *a: np.zeros(2, bool))
        two_forms = rpx.sample(df, **kw)
    assert calls[2:] == [(True, 1), (False, 1), (False, 1)]
    for name in FREE:
        np.testing.assert_array_equal(both[name][0], first[name][0])
        np.testing.assert_array_equal(both[name][1], two_forms[name][1])
    for name in FREE:  # every draw inside its box
        assert bool(((both[name] > 1e-22) & (both[name] < 1e-5)).all()), name
