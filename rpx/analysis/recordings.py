"""Recording columns of fit tables: liquid junction potentials and whole-cell solutions.

A table for :func:`rpx.fit` may carry, besides conditions and ``V``:

* ``ljp`` — the liquid junction potential of each row in mV, V_LJP = V_bath − V_pipette
  (JPCalc/LJPcalc sign, :func:`rpx.physics.ljp.ljp`). The fit uses the membrane
  potential V − ljp; a row whose ``V`` was already corrected by its authors has ljp 0.
* ``pipette`` and ``bath`` — the solutions, written inline as ion concentrations or
  recipes of salts, e.g. ``"K-gluconate=135; KCl=5; HEPES=10; KOH=5"``
  (:func:`rpx.physics.solutions.parse_solution`; use ``;`` between items in a CSV
  file). In whole-cell recordings the cytosol is the pipette solution: the pipette sets
  ``K_i``, ``Na_i``, ``Cl_i``, ``Ca_i`` and the bath ``K_o``, ``Na_o``, ``Cl_o``,
  ``Ca_o`` for every parameter the model reads that is neither a data column nor free
  (an ion absent from the solutions of every row keeps its fixed value). With both
  solutions and no ``ljp`` column, the LJP of each row is computed with the
  temperature of its ``T`` column (K), which is then required, and subtracted from V.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

LJP_COL = "ljp"
PIPETTE_COL = "pipette"
BATH_COL = "bath"
RECORDING_COLS = (LJP_COL, PIPETTE_COL, BATH_COL)
_MODEL_IONS = ("K", "Na", "Cl", "Ca")


def _solutions(df: pd.DataFrame, col: str) -> list:
    from rpx.physics.ljp import check_electroneutral
    from rpx.physics.solutions import concentrations, parse_solution

    out = []
    for i, text in enumerate(df[col].tolist()):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(
                f"data column {col!r} has no solution in row {i}; write e.g. "
                "'KCl=140; HEPES=10' in every row"
            )
        try:
            sol = concentrations(parse_solution(text))
            check_electroneutral(sol, col)
            out.append(sol)
        except ValueError as err:
            raise ValueError(f"data column {col!r}, row {i}: {err}") from None
    return out


def apply_recording_columns(
    df: pd.DataFrame, model_params: Sequence[str], free: Sequence[str]
) -> pd.DataFrame:
    """``df`` with its ``ljp``, ``pipette`` and ``bath`` columns turned into conditions
    and a corrected ``V`` (see the module docs); other tables are returned unchanged.

    Raises:
        ValueError: a non-numeric or missing ``ljp``; a row without a solution, an
            unknown ion or salt, a solution that is not electroneutral; solutions
            without a ``T`` column and without ``ljp``.
    """
    if not any(c in df.columns for c in RECORDING_COLS):
        return df
    from rpx.physics.ljp import ljp

    df = df.copy()
    sols = {}
    for col, side in ((PIPETTE_COL, "i"), (BATH_COL, "o")):
        if col not in df.columns:
            continue
        sols[col] = _solutions(df, col)
        for ion in _MODEL_IONS:
            name = f"{ion}_{side}"
            if name not in model_params or name in df.columns or name in free:
                continue
            values = np.array(
                [float(np.asarray(s.get(ion, 0.0), dtype=np.float64)) for s in sols[col]]
            )
            if np.any(values > 0):
                df[name] = values
    if LJP_COL in df.columns:
        v_ljp = pd.to_numeric(df[LJP_COL], errors="coerce").to_numpy(np.float64)
        if not np.all(np.isfinite(v_ljp)):
            raise ValueError(
                f"data column {LJP_COL!r} (liquid junction potential, mV) must be numeric "
                "and finite in every row; give 0 where V is already corrected"
            )
    elif PIPETTE_COL in sols and BATH_COL in sols:
        if "T" not in df.columns:
            raise ValueError(
                "a table with pipette and bath solutions needs a 'T' column (K) to compute "
                f"the liquid junction potential, or an {LJP_COL!r} column (mV)"
            )
        temps = pd.to_numeric(df["T"], errors="coerce").to_numpy(np.float64)
        v_ljp = np.array([
            float(np.asarray(ljp(p, b, t), dtype=np.float64))
            for p, b, t in zip(sols[PIPETTE_COL], sols[BATH_COL], temps, strict=True)
        ])
    else:
        v_ljp = None
    if v_ljp is not None and "V" in df.columns:
        v = pd.to_numeric(df["V"], errors="coerce").to_numpy(np.float64)
        df["V"] = v - v_ljp
    return df.drop(columns=[c for c in RECORDING_COLS if c in df.columns])
