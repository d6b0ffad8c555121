"""The ``models`` command: every built-in model with its parameters and outputs.

Answers without importing JAX: the listing comes from :data:`CATALOG`, a plain copy of
the model registry's metadata (names, parameters, outputs with units) that
``tests/test_cli.py`` compares with the registry itself, so the two cannot drift apart.
Parameter units, ranges and defaults come from the JAX-free parameter table.
"""

from __future__ import annotations

import argparse
from typing import NamedTuple

from rpx.physics.params import PARAMS


class ModelInfo(NamedTuple):
    """What ``rpx models`` shows of one model."""

    description: str
    params: tuple[str, ...]
    outputs: dict[str, tuple[str, str]]  # name -> (units, long_name)


_V = ("mV", "resting membrane potential (V_in - V_out)")
_PASSIVE = (
    "K_o", "K_i", "Na_o", "Na_i", "Cl_o", "Cl_i", "Ca_o", "Ca_i", "P_K", "P_Na", "P_Cl", "P_Ca",
)  # fmt: skip


def _pump_leak_outputs() -> dict[str, tuple[str, str]]:
    def conc(ion: str) -> tuple[str, str]:
        return ("mM", f"intracellular {ion} concentration at the pump-leak steady state")

    return {
        "V": _V,
        "Na_i": conc("Na"),
        "K_i": conc("K"),
        "Cl_i": conc("Cl"),
        "X_i": conc("impermeant solute"),
        "volume": ("1", "cell volume relative to the volume at which X_i equals X_content"),
        "I_pump": ("uA/cm^2", "Na/K pump current density (cycle rate times F)"),
        "E_Na": ("mV", "Nernst potential of Na at the pump-leak steady state"),
        "E_K": ("mV", "Nernst potential of K at the pump-leak steady state"),
        "E_Cl": ("mV", "Nernst potential of Cl at the pump-leak steady state (GABA_A reversal "
                 "if Cl only)"),
        "J_KCC2": ("uA/cm^2", "KCC2 outward K+ and Cl- transport at the pump-leak steady state "
                   "(cycle rate times F)"),
        "J_NKCC1": ("uA/cm^2", "NKCC1 outward transport at the pump-leak steady state (cycle "
                    "rate times F; one Na+, one K+, two Cl- per cycle)"),
        "Ca_i": conc("Ca"),
        "E_Ca": ("mV", "Nernst potential of Ca at the pump-leak steady state"),
        "I_Ca": ("uA/cm^2", "Ca2+ leak current density (GHK, P_Ca) at the pump-leak steady "
                 "state"),
        "I_NCX": ("uA/cm^2", "Na/Ca exchanger current density at the pump-leak steady state "
                  "(outward: 3 Na+ out, 1 Ca2+ in per cycle)"),
        "I_PMCA": ("uA/cm^2", "plasma-membrane Ca2+ pump current density at the pump-leak "
                   "steady state"),
        "status": ("1", "pump-leak steady-state status"),
    }


_PUMP_LEAK = ("K_o", "Na_o", "Cl_o", "P_K", "P_Na", "T", "z_X", "X_content", "X_o")
_TRANSPORTERS = (
    "P_Cl", "g_KCC2", "g_NKCC1", "Ca_o", "P_Ca", "I_NCX_max", "I_PMCA_max", "Km_Na_NCX",
    "Km_Ca_NCX", "k_sat_NCX", "eta_NCX", "Km_PMCA",
)  # fmt: skip

CATALOG: dict[str, ModelInfo] = {
    "ghk": ModelInfo(
        "passive GHK voltage of K, Na, Cl and Ca (closed form)",
        (*_PASSIVE, "T"),
        {"V": _V},
    ),
    "ghk_pump": ModelInfo(
        "zero total current: GHK K, Na, Cl, Ca plus the Luo–Rudy Na/K-ATPase",
        (*_PASSIVE, "I_pump_max", "Km_Na_i", "Km_K_o", "T"),
        {
            "V": _V,
            "I_pump": ("uA/cm^2", "Na/K-ATPase current density at rest"),
            "status": ("1", "solver status"),
        },
    ),
    "mullins_noda": ModelInfo(
        "Mullins–Noda pump-balance steady state (K and Na, coupling ratio r_pump)",
        ("K_o", "K_i", "Na_o", "Na_i", "P_K", "P_Na", "r_pump", "T"),
        {"V": _V},
    ),
    "pump_leak": ModelInfo(
        "pump-leak steady state (Luo–Rudy Na/K-ATPase): Na_i, K_i, Cl_i, V and cell volume",
        (*_PUMP_LEAK, "I_pump_max", "Km_Na_i", "Km_K_o", *_TRANSPORTERS),
        _pump_leak_outputs(),
    ),
    "pump_leak_fixed": ModelInfo(
        "pump-leak steady state with a fixed pump current: Na_i, K_i, Cl_i, V, cell volume",
        (*_PUMP_LEAK, "I_pump_fixed", *_TRANSPORTERS),
        _pump_leak_outputs(),
    ),
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models", help="list the models with their parameters and outputs",
        description="List the built-in models; with a NAME, every parameter (units, allowed "
        "range, default) and every output (units, meaning) of that model.",
    )
    p.add_argument("name", nargs="?", help="show one model in detail")
    p.set_defaults(func=_models)


def _models(args: argparse.Namespace) -> int:
    if args.name is None:
        for name, info in CATALOG.items():
            print(f"{name:<16} {info.description}")
            print(f"{'':<16}   parameters: {' '.join(info.params)}")
            print(f"{'':<16}   outputs:    {' '.join(info.outputs)}")
        print("\n`rpx models NAME` shows units, ranges and defaults.")
        return 0
    if args.name not in CATALOG:
        raise ValueError(f"unknown model {args.name!r}; known models: {', '.join(CATALOG)}")
    info = CATALOG[args.name]
    print(f"{args.name}: {info.description}")
    print("parameters (allowed range with units):")
    for k in info.params:
        p = PARAMS[k]
        default = "" if p.default is None else f"default {p.default:g}"
        print(f"  {k:<11} {p.domain_str():<22} {default:<14} {p.long_name}")
    print("outputs:")
    for k, (units, long_name) in info.outputs.items():
        print(f"  {k:<11} {units:<8} {long_name}")
    print("Parameters without a default come from a preset (`rpx presets`).")
    return 0
