"""The two forms of the closed-form voltages, and the one-reduction domain checks.

``ghk_voltage`` and ``mullins_noda_voltage`` evaluate in plain arithmetic when every sum
of products lies well inside the dtype's range (the case of every physiological input)
and in logarithms otherwise; the choice is made once per array. These tests hold the two
forms to each other (values and every derivative), check which form an array takes, the
derivative at V = 0 exactly (b = 0, where |b| would lose it), and that the fused domain
checks name the first failed check wherever the failures are.
"""

from __future__ import annotations

import contextlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rpx
from rpx.physics import formulas as phys
from rpx.physics import params as params_rules

GHK_ORDER = ("K_o", "K_i", "Na_o", "Na_i", "Cl_o", "Cl_i", "Ca_o", "Ca_i",
             "P_K", "P_Na", "P_Cl", "P_Ca", "T")  # fmt: skip
MN_ORDER = ("K_o", "K_i", "Na_o", "Na_i", "P_K", "P_Na", "r_pump", "T")


def _random_points(order: tuple[str, ...], n: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Physiological points: every value of the default preset times e^U(-2, 2), T in
    [273, 320] K."""
    rng = np.random.default_rng(seed)
    # the default preset has no Ca2+ permeability; 1e-9 cm/s (a test value) puts the
    # Ca2+ terms in play
    base = {**rpx.preset("default"), "r_pump": 1.5, "P_Ca": 1e-9}
    out = []
    for k in order:
        if k == "T":
            out.append(rng.uniform(273.15, 320.0, n))
        else:
            out.append(np.asarray(base[k] * np.exp(rng.uniform(-2.0, 2.0, n)), np.float64))
    return tuple(out)


def _jacobian(f: object, args: tuple) -> np.ndarray:
    """d f / d arg_i for every argument, pointwise (f is elementwise)."""
    grads = jax.grad(lambda *a: jnp.sum(f(*a)), argnums=tuple(range(len(args))))(*args)
    return np.stack([np.asarray(g) for g in grads])


@pytest.mark.parametrize(
    ("plain", "logs", "order"),
    [
        (phys._ghk_voltage_plain, phys._ghk_voltage_logs, GHK_ORDER),
        (phys._mullins_noda_plain, phys._mullins_noda_logs, MN_ORDER),
    ],
    ids=["ghk", "mullins_noda"],
)
def test_plain_and_logarithmic_forms_agree_in_value_and_every_derivative(
    plain: object, logs: object, order: tuple[str, ...]
) -> None:
    args = tuple(jnp.asarray(a) for a in _random_points(order, 400))
    v_plain, v_logs = np.asarray(plain(*args)), np.asarray(logs(*args))
    # both are exact to a few float64 roundings of V (|V| < 200 mV)
    np.testing.assert_allclose(v_plain, v_logs, rtol=0, atol=1e-11)
    j_plain, j_logs = _jacobian(plain, args), _jacobian(logs, args)
    scale = np.max(np.abs(j_logs), axis=1, keepdims=True)
    assert np.all(scale > 0)  # every argument moves V somewhere
    np.testing.assert_allclose(j_plain / scale, j_logs / scale, rtol=0, atol=1e-10)


def test_float32_plain_form_is_as_close_to_the_float64_reference_as_the_logarithmic_one() -> None:
    args64 = _random_points(GHK_ORDER, 2000, seed=1)
    ref = np.asarray(phys._ghk_voltage_logs(*(jnp.asarray(a) for a in args64)))
    args32 = tuple(jnp.asarray(a, jnp.float32) for a in args64)
    err_plain = np.max(np.abs(np.asarray(phys._ghk_voltage_plain(*args32)) - ref))
    err_logs = np.max(np.abs(np.asarray(phys._ghk_voltage_logs(*args32)) - ref))
    # float32 rounding of V (|V| < 200 mV, eps 6e-8) and of the inputs: ~1e-5 mV
    assert err_plain < 1e-4
    assert err_plain <= 4 * err_logs + 1e-5


def test_an_array_takes_the_plain_form_unless_one_point_is_at_an_extreme_magnitude() -> None:
    # compiled alike (op-by-op evaluation may round differently from a fused program)
    public, plain, logs = (jax.jit(f) for f in (
        phys.ghk_voltage, phys._ghk_voltage_plain, phys._ghk_voltage_logs))
    args = tuple(jnp.asarray(a) for a in _random_points(GHK_ORDER, 50, seed=2))
    v = np.asarray(public(*args))
    np.testing.assert_array_equal(v, np.asarray(plain(*args)))
    assert not np.array_equal(v, np.asarray(logs(*args)))  # the forms round differently
    # one point with every permeability at 1e-40 cm/s (its products ~1e-38 and below)
    p_index = [GHK_ORDER.index(k) for k in ("P_K", "P_Na", "P_Cl", "P_Ca")]
    extreme = tuple(a.at[0].set(1e-40) if i in p_index else a for i, a in enumerate(args))
    v_ext = np.asarray(public(*extreme))
    np.testing.assert_array_equal(v_ext, np.asarray(logs(*extreme)))
    # V depends only on ratios of the permeabilities: the extreme point is the same
    # cell as one with every permeability at 1e-7
    same = tuple(a.at[0].set(1e-7) if i in p_index else a for i, a in enumerate(args))
    np.testing.assert_allclose(v_ext, np.asarray(public(*same)), rtol=0, atol=1e-9)


@pytest.mark.parametrize("form", ["plain", "logs", "public"])
def test_derivative_at_zero_voltage_with_equal_gradients(form: str) -> None:
    """b = A_out - A_in = 0 exactly (every ion equal on both sides, no Ca2+): V = 0 and
    V is smooth there, so every derivative equals its central difference."""
    p = {k: float(v) for k, v in rpx.preset("default").items() if k in GHK_ORDER}
    p.update(K_o=p["K_i"], Na_o=p["Na_i"], Cl_o=p["Cl_i"], P_Ca=0.0)
    f = {"plain": phys._ghk_voltage_plain, "logs": phys._ghk_voltage_logs,
         "public": phys.ghk_voltage}[form]  # fmt: skip
    args = tuple(jnp.float64(p[k]) for k in GHK_ORDER)
    assert float(f(*args)) == 0.0
    grads = jax.grad(lambda *a: f(*a), argnums=tuple(range(13)))(*args)
    for i, name in enumerate(GHK_ORDER):
        if name in ("P_Ca", "T"):
            continue  # P_Ca = 0 is the domain's edge; dV/dT = V/T = 0
        h = 1e-6 * float(args[i])
        up = list(args)
        down = list(args)
        up[i], down[i] = args[i] + h, args[i] - h
        fd = (float(phys._ghk_voltage_logs(*up)) - float(phys._ghk_voltage_logs(*down))) / (2 * h)
        # per relative change (mV): x·dV/dx; exact zeros (dV/dP_K with K_o = K_i) come
        # out as rounding noise of the size of V's rounding
        x = float(args[i])
        assert x * float(grads[i]) == pytest.approx(x * fd, rel=1e-6, abs=1e-9), name


def test_fused_checks_report_the_first_failed_check_wherever_the_failures_are() -> None:
    model = rpx.get_model("ghk")
    names = model.params
    base = {k: np.full(4, v) for k, v in rpx.prepare({}, "ghk").items()}
    values = {k: np.asarray(v, np.float64) for k, v in base.items()}
    values["T"] = values["T"].copy()
    values["K_o"] = values["K_o"].copy()
    values["T"][1] = 10.0  # a later check fails at an early point...
    values["K_o"][3] = -1.0  # ...and an earlier check at a later point
    messages = params_rules.check_messages(names, model)
    cast = {k: jnp.asarray(values[k]) for k in names}
    i = int(params_rules.first_failed_check(cast, model))
    assert "K_o" in messages[i]
    assert not bool(params_rules.all_checks_pass(cast, model))
    values["K_o"][3] = 5.0
    cast = {k: jnp.asarray(values[k]) for k in names}
    assert "parameter T " in messages[int(params_rules.first_failed_check(cast, model))]
    values["T"][1] = 300.0
    cast = {k: jnp.asarray(values[k]) for k in names}
    assert int(params_rules.first_failed_check(cast, model)) == -1
    assert bool(params_rules.all_checks_pass(cast, model))
    # the same ordering through the public edge, concrete and under the caller's jit
    bad = {"K_o": np.asarray([5.0, 5.0, -1.0]), "T": np.asarray([300.0, 10.0, 300.0])}
    with pytest.raises(ValueError, match=r"parameter K_o"):
        rpx.resting_potential(bad)
    f = jax.jit(lambda k, t: rpx.resting_potential({"K_o": k, "T": t}))
    with pytest.raises(Exception, match=r"parameter K_o is outside"):
        f(jnp.asarray(bad["K_o"]), jnp.asarray(bad["T"])).block_until_ready()


@pytest.mark.parametrize("model", ["ghk", "mullins_noda", "ghk_pump"])
def test_entry_points_trace_the_logarithmic_forms_only_for_arrays_that_need_them(
    model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Concrete inputs of these models first run a program with the plain forms only;
    the two-form program (with the logarithms) is traced only when some point needs it,
    and both give what the two-form formula gives, in values and derivatives."""
    traced: list[str] = []
    for name in ("_ghk_voltage_logs", "_mullins_noda_logs"):
        original = getattr(phys, name)

        def spy(*a: object, _f: object = original, _n: str = name) -> object:
            traced.append(_n)
            return _f(*a)

        monkeypatch.setattr(phys, name, spy)
    order = MN_ORDER if model == "mullins_noda" else GHK_ORDER
    # shapes no other test uses, so that the programs are traced here
    pts = _random_points(order, 33, seed=5)
    params = {k: v.reshape(3, 11) for k, v in zip(order, pts, strict=True)}
    params.pop("r_pump", None)  # mullins_noda reads the preset's coupling ratio
    if model == "ghk_pump":
        params = {k: params[k] for k in ("K_o", "Na_i", "P_Na")}
    v = np.asarray(rpx.resting_potential(params, model=model))
    wrt = ["K_o", "P_Na"]
    g = rpx.gradients(params, model=model, wrt=wrt)
    assert traced == []  # the plain forms only
    ref_model = rpx.get_model(model)

    def reference(p: dict) -> object:  # the two-form formulas, as a caller's jit runs them
        return ref_model.fn(rpx.prepare(p, model))["V"]

    ref = jax.jit(reference)(params)
    np.testing.assert_allclose(v, np.asarray(ref), rtol=1e-12, atol=1e-9)
    ref_g = jax.jit(lambda p: rpx.gradients(p, model=model, wrt=wrt))(params)
    for k in ref_g:
        np.testing.assert_allclose(np.asarray(g[k]), np.asarray(ref_g[k]), rtol=1e-9, atol=1e-9)
    # one point with P_K and P_Na at 1e-40 cm/s: the arrays need the logarithms
    tiny = {**params, "P_K": np.full((3, 11), rpx.preset("default")["P_K"]),
            "P_Cl": np.zeros((3, 11))}
    tiny["P_K"][1, 4] = tiny["P_Na"][1, 4] = 1e-40
    tiny["P_Na"] = np.asarray(tiny["P_Na"], np.float64)
    v_tiny = np.asarray(rpx.resting_potential(tiny, model=model))
    assert traced  # now the two-form program
    np.testing.assert_allclose(v_tiny, np.asarray(jax.jit(reference)(tiny)), rtol=1e-12, atol=1e-9)
    assert np.all(np.isfinite(v_tiny))


@pytest.mark.parametrize("model", ["ghk", "mullins_noda"])
def test_closed_form_derivatives_one_parameter_at_a_time_equal_the_stacked_tangents(
    model: str,
) -> None:
    """Closed-form models differentiate one parameter at a time (each derivative its own
    small expression); the result equals the stacked one-hot tangents of other models,
    in both forms of the closed formulas."""
    import dataclasses

    from rpx.physics.derivatives import model_value_and_gradients

    m = rpx.get_model(model)
    assert m.closed_form
    stacked = dataclasses.replace(m, closed_form=False)
    order = MN_ORDER if model == "mullins_noda" else GHK_ORDER
    p = {k: jnp.asarray(v) for k, v in zip(order, _random_points(order, 64, seed=7), strict=True)}
    p = {**p, "P_K": p["P_K"][0]}  # a scalar among arrays: its derivative is per point
    for plain in (True, False):
        with phys.plain_closed_forms() if plain else contextlib.nullcontext():
            one = jax.jit(lambda q: model_value_and_gradients(m, q, m.params, True))(p)
            ref = jax.jit(lambda q: model_value_and_gradients(stacked, q, m.params, True))(p)
        np.testing.assert_array_equal(np.asarray(one[0]["V"]), np.asarray(ref[0]["V"]))
        assert set(one[1]) == set(ref[1]) and len(one[1]) == 2 * len(m.params)
        for k, d in ref[1].items():
            assert one[1][k].shape == d.shape == (64,)
            np.testing.assert_allclose(np.asarray(one[1][k]), np.asarray(d), rtol=1e-12, atol=0)
