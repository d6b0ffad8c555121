"""rpx.fit(..., uncertainty="profile"): profile-likelihood intervals, batched over cells.

Synthetic cells as in tests/test_sample.py (passive GHK of the squid axon preset, P_Na
and P_Cl free, 0.5 mV noise given as V_sd).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from test_sample import FREE, P_K, SD, synthetic_cells

import rpx
from rpx.cli import main


@pytest.fixture(scope="module")
def coverage() -> tuple[dict[str, np.ndarray], xr.Dataset]:
    df, truth = synthetic_cells(200, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ds = rpx.fit(df, free=FREE, starts=2, uncertainty="profile")
    return truth, ds


def test_profile_intervals_cover_the_truth(coverage: tuple) -> None:
    """95 % intervals contain the true value in 90-99 % of 200 cells (binomial sd 1.5 %)."""
    truth, ds = coverage
    for name in FREE:
        inside = (ds[f"{name}_ci_lo"].values < truth[name]) & (
            truth[name] < ds[f"{name}_ci_hi"].values
        )
        assert 0.90 <= inside.mean() <= 0.99, (name, inside.mean())
    assert bool(ds["practically_identifiable"].all())


def test_profile_intervals_match_the_curvature_when_well_identified(coverage: tuple) -> None:
    """For near-Gaussian estimates in ln P the interval is x·exp(±1.96·SE/x)."""
    _, ds = coverage
    for name in FREE:
        x, se = ds[name].values, ds[f"{name}_se"].values
        half = 1.959964 * se / x
        lo = np.log(x / ds[f"{name}_ci_lo"].values)
        hi = np.log(ds[f"{name}_ci_hi"].values / x)
        np.testing.assert_allclose(lo, half, rtol=0.15)
        np.testing.assert_allclose(hi, half, rtol=0.15)


def test_profile_variables_have_units_and_the_profile(coverage: tuple) -> None:
    _, ds = coverage
    assert ds.attrs["profile_level"] == 0.95
    for name in FREE:
        assert ds[f"{name}_ci_lo"].dims == ("cell",)
        assert ds[f"{name}_ci_lo"].attrs["units"] == "cm/s"
        prof, dev = ds[f"{name}_profile"], ds[f"{name}_profile_deviance"]
        assert prof.dims == ("cell", "profile_point") and dev.attrs["units"] == "1"
        mid = prof.sizes["profile_point"] // 2
        np.testing.assert_allclose(prof.values[:, mid], ds[name].values, rtol=1e-9)
        assert np.all(np.diff(prof.values, axis=1) > 0)  # ascending
        assert np.all(dev.values[:, mid] < 1e-6) and np.all(dev.values >= 0)
    assert ds["practically_identifiable"].dims == ("cell", "profile_param")
    for key in [*ds.data_vars, *ds.coords]:
        assert "units" in ds[key].attrs and "long_name" in ds[key].attrs, key


def test_summary_over_many_cells_prints_the_profile_intervals(coverage: tuple) -> None:
    """`rpx fit --uncertainty profile` on more cells than it lists: the summary over all
    cells gives each parameter's median profile limits and how many are closed."""
    from rpx.cli.fit import table

    _, ds = coverage
    text = table(ds, show_cells=2)
    summary = text.split("all 200 cells:")[1].splitlines()
    for name in FREE:
        (line,) = [ln for ln in summary if ln.strip().startswith(f"{name} ")]
        lo = np.median(ds[f"{name}_ci_lo"].values)
        hi = np.median(ds[f"{name}_ci_hi"].values)
        assert f"95 % profile CI median [{lo:.4g}, {hi:.4g}], closed in 200/200" in line, line


def _weak_chloride() -> tuple[pd.DataFrame, float]:
    """One cell whose P_Cl is far too small to move V: only an upper limit is known."""
    rng = np.random.default_rng(2)
    K_o = np.geomspace(2.0, 200.0, 8)
    true_P_Na = 0.04 * P_K
    V = np.asarray(rpx.resting_potential({"K_o": K_o, "P_Na": true_P_Na, "P_Cl": 1e-4 * P_K}))
    return pd.DataFrame({"K_o": K_o, "V": V + SD * rng.standard_normal(K_o.size), "V_sd": SD}), (
        true_P_Na
    )


def test_open_side_flags_practical_non_identifiability() -> None:
    df, true_P_Na = _weak_chloride()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = rpx.fit(df, free=FREE, starts=4, uncertainty="profile")
    assert "cell" not in ds.dims
    assert float(ds["P_Cl_ci_lo"]) == 0.0  # open below: bounded only by 0
    assert 0.0 < float(ds["P_Cl_ci_hi"]) < np.inf
    assert float(ds["P_Na_ci_lo"]) < true_P_Na < float(ds["P_Na_ci_hi"])
    ident = ds["practically_identifiable"]
    assert bool(ident.sel(profile_param="P_Na")) and not bool(ident.sel(profile_param="P_Cl"))


def test_all_permeabilities_free_flags_them_and_bounds_the_ratios() -> None:
    """Passive GHK: only ratios matter. Each absolute permeability has an open profile;
    the ratios to the held P_K get closed intervals that cover the truth."""
    df, truth = synthetic_cells(3, seed=4)
    with pytest.warns(rpx.IdentifiabilityWarning):
        ds = rpx.fit(df, free=["P_K", "P_Na", "P_Cl"], starts=2, uncertainty="profile")
    assert not ds["practically_identifiable"].any()
    for name in ("P_Na", "P_Cl"):
        lo, hi = ds[f"{name}_over_P_K_ci_lo"].values, ds[f"{name}_over_P_K_ci_hi"].values
        assert np.all((lo < truth[name] / P_K) & (truth[name] / P_K < hi)), name
        assert ds[f"{name}_over_P_K_ci_lo"].attrs["units"] == "1"
    # what `rpx fit --uncertainty profile` prints for this result: the ratios with their
    # profile intervals, and no profile limit taken for an estimate of its own
    from rpx.cli.fit import table

    text = table(ds)
    for name in ("P_Na", "P_Cl"):
        lines = [ln for ln in text.splitlines() if ln.strip().startswith(f"{name}_over_P_K ")]
        assert len(lines) == 3 and all("% profile CI [" in ln for ln in lines), text
        # the absolute permeability's open profile is flagged on its line
        lines = [ln for ln in text.splitlines() if ln.strip().startswith(f"{name} ")]
        assert len(lines) == 3 and all("not practically identifiable" in ln for ln in lines)
    # the held P_K is printed, with what that means for the values above
    lines = [ln for ln in text.splitlines() if ln.strip().startswith("P_K ")]
    assert len(lines) == 3 and all("held fixed (not identifiable" in ln for ln in lines), text
    assert "_ci_lo" not in text and "_ci_hi" not in text, text


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"uncertainty": "bootstrap"}, "uncertainty must be 'gauss_newton' or 'profile'"),
        ({"uncertainty": "profile", "level": 1.5}, r"level must be in \(0, 1\)"),
    ],
)
def test_bad_uncertainty_options(kwargs: dict, match: str) -> None:
    df, _ = synthetic_cells(1, seed=0)
    with pytest.raises(ValueError, match=match):
        rpx.fit(df, free=FREE, **kwargs)


def test_cli_fit_prints_profile_intervals_and_bounds_close_an_open_side(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """With bounds, the open lower side of P_Cl stops at its lower bound."""
    df, _ = _weak_chloride()
    csv = tmp_path / "cell.csv"
    df.to_csv(csv, index=False)
    out = tmp_path / "fit.zarr"
    code = main(["fit", str(csv), "--free", "P_Na,P_Cl", "--starts", "4",
                 "--bounds", "P_Cl=1e-12:1e-6", "--uncertainty", "profile", "--level", "0.95",
                 "-o", str(out)])
    assert code in (0, 1)
    assert "95 % profile CI [1e-12, " in capsys.readouterr().out
    ds = xr.open_zarr(out)
    assert float(ds["P_Cl_ci_lo"]) == 1e-12
    assert not bool(ds["practically_identifiable"].sel(profile_param="P_Cl"))


@pytest.mark.parametrize(
    ("bounds", "side"),
    [((1e-10, 5e-9), "hi"), ((2.5e-8, 1e-7), "lo")],  # the truth (1.46e-8) above, below
)
def test_estimate_on_a_bound_gives_a_bound_limited_side_and_a_data_limited_other(
    bounds: tuple[float, float], side: str
) -> None:
    """P_Na's box excludes its true value, so the estimate sits on a bound. That side's
    limit is the bound (flagged non-identifiable); the other side is where the profile
    deviance, P_Cl re-fitted, reaches chi2_1(0.95): checked against scipy re-fits. The
    other parameter's interval does not collapse."""
    from scipy.optimize import brentq, minimize_scalar
    from scipy.stats import chi2

    df, truth = synthetic_cells(1, seed=1)
    df = df.drop(columns="cell")
    assert not bounds[0] < truth["P_Na"][0] < bounds[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = rpx.fit(df, free=FREE, starts=2, bounds={"P_Na": bounds}, uncertainty="profile")
    edge = bounds[1] if side == "hi" else bounds[0]
    other = "lo" if side == "hi" else "hi"
    np.testing.assert_allclose(float(ds["P_Na"]), edge, rtol=1e-6)
    assert float(ds[f"P_Na_ci_{side}"]) == edge
    ident = ds["practically_identifiable"]
    assert not bool(ident.sel(profile_param="P_Na")) and bool(ident.sel(profile_param="P_Cl"))

    K_o, Cl_o, V = df["K_o"].to_numpy(), df["Cl_o"].to_numpy(), df["V"].to_numpy()

    def profile(p_na: float) -> float:  # SSR with P_Cl re-fitted (in ln P_Cl)
        def ssr(ln_cl: float) -> float:
            model = rpx.resting_potential(
                {"K_o": K_o, "Cl_o": Cl_o, "P_Na": p_na, "P_Cl": np.exp(ln_cl)})
            return float(np.sum(((np.asarray(model) - V) / SD) ** 2))

        return minimize_scalar(ssr, bounds=(np.log(1e-8), np.log(1e-6)), method="bounded",
                               options={"xatol": 1e-9}).fun

    floor = profile(edge)
    far = bounds[0] if side == "hi" else bounds[1]
    ref = brentq(lambda x: profile(x) - floor - chi2.ppf(0.95, 1), far, edge, rtol=1e-10)
    limit = float(ds[f"P_Na_ci_{other}"])
    assert abs(limit - ref) <= 0.03 * abs(edge - ref), (limit, ref)  # 3 % of the width
    assert (limit < edge) if side == "hi" else (limit > edge)
    # P_Cl, re-fitted along P_Na's walk from the optimum: a closed interval around it
    lo, hi, x = (float(ds[n]) for n in ("P_Cl_ci_lo", "P_Cl_ci_hi", "P_Cl"))
    assert lo < x < hi and hi / lo > 1.05


def test_every_float_of_a_profile_fit_is_in_the_working_dtype(coverage: tuple) -> None:
    """Estimates, data, fixed values and profile intervals alike: float64 by default
    here (x64), float32 when asked for."""
    _, ds = coverage
    floats = {str(v.dtype) for v in ds.data_vars.values() if v.dtype.kind == "f"}
    assert floats == {"float64"}
    df, _ = synthetic_cells(2, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds32 = rpx.fit(df, free=FREE, starts=2, uncertainty="profile", dtype="float32")
    floats = {n: str(v.dtype) for n, v in ds32.data_vars.items() if v.dtype.kind == "f"}
    assert set(floats.values()) == {"float32"}, floats
    assert {"P_Na_ci_lo", "V_obs", "rmse", "K_i", "P_Na_profile"} <= set(floats)


def test_a_cell_beyond_the_plain_closed_forms_gets_the_two_form_profile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Cell 1 is cell 0 with every permeability 1e12 times smaller (P_K given so): the
    GHK voltage depends on ratios only, so its profile is cell 0's scaled by 1e-12, but
    its sums of P x c fall below 2^-50 mM cm/s, where only the two-form model is exact.
    The profile runs the plain closed forms for cell 0 and the two-form program for
    cell 1; every interval equals that of the two-form program throughout."""
    import importlib

    fit_module = importlib.import_module("rpx.analysis.fit")
    profile_module = importlib.import_module("rpx.analysis.profile")
    one, _ = synthetic_cells(1, seed=8)
    tiny = 1e-12
    df = pd.concat([one.assign(cell=0, P_K=P_K), one.assign(cell=1, P_K=P_K * tiny)])
    calls: list[tuple[bool, int]] = []
    build = profile_module.build_profiler

    def spy(model_fn: object, free: tuple, transforms: tuple, plain_points: object) -> object:
        run = build(model_fn, free, transforms, plain_points)

        def counted(u_hat: np.ndarray, *args: object) -> object:
            calls.append((plain_points is not None, len(u_hat)))
            return run(u_hat, *args)

        return counted

    monkeypatch.setattr(profile_module, "build_profiler", spy)
    plain_first = rpx.fit(df, free=FREE, starts=2, uncertainty="profile")
    assert calls == [(True, 2), (False, 1)]
    monkeypatch.setattr(fit_module, "PLAIN_FORMS_FIRST", False)
    two_forms = rpx.fit(df, free=FREE, starts=2, uncertainty="profile")
    assert bool(plain_first["practically_identifiable"].all())
    for name in FREE:
        for side in ("lo", "hi"):
            key = f"{name}_ci_{side}"
            np.testing.assert_allclose(plain_first[key], two_forms[key], rtol=1e-8, err_msg=key)
            lim = plain_first[key].values
            np.testing.assert_allclose(lim[1], tiny * lim[0], rtol=1e-6, err_msg=key)
        np.testing.assert_allclose(
            plain_first[f"{name}_profile_deviance"], two_forms[f"{name}_profile_deviance"],
            rtol=1e-6, atol=1e-9,
        )
