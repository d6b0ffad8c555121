"""Global sensitivity: rpx.sensitivity (Sobol', Morris, DGSM) and ``rpx sensitivity``.

The estimators against the analytic indices of the Ishigami function, against SALib
1.6 on the same samples of rpx's own models, the DGSM bound on the total index,
chunking and compilation, input validation and the command line round trip.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr
from SALib.analyze import dgsm as salib_dgsm
from SALib.analyze import morris as salib_morris
from SALib.analyze import sobol as salib_sobol
from SALib.sample import finite_diff as salib_finite_diff
from SALib.sample import sobol as salib_sobol_sample

import rpx
from rpx.analysis.estimators import dgsm_estimates, morris_trajectories
from rpx.analysis.sensitivity import _KERNELS, _problem
from rpx.cli import main
from rpx.cli.sensitivity import load_sensitivity_spec

# ---------------------------------------------------------------------------- Ishigami
A, B = 7.0, 0.1  # Ishigami & Homma (1990) constants as used by SALib and Sobol' (2009)
PI = math.pi


def _ishigami(p: dict[str, jax.Array]) -> dict[str, jax.Array]:
    x1, x2, x3 = p["x1"], p["x2"], p["x3"]
    return {"V": jnp.sin(x1) + A * jnp.sin(x2) ** 2 + B * x3**4 * jnp.sin(x1)}


ISHIGAMI = rpx.Model(
    "ishigami", _ishigami, ("x1", "x2", "x3"), {"V": rpx.Output("1", "Ishigami function")},
    "Ishigami function (test only, not registered)",
)
ISHIGAMI_RANGES = {k: (-PI, PI) for k in ("x1", "x2", "x3")}
# Analytic variances (x_i uniform on [-π, π]): Var = a²/8 + bπ⁴/5 + b²π⁸/18 + 1/2,
# V1 = (1 + bπ⁴/5)²/2, V2 = a²/8, V13 = b²π⁸(1/18 − 1/50), V3 = 0.
VAR = A**2 / 8 + B * PI**4 / 5 + B**2 * PI**8 / 18 + 0.5
V1, V2, V13 = (1 + B * PI**4 / 5) ** 2 / 2, A**2 / 8, B**2 * PI**8 * (1 / 18 - 1 / 50)
S1 = np.array([V1, V2, 0.0]) / VAR
ST = np.array([V1 + V13, V2, V13]) / VAR
# ν_i = E[(∂f/∂x_i)²]: E[cos²x1]·E[(1 + b x3⁴)²], E[a² sin²(2 x2)], E[16 b² x3⁶ sin² x1].
NU = np.array([
    0.5 * (1 + 2 * B * PI**4 / 5 + B**2 * PI**8 / 9),
    A**2 / 2,
    8 * B**2 * PI**6 / 7,
])


def test_sobol_reproduces_ishigami_indices() -> None:
    ds = rpx.sensitivity(ISHIGAMI, ISHIGAMI_RANGES, "sobol", 1 << 13, second_order=True,
                         n_boot=50)
    # Saltelli/Jansen estimators at N = 2^13 scrambled Sobol' points: errors of a few
    # 1e-3 (the bootstrap half-widths are ~0.01), hence 0.02.
    np.testing.assert_allclose(ds.V_S1.values, S1, atol=0.02)
    np.testing.assert_allclose(ds.V_ST.values, ST, atol=0.02)
    assert abs(float(ds.V_S2.sel(param="x1", param_2="x3")) - V13 / VAR) < 0.03
    assert abs(float(ds.V_S2.sel(param="x1", param_2="x2"))) < 0.03
    assert np.all(ds.V_ST_conf.values > 0) and np.all(ds.V_ST_conf.values < 0.05)
    assert abs(float(ds.V_variance) - VAR) < 0.01 * VAR


def test_dgsm_reproduces_ishigami_and_bounds_total_indices() -> None:
    ds = rpx.sensitivity(ISHIGAMI, ISHIGAMI_RANGES, "dgsm", 1 << 13, n_boot=0)
    width = 2 * PI
    # quasi-Monte Carlo means of smooth integrands at 2^13 points: 1% is generous
    np.testing.assert_allclose(ds.V_dgsm.values, NU * width**2 / 12, rtol=0.01)
    bound = NU * width**2 / (PI**2 * VAR)
    np.testing.assert_allclose(ds.V_dgsm_bound.values, bound, rtol=0.01)
    assert np.all(bound >= ST)  # Sobol' & Kucherenko (2009): ST_i <= ν_i w²/(π² Var)
    assert np.all(ds.V_dgsm_bound.values >= ST)


# ------------------------------------------------------------------ SALib, same samples
PUMP_RANGES = {
    "K_o": (2.0, 20.0, "loguniform"),
    "Na_i": (5.0, 40.0),
    "P_Na": (5e-9, 5e-8, "loguniform"),
    "I_pump_max": (0.5, 3.0),
}
PRESET = "mammalian_neuron"
SEED = 4


def _salib_problem(ranges: dict) -> dict:
    dists = [{"uniform": "unif", "loguniform": "logunif"}[r[2] if len(r) > 2 else "uniform"]
             for r in ranges.values()]
    return {"num_vars": len(ranges), "names": list(ranges),
            "bounds": [[r[0], r[1]] for r in ranges.values()], "dists": dists}


def _sample_rng(seed: int) -> np.random.Generator:
    """The generator rpx.sensitivity draws its design from for ``seed``."""
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[0])


@functools.cache
def _evaluate(model: str) -> jax.stages.Wrapped:
    return jax.jit(functools.partial(rpx.evaluate, model=model, base=PRESET))


def _at(model: str, names: list[str], X: np.ndarray, out: str = "V") -> np.ndarray:
    return np.asarray(_evaluate(model)({k: X[:, j] for j, k in enumerate(names)})[out])


def test_sobol_agrees_with_salib_on_ghk_pump() -> None:
    n = 256
    ds = rpx.sensitivity("ghk_pump", PUMP_RANGES, "sobol", n, preset=PRESET,
                         second_order=True, seed=SEED, n_boot=0, outputs=["V"])
    problem = _salib_problem(PUMP_RANGES)
    X = salib_sobol_sample.sample(problem, n, calc_second_order=True, seed=_sample_rng(SEED))
    Y = _at("ghk_pump", problem["names"], X)
    S = salib_sobol.analyze(problem, Y, calc_second_order=True, num_resamples=2, seed=1)
    # the same estimators on the same points; rpx maps u -> x by exp(ln lo + u ln(hi/lo)),
    # SALib by scipy's loguniform.ppf: the inputs differ by rounding, the indices by ~1e-13.
    np.testing.assert_allclose(ds.V_S1.values, S["S1"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(ds.V_ST.values, S["ST"], rtol=0, atol=1e-9)
    upper = np.triu(np.ones((4, 4), bool), 1)
    np.testing.assert_allclose(ds.V_S2.values[upper], S["S2"][upper], rtol=0, atol=1e-9)
    assert np.all(np.isnan(ds.V_S2.values[~upper]))
    assert int(ds.V_n_nonfinite) == 0


def test_morris_agrees_with_salib_on_ghk() -> None:
    ranges = {"K_o": (2.0, 20.0), "Na_i": (5.0, 40.0), "P_Na": (5e-9, 5e-8, "loguniform")}
    r, levels = 40, 6
    ds = rpx.sensitivity("ghk", ranges, "morris", r, preset=PRESET, num_levels=levels,
                         seed=SEED, n_boot=0)
    u = morris_trajectories(r, 3, levels, _sample_rng(SEED)).reshape(-1, 3)
    X = np.stack([2.0 + 18.0 * u[:, 0], 5.0 + 35.0 * u[:, 1],
                  np.exp(np.log(5e-9) + u[:, 2] * np.log(10.0))], axis=1)
    Y = _at("ghk", list(ranges), X)
    S = salib_morris.analyze(_salib_problem(ranges), X, Y, num_levels=levels,
                             num_resamples=2, seed=1)
    for key in ("mu", "mu_star", "sigma"):  # same effects, rounding only
        np.testing.assert_allclose(ds[f"V_{key}"].values, S[key], rtol=1e-10)


def test_dgsm_agrees_with_salib_finite_differences() -> None:
    """SALib's DGSM from forward differences (step 1e-7·x) against rpx's exact gradients
    at the same base points: forward-difference error ~ 1e-7 relative, hence 1e-5."""
    ranges = {"K_o": (2.0, 20.0), "Na_i": (5.0, 40.0), "P_Na": (5e-9, 5e-8)}
    problem = _salib_problem(ranges)
    X = salib_finite_diff.sample(problem, 128, delta=1e-7, seed=1)
    Y = _at("ghk", problem["names"], X)
    S = salib_dgsm.analyze(problem, X, Y, num_resamples=2, seed=1)
    base = X[::4]
    grads = rpx.gradients({k: base[:, j] for j, k in enumerate(ranges)}, "ghk", list(ranges),
                          base=PRESET)
    g = np.stack([np.asarray(grads[f"dV_d{k}"]) for k in ranges], axis=1)
    width = np.array([hi - lo for lo, hi in ranges.values()])
    est = dgsm_estimates(Y[::4], g, width, 0, 0.95, np.random.default_rng(0))
    np.testing.assert_allclose(est["dgsm_bound"], S["dgsm"], rtol=1e-5)
    np.testing.assert_allclose(est["dgsm"], S["vi"] * width**2 / 12, rtol=1e-5)


def test_dgsm_bound_holds_on_ghk_pump() -> None:
    n = 1024
    sobol = rpx.sensitivity("ghk_pump", PUMP_RANGES, "sobol", n, preset=PRESET,
                            second_order=True, seed=SEED, n_boot=50, outputs=["V"])
    dgsm = rpx.sensitivity("ghk_pump", PUMP_RANGES, "dgsm", n, preset=PRESET, seed=SEED,
                           n_boot=50, outputs=["V"])
    # ST_i <= bound_i, both estimated: allowed to touch within their confidence intervals
    slack = sobol.V_ST_conf.values + dgsm.V_dgsm_bound_conf.values
    assert np.all(dgsm.V_dgsm_bound.values + slack >= sobol.V_ST.values)
    # the estimators agree on the order of importance of the two dominant inputs
    assert sobol.V_ST.idxmax().item() == dgsm.V_dgsm_bound.idxmax().item()


# ------------------------------------------------------------- chunks, dtypes, outputs
GHK_RANGES = {"K_o": (2.0, 20.0, "loguniform"), "Na_i": (5.0, 40.0), "P_Cl": (1e-8, 1e-6)}


@pytest.mark.parametrize("method", ["sobol", "morris", "dgsm"])
def test_results_do_not_depend_on_chunking_and_compile_once(method: str) -> None:
    kw = dict(preset=PRESET, seed=2, n_boot=20, dtype="float64")
    n = 100 if method == "morris" else 256
    whole = rpx.sensitivity("ghk", GHK_RANGES, method, n, **kw)
    before = len(_KERNELS)
    parts = rpx.sensitivity("ghk", GHK_RANGES, method, n, chunk_points=60, **kw)
    assert len(_KERNELS) == before  # the same problem reuses its kernel...
    kernel = next(k for key, k in _KERNELS.items() if key[0] == method and
                  key[2] == tuple(GHK_RANGES) and key[1] is rpx.get_model("ghk").fn)
    # ...which compiled once per chunk size (here 2), padded edge chunks included
    assert kernel._cache_size() == 2
    for name in whole.data_vars:
        np.testing.assert_allclose(parts[name].values, whole[name].values, rtol=1e-12,
                                   atol=1e-15, err_msg=name)


def test_float32_evaluations_follow_float64() -> None:
    kw = dict(preset=PRESET, seed=1, n_boot=0)
    ds32 = rpx.sensitivity("ghk", GHK_RANGES, "sobol", 512, dtype="float32", **kw)
    ds64 = rpx.sensitivity("ghk", GHK_RANGES, "sobol", 512, dtype="float64", **kw)
    assert ds32.attrs["dtype"] == "float32"
    # float32 V is within 0.01 mV of float64 (tests/test_models.py) on a spread of
    # tens of mV: the indices move by ~1e-4
    np.testing.assert_allclose(ds32.V_ST.values, ds64.V_ST.values, atol=2e-3)


def test_dataset_is_self_describing() -> None:
    ds = rpx.sensitivity("ghk_pump", {"K_o": (2.0, 20.0, "loguniform")}, "morris", 4,
                         preset=PRESET, n_boot=2)
    assert {"V_mu_star", "I_pump_mu_star", "V_n_nonfinite"} <= set(ds.data_vars)
    for name, var in {**ds.data_vars, **ds.coords}.items():
        assert {"units", "long_name"} <= set(var.attrs), name
    assert ds.V_mu_star.attrs["units"] == "mV"
    assert ds.I_pump_mu_star.attrs["units"] == "uA/cm^2"
    assert ds.V_variance.attrs["units"] == "mV^2"
    assert ds.param_units.values.tolist() == ["mM"]
    assert ds.attrs["model"] == "ghk_pump" and ds.attrs["n_evaluations"] == 8


def test_non_finite_evaluations_are_counted_and_warned() -> None:
    """A model that fails (NaN) somewhere: the count is stored, a warning is given and
    the indices are NaN rather than silently wrong."""

    def fails_above_2(p: dict[str, jax.Array]) -> dict[str, jax.Array]:
        return {"V": jnp.where(p["x1"] > 2.0, jnp.nan, p["x1"] + p["x2"])}

    model = rpx.Model("partial", fails_above_2, ("x1", "x2"), {"V": rpx.Output("1", "x1 + x2")},
                      "x1 + x2, NaN where x1 > 2 (test only)")
    with pytest.warns(RuntimeWarning, match="evaluations of V are not finite"):
        ds = rpx.sensitivity(model, {"x1": (0.0, 3.0), "x2": (0.0, 1.0)}, "sobol", 64, n_boot=0)
    assert 0 < int(ds.V_n_nonfinite) < 64 * 4
    assert np.all(np.isnan(ds.V_ST.values))


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("ranges", "kwargs", "message"),
    [
        ({"K_x": (1.0, 2.0)}, {}, "'K_x' is not read by model 'ghk'"),
        ({"r_pump": (1.0, 2.0)}, {}, "'r_pump' is not read by model 'ghk'"),
        ({"K_o": (5.0, 2.0)}, {}, "range of K_o: need finite lo < hi"),
        ({"K_o": (-1.0, 2.0)}, {}, "K_o=-1.0 is outside its allowed range"),
        ({"P_Na": (0.0, 1e-7, "loguniform")}, {}, "range of P_Na: loguniform needs lo > 0"),
        ({"K_o": (1.0, 2.0, "normal")}, {}, "range of K_o: dist must be one of"),
        ({"K_o": ("a", 2.0)}, {}, "range of K_o: bounds must be numbers"),
        ({"K_o": {"low": 1.0, "hi": 2.0}}, {}, "range of K_o: expected keys lo, hi"),
        ({"K_o": 3.0}, {}, "range of K_o: expected"),
        ({}, {}, "give at least one parameter"),
        ({"K_o": (1.0, 2.0)}, {"fixed": {"K_o": 3.0}}, "K_o are both fixed and varied"),
        ({"K_o": (1.0, 2.0)}, {"fixed": {"T": -3.0}}, "T=-3.0 is outside"),
        ({"K_o": (1.0, 2.0)}, {"method": "fast"}, "method must be one of"),
        ({"K_o": (1.0, 2.0)}, {"n": 100}, "n must be a power of two"),
        ({"K_o": (1.0, 2.0)}, {"n": 1}, "n must be an integer >= 2"),
        ({"K_o": (1.0, 2.0)}, {"outputs": ["I_pump"]}, "output 'I_pump'"),
        ({"K_o": (1.0, 2.0)}, {"second_order": True}, "at least two varied"),
        ({"K_o": (1.0, 2.0)}, {"method": "morris", "num_levels": 3}, "num_levels must be"),
        ({"K_o": (1.0, 2.0)}, {"n_boot": 1}, "n_boot must be"),
        ({"K_o": (1.0, 2.0)}, {"preset": "octopus"}, "unknown preset"),
    ],
)
def test_bad_input_raises_naming_the_entry(ranges: dict, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rpx.sensitivity("ghk", ranges, **{"n": 8, **kwargs})


# ---------------------------------------------------------------------------- the CLI
SPEC = """
model = "ghk"
preset = "mammalian_neuron"
seed = 3
n_boot = 10
[fixed]
T = 300.0
[ranges]
K_o = { lo = 2.0, hi = 20.0, dist = "loguniform" }
Na_i = { lo = 5.0, hi = 40.0 }
"""


@pytest.mark.parametrize("method", ["sobol", "morris", "dgsm"])
def test_cli_round_trip(method: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC)
    out = tmp_path / "s.zarr"
    argv = ["sensitivity", str(spec), "--method", method, "--n", "64", "-o", str(out)]
    assert main(argv) == 0
    assert f"{method} indices of V" in capsys.readouterr().out
    got = xr.open_zarr(out).load()
    want = rpx.sensitivity("ghk", {"K_o": (2.0, 20.0, "loguniform"), "Na_i": (5.0, 40.0)},
                           method, 64, preset=PRESET, fixed={"T": 300.0}, seed=3, n_boot=10,
                           dtype="float64")
    for name, var in want.data_vars.items():
        np.testing.assert_array_equal(got[name].values, var.values, err_msg=name)
        assert got[name].attrs == var.attrs
    assert got.param.values.tolist() == ["K_o", "Na_i"]
    assert got.attrs["method"] == method and '"n": 64' in got.attrs["spec"]
    assert main(argv) == 2  # refuses to replace without --overwrite
    assert "--overwrite" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0


def test_example_spec_is_valid() -> None:
    """The example validates completely (running it is the CLI test's job)."""
    spec = load_sensitivity_spec(Path(__file__).parent.parent / "examples" / "sensitivity.toml")
    problem = _problem(spec["model"], spec["ranges"], spec["fixed"], spec["preset"],
                       spec["outputs"], "float64")
    assert problem.names == tuple(spec["ranges"]) and problem.fixed["T"] == 310.15
    assert spec["method"] in ("sobol", "morris", "dgsm")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (SPEC.replace('model = "ghk"', ""), "the spec must name a model"),
        ("colour = 1\n" + SPEC, "unknown spec entries"),
        (SPEC.replace("lo = 5.0", "lo = 50.0"), "range of Na_i: need finite lo < hi"),
        (SPEC.replace("T = 300.0", "T = -1.0"), "T=-1.0 is outside"),
        ("model = 'ghk'\n", "needs a [ranges] table"),
        ("model = ", "not valid TOML"),
    ],
)
def test_cli_bad_spec_exits_2(
    text: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    spec = tmp_path / "bad.toml"
    spec.write_text(text)
    assert main(["sensitivity", str(spec), "--n", "8", "-o", str(tmp_path / "x.zarr")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.zarr").exists()
