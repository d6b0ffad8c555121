"""The parameter vocabulary: one table that defines every parameter once.

Validation messages, CF attributes on coordinates and variables, CLI flags, sweep
axis names, gradient names and fit parameter names are all derived from this table.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import numpy as np


@dataclasses.dataclass(frozen=True)
class Param:
    """One parameter of the vocabulary.

    Attributes:
        name: the flat name used everywhere (``K_o``, ``P_Na``...).
        units: unit string written into stored ``units`` attributes.
        long_name: human-readable description (``long_name`` attribute).
        lo, hi: physical domain; values must satisfy ``lo < x <= hi`` when
            ``lo_open`` (the default), else ``lo <= x <= hi``.
        lo_open: whether the lower bound is excluded.
        log_scale: whether the parameter is naturally swept on a log axis.
        default: value used when neither the caller nor the preset gives one (for
            model-specific parameters that presets do not list), or None.
        default_source: where ``default`` comes from.
    """

    name: str
    units: str
    long_name: str
    lo: float
    hi: float
    lo_open: bool = True
    log_scale: bool = True
    default: float | None = None
    default_source: str = ""

    def domain_str(self) -> str:
        left = "(" if self.lo_open else "["
        return f"{left}{self.lo:g}, {self.hi:g}] {self.units}"

    def contains(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        above = x > self.lo if self.lo_open else x >= self.lo
        return above & (x <= self.hi) & np.isfinite(x)


def _conc(ion: str, side: str) -> Param:
    where = "extracellular" if side == "o" else "intracellular"
    return Param(f"{ion}_{side}", "mM", f"{where} {ion} concentration", 0.0, 1e4)


def _perm(ion: str) -> Param:
    return Param(
        f"P_{ion}", "cm/s", f"membrane permeability to {ion}", 0.0, 1.0, lo_open=False
    )


LUO_RUDY_1994 = (
    "Luo & Rudy 1994, Circ. Res. 74:1071 (I_NaK: 1.5 uA/cm^2, Km_Na_i 10 mM, Km_K_o 1.5 mM)"
)

PARAMS: dict[str, Param] = {
    p.name: p
    for p in [
        _conc("K", "o"),
        _conc("K", "i"),
        _conc("Na", "o"),
        _conc("Na", "i"),
        _conc("Cl", "o"),
        _conc("Cl", "i"),
        _conc("Ca", "o"),
        _conc("Ca", "i"),
        _perm("K"),
        _perm("Na"),
        _perm("Cl"),
        _perm("Ca"),
        Param("T", "K", "absolute temperature", 0.0, 400.0, log_scale=False),
        Param(
            "I_pump_max",
            "uA/cm^2",
            "maximal Na/K-ATPase current density",
            0.0,
            1e3,
            lo_open=False,
            default=1.5,
            default_source=LUO_RUDY_1994,
        ),
        Param(
            "Km_Na_i",
            "mM",
            "Na/K pump half-activation by intracellular Na",
            0.0,
            1e4,
            default=10.0,
            default_source=LUO_RUDY_1994,
        ),
        Param(
            "Km_K_o",
            "mM",
            "Na/K pump half-activation by extracellular K",
            0.0,
            1e4,
            default=1.5,
            default_source=LUO_RUDY_1994,
        ),
        Param(
            "r_pump",
            "1",
            "Na/K pump coupling ratio (Na out per K in)",
            0.0,
            10.0,
            log_scale=False,
            default=1.5,
            default_source="3 Na+ out per 2 K+ in (Mullins & Noda 1963, J. Gen. Physiol. 47:117)",
        ),
        # Pump–leak model (rpx/physics/pump_leak.py, rpx/physics/simulate.py).
        Param(
            "z_X",
            "1",
            "mean charge number of the intracellular impermeant solutes",
            -10.0,
            0.0,
            lo_open=False,
            log_scale=False,
            default=-1.0,
            default_source=(
                "Kay & Blaustein 2019, J. Gen. Physiol. 151:407, Fig. 3 (pump-leak steady "
                "states after Kay 2017, Front. Cell Dev. Biol. 5:41, with z = -1); also "
                "Keener & Sneyd, Mathematical Physiology 3rd ed., ch. 2 code pump_leak_ex.m"
            ),
        ),
        Param(
            "X_content",
            "mM",
            "intracellular impermeant solute content, as its concentration at the reference "
            "cell volume",
            0.0,
            1e4,
            default=100.0,
            default_source=(
                "no literature source: a round number; it only sets the unit of the relative "
                "volume output (steady-state concentrations and V do not depend on it)"
            ),
        ),
        Param(
            "X_o",
            "mM",
            "extracellular uncharged impermeant osmolyte (e.g. sucrose, mannitol)",
            0.0,
            1e4,
            lo_open=False,
            log_scale=False,
            default=0.0,
            default_source="none added (plain saline); no literature value needed",
        ),
        Param(
            "I_pump_fixed",
            "uA/cm^2",
            "fixed Na/K pump current density (cycle rate times F; 3 Na out, 2 K in per cycle)",
            0.0,
            1e3,
            lo_open=False,
            default=1.5,
            default_source=(
                "no literature source for a fixed cycle rate: equal to the default I_pump_max "
                "(Luo & Rudy 1994, Circ. Res. 74:1071)"
            ),
        ),
        Param(
            "P_f",
            "cm/s",
            "osmotic water permeability of the membrane",
            0.0,
            1.0,
            default=0.02,
            default_source=(
                "human red cell, 23 C: Pf = 2.0e-2 cm/s (J. Gen. Physiol. 81:213, 1983, "
                "'Osmotic water permeability of the human red cell')"
            ),
        ),
        Param(
            "vol_area",
            "cm",
            "reference cell volume per membrane area",
            0.0,
            1.0,
            default=6.96e-5,
            default_source=(
                "human red cell at 300 mosmol: volume 94 um^3, area 135 um^2 (Evans & Fung "
                "1972, Microvasc. Res. 4:335, as tabulated at "
                "people.hofstra.edu/sina_y_rabbany/engg81/RBCreference.html)"
            ),
        ),
    ]
}

# Ion properties: valence of each ion in the vocabulary.
VALENCE: dict[str, int] = {"K": 1, "Na": 1, "Cl": -1, "Ca": 2}


def param(name: str) -> Param:
    """Look up a parameter by name; unknown names raise ``ValueError`` listing the vocabulary."""
    try:
        return PARAMS[name]
    except KeyError:
        raise ValueError(
            f"unknown parameter {name!r}; known parameters: {', '.join(PARAMS)}"
        ) from None


def attrs(name: str) -> dict[str, str]:
    """CF-style attributes (``units``, ``long_name``) of a parameter."""
    p = param(name)
    return {"units": p.units, "long_name": p.long_name}


def check_names(names: Mapping[str, object] | list[str], allowed: list[str] | None = None) -> None:
    """Raise ``ValueError`` for any name that is not in the vocabulary (or in ``allowed``)."""
    for name in names:
        param(name)
        if allowed is not None and name not in allowed:
            raise ValueError(
                f"parameter {name!r} is not used here; allowed: {', '.join(allowed)}"
            )


def check_values(name: str, x: object) -> None:
    """Raise ``ValueError`` if concrete values of parameter ``name`` lie outside its domain."""
    p = param(name)
    arr = np.asarray(x, dtype=np.float64)
    ok = p.contains(arr)
    if not np.all(ok):
        bad = arr[~ok] if arr.ndim else arr
        first = float(np.ravel(bad)[0])
        raise ValueError(
            f"parameter {name}={first!r} is outside its allowed range {p.domain_str()}"
            + ("" if math.isfinite(first) else " (values must be finite)")
        )
