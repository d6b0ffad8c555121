"""Local sensitivities: rpx.gradients and the gradient variables of sweeps.

Forward-mode derivatives against float64 central differences over the test domain of
tests/reference.py, the exact K_o log-sensitivity of a K-only membrane (RT·ln10/F),
implicit-function-theorem gradients of the root-solved model against the mpmath
reference, units, and the TOML keys of sweeps.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference as ref
import xarray as xr

import rpx
from rpx.physics.derivatives import gradient_attrs, model_value_and_gradients
from rpx.sweep.runner import run_sweep
from rpx.sweep.spec import load_spec

MODELS = {"ghk": {"calcium": True}, "mullins_noda": {}, "ghk_pump": {"pump": True}}
# Central-difference step in ln θ. Truncation h²/6·|∂³y/∂(ln θ)³| ≈ 2e-7 mV for third
# log-derivatives up to 100 mV; rounding eps·|y|/h ≈ 1e-10 mV: hence a 1e-5 relative
# budget with a 1e-6 mV (per e-fold of θ) floor. Observed worst: 3e-7 relative.
H = 1e-4
CD_RTOL, CD_ATOL = 1e-5, 1e-6


def _domain(model: str, seed: int = 3, n: int = 40) -> dict[str, np.ndarray]:
    p = ref.sample(seed, n, **MODELS[model])
    return {k: v for k, v in p.items() if k in rpx.get_model(model).params}


@functools.cache
def _jitted(model: str) -> tuple[Callable, Callable]:
    """Jitted ``(evaluate, gradients with log10)`` of a model: one compilation per test run."""
    evaluate = jax.jit(functools.partial(rpx.evaluate, model=model))
    return evaluate, jax.jit(functools.partial(rpx.gradients, model=model, log10=True))


@pytest.mark.parametrize("model", MODELS)
def test_gradients_match_float64_central_differences(model: str) -> None:
    m = rpx.get_model(model)
    p = _domain(model)
    evaluate, gradients = _jitted(model)
    g = gradients(p)
    floats = [o for o, meta in m.outputs.items() if not meta.integer]
    assert set(g) == {
        f"d{o}_d{log}{k}" for o in floats for k in m.params for log in ("", "log10_")
    }
    for name in m.params:
        x = p[name]
        up = evaluate({**p, name: x * math.exp(H)})
        down = evaluate({**p, name: x * math.exp(-H)})
        for out in floats:
            fd = (np.asarray(up[out]) - np.asarray(down[out])) / (2 * H)  # ∂y/∂ln θ
            got = np.asarray(g[f"d{out}_d{name}"]) * x
            tol = CD_RTOL * np.abs(fd) + CD_ATOL
            ref.assert_close(got, fd, tol, f"{model} d{out}/d{name} · {name}", p)
            # per decade = ln(10)·θ·∂y/∂θ, to rounding
            per_decade = np.asarray(g[f"d{out}_dlog10_{name}"])
            ref.assert_close(per_decade, got * math.log(10), 1e-13 * np.abs(per_decade),
                             f"{model} d{out}/dlog10 {name}")


def test_E_K_log_sensitivity_is_RT_ln10_over_F() -> None:
    """With only K+ permeant V = E_K, and dV/dlog10(K_o) = RT·ln(10)/F exactly."""
    T = np.array([273.15, 293.15, 310.15, 320.0])
    K_o = np.array([0.5, 5.0, 20.0, 300.0])
    zero = np.zeros(4)
    p = {"K_o": K_o, "T": T, "P_Na": zero, "P_Cl": zero, "P_Ca": zero}
    g = rpx.gradients(p, "ghk", wrt=["K_o"], log10=True)
    want = rpx.R * T * math.log(10.0) / rpx.F * 1e3  # mV per decade
    # closed form ln(P_K K_o/(P_K K_i)): a few roundings of a number of size 60.
    ref.assert_close(g["dV_dlog10_K_o"], want, 1e-14 * want, "dE_K/dlog10 K_o")
    # the textbook 61.5 mV per decade at 37 °C
    assert abs(float(g["dV_dlog10_K_o"][2]) - 61.54) < 0.005


def test_ghk_pump_gradients_are_the_implicit_function_theorem() -> None:
    """Forward-mode ∂V/∂θ of ghk_pump equals -(∂I/∂θ)/(∂I/∂V) of the mpmath reference."""
    p = _domain("ghk_pump")
    g = _jitted("ghk_pump")[1](p)
    for i in range(4):
        pt = ref.point(p, i)
        for name, want in ref.ghk_pump_implicit_grad(pt, list(p)).items():
            got, want = float(g[f"dV_d{name}"][i]) * pt[name], float(want) * pt[name]
            # as tests/test_models.py: 1e-9 of θ·∂V/∂θ with a 1e-11 mV floor.
            ref.assert_close(got, want, 1e-9 * abs(want) + 1e-11, f"IFT dV/d{name}", pt)


def test_ghk_pump_forward_mode_equals_reverse_mode() -> None:
    """Reverse mode through ``lax.while_loop`` is impossible in JAX: that ``grad`` works
    shows the solver is not differentiated through; it agrees with the forward-mode
    derivatives to rounding (1e-12 of θ·∂V/∂θ, 1e-12 mV floor)."""
    p = {k: jnp.asarray(v) for k, v in _domain("ghk_pump").items()}
    fn = rpx.get_model("ghk_pump").fn
    rev = jax.jit(jax.grad(lambda q: fn(q)["V"].sum()))(p)
    fwd = _jitted("ghk_pump")[1](p)
    for name, r in rev.items():
        x = np.asarray(p[name])
        want = np.asarray(r) * x
        got = np.asarray(fwd[f"dV_d{name}"]) * x
        ref.assert_close(got, want, 1e-12 * np.abs(want) + 1e-12, f"fwd vs rev dV/d{name}")


def test_float32_gradients_follow_float64() -> None:
    p = _domain("ghk", 5, 200)
    g32 = rpx.gradients({k: np.float32(v) for k, v in p.items()}, "ghk", ["K_o"], log10=True)
    p32 = {k: np.asarray(np.float32(v), np.float64) for k, v in p.items()}
    g64 = rpx.gradients(p32, "ghk", ["K_o"], log10=True)
    assert g32["dV_dlog10_K_o"].dtype == jnp.float32
    # float32 V is within 0.01 mV (tests/test_models.py); its log-derivative, a ratio of
    # sums of the same size, within 1e-4 relative of its largest value.
    scale = float(np.max(np.abs(g64["dV_dlog10_K_o"])))
    ref.assert_close(g32["dV_dlog10_K_o"], g64["dV_dlog10_K_o"], 1e-4 * scale, "float32")


def test_value_and_gradients_in_one_pass_under_jit() -> None:
    p = rpx.prepare(_domain("ghk", 6, 16), "ghk")
    f = jax.jit(lambda q: model_value_and_gradients("ghk", q, ["K_o", "P_Na"], True))
    values, grads = f(p)
    np.testing.assert_allclose(values["V"], rpx.get_model("ghk").fn(p)["V"], rtol=1e-14)
    assert set(grads) == {f"dV_d{log}{k}" for k in ("K_o", "P_Na") for log in ("", "log10_")}
    # the same derivative, compiled with other tangents alongside: rounding only
    np.testing.assert_allclose(grads["dV_dK_o"], _jitted("ghk")[1](p)["dV_dK_o"], rtol=1e-14)


@pytest.mark.parametrize(
    ("output", "name", "log10", "units"),
    [
        ("V", "K_o", False, "mV/mM"),
        ("V", "P_Na", False, "mV/(cm/s)"),
        ("V", "T", False, "mV/K"),
        ("V", "I_pump_max", False, "mV/(uA/cm^2)"),
        ("V", "K_o", True, "mV/decade"),
        ("I_pump", "K_o", False, "(uA/cm^2)/mM"),
        ("I_pump", "P_K", True, "(uA/cm^2)/decade"),
    ],
)
def test_gradient_units(output: str, name: str, log10: bool, units: str) -> None:
    attrs = gradient_attrs("ghk_pump", output, name, log10)
    assert attrs["units"] == units
    assert rpx.PARAMS[name].long_name in attrs["long_name"]
    # a dimensionless parameter leaves the output's units alone
    assert gradient_attrs("mullins_noda", "V", "r_pump")["units"] == "mV"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"wrt": ["K_x"]}, "'K_x'"),
        ({"wrt": ["r_pump"]}, "cannot differentiate with respect to 'r_pump'"),
        ({"params": {"K_o": -1.0}}, "K_o=-1.0 is outside its allowed range"),
        ({"model": "nope"}, "unknown model 'nope'"),
    ],
)
def test_bad_gradient_requests_raise(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rpx.gradients(**{"params": {"K_o": 5.0}, "model": "ghk", **kwargs})


# --------------------------------------------------------------------------- sweeps
SWEEP_TOML = """
model = "ghk_pump"
preset = "mammalian_neuron"
gradients = {gradients}
log_gradients = true
dtype = "float64"
outputs = ["V", "I_pump"]
[fixed]
P_Na = 2e-8
[[axes]]
name = "K_o"
logspace = [1.0, 100.0, 5]
[design]
method = "sobol"
n = 8
ranges = [{{ name = "Na_i", lo = 5.0, hi = 40.0, log = true }}]
"""


def test_sweep_gradients_key_in_toml(tmp_path: Path) -> None:
    spec_path = tmp_path / "g.toml"
    spec_path.write_text(SWEEP_TOML.format(gradients='["T", "K_o"]'))
    assert load_spec(spec_path).gradients == ("T", "K_o")
    spec_path.write_text(SWEEP_TOML.format(gradients="true"))
    # true: every swept parameter, then every named fixed one
    assert load_spec(spec_path).gradients == ("K_o", "Na_i", "P_Na")


def test_sweep_stores_gradients_with_units(tmp_path: Path) -> None:
    spec_path = tmp_path / "g.toml"
    spec_path.write_text(SWEEP_TOML.format(gradients="true"))
    spec = load_spec(spec_path)
    wrt = list(spec.gradients)
    run_sweep(spec, tmp_path / "g.zarr", quiet=True)
    ds = xr.open_zarr(tmp_path / "g.zarr")
    K_o, Na_i = xr.broadcast(ds.K_o, ds.Na_i)
    fixed = {k: float(v) for k, v in ds.coords.items() if v.ndim == 0}
    # the 5 x 8 points as flat float64 arrays of 40, as the domain samples above: the
    # cached jitted gradients of the central-difference test apply without recompiling
    p = {**fixed, "K_o": K_o.values.ravel(), "Na_i": Na_i.values.ravel()}
    p = {k: np.broadcast_to(np.float64(v), (40,)) for k, v in p.items()}
    want = {k: np.asarray(v).reshape(K_o.shape) for k, v in _jitted("ghk_pump")[1](p).items()}
    for out in ("V", "I_pump"):
        for name in wrt:
            var = ds[f"d{out}_d{name}"]
            assert var.attrs == gradient_attrs("ghk_pump", out, name)
            assert ds[f"d{out}_dlog10_{name}"].attrs["units"].endswith("/decade")
            # the same forward-mode derivatives, fused into the chunk kernel: rounding only
            for key in (f"d{out}_d{name}", f"d{out}_dlog10_{name}"):
                w = np.asarray(want[key])
                scale = np.max(np.abs(w))  # where a derivative cancels to ~0, rounding
                ref.assert_close(ds[key].values, w, 1e-12 * (np.abs(w) + scale), key)
    assert ds["dV_dK_o"].attrs["units"] == "mV/mM"
    assert ds["dI_pump_dK_o"].attrs["units"] == "(uA/cm^2)/mM"


def test_sweep_rejects_gradients_the_model_does_not_read(tmp_path: Path) -> None:
    spec_path = tmp_path / "bad.toml"
    spec_path.write_text(SWEEP_TOML.format(gradients='["r_pump"]'))
    with pytest.raises(ValueError, match="gradient w.r.t. r_pump"):
        load_spec(spec_path)
