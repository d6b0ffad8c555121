"""The steady-state count with a verdict (rpx.physics.uniqueness): proven bounds, count."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rpx
from rpx.physics import formulas as phys
from rpx.physics import transporters
from rpx.physics.api import fill_defaults
from rpx.physics.pump_leak import FIXED, KINETIC, pump_leak
from rpx.physics.uniqueness import _current_bounds, count_steady_states, voltage_bounds

NAMES = tuple(sorted(set(KINETIC) | set(FIXED) | set(transporters.EXTRA)
                     | set(transporters.CALCIUM)))  # fmt: skip


def cell(name: str, **strengths: float) -> dict[str, float]:
    base = {k: float(np.asarray(v)) for k, v in fill_defaults(rpx.preset(name), NAMES).items()}
    if base["P_Cl"] == 0:
        base["P_Cl"] = 0.1 * base["P_K"]
    base["P_Ca"] = 1e-4 * base["P_K"]
    return base | strengths


def batch(rows: list[dict[str, float]]) -> dict[str, jnp.ndarray]:
    return {k: jnp.asarray([r[k] for r in rows], jnp.float64) for k in NAMES}


# Moderate strengths, and one set (mammalian_neuron; its steady state at ~ -240 mV) that
# the fixed grid of transporter_sign_changes over u in [-16, 6] missed.
ROWS = [
    cell("mammalian_neuron", g_KCC2=1e-2, g_NKCC1=1e-3, I_NCX_max=10.0, I_PMCA_max=0.1),
    cell("cardiac_ventricular_myocyte", g_KCC2=1e-3, g_NKCC1=1e-2, I_NCX_max=2000.0,
         I_PMCA_max=1.15),
    cell("squid_axon", g_KCC2=1e-2, g_NKCC1=1e-2, I_NCX_max=1.0, I_PMCA_max=1.0),
    cell("mammalian_neuron", g_KCC2=1.13, g_NKCC1=136.0, I_NCX_max=4210.0, I_PMCA_max=43.9),
]  # fmt: skip


@pytest.mark.parametrize("kinetic", [True, False])
def test_current_bounds_hold_for_every_admissible_state_and_increase(kinetic: bool) -> None:
    """C(u) >= T >= L(u) for random u and concentrations in (0, Osm_o) (Ca_i at its
    balance), T the total current that vanishes on the balances; C, L nondecreasing."""
    with jax.enable_x64(True):
        rng = np.random.default_rng(3)
        n = 4000
        rows = [ROWS[i % len(ROWS)] for i in range(n)]
        p = batch(rows)
        p["I_pump_fixed"] = jnp.asarray(rng.uniform(0.0, 50.0, n))
        osm = np.asarray(p["Na_o"] + p["K_o"] + p["Cl_o"] + jnp.abs(p["Na_o"] + p["K_o"]
                                                                     - p["Cl_o"]) + p["X_o"])
        u = jnp.asarray(rng.uniform(-30.0, 10.0, n))
        c = {k: jnp.asarray(osm * 10 ** rng.uniform(-9, 0, n) * 0.999)
             for k in ("Na_i", "K_i", "Cl_i")}  # fmt: skip
        V = u * phys.thermal_voltage(p["T"])
        f = transporters.fluxes(V, c, p, kinetic)
        total = f["I_Na"] + f["I_K"] + f["I_Cl"] + f["I_pump"] + 3.0 * f["I_NCX"]
        ca_ok = np.asarray(f["Ca_i"]) < osm
        upper, lower = _current_bounds(u, p, kinetic)
        slack = 1e-9 * (np.abs(np.asarray(upper)) + np.abs(np.asarray(lower)) + 1.0)
        assert np.all((np.asarray(total) <= np.asarray(upper) + slack)[ca_ok])
        assert np.all((np.asarray(total) >= np.asarray(lower) - slack)[ca_ok])
        # Most random states have Ca_i below Osm_o (the checks above are not vacuous), and
        # the total current spans both signs over them.
        assert np.mean(ca_ok) > 0.9
        assert np.any(np.asarray(total) > 0) and np.any(np.asarray(total) < 0)
        grid = jnp.linspace(-60.0, 30.0, 2001)
        q = {k: jnp.broadcast_to(v[3], grid.shape) for k, v in p.items()}
        up_g, lo_g = _current_bounds(grid, q, kinetic)
        assert np.all(np.diff(np.asarray(up_g)) >= 0) and np.all(np.diff(np.asarray(lo_g)) >= 0)


def test_count_is_conclusive_and_contains_the_solvers_root() -> None:
    p = batch(ROWS)
    with jax.enable_x64(True):
        out = {k: np.asarray(v) for k, v in jax.jit(pump_leak)(p).items()}
    assert np.all(out["status"] == 0)
    r = count_steady_states(p, True, out, h_max=0.1)
    u_sol = out["V"] / np.asarray(phys.thermal_voltage(p["T"]))
    np.testing.assert_array_equal(r["roots"], 1)
    np.testing.assert_array_equal(r["roots_unphysical"], 0)
    assert np.all(r["conclusive"] & r["covered"] & r["refined"] & r["solver_root"])
    assert np.all((r["u_lo"] <= u_sol) & (u_sol <= r["u_hi"]))
    np.testing.assert_allclose(r["u_first"], u_sol, atol=1e-6)
    assert out["V"][3] < -200.0  # the set the fixed grid missed: found here
    # Without the solver's state the curve is followed from u = 0: the same single zero.
    alone = count_steady_states(p, True, h_max=0.1)
    np.testing.assert_array_equal(alone["roots"], 1)
    assert np.all(alone["conclusive"])
    np.testing.assert_allclose(alone["u_first"], u_sol, atol=1e-6)
    # A wrong root (moved by 5 mV) is not among the zeros: the verdict says so.
    moved = out | {"V": out["V"] + 5.0}
    wrong = count_steady_states(p, True, moved, h_max=0.1)
    assert not np.any(wrong["solver_root"]) and not np.any(wrong["conclusive"])
    np.testing.assert_array_equal(wrong["roots"], 1)


def test_bounds_are_infinite_without_a_restoring_leak() -> None:
    """No P_Cl and the kinetic pump (whose lower bound is 0), cotransporters on: L(u) < 0
    for all u, so no upper bound, and the check cannot be conclusive."""
    row = cell("mammalian_neuron", g_KCC2=1e-2, g_NKCC1=1e-3) | {"P_Cl": 0.0}
    p = batch([row])
    lo, hi = voltage_bounds(p, True)
    assert np.isfinite(lo[0]) and hi[0] == np.inf
    r = count_steady_states(p, True, h_max=0.5)
    assert not r["conclusive"][0] and not r["covered"][0]


def test_a_preset_can_be_passed_as_it_is() -> None:
    """Names a preset leaves out (z_X, X_content, X_o, the strengths) take the parameter
    table's defaults, as at rpx's entry points: no KeyError."""
    p = rpx.preset("mammalian_neuron") | {"P_Cl": 1e-7, "g_KCC2": 1e-2}
    assert "X_content" not in p
    lo, hi = voltage_bounds(p, True)
    assert np.isfinite(lo) and np.isfinite(hi) and lo < hi
    with pytest.raises(KeyError):
        voltage_bounds({k: v for k, v in p.items() if k != "K_o"}, True)
