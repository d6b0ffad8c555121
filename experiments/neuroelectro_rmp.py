"""Reported resting potentials of the NeuroElectro curated table against GHK predictions
from each record's own solutions (pipette = cytosol), with and without the liquid
junction potential (LJP) that the paper did not correct.

Data: the curated NeuroElectro table of Tebaykin, Tripathy et al. (repository
dtebaykin/InterLabEphysVar, GPL-3.0; ``../shared/data/neuroelectro/SOURCE.txt``), read
by path and never copied. One row = one neuron type in one article (article-level mean).

Records used: whole-cell patch clamp (perforated-patch and sharp-electrode rows left out:
there the cytosol is not the pipette solution), with bath and pipette Na+, K+, Cl-, a
recording temperature and a resting potential. Left out and counted: implausible fields
(pipette ion > 250 mM, e.g. sharp-electrode fillings of 2-3 M; bath K+ outside 1-15 mM;
bath Na+ < 100 mM; T outside 15-40 °C; V outside -100…-30 mV), Cs+-based pipettes
(K_i < 50 mM: Cs+ is not in the model), and records whose solutions cannot be balanced
(see below), so that every step uses the same records.

Solutions for the LJP: the table gives Na, K, Cl, Ca, Mg (and Cs) but not the main
anions. The pipette's anion deficit (cation charge − Cl−) is given to the anion named in
the pipette text (gluconate, methanesulfonate, methyl sulfate, aspartate, glutamate,
acetate); with none named, a deficit up to 10 % of the cation charge is taken as HEPES-,
a larger one leaves the record out. The bath's deficit is HCO3- when the bath text names
bicarbonate, else HEPES-. A Cl- excess over 5 % of the cation charge leaves the record
out. Mg is taken as free Mg2+ (the table does not say how much is bound to ATP).

Steps, each reported as R² = 1 − SS_res/SS_tot and RMS of reported − predicted V over
records (overall, and per neuron type with at least ``--min-articles`` articles):
  A  GHK with fixed ratios of preset ``mammalian_neuron`` (P_Na/P_K = 0.04, P_Cl = 0),
     against the reported V;
  B  as A, against V corrected for the LJP (V − V_LJP) where the paper says it did not
     correct (``--unreported`` also corrects rows whose correction is "Unreported");
  C  P_Na and P_Cl fitted per neuron type with ``rpx.fit`` (P_K fixed), reported V;
  D  as C, fitted to and compared with the LJP-corrected V (the table handed to
     ``rpx.fit`` carries the LJP applied to each record as its ``ljp`` column).
C and D use only the types that have enough articles; A and B are also given on that
subset. "type mean" is the R² of predicting every record by its type's mean V.

Usage::

    .venv/bin/python experiments/neuroelectro_rmp.py \\
        --data ../shared/data/neuroelectro/ephys_data_curated.tsv
    # -> table on stdout, experiments/out/neuroelectro_rmp.png
"""

from __future__ import annotations

import argparse
import collections
import platform
import re
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

_HERE = Path(__file__).resolve().parent
sys.path.append(str(_HERE.parent))

import rpx  # noqa: E402
from rpx.physics.ljp import ljp  # noqa: E402
from rpx.physics.presets import preset  # noqa: E402

REQUIRED = ["internal_0_Na", "internal_0_K", "internal_0_Cl", "external_0_Na",
            "external_0_K", "external_0_Cl", "RecTemp", "rmp"]
#: Columns the script reads (a synthetic table for tests needs these).
COLUMNS = ["Pmid", "NeuronName", "ElectrodeType", "JxnPotential", "JxnOffset",
           "InternalSolution", "ExternalSolution", "internal_0_Ca", "internal_0_Mg",
           "internal_0_Cs", "external_0_Ca", "external_0_Mg", *REQUIRED]
PRESET = "mammalian_neuron"
ANIONS = [  # (pattern in the pipette text, ion of the LJP table)
    (r"glucon", "gluconate"),
    (r"methanesulf|methanesulph|mesylate|meso3|ch3so3", "methanesulfonate"),
    (r"methylsulf|methylsulph|meso4|ch3so4|methyl sulf", "methylsulfate"),
    (r"aspart", "aspartate"),
    (r"glutam", "glutamate"),
    (r"acetate", "acetate"),
]


def _num(row: pd.Series, col: str) -> float:
    v = row.get(col, np.nan)
    v = pd.to_numeric(v, errors="coerce")
    return 0.0 if pd.isna(v) else float(v)


def pipette_ions(row: pd.Series) -> tuple[dict[str, float] | None, str]:
    """Ion concentrations (mM) of the pipette of ``row``, or None and the reason."""
    ions = {"K": _num(row, "internal_0_K"), "Na": _num(row, "internal_0_Na"),
            "Cl": _num(row, "internal_0_Cl"), "Mg": _num(row, "internal_0_Mg"),
            "Ca": _num(row, "internal_0_Ca"), "Cs": _num(row, "internal_0_Cs")}
    cations = ions["K"] + ions["Na"] + ions["Cs"] + 2 * (ions["Mg"] + ions["Ca"])
    deficit = cations - ions["Cl"]
    text = str(row.get("InternalSolution", "")).lower()
    named = [ion for pattern, ion in ANIONS if re.search(pattern, text)]
    if deficit < -0.05 * cations:
        return None, "pipette Cl- exceeds its cations by > 5 %"
    if deficit <= 0:
        ions["Cl"] = cations
    elif named:
        ions[named[0]] = deficit
    elif deficit <= 0.10 * cations:
        ions["HEPES"] = deficit
    else:
        return None, "pipette anion not named and deficit > 10 %"
    return {k: v for k, v in ions.items() if v > 0}, ""


def bath_ions(row: pd.Series) -> tuple[dict[str, float] | None, str]:
    """Ion concentrations (mM) of the bath of ``row``, or None and the reason."""
    ions = {"K": _num(row, "external_0_K"), "Na": _num(row, "external_0_Na"),
            "Cl": _num(row, "external_0_Cl"), "Mg": _num(row, "external_0_Mg"),
            "Ca": _num(row, "external_0_Ca")}
    cations = ions["K"] + ions["Na"] + 2 * (ions["Mg"] + ions["Ca"])
    deficit = cations - ions["Cl"]
    text = str(row.get("ExternalSolution", "")).lower()
    if deficit < -0.05 * cations:
        return None, "bath Cl- exceeds its cations by > 5 %"
    if deficit <= 0:
        ions["Cl"] = cations
    else:
        ions["HCO3" if re.search(r"hco3|bicarb", text) else "HEPES"] = deficit
    return {k: v for k, v in ions.items() if v > 0}, ""


def select(df: pd.DataFrame) -> tuple[pd.DataFrame, collections.Counter]:
    """Usable records with their LJP (column ``ljp``, mV) and the count of each reason
    a record was left out."""
    left = collections.Counter()
    rows = []
    for _, row in df.iterrows():
        etype = str(row.get("ElectrodeType", ""))
        if "Patch-clamp" not in etype or "Sharp" in etype or "Perforated" in etype:
            left["not whole-cell patch clamp (sharp, perforated, other, missing)"] += 1
            continue
        vals = {c: pd.to_numeric(row.get(c), errors="coerce") for c in REQUIRED}
        if any(pd.isna(v) for v in vals.values()):
            left["missing bath/pipette Na, K, Cl, temperature or V"] += 1
            continue
        if max(vals["internal_0_K"], vals["internal_0_Na"], vals["internal_0_Cl"]) > 250:
            left["implausible pipette (> 250 mM, e.g. sharp filling)"] += 1
            continue
        if not (1 <= vals["external_0_K"] <= 15) or vals["external_0_Na"] < 100:
            left["implausible bath (K outside 1-15 mM or Na < 100 mM)"] += 1
            continue
        if not (15 <= vals["RecTemp"] <= 40) or not (-100 <= vals["rmp"] <= -30):
            left["implausible temperature or V"] += 1
            continue
        if vals["internal_0_K"] < 50:
            left["Cs-based pipette (K_i < 50 mM)"] += 1
            continue
        pip, why = pipette_ions(row)
        bath, why_b = bath_ions(row)
        if pip is None or bath is None:
            left[why or why_b] += 1
            continue
        T = vals["RecTemp"] + 273.15
        rows.append({
            "pmid": row.get("Pmid"), "type": str(row.get("NeuronName")),
            "jxn": str(row.get("JxnPotential")), "jxn_offset": row.get("JxnOffset"),
            "K_i": vals["internal_0_K"], "Na_i": vals["internal_0_Na"],
            "Cl_i": vals["internal_0_Cl"], "K_o": vals["external_0_K"],
            "Na_o": vals["external_0_Na"], "Cl_o": vals["external_0_Cl"], "T": T,
            "V": vals["rmp"], "ljp": float(ljp(pip, bath, T, tol=0.001)),
        })
    return pd.DataFrame(rows), left


def ghk(d: pd.DataFrame, P_Na: np.ndarray, P_Cl: np.ndarray) -> np.ndarray:
    base = preset(PRESET)
    params = {k: d[k].to_numpy(np.float64) for k in ("K_i", "Na_i", "Cl_i", "K_o", "Na_o",
                                                   "Cl_o", "T")}
    params |= {"Ca_o": base["Ca_o"], "Ca_i": base["Ca_i"], "P_K": base["P_K"],
               "P_Ca": 0.0, "P_Na": P_Na, "P_Cl": P_Cl}
    return np.asarray(rpx.resting_potential(params, model="ghk"), dtype=np.float64)


def scores(v: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    """(R², RMS) of ``pred`` for ``v``."""
    res = v - pred
    tot = np.sum((v - v.mean()) ** 2)
    return float(1 - np.sum(res**2) / tot) if tot > 0 else float("nan"), float(
        np.sqrt(np.mean(res**2))
    )


def corrected_V(d: pd.DataFrame, unreported: bool) -> tuple[np.ndarray, np.ndarray]:
    which = d["jxn"].isin(["Not corrected", *(["Unreported", "nan"] if unreported else [])])
    mask = which.to_numpy()
    return np.where(mask, d["V"] - d["ljp"], d["V"]), mask


def fit_types(
    d: pd.DataFrame, v_ljp: np.ndarray, types: list[str], starts: int
) -> pd.DataFrame:
    """P_Na and P_Cl per neuron type (P_K of the preset fixed), one batched rpx.fit of
    the reported V with an ``ljp`` column ``v_ljp`` (mV; the fit uses V − ljp)."""
    sub = d[d["type"].isin(types)]
    table = sub[["K_i", "Na_i", "Cl_i", "K_o", "Na_o", "Cl_o", "T", "V"]].copy()
    table["ljp"] = v_ljp[sub.index.to_numpy()]
    table["cell"] = sub["type"].to_numpy()
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        ds = rpx.fit(table, model="ghk", free=("P_Na", "P_Cl"), fixed=PRESET, preset=PRESET,
                     starts=starts, dtype="float64")
    flat = [str(c) for c, ok in zip(ds["cell"].values, ds["identifiable"].values, strict=True)
            if not ok]
    if flat:
        print(f"  rpx.fit: P_Na, P_Cl not both determined for {len(flat)} of {ds.sizes['cell']} "
              f"types ({'; '.join(flat)})")
    return pd.DataFrame({"P_Na": ds["P_Na"].values, "P_Cl": ds["P_Cl"].values},
                        index=[str(c) for c in ds["cell"].values])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="ephys_data_curated.tsv (tab-separated)")
    ap.add_argument("--min-articles", type=int, default=10)
    ap.add_argument("--unreported", action="store_true",
                    help="also correct rows whose LJP correction is 'Unreported'")
    ap.add_argument("--starts", type=int, default=4, help="multi-starts of rpx.fit")
    ap.add_argument("--out", default=str(_HERE / "out" / "neuroelectro_rmp.png"))
    args = ap.parse_args(argv)
    import jax

    jax.config.update("jax_enable_x64", True)
    t0 = time.perf_counter()
    raw = pd.read_csv(args.data, sep="\t", low_memory=False)
    d, left = select(raw)
    d = d.reset_index(drop=True)
    cmd = "experiments/neuroelectro_rmp.py --data " + args.data + (
        " --unreported" if args.unreported else "")
    print(f"# {cmd}")
    print(f"# machine: {platform.machine()} {platform.system()}, python "
          f"{platform.python_version()}, rpx {rpx.__version__}")
    print(f"records in table: {len(raw)}; used: {len(d)} ({d['pmid'].nunique()} articles)")
    for why, n in left.most_common():
        print(f"  left out: {n:4d}  {why}")
    Vc, corrected_here = corrected_V(d, args.unreported)
    print(f"LJP correction: paper corrected {int((d['jxn'] == 'Corrected').sum())}, "
          f"corrected here {int(corrected_here.sum())}, left as reported "
          f"{int((~corrected_here & (d['jxn'] != 'Corrected')).sum())}")
    print(f"computed LJP (mV): median {np.median(d['ljp']):+.1f}, range "
          f"{d['ljp'].min():+.1f} … {d['ljp'].max():+.1f}")
    off = pd.to_numeric(d["jxn_offset"], errors="coerce")
    has = (d["jxn"] == "Corrected") & off.notna()
    if has.sum() >= 3:
        a, b = np.abs(off[has].to_numpy()), np.abs(d.loc[has, "ljp"].to_numpy())
        print(f"papers' own |offset| vs computed |LJP| ({int(has.sum())} corrected rows): "
              f"mean difference {np.mean(b - a):+.1f} mV, RMS {np.sqrt(np.mean((b - a)**2)):.1f}"
              f" mV, correlation {np.corrcoef(a, b)[0, 1]:.2f}")
    base = preset(PRESET)
    fixed_pred = ghk(d, np.full(len(d), base["P_Na"]), np.full(len(d), base["P_Cl"]))
    arts = d.groupby("type")["pmid"].nunique()
    types = sorted(t for t in arts.index if arts[t] >= args.min_articles and t != "Other")
    fitted = {}
    applied = np.where(corrected_here, d["ljp"].to_numpy(), 0.0)
    for label, v_ljp in (("C", np.zeros(len(d))), ("D", applied)):
        if types:
            p = fit_types(d, v_ljp, types, args.starts)
            sel = d["type"].isin(types).to_numpy()
            pred = np.full(len(d), np.nan)
            pred[sel] = ghk(d[sel], p.loc[d.loc[sel, "type"], "P_Na"].to_numpy(),
                            p.loc[d.loc[sel, "type"], "P_Cl"].to_numpy())
            fitted[label] = (pred, p)
    sel = d["type"].isin(types).to_numpy()
    type_mean = d.groupby("type")["V"].transform("mean").to_numpy()
    type_mean_c = pd.Series(Vc).groupby(d["type"]).transform("mean").to_numpy()

    print()
    print("| reported V by the paper's LJP statement | records | mean V (mV) | mean computed "
          "LJP (mV) | mean V − LJP (mV) |")
    print("|---|---|---|---|---|")
    for status in ("Corrected", "Not corrected", "Unreported"):
        m = (d["jxn"] == status).to_numpy()
        if m.any():
            print(f"| {status} | {int(m.sum())} | {d['V'][m].mean():.1f} | "
                  f"{d['ljp'][m].mean():+.1f} | {(d['V'] - d['ljp'])[m].mean():.1f} |")
    print()
    print(f"| step | records | R² | RMS (mV) | bias (mV) | R² on fitted types "
          f"(n={int(sel.sum())}) | RMS there | bias there |")
    print("|---|---|---|---|---|---|---|---|")
    V_rep = d["V"].to_numpy()
    steps = [("A fixed ratios, reported V", V_rep, fixed_pred, True),
             ("B fixed ratios, LJP-corrected V", Vc, fixed_pred, True)]
    if "C" in fitted:
        steps += [("C fitted per type, reported V", V_rep, fitted["C"][0], False),
                  ("D fitted per type, LJP-corrected V", Vc, fitted["D"][0], False)]
    if sel.any():
        steps += [("type mean, reported V", V_rep, type_mean, False),
                  ("type mean, LJP-corrected V", Vc, type_mean_c, False)]
    for name, V, pred, everywhere in steps:
        if everywhere:
            r2, rms = scores(V, pred)
            first = f"{len(V)} | {r2:.3f} | {rms:.2f} | {np.mean(V - pred):+.2f}"
        else:
            first = f"{int(sel.sum())} | — | — | —"
        if sel.any():
            r2s, rmss = scores(V[sel], pred[sel])
            second = f"{r2s:.3f} | {rmss:.2f} | {np.mean(V[sel] - pred[sel]):+.2f}"
        else:
            second = "— | — | —"
        print(f"| {name} | {first} | {second} |")
    print()
    print("| neuron type | records | articles | SD of V | A: R², RMS | B: R², RMS | "
          "C: R², RMS | D: R², RMS | D: P_Na/P_K, P_Cl/P_K |")
    print("|---|---|---|---|---|---|---|---|---|")
    for t in types:
        m = (d["type"] == t).to_numpy()
        V, Vcm = d["V"].to_numpy()[m], Vc[m]
        cells = [scores(V, fixed_pred[m]), scores(Vcm, fixed_pred[m]),
                 scores(V, fitted["C"][0][m]), scores(Vcm, fitted["D"][0][m])]
        p = fitted["D"][1].loc[t]
        print(f"| {t} | {int(m.sum())} | {int(arts[t])} | {np.std(V):.1f} | "
              + " | ".join(f"{r:.2f}, {s:.1f}" for r, s in cells)
              + f" | {p['P_Na'] / base['P_K']:.3f}, {p['P_Cl'] / base['P_K']:.3f} |")
    print(f"\nwall time {time.perf_counter() - t0:.1f} s")
    _figure(d, Vc, fixed_pred, fitted.get("D", (None,))[0], corrected_here, args.out)
    return 0


def _figure(d, Vc, fixed_pred, fit_pred, corrected_here, out) -> None:  # noqa: ANN001
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [
        ("corrected by the paper", (d["jxn"] == "Corrected").to_numpy(), "tab:green"),
        ("LJP corrected here", corrected_here, "tab:red"),
        ("not corrected (unreported)", ~corrected_here & (d["jxn"] != "Corrected").to_numpy(),
         "tab:gray"),
    ]
    panels = [("fixed ratios (A/B)", fixed_pred)]
    if fit_pred is not None:
        panels.append(("fitted per type (D)", fit_pred))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.8), squeeze=False)
    for ax, (title, pred) in zip(axes[0], panels, strict=True):
        for label, m, color in groups:
            ok = m & np.isfinite(pred)
            ax.scatter(pred[ok], Vc[ok], s=10, alpha=0.6, color=color, label=label)
        lo, hi = -100, -30
        ax.plot([lo, hi], [lo, hi], color="k", lw=0.8)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_xlabel("GHK prediction, pipette = cytosol (mV)")
        ax.set_ylabel("reported V, LJP-corrected where not corrected (mV)")
        ax.set_title(title)
        ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    print(f"figure: {out}")


if __name__ == "__main__":
    sys.exit(main())
