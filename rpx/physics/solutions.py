"""Solutions as recipes: salts in mM -> ion concentrations for the LJP and the models.

A recipe maps salts (and buffers, titrants, sugars) to the millimolar amounts put in::

    solution({"K-gluconate": 135, "KCl": 5, "NaCl": 4, "HEPES": 10, "KOH": 5,
              "EGTA": 0.2, "Mg-ATP": 4, "Na-GTP": 0.3})

Names are case-insensitive and ignore spaces, hyphens, underscores and dots
(``"K-gluconate" == "K gluconate" == "KGluconate"``); :data:`SALTS` lists them.
Every salt dissolves completely into its ions by stoichiometry (no ion pairing, no
complexation, activity coefficients 1, the same idealisations as :func:`rpx.physics.ljp.ljp`).
Buffers are added as their neutral acid form (HEPES, MES, MOPS, EGTA, BAPTA) or base
form (NMDG, Tris); a titrant turns them into ions as the JPCalc mobility tables page
recommends (titrating 10 mM HEPES with 5 mM NaOH gives 5 mM HEPES- and 5 mM Na+):
hydroxides (KOH, NaOH, CsOH, LiOH) deprotonate EGTA (up to 2 per EGTA, giving EGTA2-),
then BAPTA (up to 4), HEPES, MOPS and MES (1 each), in this order; HCl protonates NMDG
then Tris. More titrant than buffer is an error (free OH- or H+ at pH ≈ 7 is
negligible). "Mg-ATP" is taken as one neutral unit (the Mg salt of ATP); "Na2-ATP" as
2 Na+ and ATP2-.

Species fall in two groups. :attr:`Solution.ions` holds the species with a published
mobility (the :data:`rpx.physics.mobilities.IONS` table): they enter the LJP. :attr:`Solution.other`
holds the rest (uncharged sugars and buffer acids; charged species without a published
mobility such as phosphocreatine2-, GTP, BAPTA4-, QX-314+): they count for the
electroneutrality check and the osmolarity only. Of all these species only K, Na, Cl
and Ca are read by the membrane models (:meth:`Solution.params`); the others are kept
for the LJP and the osmolarity only.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping

import numpy as np
from numpy.typing import ArrayLike

from rpx.physics.mobilities import IONS, ion_name

#: Species outside the mobility table: name -> (valence, description).
OTHER: dict[str, tuple[int, str]] = {
    "glucose": (0, "glucose"),
    "sucrose": (0, "sucrose"),
    "mannitol": (0, "mannitol"),
    "HEPES (acid)": (0, "HEPES, neutral zwitterion (untitrated)"),
    "MES (acid)": (0, "MES, neutral zwitterion (untitrated)"),
    "MOPS (acid)": (0, "MOPS, neutral zwitterion (untitrated)"),
    "EGTA (acid)": (0, "EGTA, free acid (untitrated)"),
    "BAPTA (acid)": (0, "BAPTA, free acid (untitrated)"),
    "BAPTA4-": (-4, "BAPTA, tetravalent anion (no published mobility)"),
    "NMDG (base)": (0, "N-methyl-D-glucamine, free base (untitrated)"),
    "Tris (base)": (0, "Tris, free base (untitrated)"),
    "MgATP": (0, "ATP magnesium salt, one neutral unit"),
    "GTP-": (-1, "GTP, monovalent anion (no published mobility)"),
    "GTP2-": (-2, "GTP, divalent anion (no published mobility)"),
    "GTP3-": (-3, "GTP, trivalent anion (no published mobility)"),
    "phosphocreatine2-": (-2, "phosphocreatine, divalent anion (no published mobility)"),
    "pyruvate-": (-1, "pyruvate (no published mobility)"),
    "ascorbate-": (-1, "ascorbate (no published mobility)"),
    "QX-314+": (1, "QX-314 cation (no published mobility)"),
}

# salt -> ((species, stoichiometry), ...); species are IONS or OTHER names.
_SALT_ROWS: dict[str, tuple[tuple[str, int], ...]] = {
    "NaCl": (("Na", 1), ("Cl", 1)),
    "KCl": (("K", 1), ("Cl", 1)),
    "CsCl": (("Cs", 1), ("Cl", 1)),
    "LiCl": (("Li", 1), ("Cl", 1)),
    "RbCl": (("Rb", 1), ("Cl", 1)),
    "NH4Cl": (("NH4", 1), ("Cl", 1)),
    "choline-Cl": (("choline", 1), ("Cl", 1)),
    "TEA-Cl": (("TEA", 1), ("Cl", 1)),
    "TMA-Cl": (("TMA", 1), ("Cl", 1)),
    "NMDG-Cl": (("NMDG", 1), ("Cl", 1)),
    "Tris-Cl": (("Tris", 1), ("Cl", 1)),
    "QX-314-Cl": (("QX-314+", 1), ("Cl", 1)),
    "CaCl2": (("Ca", 1), ("Cl", 2)),
    "MgCl2": (("Mg", 1), ("Cl", 2)),
    "BaCl2": (("Ba", 1), ("Cl", 2)),
    "SrCl2": (("Sr", 1), ("Cl", 2)),
    "CoCl2": (("Co", 1), ("Cl", 2)),
    "ZnCl2": (("Zn", 1), ("Cl", 2)),
    "MgSO4": (("Mg", 1), ("SO4", 1)),
    "Na2SO4": (("Na", 2), ("SO4", 1)),
    "K2SO4": (("K", 2), ("SO4", 1)),
    "NaHCO3": (("Na", 1), ("HCO3", 1)),
    "KHCO3": (("K", 1), ("HCO3", 1)),
    "NaH2PO4": (("Na", 1), ("H2PO4", 1)),
    "KH2PO4": (("K", 1), ("H2PO4", 1)),
    "Na2HPO4": (("Na", 2), ("HPO4", 1)),
    "KF": (("K", 1), ("F", 1)),
    "CsF": (("Cs", 1), ("F", 1)),
    "NaF": (("Na", 1), ("F", 1)),
    "KBr": (("K", 1), ("Br", 1)),
    "NaBr": (("Na", 1), ("Br", 1)),
    "KNO3": (("K", 1), ("NO3", 1)),
    "NaNO3": (("Na", 1), ("NO3", 1)),
    "K-gluconate": (("K", 1), ("gluconate", 1)),
    "Na-gluconate": (("Na", 1), ("gluconate", 1)),
    "Cs-gluconate": (("Cs", 1), ("gluconate", 1)),
    "K-methanesulfonate": (("K", 1), ("methanesulfonate", 1)),
    "Cs-methanesulfonate": (("Cs", 1), ("methanesulfonate", 1)),
    "Na-methanesulfonate": (("Na", 1), ("methanesulfonate", 1)),
    "K-methylsulfate": (("K", 1), ("methylsulfate", 1)),
    "Cs-methylsulfate": (("Cs", 1), ("methylsulfate", 1)),
    "K-aspartate": (("K", 1), ("aspartate", 1)),
    "Cs-aspartate": (("Cs", 1), ("aspartate", 1)),
    "K-glutamate": (("K", 1), ("glutamate", 1)),
    "Cs-glutamate": (("Cs", 1), ("glutamate", 1)),
    "K-isethionate": (("K", 1), ("isethionate", 1)),
    "Na-isethionate": (("Na", 1), ("isethionate", 1)),
    "K-acetate": (("K", 1), ("acetate", 1)),
    "Na-acetate": (("Na", 1), ("acetate", 1)),
    "Na-HEPES": (("Na", 1), ("HEPES", 1)),
    "K-HEPES": (("K", 1), ("HEPES", 1)),
    "HEPES": (("HEPES (acid)", 1),),
    "MES": (("MES (acid)", 1),),
    "MOPS": (("MOPS (acid)", 1),),
    "EGTA": (("EGTA (acid)", 1),),
    "BAPTA": (("BAPTA (acid)", 1),),
    "K4-BAPTA": (("K", 4), ("BAPTA4-", 1)),
    "Cs4-BAPTA": (("Cs", 4), ("BAPTA4-", 1)),
    "NMDG": (("NMDG (base)", 1),),
    "Tris": (("Tris (base)", 1),),
    "Mg-ATP": (("MgATP", 1),),
    "Na2-ATP": (("Na", 2), ("ATP2-", 1)),
    "K2-ATP": (("K", 2), ("ATP2-", 1)),
    "Na-GTP": (("Na", 1), ("GTP-", 1)),
    "Na2-GTP": (("Na", 2), ("GTP2-", 1)),
    "Na3-GTP": (("Na", 3), ("GTP3-", 1)),
    "Li-GTP": (("Li", 1), ("GTP-", 1)),
    "Tris-GTP": (("Tris", 1), ("GTP-", 1)),
    "Na2-phosphocreatine": (("Na", 2), ("phosphocreatine2-", 1)),
    "K2-phosphocreatine": (("K", 2), ("phosphocreatine2-", 1)),
    "Tris2-phosphocreatine": (("Tris", 2), ("phosphocreatine2-", 1)),
    "Na-pyruvate": (("Na", 1), ("pyruvate-", 1)),
    "Na-ascorbate": (("Na", 1), ("ascorbate-", 1)),
    "glucose": (("glucose", 1),),
    "sucrose": (("sucrose", 1),),
    "mannitol": (("mannitol", 1),),
}

#: Hydroxides and the cation each brings; HCl brings Cl- (titrants, see module docs).
_BASES = {"KOH": "K", "NaOH": "Na", "CsOH": "Cs", "LiOH": "Li"}
_ACIDS = {"HCl": "Cl"}
# (acid species, ion it becomes, protons per molecule), in titration order.
_BASE_TITRATION = (
    ("EGTA (acid)", "EGTA2-", 2),
    ("BAPTA (acid)", "BAPTA4-", 4),
    ("HEPES (acid)", "HEPES", 1),
    ("MOPS (acid)", "MOPS", 1),
    ("MES (acid)", "MES", 1),
)
_ACID_TITRATION = (("NMDG (base)", "NMDG", 1), ("Tris (base)", "Tris", 1))

#: Recipe vocabulary: every salt, buffer, titrant and sugar that a recipe may name.
SALTS: tuple[str, ...] = (*_SALT_ROWS, *_BASES, *_ACIDS)

_ALIASES = {
    "kgluc": "K-gluconate", "kglu": "K-gluconate", "csgluc": "Cs-gluconate",
    "kmeso3": "K-methanesulfonate", "kch3so3": "K-methanesulfonate",
    "kmethylsulfonate": "K-methanesulfonate", "kmesylate": "K-methanesulfonate",
    "csmeso3": "Cs-methanesulfonate", "csch3so3": "Cs-methanesulfonate",
    "csmethylsulfonate": "Cs-methanesulfonate", "csmesylate": "Cs-methanesulfonate",
    "nameso3": "Na-methanesulfonate", "kmeso4": "K-methylsulfate",
    "kch3so4": "K-methylsulfate", "kmethylsulphate": "K-methylsulfate",
    "kasp": "K-aspartate", "csasp": "Cs-aspartate",
    "cholinechloride": "choline-Cl", "tetraethylammoniumchloride": "TEA-Cl",
    "trishcl": "Tris-Cl", "nmdghcl": "NMDG-Cl", "qx314": "QX-314-Cl", "qx314cl": "QX-314-Cl",
    "atpmg": "Mg-ATP", "mg2atp": "Mg-ATP", "naatp": "Na2-ATP",
    "phosphocreatine": "Na2-phosphocreatine", "naphosphocreatine": "Na2-phosphocreatine",
    "na2pcr": "Na2-phosphocreatine", "dtrisphosphocreatine": "Tris2-phosphocreatine",
    "ditrisphosphocreatine": "Tris2-phosphocreatine", "nahepes": "Na-HEPES",
    "dglucose": "glucose",
}


def _norm(name: str) -> str:
    return re.sub(r"[\s\-_.]", "", str(name)).lower()


_SALT_LOOKUP = {_norm(k): k for k in SALTS} | {k: v for k, v in _ALIASES.items()}


def salt_name(name: str) -> str:
    """The canonical :data:`SALTS` name of ``name``.

    Raises:
        ValueError: ``name`` is not in the recipe vocabulary.
    """
    key = _norm(name)
    if key in _SALT_LOOKUP:
        return _SALT_LOOKUP[key]
    try:
        ion = ion_name(name)
    except ValueError:
        raise ValueError(
            f"unknown salt {name!r} in a recipe; known: {', '.join(SALTS)}"
        ) from None
    raise ValueError(
        f"{name!r} is an ion ({ion}), not a salt: a recipe lists salts (e.g. {ion}Cl), "
        "ion concentrations list ions only; do not mix them"
    )


def is_recipe(mapping: Mapping[str, object]) -> bool:
    """True when ``mapping`` is a recipe: some key is a salt of :data:`SALTS` and not an
    ion name of the LJP table; otherwise it is read as ion concentrations."""
    for key in mapping:
        try:
            ion_name(key)
        except ValueError:
            if _norm(key) in _SALT_LOOKUP:
                return True
    return False


def _charge(species: str) -> int:
    return IONS[species].z if species in IONS else OTHER[species][0]


@dataclasses.dataclass(frozen=True, eq=False)
class Solution(Mapping):
    """Ion concentrations of a recipe; as a mapping, the species of the LJP table.

    Attributes:
        ions: species with a published mobility -> concentration (mM, numpy arrays
            broadcast over the recipe's amounts); the mapping view of the object.
        other: species without one (uncharged, or charged without a published
            mobility) -> concentration (mM); for charge balance and osmolarity only.
        recipe: the recipe, with canonical salt names.
    """

    ions: dict[str, np.ndarray]
    other: dict[str, np.ndarray]
    recipe: dict[str, np.ndarray]

    def __getitem__(self, key: str) -> np.ndarray:
        return self.ions[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.ions)

    def __len__(self) -> int:
        return len(self.ions)

    @property
    def other_charge(self) -> np.ndarray:
        """Σ z c of :attr:`other` (mM of charge)."""
        return sum((_charge(k) * v for k, v in self.other.items()), np.float64(0.0))

    @property
    def net_charge(self) -> np.ndarray:
        """Σ z c over all species (mM); 0 for every recipe."""
        return self.other_charge + sum(
            (IONS[k].z * v for k, v in self.ions.items()), np.float64(0.0)
        )

    @property
    def osmolarity(self) -> np.ndarray:
        """Ideal osmolarity (mOsm/L): the sum of all species' concentrations, osmotic
        coefficient 1 (real solutions are typically a few per cent below)."""
        return sum((*self.ions.values(), *self.other.values()), np.float64(0.0))

    def params(self, side: str) -> dict[str, np.ndarray]:
        """The model parameters this solution sets: ``{"K_i", "Na_i", "Cl_i", "Ca_i"}``
        for ``side="i"`` (a whole-cell pipette: the cytosol), ``_o`` names for
        ``side="o"`` (the bath). Only the ions present are returned; every other
        species is left to the LJP and the osmolarity.

        Raises:
            ValueError: ``side`` is not ``"i"`` or ``"o"``.
        """
        if side not in ("i", "o"):
            raise ValueError(f"side must be 'i' (pipette/cytosol) or 'o' (bath), got {side!r}")
        return {f"{k}_{side}": v for k, v in self.ions.items() if k in ("K", "Na", "Cl", "Ca")}


def solution(recipe: Mapping[str, ArrayLike]) -> Solution:
    """Ion concentrations (mM) of a recipe of salts in mM (see the module docs).

    Args:
        recipe: salt name -> amount (mM, >= 0; scalars or arrays that broadcast).

    Returns:
        A :class:`Solution`; electroneutral by construction.

    Raises:
        ValueError: unknown salt (the message lists the vocabulary), a salt given
            twice, a negative or non-finite amount, or more titrant (hydroxide, HCl)
            than buffer to take it up.
    """
    if not isinstance(recipe, Mapping):
        raise ValueError(f"a recipe maps salt names to mM, got {type(recipe).__name__}")
    amounts: dict[str, np.ndarray] = {}
    for name, value in recipe.items():
        canon = salt_name(name)
        if canon in amounts:
            raise ValueError(f"salt {canon!r} is given twice in a recipe")
        arr = np.asarray(value, dtype=np.float64)
        if not np.all(np.isfinite(arr)) or np.any(arr < 0):
            raise ValueError(f"amount of {canon} must be finite and >= 0 mM, got {value!r}")
        amounts[canon] = arr
    species: dict[str, np.ndarray] = {}

    def add(name: str, c: np.ndarray) -> None:
        species[name] = species.get(name, np.float64(0.0)) + c

    base = np.float64(0.0)
    acid = np.float64(0.0)
    for canon, c in amounts.items():
        if canon in _BASES:
            add(_BASES[canon], c)
            base = base + c
        elif canon in _ACIDS:
            add(_ACIDS[canon], c)
            acid = acid + c
        else:
            for sp, n in _SALT_ROWS[canon]:
                add(sp, n * c)
    for left, steps, what in ((base, _BASE_TITRATION, "hydroxide"), (acid, _ACID_TITRATION, "HCl")):
        for src, dst, per in steps:
            if src not in species:
                continue
            take = np.minimum(left, per * species[src])
            species[src] = species[src] - take / per
            add(dst, take / per)
            left = left - take
        if np.any(left > 1e-12):
            raise ValueError(
                f"the recipe has {float(np.max(left)):.3g} mM more {what} than buffer to "
                "take it up; give the titrant actually added (free OH-/H+ near pH 7 is "
                "negligible)"
            )
    ions = {k: v for k, v in species.items() if k in IONS}
    other = {k: v for k, v in species.items() if k not in IONS and np.any(v > 0)}
    return Solution(ions, other, amounts)


def parse_solution(text: str) -> dict[str, float]:
    """A solution written inline, ``"K-gluconate=135, KCl=5; HEPES=10"`` (``NAME=mM``
    items separated by commas or semicolons; ``NAME:mM`` and surrounding braces also
    accepted) -> {name: mM}. Names are not checked here (ions or salts, see
    :func:`rpx.physics.ljp.ljp` and :func:`solution`).

    Raises:
        ValueError: an item without ``=``, a non-numeric amount, a name given twice,
            or an empty text.
    """
    body = str(text).strip().removeprefix("{").removesuffix("}")
    out: dict[str, float] = {}
    for item in body.replace(";", ",").split(","):
        if not item.strip():
            continue
        if "=" not in item and ":" not in item:
            raise ValueError(
                f"cannot read {item.strip()!r} in a solution; write NAME=mM, e.g. KCl=140"
            )
        name, _, value = item.partition("=") if "=" in item else item.partition(":")
        name = name.strip().strip('"').strip("'")
        if name in out:
            raise ValueError(f"{name!r} is given twice in a solution")
        try:
            out[name] = float(value.strip())
        except ValueError:
            raise ValueError(
                f"concentration of {name!r} must be a number in mM, got {value.strip()!r}"
            ) from None
    if not out:
        raise ValueError(f"empty solution {text!r}")
    return out


def concentrations(given: Mapping[str, ArrayLike]) -> Mapping[str, ArrayLike]:
    """``given`` as ion concentrations: a :class:`Solution` for a recipe, else ``given``
    with canonical ion names (see :func:`is_recipe`).

    Raises:
        ValueError: unknown ion or salt (as :func:`solution` and
            :func:`rpx.physics.mobilities.ion_name`).
    """
    if isinstance(given, Solution):
        return given
    if is_recipe(given):
        return solution(given)
    out: dict[str, ArrayLike] = {}
    for k, v in given.items():
        canon = ion_name(k)
        if canon in out:
            raise ValueError(f"ion {canon!r} is given twice")
        out[canon] = v
    return out
