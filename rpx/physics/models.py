"""The model registry with every built-in model: each a pure function ``params -> outputs``
plus metadata.

The sweep engine, sensitivity analysis and fitting only ever see :class:`Model`
objects, so adding a model is one function plus one :func:`register` call. The types
and the registry itself live in :mod:`rpx.physics.registry`, which the pump–leak models
import to register themselves (so they never import this module: no import circle);
:func:`get_model` and :func:`models` load them on first use.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax.numpy as jnp
from jax import Array, lax

from rpx.physics import formulas as phys
from rpx.physics.params import VALENCE, Positive
from rpx.physics.registry import _REGISTRY, STATUS_OUT, V_OUT, Model, Output, register
from rpx.physics.roots import increasing_root, mask_outputs

Params = Mapping[str, Array]


def _register_builtins() -> None:
    """Register the built-in models defined in other modules (the pump–leak models), so
    that the registry is complete however rpx was imported (``import rpx`` is lazy)."""
    import rpx.physics.pump_leak  # noqa: F401  (registers pump_leak, pump_leak_fixed)


def get_model(name: str | Model) -> Model:
    """Look up a registered model; unknown names raise ``ValueError`` listing the known ones."""
    if isinstance(name, Model):
        return name
    if name not in _REGISTRY:
        _register_builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown model {name!r}; known models: {', '.join(sorted(_REGISTRY))}"
        ) from None


def models() -> list[str]:
    """Names of all registered models."""
    _register_builtins()
    return sorted(_REGISTRY)


IONS = tuple(VALENCE)
CONCENTRATIONS = tuple(f"{ion}_{side}" for ion in IONS for side in ("o", "i"))
PERMEABILITIES = tuple(f"P_{ion}" for ion in IONS)
PUMP = ("I_pump_max", "Km_Na_i", "Km_K_o")


def equilibrium_potentials(p: Params) -> dict[str, Array]:
    """Nernst potentials ``E_K, E_Na, E_Cl, E_Ca`` (mV) of every ion in ``p``."""
    return {
        f"E_{ion}": phys.nernst(p[f"{ion}_o"], p[f"{ion}_i"], z, p["T"])
        for ion, z in VALENCE.items()
    }


def ion_currents(p: Params, V: Array) -> dict[str, Array]:
    """GHK current densities ``I_K, I_Na, I_Cl, I_Ca`` (uA/cm^2, outward +) at voltage V."""
    return {
        f"I_{ion}": phys.ghk_current(V, p[f"P_{ion}"], p[f"{ion}_o"], p[f"{ion}_i"], z, p["T"])
        for ion, z in VALENCE.items()
    }


DERIVED_PARAMS: dict[str, tuple[str, ...]] = {
    **{f"E_{ion}": (f"{ion}_o", f"{ion}_i", "T") for ion in IONS},
    **{f"I_{ion}": (f"P_{ion}", f"{ion}_o", f"{ion}_i", "T") for ion in IONS},
}


def derived_output_meta() -> dict[str, Output]:
    """Metadata of the optional outputs: Nernst potentials and ion currents at rest."""
    meta = {f"E_{ion}": Output("mV", f"Nernst equilibrium potential of {ion}") for ion in IONS}
    meta |= {
        f"I_{ion}": Output("uA/cm^2", f"GHK {ion} current density at rest (outward +)")
        for ion in IONS
    }
    return meta


# ------------------------------------------------------------------- model domains
GHK_NUMERATOR = Positive(
    "GHK numerator", (("P_K", "K_o"), ("P_Na", "Na_o"), ("P_Cl", "Cl_i"), ("P_Ca", "Ca_o"))
)
GHK_DENOMINATOR = Positive(
    "GHK denominator", (("P_K", "K_i"), ("P_Na", "Na_i"), ("P_Cl", "Cl_o"), ("P_Ca", "Ca_i"))
)
MN_NUMERATOR = Positive("Mullins-Noda numerator", (("P_K", "K_o"), ("P_Na", "Na_o")))
MN_DENOMINATOR = Positive("Mullins-Noda denominator", (("P_K", "K_i"), ("P_Na", "Na_i")))


# ------------------------------------------------------------------------------ models
def _passive_args(p: Params) -> dict[str, Array]:
    return {k: p[k] for k in (*CONCENTRATIONS, *PERMEABILITIES, "T")}


def ghk(p: Params) -> dict[str, Array]:
    """Passive K, Na, Cl and Ca: zero of the summed GHK currents (closed form)."""
    return {"V": phys.ghk_voltage(**_passive_args(p))}


def mullins_noda(p: Params) -> dict[str, Array]:
    """Mullins–Noda pump-balance steady state."""
    keys = ("K_o", "K_i", "Na_o", "Na_i", "P_K", "P_Na", "r_pump", "T")
    return {"V": phys.mullins_noda_voltage(**{k: p[k] for k in keys})}


def _ghk_plain_points(p: Params) -> Array:
    """Where :func:`ghk`'s closed form (and :func:`ghk_pump`'s bracket) is exact in plain
    arithmetic."""
    # the 13 arguments of ghk_voltage, in its order (that of _passive_args)
    return phys.ghk_voltage_plain_points(*_passive_args(p).values())


def _mullins_noda_plain_points(p: Params) -> Array:
    keys = ("K_o", "K_i", "Na_o", "Na_i", "P_K", "P_Na", "r_pump", "T")
    return phys.mullins_noda_plain_points(*(p[k] for k in keys))


def pump_current(p: Params, V: Array) -> Array:
    """Luo–Rudy Na/K-ATPase current density (uA/cm^2) at voltage V for parameters ``p``."""
    return phys.nak_pump_current(
        V, p["Na_i"], p["Na_o"], p["K_o"], p["I_pump_max"], p["Km_Na_i"], p["Km_K_o"], p["T"]
    )


def total_current(V: Array, p: Params) -> Array:
    """Sum of the four GHK currents and the pump current (uA/cm^2, outward +)."""
    currents = ion_currents(p, V)
    return sum(currents.values()) + pump_current(p, V)


def ghk_pump(p: Params) -> dict[str, Array]:
    """Zero of GHK currents plus the Na/K-ATPase current, by a bracketed Newton solve.

    The total current increases strictly with V. At the passive GHK voltage the pump
    current is >= 0, which gives the upper end of the bracket; the lower end is found by
    stepping down. Gradients come from the implicit function theorem.
    """
    theta = {k: p[k] for k in (*CONCENTRATIONS, *PERMEABILITIES, *PUMP, "T")}
    # Only V is carried at full size through the solver loops; parameters keep their
    # own (broadcastable) shapes, which saves memory traffic on grids.
    shape = jnp.broadcast_shapes(*(jnp.shape(v) for v in theta.values()))
    # the bracket carries no derivative (the root's comes from the implicit function)
    hi = jnp.broadcast_to(phys.ghk_voltage(**_passive_args(lax.stop_gradient(theta))), shape)
    V, status = increasing_root(total_current, theta, hi, step=50.0)
    out = mask_outputs(status == 0, {"V": V, "I_pump": pump_current(theta, V)}, theta)
    return out | {"status": status}


register(
    Model(
        "ghk",
        ghk,
        (*CONCENTRATIONS, *PERMEABILITIES, "T"),
        {"V": V_OUT},
        "passive GHK voltage of K, Na, Cl and Ca (closed form)",
        nonzero=(PERMEABILITIES,),
        positive=(GHK_NUMERATOR, GHK_DENOMINATOR),
        plain_points=_ghk_plain_points,
        plain_monotone=True,
        closed_form=True,
    )
)
register(
    Model(
        "mullins_noda",
        mullins_noda,
        ("K_o", "K_i", "Na_o", "Na_i", "P_K", "P_Na", "r_pump", "T"),
        {"V": V_OUT},
        "Mullins–Noda pump-balance steady state (K and Na, coupling ratio r_pump)",
        nonzero=(("P_K", "P_Na"),),
        positive=(MN_NUMERATOR, MN_DENOMINATOR),
        plain_points=_mullins_noda_plain_points,
        plain_monotone=True,
        closed_form=True,
    )
)
register(
    Model(
        "ghk_pump",
        ghk_pump,
        (*CONCENTRATIONS, *PERMEABILITIES, *PUMP, "T"),
        {
            "V": V_OUT,
            "I_pump": Output("uA/cm^2", "Na/K-ATPase current density at rest"),
            "status": STATUS_OUT,
        },
        "zero total current: GHK K, Na, Cl, Ca plus the Luo–Rudy Na/K-ATPase",
        nonzero=(PERMEABILITIES,),
        positive=(GHK_NUMERATOR, GHK_DENOMINATOR),
        plain_points=_ghk_plain_points,
        plain_monotone=True,
    )
)
