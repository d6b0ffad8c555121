"""Model features left out of traced programs where they are known to be inactive.

The pump–leak cell's Ca2+ routes and cotransporters are traced only where some strength
may be > 0. The variant without them must give the full program's values and
derivatives (w.r.t. every parameter outside the feature) bit for bit, and every edge
must keep a feature whose strengths vary or whose derivatives are asked for.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rpx
from rpx.physics.api import fill_defaults
from rpx.physics.models import get_model
from rpx.physics.pump_leak import pump_leak
from rpx.sweep.plan import make_plan

PRESETS = ("mammalian_neuron", "astrocyte", "squid_axon", "red_blood_cell")


def _batch() -> dict[str, jax.Array]:
    m = get_model("pump_leak")
    rows = [
        {k: float(np.asarray(v)) for k, v in fill_defaults(rpx.preset(n), m.params).items()}
        for n in PRESETS
    ]
    # One set without a steady state (no K+ leak with the pump on: unbounded swelling).
    rows.append(rows[0] | {"P_K": 0.0})
    return {k: jnp.asarray([r[k] for r in rows], jnp.float64) for k in m.params}


def test_variant_without_inactive_features_equals_the_full_program() -> None:
    with jax.enable_x64(True):
        p = _batch()
        full = jax.jit(pump_leak)
        lean = jax.jit(functools.partial(pump_leak, off=("calcium", "cotransport")))
        out_full, out_lean = full(p), lean(p)
        assert sorted(out_full) == sorted(out_lean)
        status = np.asarray(out_full["status"])
        assert np.any(status == 0) and np.any(status != 0)
        for k in out_full:
            np.testing.assert_array_equal(
                np.asarray(out_lean[k]), np.asarray(out_full[k]), err_msg=k
            )
        # Derivatives w.r.t. parameters outside the features, one JVP per name.
        for name in ("K_o", "P_Na", "z_X"):
            t = {k: jnp.zeros_like(v) for k, v in p.items()} | {name: jnp.ones_like(p[name])}
            _, d_full = jax.jvp(full, (p,), (t,))
            _, d_lean = jax.jvp(lean, (p,), (t,))
            for k in ("V", "Na_i", "Cl_i", "volume", "Ca_i", "E_Ca", "J_KCC2"):
                np.testing.assert_array_equal(
                    np.asarray(d_lean[k]), np.asarray(d_full[k]), err_msg=f"d{k}/d{name}"
                )


def test_inactive_needs_known_zeros_and_no_derivatives() -> None:
    m = get_model("pump_leak")
    zeros = {k: 0.0 for k in ("P_Ca", "I_NCX_max", "I_PMCA_max", "g_KCC2", "g_NKCC1")}
    assert m.inactive(zeros) == ("calcium", "cotransport")
    assert m.inactive(zeros | {"g_KCC2": np.array([0.0, 1e-3])}) == ("calcium",)
    assert m.inactive(zeros, wrt=["g_NKCC1"]) == ("calcium",)
    assert m.inactive(zeros, wrt=["P_Cl"]) == ("calcium",)
    assert m.inactive(zeros, wrt=["Km_PMCA"]) == ()
    # The cotransporters are left out only with the Ca2+ routes.
    assert m.inactive(zeros | {"I_NCX_max": 1.0}) == ()
    # Unknown (missing) values count as active.
    assert m.inactive({k: v for k, v in zeros.items() if k != "P_Ca"}) == ()
    assert get_model("ghk").inactive(zeros) == ()

    seen = []

    @jax.jit
    def traced(x: jax.Array) -> jax.Array:
        seen.append(m.inactive(zeros | {"g_KCC2": x}))
        return x

    traced(jnp.zeros(()))
    assert seen == [("calcium",)]
    v = m.variant(("calcium",))
    assert v is m.variant(["calcium"]) and v.off == ("calcium",) and v.name == m.name
    assert m.variant(()) is m
    with pytest.raises(ValueError, match="no feature 'pumps'"):
        m.variant(("pumps",))


def test_sweep_plans_keep_features_that_vary_or_are_differentiated() -> None:
    base = {"model": "pump_leak", "preset": "mammalian_neuron"}
    plan = make_plan(rpx.SweepSpec(**base, axes=[rpx.Axis("K_o", [2.0, 5.0])]))
    assert plan.model.off == ("calcium", "cotransport")
    plan = make_plan(rpx.SweepSpec(**base, axes=[rpx.Axis("g_KCC2", [0.0, 1e-3])]))
    assert plan.model.off == ("calcium",)
    plan = make_plan(
        rpx.SweepSpec(**base, axes=[rpx.Axis("K_o", [2.0, 5.0])], gradients=["g_NKCC1"])
    )
    assert plan.model.off == ("calcium",)
    plan = make_plan(
        rpx.SweepSpec(**base, axes=[rpx.Axis("K_o", [2.0, 5.0])], fixed={"P_Ca": 1e-9})
    )
    assert plan.model.off == ()


def test_edges_give_the_right_derivative_of_a_strength_at_zero() -> None:
    """rpx.gradients w.r.t. g_KCC2 at g_KCC2 = 0 keeps the cotransporters in the program:
    KCC2 lowers Cl_i, so E_Cl falls as g_KCC2 grows from 0."""
    p = rpx.preset("mammalian_neuron") | {"P_Cl": 1e-7}
    g = rpx.gradients(p, model="pump_leak", wrt=["g_KCC2", "K_o"])
    assert float(g["dE_Cl_dg_KCC2"]) < 0
    assert float(g["dV_dK_o"]) > 0
    v = rpx.evaluate(p, model="pump_leak")
    assert float(v["J_KCC2"]) == 0 and float(v["E_Cl"]) == pytest.approx(float(v["V"]))
