"""Pump–leak steady state: balances, limits, gradients, failure statuses, sweeps.

References are independent of the solver: the flux balances are checked with the core's
GHK and pump currents, the Donnan limit against the closed-form root of a quadratic,
the voltage against the Mullins–Noda equation, gradients against float64 central
differences.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

import rpx
from rpx.physics import formulas as phys
from rpx.physics.pump_leak import (
    OUTPUTS,
    SODIUM_DEPLETED,
    UNBOUNDED_SWELLING,
    external_osmolarity,
    pump_leak,
    pump_leak_fixed,
    residual_sign_changes,
)
from rpx.sweep.runner import run_sweep
from rpx.sweep.spec import Axis, SweepSpec

N = 64
SOLVERS = {"kinetic": jax.jit(pump_leak), "fixed": jax.jit(pump_leak_fixed)}


def random_params(rng: np.random.Generator, n: int = N) -> dict[str, jax.Array]:
    """Wide random parameter sets (log-uniform where the parameter spans decades)."""

    def logu(lo: float, hi: float) -> np.ndarray:
        return 10 ** rng.uniform(np.log10(lo), np.log10(hi), n)

    p = {
        "K_o": logu(1.0, 50.0),
        "Na_o": logu(50.0, 500.0),
        "Cl_o": logu(50.0, 600.0),
        "P_K": logu(1e-8, 1e-5),
        "P_Na": logu(1e-10, 1e-6),
        "T": rng.uniform(280.0, 315.0, n),
        "z_X": rng.uniform(-3.0, 0.0, n),
        "X_content": logu(10.0, 300.0),
        "X_o": rng.uniform(0.0, 50.0, n),
        "I_pump_fixed": logu(1e-3, 1.0),
        "I_pump_max": logu(1e-2, 20.0),
        "Km_Na_i": np.full(n, 10.0),
        "Km_K_o": np.full(n, 1.5),
    }
    return {k: jnp.asarray(v) for k, v in p.items()}


@pytest.fixture(scope="module", params=["kinetic", "fixed"])
def solved(request: pytest.FixtureRequest) -> tuple[str, dict, dict]:
    """(pump, random parameter sets, their steady states), solved once per module."""
    p = random_params(np.random.default_rng(1))
    return request.param, p, SOLVERS[request.param](p)


def test_steady_state_satisfies_balances(solved: tuple[str, dict, dict]) -> None:
    pump, p, out = solved
    ok = np.asarray(out["status"]) == 0
    assert ok.sum() > N // 2  # the ranges are wide; most sets have a steady state
    assert set(np.unique(np.asarray(out["status"]))) <= {0, UNBOUNDED_SWELLING, SODIUM_DEPLETED}
    V, T = out["V"], p["T"]
    I_p = out["I_pump"]
    if pump == "kinetic":  # the reported pump current is the Luo–Rudy current at the state
        I_ref = phys.nak_pump_current(
            V, out["Na_i"], p["Na_o"], p["K_o"], p["I_pump_max"], p["Km_Na_i"], p["Km_K_o"], T
        )
        np.testing.assert_allclose(I_p[ok], I_ref[ok], rtol=1e-12)
    I_na = phys.ghk_current(V, p["P_Na"], p["Na_o"], out["Na_i"], 1, T)
    I_k = phys.ghk_current(V, p["P_K"], p["K_o"], out["K_i"], 1, T)
    I_cl = phys.ghk_current(V, 1e-6, p["Cl_o"], out["Cl_i"], -1, T)
    # Each balance is a difference of currents of size ~|I_p|: relative tolerance 1e-9
    # (the root is found to a few ulps of u; the currents amplify that by < 1e4).
    scale = np.asarray(jnp.abs(I_p) + jnp.abs(I_na))
    for resid in (I_na + 3.0 * I_p, I_k - 2.0 * I_p):
        assert np.all(np.abs(np.asarray(resid))[ok] <= 1e-9 * scale[ok])
    assert np.all(np.abs(np.asarray(I_cl))[ok] <= 1e-9 * np.asarray(jnp.abs(p["Cl_o"]))[ok])
    # Electroneutrality and osmotic balance, mM, to solver tolerance.
    charge = out["Na_i"] + out["K_i"] - out["Cl_i"] + p["z_X"] * out["X_i"]
    osm_i = out["Na_i"] + out["K_i"] + out["Cl_i"] + out["X_i"]
    osm_o = external_osmolarity(p["Na_o"], p["K_o"], p["Cl_o"], p["X_o"])
    np.testing.assert_allclose(np.asarray(charge)[ok], 0.0, atol=1e-9 * 1e3)
    np.testing.assert_allclose(np.asarray(osm_i)[ok], np.asarray(osm_o)[ok], rtol=1e-12)
    np.testing.assert_allclose(
        np.asarray(out["volume"] * out["X_i"])[ok], np.asarray(p["X_content"])[ok], rtol=1e-12
    )
    assert np.all(np.asarray(out["X_i"])[ok] > 0) and np.all(np.asarray(out["Na_i"])[ok] > 0)
    # Where there is no steady state every float output is NaN.
    for k in ("V", "Na_i", "K_i", "Cl_i", "X_i", "volume", "I_pump"):
        assert np.all(np.isnan(np.asarray(out[k])[~ok]))


def test_voltage_is_mullins_noda(solved: tuple[str, dict, dict]) -> None:
    """With Cl passive, I_Na = −1.5·I_K at steady state: the Mullins–Noda equation."""
    _, p, out = solved
    ok = np.asarray(out["status"]) == 0
    V_mn = phys.mullins_noda_voltage(
        p["K_o"], out["K_i"], p["Na_o"], out["Na_i"], p["P_K"], p["P_Na"], 1.5, p["T"]
    )
    np.testing.assert_allclose(np.asarray(out["V"])[ok], np.asarray(V_mn)[ok], atol=1e-8)


def test_one_root_exactly_where_the_solver_succeeds(solved: tuple[str, dict, dict]) -> None:
    """The residual's sign changes on a fine grid: one root where status is 0, else none.

    A numerical check of uniqueness with the pump (unproven analytically): no random set
    has two steady states, and the solver finds a root whenever there is one.
    """
    pump, p, out = solved
    counts = np.asarray(residual_sign_changes(p, pump == "kinetic"))
    status = np.asarray(out["status"])
    assert counts.max() <= 1
    np.testing.assert_array_equal(counts == 1, status == 0)
    assert (status == 0).sum() >= 10  # the random sets include solvable ones


@pytest.mark.parametrize("pump", ["kinetic", "fixed"])
def test_every_preset_has_at_most_one_steady_state(pump: str) -> None:
    """One root for every preset with the kinetic pump; with the fixed pump (whose current
    is not fitted to the cell) one root exactly where the solver finds a steady state."""
    from rpx.physics.api import prepare

    model = "pump_leak" if pump == "kinetic" else "pump_leak_fixed"
    each = [prepare(dict(rpx.preset(name)), model) for name in rpx.presets()]
    p = {k: jnp.stack([jnp.asarray(e[k]) for e in each]) for k in each[0]}
    counts = np.asarray(jax.jit(residual_sign_changes, static_argnums=1)(p, pump == "kinetic"))
    status = np.asarray(SOLVERS[pump](p)["status"])
    np.testing.assert_array_equal(counts, status == 0)
    assert pump == "fixed" or counts.min() == 1


def test_donnan_limit() -> None:
    """P_Na = 0 and the pump off: Donnan equilibrium, K_i/K_o = Cl_o/Cl_i = e^(−FV/RT).

    Independent reference: with y = e^(−u), H·y = (1 − z)·A·y² + z·Osm·y − (1 + z)·Cl_o
    (A = Na_o + K_o) must vanish, and the physical root has Cl_i < Osm/2.
    """
    p = random_params(np.random.default_rng(3))
    p = p | {"P_Na": jnp.zeros(N), "I_pump_max": jnp.zeros(N)}
    out = SOLVERS["kinetic"](p)
    assert np.all(np.asarray(out["status"]) == 0)
    u = out["V"] / phys.thermal_voltage(p["T"])
    np.testing.assert_allclose(out["K_i"] / p["K_o"], jnp.exp(-u), rtol=1e-12)
    np.testing.assert_allclose(p["Cl_o"] / out["Cl_i"], jnp.exp(-u), rtol=1e-12)

    z, A = np.asarray(p["z_X"]), np.asarray(p["Na_o"] + p["K_o"])
    Cl_o = np.asarray(p["Cl_o"])
    osm = np.asarray(external_osmolarity(p["Na_o"], p["K_o"], p["Cl_o"], p["X_o"]))
    a, b, c = (1 - z) * A, z * osm, -(1 + z) * Cl_o
    disc = np.sqrt(b * b - 4 * a * c)
    roots = np.stack([(-b + disc) / (2 * a), (-b - disc) / (2 * a)])
    y_cl = 2 * Cl_o / osm  # y above this: X_i > 0
    y = np.where(roots[0] > y_cl, roots[0], roots[1])
    assert np.all((roots[1] <= y_cl) | (roots[1] < 0) | np.isclose(roots[0], roots[1]))
    V_ref = -np.asarray(phys.thermal_voltage(p["T"])) * np.log(y)
    np.testing.assert_allclose(np.asarray(out["V"]), V_ref, rtol=1e-10, atol=1e-10)


def solve(params: dict, pump: str = "kinetic") -> dict[str, jax.Array]:
    """Validated parameters (preset + params), solved by the jitted model."""
    return SOLVERS[pump](rpx.prepare(params, "pump_leak" if pump == "kinetic" else
                                     "pump_leak_fixed"))


def test_independent_of_P_Cl_and_volume_proportional_to_content() -> None:
    base = rpx.preset("red_blood_cell")
    ref = solve(base)
    other = solve(base | {"P_Cl": 1e-9, "X_content": 300.0})
    for k in ("V", "Na_i", "K_i", "Cl_i", "X_i", "I_pump"):
        np.testing.assert_allclose(other[k], ref[k], rtol=1e-12)
    np.testing.assert_allclose(other["volume"], 3.0 * ref["volume"], rtol=1e-12)
    # The validated public entry point gives the same state.
    public = rpx.pump_leak_steady_state(base)
    np.testing.assert_allclose(public["V"], ref["V"], rtol=1e-12)


@pytest.mark.parametrize(
    ("pump", "names"),
    [
        ("kinetic", ["K_o", "Na_o", "Cl_o", "P_K", "P_Na", "z_X", "X_o", "I_pump_max", "T"]),
        ("fixed", ["K_o", "Cl_o", "P_Na", "z_X", "I_pump_fixed"]),
    ],
)
def test_implicit_gradients_match_central_differences(pump: str, names: list[str]) -> None:
    model = "pump_leak" if pump == "kinetic" else "pump_leak_fixed"
    p0 = rpx.prepare(rpx.preset("red_blood_cell") | {"X_o": 10.0}, model)
    outs = ("V", "Na_i", "K_i", "Cl_i", "volume", "I_pump")
    x0 = jnp.stack([p0[k] for k in names])
    n = len(names)

    def f(x: jax.Array) -> jax.Array:
        """Outputs (n_out, batch) for parameter vectors x (n, batch)."""
        out = SOLVERS[pump]({**p0, **{k: x[i] for i, k in enumerate(names)}})
        return jnp.stack([out[k] for k in outs])

    jac = jax.jit(jax.jacfwd(lambda x: f(x[:, None])[:, 0]))(x0)  # (n_out, n)
    h = 1e-5 * jnp.abs(x0)
    steps = jnp.concatenate([jnp.diag(h), -jnp.diag(h)], axis=1)  # (n, 2n)
    y = f(x0[:, None] + steps)
    fd = (y[:, :n] - y[:, n:]) / (2 * h)
    y0 = f(x0[:, None])
    # Central differences: truncation ~(h/x)²·f ~ 1e-10 relative, rounding
    # ~eps·|f|/h ~ 2e-11·|f|/|x|; the IFT derivative is exact up to the root's ulps.
    tol = 1e-6 * jnp.abs(fd) + 1e-9 * jnp.abs(y0) / jnp.abs(x0)
    bad = np.argwhere(np.asarray(jnp.abs(jac - fd) > tol))
    assert bad.size == 0, [(outs[i], names[j], float(jac[i, j]), float(fd[i, j])) for i, j in bad]


def test_no_steady_state_gives_nan_and_status() -> None:
    neuron = rpx.preset("mammalian_neuron")
    # A fixed pump stronger than the largest possible Na leak: Na_i would have to be < 0.
    depleted = solve(neuron | {"I_pump_fixed": 5.0}, pump="fixed")
    assert int(depleted["status"]) == SODIUM_DEPLETED
    # Pump on, no Na leak at all.
    no_leak = solve(neuron | {"P_Na": 0.0})
    assert int(no_leak["status"]) == SODIUM_DEPLETED
    # No impermeant solute outside (Cl_o = Na_o + K_o, X_o = 0) and a pump that moves
    # more osmoles in than out (P_Na > 1.5·P_K): the Donnan load is never balanced.
    swell = solve(
        neuron | {"Cl_o": 150.0, "X_o": 0.0, "P_Na": 3.3e-6, "I_pump_fixed": 0.5}, pump="fixed"
    )
    assert int(swell["status"]) == UNBOUNDED_SWELLING
    # P_K = 0 with the pump on: K+ accumulates without bound and water follows.
    k_trap = solve(neuron | {"P_K": 0.0})
    assert int(k_trap["status"]) == UNBOUNDED_SWELLING
    for out in (depleted, no_leak, swell, k_trap):
        assert all(np.isnan(float(out[k])) for k in out if k != "status")


def test_pump_argument_is_checked() -> None:
    with pytest.raises(ValueError, match="pump must be one of"):
        rpx.pump_leak_steady_state(pump="ouabain")


def test_float32_agrees_with_float64() -> None:
    p = rpx.preset("astrocyte")
    lo = solve({k: np.float32(v) for k, v in p.items()})
    hi = solve({k: np.float64(v) for k, v in p.items()})
    assert lo["V"].dtype == jnp.float32 and int(lo["status"]) == 0
    # float32 inputs are rounded by ~6e-8 relative and the root is found to a few ulps
    # of u ~ 0.5: V (~ -14 mV) agrees to well below 1e-3 mV.
    np.testing.assert_allclose(float(lo["V"]), float(hi["V"]), atol=1e-3)
    np.testing.assert_allclose(float(lo["volume"]), float(hi["volume"]), rtol=1e-4)


def test_sweep_stores_every_output_with_units_and_gradients(tmp_path: Path) -> None:
    outputs = ("V", "Na_i", "K_i", "Cl_i", "X_i", "volume", "I_pump")
    spec = SweepSpec(
        model="pump_leak",
        preset="red_blood_cell",
        axes=(Axis.logspace("K_o", 2.0, 40.0, 4), Axis.linspace("z_X", -1.5, -0.5, 3)),
        outputs=outputs,
        gradients=("K_o", "P_Na"),
        dtype="float64",
        chunks=(("K_o", 2), ("z_X", 2)),
    ).validate()
    run_sweep(spec, tmp_path / "pl.zarr", quiet=True)
    ds = xr.open_zarr(tmp_path / "pl.zarr")
    for name in (*outputs, "status"):
        assert ds[name].attrs["units"] == OUTPUTS[name].units
        assert ds[name].attrs["long_name"] == OUTPUTS[name].long_name
    assert list(ds["status"].attrs["flag_values"]) == [0, 1, 2, 3, 4, 5]
    K_o, z_X = np.meshgrid(ds["K_o"].values, ds["z_X"].values, indexing="ij")
    ref = rpx.pump_leak_steady_state(
        rpx.preset("red_blood_cell") | {"K_o": K_o, "z_X": z_X}
    )
    for name in outputs:
        np.testing.assert_allclose(ds[name].values, np.asarray(ref[name]), rtol=1e-12)
    for name in outputs:
        for wrt in ("K_o", "P_Na"):
            var = ds[f"d{name}_d{wrt}"]
            assert np.all(np.isfinite(var.values))
            assert var.attrs["units"]
    # dV/dK_o at one point, against the direct forward-mode derivative.
    i, j = 1, 2
    p = rpx.prepare(rpx.preset("red_blood_cell") | {"K_o": K_o[i, j], "z_X": z_X[i, j]},
                    "pump_leak")
    dv = jax.jvp(lambda x: SOLVERS["kinetic"]({**p, "K_o": x})["V"], (p["K_o"],), (1.0,))[1]
    np.testing.assert_allclose(ds["dV_dK_o"].values[i, j], float(dv), rtol=1e-10)
