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
        ),
        Param("Km_Na_i", "mM", "Na/K pump half-activation by intracellular Na", 0.0, 1e4),
        Param("Km_K_o", "mM", "Na/K pump half-activation by extracellular K", 0.0, 1e4),
        Param(
            "r_pump",
            "1",
            "Na/K pump coupling ratio (Na out per K in)",
            0.0,
            10.0,
            log_scale=False,
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
