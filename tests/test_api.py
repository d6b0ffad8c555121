"""Validation of user input: every bad value is a ValueError naming the parameter and its range."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rpx


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"K_o": -5.0}, r"K_o=-5\.0 is outside its allowed range \[0, 10000\] mM"),
        ({"K_i": -1e-3}, r"K_i=-0\.001 is outside its allowed range \[0, 10000\] mM"),
        ({"Na_i": float("nan")}, r"Na_i=nan is outside .*values must be finite"),
        ({"Cl_o": np.array([1.0, np.inf])}, r"Cl_o=inf is outside"),
        ({"T": 0.0}, r"T=0\.0 is outside its allowed range \[200, 400\] K"),
        ({"T": -10.0}, r"T=-10\.0 is outside"),
        ({"P_Na": -1e-9}, r"P_Na=-1e-09 is outside its allowed range \[0, 1\] cm/s"),
        (
            {"P_K": 0.0, "P_Na": 0.0, "P_Cl": 0.0, "P_Ca": 0.0},
            "permeabilities P_K, P_Na, P_Cl, P_Ca are all zero",
        ),
        ({"K_x": 1.0}, "unknown parameter 'K_x'; known parameters: K_o"),
    ],
)
@pytest.mark.parametrize("model", ["ghk", "ghk_pump"])
def test_bad_values_raise_naming_the_parameter(params: dict, message: str, model: str) -> None:
    with pytest.raises(ValueError, match=message):
        rpx.resting_potential(params, model=model)


def test_unknown_model_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown model 'goldman'; known models: .*ghk"):
        rpx.resting_potential({}, model="goldman")


def test_mullins_noda_needs_P_K_or_P_Na() -> None:
    with pytest.raises(ValueError, match="permeabilities P_K, P_Na are all zero"):
        rpx.resting_potential({"P_K": 0.0, "P_Na": 0.0}, model="mullins_noda")
    # P_Cl = 0 alone is fine for ghk (K and Na remain permeant)
    assert np.isfinite(rpx.resting_potential({"P_Cl": 0.0}))


# Under jax.jit the equinox error surfaces wrapped in JAX's runtime error; under
# equinox.filter_jit as EquinoxRuntimeError. Both carry the message.
JIT_ERRORS = (eqx.EquinoxRuntimeError, jax.errors.JaxRuntimeError, ValueError)


@pytest.mark.parametrize("jit", [jax.jit, eqx.filter_jit], ids=["jax.jit", "filter_jit"])
def test_traced_values_are_checked_under_jit_and_name_the_parameter(jit: object) -> None:
    f = jit(lambda k: rpx.resting_potential({"K_o": k}))
    assert np.isfinite(f(jnp.asarray(10.0)))
    with pytest.raises(JIT_ERRORS, match=r"parameter K_o is outside .*\[0, 10000\] mM"):
        f(jnp.asarray(-1.0)).block_until_ready()
    g = jit(lambda p: rpx.resting_potential({"P_K": p, "P_Na": p, "P_Cl": p, "P_Ca": p}))
    with pytest.raises(JIT_ERRORS, match="are all zero"):
        g(jnp.asarray(0.0)).block_until_ready()


def test_missing_names_come_from_the_default_preset_and_dtype_follows_inputs() -> None:
    full = rpx.preset("default")
    assert float(rpx.resting_potential({})) == pytest.approx(float(rpx.resting_potential(full)))
    v32 = rpx.resting_potential({"K_o": jnp.asarray([5.0, 10.0], jnp.float32)})
    assert v32.dtype == jnp.float32 and v32.shape == (2,)
    v64 = rpx.resting_potential({"K_o": np.asarray([5.0, 10.0])})
    assert v64.dtype == jnp.float64


def test_evaluate_returns_every_output_of_a_model() -> None:
    out = rpx.evaluate({"K_o": [5.0, 20.0]}, model="ghk_pump")
    assert set(out) == {"V", "I_pump", "status"}
    assert out["status"].dtype == jnp.int32 and np.all(out["status"] == 0)
    assert np.all(np.asarray(out["I_pump"]) > 0)


_NOT_NUMBERS = [
    (True, "bool"),
    (np.True_, "bool"),
    ("5", "str '5'"),
    ("5 mM", "str '5 mM'"),
    (None, "NoneType None"),
    (np.array([5.0], dtype=object), "dtype object"),
    ([5.0, "x"], "dtype str"),
    ([True, False], "dtype bool"),
    (1 + 0j, "complex"),
]


@pytest.mark.parametrize(("value", "got"), _NOT_NUMBERS)
def test_non_numbers_are_refused_naming_the_parameter(value: object, got: str) -> None:
    """True is not 1 mM, "5" is not 5, None is not NaN: every entry point that takes a
    parameter mapping refuses them in one line naming the parameter."""
    entry_points = [
        lambda p: rpx.resting_potential(p, model="ghk"),
        lambda p: rpx.evaluate(p, model="ghk"),
        lambda p: rpx.gradients(p, model="ghk"),
        lambda p: rpx.pump_leak_steady_state(p),
        lambda p: rpx.simulate(p, np.linspace(0.0, 1.0, 3)),
    ]
    for call in entry_points:
        with pytest.raises(TypeError, match="parameter K_o must be a number") as err:
            call({"K_o": value})
        assert "\n" not in str(err.value) and got in str(err.value)


def test_formula_arguments_and_fixed_values_must_be_numbers() -> None:
    with pytest.raises(TypeError, match="parameter T must be a number .*got bool True"):
        rpx.nernst(5.0, 140.0, 1, True)
    with pytest.raises(TypeError, match="parameter c_out must be a number .*got str '5'"):
        rpx.nernst("5", 140.0, 1, 310.0)
    with pytest.raises(TypeError, match="parameter K_o must be a number"):
        rpx.sensitivity(model="ghk", ranges={"P_Na": (0.01, 0.1)}, fixed={"K_o": "5"}, n=8)


def test_numbers_of_every_kind_are_accepted() -> None:
    ref = float(rpx.resting_potential({"K_o": 5.0}))
    for v in (5, np.int32(5), np.float32(5.0), np.asarray(5.0), jnp.asarray(5.0)):
        assert float(rpx.resting_potential({"K_o": v})) == pytest.approx(ref, rel=1e-5)
