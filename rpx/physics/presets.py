"""Parameter presets: literature cells, every number with the source it was taken from.

A preset fixes the thirteen core parameters (``K_o … P_Ca, T``) and, by calibration,
the pump scale ``I_pump_max``, the fixed pump current ``I_pump_fixed`` and the mean
charge ``z_X`` of the impermeant solutes, so that pump and leaks balance at the preset's
own concentrations (see :func:`_calibrate_pump`). The other pump and pump–leak
parameters come from the parameter table's defaults (:mod:`rpx.physics.params`) unless
a caller overrides them.

Where no measured value could be traced, the preset says so in its ``sources`` entry:

* **derived**: computed from other sourced numbers by a stated formula;
* **calibrated**: one number solved from a stated condition, a documented fit of one
  number to one measurement or balance, never a free guess; ``tests/test_presets.py``
  recomputes every calibration:

  - a permeability ratio, so that the passive GHK voltage (``calibrate="P_Cl"``) or the
    mean of the passive and the pump-balanced voltage (``calibrate="P_Na"``) equals the
    middle of the resting-potential range the source reports;
  - ``I_pump_max`` (every preset): the Luo–Rudy pump's Na+ efflux balances the Na+ leak,
    3·I_pump = −I_Na, and its K+ influx the K+ leak, 2·I_pump = I_K, at the preset's own
    concentrations (pump constants Km_Na_i, Km_K_o of the table). Both hold at the zero
    of I_K + (2/3)·I_Na (Mullins–Noda); where P_Cl = 0 this is the ``ghk_pump``
    voltage. The leaks' absolute scale (the squid P_K for most presets) thereby sets the
    pump's, so pump and leaks agree;
  - ``I_pump_fixed``: the calibrated pump's current at that state;
  - ``z_X``: the pump–leak electroneutrality and osmotic balance hold at that voltage
    with the preset's Na_i and K_i and Cl− in equilibrium (Cl_i = Cl_o·e^(FV/RT)), in a
    bath without added osmolyte (``X_o = 0``). Where that needs a z_X outside [-10, 0]
    (the red blood cell) the source entry of z_X says why;
* **assumed**: a value with no source, stated as such (e.g. P_Ca = 0 at rest).

Sources that are web pages are named by their address; they reproduce tables of the
primary literature named beside them.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from types import MappingProxyType

from rpx.physics.constants import MV_PER_V, F, R
from rpx.physics.params import PARAMS

CORE = (
    "K_o", "K_i", "Na_o", "Na_i", "Cl_o", "Cl_i", "Ca_o", "Ca_i",
    "P_K", "P_Na", "P_Cl", "P_Ca", "T",
)  # fmt: skip
# Calibrated for every preset (see the module docstring).
PUMP_CALIBRATED = ("I_pump_max", "I_pump_fixed", "z_X")


@dataclasses.dataclass(frozen=True)
class PresetInfo:
    """One preset: values, the source of each value, and the resting potential reported.

    Attributes:
        name: registry key (``"squid_axon"`` ...).
        description: one line for listings.
        values: parameter name -> value (units of :data:`rpx.PARAMS`).
        sources: parameter name -> where the value comes from.
        V_range: (low, high) resting potential the source reports (mV).
        V_source: where ``V_range`` comes from.
        V_model: the model whose voltage the preset is checked against.
    """

    name: str
    description: str
    values: MappingProxyType
    sources: MappingProxyType
    V_range: tuple[float, float]
    V_source: str
    V_model: str = "ghk"


# ------------------------------------------------------------------------- sources
JVEGH = (
    "jvegh.github.io/Dynamic-Abstract-Neural-Computing, manual sec. "
    "'Physiology-DerivingRestingPotential', Table 3.1 (data from Table 2.1 of its ref. [2])"
)
KOOLSTRA = (
    "jkoolstr.home.xs4all.nl/fysio/bioelectriciteit_1_26.html (GHK example for a "
    "mammalian neuron: K 5/140 mM, Na 145/10 mM, P_K:P_Na = 1:0.04, P_Cl ~ 0, Em ~ -70 mV)"
)
HK1949 = "Hodgkin & Katz 1949, J. Physiol. 108:37 (P_K:P_Na:P_Cl = 1:0.04:0.45 at rest)"
HH1959 = "Hodgkin & Horowicz 1959, J. Physiol. 148:127 (P_Na/P_K = 0.01 in frog muscle)"
LR1991 = (
    "Luo & Rudy 1991, Circ. Res. 68:1501, parameters as in ModelDB 64171 file "
    "LR_test/LR1_test.ode (Nao 140, Nai 18, Ko 5.4, Ki 145, Cao 1.8, Cai0 2e-4 mM, T 310 K)"
)
CA_TYPICAL = (
    "resting free cytosolic Ca2+ ~100 nM, extracellular 1-2 mM (www.frage.de page "
    "'ruhemembranpotential-konzentrationen-ionen'); no cell-specific free value traced"
)
RAT_SOLEUS_NA = (
    "rat soleus fibres in situ, pre-stimulation [Na+]i 14 mM with double-barrelled "
    "Na-sensitive microelectrodes (J. Physiol. 2024, 602:3469, PubMed 38877870, abstract)"
)
GENERIC_CELL = f"{JVEGH}, row 'Mammalian cell' (no cell-type-specific value traced)"
SQUID_PK = (
    "derived: P_K = M / (K_i * u / (1 - e^-u)), u = FV/RT, from the resting K efflux "
    "M = 20-40 (mid 30) pmol/cm^2/s of Hodgkin & Keynes 1955, J. Physiol. 128:61 "
    "(Sepia giant axon), K_i = 400 mM, V = -62 mV, 20 C; rounded to 2 digits"
)
PK_SCALE = (
    "no cell-specific absolute value traced: the squid value (3.3e-7 cm/s, derived) "
    "sets the scale; only ratios matter for the ghk and mullins_noda models"
)
P_CA_ZERO = "assumed 0: no resting Ca2+ permeability traced (ghk then uses the closed form)"
BODY_T = "37 C, mammalian body temperature"
CL_EXCLUDED = "0 as in the source's GHK example (Cl- treated as passively distributed)"


def _vt(T: float) -> float:
    return R * MV_PER_V / F * T


def _ghk_current(V: float, P: float, c_out: float, c_in: float, z: int, T: float) -> float:
    """GHK current density (uA/cm^2), plain floats (the calibrations run at import)."""
    u = z * V / _vt(T)
    if abs(u) < 1e-9:
        return P * z * F * (c_in - c_out)
    return P * z * F * u * (c_in - c_out * math.exp(-u)) / -math.expm1(-u)


def _pump_per_unit(V: float, v: dict[str, float]) -> float:
    """Luo–Rudy pump current per unit I_pump_max at V (table's Km_Na_i and Km_K_o)."""
    w = V / _vt(v["T"])
    sigma = math.expm1(v["Na_o"] / 67.3) / 7.0
    f = 1.0 / (1.0 + 0.1245 * math.exp(-0.1 * w) + 0.0365 * sigma * math.exp(-w))
    km_na, km_k = PARAMS["Km_Na_i"].default, PARAMS["Km_K_o"].default
    return f / (1.0 + (km_na / v["Na_i"]) ** 1.5) * v["K_o"] / (v["K_o"] + km_k)


def _leak(V: float, v: dict[str, float], ion: str) -> float:
    z = {"K": 1, "Na": 1, "Cl": -1, "Ca": 2}[ion]
    return _ghk_current(V, v[f"P_{ion}"], v[f"{ion}_o"], v[f"{ion}_i"], z, v["T"])


def _increasing_zero(g: object, lo: float = -400.0, hi: float = 200.0) -> float:
    """Zero of an increasing function on [lo, hi] by bisection (to float64 resolution)."""
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if g(mid) > 0:  # type: ignore[operator]
            hi = mid
        else:
            lo = mid
    return 0.5 * (lo + hi)


def _ghk_mV(v: dict[str, float]) -> float:
    """Passive GHK voltage: zero of the summed leaks."""
    return _increasing_zero(lambda V: sum(_leak(V, v, ion) for ion in ("K", "Na", "Cl", "Ca")))


def _pump_balanced_mV(v: dict[str, float]) -> float:
    """The voltage at which a pump can balance both the Na+ and the K+ leak at the
    preset's concentrations (3·I_pump = −I_Na and 2·I_pump = I_K): the zero of
    I_K + (2/3)·I_Na (Mullins & Noda 1963, with GHK leaks). With P_Cl = P_Ca = 0 this is
    the ghk_pump voltage of the calibrated pump."""
    return _increasing_zero(lambda V: _leak(V, v, "K") + 2.0 / 3.0 * _leak(V, v, "Na"))


def _calibrate_pump(v: dict[str, float]) -> tuple[dict[str, float], str]:
    """I_pump_max, I_pump_fixed and z_X that balance pump and leaks at the preset's state.

    At the pump-balanced voltage V (:func:`_pump_balanced_mV`) I_pump_max makes
    3·I_pump = −I_Na (and so 2·I_pump = I_K); I_pump_fixed is that pump current. z_X makes
    the pump–leak steady-state conditions (electroneutrality, osmotic balance with the
    bath of rpx.physics.pump_leak, X_o = 0) hold at V with the preset's Na_i and K_i and
    Cl_i = Cl_o·e^(FV/RT). Returns the values and, where z_X would leave its domain
    [-10, 0] (then the table's default is kept), the reason.
    """
    V = _pump_balanced_mV(v)
    I_p = -_leak(V, v, "Na") / 3.0
    cations = v["Na_o"] + v["K_o"]
    osm = cations + v["Cl_o"] + abs(cations - v["Cl_o"])
    cl_i = v["Cl_o"] * math.exp(V / _vt(v["T"]))
    x_i = osm - v["Na_i"] - v["K_i"] - cl_i
    z_x = -(v["Na_i"] + v["K_i"] - cl_i) / x_i if x_i > 0 else math.inf
    out = {"I_pump_max": I_p / _pump_per_unit(V, v), "I_pump_fixed": I_p, "z_X": z_x}
    if -10.0 <= z_x <= 0.0:
        return out, ""
    default = PARAMS["z_X"].default
    assert default is not None
    reason = (
        f"not calibrated (table default {default:g}): Na+ and K+ leaks balance a pump only "
        f"at {V:.1f} mV, where Cl- in equilibrium would need impermeant solutes of mean "
        f"charge {z_x:+.3f}, outside [-10, 0]; so no pump-leak steady state reproduces this "
        "preset's Na_i and K_i (the leak ratios are not measured here)"
    )
    return out | {"z_X": default}, reason


def _calibrate_P_Na(v: dict[str, float], target_mV: float) -> float:
    """P_Na such that the mean of the passive GHK voltage and the pump-balanced voltage
    (with P_K, P_Cl of ``v``) is target_mV: both then lie near the middle of the range."""

    def mean_mV(log_ratio: float) -> float:
        w = v | {"P_Na": v["P_K"] * math.exp(log_ratio)}
        return 0.5 * (_ghk_mV(w) + _pump_balanced_mV(w))

    lo, hi = math.log(1e-8), math.log(1e2)
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if mean_mV(mid) > target_mV:
            hi = mid
        else:
            lo = mid
    return v["P_K"] * math.exp(0.5 * (lo + hi))


def _calibrate_P_Cl(v: dict[str, float], target_mV: float) -> float:
    """P_Cl such that the passive GHK voltage of ``v`` (with its P_K, P_Na) is target_mV."""
    x = math.exp(target_mV / (R * MV_PER_V / F * v["T"]))
    a_out = v["P_K"] * v["K_o"] + v["P_Na"] * v["Na_o"]
    a_in = v["P_K"] * v["K_i"] + v["P_Na"] * v["Na_i"]
    return (x * a_in - a_out) / (v["Cl_i"] - x * v["Cl_o"])


def _spec(*args: object, **kwargs: object) -> tuple[tuple, dict]:
    """The arguments of :func:`_make`, kept for the first use of the preset."""
    return args, kwargs


def _make(
    name: str,
    description: str,
    entries: dict[str, tuple[float, str]],
    V_range: tuple[float, float],
    V_source: str,
    calibrate: str | None = None,
) -> PresetInfo:
    values = {k: float(v) for k, (v, _) in entries.items()}
    sources = {k: s for k, (_, s) in entries.items()}
    if calibrate is not None:
        target = 0.5 * (V_range[0] + V_range[1])
        fn = {"P_Na": _calibrate_P_Na, "P_Cl": _calibrate_P_Cl}[calibrate]
        values[calibrate] = fn(values, target)
        what = {
            "P_Na": "the mean of the passive GHK and the pump-balanced voltage",
            "P_Cl": "the passive GHK voltage",
        }[calibrate]
        sources[calibrate] = (
            f"calibrated: {what} equals {target:g} mV, the middle of the "
            f"reported range; {sources[calibrate]}"
        )
    missing = set(CORE) - set(values)
    if missing:  # pragma: no cover - a programming error in this file
        raise AssertionError(f"preset {name} lacks {sorted(missing)}")
    pump, z_reason = _calibrate_pump(values)
    values |= pump
    sources |= {
        "I_pump_max": (
            f"calibrated: 3*I_pump = -I_Na and 2*I_pump = I_K at "
            f"{_pump_balanced_mV(values):.2f} mV (the Mullins-Noda voltage of this "
            "preset's K and Na leaks; with P_Cl = 0 the ghk_pump voltage) at this preset's "
            "concentrations, Luo-Rudy pump with the table's Km_Na_i and Km_K_o; the leaks' "
            "absolute scale (P_K) sets it"
        ),
        "I_pump_fixed": "calibrated: the current of the calibrated pump at that state",
        "z_X": z_reason or (
            "calibrated: pump-leak electroneutrality and osmotic balance hold at that "
            "voltage with this preset's Na_i, K_i and Cl- in equilibrium (X_o = 0)"
        ),
    }
    keys = (*CORE, *PUMP_CALIBRATED)
    return PresetInfo(
        name,
        description,
        MappingProxyType({k: values[k] for k in keys}),
        MappingProxyType({k: sources[k] for k in keys}),
        V_range,
        V_source,
    )


_SQUID_PK = 3.3e-7
# Each preset as the arguments of _make: its calibrations run on first use (lazily, so
# that importing this module, as the command line does before every check, costs no
# calibration), then the record is kept.
_SPECS: dict[str, tuple[tuple, dict]] = {
    args[0]: (args, kwargs)
    for args, kwargs in [
        _spec(
            "squid_axon",
            "squid giant axon in sea water, 20 C (Hodgkin & Katz 1949)",
            {
                "K_o": (20.0, JVEGH), "K_i": (400.0, JVEGH),
                "Na_o": (440.0, JVEGH), "Na_i": (50.0, JVEGH),
                "Cl_o": (560.0, JVEGH), "Cl_i": (40.0, JVEGH),
                "Ca_o": (10.0, JVEGH), "Ca_i": (1e-4, CA_TYPICAL),
                "P_K": (_SQUID_PK, SQUID_PK),
                "P_Na": (0.04 * _SQUID_PK, HK1949), "P_Cl": (0.45 * _SQUID_PK, HK1949),
                "P_Ca": (0.0, P_CA_ZERO), "T": (293.15, f"T = 293 K as in {JVEGH}"),
            },
            (-70.0, -55.0),
            f"{JVEGH}: -62 mV for the squid axon; about -60 mV with Hodgkin & Katz's ratios",
        ),
        _spec(
            "mammalian_neuron",
            "generic mammalian neuron at 37 C, K and Na permeable (textbook GHK example)",
            {
                "K_o": (5.0, KOOLSTRA), "K_i": (140.0, KOOLSTRA),
                "Na_o": (145.0, KOOLSTRA), "Na_i": (10.0, KOOLSTRA),
                "Cl_o": (110.0, GENERIC_CELL), "Cl_i": (4.0, GENERIC_CELL),
                "Ca_o": (2.0, CA_TYPICAL), "Ca_i": (1e-4, CA_TYPICAL),
                "P_K": (_SQUID_PK, PK_SCALE), "P_Na": (0.04 * _SQUID_PK, KOOLSTRA),
                "P_Cl": (0.0, CL_EXCLUDED), "P_Ca": (0.0, P_CA_ZERO),
                "T": (310.15, BODY_T),
            },
            (-75.0, -65.0),
            f"about -70 mV: {KOOLSTRA}",
        ),
        _spec(
            "frog_muscle",
            "frog skeletal muscle fibre in Ringer, 20 C (Conway's concentrations)",
            {
                "K_o": (2.25, JVEGH), "K_i": (124.0, JVEGH),
                "Na_o": (109.0, JVEGH), "Na_i": (10.4, JVEGH),
                "Cl_o": (77.5, JVEGH), "Cl_i": (1.5, JVEGH),
                "Ca_o": (2.1, JVEGH), "Ca_i": (1e-4, CA_TYPICAL),
                "P_K": (_SQUID_PK, PK_SCALE), "P_Na": (0.01 * _SQUID_PK, HH1959),
                "P_Cl": (
                    0.0,
                    "0 here: K and Cl are near equilibrium at rest (E_Cl ~ E_K); "
                    "rpx.fit estimates P_Cl from the Hodgkin & Horowicz data",
                ),
                "P_Ca": (0.0, P_CA_ZERO), "T": (293.15, f"T = 293 K as in {JVEGH}"),
            },
            (-95.0, -87.0),
            (
                "frog sartorius in Ringer: -87.7 and -90.7 mV measured with 1 and 3 M KCl "
                "micro-electrodes, -93.0 mV after junction-potential correction "
                "(scilit.com/publications/06a8165c4951a771e34edcdd581dafec, 'The resting "
                "membrane potential of frog sartorius muscle', abstract)"
            ),
        ),
        _spec(
            "mammalian_skeletal_muscle",
            "mammalian skeletal muscle at 37 C (generic mammalian concentrations, rat soleus Na_i)",
            {
                "K_o": (5.0, GENERIC_CELL), "K_i": (140.0, GENERIC_CELL),
                "Na_o": (145.0, GENERIC_CELL), "Na_i": (14.0, RAT_SOLEUS_NA),
                "Cl_o": (110.0, GENERIC_CELL), "Cl_i": (4.0, GENERIC_CELL),
                "Ca_o": (2.0, CA_TYPICAL), "Ca_i": (1e-4, CA_TYPICAL),
                "P_K": (_SQUID_PK, PK_SCALE),
                "P_Na": (
                    0.0,
                    f"no mammalian ratio traced; the frog ratio 0.01 of {HH1959} puts the "
                    "pump-balanced voltage 0.05 mV below the reported range",
                ),
                "P_Cl": (0.0, "0: Cl is at equilibrium near rest (E_Cl ~ -89 mV here)"),
                "P_Ca": (0.0, P_CA_ZERO), "T": (310.15, BODY_T),
            },
            (-84.3, -74.7),
            (
                "rat soleus surface fibres in situ (anaesthetised rats), control resting "
                "potential -79.5 +/- 4.8 mV (mean +/- S.D.; the range is mean +/- S.D.), "
                "pmc.ncbi.nlm.nih.gov/articles/PMC1189145, abstract item 2. Deeper fibres of "
                "rat soleus in situ rest less negative, mean -71 mV (J. Physiol. 2024, "
                "602:3469, PubMed 38877870, abstract), so the range is not universal"
            ),
            calibrate="P_Na",
        ),
        _spec(
            "cardiac_ventricular_myocyte",
            "mammalian ventricular myocyte at 37 C (Luo-Rudy model concentrations)",
            {
                "K_o": (5.4, LR1991), "K_i": (145.0, LR1991),
                "Na_o": (140.0, LR1991), "Na_i": (18.0, LR1991),
                "Cl_o": (110.0, GENERIC_CELL), "Cl_i": (4.0, GENERIC_CELL),
                "Ca_o": (1.8, LR1991), "Ca_i": (2e-4, LR1991),
                "P_K": (_SQUID_PK, PK_SCALE),
                "P_Na": (
                    0.0,
                    "no whole-membrane ratio traced (LR1991's P_Na/P_K = 0.01833 is that "
                    "of the I_K channel only)",
                ),
                "P_Cl": (0.0, "0: no resting Cl permeability in the Luo-Rudy model"),
                "P_Ca": (0.0, P_CA_ZERO), "T": (310.0, LR1991),
            },
            (-90.0, -80.0),
            (
                "about -85 mV, E_K about -90 mV: www.understandingecg.org/node/391; "
                "-85 to -95 mV: www.liquisearch.com/cardiac_action_potential/"
                "resting_membrane_potential"
            ),
            calibrate="P_Na",
        ),
        _spec(
            "red_blood_cell",
            "human red blood cell in plasma at 37 C (Cl-dominated, small potential)",
            {
                "K_o": (10.0, "plasma, www.e-learning.chemie.fu-berlin.de/en/bioanorganik/chlor"),
                "K_i": (92.0, "red cells, same table (mmol per litre of cells)"),
                "Na_o": (160.0, "plasma, same table"), "Na_i": (11.0, "red cells, same table"),
                "Cl_o": (100.0, "plasma, same table"), "Cl_i": (50.0, "red cells, same table"),
                "Ca_o": (2.0, "plasma, same table"), "Ca_i": (1e-4, "red cells, same table"),
                "P_K": (_SQUID_PK, PK_SCALE),
                "P_Na": (_SQUID_PK, "assumed equal to P_K: no ratio traced"),
                "P_Cl": (_SQUID_PK, "relative to P_K"),
                "P_Ca": (0.0, P_CA_ZERO), "T": (310.15, BODY_T),
            },
            (-14.0, 0.0),
            (
                "Lassen & Sten-Knudsen 1968, J. Physiol. 195:681 (abstract): the potential "
                "of human red cells impaled in plasma never exceeded -14 mV"
            ),
            calibrate="P_Cl",
        ),
        _spec(
            "astrocyte",
            "mouse hippocampal astrocyte at 37 C (K-dominated, generic concentrations)",
            {
                "K_o": (5.0, GENERIC_CELL), "K_i": (140.0, GENERIC_CELL),
                "Na_o": (145.0, GENERIC_CELL), "Na_i": (15.0, GENERIC_CELL),
                "Cl_o": (110.0, GENERIC_CELL), "Cl_i": (4.0, GENERIC_CELL),
                "Ca_o": (2.0, CA_TYPICAL), "Ca_i": (1e-4, CA_TYPICAL),
                "P_K": (
                    1.2e-5,
                    "Jin, Zhang, Binder & Verkman 2013, J. Gen. Physiol. 141:119, Fig. 3 "
                    "(astrocyte P_K of their well-mixed model)",
                ),
                "P_Na": (0.0, "no ratio traced"),
                "P_Cl": (0.0, "0: no resting Cl permeability traced"),
                "P_Ca": (0.0, P_CA_ZERO), "T": (310.15, BODY_T),
            },
            (-75.3, -68.5),
            (
                "-71.9 +- 3.4 mV, P9 astrocytes in situ, J. Neurosci. table 'Resting "
                "membrane potential and input resistance of astrocytes in situ' "
                "(hGFAP/EGFP mice, Kir4.1 study)"
            ),
            calibrate="P_Na",
        ),
    ]
}
DEFAULT = "squid_axon"
_BUILT: dict[str, PresetInfo] = {}
_BUILD_LOCK = threading.Lock()


def presets() -> list[str]:
    """Names of all presets (``"default"`` is an alias of ``"squid_axon"``)."""
    return list(_SPECS)


def preset_info(name: str) -> PresetInfo:
    """The full record of a preset: values, sources and the reported resting potential.

    Built (and its calibrations run) on first use, then kept.
    """
    key = DEFAULT if name == "default" else name
    info = _BUILT.get(key)
    if info is not None:
        return info
    if key not in _SPECS:
        raise ValueError(
            f"unknown preset {name!r}; known presets: default, {', '.join(_SPECS)}"
        )
    with _BUILD_LOCK:
        if key not in _BUILT:
            args, kwargs = _SPECS[key]
            _BUILT[key] = _make(*args, **kwargs)
        return _BUILT[key]


def preset(name: str = "default") -> dict[str, float]:
    """Parameter values of a preset (mM, cm/s, K), as a new dict.

    ``"default"`` is the squid giant axon of Hodgkin & Katz (1949). See
    :func:`preset_info` for the source of every value.

    Example:
        >>> preset("squid_axon")["K_i"]
        400.0
    """
    return dict(preset_info(name).values)
