"""Measured data for fitting: read, validate and lay out as padded per-cell arrays.

A data set is a table of conditions and measured resting potentials. Its columns are
parameter names from the vocabulary (the conditions of each measurement, e.g. ``K_o``
in mM), ``V`` (the measured potential, mV), optionally ``V_sd`` (its standard
deviation, mV), optionally ``cell`` (which cell each row belongs to; every cell is
fitted separately, all in one batched call) and optionally ``source`` (free text naming
where the row comes from; ignored by the fit). It may be given as a pandas DataFrame, a
CSV file (``#`` starts a comment line) or an xarray Dataset whose variable ``V`` has
an optional ``cell`` dimension; every other dimension of ``V`` indexes measurements.
Recording columns (:mod:`rpx.analysis.recordings`): ``ljp`` (mV; the fit uses
V − ljp, the JPCalc/LJPcalc sign) and, in tables, ``pipette``/``bath`` solutions that
set the cytosol and bath concentrations and, with a ``T`` column, the LJP of each row.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from rpx.analysis.recordings import LJP_COL, apply_recording_columns
from rpx.physics.params import PARAMS, check_values

V_COL = "V"
SD_COL = "V_sd"
CELL_COL = "cell"
SOURCE_COL = "source"  # free text: where a row comes from; not used by the fit
DataLike = pd.DataFrame | xr.Dataset | str | os.PathLike


@dataclasses.dataclass(frozen=True)
class FitData:
    """Measurements laid out as ``(cell, point)`` arrays, padded to the longest cell.

    Attributes:
        conditions: parameter name -> values (float64, shape (cells, points)); padded
            entries repeat the cell's first point so that the model stays finite there.
        V: measured potential (mV); NaN where padded.
        V_sd: standard deviation of ``V`` (mV), or None when the data give none.
        mask: True where a point is a real measurement.
        cells: one label per cell.
        squeeze: whether the input had no notion of cells (one data set).
    """

    conditions: dict[str, np.ndarray]
    V: np.ndarray
    V_sd: np.ndarray | None
    mask: np.ndarray
    cells: np.ndarray
    squeeze: bool

    @property
    def n_points(self) -> np.ndarray:
        return self.mask.sum(axis=1)


def show(label: object) -> str:
    """A cell label for messages: ``'a'`` or ``3``, not ``np.int64(3)``."""
    return repr(label.item() if isinstance(label, np.generic) else label)


class _RowLabels:
    """``"row <label>"`` of each row of a table, made only when a message needs one (a
    list of them would cost a Python loop over every row of every fit)."""

    def __init__(self, index: pd.Index) -> None:
        self.index = index

    def __getitem__(self, k: int) -> str:
        return f"row {show(self.index[k])}"


def _where(
    c: int, i: int, cells: np.ndarray, rows: np.ndarray | None,
    labels: Sequence[str] | _RowLabels | None, squeeze: bool,
) -> str:
    """Where point ``i`` of cell ``c`` came from: the CSV line or the table's row label
    (rows: original row position per (cell, point)); else the cell and point (from 0)."""
    cell = "" if squeeze else f"cell {show(cells[c])}, "
    if rows is not None and labels is not None:
        return f"{cell}{labels[int(rows[c, i])]}"
    return f"cell {show(cells[c])}, point {i} counted from 0"


def _check_finite(
    name: str, values: np.ndarray, cells: np.ndarray, mask: np.ndarray, where: object
) -> None:
    bad = mask & ~np.isfinite(values)
    if bad.any():
        c, i = np.argwhere(bad)[0]
        raise ValueError(
            f"data column {name!r} has a missing or non-finite value ({where(c, i)}); "
            "remove the row or give a finite value"
        )


def _csv_lines(path: str | os.PathLike, n_rows: int) -> list[str] | None:
    """``"<file> line N"`` of each data row of a CSV read with ``comment="#"`` (comment-only
    and blank lines skipped, the first remaining line is the header); None where the
    count does not match (e.g. quoted fields spanning lines)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            kept = [k + 1 for k, ln in enumerate(f) if ln.split("#", 1)[0].strip()]
    except OSError:
        return None
    if len(kept) != n_rows + 1:
        return None
    return [f"{os.fspath(path)} line {k}" for k in kept[1:]]


def _in_domain(name: str, x: float) -> bool:
    try:
        check_values(name, x)
    except ValueError:
        return False
    return True


def _check_columns(
    columns: Sequence[str], model_params: Sequence[str], free: Sequence[str]
) -> None:
    if V_COL not in columns:
        raise ValueError(f"data need a column {V_COL!r} (measured potential, mV)")
    for name in columns:
        if name in (V_COL, SD_COL, CELL_COL):
            continue
        if name not in PARAMS:
            raise ValueError(
                f"unknown data column {name!r}; columns are {V_COL!r}, {SD_COL!r}, "
                f"{CELL_COL!r}, {SOURCE_COL!r} or parameter names: {', '.join(PARAMS)}"
            )
        if name not in model_params:
            raise ValueError(
                f"data column {name!r} is not a parameter of this model; it reads: "
                f"{', '.join(model_params)}"
            )
        if name in free:
            raise ValueError(f"parameter {name!r} is both a data column and a free parameter")


def _numeric(df: pd.DataFrame, col: str) -> np.ndarray:
    try:
        return pd.to_numeric(df[col], errors="raise").to_numpy(np.float64)
    except (ValueError, TypeError):
        raise ValueError(f"data column {col!r} must be numeric") from None


def _is_real(dtype: object) -> bool:
    """A numpy dtype that ``float64`` represents as :func:`_numeric` would: bool, integer,
    float (not an extension dtype, which may hold missing values)."""
    return isinstance(dtype, np.dtype) and dtype.kind in "biuf"


def _columns(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """Every column but ``cell`` as a float64 array (that of :func:`_numeric`).

    A table whose columns are all plain numbers (the usual case: the one array of its
    values is of a bool, integer or float dtype) is converted in one ``to_numpy`` call;
    other tables column by column."""
    unique = df.columns.is_unique
    if unique:
        block = df.to_numpy()
        if _is_real(block.dtype):
            block = block.astype(np.float64, copy=False)
            return {c: block[:, j] for j, c in enumerate(df.columns) if c != CELL_COL}
    dtypes = df.dtypes.tolist()
    return {
        c: df[c].to_numpy(np.float64) if unique and _is_real(d) else _numeric(df, c)
        for c, d in zip(df.columns, dtypes, strict=True)
        if c != CELL_COL
    }


def _cell_codes(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(code of each row's cell, the cell labels in order of first appearance)."""
    cell = df[CELL_COL]
    integer = isinstance(cell, pd.Series) and isinstance(cell.dtype, np.dtype)
    if integer and cell.dtype.kind in "iu":  # integers are never missing
        labels = cell.to_numpy()
        new = np.empty(labels.shape, bool)
        new[:1] = True
        np.not_equal(labels[1:], labels[:-1], out=new[1:])
        if np.all(labels[1:] >= labels[:-1]):  # ascending (the usual layout): no hashing
            return np.cumsum(new) - 1, labels[new]
        codes, uniques = pd.factorize(labels, sort=False)
        return codes, np.asarray(uniques)
    if cell.isna().any():
        raise ValueError(f"data column {CELL_COL!r} has a missing value")
    codes, uniques = pd.factorize(cell, sort=False)
    return codes, np.asarray(uniques)


def _from_frame(df: pd.DataFrame) -> tuple[dict[str, np.ndarray], np.ndarray, bool]:
    """Group rows by ``cell`` (first-appearance order) and pad; returns arrays and labels.

    Vectorised: rows are placed at (cell index, position within the cell) in one
    scatter per column, whatever the number of cells; a table already laid out cell
    after cell with equally many rows each (the usual case) is only reshaped.
    """
    squeeze = CELL_COL not in df.columns
    n = len(df)
    if squeeze:
        codes = np.zeros(n, dtype=np.intp)
        labels = np.zeros(min(n, 1), dtype=np.int64)
    else:
        codes, labels = _cell_codes(df)
    columns = _columns(df)
    counts = np.bincount(codes, minlength=len(labels))
    width = int(counts.max(initial=0))
    out: dict[str, np.ndarray] = {}
    if n and np.all(counts == width) and (squeeze or np.all(codes[1:] >= codes[:-1])):
        shape = (len(labels), width)
        for col, values in columns.items():
            out[col] = values.reshape(shape).copy()
        out["__mask__"] = np.ones(shape, dtype=bool)
        out["__row__"] = np.arange(n, dtype=np.intp).reshape(shape)
        return out, labels, squeeze
    order = np.argsort(codes, kind="stable")
    row = codes[order]
    pos = np.arange(n) - np.repeat(np.cumsum(counts) - counts, counts)
    for col, values in columns.items():
        arr = np.full((len(labels), width), np.nan)
        arr[row, pos] = values[order]
        out[col] = arr
    mask = np.zeros((len(labels), width), dtype=bool)
    mask[row, pos] = True
    out["__mask__"] = mask
    where = np.zeros((len(labels), width), dtype=np.intp)
    where[row, pos] = order  # the table row of each (cell, point)
    out["__row__"] = where
    return out, labels, squeeze


def _from_dataset(ds: xr.Dataset) -> tuple[dict[str, np.ndarray], np.ndarray, bool]:
    """Broadcast every variable against ``V``; stack non-cell dims into points."""
    squeeze = CELL_COL not in ds[V_COL].dims
    names = [str(n) for n in ds.data_vars if n != CELL_COL]
    names += [str(n) for n in ds.coords if n in PARAMS and n not in names]
    arrays = xr.broadcast(*(ds[n] for n in names), exclude=())
    V = arrays[names.index(V_COL)]
    if squeeze:
        arrays = [a.expand_dims(CELL_COL) for a in arrays]
        V = V.expand_dims(CELL_COL)
    point_dims = [d for d in V.dims if d != CELL_COL]
    out = {}
    for name, a in zip(names, arrays, strict=True):
        a = a.transpose(CELL_COL, *point_dims)
        # A copy: the arrays (e.g. V_obs of the result) must not share the input's memory.
        out[name] = np.array(a.values, dtype=np.float64).reshape(a.shape[0], -1)
    out["__mask__"] = np.ones_like(out[V_COL], dtype=bool)
    if CELL_COL in ds.coords and not squeeze:
        labels = np.asarray(ds[CELL_COL].values)
    else:
        labels = np.arange(out[V_COL].shape[0])
    return out, labels, squeeze


def check_fixed(fixed: Iterable[str], conditions: Iterable[str], solutions: Iterable[str] = ()
                ) -> None:
    """A fixed value of a parameter that the data also give would be ignored (the data's
    values win): refuse it.

    Args:
        fixed: names given as fixed values (``fixed=`` or ``--fixed``).
        conditions: the data's condition names (columns, and those set by solutions).
        solutions: those of ``conditions`` set by a ``pipette``/``bath`` solution.

    Raises:
        ValueError: one line naming the first such parameter.
    """
    conditions, solutions = set(conditions), set(solutions)
    for name in fixed:
        if name in conditions:
            where = ("set by the data's pipette/bath solutions" if name in solutions
                     else "a column of the data")
            raise ValueError(
                f"parameter {name!r} is given as a fixed value but is also {where}; the "
                "data's values would be used: drop the fixed value or the column"
            )


def load_data(
    data: DataLike, model_params: Sequence[str], free: Sequence[str],
    fixed: Iterable[str] = (),
) -> FitData:
    """Read and validate ``data`` for a model that reads ``model_params``.

    ``fixed``: names of the parameters given fixed values; none may also be a condition
    of the data (see :func:`check_fixed`).

    Raises:
        ValueError: missing ``V`` column, unknown or unusable column names, a column
            that is also free or fixed, non-numeric or non-finite values, conditions
            outside their parameter's domain, ``V_sd`` <= 0, or a cell with fewer points
            than free parameters.
    """
    labels: Sequence[str] | _RowLabels | None = None
    solutions: set[str] = set()
    if isinstance(data, (str, os.PathLike)):
        path = data
        try:
            data = pd.read_csv(path, comment="#", skipinitialspace=True)
        except FileNotFoundError:
            raise ValueError(f"no data file {os.fspath(path)!r}") from None
        except IsADirectoryError:
            raise ValueError(
                f"data file {os.fspath(path)!r} is a directory (a store?): give a CSV "
                "file of measurements"
            ) from None
        except UnicodeDecodeError:
            raise ValueError(f"data file {os.fspath(path)!r} is not a text (CSV) file") from None
        except pd.errors.EmptyDataError:
            raise ValueError(
                f"data file {os.fspath(path)!r} is empty: it needs a header line with the "
                f"column {V_COL!r} and parameter names, then one row per measurement"
            ) from None
        except pd.errors.ParserError as err:
            msg = " ".join(str(err).split())
            raise ValueError(f"data file {os.fspath(path)!r} is not a valid CSV: {msg}") from None
        labels = _csv_lines(path, len(data))
    elif isinstance(data, pd.DataFrame):
        labels = _RowLabels(data.index)
    if isinstance(data, pd.DataFrame):
        n_rows = len(data)
        if any(not isinstance(c, str) or c != c.strip() for c in data.columns):
            data = data.rename(columns=lambda c: str(c).strip())
        if SOURCE_COL in data.columns:
            data = data.drop(columns=[SOURCE_COL])
        before = set(data.columns)
        data = apply_recording_columns(data, model_params, free)
        solutions = set(data.columns) - before
        _check_columns(list(data.columns), model_params, free)
        if len(data) != n_rows:
            labels = None
        arrays, cells, squeeze = _from_frame(data)
    elif isinstance(data, xr.Dataset):
        if LJP_COL in data.data_vars and V_COL in data.data_vars:
            data = data.assign({V_COL: data[V_COL] - data[LJP_COL]}).drop_vars(LJP_COL)
        names = [str(n) for n in data.data_vars]
        names += [str(n) for n in data.coords if n in PARAMS and n not in names]
        _check_columns(names, model_params, free)
        arrays, cells, squeeze = _from_dataset(data)
    else:
        raise ValueError(
            f"data must be a pandas DataFrame, an xarray Dataset or a CSV path, got "
            f"{type(data).__name__}"
        )
    mask = arrays.pop("__mask__")
    rows = arrays.pop("__row__", None)
    check_fixed(fixed, [n for n in arrays if n not in (V_COL, SD_COL)], solutions)

    def where(c: int, i: int) -> str:
        return _where(c, i, cells, rows, labels, squeeze)

    V = arrays.pop(V_COL)
    sd = arrays.pop(SD_COL, None)
    full = bool(mask.all())  # no padding

    def real(values: np.ndarray) -> np.ndarray:
        return values.ravel() if full else values[mask]

    for name, values in [(V_COL, V), *([(SD_COL, sd)] if sd is not None else []), *arrays.items()]:
        _check_finite(name, values, cells, mask, where)
    for name, values in arrays.items():
        try:
            check_values(name, real(values))
        except ValueError as err:
            c, i = next(
                (c, i) for c, i in np.argwhere(mask) if not _in_domain(name, values[c, i])
            )
            raise ValueError(f"{err} ({where(c, i)})") from None
    if sd is not None and not np.all(real(sd) > 0):
        raise ValueError(f"data column {SD_COL!r} must be > 0 mV everywhere")
    counts = mask.sum(axis=1)
    short = np.flatnonzero(counts < max(len(free), 1))
    if counts.size == 0 or short.size:
        which = f" (cell {show(cells[short[0]])})" if short.size and not squeeze else ""
        n = int(counts[short[0]]) if short.size else 0
        raise ValueError(
            f"{n} data points{which} but {len(free)} free parameters; each cell needs at "
            "least as many points as free parameters"
        )
    if full:
        return FitData(arrays, V, sd, mask, cells, squeeze)
    first = np.argmax(mask, axis=1)
    rows = np.arange(mask.shape[0])
    for name, values in arrays.items():
        arrays[name] = np.where(mask, values, values[rows, first][:, None])
    if sd is not None:
        sd = np.where(mask, sd, 1.0)
    return FitData(arrays, np.where(mask, V, np.nan), sd, mask, cells, squeeze)
