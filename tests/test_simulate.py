"""Pump–leak time courses: the ODE's steady state, conservation laws, events, metadata.

Every run here has the same structure (4 parameter sets, 9 output times, one event at
t[1]), so the integrator compiles once for the whole module.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import rpx
from rpx.physics.pump_leak import pump_leak

N_SETS = 4


def random_sets(rng: np.random.Generator) -> dict[str, np.ndarray]:
    def logu(lo: float, hi: float) -> np.ndarray:
        return 10 ** rng.uniform(np.log10(lo), np.log10(hi), N_SETS)

    return {
        "K_o": logu(2.0, 20.0),
        "Na_o": logu(100.0, 200.0),
        "Cl_o": logu(80.0, 160.0),
        "P_K": logu(1e-7, 1e-6),
        "P_Na": logu(1e-8, 1e-7),
        "P_Cl": logu(1e-7, 1e-6),
        "z_X": rng.uniform(-1.5, -0.5, N_SETS),
        "X_o": rng.uniform(0.0, 20.0, N_SETS),
        "I_pump_max": logu(0.5, 5.0),
        "T": np.full(N_SETS, 310.0),
    }


@pytest.fixture(scope="module")
def relaxed() -> tuple[dict, dict, xr.Dataset]:
    """Random cells at rest, then at t = 1 s given new K_o, P_Na and pump; run to 1e6 s."""
    rng = np.random.default_rng(7)
    before = random_sets(rng)
    after = {"K_o": before["K_o"] * rng.uniform(0.5, 3.0, N_SETS),
             "P_Na": before["P_Na"] * rng.uniform(0.3, 3.0, N_SETS),
             "I_pump_max": before["I_pump_max"] * rng.uniform(0.3, 1.0, N_SETS)}  # fmt: skip
    t = np.concatenate([[0.0], np.geomspace(1.0, 1e6, 8)])
    ds = rpx.simulate(before, t, [rpx.Event(1.0, set=after)])
    return before, after, ds


def test_ode_reaches_the_algebraic_steady_state(relaxed: tuple) -> None:
    before, after, ds = relaxed
    assert np.all(ds["status"].values == 0)
    start = rpx.prepare(before, "pump_leak")
    end = rpx.prepare(before | after, "pump_leak")
    for p, i in ((start, 0), (end, -1)):
        ref = pump_leak(p)
        for k in ("V", "Na_i", "K_i", "Cl_i", "X_i", "volume", "I_pump"):
            got = ds[k].values[:, i]
            # At t[0] the state is the algebraic one; after 1e6 s (> 20 of the slowest
            # time constants vol_area/P_Na) the ODE's state agrees with it to 1e-6.
            np.testing.assert_allclose(got, np.asarray(ref[k]), rtol=1e-6, atol=1e-6,
                                       err_msg=k)
    # The state moved: the comparison is not trivially between equal states.
    assert np.all(np.abs(ds["V"].values[:, -1] - ds["V"].values[:, 0]) > 0.1)


def test_one_set_runs_unbatched_and_matches_its_batch(relaxed: tuple) -> None:
    """Scalar parameters take the path without vmap; set 2 of the batch, alone, agrees."""
    before, after, ds = relaxed
    one = rpx.simulate(
        {k: v[2] for k, v in before.items()}, ds["time"].values,
        [rpx.Event(1.0, set={k: v[2] for k, v in after.items()})],
    )
    assert "set" not in one.dims and int(one["status"]) == 0
    for k in ("V", "Na_i", "K_i", "Cl_i", "volume", "I_pump"):
        np.testing.assert_allclose(one[k].values, ds[k].values[2], rtol=1e-9, err_msg=k)


def test_conservation_of_charge_and_impermeant_solute(relaxed: tuple) -> None:
    before, after, ds = relaxed
    z = before["z_X"][:, None]
    # Net charge per reference volume (mM): zero at the start and conserved (its rate
    # is the total membrane current, zero to the voltage solve's tolerance).
    charge = (ds["Na_i"] + ds["K_i"] - ds["Cl_i"]).values * ds["volume"].values
    charge = charge + z * ds["X_i"].values * ds["volume"].values
    content = (ds["Na_i"] + ds["K_i"] + ds["Cl_i"]).values * ds["volume"].values
    np.testing.assert_allclose(charge, 0.0, atol=1e-9 * content.max())
    X_content = float(rpx.PARAMS["X_content"].default)
    np.testing.assert_allclose(ds["X_i"].values * ds["volume"].values, X_content, rtol=1e-12)
    # Osmotic balance at the end (the system has relaxed).
    osm_i = (ds["Na_i"] + ds["K_i"] + ds["Cl_i"] + ds["X_i"]).values[:, -1]
    cations = before["Na_o"] + after["K_o"]  # the coordinate K_o is the initial value
    osm_o = cations + before["Cl_o"] + np.abs(cations - before["Cl_o"]) + before["X_o"]
    np.testing.assert_allclose(osm_i, osm_o, rtol=1e-6)


def test_pump_block_depolarises_and_swells() -> None:
    cell = rpx.preset("red_blood_cell") | {"P_f": np.array([0.005, 0.01, 0.02, 0.04])}
    t = np.concatenate([[0.0], np.linspace(60.0, 4 * 3600.0, 8)])
    ds = rpx.simulate(cell, t, [rpx.Event(60.0, scale={"I_pump_max": 0.0})])
    assert np.all(ds["status"].values == 0)
    after = ds.isel(time=slice(1, None))
    assert np.all(np.diff(after["volume"].values, axis=1) > 0)
    assert np.all(ds["Na_i"].values[:, -1] > ds["Na_i"].values[:, 0] + 50.0)
    assert np.all(ds["V"].values[:, -1] > ds["V"].values[:, 0])
    # Pump off, everything permeant but X: the end state is the Donnan equilibrium.
    end = ds.isel(time=-1)
    boltzmann = np.exp(-end["V"].values / (1e3 * rpx.R * cell["T"] / rpx.F))
    for ratio in (end["Na_i"] / cell["Na_o"], end["K_i"] / cell["K_o"],
                  cell["Cl_o"] / end["Cl_i"]):  # fmt: skip
        np.testing.assert_allclose(ratio.values, boltzmann, rtol=1e-6)
    assert np.all(ds["I_pump"].values[:, 1:] == 0.0)
    # Metadata: units and long names on every variable and coordinate.
    for name in (*ds.data_vars, *ds.coords):
        assert ds[name].attrs["units"] and ds[name].attrs["long_name"], name
    assert ds["V"].attrs["units"] == "mV" and ds["time"].attrs["units"] == "s"
    assert ds["P_f"].dims == ("set",) and ds["K_o"].dims == ()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"events": [rpx.Event(1.0, set={"K_x": 1.0})]}, "unknown parameter 'K_x'"),
        ({"events": [rpx.Event(1.0, set={"r_pump": 1.0})]}, "not used here"),
        ({"events": [rpx.Event(99.0, set={"K_o": 1.0})]}, "outside the time span"),
        ({"events": [rpx.Event(1.0, set={"K_o": -1.0})]}, "K_o=-1.0 is outside"),
        ({"events": [rpx.Event(1.0, scale={"P_K": -1.0})]}, "must be >= 0"),
        ({"t": [0.0, 0.0]}, "increasing times"),
        ({"pump": "ouabain"}, "pump must be one of"),
    ],
)
def test_bad_input_is_refused_before_integration(kwargs: dict, message: str) -> None:
    args = {"t": [0.0, 10.0]} | kwargs
    with pytest.raises(ValueError, match=message):
        rpx.simulate({}, **args)



def test_float32_integrates_in_float64_with_a_warning_and_matches(relaxed: tuple) -> None:
    """float32 inputs (which cannot meet rtol = atol = 1e-8) are integrated in float64,
    with a one-line warning; outputs are float32 and agree with the float64 run. Same
    structure as the fixture, so the integrator does not compile again."""
    before, after, ds64 = relaxed
    f32 = {k: np.asarray(v, np.float32) for k, v in before.items()}
    with pytest.warns(UserWarning, match="integrated in float64"):
        ds32 = rpx.simulate(f32, ds64.time.values, [rpx.Event(1.0, set=after)])
    assert np.all(ds32["status"].values == 0)
    assert ds32["V"].dtype == np.float32 and np.all(np.isfinite(ds32["V"].values))
    np.testing.assert_allclose(ds32["V"].values, ds64["V"].values, atol=0.01)
    for k in ("Na_i", "K_i", "Cl_i", "volume"):
        np.testing.assert_allclose(ds32[k].values, ds64[k].values, rtol=1e-4)


def test_an_event_at_the_first_time_applies_from_the_start(relaxed: tuple) -> None:
    """An event at t[0] changes the parameters from the start (the run still starts at
    the steady state of the parameters before it); nothing is NaN."""
    before, after, _ = relaxed
    t = np.concatenate([[0.0], np.geomspace(1.0, 1e6, 8)])
    events = [rpx.Event(0.0, scale={"I_pump_max": 0.5}), rpx.Event(1.0, set=after)]
    ds = rpx.simulate(before, t, events)
    assert np.all(ds["status"].values == 0)
    assert all(np.all(np.isfinite(ds[k].values)) for k in ("V", "Na_i", "volume"))
    start = pump_leak(rpx.prepare(before, "pump_leak"))
    for k in ("Na_i", "K_i", "volume"):  # the state at t[0]; V already feels the event
        np.testing.assert_allclose(ds[k].values[:, 0], np.asarray(start[k]), rtol=1e-9)
    assert np.all(ds["V"].values[:, 0] > np.asarray(start["V"]))  # half the pump current
    # the pump at half strength from t = 0 lets Na_i rise before the event at 1 s
    assert np.all(ds["Na_i"].values[:, 1] > ds["Na_i"].values[:, 0])


# --------------------------------------------------- finite extracellular space
@pytest.fixture(scope="module")
def ecs_run() -> tuple[dict, xr.Dataset]:
    """Neurons with an infinite bath, a huge and two small extracellular spaces; pump
    reduced at t = 1 s (same 4 sets × 9 times × one event structure as above)."""
    base = {k: float(np.asarray(v)) for k, v in rpx.preset("mammalian_neuron").items()}
    cell = {k: np.full(N_SETS, v) for k, v in base.items()}
    cell |= {"P_Cl": np.full(N_SETS, 0.45 * base["P_K"]),
             "ecs_ratio": np.array([0.0, 1e6, 0.25, 0.25])}  # fmt: skip
    t = np.concatenate([[0.0], np.geomspace(1.0, 1e6, 8)])
    pump = np.array([0.5, 0.5, 0.5, 0.25])
    ds = rpx.simulate(cell, t, [rpx.Event(1.0, scale={"I_pump_max": pump})])
    return cell, ds


def test_finite_space_conserves_total_amounts_and_volume(ecs_run: tuple) -> None:
    cell, ds = ecs_run
    assert np.all(ds["status"].values == 0)
    v, w = ds["volume"].values[2:], ds["vol_ecs"].values[2:]
    for ion in ("Na", "K", "Cl"):
        total = ds[f"{ion}_i"].values[2:] * v + ds[f"{ion}_ecs"].values[2:] * w
        np.testing.assert_allclose(total, total[:, :1] * np.ones_like(total), rtol=1e-8,
                                   err_msg=ion)  # fmt: skip
    np.testing.assert_allclose(v + w, (v + w)[:, :1] * np.ones_like(v), rtol=1e-10)
    # The space starts with the bath's concentrations and ecs_ratio's volume.
    np.testing.assert_allclose(ds["K_ecs"].values[2:, 0], cell["K_o"][2:], rtol=1e-12)
    np.testing.assert_allclose(w[:, 0], cell["ecs_ratio"][2:], rtol=1e-12)
    for k in ("K_ecs", "Na_ecs", "Cl_ecs", "vol_ecs"):
        assert ds[k].attrs["units"] and ds[k].attrs["long_name"], k


def test_large_space_approaches_the_infinite_bath(ecs_run: tuple) -> None:
    _, ds = ecs_run
    assert np.all(np.isinf(ds["vol_ecs"].values[0]))  # set 0: infinite bath
    np.testing.assert_allclose(ds["V"].values[1], ds["V"].values[0], atol=1e-3)
    for k in ("Na_i", "K_i", "Cl_i", "volume"):
        np.testing.assert_allclose(ds[k].values[1], ds[k].values[0], rtol=1e-5, err_msg=k)
    np.testing.assert_allclose(ds["K_ecs"].values[1], ds["K_ecs"].values[0], rtol=1e-5)
    # ...while a small space accumulates K+ and depolarises the cell beyond the bath case.
    assert np.all(ds["K_ecs"].values[2:, -1] > ds["K_ecs"].values[2:, 0] + 0.1)
    assert ds["V"].values[2, -1] > ds["V"].values[0, -1] + 0.1


def test_finite_space_refuses_bath_events() -> None:
    cell = {"ecs_ratio": 0.2}
    with pytest.raises(ValueError, match="events cannot change K_o"):
        rpx.simulate(cell, [0.0, 10.0], [rpx.Event(1.0, set={"K_o": 10.0})])
    with pytest.raises(ValueError, match="events cannot change Ca_o"):
        rpx.simulate(cell | {"I_PMCA_max": 1.0}, [0.0, 10.0],
                     [rpx.Event(1.0, scale={"Ca_o": 2.0})])  # fmt: skip


@pytest.fixture(scope="module")
def ecs_calcium_run() -> tuple[dict, xr.Dataset]:
    """Cardiac cells with Ca2+ routes in an infinite bath, a huge and two small spaces:
    Na+ loading (P_Na tripled, pump halved) at t = 1 s, undone at t = 3000 s; to 1e6 s."""
    from rpx.physics.api import fill_defaults
    from rpx.physics.transporters import CALCIUM

    preset = rpx.preset("cardiac_ventricular_myocyte")
    base = {k: float(np.asarray(v)) for k, v in fill_defaults(preset, CALCIUM).items()}
    base |= {k: float(np.asarray(v)) for k, v in preset.items()}
    scale = base["I_pump_max"] / 1.5  # Luo–Rudy ratios to the preset's own Na/K pump
    cell = {k: np.full(N_SETS, v) for k, v in base.items()}
    cell |= {
        "I_NCX_max": np.array([2000.0, 2000.0, 2000.0, 2e4]) * scale,
        "I_PMCA_max": np.full(N_SETS, 1.15 * scale),
        "P_Ca": np.full(N_SETS, 1e-4 * base["P_K"]),
        "P_Cl": np.full(N_SETS, 0.1 * base["P_K"]),
        "ecs_ratio": np.array([0.0, 1e6, 0.25, 0.25]),
    }
    t = np.array([0.0, 1.0, 10.0, 100.0, 1e3, 3e3, 1e4, 1e5, 1e6])
    load = rpx.Event(1.0, scale={"P_Na": 3.0, "I_pump_max": 0.5})
    undo = rpx.Event(3e3, set={"P_Na": cell["P_Na"], "I_pump_max": cell["I_pump_max"]})
    return cell, rpx.simulate(cell, t, [load, undo])


def test_finite_space_with_calcium_conserves_total_amounts(ecs_calcium_run: tuple) -> None:
    cell, ds = ecs_calcium_run
    assert np.all(ds["status"].values == 0)
    v, w = ds["volume"].values[2:], ds["vol_ecs"].values[2:]
    for ion in ("Na", "K", "Cl", "Ca"):
        total = ds[f"{ion}_i"].values[2:] * v + ds[f"{ion}_ecs"].values[2:] * w
        np.testing.assert_allclose(total, total[:, :1] * np.ones_like(total), rtol=1e-10,
                                   err_msg=ion)  # fmt: skip
    np.testing.assert_allclose(v + w, (v + w)[:, :1] * np.ones_like(v), rtol=1e-10)
    ca_ecs = ds["Ca_ecs"].values
    np.testing.assert_allclose(ca_ecs[:, 0], cell["Ca_o"], rtol=1e-12)
    assert ds["Ca_ecs"].attrs["units"] == "mM" and ds["Ca_ecs"].attrs["long_name"]
    # Ca2+ did cross the membrane (the space's amount changed far beyond the tolerance of
    # the conservation check), and the infinite bath's Ca_o stays the parameter.
    n_ca = ca_ecs[2:] * w
    assert np.all(np.max(np.abs(n_ca - n_ca[:, :1]), axis=1) > 1e-6 * n_ca[:, 0])
    np.testing.assert_array_equal(ca_ecs[0], cell["Ca_o"][0])


def test_large_space_with_calcium_approaches_the_infinite_bath(ecs_calcium_run: tuple) -> None:
    _, ds = ecs_calcium_run
    np.testing.assert_allclose(ds["V"].values[1], ds["V"].values[0], atol=1e-3)
    for k in ("Na_i", "K_i", "Cl_i", "Ca_i", "volume", "Ca_ecs", "K_ecs"):
        np.testing.assert_allclose(ds[k].values[1], ds[k].values[0], rtol=1e-5, err_msg=k)
    # The loading moved the state (the comparison is not between equal states).
    assert np.all(np.abs(ds["V"].values[:, 5] - ds["V"].values[:, 0]) > 0.1)
    assert np.all(ds["Ca_i"].values[:, 5] > 1.2 * ds["Ca_i"].values[:, 0])


def test_huge_space_with_calcium_relaxes_to_the_algebraic_state(ecs_calcium_run: tuple) -> None:
    """After the loading is undone the parameters are the initial ones: in the infinite
    bath and the huge space the ODE returns to the algebraic steady state of t = 0."""
    _, ds = ecs_calcium_run
    for k in ("V", "Na_i", "K_i", "Cl_i", "Ca_i", "volume", "I_NCX", "I_PMCA", "I_Ca"):
        got, want = ds[k].values[:2, -1], ds[k].values[:2, 0]
        tol = 1e-9 * np.max(np.abs(want)) if k.startswith("I_") else 1e-12
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=tol, err_msg=k)
