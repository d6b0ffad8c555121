"""Presets: complete, inside the parameter domains, sourced, and landing in their reported range."""

from __future__ import annotations

import math

import numpy as np
import pytest

import rpx
from rpx.physics.presets import CORE, PUMP_CALIBRATED, preset_info

R = 6.02214076e23 * 1.380649e-23  # J/(mol K), CODATA 2018 exact N_A k
F = 6.02214076e23 * 1.602176634e-19  # C/mol, exact N_A e


def _ghk_reference(p: dict[str, float]) -> float:
    """Passive GHK voltage without Ca (plain floats, independent of rpx)."""
    num = p["P_K"] * p["K_o"] + p["P_Na"] * p["Na_o"] + p["P_Cl"] * p["Cl_i"]
    den = p["P_K"] * p["K_i"] + p["P_Na"] * p["Na_i"] + p["P_Cl"] * p["Cl_o"]
    return 1e3 * R * p["T"] / F * math.log(num / den)


@pytest.mark.parametrize("name", rpx.presets())
def test_preset_is_complete_sourced_and_in_domain(name: str) -> None:
    info = preset_info(name)
    assert tuple(info.values) == (*CORE, *PUMP_CALIBRATED)
    for k, v in info.values.items():
        rpx.PARAMS[k].contains(np.asarray(v)) or pytest.fail(f"{name}.{k}={v} outside domain")
        assert len(info.sources[k]) > 10, f"{name}.{k} has no source"
    assert info.V_range[0] < info.V_range[1]
    assert info.V_source


@pytest.mark.parametrize("name", rpx.presets())
def test_preset_voltage_lies_in_the_reported_range(name: str) -> None:
    info = preset_info(name)
    v = float(rpx.resting_potential(rpx.preset(name), model=info.V_model))
    assert info.V_range[0] <= v <= info.V_range[1], (name, v, info.V_range)


CALIBRATED = [
    n
    for n in rpx.presets()
    if any(s.startswith("calibrated") for s in preset_info(n).sources.values())
]


@pytest.mark.parametrize("name", CALIBRATED)
def test_calibrated_values_reproduce_the_middle_of_the_range(name: str) -> None:
    info = preset_info(name)
    p = dict(info.values)
    want = 0.5 * (info.V_range[0] + info.V_range[1])
    if info.sources["P_Cl"].startswith("calibrated"):
        assert _ghk_reference(p) == pytest.approx(want, abs=1e-9)
    if info.sources["P_Na"].startswith("calibrated"):
        # the mean of the passive and the pump-balanced (Mullins-Noda, r = 3/2) voltage
        assert p["P_Cl"] == p["P_Ca"] == 0.0
        mn = float(rpx.resting_potential(p | {"r_pump": 1.5}, model="mullins_noda"))
        assert 0.5 * (_ghk_reference(p) + mn) == pytest.approx(want, abs=1e-6)
    assert all(v >= 0 for k, v in info.values.items() if k != "z_X")


def test_some_presets_are_calibrated_and_say_so() -> None:
    ratio = {
        n for n in rpx.presets()
        if any(preset_info(n).sources[k].startswith("calibrated") for k in ("P_Na", "P_Cl"))
    }  # fmt: skip
    assert ratio == {
        "cardiac_ventricular_myocyte", "red_blood_cell", "astrocyte", "mammalian_skeletal_muscle"
    }  # fmt: skip
    for n in rpx.presets():
        assert preset_info(n).sources["I_pump_max"].startswith("calibrated")


@pytest.mark.parametrize("name", rpx.presets())
def test_pump_balances_the_leaks_at_the_preset_state(name: str) -> None:
    """3·I_pump = −I_Na and 2·I_pump = I_K at the Mullins–Noda voltage of the preset
    (rpx's closed form, independent of the calibration code); the fixed pump carries
    that current."""
    p = rpx.preset(name)
    V = float(rpx.resting_potential(p | {"r_pump": 1.5}, model="mullins_noda"))
    T = p["T"]
    I_na = float(rpx.ghk_current(V, p["P_Na"], p["Na_o"], p["Na_i"], 1, T))
    I_k = float(rpx.ghk_current(V, p["P_K"], p["K_o"], p["K_i"], 1, T))
    I_p = float(rpx.nak_pump_current(
        V, p["Na_i"], p["Na_o"], p["K_o"], p["I_pump_max"], 10.0, 1.5, T
    ))  # fmt: skip
    assert 3.0 * I_p == pytest.approx(-I_na, rel=1e-9)
    assert 2.0 * I_p == pytest.approx(I_k, rel=1e-9)
    assert p["I_pump_fixed"] == pytest.approx(I_p, rel=1e-9)


@pytest.mark.parametrize("name", rpx.presets())
def test_ghk_pump_voltage_lies_in_the_reported_range(name: str) -> None:
    info = preset_info(name)
    out = rpx.evaluate(rpx.preset(name), model="ghk_pump")
    assert int(out["status"]) == 0
    assert info.V_range[0] <= float(out["V"]) <= info.V_range[1], (name, float(out["V"]))
    if info.values["P_Cl"] == 0.0:  # then the ghk_pump voltage is the calibration voltage
        V = float(out["V"])
        I_na = float(rpx.ghk_current(V, info.values["P_Na"], info.values["Na_o"],
                                     info.values["Na_i"], 1, info.values["T"]))
        assert 3.0 * float(out["I_pump"]) == pytest.approx(-I_na, rel=1e-6)


@pytest.mark.parametrize("pump", ["kinetic", "fixed"])
@pytest.mark.parametrize("name", rpx.presets())
def test_pump_leak_reproduces_the_preset_within_20_percent(name: str, pump: str) -> None:
    info = preset_info(name)
    out = rpx.pump_leak_steady_state(rpx.preset(name), pump=pump)
    assert int(out["status"]) == 0, (name, pump, int(out["status"]))
    if info.sources["z_X"].startswith("not calibrated"):
        # The preset says why no steady state can reproduce it (red blood cell).
        assert "no pump-leak steady state reproduces" in info.sources["z_X"]
        pytest.skip(info.sources["z_X"])
    for ion in ("Na_i", "K_i"):
        assert float(out[ion]) == pytest.approx(info.values[ion], rel=0.2), (name, ion)
    assert info.V_range[0] <= float(out["V"]) <= info.V_range[1]


def test_squid_is_the_default_and_gives_about_minus_60_mV() -> None:
    assert rpx.preset("default") == rpx.preset("squid_axon")
    p = rpx.preset()
    assert p["P_Na"] / p["P_K"] == pytest.approx(0.04)
    assert p["P_Cl"] / p["P_K"] == pytest.approx(0.45)
    v = float(rpx.resting_potential(p))
    assert v == pytest.approx(_ghk_reference(p), abs=1e-4)
    assert -65.0 < v < -58.0


def test_unknown_preset_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown preset 'octopus'.*squid_axon"):
        rpx.preset("octopus")


def test_preset_returns_a_fresh_dict() -> None:
    p = rpx.preset("astrocyte")
    p["K_o"] = -1.0
    assert rpx.preset("astrocyte")["K_o"] == 5.0


def test_presets_are_calibrated_on_first_use_not_at_import() -> None:
    import subprocess
    import sys

    code = (
        "import sys, rpx.physics.presets as p\n"
        "assert not p._BUILT, p._BUILT\n"
        "names = p.presets()\n"
        "v = p.preset('mammalian_neuron')\n"
        "assert list(p._BUILT) == ['mammalian_neuron'], list(p._BUILT)\n"
        "assert p.preset_info('default') is p.preset_info('squid_axon')\n"
        "assert 'jax' not in sys.modules\n"
        "print(repr(sorted(v.items())), names)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    # the lazily built record is the one this process built: same values, bit for bit
    here = sorted(rpx.preset("mammalian_neuron").items())
    assert proc.stdout.strip() == f"{here!r} {rpx.presets()!r}"
    with pytest.raises(ValueError, match="unknown preset 'nope'; known presets: default, squid"):
        preset_info("nope")
