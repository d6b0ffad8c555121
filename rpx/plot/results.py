"""Figures of the other result kinds: sensitivity indices, reductions, fits, time courses."""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from rpx.physics.params import PARAMS
from rpx.plot._common import (
    SEQUENTIAL,
    apply_scale,
    axis_scale,
    fmt,
    label,
    line_colours,
    nan_note,
    new_axes,
    new_figure,
    resolve_nernst,
    set_xlabel,
    set_ylabel,
    status_of,
    unique_labels,
    wrap_title,
)

# ------------------------------------------------------------------------ sensitivity
Series = xr.DataArray | tuple[xr.DataArray, xr.DataArray | None]


def index_bars(
    values: xr.DataArray,
    *,
    dim: str = "param",
    conf: xr.DataArray | None = None,
    others: Mapping[str, Series] | None = None,
    sort: bool = True,
    ax: Axes | None = None,
) -> Axes:
    """Horizontal bars of a per-parameter quantity (a tornado chart when sorted).

    Args:
        values: 1-D over ``dim`` (e.g. total Sobol' indices ``ST`` of V).
        conf: half-widths of confidence intervals, same shape, drawn as error bars.
        others: further 1-D quantities drawn as bars beside ``values``, keyed by legend
            label; each a DataArray or ``(values, conf)``.
        sort: order the parameters by |values|, largest on top.

    Raises:
        ValueError: ``values`` is not 1-D over ``dim``.
    """
    if values.ndim != 1 or dim not in values.dims:
        raise ValueError(f"index_bars needs a 1-D DataArray over {dim!r}, got dims {values.dims}")
    v0 = np.asarray(values, dtype=np.float64)
    order = np.argsort(np.nan_to_num(np.abs(v0), nan=-1.0))[::-1] if sort else np.arange(v0.size)
    names = [str(n) for n in np.asarray(values[dim])[order]]
    pos = np.arange(len(names))[::-1].astype(np.float64)
    ax = new_axes(ax, figsize=(5.6, 1.2 + 0.35 * len(names)))
    series: list[tuple[str, xr.DataArray, Any]] = [(str(values.name or "value"), values, conf)]
    for k, s in (others or {}).items():
        v, c = s if isinstance(s, tuple) else (s, None)
        series.append((k, v, c))
    height = 0.8 / len(series)
    for j, (name, v, c) in enumerate(series):
        vv = np.asarray(v.sel({dim: names}) if dim in v.dims else v, dtype=np.float64)
        if dim not in v.dims:
            vv = vv[order]
        xerr = None
        if c is not None:
            xerr = np.asarray(c.sel({dim: names}) if dim in c.dims else np.asarray(c)[order],
                              dtype=np.float64)
        ax.barh(pos + 0.4 - (j + 0.5) * height, vv, height=height, xerr=xerr, label=name,
                color=f"C{j}", error_kw={"elinewidth": 1.0, "capsize": 2})
    ax.set_yticks(pos, names)
    ax.set_ylim(-0.6, len(names) - 0.4)
    ax.axvline(0.0, color="k", lw=0.8)
    set_xlabel(ax, values)
    coord = values[dim]
    ax.set_ylabel(str(coord.attrs.get("long_name", dim)))
    if len(series) > 1:
        ax.legend(fontsize=8)
    return ax


_SENS_BARS = {
    "sobol": ("ST", [("S1", "first order S1")], "total ST"),
    "morris": ("mu_star", [("sigma", "σ")], "μ*"),
    "dgsm": ("dgsm_bound", [], "DGSM bound on ST"),
}


def sensitivity(ds: xr.Dataset, output: str | None = None) -> Figure:
    """Global sensitivity indices of one output with their confidence intervals.

    Sobol': total (ST) and first-order (S1) bars with bootstrap error bars, and the
    second-order indices S2 as a matrix (value ± half-width in each cell) when stored.
    Morris: μ* and σ bars. DGSM: the bound on the total index. The title names the
    method, model, sample size and the confidence level.

    Args:
        ds: a Dataset of :func:`rpx.sensitivity` (or a store written by ``rpx
            sensitivity``).
        output: the output whose indices to draw (default: the first stored).

    Returns:
        The Figure (one or two Axes).

    Raises:
        ValueError: not a sensitivity Dataset, or an unknown output.
    """
    method = str(ds.attrs.get("method", ""))
    if method not in _SENS_BARS or "param" not in ds.dims:
        raise ValueError("not a sensitivity Dataset (needs attrs 'method' and a 'param' dim)")
    outputs = list(np.atleast_1d(ds.attrs.get("outputs", [])))
    out = output or (outputs[0] if outputs else "V")
    main, extra, main_label = _SENS_BARS[method]
    if f"{out}_{main}" not in ds:
        have = sorted({str(k).rsplit(f"_{main}", 1)[0] for k in ds.data_vars
                       if str(k).endswith(f"_{main}")})
        raise ValueError(f"output {out!r} has no indices here; outputs: {', '.join(have)}")
    s2 = f"{out}_S2" in ds and "param_2" in ds.dims
    d = ds.sizes["param"]
    fig = new_figure((5.6 + (0.6 * d + 2.8 if s2 else 0.0), 1.6 + 0.4 * d))
    axes = fig.subplots(1, 2 if s2 else 1, squeeze=False)[0]

    def conf_of(k: str) -> xr.DataArray | None:
        return ds.get(f"{out}_{k}_conf")

    others = {lab: (ds[f"{out}_{k}"], conf_of(k)) for k, lab in extra if f"{out}_{k}" in ds}
    ax = index_bars(ds[f"{out}_{main}"].rename(main_label), conf=conf_of(main),
                    others=others, ax=axes[0])
    units = str(ds[f"{out}_{main}"].attrs.get("units", "1"))
    ax.set_xlabel(f"{method} index of {out}" + (f" [{units}]" if units != "1" else ""))
    level = ds.attrs.get("conf_level")
    nb = int(ds.attrs.get("n_boot", 0) or 0)
    ci = f"; bars ± {100 * float(level):g}% bootstrap CI" if level and nb else ""
    wrap_title(ax, f"{method} indices of {out} ({ds.attrs.get('model', '?')}, "
                   f"n = {ds.attrs.get('n', '?')}{ci})")
    if s2:
        m = ds[f"{out}_S2"].transpose("param", "param_2")
        vals = np.asarray(m, dtype=np.float64)
        conf = ds.get(f"{out}_S2_conf")
        cv = None if conf is None else np.asarray(conf.transpose("param", "param_2"), np.float64)
        ax2 = axes[1]
        names = [str(n) for n in ds["param"].values]
        show = np.where(np.triu(np.ones_like(vals, dtype=bool), 1), vals, np.nan)
        finite = show[np.isfinite(show)]
        top = max(float(finite.max()) if finite.size else 0.0, 1e-12)
        im = ax2.imshow(show, cmap=SEQUENTIAL, vmin=min(0.0, float(finite.min()) if finite.size
                                                         else 0.0), vmax=top)
        ax2.set_xticks(range(d), names, rotation=45, ha="right")
        ax2.set_yticks(range(d), names)
        ax2.set_xlabel("second parameter")
        ax2.set_ylabel("first parameter")
        for i in range(d):
            for j in range(i + 1, d):
                if np.isfinite(vals[i, j]) and d <= 8:
                    txt = f"{vals[i, j]:.2f}" + ("" if cv is None else f"\n±{cv[i, j]:.2f}")
                    ax2.text(j, i, txt, ha="center", va="center", fontsize=7,
                             color="white" if vals[i, j] < 0.6 * top else "black")
        fig.colorbar(im, ax=ax2, label="second-order Sobol' index S2")
        wrap_title(ax2, f"second-order indices of {out}")
    return fig


# ------------------------------------------------------------------------- reductions
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
            ``<var>_hist`` and ``<var>_bin_edge`` are used and labelled, and the counts
            below, above and NaN are stated in the title).
        edges: the len(counts) + 1 bin edges (not needed for a reduction Dataset).
        var: the reduced variable, for a reduction Dataset.

    Raises:
        ValueError: no histogram of ``var``, missing or mismatched edges.
    """
    xlabel, title = None, ""
    if isinstance(counts, xr.Dataset):
        ds = counts
        if f"{var}_hist" not in ds:
            have = [str(k)[:-5] for k in ds.data_vars if str(k).endswith("_hist")]
            raise ValueError(f"no histogram of {var!r} in this Dataset (no {var}_hist); "
                             f"histograms: {', '.join(have) or 'none'}")
        counts, edges = ds[f"{var}_hist"], ds[f"{var}_bin_edge"]
        xlabel = f"{var} [{edges.attrs.get('units', '')}]"
        out = {w: int(ds[f"{var}_{w}"]) for w in ("below", "above", "nan") if f"{var}_{w}" in ds}
        if out:
            e = np.asarray(edges)
            title = (f"outside the bins: {out.get('below', 0)} below {fmt(e[0])}, "
                     f"{out.get('above', 0)} above {fmt(e[-1])}, {out.get('nan', 0)} NaN")
    if edges is None:
        raise ValueError("histogram needs the bin edges")
    edges = np.asarray(edges, dtype=np.float64)
    c = np.asarray(counts, dtype=np.float64)
    if edges.shape != (c.size + 1,):
        raise ValueError(f"edges must have {c.size + 1} values, got {edges.shape}")
    ax = new_axes(ax, figsize=(5.6, 3.6))
    total = c.sum()
    ax.stairs(c / total if total > 0 else c, edges, fill=True, alpha=0.7)
    ax.set_ylabel("fraction of the space")
    if xlabel is None and isinstance(counts, xr.DataArray):
        xlabel = counts.attrs.get("x_label", label(counts))
    ax.set_xlabel(xlabel or "")
    wrap_title(ax, title)
    return ax


_MARGINAL = re.compile(r"^(?P<var>.+)_(?P<stat>mean|var|min|max|count)_by_(?P<by>.+)$")


def parse_marginal(name: str) -> tuple[str, str, str] | None:
    """``("V", "mean", "K_o")`` for ``"V_mean_by_K_o"``; None for other names."""
    m = _MARGINAL.match(name)
    return (m["var"], m["stat"], m["by"]) if m else None


def marginal(
    ds: xr.Dataset,
    x: str,
    *,
    var: str = "V",
    xscale: str = "auto",
    ax: Axes | None = None,
) -> Axes:
    """The mean of ``var`` over all other dimensions against ``x``, with its spread.

    Draws the mean, a band of mean ± 1 standard deviation (``<var>_var_by_<x>``, ddof 0)
    and a lighter band from the minimum to the maximum, from a reduction Dataset
    (``rpx reduce``). ``var`` may also be a full name such as ``"V_mean_by_K_o"``.

    Raises:
        ValueError: the Dataset holds no marginal of ``var`` over ``x``.
    """
    parsed = parse_marginal(var)
    if parsed:
        var, _, by = parsed
        if by != x:
            raise ValueError(f"{parsed[0]}_{parsed[1]}_by_{by} is over {by!r}, not x={x!r}")
    name = f"{var}_mean_by_{x}"
    if name not in ds:
        have = sorted(k for k in map(str, ds.data_vars) if "_mean_by_" in k)
        raise ValueError(f"no marginal {name!r} in this Dataset; marginals: "
                         f"{', '.join(have) or 'none'}")
    mean = ds[name]
    xs = np.asarray(ds[x].values, dtype=np.float64)
    mu = np.asarray(mean.values, dtype=np.float64)
    ax = new_axes(ax, figsize=(5.6, 3.8))
    lo_hi = [ds.get(f"{var}_{s}_by_{x}") for s in ("min", "max")]
    if all(a is not None for a in lo_hi):
        ax.fill_between(xs, np.asarray(lo_hi[0], np.float64), np.asarray(lo_hi[1], np.float64),
                        color="C0", alpha=0.15, lw=0, label="min … max")
    if f"{var}_var_by_{x}" in ds:
        sd = np.sqrt(np.asarray(ds[f"{var}_var_by_{x}"].values, dtype=np.float64))
        ax.fill_between(xs, mu - sd, mu + sd, color="C0", alpha=0.35, lw=0, label="mean ± 1 sd")
    ax.plot(xs, mu, color="C0", lw=1.8, label="mean")
    apply_scale(ax, "x", axis_scale(xs, x, xscale))
    set_xlabel(ax, ds[x], x)
    set_ylabel(ax, mean)
    ax.legend(fontsize=8)
    return ax


# ------------------------------------------------------------------------------- fits
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
            a fine grid); the Nernst line of ``nernst_ion`` is computed along it from
            its coordinates (the ion's concentrations and ``T``).
    """
    if "units" not in curve.attrs:  # a model V by contract
        curve = curve.assign_attrs(units="mV")
    ax = new_axes(ax)
    xs = np.asarray(data[x], dtype=np.float64)
    yerr = np.asarray(data["V_sd"], dtype=np.float64) if "V_sd" in data else None
    ax.errorbar(xs, np.asarray(data["V"], np.float64), yerr=yerr, fmt="o", ms=4,
                label="measured", color="k")
    xc = np.asarray(curve[x], dtype=np.float64)
    ax.plot(xc, np.asarray(curve, np.float64), "-", label=curve.attrs.get("label", "fit"))
    E = resolve_nernst(curve, nernst_ion, str(curve.name or "V"), None) if nernst_ion else None
    if E is not None:
        Ev = np.broadcast_to(np.asarray(E.broadcast_like(curve[x]).values), xc.shape)
        ax.plot(xc, Ev, "k--", lw=1.0, label=f"E_{nernst_ion}")
    apply_scale(ax, "x", axis_scale(np.concatenate([xs, xc]), x))
    set_xlabel(ax, curve[x], x)
    set_ylabel(ax, data["V"], "V")
    ax.legend(fontsize=8)
    return ax


def _fit_conditions(ds: xr.Dataset) -> list[str]:
    return [str(k) for k in ds.data_vars if str(k) in PARAMS and "point" in ds[k].dims]


def fit_result(
    ds: xr.Dataset,
    x: str | None = None,
    *,
    cells: Sequence[Any] | None = None,
    max_cells: int = 6,
    points: int = 120,
) -> Figure:
    """A fit store: data with error bars and fitted curves per cell, and estimates ± SE.

    Left: the measured V (``V_obs`` ± ``V_sd``) against the condition ``x`` (default: the
    one with the most distinct values), the model V at the fitted parameters on a fine
    grid of ``x`` through each cell's data range (other conditions that change with
    ``x`` are interpolated linearly in log–log between the data points, exact for
    constant or power-law designs such as K_o·Cl_o constant), and ``V_fit`` at the data
    points (crosses). Right: each free parameter's estimate ± 1 SE per cell, on a log
    axis for log-scale parameters.

    Args:
        ds: a Dataset of :func:`rpx.fit` (or a store of ``rpx fit``).
        x: the condition on the horizontal axis.
        cells: labels of the cells to draw curves for (default: the first ``max_cells``;
            the title says how many of how many). The estimates panel shows every cell.
        points: points of each fitted curve.

    Raises:
        ValueError: not a fit Dataset, an unknown condition or cell.
    """
    from rpx.physics.api import resting_potential

    if "V_obs" not in ds or "point" not in ds.dims:
        raise ValueError("not a fit Dataset (needs V_obs over 'point')")
    conds = _fit_conditions(ds)
    if not conds:
        raise ValueError("the fit Dataset stores no condition variables over 'point'")
    if x is None:
        x = max(conds, key=lambda c: np.unique(np.asarray(ds[c])[np.isfinite(ds[c])]).size)
    elif x not in conds:
        raise ValueError(f"x={x!r} is not a condition of this fit; conditions: {', '.join(conds)}")
    free = [str(p) for p in np.atleast_1d(ds.attrs.get("free", []))] or [
        str(p) for p in ds["param"].values
    ]
    model = str(ds.attrs.get("model", "ghk"))
    if "cell" in ds.dims:
        labels = list(np.asarray(ds["cell"].values)) if "cell" in ds.coords else list(
            range(ds.sizes["cell"]))
    else:
        labels = ["0"]
    if cells is None:
        chosen = list(range(min(max_cells, len(labels))))
    else:
        chosen = []
        for c in cells:
            if c not in labels:
                raise ValueError(f"cell {c!r} is not in the fit; cells: {labels[:10]}…")
            chosen.append(labels.index(c))
    fixed = {str(k): float(ds[k]) for k in ds.data_vars if str(k) in PARAMS and ds[k].ndim == 0}
    fig = new_figure((10.0, 4.2))
    ax, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    colours = [f"C{i % 10}" for i in range(len(chosen))]
    all_x = []
    for col, i in zip(colours, chosen, strict=True):
        cell = ds.isel(cell=i) if "cell" in ds.dims else ds
        ok = np.isfinite(np.asarray(cell["V_obs"], np.float64))
        xv = np.asarray(cell[x], np.float64)[ok]
        all_x.append(xv)
        yerr = np.asarray(cell["V_sd"], np.float64)[ok] if "V_sd" in cell else None
        name = str(labels[i])
        ax.errorbar(xv, np.asarray(cell["V_obs"], np.float64)[ok], yerr=yerr, fmt="o", ms=4,
                    color=col, label=(name if name.startswith("cell") else f"cell {name}")
                    if len(labels) > 1 else "measured")
        ax.plot(xv, np.asarray(cell["V_fit"], np.float64)[ok], "x", color=col, ms=5)
        order = np.argsort(xv)
        xv_s = xv[order]
        est_ok = all(np.isfinite(float(cell[p])) for p in free if p in cell)
        if xv_s.size >= 2 and xv_s[0] < xv_s[-1] and est_ok:  # no curve for a failed fit
            log_x = bool(np.all(xv_s > 0))
            grid = (np.geomspace if log_x else np.linspace)(xv_s[0], xv_s[-1], points)
            params = dict(fixed)
            params.update({p: float(cell[p]) for p in free if p in cell})
            for c in conds:
                cv = np.asarray(cell[c], np.float64)[ok][order]
                if c == x:
                    params[c] = grid
                elif np.all(cv == cv[0]):
                    params[c] = float(cv[0])
                elif log_x and np.all(cv > 0):
                    params[c] = np.exp(np.interp(np.log(grid), np.log(xv_s), np.log(cv)))
                else:
                    params[c] = np.interp(grid, xv_s, cv)
            V = np.asarray(resting_potential(params, model=model), dtype=np.float64)
            ax.plot(grid, V, "-", color=col, lw=1.3)
    xs_all = np.concatenate(all_x) if all_x else np.array([1.0])
    apply_scale(ax, "x", axis_scale(xs_all, x))
    set_xlabel(ax, ds[x], x)
    set_ylabel(ax, ds["V_obs"])
    n_cells = len(labels)
    ax.plot([], [], "k-", label=f"{model} fit")
    ax.plot([], [], "kx", label="fit at the data")
    ax.legend(fontsize=7, ncols=2 if len(chosen) > 4 else 1)
    shown = f"{len(chosen)} of {n_cells} cells" if len(chosen) < n_cells else ""
    v_obs = np.asarray(ds["V_obs"], np.float64)
    missing = int(np.isnan(v_obs).sum())
    gaps = f"{missing} of {v_obs.size} measured points NaN (no data)" if missing else ""
    wrap_title(ax, "; ".join(t for t in (f"rpx fit of {model}", shown, gaps) if t))
    # estimates ± SE: one row per cell, in black (colour marks cells on the left only),
    # one marker shape per free parameter; a linear axis carries its power of ten in
    # the axis label ("P_Na [1e-07 cm/s]"), never in a detached offset text
    pos = np.arange(n_cells)[::-1].astype(np.float64)
    ax2.set_yticks(pos, [str(c) for c in labels] if n_cells <= 30 else [""] * n_cells)
    twins = [ax2] + [ax2.twiny() for _ in free[1:]]
    markers = ("o", "s", "^", "D", "v", "P")
    for k, (p, a) in enumerate(zip(free, twins, strict=True)):
        est = np.atleast_1d(np.asarray(ds[p], np.float64))
        se = np.atleast_1d(np.asarray(ds[f"{p}_se"], np.float64)) if f"{p}_se" in ds else None
        off = (k - (len(free) - 1) / 2) * 0.8 / max(len(free), 1)
        scale = axis_scale(est, p)
        factor = 1.0
        if scale == "linear":
            finite = np.abs(est[np.isfinite(est)])
            top = float(finite.max()) if finite.size else 0.0
            exp = int(np.floor(np.log10(top))) if top > 0 else 0
            factor = 10.0 ** exp if abs(exp) >= 3 else 1.0
        mk = markers[k % len(markers)]
        a.errorbar(est / factor, pos + off, xerr=None if se is None else se / factor, fmt=mk,
                   ms=4, color="k", mfc="k" if k == 0 else "white", capsize=2,
                   label=str(p))
        apply_scale(a, "x", scale)  # linear: whole tick labels, no offset text
        units = str(ds[p].attrs.get("units", ""))
        units = "" if units == "1" else units
        long_name = str(ds[p].attrs.get("long_name", p))
        unit_text = " ".join(t for t in (f"{factor:.0e}" if factor != 1.0 else "", units) if t)
        xl = f"{'' if len(free) == 1 else mk + ' '}{long_name}"
        a.set_xlabel(label(xr.DataArray(0.0, attrs={"long_name": xl, "units": unit_text}),
                           p, width=40))
    if len(free) > 1:
        handles = [h for a in twins for h in a.get_legend_handles_labels()[0]]
        ax2.legend(handles, free, fontsize=7)
    ax2.set_ylabel("cell")
    notes = [nan_note(ds[p].rename(p), status_of(ds)) for p in free]
    wrap_title(ax2, "; ".join(["estimate ± 1 SE"] + [f"{p}: {n}" for p, n in
                                                     zip(free, notes, strict=True) if n]))
    return fig


# ----------------------------------------------------------------------- time courses
def _events(ds: xr.Dataset) -> list[dict[str, Any]]:
    text = ds.attrs.get("events")
    if not text:
        return []
    try:
        ev = ast.literal_eval(str(text))
    except (ValueError, SyntaxError):
        return []
    return [e for e in ev if isinstance(e, dict) and "t" in e]


def _event_text(e: Mapping[str, Any]) -> str:
    parts = []
    for k, v in (e.get("set") or {}).items():
        parts.append(f"{k} = {_short(v)}")
    for k, v in (e.get("scale") or {}).items():
        parts.append(f"{k} ×{_short(v)}")
    return ", ".join(parts)


def _short(v: Any) -> str:
    a = np.atleast_1d(np.asarray(v, dtype=np.float64))
    return fmt(a[0]) if a.size == 1 else "/".join(fmt(x) for x in a[:4]) + ("…" if a.size > 4
                                                                             else "")


def timecourse(
    ds: xr.Dataset,
    variables: Sequence[str] | None = None,
    *,
    time_unit: str = "auto",
    ncols: int = 2,
) -> Figure:
    """Time courses of :func:`rpx.simulate`: V, concentrations and volume against time.

    One panel per variable (default: V, volume and the intracellular Na+, K+, Cl−
    stored), sharing the time axis; one line per parameter set (legend of the values
    that differ between sets, or a colorbar beyond :data:`~rpx.plot.MAX_LEGEND` sets);
    event times as dotted vertical lines, described in the title. Sets whose status is
    not 0 are drawn dashed.

    Args:
        ds: the Dataset of :func:`rpx.simulate` (dims ``time`` or ``(set, time)``).
        variables: names to draw.
        time_unit: "s", "min", "h" or "auto" (h beyond 2 h, min beyond 2 min).

    Raises:
        ValueError: no ``time`` dim, an unknown variable or time unit.
    """
    if "time" not in ds.dims:
        raise ValueError("not a time course (no 'time' dimension)")
    if variables is None:
        variables = [v for v in ("V", "volume", "Na_i", "K_i", "Cl_i") if v in ds]
    for v in variables:
        if v not in ds.data_vars:
            raise ValueError(f"{v!r} is not in the time course; variables: {list(ds.data_vars)}")
    t = np.asarray(ds["time"].values, dtype=np.float64)
    span = float(np.nanmax(np.abs(t))) if t.size else 0.0
    if time_unit == "auto":
        time_unit = "h" if span > 7200 else "min" if span > 120 else "s"
    div = {"s": 1.0, "min": 60.0, "h": 3600.0}.get(time_unit)
    if div is None:
        raise ValueError(f"time_unit must be one of auto, s, min, h, got {time_unit!r}")
    n = len(variables)
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig = new_figure((4.2 * ncols, 2.6 * nrows + 0.6))
    axes = np.atleast_1d(fig.subplots(nrows, ncols, sharex=True, squeeze=False)).ravel()
    sets = ds.sizes.get("set", 0)
    varying = [str(k) for k, c in ds.coords.items() if c.dims == ("set",) and k != "set"]
    if sets:
        if varying:
            vals = [", ".join(f"{k} = {lab}" for k, lab in zip(
                varying, [unique_labels(np.asarray(ds[k].values, np.float64))[i] for k in varying],
                strict=True)) for i in range(sets)]
        else:
            vals = [f"set {i}" for i in range(sets)]
    status = np.atleast_1d(np.asarray(ds["status"].values)) if "status" in ds else None
    events = _events(ds)
    colours: list[Any] = []
    labs: list[str] | None = None
    if sets:
        if len(varying) == 1 and sets > 8:  # one colorbar for the figure
            name = varying[0]
            colours, labs = line_colours(axes[0], ds[name].values, name, ds[name],
                                         axis_scale(ds[name].values, name))
        elif sets > 8:  # ordered colours, no legend
            cmap = plt.get_cmap(SEQUENTIAL)
            colours, labs = [cmap(p) for p in np.linspace(0.0, 0.85, sets)], None
        else:
            colours, labs = [f"C{i % 10}" for i in range(sets)], vals
    # an event changes the state at once: no line joins the last sample before an event
    # to the first one at or after it (that segment would be a ramp starting before the
    # event); the samples themselves are marked
    t_ev = sorted({float(e["t"]) for e in events})
    cut = np.searchsorted(t, t_ev, side="left")
    cut = np.unique(cut[(cut > 0) & (cut < t.size)])
    tx = np.insert(t / div, cut, np.nan)
    mark = "." if t.size <= 400 else None
    for k, (ax, v) in enumerate(zip(axes, variables, strict=False)):
        da = ds[v]
        if sets:
            y = np.asarray(da.transpose("set", "time").values, dtype=np.float64)
            for i in range(sets):
                bad = status is not None and status.size == sets and status[i] != 0
                ax.plot(tx, np.insert(y[i], cut, np.nan), "--" if bad else "-",
                        color=colours[i], lw=1.4, marker=mark, ms=3,
                        label=None if labs is None or k else labs[i])
        else:
            ax.plot(tx, np.insert(np.asarray(da.values, np.float64), cut, np.nan), "-",
                    color="C0", lw=1.4, marker=mark, ms=3)
        for e in events:
            ax.axvline(float(e["t"]) / div, color="0.4", ls=":", lw=1.0)
        long_name = str(da.attrs.get("long_name", v)).replace(
            "resting membrane potential", "membrane potential")
        set_ylabel(ax, da.copy().assign_attrs(long_name=long_name), v)
        ax.set_xlabel(f"time [{time_unit}]")
        ax.xaxis.set_tick_params(labelbottom=True)
        note = nan_note(da, status_of(ds))
        if note:
            wrap_title(ax, note, fontsize=8)
    for ax in axes[n:]:
        ax.set_visible(False)
    if sets and labs is not None:
        axes[0].legend(fontsize=7)
    desc = "; ".join(f"t = {fmt(float(e['t']) / div)} {time_unit}: {_event_text(e)}"
                     for e in events[:4])
    if len(events) > 4:
        desc += f"; … ({len(events)} events)"
    if events:
        fig.suptitle("events (dotted): " + desc, fontsize=9)
    return fig
