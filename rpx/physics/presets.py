"""Parameter presets: literature cells, every number with the source it was taken from.

A preset fixes the thirteen core parameters (``K_o … P_Ca, T``). Pump and pump–leak
parameters come from the parameter table's defaults (:mod:`rpx.physics.params`) unless a
caller overrides them.

Where no measured value could be traced, the preset says so in its ``sources`` entry:

* **derived**: computed from other sourced numbers by a stated formula;
* **calibrated**: one permeability ratio solved so that the passive GHK voltage equals
  the middle of the resting-potential range the source reports (a documented fit of one
  number to one measurement, never a free guess). ``tests/test_presets.py`` recomputes
  every calibration;
* **assumed**: a value with no source, stated as such (e.g. P_Ca = 0 at rest).

Sources that are web pages are named by their address; they reproduce tables of the
primary literature named beside them.
"""

from __future__ import annotations

import dataclasses
import math
from types import MappingProxyType

from rpx.physics.constants import MV_PER_V, F, R

CORE = (
    "K_o", "K_i", "Na_o", "Na_i", "Cl_o", "Cl_i", "Ca_o", "Ca_i",
    "P_K", "P_Na", "P_Cl", "P_Ca", "T",
)  # fmt: skip


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


def _calibrate_P_Na(v: dict[str, float], target_mV: float) -> float:
    """P_Na such that the passive GHK voltage of ``v`` (with its P_K, P_Cl) is target_mV."""
    x = math.exp(target_mV / (R * MV_PER_V / F * v["T"]))
    num = x * (v["P_K"] * v["K_i"] + v["P_Cl"] * v["Cl_o"]) - v["P_K"] * v["K_o"]
    num -= v["P_Cl"] * v["Cl_i"]
    return num / (v["Na_o"] - x * v["Na_i"])


def _calibrate_P_Cl(v: dict[str, float], target_mV: float) -> float:
    """P_Cl such that the passive GHK voltage of ``v`` (with its P_K, P_Na) is target_mV."""
    x = math.exp(target_mV / (R * MV_PER_V / F * v["T"]))
    a_out = v["P_K"] * v["K_o"] + v["P_Na"] * v["Na_o"]
    a_in = v["P_K"] * v["K_i"] + v["P_Na"] * v["Na_i"]
    return (x * a_in - a_out) / (v["Cl_i"] - x * v["Cl_o"])


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
        sources[calibrate] = (
            f"calibrated: the passive GHK voltage equals {target:g} mV, the middle of the "
            f"reported range; {sources[calibrate]}"
        )
    missing = set(CORE) - set(values)
    if missing:  # pragma: no cover - a programming error in this file
        raise AssertionError(f"preset {name} lacks {sorted(missing)}")
    return PresetInfo(
        name,
        description,
        MappingProxyType({k: values[k] for k in CORE}),
        MappingProxyType({k: sources[k] for k in CORE}),
        V_range,
        V_source,
    )


_SQUID_PK = 3.3e-7
_PRESETS: dict[str, PresetInfo] = {
    p.name: p
    for p in [
        _make(
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
        _make(
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
        _make(
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
        _make(
            "mammalian_skeletal_muscle",
            "mammalian skeletal muscle at 37 C (generic mammalian concentrations, rat soleus Na_i)",
            {
                "K_o": (5.0, GENERIC_CELL), "K_i": (140.0, GENERIC_CELL),
                "Na_o": (145.0, GENERIC_CELL), "Na_i": (14.0, RAT_SOLEUS_NA),
                "Cl_o": (110.0, GENERIC_CELL), "Cl_i": (4.0, GENERIC_CELL),
                "Ca_o": (2.0, CA_TYPICAL), "Ca_i": (1e-4, CA_TYPICAL),
                "P_K": (_SQUID_PK, PK_SCALE),
                "P_Na": (0.01 * _SQUID_PK, f"frog value of {HH1959}; no mammalian one traced"),
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
        ),
        _make(
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
        _make(
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
        _make(
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


def presets() -> list[str]:
    """Names of all presets (``"default"`` is an alias of ``"squid_axon"``)."""
    return list(_PRESETS)


def preset_info(name: str) -> PresetInfo:
    """The full record of a preset: values, sources and the reported resting potential."""
    key = DEFAULT if name == "default" else name
    try:
        return _PRESETS[key]
    except KeyError:
        raise ValueError(
            f"unknown preset {name!r}; known presets: default, {', '.join(_PRESETS)}"
        ) from None


def preset(name: str = "default") -> dict[str, float]:
    """Parameter values of a preset (mM, cm/s, K), as a new dict.

    ``"default"`` is the squid giant axon of Hodgkin & Katz (1949). See
    :func:`preset_info` for the source of every value.

    Example:
        >>> preset("squid_axon")["K_i"]
        400.0
    """
    return dict(preset_info(name).values)
