"""The parameter vocabulary: one table that defines every parameter once.

Validation messages, CF attributes on coordinates and variables, CLI flags, sweep
axis names, gradient names and fit parameter names are all derived from this table.
"""

from __future__ import annotations

import dataclasses
import math
import sys
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
    # 0 is allowed (ion-substitution experiments: Na-free, Ca-free, Cl-free solutions);
    # each model states which sums must stay positive (Model.positive).
    return Param(
        f"{ion}_{side}", "mM", f"{where} {ion} concentration", 0.0, 1e4, lo_open=False
    )


def _perm(ion: str) -> Param:
    return Param(
        f"P_{ion}", "cm/s", f"membrane permeability to {ion}", 0.0, 1.0, lo_open=False
    )


# ---------------------------------------------------------------------- unit guards
# Plausibility bounds that catch unit slips. Each is documented here and in the README.
#
# T: the lowest temperature at which a cell's water can be liquid is about 235 K
# (homogeneous ice nucleation of supercooled water); 200 K leaves margin below that and
# lies far above every Celsius value a user could mean (body 37, room 20, ice 0). So
# 0 < T < 200 K is refused with a hint that T is in kelvin.
#
# No other bound is used: a µM-for-mM slip of Ca_i (0.1 for 1e-4 mM) or a m/s-for-cm/s
# slip of a permeability (100x smaller) gives values inside ranges that real studies
# sweep (Ca loads, tiny leaks), so no bound would be defensible there.
T_PLAUSIBLE_MIN = 200.0


LUO_RUDY_1994 = (
    "Luo & Rudy 1994, Circ. Res. 74:1071 (I_NaK: 1.5 uA/cm^2, Km_Na_i 10 mM, Km_K_o 1.5 mM)"
)

LR94_CELLML = (
    "the CellML transcription in the pigreads package, docs/models/luo1994dynamic.rst"
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
        Param(
            "T", "K", "absolute temperature", T_PLAUSIBLE_MIN, 400.0, lo_open=False,
            log_scale=False,
        ),
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
        # Cation-chloride cotransporters of the pump-leak cell (rpx/physics/transporters.py).
        Param(
            "g_KCC2",
            "mS/cm^2",
            "KCC2 (K+:Cl- 1:1) cotransporter strength: rate per unit (E_Cl - E_K), as F times "
            "the cycle rate",
            0.0,
            1e3,
            lo_open=False,
            default=0.0,
            default_source=(
                "0 = no KCC2 (off by default, so the pump-leak cell is that of Kay 2017). Flux "
                "law j = g_KCC2 (E_K - E_Cl) as in Duesterwald et al. (bioRxiv 216150, 2017), "
                "code github.com/ChrisCurrin/multi-compartment_multi-anion compartment.py"
            ),
        ),
        Param(
            "g_NKCC1",
            "mS/cm^2",
            "NKCC1 (Na+:K+:Cl- 1:1:2) cotransporter strength: rate per unit "
            "(2 E_Cl - E_Na - E_K), as F times the cycle rate",
            0.0,
            1e3,
            lo_open=False,
            default=0.0,
            default_source=(
                "0 = no NKCC1 (off by default). Flux law: the log-ratio law of KCC2 "
                "(Duesterwald et al., bioRxiv 216150) applied to the 1:1:2 stoichiometry"
            ),
        ),
        # Na/Ca exchanger and plasma-membrane Ca2+ pump of the pump-leak cell
        # (rpx/physics/transporters.py). Values: Luo & Rudy 1994, Circ. Res. 74:1071, read
        # in the transcription of its CellML model in the pigreads package
        # (docs/models/luo1994dynamic.rst: K_NaCa = 20 uA/mm^2, K_mNa 87.5 mM, K_mCa 1.38
        # mM, K_sat 0.1, eta 0.35; I_pCa = 0.0115 uA/mm^2, K_mpCa = 0.0005 mM).
        Param(
            "I_NCX_max",
            "uA/cm^2",
            "Na/Ca exchanger (3 Na+ : 1 Ca2+) scale k_NaCa of the Luo-Rudy 1994 current "
            "(cycle rate times F)",
            0.0,
            1e6,
            lo_open=False,
            default=0.0,
            default_source=(
                "0 = no exchanger (off by default). Luo & Rudy 1994 (Circ. Res. 74:1071) use "
                f"2000 uA/cm^2 (K_NaCa = 20 uA/mm^2 in {LR94_CELLML})"
            ),
        ),
        Param(
            "Km_Na_NCX",
            "mM",
            "Na/Ca exchanger half-saturation by extracellular Na (K_m,Na)",
            0.0,
            1e4,
            default=87.5,
            default_source=f"Luo & Rudy 1994, Circ. Res. 74:1071 ({LR94_CELLML})",
        ),
        Param(
            "Km_Ca_NCX",
            "mM",
            "Na/Ca exchanger half-saturation by extracellular Ca (K_m,Ca)",
            0.0,
            1e4,
            default=1.38,
            default_source=f"Luo & Rudy 1994, Circ. Res. 74:1071 ({LR94_CELLML})",
        ),
        Param(
            "k_sat_NCX",
            "1",
            "Na/Ca exchanger saturation factor at negative potentials (k_sat)",
            0.0,
            1e3,
            lo_open=False,
            log_scale=False,
            default=0.1,
            default_source=f"Luo & Rudy 1994, Circ. Res. 74:1071 ({LR94_CELLML})",
        ),
        Param(
            "eta_NCX",
            "1",
            "Na/Ca exchanger voltage-dependence position (eta)",
            0.0,
            1.0,
            lo_open=False,
            log_scale=False,
            default=0.35,
            default_source=f"Luo & Rudy 1994, Circ. Res. 74:1071 ({LR94_CELLML})",
        ),
        Param(
            "I_PMCA_max",
            "uA/cm^2",
            "maximal plasma-membrane Ca2+ pump current density (Ca2+ charge out)",
            0.0,
            1e3,
            lo_open=False,
            default=0.0,
            default_source=(
                "0 = no Ca pump (off by default). Luo & Rudy 1994 (Circ. Res. 74:1071) use "
                f"1.15 uA/cm^2 for the sarcolemmal Ca pump (I_pCa = 0.0115 uA/mm^2 in "
                f"{LR94_CELLML})"
            ),
        ),
        Param(
            "Km_PMCA",
            "mM",
            "plasma-membrane Ca2+ pump half-activation by intracellular Ca",
            0.0,
            1e4,
            default=5e-4,
            default_source=f"Luo & Rudy 1994, Circ. Res. 74:1071: 0.5 uM ({LR94_CELLML})",
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
            "ecs_ratio",
            "1",
            "extracellular volume per reference cell volume (finite extracellular space of "
            "rpx.simulate; 0 = infinite bath)",
            0.0,
            1e6,
            lo_open=False,
            default=0.0,
            default_source=(
                "0 = infinite bath (off by default, as before). A finite space holds its own "
                "Na, K, Cl amounts; no default size is claimed"
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




class ParamTypeError(TypeError, ValueError):
    """A parameter value that is not a number (bool, string, None...).

    A ``TypeError``, and also a ``ValueError`` so that every caller that reports bad
    input (the command line: ``rpx: error: ...``, exit 2) reports it the same way.
    """


def _numeric_dtype(dt: np.dtype) -> bool:
    """Integer or real floating dtype (JAX's bfloat16 and float8 types included)."""
    return dt.kind in "iuf" or (dt.kind == "V" and "float" in dt.name)


def check_type(name: str, x: object) -> None:
    """Raise ``TypeError`` unless ``x`` is a number: a Python int or float, a numpy or JAX
    number, or an array (or nested list) of integer or real floating dtype.

    Refused, because converting them would give a silently wrong number: ``bool`` (True
    would be 1 mM), strings (``"5"``, ``"5 mM"``), ``None``, complex values and object
    arrays. Traced values are judged by their dtype.

    Raises:
        ParamTypeError: (a ``TypeError`` and a ``ValueError``) one line naming the
            parameter, the type given and what is allowed.
    """
    if x is None or isinstance(x, (bool, np.bool_, str, bytes)):
        bad = type(x).__name__
    elif isinstance(x, (int, float, np.integer, np.floating)):
        return
    else:
        dt = getattr(x, "dtype", None)
        if dt is None:
            try:
                dt = np.asarray(x).dtype
            except (TypeError, ValueError):  # ragged nested lists
                dt = np.dtype(object)
        if _numeric_dtype(np.dtype(dt)):
            return
        bad = f"{type(x).__name__} of dtype {np.dtype(dt).name}"
    unit = PARAMS[name].units if name in PARAMS else ""
    raise ParamTypeError(
        f"parameter {name} must be a number or a numeric array"
        + (f" (in {unit})" if unit else "")
        + f", got {bad} {_short_repr(x)}"
    )


def _short_repr(x: object) -> str:
    r = repr(x)
    r = " ".join(r.split())
    return r if len(r) <= 60 else r[:57] + "..."


def check_types(values: Mapping[str, object]) -> None:
    """:func:`check_type` of every value of ``values`` (name -> value)."""
    for name, x in values.items():
        check_type(name, x)


def _hint(name: str, first: float) -> str:
    """The unit-slip hint for ``name`` at ``first`` ('' when the value is not a slip)."""
    if name == "T" and math.isfinite(first) and first < T_PLAUSIBLE_MIN:
        return (
            f"T = {first:g} K is not a plausible temperature: T is in kelvin "
            f"({first:g} \N{DEGREE SIGN}C = {first + 273.15:g} K); allowed range "
            f"{PARAMS['T'].domain_str()}"
        )
    return ""


def _ok(name: str, x: np.ndarray | object, xp: object = np) -> object:
    """Elementwise: ``x`` inside the domain of ``name`` and its plausibility bound.

    Works for numpy arrays (``xp=np``) and JAX arrays (``xp=jax.numpy``, traced too).
    """
    p = param(name)
    above = x > p.lo if p.lo_open else x >= p.lo
    return above & (x <= p.hi) & xp.isfinite(x)


def check_values(name: str, x: object, dtype: object = None) -> None:
    """Raise ``ValueError`` if concrete values of parameter ``name`` lie outside its domain.

    The values are first cast to ``dtype`` (default: float64), so that a value that
    becomes 0 or inf in the working precision is judged as such. Temperatures below
    :data:`T_PLAUSIBLE_MIN` are refused with a hint that T is in kelvin.

    Raises:
        TypeError: ``x`` is not a number (see :func:`check_type`).
        ValueError: one line naming the parameter, the first offending value and the
            allowed range (plus the unit hint where one applies).
    """
    p = param(name)
    check_type(name, x)
    if _is_traced(x):
        return
    arr = np.asarray(x, dtype=np.float64 if dtype is None else dtype)
    if arr.dtype.kind not in "f":
        arr = arr.astype(np.float64)
    ok = _ok(name, arr)
    if not np.all(ok):
        bad = arr[~ok] if arr.ndim else arr
        first = float(np.ravel(bad)[0])
        hint = _hint(name, first) if first > 0 else ""
        if hint:
            raise ValueError(f"parameter {hint}")
        raise ValueError(
            f"parameter {name}={first!r} is outside its allowed range {p.domain_str()}"
            + ("" if math.isfinite(first) else " (values must be finite)")
            + (" (T is in kelvin)" if name == "T" else "")
        )


def _is_traced(x: object) -> bool:
    # Nothing is traced before JAX is imported; checking concrete values must not import
    # it (the command line validates its arguments before JAX loads).
    jax = sys.modules.get("jax")
    return jax is not None and isinstance(x, jax.core.Tracer)


def _float_dtype_of(x: object) -> object:
    dt = np.asarray(x).dtype if not _is_traced(x) else x.dtype  # type: ignore[union-attr]
    return dt if np.issubdtype(dt, np.floating) else np.float64


# ---------------------------------------------------------------- model domains
@dataclasses.dataclass(frozen=True)
class Positive:
    """A sum of products of parameters that a model needs to be > 0 at every point.

    Attributes:
        what: what the sum is (``"GHK numerator"``...), for the error message.
        terms: the products, each a tuple of parameter names. The sum is positive when
            some product has every factor >= the dtype's smallest normal number (XLA
            on CPU flushes subnormal numbers to zero, so they count as 0).
    """

    what: str
    terms: tuple[tuple[str, ...], ...]

    def expression(self) -> str:
        return " + ".join("\N{MIDDLE DOT}".join(t) for t in self.terms)

    def message(self) -> str:
        if len(self.terms) == 1:
            return f"{self.expression()} must be > 0 for this model ({self.what})"
        return f"{self.what} {self.expression()} is 0; at least one product must be > 0"


def _tiny(x: object) -> float:
    dt = _float_dtype_of(x)
    return float(np.finfo(dt).tiny)


def _model_checks(model: object) -> tuple[tuple[tuple[str, ...], ...], tuple[Positive, ...]]:
    nonzero = tuple(getattr(model, "nonzero", ()))
    positive = tuple(getattr(model, "positive", ()))
    return nonzero, positive


def _nonzero_message(group: tuple[str, ...]) -> str:
    return f"permeabilities {', '.join(group)} are all zero; at least one must be > 0"


def check_params(values: Mapping[str, object], model: object = None) -> None:
    """The one validation of concrete parameter values, used by every entry point.

    Checks each value against its parameter's domain and unit guard
    (:func:`check_values`, in the value's own floating dtype, so validate values *after*
    casting them to the working dtype), then the model's domain: its ``nonzero`` groups
    (at least one permeability > 0 at every point) and its :class:`Positive` sums (e.g.
    the numerator and denominator of the GHK voltage) at every point of the broadcast.

    Args:
        values: parameter name -> concrete array (any broadcastable shapes).
        model: a registered :class:`rpx.physics.models.Model` (or anything with
            ``nonzero`` and ``positive`` attributes), or None for per-name checks only.

    Raises:
        ValueError: one line naming the parameter or the sum and the allowed range.
    """
    for name, x in values.items():
        check_values(name, x, _float_dtype_of(x))
    if model is None:
        return
    arrays = {k: np.asarray(v) for k, v in values.items()}
    for ok, msg in _domain_checks(arrays, model, np)[len(arrays):]:
        if not np.all(ok):
            raise ValueError(msg)


def _domain_checks(
    values: Mapping[str, object], model: object, xp: object
) -> list[tuple[object, str]]:
    """``(elementwise ok, message)`` of every check of :func:`check_params`, in order."""
    checks: list[tuple[object, str]] = []
    for name, x in values.items():
        msg = f"parameter {name} is outside its allowed range {param(name).domain_str()}"
        if name == "T":
            msg += ": T is in kelvin (37 \N{DEGREE SIGN}C = 310.15 K)"
        checks.append((_ok(name, x, xp), msg))
    if model is None:
        return checks
    nonzero, positive = _model_checks(model)
    for group in nonzero:
        if all(g in values for g in group):
            any_pos = xp.zeros((), bool)
            for g in group:
                any_pos = any_pos | (values[g] > 0)
            checks.append((any_pos, _nonzero_message(group)))
    for pos in positive:
        if not all(n in values for t in pos.terms for n in t):
            continue
        acc = xp.zeros((), bool)
        for term in pos.terms:
            t = xp.ones((), bool)
            for n in term:
                t = t & (values[n] >= _tiny(values[n]))
            acc = acc | t
        checks.append((acc, pos.message()))
    return checks


def check_messages(names: object, model: object = None) -> tuple[str, ...]:
    """The message of each check of :func:`first_failed_check` for parameters ``names``."""
    dummy = {n: np.zeros((), np.float64) for n in names}
    return tuple(msg for _, msg in _domain_checks(dummy, model, np))


def first_failed_check(values: Mapping[str, object], model: object = None) -> object:
    """Traceable: the index of the first failed check of :func:`check_params`, or -1.

    One fused pass and one reduction over JAX arrays (already cast to the working
    dtype): each point carries the index of its first failed check (as a float32, exact
    for any number of checks here), and the minimum over points is the first check
    that fails anywhere. The messages are :func:`check_messages` of the same names, in
    the same order. Under ``jit`` use
    ``equinox.branched_error_if(x, i >= 0, jnp.maximum(i, 0), messages)``.
    """
    import jax.numpy as jnp

    vals = {k: jnp.asarray(v) for k, v in values.items()}
    oks = [ok for ok, _ in _domain_checks(vals, model, jnp)]
    if not oks:
        return jnp.asarray(-1, jnp.int32)
    n = jnp.float32(len(oks))
    code = n
    for i in reversed(range(len(oks))):
        code = jnp.where(oks[i], code, jnp.float32(i))
    first = jnp.min(code)
    return jnp.where(first == n, -1, first.astype(jnp.int32)).astype(jnp.int32)


def all_checks_pass(values: Mapping[str, object], model: object = None) -> object:
    """Traceable: True when every check of :func:`check_params` passes at every point.

    One fused pass and one boolean reduction, the cheapest form of the check for
    concrete inputs: the host names the failed check (:func:`check_params`) only when
    this is False.
    """
    import jax.numpy as jnp

    vals = {k: jnp.asarray(v) for k, v in values.items()}
    ok = jnp.ones((), bool)
    for o, _ in _domain_checks(vals, model, jnp):
        ok = ok & o
    return jnp.all(ok)


def params_ok(values: Mapping[str, object], model: object = None) -> object:
    """Traceable: boolean array of the broadcast shape of ``values``, True where every
    check of :func:`check_params` passes (for masking points instead of raising)."""
    import jax.numpy as jnp

    vals = {k: jnp.asarray(v) for k, v in values.items()}
    oks = [ok for ok, _ in _domain_checks(vals, model, jnp)]
    shape = jnp.broadcast_shapes(*(jnp.shape(o) for o in oks)) if oks else ()
    out = jnp.ones(shape, bool)
    for o in oks:
        out = out & o
    return out


def guard_traced(values: Mapping[str, object], model: object = None) -> dict[str, object]:
    """``values`` with one ``equinox.branched_error_if`` attached: under ``jit`` a value
    outside the domain (see :func:`check_params`) raises at run time with its message."""
    import equinox as eqx
    import jax.numpy as jnp

    i = first_failed_check(values, model)
    messages = check_messages(values, model)
    return eqx.branched_error_if(dict(values), i >= 0, jnp.maximum(i, 0), messages)


def validate(values: Mapping[str, object], model: object = None) -> dict[str, object]:
    """Check ``values`` (already in the working dtype): concrete ones with
    :func:`check_params` (raises ``ValueError`` now), traced ones with one fused
    :func:`guard_traced`. Returns the values (guarded where traced)."""
    values = dict(values)
    if any(_is_traced(v) for v in values.values()):
        check_params({k: v for k, v in values.items() if not _is_traced(v)})
        return guard_traced(values, model)
    check_params(values, model)
    return values


# ------------------------------------------------------------ formula functions
def _vocabulary_args(fn: object, args: tuple, kwargs: Mapping[str, object]) -> dict:
    """The arguments of a call ``fn(*args, **kwargs)`` named like parameters (T, K_o...)."""
    import inspect

    bound = inspect.signature(fn).bind(*args, **kwargs)  # type: ignore[arg-type]
    return {k: v for k, v in bound.arguments.items() if k in PARAMS}


def check_formula_args(fn: object, args: tuple, kwargs: Mapping[str, object]) -> None:
    """Host check of the concrete arguments of a formula call that are named like a
    parameter (``T`` of :func:`rpx.nernst`, every argument of :func:`rpx.ghk_voltage`...):
    the same domains and unit guard as :func:`check_params`. Traced ones are skipped
    (see :func:`guard_formula_result`)."""
    import inspect

    bound = inspect.signature(fn).bind(*args, **kwargs)  # type: ignore[arg-type]
    for name, x in bound.arguments.items():
        if name not in PARAMS:
            check_type(name, x)
        elif not _is_traced(x):
            check_values(name, x, _float_dtype_of(x))


def guard_formula_result(out: object, fn: object, args: tuple, kwargs: Mapping) -> object:
    """``out`` with one ``equinox.branched_error_if`` on the traced parameter-named
    arguments of the call (under the caller's ``jit``); ``out`` unchanged otherwise."""
    traced = {k: v for k, v in _vocabulary_args(fn, args, kwargs).items() if _is_traced(v)}
    if not traced:
        return out
    import equinox as eqx
    import jax.numpy as jnp

    i = first_failed_check(traced)
    return eqx.branched_error_if(out, i >= 0, jnp.maximum(i, 0), check_messages(traced))
