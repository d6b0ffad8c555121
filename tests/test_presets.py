"""Presets: complete, inside the parameter domains, sourced, and landing in their reported range."""

from __future__ import annotations

import math

import numpy as np
import pytest

import rpx
from rpx.physics.presets import CORE, preset_info

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
    assert tuple(info.values) == CORE
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
    want = 0.5 * (info.V_range[0] + info.V_range[1])
    assert _ghk_reference(dict(info.values)) == pytest.approx(want, abs=1e-9)
    assert all(v >= 0 for v in info.values.values() if v is not None)


def test_some_presets_are_calibrated_and_say_so() -> None:
    assert set(CALIBRATED) == {"cardiac_ventricular_myocyte", "red_blood_cell", "astrocyte"}


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
