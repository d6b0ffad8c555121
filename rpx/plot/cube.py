"""Figures of sweep cubes: lines against one dimension, colour maps over two."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr
from matplotlib import ticker
from matplotlib.axes import Axes
from matplotlib.patches import PathPatch
from matplotlib.path import Path

from rpx.plot._common import (
    DIVERGING,
    SEQUENTIAL,
    apply_scale,
    axis_scale,
    cell_edges,
    fmt,
    is_voltage,
    label,
    line_colours,
    nan_note,
    new_axes,
    pick,
    resolve_nernst,
    select_held,
    set_xlabel,
    set_ylabel,
    slice_title,
    spec_values,
    status_of,
    units_of,
    whole_ticks,
    wrap_title,
)


def _data(ds: xr.Dataset | xr.DataArray, var: str) -> tuple[xr.DataArray, dict]:
    if isinstance(ds, xr.Dataset):
        if var not in ds.data_vars:
            raise ValueError(f"var {var!r} is not in the Dataset; variables: {list(ds.data_vars)}")
        return ds[var], dict(ds.attrs)
    return ds, dict(ds.attrs)


def voltage_lines(
    ds: xr.Dataset | xr.DataArray,
    x: str,
    hue: str | None = None,
    *,
    var: str = "V",
    at: Mapping[str, float] | None = None,
    nernst_ion: str | None = "auto",
    xscale: str = "auto",
    ax: Axes | None = None,
) -> Axes:
    """``var`` against dimension ``x``, one line per value of ``hue``, plus a Nernst line.

    Args:
        ds: a sweep Dataset (or the DataArray to plot; dask-backed arrays are read only
            at the plotted slice).
        x: the dimension on the horizontal axis.
        hue: a second dimension, one line per value, or None. Up to
            :data:`~rpx.plot.MAX_LEGEND` lines get one legend entry each (values to 3
            significant figures); more get a colorbar of a sequential colormap; beyond
            :data:`~rpx.plot.MAX_LINES` values an even pick is drawn (the title says so).
        var: variable to plot when ``ds`` is a Dataset.
        at: values of the other dims (the nearest grid value is used; a value outside
            an axis is an error); unnamed dims are held at their middle value. The held
            values are stated in the title.
        nernst_ion: ``"auto"`` (default): the K+ Nernst potential (dashed) when ``var``
            is a voltage (units mV) and K_o, K_i and T are known (coordinates of the
            store or its spec); an ion name ("K", "Na", "Cl", "Ca") to require it; None
            for no line. Computed with :func:`rpx.physics.formulas.nernst`.
        xscale: "auto" (see :func:`rpx.plot.axis_scale`), "linear" or "log".
        ax: Axes to draw into (a new figure with constrained layout otherwise).

    Returns:
        The Axes.

    Raises:
        ValueError: unknown dims or variable, a value of ``at`` outside its axis, a
            Nernst line asked for a variable that is not a voltage.
    """
    da, attrs = _data(ds, var)
    keep = [x] + ([hue] if hue else [])
    da, held = select_held(da, keep, at)
    E = resolve_nernst(da, nernst_ion, var, spec_values(attrs))
    ax = new_axes(ax)
    xs = np.asarray(da[x].values, dtype=np.float64)
    scale = axis_scale(xs, x, xscale)
    notes = []
    if hue:
        hv = np.asarray(da[hue].values)
        idx = pick(hv.size)
        if idx.size < hv.size:
            notes.append(f"{idx.size} of {hv.size} {hue} values shown")
        da = da.isel({hue: idx})
        values = np.asarray(da.transpose(hue, x).values, dtype=np.float64)
        hscale = axis_scale(hv, hue)
        colours, labels = line_colours(ax, hv[idx], hue, da[hue], hscale)
        for i in range(idx.size):
            ax.plot(xs, values[i], color=colours[i], lw=1.5,
                    label=None if labels is None else labels[i])
    else:
        ax.plot(xs, np.asarray(da.values, dtype=np.float64), lw=1.5, color="C0", label=var)
    if E is not None:
        ion = "K" if nernst_ion == "auto" else nernst_ion
        if hue and hue in E.dims:
            Ev = np.asarray(E.isel({hue: idx}).broadcast_like(da).transpose(hue, x).values)
            for i in range(idx.size):
                ax.plot(xs, Ev[i], "--", color=colours[i], lw=1.0,
                        label=f"E_{ion} (Nernst, dashed)" if i == 0 else None)
        else:
            Ev = np.broadcast_to(np.asarray(E.broadcast_like(da[x]).values), xs.shape)
            ax.plot(xs, Ev, "k--", lw=1.0, label=f"E_{ion} (Nernst)")
    apply_scale(ax, "x", scale)
    set_xlabel(ax, da[x], x)
    set_ylabel(ax, da, var)
    handles, labs = ax.get_legend_handles_labels()
    if hue and labs:
        # one entry per line (legend), or the Nernst line alone beside a colorbar
        hue_units = units_of(da[hue])
        title = (f"{hue} [{hue_units}]" if hue_units else hue) if labels is not None else None
        ax.legend(title=title, fontsize=8, title_fontsize=8)
    elif not hue and E is not None:
        ax.legend(fontsize=8)
    notes.append(nan_note(da, status_of(ds), held))
    wrap_title(ax, "; ".join([t for t in [slice_title(da, held), *notes] if t]))
    return ax


def _levels(levels: Sequence[float] | int, lo: float, hi: float) -> np.ndarray:
    if isinstance(levels, (int, np.integer)):
        if not np.isfinite(lo) or not np.isfinite(hi) or hi <= lo:
            return np.array([])
        cand = ticker.MaxNLocator(int(levels) + 1).tick_values(lo, hi)
        return cand[(cand > lo) & (cand < hi)]
    return np.asarray(sorted(levels), dtype=np.float64)


def band_path(
    mask: np.ndarray, xe: np.ndarray, ye: np.ndarray
) -> Path | None:
    """One compound path of the cells where ``mask`` (shape (ny, nx)) is true: a
    rectangle per run of true cells along x, on the cell edges ``xe``, ``ye``."""
    rects = []
    for j in range(mask.shape[0]):
        row = np.concatenate([[False], mask[j], [False]])
        d = np.diff(row.astype(np.int8))
        for i0, i1 in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1), strict=True):
            x0, x1, y0, y1 = xe[i0], xe[i1], ye[j], ye[j + 1]
            rects.append(Path([(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)], closed=True))
    return Path.make_compound_path(*rects) if rects else None


def voltage_map(
    ds: xr.Dataset | xr.DataArray,
    x: str,
    y: str,
    *,
    var: str = "V",
    at: Mapping[str, float] | None = None,
    levels: Sequence[float] | int = 8,
    band: tuple[float, float] | None = None,
    xscale: str = "auto",
    yscale: str = "auto",
    ax: Axes | None = None,
) -> Axes:
    """``var`` over dimensions ``x`` and ``y``: a colour map, labelled contours and a band.

    Every grid point is one cell of the map, centred on its coordinates (cell edges at
    the midpoints, geometric midpoints on a log axis). A voltage gets a sequential
    colormap over the data's own range; another quantity whose values change sign gets a
    diverging one symmetric about 0. Contours are drawn after the axis scales are set,
    so their labels sit on their lines.

    Args:
        levels: contour levels (in the variable's units) or about how many.
        band: ``(lo, hi)``: hatch exactly the cells whose value lies in lo <= var <= hi
            (the legend counts them); none are hatched when no value lies in the band.
        at, xscale, yscale, ax: as in :func:`voltage_lines` (the held values are in the
            title).

    Returns:
        The Axes (the colorbar is attached to its figure).

    Raises:
        ValueError: unknown dims or variable, ``at`` outside an axis, a band with
            lo > hi.
    """
    da, _ = _data(ds, var)
    status = status_of(ds)
    if band is not None:
        lo_b, hi_b = (float(b) for b in band)
        if not lo_b <= hi_b:
            raise ValueError(f"band must be (lo, hi) with lo <= hi, got {band!r}")
    da, held = select_held(da, [x, y], at)
    da = da.transpose(y, x)
    z = np.asarray(da.values, dtype=np.float64)
    xs = np.asarray(da[x].values, dtype=np.float64)
    ys = np.asarray(da[y].values, dtype=np.float64)
    sx, sy = axis_scale(xs, x, xscale), axis_scale(ys, y, yscale)
    xe, ye = cell_edges(xs, sx), cell_edges(ys, sy)
    ax = new_axes(ax)
    apply_scale(ax, "x", sx)
    apply_scale(ax, "y", sy)
    finite = z[np.isfinite(z)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if hi == lo:
        lo, hi = lo - 0.5, hi + 0.5
    if not is_voltage(da) and lo < 0 < hi:
        m = max(-lo, hi)
        cmap, vmin, vmax = DIVERGING, -m, m
    else:
        cmap, vmin, vmax = SEQUENTIAL, lo, hi
    mesh = ax.pcolormesh(xe, ye, z, cmap=cmap, vmin=vmin, vmax=vmax, shading="flat")
    cb = ax.figure.colorbar(mesh, ax=ax)
    cb.set_label(label(da, var, width=36))
    whole_ticks(cb.ax.yaxis)
    lv = _levels(levels, lo, hi)
    if lv.size and xs.size > 1 and ys.size > 1 and finite.size:
        cs = ax.contour(xs, ys, z, levels=lv, colors="0.1", linewidths=0.7,
                        linestyles="solid", alpha=0.8)
        ax.clabel(cs, inline=True, fmt=lambda v: fmt(v), fontsize=7)
    band_text = ""
    if band is not None:
        mask = np.isfinite(z) & (z >= lo_b) & (z <= hi_b)
        units = units_of(da)
        band_text = (
            f"hatched: {fmt(lo_b)} ≤ {var} ≤ {fmt(hi_b)}" + (f" {units}" if units else "")
            + f" ({int(mask.sum())} of {mask.size} points)"
        )
        path = band_path(mask, xe, ye)
        if path is not None:
            for hatch, colour in (("///", "black"), ("\\\\\\", "white")):
                ax.add_patch(PathPatch(path, facecolor="none", edgecolor=colour, hatch=hatch,
                                       lw=0.0, gid="band"))
    ax.set_xlim(xe[0], xe[-1])
    ax.set_ylim(ye[0], ye[-1])
    apply_scale(ax, "x", sx)
    apply_scale(ax, "y", sy)
    set_xlabel(ax, da[x], x)
    set_ylabel(ax, da[y], y)
    wrap_title(ax, "; ".join(t for t in (slice_title(da, held), band_text,
                                         nan_note(da, status, held)) if t))
    return ax
