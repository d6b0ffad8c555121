"""The physics functions (Nernst, GHK current, Na/K pump) against the mpmath reference."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
import reference as ref
from mpmath import mpf

import rpx

VALENCES = [1, -1, 2, -2]
EPS32 = float(np.finfo(np.float32).eps)
# RT ln(10)/F at 37 °C (310.15 K) with the exact CODATA 2018 R and F, in mV.
DECADE_37C_MV = float(ref.thermal_mV(310.15) * mpmath.log(10))


def _conc(rng: np.random.RandomState, n: int) -> np.ndarray:
    return 10.0 ** rng.uniform(-3.0, 3.0, n)


# ----------------------------------------------------------------------------- Nernst
@pytest.mark.parametrize("z", VALENCES)
def test_nernst_matches_reference(z: int) -> None:
    rng = np.random.RandomState(100 + z)
    n = 300
    c_out, c_in, T = _conc(rng, n), _conc(rng, n), rng.uniform(273.0, 320.0, n)
    got = rpx.nernst(c_out, c_in, z, T)
    assert got.dtype == jnp.float64
    want = np.array([float(ref.nernst(c_out[i], c_in[i], z, T[i])) for i in range(n)])
    # 1e-9 relative as the issue asks; the 1e-12 mV floor covers E ≈ 0, where float64
    # rounding of RT/F·ln(c) (|ln c| ≤ 7) is ~1e-13 mV and relative error is meaningless.
    tol = 1e-9 * np.abs(want) + 1e-12
    ref.assert_close(got, want, tol, "nernst", {"c_out": c_out, "c_in": c_in, "T": T})


def test_nernst_decade_at_37C() -> None:
    # RT ln10/F at 310.15 K = 61.5404068580756 mV (CODATA 2018 R, F): the textbook 61.5 mV.
    assert DECADE_37C_MV == pytest.approx(61.5404068580756, rel=1e-14)
    c = np.array([0.5, 5.0, 50.0])
    shift = rpx.nernst(10.0 * c, 140.0, 1, 310.15) - rpx.nernst(c, 140.0, 1, 310.15)
    # float64 difference of two ~100 mV logs: a few ulps of 100 mV.
    np.testing.assert_allclose(shift, DECADE_37C_MV, rtol=1e-13)
    assert np.all(np.abs(np.asarray(shift) - 61.5) < 0.05)


def test_nernst_broadcasts_and_composes_with_jit_vmap_grad() -> None:
    c_out = jnp.array([[1.0], [10.0], [100.0]])
    c_in = jnp.array([5.0, 50.0, 500.0, 5000.0])
    E = rpx.nernst(c_out, c_in, -1, 300.0)
    assert E.shape == (3, 4)
    np.testing.assert_array_equal(jax.jit(rpx.nernst, static_argnums=2)(c_out, c_in, -1, 300.0), E)
    by_row = jax.vmap(lambda co: rpx.nernst(co, c_in, -1, 300.0))(c_out[:, 0])
    np.testing.assert_allclose(by_row, E, rtol=1e-15)
    dE_dco = jax.grad(lambda co: rpx.nernst(co, 50.0, 2, 300.0))(7.0)
    # dE/dc_out = RT/(zF c_out) exactly; float64 AD of a log: a few ulps.
    assert float(dE_dco) == pytest.approx(float(ref.thermal_mV(300.0)) / (2 * 7.0), rel=1e-14)


# -------------------------------------------------------------------------- GHK current
def _ghk_sample(seed: int, n: int) -> dict[str, np.ndarray]:
    rng = np.random.RandomState(seed)
    V = rng.uniform(-300.0, 300.0, n)
    V[: n // 10] = 0.0  # the removable singularity itself
    V[n // 10 : n // 5] *= 1e-6  # around the switch to the Taylor branch (|u| = 1e-3)
    return {
        "V": V,
        "P": 10.0 ** rng.uniform(-9.0, -3.0, n),
        "c_out": _conc(rng, n),
        "c_in": _conc(rng, n),
        "T": rng.uniform(273.0, 320.0, n),
    }


def _ref_ghk(fn, p: dict[str, np.ndarray], z: int) -> np.ndarray:
    keys = ("V", "P", "c_out", "c_in")
    return np.array(
        [float(fn(*(p[k][i] for k in keys), z, p["T"][i])) for i in range(len(p["V"]))]
    )


@pytest.mark.parametrize("z", VALENCES)
def test_ghk_current_matches_reference(z: int) -> None:
    p = _ghk_sample(200 + z, 300)
    got = rpx.ghk_current(p["V"], p["P"], p["c_out"], p["c_in"], z, p["T"])
    want = _ref_ghk(ref.ghk_current, p, z)
    size = _ref_ghk(ref.ghk_magnitude, p, z)
    # 1e-9 of the size of the two cancelling terms (the current's condition number is
    # size/|I|, unbounded at reversal); float64 rounding of them is ~1e-15 of it.
    ref.assert_close(got, want, 1e-9 * size, f"ghk_current z={z}", p)


@pytest.mark.parametrize("z", VALENCES)
def test_ghk_current_at_zero_voltage(z: int) -> None:
    """Value and gradient at V = 0 exactly: the 0/0 limit, no NaN."""
    P, c_out, c_in, T = 2e-6, 30.0, 400.0, 295.0

    def current(V, P, c_out, c_in, T):
        return rpx.ghk_current(V, P, c_out, c_in, z, T)

    args = (0.0, P, c_out, c_in, T)
    value = current(*args)
    limit = float(mpf(P) * z * ref.F * (mpf(c_in) - mpf(c_out)))
    # The series branch at u = 0 is exact up to the rounding of P·z·F·(c_in - c_out).
    assert float(value) == pytest.approx(limit, rel=1e-14)
    grads = jax.grad(current, argnums=(0, 1, 2, 3, 4))(*args)
    assert all(np.isfinite(float(g)) for g in grads)
    exact = {
        "V": float(ref.ghk_current_dV(0, P, c_out, c_in, z, T)),
        "P": float(z * ref.F * (mpf(c_in) - mpf(c_out))),
        "c_out": float(-mpf(P) * z * ref.F),
        "c_in": float(mpf(P) * z * ref.F),
    }
    for g, (name, want) in zip(grads[:4], exact.items(), strict=True):
        # exact derivatives of the series at u = 0: only rounding of a few products.
        assert float(g) == pytest.approx(want, rel=1e-13), name
    assert float(grads[4]) == 0.0  # dI/dT = dI/du · du/dT and du/dT = -u/T = 0 at V = 0
    # float64 central difference across V = 0; h = 1e-3 mV gives truncation
    # (h/(RT/F))^2/6 ≈ 3e-10 relative and rounding 1e-16·|I|/(h·|dI/dV|) ≈ 1e-12.
    h = 1e-3
    fd = (current(h, P, c_out, c_in, T) - current(-h, P, c_out, c_in, T)) / (2 * h)
    assert float(grads[0]) == pytest.approx(float(fd), rel=1e-8)


@pytest.mark.parametrize("z", VALENCES)
def test_ghk_current_is_smooth_through_zero(z: int) -> None:
    """Value and slope agree with the reference across the switch to the series branch."""
    T, P, c_out, c_in = 300.0, 1e-6, 120.0, 7.0
    u_switch_mV = 1e-3 * float(ref.thermal_mV(T)) / abs(z)
    V = np.concatenate(
        [np.linspace(-3.0, 3.0, 121) * u_switch_mV, u_switch_mV * (1 + np.array([-1e-9, 1e-9]))]
    )
    I, dI = jax.vmap(jax.value_and_grad(lambda v: rpx.ghk_current(v, P, c_out, c_in, z, T)))(V)
    want = [float(ref.ghk_current(v, P, c_out, c_in, z, T)) for v in V]
    size = float(ref.ghk_magnitude(0.0, P, c_out, c_in, z, T))
    # the series 1 + u²/12 ± u/2 drops u⁴/720 ≈ 1.4e-15 at the switch: a jump of
    # that size at most, so 1e-13 of the term size.
    ref.assert_close(I, want, 1e-13 * size, f"ghk_current near 0, z={z}", {"V": V})
    want_slope = [float(ref.ghk_current_dV(v, P, c_out, c_in, z, T)) for v in V]
    # the series' slope misses u³/180 ≈ 6e-12 relative at the switch; 1e-10 allows it.
    ref.assert_close(dI, want_slope, 1e-10 * np.abs(want_slope), f"dI/dV near 0, z={z}", {"V": V})


@pytest.mark.parametrize("z", VALENCES)
def test_ghk_current_float32_no_overflow_to_1000_mV(z: int) -> None:
    V = np.concatenate([np.linspace(-1000.0, 1000.0, 401), [-1e-4, 1e-4]])[:, None, None]
    T = np.array([273.15, 320.0])[None, :, None]
    conc = np.array([[1e-3, 1e3], [1e3, 1e-3], [1.0, 1.0], [1e3, 1e3]])
    c_out, c_in = conc[None, None, :, 0], conc[None, None, :, 1]
    P = 1e-5
    args32 = [jnp.asarray(x, jnp.float32) for x in np.broadcast_arrays(V, P, c_out, c_in, T)]
    args64 = [jnp.asarray(x, jnp.float64) for x in args32]

    def current(V, P, c_out, c_in, T):
        return rpx.ghk_current(V, P, c_out, c_in, z, T)

    value = current(*args32)
    assert value.dtype == jnp.float32
    assert np.all(np.isfinite(value))
    grads = jax.grad(lambda *a: current(*a).sum(), argnums=(0, 1, 2, 3, 4))(*args32)
    for name, g in zip(("V", "P", "c_out", "c_in", "T"), grads, strict=True):
        assert g.dtype == jnp.float32
        assert np.all(np.isfinite(g)), f"d ghk_current / d{name} not finite in float32, z={z}"
    u = np.abs(z * np.asarray(args64[0]) / (np.asarray(args64[4]) * float(ref.R / ref.F) * 1e3))
    size = np.abs(P * z * float(ref.F)) * (np.asarray(args64[3]) + np.asarray(args64[2])) * (1 + u)
    # float32 u carries ~3 roundings, so e^(-|u|) is off by ~3|u|·eps (|u| ≤ 85); the
    # rest is a few eps of the term size (which is ≤ size here); factor 4 margin.
    tol = 4 * (3 * u + 8) * EPS32 * size
    ref.assert_close(value, current(*args64), tol, f"float32 ghk_current z={z}")


# --------------------------------------------------------------------------- Na/K pump
def test_pump_current_matches_reference() -> None:
    p = ref.sample(300, 300, pump=True)
    p["V"] = np.random.RandomState(301).uniform(-300.0, 200.0, 300)
    keys = ("V", "Na_i", "Na_o", "K_o", "I_pump_max", "Km_Na_i", "Km_K_o", "T")
    got = rpx.nak_pump_current(*(p[k] for k in keys))
    want = np.array([float(ref.pump_current(p["V"][i], ref.point(p, i))) for i in range(300)])
    # a product of positive factors with no cancellation: a few ulps; 1e-9 as the issue asks.
    ref.assert_close(got, want, 1e-9 * np.abs(want), "nak_pump_current", {k: p[k] for k in keys})


def test_pump_current_float32_finite_to_1000_mV() -> None:
    V = jnp.linspace(-1000.0, 1000.0, 201, dtype=jnp.float32)[:, None]
    Na_o = jnp.asarray([1e-3, 1.0, 140.0, 1e3], jnp.float32)

    def pump(V, Na_o):
        return rpx.nak_pump_current(V, 10.0, Na_o, 5.4, 1.5, 10.0, 1.5, 310.0)

    value = pump(V, Na_o)
    assert value.dtype == jnp.float32
    assert np.all(np.isfinite(value)) and np.all(value >= 0)
    for g in jax.grad(lambda v, n: pump(v, n).sum(), argnums=(0, 1))(V, Na_o):
        assert np.all(np.isfinite(g))
