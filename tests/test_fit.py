"""rpx.fit: recovery with calibrated standard errors, batching, multi-start, identifiability.

Synthetic cells are simulated with the passive GHK model of the squid axon preset
(P_K fixed, P_Na and P_Cl free), at external K+ from 2 to 200 mM in two external Cl-
levels, with Gaussian noise of known standard deviation given to the fit as ``V_sd``.
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

FREE = ["P_Na", "P_Cl"]
SD = 0.5  # mV, noise of the synthetic recordings
N_CELLS = 200
K_O = np.geomspace(2.0, 200.0, 5)  # mM
CL_O = np.array([280.0, 560.0])  # mM
TRUE_MEAN = {"P_Na": 0.04 * 3.3e-7, "P_Cl": 0.45 * 3.3e-7}  # cm/s, Hodgkin & Katz 1949


def synthetic_cells(n: int, seed: int) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """``n`` cells with log-normally scattered true permeabilities, 10 noisy points each."""
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
            "V_sd": SD,
        }
    )
    return df, truth


@pytest.fixture(scope="module")
def recovery() -> tuple[pd.DataFrame, dict[str, np.ndarray], xr.Dataset]:
    df, truth = synthetic_cells(N_CELLS, seed=1)
    return df, truth, rpx.fit(df, free=FREE, starts=4)


def test_recovery_within_2se_in_one_batched_call(recovery: tuple) -> None:
    df, truth, ds = recovery
    assert ds.sizes["cell"] == N_CELLS
    assert bool(ds["converged"].all()) and bool(ds["identifiable"].all())
    for name in FREE:
        inside = np.abs(ds[name].values - truth[name]) <= 2.0 * ds[f"{name}_se"].values
        # 2·SE covers 95.4% of a well-calibrated Gaussian estimate; 200 cells put the
        # binomial standard deviation of the fraction at 1.5%.
        assert inside.mean() >= 0.90, (name, inside.mean())


def test_standard_errors_are_calibrated(recovery: tuple) -> None:
    """z = (estimate - truth)/SE must look standard normal, neither too wide nor too narrow.

    The SEs are Gauss–Newton errors in ln P mapped by the delta method, so z is formed
    in ln P where the estimate is closest to Gaussian. For 200 draws the sample standard
    deviation of a standard normal lies in [0.85, 1.15] with probability > 0.99, and the
    mean within ±0.25 (about 3.5 standard errors of the mean).
    """
    _, truth, ds = recovery
    for name in FREE:
        se_log = ds[f"{name}_se"].values / ds[name].values
        z = (np.log(ds[name].values) - np.log(truth[name])) / se_log
        assert 0.85 <= z.std() <= 1.15, (name, z.std())
        assert abs(z.mean()) <= 0.25, (name, z.mean())
    # With V_sd given, the standardized residuals have mean square ≈ (n - p)/n.
    expected = (10 - len(FREE)) / 10
    assert abs(float(ds["loss"].mean()) - expected) < 0.1


def test_batched_equals_one_by_one(recovery: tuple) -> None:
    df, _, ds = recovery
    for cell in (0, 17, 123):
        alone = rpx.fit(df[df["cell"] == cell], free=FREE, starts=4)
        for name in FREE:
            # Same arithmetic per cell; vmap may only reorder floating-point operations.
            np.testing.assert_allclose(alone[name].item(), ds[name].sel(cell=cell), rtol=1e-9)
            np.testing.assert_allclose(
                alone[f"{name}_se"].item(), ds[f"{name}_se"].sel(cell=cell), rtol=1e-6
            )
        assert int(alone["best_start"].item()) == int(ds["best_start"].sel(cell=cell))


def test_result_dataset_is_self_describing(recovery: tuple) -> None:
    _, _, ds = recovery
    for name in ["P_Na", "P_Na_se", "P_Cl", "loss", "rmse", "V_fit", "V_obs", "K_o", "P_K"]:
        assert {"units", "long_name"} <= set(ds[name].attrs), name
    assert ds["P_Na"].attrs["units"] == "cm/s" and ds["V_fit"].attrs["units"] == "mV"
    corr = ds["correlation"].values
    np.testing.assert_allclose(np.diagonal(corr, axis1=1, axis2=2), 1.0, rtol=1e-12)
    np.testing.assert_allclose(corr, np.swapaxes(corr, 1, 2), rtol=1e-12)
    assert ds.sizes["iteration"] == ds.attrs["adam_steps"] + ds.attrs["lm_steps"]
    history = ds["loss_history"].values
    lm = history[:, ds.attrs["adam_steps"] :]
    # LM accepts steps that lower the loss, or, at its rounding floor (~1e-13 relative
    # here), steps that lower the gradient: never a rise above that floor.
    assert np.all(np.diff(lm, axis=1) <= 1e-11 * lm[:, :-1])
    np.testing.assert_allclose(history[:, -1], ds["loss"].values, rtol=1e-12)


def test_result_is_assembled_like_the_general_constructor(recovery: tuple) -> None:
    """The fast assembly equals xr.Dataset(...); no cell column equals isel(cell=0)."""
    df, _, ds = recovery
    data_vars = {k: v.variable for k, v in ds.data_vars.items()}
    coords = {k: v.variable for k, v in ds.coords.items()}
    xr.testing.assert_identical(ds, xr.Dataset(data_vars, coords=coords, attrs=ds.attrs))
    one = df[df["cell"] == 3]
    alone = rpx.fit(one.drop(columns="cell"), free=FREE, starts=4)
    labelled = rpx.fit(one, free=FREE, starts=4)
    xr.testing.assert_identical(alone, labelled.isel(cell=0, drop=True))
    assert "cell" not in alone.dims and "cell" not in alone.coords


def test_a_second_fit_of_the_same_shapes_compiles_nothing() -> None:
    """One compiled program per (model, free parameters, shapes), cached in the process."""
    df, _ = synthetic_cells(3, seed=5)
    rpx.fit(df, free=FREE, starts=2)
    compiled: list[str] = []

    def listener(event: str, duration: float, **kwargs: object) -> None:
        if event == "/jax/core/compile/backend_compile_duration":
            compiled.append(event)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        ds = rpx.fit(df.assign(V=df["V"] + 0.3), free=FREE, starts=2)
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert bool(ds["converged"].all()) and not bool(ds["restarted"].any())
    assert compiled == []


def test_adam_gradient_is_the_same_in_forward_and_reverse_mode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Few free parameters take forward mode; many take reverse mode: same fits."""
    from rpx.analysis import fit_solver as _fit_solver

    df, _ = synthetic_cells(5, seed=4)
    kw = dict(free=FREE, starts=3, lm_steps=0)  # Adam only, so its gradient decides
    _fit_solver.build_solver.cache_clear()
    with pytest.warns(RuntimeWarning, match="did not converge"):  # no LM steps
        forward = rpx.fit(df, **kw)
    monkeypatch.setattr(_fit_solver, "FORWARD_MAX_PARAMS", 0)
    _fit_solver.build_solver.cache_clear()
    with pytest.warns(RuntimeWarning, match="did not converge"):
        reverse = rpx.fit(df, **kw)
    _fit_solver.build_solver.cache_clear()
    for name in [*FREE, "loss"]:
        np.testing.assert_allclose(forward[name], reverse[name], rtol=1e-10, err_msg=name)
    assert not np.allclose(forward["loss_history"][:, 0], forward["loss"])  # Adam moved


def test_gathering_the_last_running_cells_changes_no_fit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The LM loop that iterates its last running cells as a small batch gives every cell
    the fit (estimates, steps, loss history) of a loop over the whole batch."""
    from rpx.analysis import fit_solver as _fit_solver

    df, _ = synthetic_cells(32, seed=6)  # 32 cells: the last 2 running go on alone
    # The last cell is far from the others (and the starts): it takes the most steps.
    last = df["cell"] == 31
    far = {"K_o": df.loc[last, "K_o"].values, "Cl_o": df.loc[last, "Cl_o"].values}
    V = rpx.resting_potential({**far, "P_Na": 1.3e-7, "P_Cl": 5e-8})
    df.loc[last, "V"] = np.asarray(V)
    gathered = rpx.fit(df, free=FREE, starts=2)
    assert not bool(gathered["restarted"].any())
    steps = np.sort(gathered["iterations"].values)
    assert steps[-1] > steps[-3]  # the small batch did run steps of its own
    monkeypatch.setattr(_fit_solver, "COMPACT", 1 << 30)  # never gather
    _fit_solver.build_lm_solver.cache_clear()
    whole = rpx.fit(df, free=FREE, starts=2)
    _fit_solver.build_lm_solver.cache_clear()
    for name in ("iterations", "status", "best_start", "identifiable"):
        np.testing.assert_array_equal(gathered[name], whole[name], err_msg=name)
    for name in [*FREE, *(f"{n}_se" for n in FREE), "loss", "loss_history", "V_fit"]:
        np.testing.assert_allclose(gathered[name], whole[name], rtol=1e-12, err_msg=name)


def test_cells_with_the_same_conditions_fit_as_cells_without(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Cells with the same conditions share the model at the starts: same fits as when
    every cell is evaluated on its own."""
    from rpx.analysis import fit_solver as _fit_solver

    df, _ = synthetic_cells(24, seed=7)
    assert _fit_solver._same_conditions(
        {"mask": np.ones((2, 3), bool), "cond": {"K_o": np.ones((2, 3))}}
    )
    shared = rpx.fit(df, free=FREE, starts=3)
    monkeypatch.setattr(_fit_solver, "_same_conditions", lambda cells: False)
    _fit_solver.build_lm_solver.cache_clear()
    alone = rpx.fit(df, free=FREE, starts=3)
    _fit_solver.build_lm_solver.cache_clear()
    for name in ("iterations", "status", "best_start", "identifiable"):
        np.testing.assert_array_equal(shared[name], alone[name], err_msg=name)
    for name in [*FREE, *(f"{n}_se" for n in FREE), "loss", "loss_history", "V_fit"]:
        np.testing.assert_allclose(shared[name], alone[name], rtol=1e-12, err_msg=name)


def test_multistart_escapes_a_boundary_trap() -> None:
    """From P_Cl 2 decades too small, one start slides to P_Cl → 0; random starts do not."""
    K_o = np.geomspace(2.0, 200.0, 8)
    df = pd.DataFrame({"K_o": K_o, "V": np.asarray(rpx.resting_potential({"K_o": K_o}))})
    kw = dict(free=FREE, init={"P_Na": 1e-6, "P_Cl": 1e-9}, adam_steps=0, lm_steps=12)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        one = rpx.fit(df, starts=1, **kw)
    messages = {type(w.message): str(w.message) for w in caught}
    assert "did not converge" in messages[RuntimeWarning]
    assert "ln P_Cl" in messages[rpx.IdentifiabilityWarning]  # P_Cl ran off to 0
    many = rpx.fit(df, starts=32, **kw)
    assert float(one["loss"]) > 1.0 and not bool(one["converged"])
    assert bool(many["converged"]) and int(many["best_start"]) != 0
    for name in FREE:
        np.testing.assert_allclose(float(many[name]), TRUE_MEAN[name], rtol=1e-8)


def test_identifiability_warning_for_ghk_permeability_scale() -> None:
    """All permeabilities free: only ratios set V (flat direction ln P_K = ln P_Na = ln P_Cl)."""
    K_o = np.geomspace(2.0, 200.0, 6)
    df = pd.DataFrame({"K_o": K_o, "V": np.asarray(rpx.resting_potential({"K_o": K_o}))})
    with pytest.warns(rpx.IdentifiabilityWarning, match=r"P_K, P_Na, P_Cl .*Holding P_K"):
        ds = rpx.fit(df, free=["P_K", "P_Na", "P_Cl"], starts=2)
    assert ds.attrs["held_fixed"] == ["P_K"] and list(ds["param"].values) == FREE
    np.testing.assert_allclose(float(ds["P_Na_over_P_K"]), 0.04, rtol=1e-8)
    np.testing.assert_allclose(float(ds["P_Cl_over_P_K"]), 0.45, rtol=1e-8)
    assert "not identifiable" in ds["P_K"].attrs["long_name"]


def test_identifiability_warning_when_conditions_do_not_vary() -> None:
    """P_Na and P_Cl free, but every point at the same K_o: V fixes only one combination."""
    V = float(rpx.resting_potential({}))
    df = pd.DataFrame({"K_o": np.full(6, 20.0), "V": V + np.linspace(-0.2, 0.2, 6)})
    with pytest.warns(rpx.IdentifiabilityWarning, match="P_Na, P_Cl cannot all be identified"):
        ds = rpx.fit(df, free=FREE, starts=2)
    (held,) = ds.attrs["held_fixed"]
    (other,) = set(FREE) - {held}
    assert f"{other}_over_{held}" in ds and bool(ds["converged"])
    np.testing.assert_allclose(ds["V_fit"].values, V, atol=1e-9)


def test_flat_direction_in_one_cell_only_is_not_held_for_all() -> None:
    """Cell "a" sits at one K_o (flat direction); cell "b" varies K_o and Cl_o.

    The pre-check tests the Jacobians of all cells together, so nothing is held fixed:
    "b" is fitted with both parameters free, and the post-fit test flags "a" alone.
    """
    V0 = float(rpx.resting_potential({"K_o": 20.0, "Cl_o": 560.0}))
    b, _ = synthetic_cells(1, seed=3)
    a = pd.DataFrame({"cell": "a", "K_o": 20.0, "Cl_o": 560.0, "V": np.full(6, V0), "V_sd": SD})
    df = pd.concat([a, b.assign(cell="b")], ignore_index=True)
    with pytest.warns(rpx.IdentifiabilityWarning, match=r"1 of 2 cells .*first: cell 'a'"):
        ds = rpx.fit(df, free=FREE, starts=2)
    assert ds.attrs["held_fixed"] == []
    assert ds["identifiable"].values.tolist() == [False, True]
    assert np.isnan(ds["P_Na_se"].sel(cell="a")) and bool(ds["converged"].sel(cell="b"))
    alone = rpx.fit(b, free=FREE, starts=2)
    for name in FREE:
        np.testing.assert_allclose(ds[name].sel(cell="b"), alone[name].item(), rtol=1e-6)


def test_dataset_input_and_bounds() -> None:
    """An xarray Dataset with K_o as a dimension coordinate; bounds map by a logistic."""
    K_o = np.geomspace(2.0, 200.0, 6)
    V = np.asarray(rpx.resting_potential({"K_o": K_o}))
    data = xr.Dataset({"V": (("K_o",), V)}, coords={"K_o": K_o})
    free = rpx.fit(data, free=["P_Na"], starts=2)
    bounded = rpx.fit(data, free=["P_Na"], bounds={"P_Na": (1e-9, 1e-7)}, starts=2)
    for ds in (free, bounded):
        assert "cell" not in ds.dims
        np.testing.assert_allclose(float(ds["P_Na"]), TRUE_MEAN["P_Na"], rtol=1e-8)
        np.testing.assert_allclose(ds["K_o"].values, K_o)
    with pytest.raises(ValueError, match="leave its allowed range"):
        rpx.fit(data, free=["P_Na"], bounds={"P_Na": (-1.0, 1e-7)})


def test_float32_matches_float64() -> None:
    K_o = np.geomspace(2.0, 200.0, 6)
    V = np.asarray(rpx.resting_potential({"K_o": K_o}))
    df = pd.DataFrame({"K_o": K_o, "V": V + np.array([0.3, -0.2, 0.1, -0.4, 0.2, 0.0])})
    f64 = rpx.fit(df, free=["P_Na"], starts=2, dtype="float64")
    f32 = rpx.fit(df, free=["P_Na"], starts=2, dtype="float32")
    assert f32["P_Na"].dtype == np.float32 and bool(f32["converged"])
    # float32 carries ~7 digits; V to ~1e-5 mV, the estimate to ~1e-4 relative.
    np.testing.assert_allclose(float(f32["P_Na"]), float(f64["P_Na"]), rtol=1e-3)
    np.testing.assert_allclose(float(f32["P_Na_se"]), float(f64["P_Na_se"]), rtol=1e-2)


def test_zero_preset_permeability_starts_from_the_others() -> None:
    """frog_muscle has P_Cl = 0: free, it starts at the geometric mean of P_K and P_Na."""
    K_o = np.array([2.5, 5.0, 10.0, 20.0, 50.0, 100.0])
    truth = {**rpx.preset("frog_muscle"), "K_o": K_o, "Cl_o": 300.0 / K_o, "P_Cl": 6.6e-7}
    df = pd.DataFrame(
        {"K_o": K_o, "Cl_o": 300.0 / K_o, "V": np.asarray(rpx.resting_potential(truth))}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = rpx.fit(df, free=FREE, preset="frog_muscle", starts=4)
    np.testing.assert_allclose(float(ds["P_Cl"]), 6.6e-7, rtol=1e-6)
    np.testing.assert_allclose(float(ds["P_Na"]), truth["P_Na"], rtol=1e-6)
    with pytest.raises(ValueError, match="must start > 0"):
        rpx.fit(df, free=FREE, preset="frog_muscle", init={"P_Cl": 0.0})


# Regression: the fits of the synthetic cells above, recorded with the Adam-then-LM
# solver before the switch to Levenberg–Marquardt first (tests/data/fit_reference.npz,
# written by ``python tests/test_fit.py --record``). Estimates, standard errors,
# correlations, losses, fitted curves and every flag must stay as they were.
REFERENCE = Path(__file__).parent / "data" / "fit_reference.npz"
RECORDED = ("status", "identifiable", "loss", "V_fit", "correlation")


def _trap_frame() -> pd.DataFrame:
    K_o = np.geomspace(2.0, 200.0, 8)
    return pd.DataFrame({"K_o": K_o, "V": np.asarray(rpx.resting_potential({"K_o": K_o}))})


def _scale_frame() -> pd.DataFrame:
    K_o = np.geomspace(2.0, 200.0, 6)
    return pd.DataFrame({"K_o": K_o, "V": np.asarray(rpx.resting_potential({"K_o": K_o}))})


def _frog_frame() -> pd.DataFrame:
    K_o = np.array([2.5, 5.0, 10.0, 20.0, 50.0, 100.0])
    truth = {**rpx.preset("frog_muscle"), "K_o": K_o, "Cl_o": 300.0 / K_o, "P_Cl": 6.6e-7}
    return pd.DataFrame(
        {"K_o": K_o, "Cl_o": 300.0 / K_o, "V": np.asarray(rpx.resting_potential(truth))}
    )


def _flat_frame() -> pd.DataFrame:
    V0 = float(rpx.resting_potential({"K_o": 20.0, "Cl_o": 560.0}))
    b, _ = synthetic_cells(1, seed=3)
    a = pd.DataFrame({"cell": "a", "K_o": 20.0, "Cl_o": 560.0, "V": np.full(6, V0), "V_sd": SD})
    return pd.concat([a, b.assign(cell="b")], ignore_index=True)


def _bounds_data() -> xr.Dataset:
    K_o = np.geomspace(2.0, 200.0, 6)
    V = np.asarray(rpx.resting_potential({"K_o": K_o}))
    return xr.Dataset({"V": (("K_o",), V)}, coords={"K_o": K_o})


def _noisy_frame() -> pd.DataFrame:
    K_o = np.geomspace(2.0, 200.0, 6)
    V = np.asarray(rpx.resting_potential({"K_o": K_o}))
    return pd.DataFrame({"K_o": K_o, "V": V + np.array([0.3, -0.2, 0.1, -0.4, 0.2, 0.0])})


def reference_cases() -> dict[str, tuple]:
    """name -> (data builder, fit keyword arguments): every synthetic fit of this file."""
    const = pd.DataFrame(
        {
            "K_o": np.full(6, 20.0),
            "V": float(rpx.resting_potential({})) + np.linspace(-0.2, 0.2, 6),
        }
    )
    return {
        "recovery": (lambda: synthetic_cells(N_CELLS, seed=1)[0], dict(free=FREE, starts=4)),
        "adam_only": (
            lambda: synthetic_cells(5, seed=4)[0], dict(free=FREE, starts=3, lm_steps=0)
        ),
        "trap_one": (
            _trap_frame,
            dict(free=FREE, init={"P_Na": 1e-6, "P_Cl": 1e-9}, adam_steps=0, lm_steps=12,
                 starts=1),
        ),
        "trap_many": (
            _trap_frame,
            dict(free=FREE, init={"P_Na": 1e-6, "P_Cl": 1e-9}, adam_steps=0, lm_steps=12,
                 starts=32),
        ),
        "scale": (_scale_frame, dict(free=["P_K", "P_Na", "P_Cl"], starts=2)),
        "constant": (lambda: const, dict(free=FREE, starts=2)),
        "flat_one_cell": (_flat_frame, dict(free=FREE, starts=2)),
        "dataset": (_bounds_data, dict(free=["P_Na"], starts=2)),
        "bounded": (_bounds_data, dict(free=["P_Na"], bounds={"P_Na": (1e-9, 1e-7)}, starts=2)),
        "float64": (_noisy_frame, dict(free=["P_Na"], starts=2, dtype="float64")),
        "float32": (_noisy_frame, dict(free=["P_Na"], starts=2, dtype="float32")),
        "frog": (_frog_frame, dict(free=FREE, preset="frog_muscle", starts=4)),
    }


def _record_one(ds: xr.Dataset) -> dict[str, np.ndarray]:
    out = {k: np.asarray(ds[k].values) for k in RECORDED}
    for name in ds.attrs["free"]:
        out[name] = np.asarray(ds[name].values)
        out[f"{name}_se"] = np.asarray(ds[f"{name}_se"].values)
    out["held_fixed"] = np.asarray(ds.attrs["held_fixed"], dtype=str)
    return out


def _record() -> None:
    arrays = {}
    for case, (build, kw) in reference_cases().items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = rpx.fit(build(), **kw)
        for key, value in _record_one(ds).items():
            arrays[f"{case}/{key}"] = value
    REFERENCE.parent.mkdir(exist_ok=True)
    np.savez_compressed(REFERENCE, **arrays)



@pytest.mark.parametrize("case", list(reference_cases()))
def test_results_match_the_recorded_fits(case: str, recovery: tuple) -> None:
    """Same estimates, standard errors and flags as recorded, to 1e-8 relative.

    Where the data are fitted exactly, the loss (~1e-29) and the standard errors
    (~1e-16 of the estimate) are rounding noise: they are compared to 1e-8 of the
    estimate's scale instead. Estimates along an undetermined direction (non-identifiable
    cells) are arbitrary: there only the fitted curve and the flags are compared.
    float32 fits agree to its precision (the optimum is located to ~1e-5).
    """
    ref = np.load(REFERENCE)
    build, kw = reference_cases()[case]
    if case == "recovery":
        ds = recovery[2]
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = rpx.fit(build(), **kw)
    got = _record_one(ds)
    want = {k.split("/", 1)[1]: v for k, v in ref.items() if k.startswith(f"{case}/")}
    assert sorted(got) == sorted(want)
    rtol = 1e-5 if case == "float32" else 1e-8
    for key in ("status", "identifiable", "held_fixed"):
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    np.testing.assert_allclose(got["V_fit"], want["V_fit"], rtol=rtol, err_msg="V_fit")
    ok = np.atleast_1d(want["identifiable"])
    for name in ds.attrs["free"]:
        x, se = np.atleast_1d(got[name]), np.atleast_1d(got[f"{name}_se"])
        x0, se0 = np.atleast_1d(want[name]), np.atleast_1d(want[f"{name}_se"])
        np.testing.assert_allclose(x[ok], x0[ok], rtol=rtol, err_msg=name)
        np.testing.assert_allclose(
            se[ok], se0[ok], rtol=rtol, atol=rtol * np.max(np.abs(x0[ok]), initial=0.0),
            err_msg=f"{name}_se",
        )
        assert np.all(np.isnan(se[~ok])) and np.all(np.isnan(se0[~ok]))
    corr, corr0 = got["correlation"].reshape(ok.size, -1), want["correlation"].reshape(ok.size, -1)
    np.testing.assert_allclose(corr[ok], corr0[ok], rtol=rtol, atol=rtol, err_msg="correlation")
    loss, loss0 = np.atleast_1d(got["loss"]), np.atleast_1d(want["loss"])
    # float32 rounds V to ~1e-5 mV, which the residuals cancel: its loss to ~1e-4.
    rtol_loss = 1e-4 if case == "float32" else rtol
    np.testing.assert_allclose(loss[ok], loss0[ok], rtol=rtol_loss, atol=1e-20, err_msg="loss")

if __name__ == "__main__":
    import sys

    jax.config.update("jax_enable_x64", True)
    if sys.argv[1:] == ["--record"]:
        _record()


def test_an_estimate_stuck_on_a_bound_is_named_in_the_warning() -> None:
    """P_Na's box excludes the value the data need: the estimate ends on the box's upper
    bound, the saturated coordinate leaves a flat direction, and the warning says that the
    box (not the data) is at fault."""
    K_o = np.geomspace(2.0, 200.0, 6)
    df = pd.DataFrame({"K_o": K_o, "V": np.asarray(rpx.resting_potential({"K_o": K_o}))})
    truth = float(rpx.preset("default")["P_Na"])
    bounds = (truth * 1e-3, truth * 1e-2)
    with pytest.warns(rpx.IdentifiabilityWarning, match=r"P_Na = .* is on a bound of bounds="):
        ds = rpx.fit(df, free=["P_Na", "P_Cl"], bounds={"P_Na": bounds}, starts=2)
    np.testing.assert_allclose(float(ds["P_Na"]), bounds[1], rtol=1e-4)


def test_plain_forms_first_and_the_two_form_program_where_a_fit_needs_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Cells fit by the program with the plain closed forms; a cell whose fit reaches
    permeabilities where they are not exact (every P x c below 2^-50 mM cm/s: the GHK
    voltage depends on ratios only, so V is unchanged) is fitted again by the two-form
    program alone. Every cell's fit equals that of the two-form program throughout."""
    import importlib

    fit_module = importlib.import_module("rpx.analysis.fit")
    df, _ = synthetic_cells(3, seed=11)
    tiny = 1e-12
    # Cell 2: P_K 1e-12 times the preset's. Its starts are the preset's (P_Na, P_Cl
    # ~1e-8 cm/s, where the sums are ordinary); LM then moves them 12 decades down.
    df["P_K"] = np.where(df["cell"] == 2, tiny, 1.0) * rpx.preset("squid_axon")["P_K"]
    calls: list[tuple[bool, int]] = []
    build = fit_module.build_lm_solver

    def spy(cfg: object) -> object:
        solve = build(cfg)

        def run(u0: object, cells: dict, fixed: dict) -> dict:
            calls.append((cfg.plain_points is not None, cells["V"].shape[0]))
            return solve(u0, cells, fixed)

        return run

    monkeypatch.setattr(fit_module, "build_lm_solver", spy)
    plain_first = rpx.fit(df, free=FREE, starts=2)
    assert calls == [(True, 3), (False, 1)]  # the plain program, then cell 2 again
    calls.clear()
    ordinary = rpx.fit(df[df["cell"] < 2], free=FREE, starts=2)
    assert calls == [(True, 2)]  # nothing needed the two forms
    calls.clear()
    monkeypatch.setattr(fit_module, "PLAIN_FORMS_FIRST", False)
    two_forms = rpx.fit(df, free=FREE, starts=2)
    assert calls == [(False, 3)]
    assert bool(plain_first["converged"].all())
    for name in FREE:  # cell 2's estimates are ~1e-12 times the others'
        assert 1e-14 < float(plain_first[name][2] / plain_first[name][0]) < 1e-10
    for name in ("iterations", "status", "best_start", "identifiable", "restarted"):
        np.testing.assert_array_equal(plain_first[name], two_forms[name], err_msg=name)
        np.testing.assert_array_equal(ordinary[name], two_forms[name][:2], err_msg=name)
    for name in [*FREE, *(f"{n}_se" for n in FREE), "loss", "loss_history", "V_fit"]:
        np.testing.assert_allclose(plain_first[name], two_forms[name], rtol=1e-10, err_msg=name)
        np.testing.assert_allclose(
            ordinary[name], two_forms[name][:2], rtol=1e-10, err_msg=name
        )
