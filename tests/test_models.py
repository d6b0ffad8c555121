"""The registered models (ghk, mullins_noda, ghk_pump) against the mpmath reference.

Values, float32 against float64, gradients w.r.t. every parameter a model reads,
forward against reverse mode, jit/vmap/broadcasting, hypothesis properties and the
textbook checks.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference as ref
from hypothesis import given, settings
from hypothesis import strategies as st

import rpx

Cast = Callable[..., dict[str, jax.Array]]  # the ``cast`` fixture of conftest.py
# Absolute floor (mV, or mV per e-fold of a parameter for sensitivities θ·∂V/∂θ) under
# the 1e-9 relative tolerance: float64 V is a difference of logs of size ≲ 30, i.e.
# rounding ≈ 30·27 mV·1.1e-16 ≈ 1e-13 mV (observed ≤ 2e-13); relative error is
# meaningless where V or a sensitivity cancels to ≈ 0, so 100× that rounding.
ATOL_MV = 1e-11
# The float32 requirement: within 0.01 mV of float64 on the test domain.
FLOAT32_MV = 0.01


@functools.partial(jax.jit, static_argnames="model")
def _evaluate(params: dict[str, jax.Array], model: str) -> dict[str, jax.Array]:
    return rpx.evaluate(params, model)


@functools.partial(jax.jit, static_argnames="model")
def _value_and_grad(params: dict[str, jax.Array], model: str) -> tuple[jax.Array, dict]:
    """V and ∂V/∂θ for every parameter, elementwise (the points are independent)."""
    return jax.value_and_grad(lambda q: rpx.resting_potential(q, model).sum())(params)


# case id -> (model, reference, sampling options)
CASES: dict[str, tuple[str, Callable, dict]] = {
    "ghk": ("ghk", ref.ghk_voltage, {"calcium": False}),
    "ghk_with_Ca": ("ghk", ref.ghk_voltage, {"calcium": True}),
    "mullins_noda": ("mullins_noda", ref.mullins_noda, {}),
    "ghk_pump": ("ghk_pump", ref.ghk_pump, {"pump": True}),
}


def _sample(case: str, seed: int, n: int) -> dict[str, np.ndarray]:
    model, _, options = CASES[case]
    p = ref.sample(seed, n, **options)
    return {k: v for k, v in p.items() if k in rpx.get_model(model).params}


def _scale(p: dict[str, float], name: str) -> float:
    """The step of parameter ``name`` a sensitivity refers to: itself, or P_K where it is 0."""
    return abs(p[name]) if p[name] != 0 else p["P_K"]


# ------------------------------------------------------------------------------ values
@pytest.mark.parametrize("case", CASES)
def test_values_match_reference(case: str, cast: Cast) -> None:
    model, reference, _ = CASES[case]
    p = _sample(case, 10, 150 if model == "ghk_pump" else 300)
    got = _evaluate(cast(p, np.float64), model)["V"]
    assert got.dtype == jnp.float64
    want = ref.on_sample(reference, p)
    ref.assert_close(got, want, 1e-9 * np.abs(want) + ATOL_MV, f"V of {case}", p)


@pytest.mark.parametrize("case", CASES)
def test_float32_within_001_mV_of_float64(case: str, cast: Cast) -> None:
    model, _, _ = CASES[case]
    p = _sample(case, 20, 2000)
    V32 = _evaluate(cast(p, np.float32), model)["V"]
    assert V32.dtype == jnp.float32
    # the float64 run gets the float32-rounded inputs, so only the arithmetic differs
    p32 = {k: np.asarray(v, np.float32) for k, v in p.items()}
    V64 = _evaluate(cast(p32, np.float64), model)["V"]
    ref.assert_close(V32, V64, FLOAT32_MV, f"float32 V of {case}", p32)


def test_ghk_pump_outputs(cast: Cast) -> None:
    p = _sample("ghk_pump", 30, 100)
    out = _evaluate(cast(p, np.float64), "ghk_pump")
    np.testing.assert_array_equal(out["status"], 0)
    V = np.asarray(out["V"])
    want = [float(ref.pump_current(V[i], ref.point(p, i))) for i in range(len(V))]
    # the pump current at rpx's V: a product of positive factors, a few ulps.
    ref.assert_close(out["I_pump"], want, 1e-12 * np.abs(want), "I_pump", p)
    # the (outward) pump current can only hyperpolarise relative to the passive GHK voltage
    V_ghk = np.asarray(_evaluate(cast(p, np.float64), "ghk")["V"])
    assert np.all(V <= V_ghk + ATOL_MV)
    # and without pump, the zero of the passive currents is the GHK voltage
    off = _evaluate(cast(p | {"I_pump_max": np.zeros(100)}, np.float64), "ghk_pump")["V"]
    ref.assert_close(off, V_ghk, 1e-9 * np.abs(V_ghk) + ATOL_MV, "ghk_pump with I_pump_max = 0")


# --------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("case", CASES)
def test_gradients_match_reference_central_differences(case: str, cast: Cast) -> None:
    """∂V/∂θ for every θ the model reads against 40-digit central differences of the reference."""
    model, reference, _ = CASES[case]
    n = 6 if model == "ghk_pump" else 10
    p = _sample(case, 40, n)
    _, grads = _value_and_grad(cast(p, np.float64), model)
    assert set(grads) == set(rpx.get_model(model).params)
    for i in range(n):
        pt = ref.point(p, i)
        for name in grads:
            step = None if pt[name] != 0 else 1e-12 * pt["P_K"]
            want = float(ref.partial(reference, pt, name, step)) * _scale(pt, name)
            got = float(grads[name][i]) * _scale(pt, name)
            # same budget as the values: compared as θ·∂V/∂θ (mV per e-fold of θ).
            ref.assert_close(got, want, 1e-9 * abs(want) + ATOL_MV, f"{case} dV/d{name}", pt)


def test_ghk_pump_gradient_is_the_implicit_function_theorem(cast: Cast) -> None:
    """rpx's dV/dθ equals -(∂I/∂θ)/(∂I/∂V) of the reference total current at the root."""
    p = _sample("ghk_pump", 50, 8)
    _, grads = _value_and_grad(cast(p, np.float64), "ghk_pump")
    for i in range(8):
        pt = ref.point(p, i)
        implicit = ref.ghk_pump_implicit_grad(pt, list(grads))
        for name, want in implicit.items():
            got, want = float(grads[name][i]) * pt[name], float(want) * pt[name]
            # as in the central-difference test: 1e-9 of θ·∂V/∂θ, ATOL_MV floor.
            ref.assert_close(got, want, 1e-9 * abs(want) + ATOL_MV, f"IFT dV/d{name}", pt)


@pytest.mark.parametrize("model", ["ghk", "mullins_noda", "ghk_pump"])
def test_forward_mode_equals_reverse_mode(model: str, cast: Cast) -> None:
    p = cast(_sample(model, 60, 16), np.float64)

    def V(q: dict[str, jax.Array]) -> jax.Array:
        return rpx.resting_potential(q, model)

    fwd = jax.jit(jax.vmap(jax.jacfwd(V)))(p)
    rev = jax.jit(jax.vmap(jax.grad(V)))(p)
    for name in rev:
        scale = np.abs(np.asarray(p[name]))
        # the same derivative by two orders of evaluation: rounding only, so the
        # budget of the reference comparison (1e-9 of θ·∂V/∂θ, ATOL_MV floor).
        tol = 1e-9 * np.abs(rev[name] * scale) + ATOL_MV
        what = f"{model} jacfwd vs grad, {name}"
        ref.assert_close(fwd[name] * scale, rev[name] * scale, tol, what)


# ------------------------------------------------------------------ jit, vmap, broadcast
@pytest.mark.parametrize("model", ["ghk", "mullins_noda", "ghk_pump"])
def test_jit_vmap_and_broadcasting(model: str, cast: Cast) -> None:
    p = cast(_sample(model, 70, 12), np.float64)
    batch = _evaluate(p, model)["V"]
    one_by_one = jax.vmap(lambda q: rpx.resting_potential(q, model))(p)
    # vmap and a batch run the same elementwise code: rounding-level differences at most.
    np.testing.assert_allclose(one_by_one, batch, rtol=1e-13, atol=ATOL_MV)
    eager = rpx.resting_potential({k: v[:2] for k, v in p.items()}, model)
    np.testing.assert_allclose(eager, batch[:2], rtol=1e-13, atol=ATOL_MV)

    # a (3, 1) and a (4,) parameter broadcast to a (3, 4) result, the others are scalars
    point = {k: v[0] for k, v in p.items()}
    K_o, Na_i = jnp.array([[2.0], [10.0], [50.0]]), jnp.array([5.0, 15.0, 40.0, 80.0])
    grid = rpx.resting_potential(point | {"K_o": K_o, "Na_i": Na_i}, model)
    assert grid.shape == (3, 4)
    for r in range(3):
        for c in range(4):
            single = rpx.resting_potential(point | {"K_o": K_o[r, 0], "Na_i": Na_i[c]}, model)
            np.testing.assert_allclose(grid[r, c], single, rtol=1e-13, atol=ATOL_MV)


# ------------------------------------------------------------------- hypothesis properties
LOG_CONC = st.floats(math.log10(ref.CONC_MM[0]), math.log10(ref.CONC_MM[1]))
LOG_RATIO = st.floats(math.log10(ref.P_RATIO[0]), math.log10(ref.P_RATIO[1]))


@st.composite
def _points(draw: st.DrawFn, pump: bool = False) -> dict[str, float]:
    """A point of the test domain; P_Na, P_Cl and P_Ca may also be exactly 0."""
    p = {f"{ion}_{side}": 10.0 ** draw(LOG_CONC) for ion in ref.VALENCE for side in "oi"}
    p["P_K"] = 10.0 ** draw(st.floats(math.log10(ref.P_K_CM_S[0]), math.log10(ref.P_K_CM_S[1])))
    for ion in ("Na", "Cl", "Ca"):
        ratio = draw(st.one_of(st.none(), LOG_RATIO))
        p[f"P_{ion}"] = 0.0 if ratio is None else p["P_K"] * 10.0**ratio
    p["T"] = draw(st.floats(*ref.T_K))
    p["r_pump"] = draw(st.floats(1.0, 3.0))
    if pump:
        p["I_pump_max"] = 10.0 ** draw(st.floats(math.log10(0.15), math.log10(15.0)))
        p["Km_Na_i"] = 10.0 ** draw(st.floats(0.0, 2.0))
        p["Km_K_o"] = 10.0 ** draw(st.floats(math.log10(0.15), math.log10(15.0)))
    return p


def _value_grad_checked(p: dict[str, float], model: str, dtype: type) -> tuple[float, dict]:
    """V and its gradient at ``p`` in ``dtype``; asserts that all of them are finite."""
    q = {k: jnp.asarray(v, dtype) for k, v in p.items() if k in rpx.get_model(model).params}
    V, grads = _value_and_grad(q, model)
    assert V.dtype == dtype and np.isfinite(V), f"V = {V} at {p}"
    for name, g in grads.items():
        assert g.dtype == dtype and np.isfinite(g), f"dV/d{name} = {g} at {p}"
    return float(V), grads


def _nernst64(p: dict[str, float], ion: str, dtype: type) -> float:
    """Nernst potential of the dtype-rounded inputs, in float64."""
    T, c_o, c_i = (float(np.asarray(p[k], dtype)) for k in ("T", f"{ion}_o", f"{ion}_i"))
    return float(ref.nernst(c_o, c_i, ref.VALENCE[ion], T))


# V of float32 inputs is off by ≤ 1e-3 mV on this domain (see the float32 test); float64
# by ≤ ATOL_MV. The bounds below are computed in float64 from the same rounded inputs.
BOUND_MV = {np.float32: 1e-3, np.float64: ATOL_MV}
DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])


@DTYPES
@settings(max_examples=40, deadline=None)
@given(p=_points())
def test_ghk_finite_and_between_equilibrium_potentials(p: dict[str, float], dtype: type) -> None:
    V, _ = _value_grad_checked(p, "ghk", dtype)
    E = [_nernst64(p, ion, dtype) for ion in ref.VALENCE if p[f"P_{ion}"] > 0]
    assert min(E) - BOUND_MV[dtype] <= V <= max(E) + BOUND_MV[dtype], (V, E, p)


@DTYPES
@settings(max_examples=40, deadline=None)
@given(p=_points())
def test_mullins_noda_finite_and_between_E_K_and_E_Na(p: dict[str, float], dtype: type) -> None:
    V, _ = _value_grad_checked(p, "mullins_noda", dtype)
    E = [_nernst64(p, ion, dtype) for ion in ("K", "Na") if p[f"P_{ion}"] > 0]
    assert min(E) - BOUND_MV[dtype] <= V <= max(E) + BOUND_MV[dtype], (V, E, p)


@DTYPES
@settings(max_examples=40, deadline=None)
@given(p=_points(pump=True))
def test_ghk_pump_finite_and_below_passive_voltage(p: dict[str, float], dtype: type) -> None:
    V, _ = _value_grad_checked(p, "ghk_pump", dtype)
    V_ghk, _ = _value_grad_checked(p, "ghk", dtype)
    assert V <= V_ghk + 2 * BOUND_MV[dtype], (V, V_ghk, p)
