"""The mobility table of the liquid junction potential: ions, valences and mobilities.

Every mobility names its source (``Ion.source``). Shared by :mod:`rpx.physics.ljp` and
:mod:`rpx.physics.solutions`, which import it (and not each other in a circle).
"""

from __future__ import annotations

import dataclasses
import re

_NG_BARRY = (
    "Ng & Barry 1995, J. Neurosci. Methods 56:37 (from Barry & Lynch 1991, Table 1), "
    "as listed on compneuro.org/catacomb/ccmb_help/chemistry/JunctionPotential.html"
)
_UNSW = (
    "JPCalc Ionic Mobility Tables, UNSW (Table 4), as transcribed in LJPcalc "
    "src/IonTable.md"
)


@dataclasses.dataclass(frozen=True)
class Ion:
    """A species of the LJP table.

    Attributes:
        name: canonical name (the key of :data:`IONS`).
        z: valence.
        mobility: mobility relative to K+ (dimensionless; u_K = 1), limiting value at 25 °C.
        source: where ``mobility`` comes from.
        long_name: readable name.
    """

    name: str
    z: int
    mobility: float
    source: str
    long_name: str


def _ions(rows: list[tuple[str, int, float, str, str]]) -> dict[str, Ion]:
    return {r[0]: Ion(*r) for r in rows}


IONS: dict[str, Ion] = _ions([
    # cations
    ("K", 1, 1.0, _NG_BARRY, "potassium"),
    ("Na", 1, 0.682, _NG_BARRY, "sodium"),
    ("Li", 1, 0.525, _NG_BARRY, "lithium"),
    ("Cs", 1, 1.05, _NG_BARRY, "caesium"),
    ("Rb", 1, 1.059, _NG_BARRY, "rubidium"),
    ("NH4", 1, 1.00, _NG_BARRY, "ammonium"),
    ("Tl", 1, 1.02, _NG_BARRY, "thallium(I)"),
    ("Ca", 2, 0.405, _NG_BARRY, "calcium"),
    ("Mg", 2, 0.361, _NG_BARRY, "magnesium"),
    ("Ba", 2, 0.433, _NG_BARRY, "barium"),
    ("Sr", 2, 0.404, _NG_BARRY, "strontium"),
    ("Zn", 2, 0.359, _NG_BARRY, "zinc"),
    ("Co", 2, 0.370, _NG_BARRY, "cobalt(II)"),
    ("choline", 1, 0.51, _NG_BARRY, "choline"),
    ("TEA", 1, 0.444, _NG_BARRY, "tetraethylammonium"),
    ("TMA", 1, 0.611, _NG_BARRY, "tetramethylammonium"),
    ("NMDG", 1, 0.33, _NG_BARRY, "N-methyl-D-glucamine (protonated)"),
    ("Tris", 1, 0.40, _NG_BARRY, "Tris (protonated)"),
    # inorganic anions
    ("Cl", -1, 1.039, _NG_BARRY, "chloride"),
    ("Br", -1, 1.063, _NG_BARRY, "bromide"),
    ("I", -1, 1.045, _NG_BARRY, "iodide"),
    ("F", -1, 0.753, _NG_BARRY, "fluoride"),
    ("NO3", -1, 0.972, _NG_BARRY, "nitrate"),
    ("ClO4", -1, 0.916, _NG_BARRY, "perchlorate"),
    ("SCN", -1, 0.900, _NG_BARRY, "thiocyanate"),
    ("HCO3", -1, 0.605, _NG_BARRY, "bicarbonate"),
    ("H2PO4", -1, 0.45, _NG_BARRY, "dihydrogen phosphate"),
    ("HPO4", -2, 0.390, _NG_BARRY, "hydrogen phosphate"),
    ("SO4", -2, 0.544, _NG_BARRY, "sulfate"),
    # organic anions and buffers
    ("gluconate", -1, 0.33, _NG_BARRY, "gluconate"),
    ("methanesulfonate", -1, 0.664, _UNSW, "methanesulfonate (CH3SO3-)"),
    ("methylsulfate", -1, 0.664, _UNSW, "methyl sulfate (CH3OSO3-)"),
    ("aspartate", -1, 0.30, _NG_BARRY, "aspartate"),
    ("glutamate", -1, 0.26, _NG_BARRY, "glutamate"),
    ("isethionate", -1, 0.52, _NG_BARRY, "isethionate"),
    ("acetate", -1, 0.556, _NG_BARRY, "acetate"),
    ("propionate", -1, 0.487, _NG_BARRY, "propionate"),
    ("butyrate", -1, 0.44, _NG_BARRY, "butyrate"),
    ("HEPES", -1, 0.30, _NG_BARRY, "HEPES anion"),
    ("MES", -1, 0.37, _NG_BARRY, "MES anion"),
    ("MOPS", -1, 0.35, _NG_BARRY, "MOPS anion"),
    ("EGTA2-", -2, 0.24, _NG_BARRY, "EGTA, divalent anion"),
    ("EGTA3-", -3, 0.25, _NG_BARRY, "EGTA, trivalent anion"),
    ("ATP2-", -2, 0.15, _UNSW, "ATP, divalent anion"),
])

#: Other spellings accepted for the names of :data:`IONS` (compared case-insensitively).
ALIASES: dict[str, str] = {
    "potassium": "K", "sodium": "Na", "lithium": "Li", "cesium": "Cs", "caesium": "Cs",
    "rubidium": "Rb", "ammonium": "NH4", "calcium": "Ca", "magnesium": "Mg",
    "barium": "Ba", "strontium": "Sr", "chloride": "Cl", "bromide": "Br", "iodide": "I",
    "fluoride": "F", "nitrate": "NO3", "perchlorate": "ClO4", "thiocyanate": "SCN",
    "bicarbonate": "HCO3", "sulfate": "SO4", "sulphate": "SO4",
    "tetraethylammonium": "TEA", "tetramethylammonium": "TMA",
    "glu": "gluconate", "gluc": "gluconate", "mes-": "MES",
    "mesylate": "methanesulfonate", "methanesulphonate": "methanesulfonate",
    "methylsulfonate": "methanesulfonate", "ch3so3": "methanesulfonate",
    "meso3": "methanesulfonate",
    "methylsulphate": "methylsulfate", "meso4": "methylsulfate", "ch3so4": "methylsulfate",
    "egta2": "EGTA2-", "egta3": "EGTA3-", "atp2": "ATP2-",
}

_LOOKUP: dict[str, str] = {
    **{k.lower(): k for k in IONS},
    **{k.lower(): v for k, v in ALIASES.items()},
}
_CHARGE_SUFFIX = re.compile(r"^(?P<base>.+?)(?P<n>\d*)(?P<sign>[+-])$")


def ion_name(name: str) -> str:
    """The canonical :data:`IONS` name of ``name`` (case-insensitive; aliases such as
    ``"chloride"`` and charge suffixes such as ``"K+"``, ``"Ca2+"``, ``"Cl-"`` accepted).

    Raises:
        ValueError: unknown species, or a charge suffix that contradicts its valence.
    """
    key = str(name).strip()
    if key.lower() in _LOOKUP:
        return _LOOKUP[key.lower()]
    m = _CHARGE_SUFFIX.match(key)
    if m and m["base"].lower() in _LOOKUP:
        canon = _LOOKUP[m["base"].lower()]
        z = int(m["n"] or 1) * (1 if m["sign"] == "+" else -1)
        if IONS[canon].z != z:
            raise ValueError(f"ion {name!r}: {canon} has valence {IONS[canon].z:+d}, not {z:+d}")
        return canon
    raise ValueError(
        f"unknown ion {name!r} (no published mobility in the table); known ions: "
        f"{', '.join(IONS)}; or give a recipe of salts (rpx.physics.solutions.SALTS)"
    )
