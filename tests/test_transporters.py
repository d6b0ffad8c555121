"""KCC2 and NKCC1 in the pump–leak cell: thermodynamic limits, balances, gradients, regression.

References are independent of the solver: the thermodynamic limits follow from the
flux laws alone (a dominant transporter sits at its own equilibrium), the balances are
checked with the core's GHK and pump currents, gradients against central differences,
and the transporter-free cell against outputs recorded before the transporters existed
(``tests/data/pump_leak_before_transporters.npz``: random sets and every preset, solved
by ``pump_leak``/``pump_leak_fixed`` of commit 2fb0b37).
"""

from __future__ import annotations

import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rpx
from rpx.physics import formulas as phys
from rpx.physics.api import fill_defaults
from rpx.physics.models import get_model
from rpx.physics.pump_leak import FIXED, KINETIC, external_osmolarity, pump_leak, pump_leak_fixed
from rpx.physics.transporters import (
    CALCIUM,
    EXTRA,
    kcc2_flux,
    ncx_current,
    nkcc1_flux,
    pmca_current,
)

REFERENCE = Path(__file__).parent / "data" / "pump_leak_before_transporters.npz"
FNS = {"kinetic": pump_leak, "fixed": pump_leak_fixed}
SOLVERS = {k: jax.jit(f) for k, f in FNS.items()}
JVPS = {k: jax.jit(functools.partial(jax.jvp, f)) for k, f in FNS.items()}
NAMES = tuple(sorted(set(KINETIC) | set(FIXED) | set(EXTRA)))
STATE = ("V", "Na_i", "K_i", "Cl_i", "X_i", "volume", "I_pump", "status")

# One batch shape for every solve of this module (one compilation per pump).
PRESETS = ("mammalian_neuron", "astrocyte", "squid_axon", "cardiac_ventricular_myocyte")
# (g_KCC2, g_NKCC1) in mS/cm^2; P_Cl is set to P_K/10 where a preset has none.
CASES = {
    "kcc2_dominant": (100.0, 0.0),
    "nkcc1_dominant": (0.0, 100.0),
    "kcc2_moderate": (1e-3, 0.0),
    "both": (1e-2, 1e-3),
    "none": (0.0, 0.0),  # derivatives w.r.t. the strengths at 0 (right derivatives)
}


def _batch() -> dict[str, jax.Array]:
    rows = []
    for name in PRESETS:
        base = {k: float(np.asarray(v)) for k, v in fill_defaults(rpx.preset(name), NAMES).items()}
        if base["P_Cl"] == 0:
            base["P_Cl"] = 0.1 * base["P_K"]
        for g_k, g_n in CASES.values():
            rows.append(base | {"g_KCC2": g_k, "g_NKCC1": g_n})
    return {k: jnp.asarray([r[k] for r in rows]) for k in NAMES}


def _case(name: str) -> np.ndarray:
    i = list(CASES).index(name)
    return np.arange(len(PRESETS)) * len(CASES) + i


@pytest.fixture(scope="module", params=["kinetic", "fixed"])
def solved(request: pytest.FixtureRequest) -> tuple[str, dict, dict]:
    p = _batch()
    out = SOLVERS[request.param](p)
    return request.param, p, {k: np.asarray(v) for k, v in out.items()}


def test_every_case_solves(solved: tuple[str, dict, dict]) -> None:
    _, _, out = solved
    assert np.all(out["status"] == 0), out["status"]
    for k, v in out.items():
        assert np.all(np.isfinite(v)), k


def test_kcc2_dominant_sets_E_Cl_to_E_K(solved: tuple[str, dict, dict]) -> None:
    _, _, out = solved
    i = _case("kcc2_dominant")
    np.testing.assert_allclose(out["E_Cl"][i], out["E_K"][i], atol=0.1)
    # ...and Cl is far from passive: E_Cl != V by more than the tolerance somewhere.
    assert np.max(np.abs(out["E_Cl"][i] - out["V"][i])) > 1.0


def test_nkcc1_dominant_sets_E_Cl_to_mean_of_E_Na_and_E_K(solved: tuple[str, dict, dict]) -> None:
    _, _, out = solved
    i = _case("nkcc1_dominant")
    np.testing.assert_allclose(out["E_Cl"][i], (out["E_Na"][i] + out["E_K"][i]) / 2, atol=0.1)
    assert np.all(out["J_NKCC1"][i] < 0)  # NKCC1 loads the cell with Cl-


def test_moderate_kcc2_puts_E_Cl_strictly_between_V_and_E_K(
    solved: tuple[str, dict, dict],
) -> None:
    _, _, out = solved
    i = _case("kcc2_moderate")
    lo = np.minimum(out["V"][i], out["E_K"][i])
    hi = np.maximum(out["V"][i], out["E_K"][i])
    assert np.all((out["E_Cl"][i] > lo + 0.1) & (out["E_Cl"][i] < hi - 0.1))
    assert np.all(out["J_KCC2"][i] > 0)  # KCC2 extrudes K+ and Cl-


def test_flux_and_volume_balances_hold(solved: tuple[str, dict, dict]) -> None:
    pump, p, out = solved
    p = {k: np.asarray(v) for k, v in p.items()}
    V, T = out["V"], p["T"]
    I_na = np.asarray(phys.ghk_current(V, p["P_Na"], p["Na_o"], out["Na_i"], 1, T))
    I_k = np.asarray(phys.ghk_current(V, p["P_K"], p["K_o"], out["K_i"], 1, T))
    I_cl = np.asarray(phys.ghk_current(V, p["P_Cl"], p["Cl_o"], out["Cl_i"], -1, T))
    if pump == "kinetic":
        I_p = np.asarray(phys.nak_pump_current(
            V, out["Na_i"], p["Na_o"], p["K_o"], p["I_pump_max"], p["Km_Na_i"], p["Km_K_o"], T
        ))  # fmt: skip
    else:
        I_p = p["I_pump_fixed"]
    np.testing.assert_allclose(out["I_pump"], I_p, rtol=1e-12)
    # The flux laws written out, from Nernst potentials (Düsterwald et al. form).
    j_k = p["g_KCC2"] * (out["E_Cl"] - out["E_K"])
    j_n = p["g_NKCC1"] * (2 * out["E_Cl"] - out["E_Na"] - out["E_K"])
    np.testing.assert_allclose(out["J_KCC2"], j_k, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(out["J_NKCC1"], j_n, rtol=1e-9, atol=1e-15)
    for terms in (
        (I_na, 3 * I_p, j_n),
        (I_k, -2 * I_p, j_k, j_n),
        (-I_cl, j_k, 2 * j_n),
        (I_na, I_k, I_cl, I_p),  # zero total membrane current
    ):
        scale = sum(np.abs(t) for t in terms) + np.abs(I_p)  # Cl: all ~0 when passive
        assert np.max(np.abs(sum(terms)) / scale) < 1e-9
    osm = np.asarray(external_osmolarity(p["Na_o"], p["K_o"], p["Cl_o"], p["X_o"]))
    charge = out["Na_i"] + out["K_i"] - out["Cl_i"] + p["z_X"] * out["X_i"]
    np.testing.assert_allclose(charge / osm, 0.0, atol=1e-12)
    osm_i = out["Na_i"] + out["K_i"] + out["Cl_i"] + out["X_i"]
    np.testing.assert_allclose(osm_i, osm, rtol=1e-12)
    np.testing.assert_allclose(out["volume"] * out["X_i"], p["X_content"], rtol=1e-12)


def test_without_cl_leak_kcc2_alone_stops_at_E_K() -> None:
    """P_Cl = 0: the Cl balance is J_KCC2 = 0 exactly, whatever its strength."""
    p = _batch() | {"P_Cl": jnp.zeros(len(PRESETS) * len(CASES))}
    p["g_NKCC1"] = jnp.zeros_like(p["g_NKCC1"])
    out = SOLVERS["kinetic"](p)
    assert np.all(np.asarray(out["status"]) == 0)
    on = np.asarray(p["g_KCC2"]) > 0  # elsewhere no transporter is left: Cl is passive
    np.testing.assert_allclose(np.asarray(out["E_Cl"])[on], np.asarray(out["E_K"])[on], atol=1e-9)
    np.testing.assert_allclose(np.asarray(out["E_Cl"])[~on], np.asarray(out["V"])[~on], atol=1e-9)


def test_flux_laws_vanish_at_their_equilibria() -> None:
    T = 310.0
    # K_i·Cl_i = K_o·Cl_o: no KCC2 flux; Na_i·K_i·Cl_i^2 = Na_o·K_o·Cl_o^2: no NKCC1 flux.
    assert float(kcc2_flux(1.0, 140.0, 5.0, 5.0 * 110.0 / 140.0, 110.0, T)) == pytest.approx(
        0.0, abs=1e-12
    )
    cl_i = np.sqrt(145.0 * 5.0 * 110.0**2 / (10.0 * 140.0))
    assert float(nkcc1_flux(1.0, 10.0, 145.0, 140.0, 5.0, cl_i, 110.0, T)) == pytest.approx(
        0.0, abs=1e-12
    )
    # Signs: more intracellular Cl- drives both outward.
    assert float(kcc2_flux(1.0, 140.0, 5.0, 10.0, 110.0, T)) > 0
    assert float(nkcc1_flux(1.0, 10.0, 145.0, 140.0, 5.0, 100.0, 110.0, T)) > 0


@pytest.mark.parametrize("pump", ["kinetic", "fixed"])
def test_zero_strengths_reproduce_the_cell_without_transporters(pump: str) -> None:
    """Values and derivatives bit for bit those recorded before the transporters existed."""
    ref = np.load(REFERENCE)
    p = {k[3:]: jnp.asarray(ref[k]) for k in ref.files if k.startswith("in_")}
    n = len(p["K_o"])
    p |= {"P_Cl": jnp.full(n, 1e-7), "g_KCC2": jnp.zeros(n), "g_NKCC1": jnp.zeros(n)}
    # Solved in blocks of the module's batch shape (the last one padded with the first
    # rows), so that the program compiled for the other tests is reused; every row of
    # the recording is compared.
    m = len(PRESETS) * len(CASES)
    rows = np.arange(-(-n // m) * m) % n
    blocks = [SOLVERS[pump]({k: v[rows[i : i + m]] for k, v in p.items()})
              for i in range(0, rows.size, m)]  # fmt: skip
    out = {k: np.concatenate([np.asarray(b[k]) for b in blocks])[:n] for k in blocks[0]}
    for k in STATE:
        np.testing.assert_array_equal(np.asarray(out[k]), ref[f"{pump}_{k}"], err_msg=k)
    ok = np.asarray(out["status"]) == 0
    assert np.all(np.asarray(out["J_KCC2"])[ok] == 0)
    np.testing.assert_allclose(np.asarray(out["E_Cl"])[ok], np.asarray(out["V"])[ok], atol=1e-9)
    # Derivatives on the first rows, in the batch shape of the other tests (one
    # compilation of the derivative program per pump for the whole module).
    m = len(PRESETS) * len(CASES)
    p = {k: v[:m] for k, v in p.items()}
    for name in ("K_o", "P_Na", "z_X"):
        tangent = {k: jnp.zeros_like(v) for k, v in p.items()} | {name: jnp.ones(m)}
        _, d = JVPS[pump]((p,), (tangent,))
        for k in ("V", "Na_i", "volume"):
            np.testing.assert_array_equal(
                np.asarray(d[k]), ref[f"{pump}_d{k}_d{name}"][:m], err_msg=f"d{k}/d{name}"
            )


GRAD_NAMES = ("g_KCC2", "g_NKCC1", "P_Cl", "K_o", "P_Na", "z_X")


def test_implicit_gradients_match_central_differences() -> None:
    # The kinetic pump only: the fixed pump's tangents take the same path (one more
    # compilation of the derivative program, ~30 s, for no new code).
    pump = "kinetic"
    p = _batch()
    out = {k: np.asarray(v) for k, v in SOLVERS[pump](p).items()}
    for name in GRAD_NAMES:
        x = np.asarray(p[name])
        # At 0 (an absent transporter) the response is strongly curved: a smaller step.
        h = np.where(x > 0, 1e-6 * x, 1e-8)
        if name == "z_X":
            h = np.full_like(x, 1e-6)
        tangent = {k: jnp.zeros_like(v) for k, v in p.items()} | {name: jnp.asarray(h)}
        _, d = JVPS[pump]((p,), (tangent,))
        f = {}
        for s in (-1, 1, 2):
            xs = x + s * h
            shifted = p | {name: jnp.asarray(np.where(x >= 0, np.maximum(xs, 0.0), xs))}
            f[s] = {k: np.asarray(v) for k, v in SOLVERS[pump](shifted).items()}
        # Where the parameter sits at 0 (the absent transporter's strength): the
        # second-order one-sided difference (-3 f(0) + 4 f(h) - f(2h))/2.
        at_zero = x == 0
        for k in ("V", "E_Cl", "volume"):
            central = (f[1][k] - f[-1][k]) / 2
            forward = (-3 * out[k] + 4 * f[1][k] - f[2][k]) / 2
            fd = np.where(at_zero, forward, central)
            scale = np.abs(out[k]) + 1.0
            np.testing.assert_allclose(
                np.asarray(d[k]) / scale, fd / scale, atol=2e-7, err_msg=f"d{k}/d{name}"
            )


@settings(max_examples=20, deadline=None)
@given(
    log_g_k=st.floats(-6.0, 2.0),
    log_g_n=st.floats(-6.0, 2.0),
    log_p_cl=st.floats(-10.0, -5.0),
    k_o=st.floats(1.0, 50.0),
    z=st.floats(-3.0, -0.2),
    pump=st.sampled_from(["kinetic", "fixed"]),
)
def test_status_zero_means_finite_over_the_domain(
    log_g_k: float, log_g_n: float, log_p_cl: float, k_o: float, z: float, pump: str
) -> None:
    p = _batch()
    n = len(p["K_o"])
    # float64 arrays exactly like _batch's (a weakly typed jnp.full would recompile).
    values = {"g_KCC2": 10.0**log_g_k, "g_NKCC1": 10.0**log_g_n, "P_Cl": 10.0**log_p_cl,
              "K_o": k_o, "z_X": z}  # fmt: skip
    p |= {k: jnp.asarray(np.full(n, v)) for k, v in values.items()}
    out = SOLVERS[pump](p)
    ok = np.asarray(out["status"]) == 0
    # Strong NKCC1 with a high K_o has no steady state (the volume grows without bound
    # as g_NKCC1 rises): status != 0 there, so no count of successes is asserted.
    for k, v in out.items():
        v = np.asarray(v)
        assert np.all(np.isfinite(v[ok])), k
        if k != "status":
            assert np.all(np.isnan(v[~ok])), k


def test_registry_and_validation() -> None:
    for model in ("pump_leak", "pump_leak_fixed"):
        m = get_model(model)
        assert set(EXTRA) <= set(m.params)
        for k in ("E_Na", "E_K", "E_Cl", "J_KCC2", "J_NKCC1"):
            assert m.outputs[k].units in ("mV", "uA/cm^2")
    for name in ("g_KCC2", "g_NKCC1"):
        assert rpx.PARAMS[name].default == 0.0
        assert rpx.PARAMS[name].units == "mS/cm^2"
        with pytest.raises(ValueError, match=name):
            rpx.pump_leak_steady_state({name: -1.0})
    out = rpx.pump_leak_steady_state(
        rpx.preset("mammalian_neuron") | {"P_Cl": 1e-8, "g_KCC2": 1e-3}
    )
    assert int(out["status"]) == 0
    assert float(out["E_K"]) < float(out["E_Cl"]) < float(out["V"])


# ------------------------------------------------------------------- time courses
# Four sets, nine output times, one event at t[1]: the structure of tests/test_simulate.py,
# so that the integrator compiled there is reused here.
SIM_T = np.concatenate([[0.0], np.geomspace(1.0, 1e6, 8)])


@pytest.fixture(scope="module")
def simulated() -> tuple[dict, dict, object]:
    """Neurons with KCC2 and NKCC1; at t = 1 s NKCC1 blocked (bumetanide), KCC2 doubled."""
    base = {k: float(np.asarray(v)) for k, v in rpx.preset("mammalian_neuron").items()}
    before = {k: np.full(4, v) for k, v in base.items()}
    before |= {
        "P_Cl": np.array([0.1, 0.45, 0.1, 0.45]) * base["P_K"],
        "g_KCC2": np.array([1e-3, 1e-4, 0.0, 1e-2]),
        "g_NKCC1": np.array([1e-4, 1e-3, 1e-3, 0.0]),
    }
    event = rpx.Event(1.0, scale={"g_NKCC1": 0.0, "g_KCC2": 2.0})
    after = {"g_NKCC1": 0.0 * before["g_NKCC1"], "g_KCC2": 2.0 * before["g_KCC2"]}
    return before, after, rpx.simulate(before, SIM_T, [event])


def test_ode_with_cotransporters_reaches_the_algebraic_steady_state(simulated: tuple) -> None:
    before, after, ds = simulated
    assert np.all(ds["status"].values == 0)
    for p, i in ((before, 0), (before | after, -1)):
        ref = pump_leak(rpx.prepare(p, "pump_leak"))
        for k in ("V", "Na_i", "K_i", "Cl_i", "volume", "E_Cl", "J_KCC2", "J_NKCC1"):
            got, want = ds[k].values[:, i], np.asarray(ref[k])
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9, err_msg=f"{k} at {i}")
    # Bumetanide (with KCC2 doubled) lowers E_Cl wherever NKCC1 was on.
    e_cl = ds["E_Cl"].values
    on = before["g_NKCC1"] > 0
    assert np.all(e_cl[on, -1] < e_cl[on, 0] - 1.0)


def test_ode_with_cotransporters_conserves_charge(simulated: tuple) -> None:
    before, _, ds = simulated
    z = before["z_X"]
    charge = ds["Na_i"] + ds["K_i"] - ds["Cl_i"] + z[:, None] * ds["X_i"]
    scale = ds["Na_i"] + ds["K_i"] + ds["Cl_i"] + ds["X_i"]
    assert float(np.max(np.abs(charge / scale))) < 1e-9
    for k in ("E_Cl", "J_KCC2", "J_NKCC1"):
        assert ds[k].attrs["units"] in ("mV", "uA/cm^2") and ds[k].attrs["long_name"]


# ------------------------------------------------------------- Ca2+: NCX, PMCA, leak
# One batch for every Ca2+ solve (one compilation per pump). Strengths are scaled with
# the preset's own Na/K pump (I_pump_max): "lr94" has the exchanger and Ca pump of Luo &
# Rudy 1994 in their ratio to its Na/K pump (2000 : 1.15 : 1.5); P_Ca is a test value
# relative to P_K (no resting P_Ca was traced).
CA_NAMES = tuple(sorted(set(NAMES) | set(CALCIUM)))
CA_CASES = {
    # (I_NCX_max, I_PMCA_max, P_Ca/P_K, g_KCC2) in units of the pump (uA/cm^2) / 1
    "ncx_dominant": (2000.0 / 1.5 * 1e4, 0.0, 1e-4, 0.0),
    "lr94": (2000.0 / 1.5, 1.15 / 1.5, 1e-4, 0.0),
    "pmca_leak": (0.0, 1.15 / 1.5, 1e-4, 0.0),
    "ncx_kcc2": (2000.0 / 1.5, 1.15 / 1.5, 1e-4, 1e-2),
    "none": (0.0, 0.0, 0.0, 0.0),
}


def _ca_batch() -> dict[str, jax.Array]:
    rows = []
    for name in PRESETS:
        base = {
            k: float(np.asarray(v)) for k, v in fill_defaults(rpx.preset(name), CA_NAMES).items()
        }
        for ncx, pmca, p_ca, g_k in CA_CASES.values():
            rows.append(base | {
                "I_NCX_max": ncx * base["I_pump_max"], "I_PMCA_max": pmca * base["I_pump_max"],
                "P_Ca": p_ca * base["P_K"], "g_KCC2": g_k,
            })  # fmt: skip
    return {k: jnp.asarray([r[k] for r in rows]) for k in CA_NAMES}


def _ca_case(name: str) -> np.ndarray:
    return np.arange(len(PRESETS)) * len(CA_CASES) + list(CA_CASES).index(name)


@pytest.fixture(scope="module", params=["kinetic", "fixed"])
def ca_solved(request: pytest.FixtureRequest) -> tuple[str, dict, dict]:
    p = _ca_batch()
    out = SOLVERS[request.param](p)
    return request.param, p, {k: np.asarray(v) for k, v in out.items()}


def test_calcium_cases_solve(ca_solved: tuple[str, dict, dict]) -> None:
    _, _, out = ca_solved
    assert np.all(out["status"] == 0), out["status"]
    on = np.ones(len(out["V"]), bool)
    on[_ca_case("none")] = False
    for k, v in out.items():
        if k == "E_Ca":  # +inf where the cell has no Ca2+ route (Ca_i = 0)
            assert np.all(np.isfinite(v[on])) and np.all(v[~on] == np.inf), k
        else:
            assert np.all(np.isfinite(v)), k
    assert np.all(out["Ca_i"][on] > 0) and np.all(out["Ca_i"][~on] == 0)


def test_ncx_dominant_sets_V_to_3_E_Na_minus_2_E_Ca(ca_solved: tuple[str, dict, dict]) -> None:
    _, _, out = ca_solved
    i = _ca_case("ncx_dominant")
    np.testing.assert_allclose(out["V"][i], 3 * out["E_Na"][i] - 2 * out["E_Ca"][i], atol=0.1)
    # ...not trivially: with the Luo–Rudy strength the exchanger is away from equilibrium.
    j = _ca_case("lr94")
    assert np.all(np.abs(out["V"][j] - (3 * out["E_Na"][j] - 2 * out["E_Ca"][j])) > 1.0)


def test_calcium_balances_hold(ca_solved: tuple[str, dict, dict]) -> None:
    pump, p, out = ca_solved
    p = {k: np.asarray(v) for k, v in p.items()}
    V, T = out["V"], p["T"]
    I_na = np.asarray(phys.ghk_current(V, p["P_Na"], p["Na_o"], out["Na_i"], 1, T))
    I_k = np.asarray(phys.ghk_current(V, p["P_K"], p["K_o"], out["K_i"], 1, T))
    I_cl = np.asarray(phys.ghk_current(V, p["P_Cl"], p["Cl_o"], out["Cl_i"], -1, T))
    I_ca = np.asarray(phys.ghk_current(V, p["P_Ca"], p["Ca_o"], out["Ca_i"], 2, T))
    # Luo–Rudy exchanger written out from its equation (not the solver's coefficients).
    u = V / np.asarray(phys.thermal_voltage(T))
    eta = p["eta_NCX"]
    denom = ((p["Km_Na_NCX"] ** 3 + p["Na_o"] ** 3) * (p["Km_Ca_NCX"] + p["Ca_o"])
             * (1 + p["k_sat_NCX"] * np.exp((eta - 1) * u)))  # fmt: skip
    forward = p["I_NCX_max"] * np.exp(eta * u) * out["Na_i"] ** 3 * p["Ca_o"] / denom
    reverse = p["I_NCX_max"] * np.exp((eta - 1) * u) * p["Na_o"] ** 3 * out["Ca_i"] / denom
    I_ncx = forward - reverse
    I_pmca = p["I_PMCA_max"] * out["Ca_i"] / (p["Km_PMCA"] + out["Ca_i"])
    I_p, j_k = out["I_pump"], out["J_KCC2"]
    np.testing.assert_allclose(out["I_Ca"], I_ca, rtol=1e-9, atol=1e-18)
    np.testing.assert_allclose(out["I_PMCA"], I_pmca, rtol=1e-12, atol=1e-18)
    ncx_terms = 3 * (forward + reverse)  # the exchanger current's rounding scale
    np.testing.assert_allclose(out["I_NCX"], I_ncx, rtol=1e-6, atol=1e-12 * np.max(ncx_terms))
    for terms in (
        (I_na, 3 * I_p, 3 * I_ncx, out["J_NKCC1"]),
        (I_k, -2 * I_p, j_k),
        (-I_cl, j_k),
        (I_ca, I_pmca, -2 * I_ncx),
        (I_na, I_k, I_cl, I_ca, I_p, I_ncx, I_pmca),  # zero total membrane current
    ):
        scale = sum(np.abs(t) for t in terms) + np.abs(I_p) + ncx_terms + 1e-30
        assert np.max(np.abs(sum(terms)) / scale) < 1e-6
    osm = np.asarray(external_osmolarity(p["Na_o"], p["K_o"], p["Cl_o"], p["X_o"]))
    charge = out["Na_i"] + out["K_i"] - out["Cl_i"] + 2 * out["Ca_i"] + p["z_X"] * out["X_i"]
    np.testing.assert_allclose(charge / osm, 0.0, atol=1e-12)
    osm_i = out["Na_i"] + out["K_i"] + out["Cl_i"] + out["Ca_i"] + out["X_i"]
    np.testing.assert_allclose(osm_i, osm, rtol=1e-12)


def test_calcium_routes_off_reproduce_the_cell_without_calcium(
    ca_solved: tuple[str, dict, dict],
) -> None:
    """All Ca2+ strengths 0: every output bit for bit that of the call without Ca2+ names."""
    pump, p, out = ca_solved
    without = SOLVERS[pump]({k: v for k, v in p.items() if k in NAMES})  # _batch's program
    i = _ca_case("none")
    for k, v in without.items():
        np.testing.assert_array_equal(out[k][i], np.asarray(v)[i], err_msg=k)
    for k in ("Ca_i", "I_Ca", "I_NCX", "I_PMCA"):
        assert np.all(out[k][i] == 0), k


@settings(max_examples=10, deadline=None)
@given(
    log_ncx=st.floats(-2.0, 4.0),
    log_pmca=st.floats(-3.0, 2.0),
    log_p_ca=st.floats(-12.0, -7.0),
    na_o=st.floats(20.0, 200.0),
    ca_o=st.floats(0.1, 10.0),
    pump=st.sampled_from(["kinetic", "fixed"]),
)
def test_calcium_status_zero_means_finite(
    log_ncx: float, log_pmca: float, log_p_ca: float, na_o: float, ca_o: float, pump: str
) -> None:
    p = _ca_batch()  # the program of the Ca2+ fixture (no new compilation)
    n = len(p["K_o"])
    values = {"I_NCX_max": 10.0**log_ncx, "I_PMCA_max": 10.0**log_pmca,
              "P_Ca": 10.0**log_p_ca, "Na_o": na_o, "Ca_o": ca_o}  # fmt: skip
    p |= {k: jnp.asarray(np.full(n, v)) for k, v in values.items()}
    out = SOLVERS[pump](p)
    ok = np.asarray(out["status"]) == 0
    assert np.all(np.asarray(out["Ca_i"])[ok] > 0)
    for k, v in out.items():
        v = np.asarray(v)
        assert np.all(np.isfinite(v[ok])), k
        if k != "status":
            assert np.all(np.isnan(v[~ok])), k


def test_ncx_current_vanishes_at_its_reversal_potential() -> None:
    T, na_i, na_o, ca_i, ca_o = 310.0, 10.0, 140.0, 1e-4, 1.8
    vt = float(phys.thermal_voltage(T))
    e_na, e_ca = vt * np.log(na_o / na_i), vt / 2 * np.log(ca_o / ca_i)
    args = (na_i, na_o, ca_i, ca_o, 2000.0, 87.5, 1.38, 0.1, 0.35, T)
    scale = abs(float(ncx_current(-80.0, *args)))
    assert abs(float(ncx_current(3 * e_na - 2 * e_ca, *args))) < 1e-12 * scale
    # Above the reversal potential outward (3 Na+ out), below inward (Ca2+ extrusion).
    assert float(ncx_current(3 * e_na - 2 * e_ca + 5.0, *args)) > 0
    assert float(ncx_current(3 * e_na - 2 * e_ca - 5.0, *args)) < 0
    assert float(pmca_current(5e-4, 1.15, 5e-4)) == pytest.approx(1.15 / 2)


def test_calcium_gradients_match_central_differences() -> None:
    pump = "kinetic"
    p = _ca_batch()
    on = np.ones(len(p["K_o"]), bool)
    on[_ca_case("none")] = False
    for name in ("I_NCX_max", "I_PMCA_max", "P_Ca", "Na_o", "Ca_o"):
        x = np.asarray(p[name])
        h = 1e-6 * np.where(x > 0, x, 1.0)
        tangent = {k: jnp.zeros_like(v) for k, v in p.items()} | {name: jnp.asarray(h)}
        _, d = JVPS[pump]((p,), (tangent,))
        f = {s: SOLVERS[pump](p | {name: jnp.asarray(x + s * h)}) for s in (-1, 1)}
        sel = on & (x > 0)
        for k in ("V", "Ca_i", "Na_i", "volume"):
            fd = (np.asarray(f[1][k]) - np.asarray(f[-1][k])) / 2
            scale = np.abs(np.asarray(f[1][k])) + (1e-6 if k == "Ca_i" else 1.0)
            got = np.asarray(d[k])
            np.testing.assert_allclose(
                got[sel] / scale[sel], fd[sel] / scale[sel], atol=2e-7, err_msg=f"d{k}/d{name}"
            )


@pytest.fixture(scope="module")
def ca_simulated() -> tuple[dict, dict, object]:
    """Cardiac cells with Ca2+ routes; at t = 1 s Na+ loading (P_Na tripled, pump halved)."""
    base = {
        k: float(np.asarray(v))
        for k, v in fill_defaults(rpx.preset("cardiac_ventricular_myocyte"), CA_NAMES).items()
    }
    scale = base["I_pump_max"] / 1.5  # Luo–Rudy ratios to the preset's own Na/K pump
    before = {k: np.full(4, v) for k, v in base.items()}
    before |= {
        "I_NCX_max": np.array([2000.0, 2000.0, 0.0, 2e4]) * scale,
        "I_PMCA_max": np.array([1.15, 0.0, 1.15, 1.15]) * scale,
        "P_Ca": np.array([1e-4, 1e-4, 1e-4, 1e-3]) * base["P_K"],
        # P_Cl > 0: with P_Cl = 0 the ODE keeps the Cl amount, while the algebraic state
        # takes the limit P_Cl -> 0 (Cl in equilibrium).
        "P_Cl": np.array([0.1, 0.45, 0.1, 0.02]) * base["P_K"],
    }
    after = {"P_Na": 3.0 * before["P_Na"], "I_pump_max": 0.5 * before["I_pump_max"]}
    event = rpx.Event(1.0, scale={"P_Na": 3.0, "I_pump_max": 0.5})
    return before, after, rpx.simulate(before, SIM_T, [event])


def test_ode_with_calcium_reaches_the_algebraic_steady_state(ca_simulated: tuple) -> None:
    before, after, ds = ca_simulated
    assert np.all(ds["status"].values == 0)
    for p, i in ((before, 0), (before | after, -1)):
        # The 4 sets repeated to the Ca2+ batch's 20 rows: its compiled program, no new one.
        q = fill_defaults(rpx.prepare(p, "pump_leak"), CA_NAMES)
        q = {k: jnp.asarray(np.tile(np.broadcast_to(np.asarray(v, np.float64), (4,)), 5))
             for k, v in q.items() if k in CA_NAMES}  # fmt: skip
        ref = {k: np.asarray(v)[:4] for k, v in SOLVERS["kinetic"](q).items()}
        for k in ("V", "Na_i", "K_i", "Cl_i", "Ca_i", "volume", "I_NCX", "I_PMCA", "I_Ca"):
            got, want = ds[k].values[:, i], ref[k]
            tol = 1e-9 * np.max(np.abs(want)) if k.startswith("I_") else 1e-12
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=tol, err_msg=f"{k} at {i}")
    # Na+ loading raises Ca_i wherever the exchanger is present (less Ca2+ extrusion).
    ncx = before["I_NCX_max"] > 0
    ca = ds["Ca_i"].values
    assert np.all(ca[ncx, -1] > 1.5 * ca[ncx, 0])
    for k in ("Ca_i", "E_Ca", "I_NCX", "I_PMCA", "I_Ca"):
        assert ds[k].attrs["units"] in ("mM", "mV", "uA/cm^2") and ds[k].attrs["long_name"]


def test_ode_with_calcium_conserves_charge(ca_simulated: tuple) -> None:
    before, _, ds = ca_simulated
    z = before["z_X"]
    charge = ds["Na_i"] + ds["K_i"] - ds["Cl_i"] + 2 * ds["Ca_i"] + z[:, None] * ds["X_i"]
    scale = ds["Na_i"] + ds["K_i"] + ds["Cl_i"] + ds["X_i"]
    assert float(np.max(np.abs(charge / scale))) < 1e-9
    # The Ca2+ term matters: its charge is far above the tolerance where Ca_i rose.
    assert float(np.max(2 * ds["Ca_i"] / scale)) > 1e-6


# Moderate strengths (g_KCC2, g_NKCC1 in mS/cm^2; NCX, PMCA as fractions of the Luo–Rudy
# ratios of CA_CASES; P_Ca/P_K): five per preset, so that the batch has the Ca2+ batch's
# shape and its compiled steady-state program is reused.
MODERATE = (
    (1e-2, 1e-3, 1.0, 1.0, 1e-4),
    (1e-3, 0.0, 1.0, 1.0, 1e-4),
    (0.0, 1e-2, 1.0, 1.0, 1e-4),
    (1e-2, 1e-2, 0.1, 1.0, 1e-4),
    (1e-3, 1e-3, 1.0, 0.0, 1e-5),
)


def test_moderate_transporters_give_one_steady_state_where_the_solver_finds_it() -> None:
    """Presets with moderate KCC2, NKCC1, exchanger and Ca pump (kinetic Na/K pump): the
    balances solved at fixed V on a grid give exactly one sign change of the remaining
    equation (one steady state, counted without the steady-state solver), every grid
    point between solved, and the solver's V lies in that grid interval."""
    from rpx.physics.pump_leak import transporter_sign_changes

    rows = []
    for name in PRESETS:
        base = {
            k: float(np.asarray(v)) for k, v in fill_defaults(rpx.preset(name), CA_NAMES).items()
        }
        if base["P_Cl"] == 0:
            base["P_Cl"] = 0.1 * base["P_K"]
        ncx, pmca = CA_CASES["lr94"][:2]
        for g_k, g_n, f_ncx, f_pmca, p_ca in MODERATE:
            rows.append(base | {
                "g_KCC2": g_k, "g_NKCC1": g_n, "P_Ca": p_ca * base["P_K"],
                "I_NCX_max": f_ncx * ncx * base["I_pump_max"],
                "I_PMCA_max": f_pmca * pmca * base["I_pump_max"],
            })  # fmt: skip
    p = {k: jnp.asarray([r[k] for r in rows]) for k in CA_NAMES}
    assert p["K_o"].shape == _ca_batch()["K_o"].shape
    n, u_lo, u_hi = 96, -16.0, 6.0
    c = jax.jit(lambda q: transporter_sign_changes(q, True, n=n, u_lo=u_lo, u_hi=u_hi))(p)
    c = {k: np.asarray(v) for k, v in c.items()}
    out = SOLVERS["kinetic"](p)
    assert np.all(np.asarray(out["status"]) == 0)
    np.testing.assert_array_equal(c["roots"], 1)
    np.testing.assert_array_equal(c["gaps"], 0)
    np.testing.assert_array_equal(c["interior"], 0)
    np.testing.assert_array_equal(c["mismatch"], 0)
    u_sol = np.asarray(out["V"] / phys.thermal_voltage(p["T"]))
    half_step = 0.5 * (u_hi - u_lo) / (n - 1)
    assert np.all(np.abs(c["u_first"] - u_sol) <= half_step), (c["u_first"], u_sol)
