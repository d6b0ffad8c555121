"""Shared pieces of the figures: labels, axis scales, slicing, line colours, Nernst lines.

Nothing here draws a whole figure; the figure modules (``cube``, ``results``,
``explore``) use these helpers so that every figure follows the same rules:

* axis labels are ``long_name [units]``, wrapped to the axis length with the units kept
  on the last line, so they are never clipped;
* an axis is logarithmic only when its values are a geometric progression (a
  ``logspace`` axis) or, for irregular values, when the parameter is a log-scale one and
  the values span a decade; linear when any value is <= 0 (see :func:`axis_scale`);
* the values of every dimension held fixed are stated in the title (:func:`slice_title`);
* up to :data:`MAX_LEGEND` lines get one legend entry each (3 significant figures, more
  only where needed to tell them apart); more lines get a colorbar of a sequential
  colormap.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib import colors as mcolors
from matplotlib import ticker
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from rpx.physics.params import PARAMS, VALENCE

#: Most lines that get one legend entry each; beyond, a colorbar.
MAX_LEGEND = 8
#: Most lines drawn against one axis (evenly picked beyond; the title says so).
MAX_LINES = 64
#: Sequential colormap for ordered values (line families, voltage maps).
SEQUENTIAL = "viridis"
#: Diverging colormap for signed non-voltage quantities (symmetric about 0).
DIVERGING = "RdBu_r"
SCALES = ("auto", "linear", "log")


# ------------------------------------------------------------------------------ text
def fmt(value: float, sig: int = 3) -> str:
    """``value`` to ``sig`` significant figures (``%g`` style)."""
    return f"{float(value):.{sig}g}"


def unique_labels(values: Sequence[float], sig: int = 3) -> list[str]:
    """Values to ``sig`` significant figures, more where two would read the same."""
    for s in range(sig, 10):
        out = [fmt(v, s) for v in values]
        if len(set(out)) == len(out):
            return out
    return [repr(float(v)) for v in values]


def label(obj: xr.DataArray, name: str | None = None, width: int | None = None) -> str:
    """``long_name [units]`` of a DataArray (falls back to its name).

    Args:
        width: wrap the long name to lines of about this many characters, keeping
            ``[units]`` whole on the last line; None: one line.
    """
    long_name = str(obj.attrs.get("long_name", name or obj.name or ""))
    units = obj.attrs.get("units")
    tail = f"[{units}]" if units and units != "1" else ""
    if width is None or len(long_name) + len(tail) + 1 <= width:
        return f"{long_name} {tail}".strip()
    lines = textwrap.wrap(long_name, width=max(10, width)) or [""]
    if tail:
        if len(lines[-1]) + len(tail) + 1 <= width:
            lines[-1] = f"{lines[-1]} {tail}"
        else:
            lines.append(tail)
    return "\n".join(lines)


def _chars(ax: Axes, which: str, fontsize: float | None = None) -> int:
    """About how many label characters fit along the ``which`` ('x'/'y') axis of ``ax``."""
    fig = ax.figure
    pos = ax.get_position()
    w, h = fig.get_size_inches()
    length = (pos.width * w if which == "x" else pos.height * h) * 72.0  # points
    size = fontsize or plt.rcParams["axes.labelsize"]
    if isinstance(size, str):
        size = 10.0
    return max(16, int(length / (0.55 * float(size))))


def set_xlabel(ax: Axes, da: xr.DataArray, name: str | None = None) -> None:
    """Label the x axis from ``da``'s attributes, wrapped to the axis width."""
    ax.set_xlabel(label(da, name, width=_chars(ax, "x")))


def set_ylabel(ax: Axes, da: xr.DataArray, name: str | None = None) -> None:
    """Label the y axis from ``da``'s attributes, wrapped to the axis height (a linear
    axis gets whole tick labels, :func:`whole_ticks`)."""
    ax.set_ylabel(label(da, name, width=_chars(ax, "y")))
    if ax.get_yscale() == "linear":
        whole_ticks(ax.yaxis)


def wrap_title(ax: Axes, text: str, fontsize: float = 9.0) -> None:
    """A title of ``ax``, wrapped to the axis width (slices can name many dimensions)."""
    width = _chars(ax, "x", fontsize) + 8
    ax.set_title("\n".join(textwrap.wrap(text, width)) if text else "", fontsize=fontsize)


def units_of(da: xr.DataArray) -> str:
    units = str(da.attrs.get("units", ""))
    return "" if units == "1" else units


# ---------------------------------------------------------------------------- scales
def axis_scale(values: Any, name: str | None = None, override: str | None = "auto") -> str:
    """``"log"`` or ``"linear"`` for an axis with these coordinate values.

    Rules: an explicit ``override`` ("linear" or "log") wins (log is refused when a value
    is <= 0); values that include 0 or negatives → linear; 3+ values evenly spaced (a
    ``linspace`` or ``values`` in steps) → linear; 3+ values in a constant ratio (a
    ``logspace``) → log; otherwise (irregular, or 1–2 values) log only for a parameter
    whose ``rpx.PARAMS[name].log_scale`` is set and whose values span at least a decade.

    Raises:
        ValueError: ``override`` is not one of auto, linear, log, or log is asked for
            values that are not all positive.
    """
    if override not in (None, *SCALES):
        raise ValueError(f"scale must be one of {', '.join(SCALES)}, got {override!r}")
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    positive = v.size > 0 and bool(np.all(v > 0))
    if override == "linear":
        return "linear"
    if override == "log":
        if not positive:
            raise ValueError(
                f"a log axis needs positive values; {name or 'the axis'} has values <= 0"
            )
        return "log"
    if not positive:
        return "linear"
    s = np.unique(v)
    if s.size >= 3:
        d = np.diff(s)
        if np.allclose(d, d[0], rtol=1e-6, atol=0.0):
            return "linear"
        r = s[1:] / s[:-1]
        if np.allclose(r, r[0], rtol=1e-6, atol=0.0):
            return "log"
    if name in PARAMS and PARAMS[name].log_scale and s[-1] / s[0] >= 10.0:
        return "log"
    return "linear"


def apply_scale(ax: Axes, which: str, scale: str) -> None:
    """Set the ``which`` ('x'/'y') axis scale; log axes get ``%g`` labels at powers of 10
    (and at 2 and 5 when the axis spans less than about two decades)."""
    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)(scale)
    if scale != "log":
        whole_ticks(axis)
        return
    lo, hi = (ax.get_xlim() if which == "x" else ax.get_ylim())
    decades = np.log10(max(hi, lo) / max(min(hi, lo), 1e-300))
    axis.set_major_locator(ticker.LogLocator(base=10.0, numticks=7))
    axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    if decades < 1.5:
        axis.set_minor_locator(ticker.LogLocator(base=10.0, subs=(2.0, 5.0), numticks=7))
        axis.set_minor_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    else:
        axis.set_minor_locator(ticker.LogLocator(base=10.0, subs=np.arange(2, 10), numticks=12))
        axis.set_minor_formatter(ticker.NullFormatter())


def _whole(v: float, _pos: Any = None) -> str:
    return "0" if v == 0 else f"{v:.6g}"


def whole_ticks(axis: Any) -> None:
    """Tick labels of a linear axis (or colorbar axis) written in full (``%g``: "2e-08",
    "0.5", "120"), never as mantissas with a detached ``×1e-8`` offset text that is
    easily misread by a power of ten."""
    axis.set_major_formatter(ticker.FuncFormatter(_whole))


def cell_edges(c: np.ndarray, scale: str) -> np.ndarray:
    """The len(c)+1 edges of cells centred on coordinates ``c`` (midpoints; geometric
    midpoints on a log axis), the outer edges half a step beyond the ends."""
    c = np.asarray(c, dtype=np.float64)
    if c.size == 1:
        return np.array([c[0] * 0.9, c[0] * 1.1]) if scale == "log" else np.array(
            [c[0] - 0.5, c[0] + 0.5]
        )
    t = np.log(c) if scale == "log" else c
    mid = (t[1:] + t[:-1]) / 2
    e = np.concatenate([[t[0] - (mid[0] - t[0])], mid, [t[-1] + (t[-1] - mid[-1])]])
    return np.exp(e) if scale == "log" else e


# --------------------------------------------------------------------------- slicing
def _in_range(name: str, coord: xr.DataArray, value: float) -> None:
    vals = np.asarray(coord.values, dtype=np.float64)
    lo, hi = float(np.nanmin(vals)), float(np.nanmax(vals))
    tol = 1e-9 * max(abs(lo), abs(hi), 1e-300)
    if not (lo - tol <= value <= hi + tol):
        units = units_of(coord)
        raise ValueError(
            f"at {name}={value:g} is outside the range of {name}: {lo:g} … {hi:g}"
            + (f" {units}" if units else "")
        )


def select_held(
    da: xr.DataArray, keep: Sequence[str], at: Mapping[str, float] | None = None
) -> tuple[xr.DataArray, dict[str, float]]:
    """:func:`select` plus the values at which the other dims are held, ``{dim: value}``."""
    at = dict(at or {})
    keep = list(keep)
    if len(set(keep)) != len(keep):
        raise ValueError(f"the plotted dimensions must differ, got {keep}")
    for name in [*keep, *at]:
        if name not in da.dims:
            raise ValueError(
                f"{name!r} is not a dimension of {da.name!r}; dims: {', '.join(map(str, da.dims))}"
            )
    for name in at:
        if name in keep:
            raise ValueError(f"{name!r} is plotted; it cannot also be held with at=")
    index: dict[str, int] = {}
    held: dict[str, float] = {}
    for dim in da.dims:
        if dim in keep:
            continue
        coord = da[dim]
        if dim in at:
            try:
                value = float(at[dim])
            except (TypeError, ValueError):
                raise ValueError(f"at {dim}={at[dim]!r}: expected a number") from None
            if not np.isfinite(value):
                raise ValueError(f"at {dim}={value}: expected a finite number")
            _in_range(str(dim), coord, value)
            vals = np.asarray(coord.values, dtype=np.float64)
            index[dim] = int(np.nanargmin(np.abs(vals - value)))
        else:
            index[dim] = da.sizes[dim] // 2
        held[str(dim)] = float(np.asarray(coord.values)[index[dim]])
    return (da.isel(index) if index else da), held


def select(
    da: xr.DataArray, keep: Sequence[str], at: Mapping[str, float] | None = None
) -> xr.DataArray:
    """Reduce ``da`` to the dims ``keep``: other dims at the values ``at`` (nearest grid
    value), else at their middle value. Lazy: on a dask-backed array only the slice is
    read when the result is computed.

    Raises:
        ValueError: a name in ``keep`` or ``at`` is not a dimension of ``da``, a dim is
            both kept and held, or a value in ``at`` lies outside its axis (the message
            names the range).
    """
    return select_held(da, keep, at)[0]


def slice_title(da: xr.DataArray, held: Mapping[str, float]) -> str:
    """``"at Na_i = 10 mM, P_Na = 1e-08 cm/s"``: the values of the held dimensions."""
    parts = []
    for name, value in held.items():
        units = units_of(da[name]) if name in da.coords else ""
        parts.append(f"{name} = {fmt(value)}" + (f" {units}" if units else ""))
    return ("at " + ", ".join(parts)) if parts else ""


# ------------------------------------------------------------------------ line colours
def line_colours(
    ax: Axes, values: Sequence[float], name: str, coord: xr.DataArray, scale: str
) -> tuple[list[Any], list[str] | None]:
    """Colours for one line per value of ``name`` and their legend labels.

    Up to :data:`MAX_LEGEND` values: colours from the sequential colormap and one label
    per value (3 significant figures, more only to tell values apart). Beyond: a
    colorbar of the colormap labelled with ``coord`` (log norm on a log axis) and no
    labels (None).
    """
    values = np.asarray(values, dtype=np.float64)
    cmap = plt.get_cmap(SEQUENTIAL)
    n = values.size
    if n <= MAX_LEGEND:
        pos = np.linspace(0.0, 0.85, n) if n > 1 else np.array([0.0])
        return [cmap(p) for p in pos], unique_labels(values)
    lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
    norm = mcolors.LogNorm(lo, hi) if scale == "log" else mcolors.Normalize(lo, hi)
    sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    cb = ax.figure.colorbar(sm, ax=ax)
    cb.set_label(label(coord, name, width=_chars(ax, "y")))
    if scale != "log":
        whole_ticks(cb.ax.yaxis)
    return [cmap(norm(v)) for v in values], None


def pick(n: int, most: int = MAX_LINES) -> np.ndarray:
    """Indices of at most ``most`` of ``n`` items, evenly spread, ends included."""
    return np.unique(np.linspace(0, n - 1, min(n, most)).round().astype(int))


# ---------------------------------------------------------------------------- figures
def new_axes(ax: Axes | None, figsize: tuple[float, float] = (6.4, 4.4)) -> Axes:
    """``ax``, or the Axes of a new figure with constrained layout (labels never clipped)."""
    if ax is not None:
        return ax
    fig = plt.figure(figsize=figsize, layout="constrained")
    return fig.add_subplot()


def new_figure(figsize: tuple[float, float]) -> Figure:
    return plt.figure(figsize=figsize, layout="constrained")


def is_voltage(da: xr.DataArray) -> bool:
    """Whether ``da`` is a membrane potential (stored in mV)."""
    return str(da.attrs.get("units", "")).strip() == "mV"


# ----------------------------------------------------------------------------- Nernst
def spec_values(attrs: Mapping[str, Any]) -> dict[str, float]:
    """Fixed parameter values implied by a store's ``spec`` attribute (its preset plus
    its fixed overrides); empty when there is no spec."""
    text = attrs.get("spec")
    if not text:
        return {}
    try:
        spec = json.loads(text)
    except (TypeError, ValueError):
        return {}
    from rpx.physics.presets import preset

    try:
        values = dict(preset(spec.get("preset") or "default"))
    except (KeyError, ValueError):
        values = {}
    values.update({k: float(v) for k, v in (spec.get("fixed") or {}).items()})
    return values


def param_array(
    da: xr.DataArray, name: str, extra: Mapping[str, float] | None = None
) -> xr.DataArray | None:
    """Parameter ``name`` as a DataArray broadcastable against ``da``: its coordinate
    (swept or scalar), else a value from ``extra`` (e.g. the store's spec), else None."""
    if name in da.coords:
        return da.coords[name].astype(np.float64)
    if extra and name in extra:
        return xr.DataArray(float(extra[name]))
    return None


def nernst_of(
    da: xr.DataArray, ion: str, extra: Mapping[str, float] | None = None
) -> xr.DataArray | None:
    """The Nernst potential (mV) of ``ion`` over ``da``'s coordinates, or None when a
    concentration or T is not known. Equation: :func:`rpx.physics.formulas.nernst`."""
    from rpx.physics.formulas import nernst

    if ion not in VALENCE:
        raise ValueError(f"nernst_ion must be one of {', '.join(VALENCE)} or None, got {ion!r}")
    parts = [param_array(da, n, extra) for n in (f"{ion}_o", f"{ion}_i", "T")]
    if any(p is None for p in parts):
        return None
    c_o, c_i, T = xr.broadcast(*parts)
    E = np.asarray(
        nernst(np.asarray(c_o.values), np.asarray(c_i.values), VALENCE[ion], np.asarray(T.values)),
        dtype=np.float64,
    )
    return xr.DataArray(E, dims=c_o.dims, coords={d: c_o[d] for d in c_o.dims if d in c_o.coords})


def resolve_nernst(
    da: xr.DataArray, nernst_ion: str | None, var: str, extra: Mapping[str, float] | None
) -> xr.DataArray | None:
    """The Nernst line to draw for ``nernst_ion`` ("auto": K+ for a voltage when its
    concentrations are known, else none).

    Raises:
        ValueError: an ion is named for a variable that is not a voltage, or its
            concentrations or T are neither coordinates nor in the store's spec.
    """
    if nernst_ion is None or str(nernst_ion).lower() == "none":
        return None
    if nernst_ion == "auto":
        return nernst_of(da, "K", extra) if is_voltage(da) else None
    if not is_voltage(da):
        raise ValueError(
            f"nernst_ion={nernst_ion!r}: {var!r} is in {da.attrs.get('units', 'no units')!r}, "
            "not a voltage (mV); a Nernst line is drawn only against voltages"
        )
    E = nernst_of(da, nernst_ion, extra)
    if E is None:
        raise ValueError(
            f"nernst_ion={nernst_ion!r}: {nernst_ion}_o, {nernst_ion}_i and T are not all "
            f"known for {var!r} (neither coordinates nor in the store's spec)"
        )
    return E


# ------------------------------------------------------------------------ readability
def readability_problems(fig: Figure) -> list[str]:
    """What makes ``fig`` hard to read, as text (empty: nothing found).

    Checked after a draw with the figure's own renderer: every axis label, title,
    colorbar label and legend lies inside the figure (nothing clipped when saved without
    ``bbox_inches="tight"``), and the tick labels of each axis do not overlap.
    """
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    problems: list[str] = []

    def inside(artist: Any, what: str) -> None:
        if not artist.get_visible():
            return
        if hasattr(artist, "get_text") and not artist.get_text():
            return
        bb = artist.get_window_extent(renderer)
        if bb.width == 0 and bb.height == 0:
            return
        if bb.x0 < box.x0 - 1 or bb.y0 < box.y0 - 1 or bb.x1 > box.x1 + 1 or bb.y1 > box.y1 + 1:
            text = artist.get_text() if hasattr(artist, "get_text") else type(artist).__name__
            problems.append(f"{what} {text!r} is clipped by the figure edge")

    for i, ax in enumerate(fig.axes):
        inside(ax.xaxis.label, f"axes {i}: x label")
        inside(ax.yaxis.label, f"axes {i}: y label")
        inside(ax.title, f"axes {i}: title")
        if ax.get_legend() is not None:
            inside(ax.get_legend(), f"axes {i}: legend")
        for which, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            labels = [
                t for t in axis.get_ticklabels(which="both")
                if t.get_visible() and t.get_text()
            ]
            lo, hi = (ax.get_xlim() if which == "x" else ax.get_ylim())
            lo, hi = min(lo, hi), max(lo, hi)
            labels = [t for t in labels if lo <= t.get_position()[0 if which == "x" else 1] <= hi]
            boxes = sorted(
                (t.get_window_extent(renderer) for t in labels),
                key=lambda b: b.x0 if which == "x" else b.y0,
            )
            for a, b in zip(boxes, boxes[1:], strict=False):
                overlap = (a.x1 - b.x0) if which == "x" else (a.y1 - b.y0)
                if overlap > 0.5:
                    problems.append(f"axes {i}: {which} tick labels overlap")
                    break
    return problems


# ------------------------------------------------------------------------ NaN status
def _meanings(status: xr.DataArray) -> dict[int, str]:
    values = np.atleast_1d(np.asarray(status.attrs.get("flag_values", []))).ravel()
    text = status.attrs.get("flag_meanings", "")
    names = text.split() if isinstance(text, str) else [str(m) for m in np.atleast_1d(text)]
    return {int(v): str(m) for v, m in zip(values, names, strict=False)}


def nan_note(
    da: xr.DataArray, status: xr.DataArray | None, held: Mapping[str, float] | None = None
) -> str:
    """What the NaN points of the plotted ``da`` mean: ``"12 of 36 points NaN:
    10 sodium_depleted, 2 not_converged"``; empty when nothing drawn is NaN.

    ``status`` is the store's ``status`` variable (``flag_values``/``flag_meanings``
    attributes, CF convention), taken at the values ``held`` of the dims not drawn and
    broadcast against ``da``; without one the note says the status is not stored.
    """
    v = np.asarray(da.values, dtype=np.float64)
    nan = ~np.isfinite(v)
    n = int(nan.sum())
    if n == 0:
        return ""
    head = f"{n} of {v.size} points NaN"
    if status is None or "flag_values" not in status.attrs:
        return head + " (no status stored)"
    st = status
    sel = {d: held[d] for d in st.dims if held and d in held and d not in da.dims}
    if sel:
        st = st.sel(sel, method="nearest")
    shared = {d: da[d].values for d in st.dims if d in da.dims and d in da.coords
              and d in st.coords}
    try:
        st = st.sel(shared) if shared else st  # the drawn subset (e.g. picked lines)
    except (KeyError, ValueError):
        return head + " (status not on the plotted grid)"
    st = st.drop_vars([c for c in st.coords if c not in st.dims])
    try:
        codes = np.asarray(st.broadcast_like(da.drop_vars(
            [c for c in da.coords if c not in da.dims])).transpose(*da.dims).values)
    except (ValueError, KeyError):
        return head + " (status not on the plotted grid)"
    codes = np.broadcast_to(codes, v.shape)[nan]
    names = _meanings(status)
    parts = []
    for code, count in zip(*np.unique(codes, return_counts=True), strict=True):
        name = names.get(int(code), f"status {int(code)}") if np.isfinite(code) else "no status"
        parts.append(f"{int(count)} {name}" if len(np.unique(codes)) > 1 else name)
    return f"{head}: " + ", ".join(parts)


def status_of(ds: Any) -> xr.DataArray | None:
    """The ``status`` variable of a Dataset, or None."""
    return ds["status"] if isinstance(ds, xr.Dataset) and "status" in ds.data_vars else None
