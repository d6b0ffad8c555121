"""Figures of rpx results: every function takes xarray objects and returns the matplotlib Axes.

Axis labels come from the ``long_name`` and ``units`` attributes rpx writes into every
coordinate and variable, so a figure of a store opened with ``xr.open_zarr`` is labelled
without further work. Parameters swept on a log axis (``rpx.PARAMS[name].log_scale``)
are drawn on a log axis.

* :func:`voltage_lines` — V against one parameter, a line per value of another, with
  the Nernst line of an ion (the classic V-vs-K_o figure);
* :func:`voltage_map` — V over two parameters as a colour map with iso-voltage contours;
* :func:`index_bars` — sensitivity indices (or any per-parameter quantity) as a
  horizontal bar / tornado chart with confidence intervals;
* :func:`histogram` — counts over bins (e.g. from ``rpx reduce``);
* :func:`fit_curve` — measured V with error bars, the fitted model curve and a Nernst line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.axes import Axes

from rpx.physics.formulas import nernst
from rpx.physics.params import PARAMS, VALENCE

__all__ = [
    "fit_curve", "histogram", "index_bars", "label", "select", "voltage_lines", "voltage_map",
]


def label(obj: xr.DataArray, name: str | None = None) -> str:
    """``long_name [units]`` of a DataArray (falls back to its name)."""
    long_name = obj.attrs.get("long_name", name or obj.name or "")
    units = obj.attrs.get("units")
    return f"{long_name} [{units}]" if units and units != "1" else str(long_name)


def _is_log(name: str) -> bool:
    return name in PARAMS and PARAMS[name].log_scale


def _axes(ax: Axes | None) -> Axes:
    return plt.subplots(figsize=(6.4, 4.4))[1] if ax is None else ax


def select(
    da: xr.DataArray, keep: Sequence[str], at: Mapping[str, float] | None = None
) -> xr.DataArray:
    """Reduce ``da`` to the dims ``keep``: other dims at the values ``at`` (nearest), else middle.

    Raises:
        ValueError: a name in ``keep`` or ``at`` is not a dimension of ``da``.
    """
    at = dict(at or {})
    for name in [*keep, *at]:
        if name not in da.dims:
            raise ValueError(f"{name!r} is not a dimension of {da.name!r}; dims: {da.dims}")
    for dim in da.dims:
        if dim in keep:
            continue
        if dim in at:
            da = da.sel({dim: at[dim]}, method="nearest")
        else:
            da = da.isel({dim: da.sizes[dim] // 2})
    return da


def _fixed(da: xr.DataArray, name: str) -> xr.DataArray:
    """A parameter's value: a coordinate of ``da`` (swept or scalar), as a DataArray."""
    if name not in da.coords:
        raise ValueError(f"parameter {name!r} is neither swept nor stored as a coordinate")
    return da.coords[name]


def voltage_lines(
    ds: xr.Dataset | xr.DataArray,
    x: str,
    hue: str | None = None,
    *,
    var: str = "V",
    at: Mapping[str, float] | None = None,
    nernst_ion: str | None = "K",
    ax: Axes | None = None,
) -> Axes:
    """``var`` against parameter ``x``, one line per value of ``hue``, plus a Nernst line.

    Args:
        ds: a sweep Dataset (or the DataArray to plot).
        x: the swept parameter on the horizontal axis (log axis for concentrations and
            permeabilities).
        hue: a second swept parameter, one line per value (at most 12 are drawn,
            evenly picked), or None.
        var: variable to plot when ``ds`` is a Dataset.
        at: values (nearest) of the remaining dims; the middle value otherwise.
        nernst_ion: draw this ion's Nernst potential against ``x`` (dashed), computed
            from the stored coordinates; None for no line.
        ax: Axes to draw into (a new figure otherwise).
    """
    da = ds[var] if isinstance(ds, xr.Dataset) else ds
    keep = [x] + ([hue] if hue else [])
    da = select(da, keep, at)
    ax = _axes(ax)
    if hue:
        idx = np.unique(np.linspace(0, da.sizes[hue] - 1, min(12, da.sizes[hue])).astype(int))
        da = da.isel({hue: idx})
        da.plot.line(x=x, hue=hue, ax=ax, add_legend=True)
        legend = ax.get_legend()
        if legend is not None:
            legend.set_title(label(da[hue], hue))
    else:
        da.plot.line(x=x, ax=ax)
    if nernst_ion:
        z = VALENCE[nernst_ion]
        c_o = _fixed(da, f"{nernst_ion}_o")
        c_i = _fixed(da, f"{nernst_ion}_i")
        T = _fixed(da, "T")
        E = np.asarray(nernst(np.asarray(c_o), np.asarray(c_i), z, np.asarray(T)))
        xs = np.asarray(da[x])
        ax.plot(xs, np.broadcast_to(E, xs.shape), "k--", lw=1.2, label=f"E_{nernst_ion}")
        ax.legend(title=ax.get_legend().get_title().get_text() if ax.get_legend() else None)
    ax.set_xscale("log" if _is_log(x) else "linear")
    ax.set_xlabel(label(da[x], x))
    ax.set_ylabel(label(da, var))
    ax.set_title("")
    return ax


def voltage_map(
    ds: xr.Dataset | xr.DataArray,
    x: str,
    y: str,
    *,
    var: str = "V",
    at: Mapping[str, float] | None = None,
    levels: Sequence[float] | int = 10,
    band: tuple[float, float] | None = None,
    ax: Axes | None = None,
) -> Axes:
    """``var`` over parameters ``x`` and ``y`` as a colour map with iso-voltage contours.

    Args:
        levels: contour levels (mV) or their number.
        band: optionally shade the region where lo <= var <= hi (e.g. (-75, -65) mV).
    """
    da = ds[var] if isinstance(ds, xr.Dataset) else ds
    da = select(da, [x, y], at).transpose(y, x)
    ax = _axes(ax)
    da.plot.pcolormesh(x=x, y=y, ax=ax, cmap="viridis", cbar_kwargs={"label": label(da, var)})
    cs = da.plot.contour(x=x, y=y, ax=ax, levels=levels, colors="white", linewidths=0.8)
    ax.clabel(cs, fmt="%g", fontsize=7)
    if band is not None:
        inside = ((da >= band[0]) & (da <= band[1])).astype(float)
        inside.plot.contourf(
            x=x, y=y, ax=ax, levels=[0.5, 1.5], colors="none", hatches=["//"], add_colorbar=False
        )
    ax.set_xscale("log" if _is_log(x) else "linear")
    ax.set_yscale("log" if _is_log(y) else "linear")
    ax.set_xlabel(label(da[x], x))
    ax.set_ylabel(label(da[y], y))
    ax.set_title("")
    return ax


def index_bars(
    values: xr.DataArray,
    *,
    dim: str = "param",
    conf: xr.DataArray | None = None,
    others: Mapping[str, xr.DataArray] | None = None,
    sort: bool = True,
    ax: Axes | None = None,
) -> Axes:
    """Horizontal bars of a per-parameter quantity (a tornado chart when sorted).

    Args:
        values: 1-D over ``dim`` (e.g. total Sobol indices ``ST`` of V).
        conf: half-widths of confidence intervals, same shape, drawn as error bars.
        others: further 1-D quantities drawn as thinner bars beside ``values`` (e.g.
            ``{"S1": ds["S1"]}``), keyed by legend label.
        sort: order the parameters by |values|, largest on top.
    """
    if values.ndim != 1 or dim not in values.dims:
        raise ValueError(f"index_bars needs a 1-D DataArray over {dim!r}, got dims {values.dims}")
    order = np.argsort(np.abs(np.asarray(values)))[::-1] if sort else np.arange(values.size)
    names = [str(n) for n in np.asarray(values[dim])[order]]
    pos = np.arange(len(names))[::-1]
    ax = _axes(ax)
    series = [(values.name or "value", values, conf)]
    series += [(k, v, None) for k, v in (others or {}).items()]
    height = 0.8 / len(series)
    for j, (name, v, c) in enumerate(series):
        xerr = None if c is None else np.asarray(c)[order]
        ax.barh(pos - j * height, np.asarray(v)[order], height=height, xerr=xerr, label=name)
    ax.set_yticks(pos - 0.4 + height / 2, names)
    ax.axvline(0.0, color="k", lw=0.8)
    ax.set_xlabel(label(values))
    if len(series) > 1:
        ax.legend()
    return ax


def histogram(
    counts: xr.DataArray | xr.Dataset,
    edges: xr.DataArray | np.ndarray | None = None,
    *,
    var: str = "V",
    ax: Axes | None = None,
) -> Axes:
    """A histogram as fractions of the space, from bin counts and their edges.

    Args:
        counts: bin counts, or a Dataset written by ``rpx reduce`` (then its
            ``<var>_hist`` and ``<var>_bin_edge`` are used and labelled).
        edges: the len(counts) + 1 bin edges (not needed for a reduction Dataset).
        var: the reduced variable, for a reduction Dataset.
    """
    xlabel = None
    if isinstance(counts, xr.Dataset):
        ds = counts
        if f"{var}_hist" not in ds:
            raise ValueError(f"no histogram of {var!r} in this Dataset (no {var}_hist)")
        counts, edges = ds[f"{var}_hist"], ds[f"{var}_bin_edge"]
        xlabel = f"{var} [{edges.attrs.get('units', '')}]"
    if edges is None:
        raise ValueError("histogram needs the bin edges")
    edges = np.asarray(edges)
    c = np.asarray(counts, dtype=float)
    if edges.shape != (c.size + 1,):
        raise ValueError(f"edges must have {c.size + 1} values, got {edges.shape}")
    ax = _axes(ax)
    total = c.sum()
    ax.stairs(c / total if total > 0 else c, edges, fill=True, alpha=0.7)
    ax.set_ylabel("fraction of the space")
    if xlabel is None and isinstance(counts, xr.DataArray):
        xlabel = counts.attrs.get("x_label", label(counts))
    ax.set_xlabel(xlabel or "")
    return ax


def fit_curve(
    data: xr.Dataset,
    curve: xr.DataArray,
    x: str,
    *,
    nernst_ion: str | None = "K",
    ax: Axes | None = None,
) -> Axes:
    """Measured V (points, with ``V_sd`` error bars if present), a model curve and Nernst line.

    Args:
        data: measurements with a variable ``V`` (mV) and coordinate or variable ``x``.
        curve: model V over a 1-D coordinate ``x`` (e.g. the fitted model evaluated on
            a fine grid); its coordinate ``x`` also carries the Nernst line if
            ``nernst_ion`` is given and the curve has the ion's concentrations and ``T``
            as coordinates.
    """
    ax = _axes(ax)
    xs = np.asarray(data[x])
    yerr = np.asarray(data["V_sd"]) if "V_sd" in data else None
    ax.errorbar(xs, np.asarray(data["V"]), yerr=yerr, fmt="o", ms=4, label="measured")
    ax.plot(np.asarray(curve[x]), np.asarray(curve), "-", label=curve.attrs.get("label", "fit"))
    if nernst_ion:
        c_o, c_i = _fixed(curve, f"{nernst_ion}_o"), _fixed(curve, f"{nernst_ion}_i")
        E = nernst(np.asarray(c_o), np.asarray(c_i), VALENCE[nernst_ion], np.asarray(curve["T"]))
        xc = np.asarray(curve[x])
        ax.plot(xc, np.broadcast_to(np.asarray(E), xc.shape), "k--", lw=1.0,
                label=f"E_{nernst_ion}")
    ax.set_xscale("log" if _is_log(x) else "linear")
    ax.set_xlabel(label(curve[x], x))
    ax.set_ylabel(label(data["V"], "V"))
    ax.legend()
    return ax
