"""Figures of rpx results: every function takes xarray objects and returns matplotlib
Axes (one panel) or a Figure (several panels).

Axis labels come from the ``long_name`` and ``units`` attributes rpx writes into every
coordinate and variable (wrapped, units kept whole, never clipped: new figures use
constrained layout). An axis is logarithmic only for a geometric (``logspace``) axis,
linear for evenly spaced values or values that include 0 (:func:`axis_scale`;
overridable). The values of the dimensions held fixed are stated in the title; ``at=``
outside an axis is an error naming the range.

* :func:`voltage_lines` — V (or any variable) against one dimension, a line per value of
  another (legend up to :data:`MAX_LEGEND` lines, colorbar beyond), with the Nernst line
  of an ion when the variable is a voltage;
* :func:`voltage_map` — a variable over two dimensions: colour map, labelled contours,
  hatched band of the exact grid points in a range;
* :func:`sensitivity` — S1/ST (Morris μ*/σ, DGSM bound) bars with confidence intervals
  and S2 as a matrix; :func:`index_bars` the bars alone;
* :func:`histogram`, :func:`marginal` — reduction stores (``rpx reduce``);
* :func:`fit_result` — fit stores: data with error bars, fitted curves per cell,
  estimates ± SE; :func:`fit_curve` data with one model curve and a Nernst line;
* :func:`timecourse` — :func:`rpx.simulate` results with event times marked;
* :func:`explore` — interactive inspection of a cube in a notebook (ipywidgets);
* :func:`plot_store` — the figure for any store, by its kind (:func:`store_kind`);
* :func:`readability_problems` — clipped labels or overlapping tick labels of a figure.
"""

from __future__ import annotations

from typing import Any

import xarray as xr

from rpx.plot._common import (
    MAX_LEGEND,
    MAX_LINES,
    axis_scale,
    label,
    readability_problems,
    select,
    slice_title,
)
from rpx.plot.cube import voltage_lines, voltage_map
from rpx.plot.explore import Explorer, explore
from rpx.plot.results import (
    fit_curve,
    fit_result,
    histogram,
    index_bars,
    marginal,
    parse_marginal,
    sensitivity,
    timecourse,
)

__all__ = [
    "MAX_LEGEND", "MAX_LINES", "KINDS", "Explorer", "axis_scale", "explore", "fit_curve",
    "fit_result", "histogram", "index_bars", "label", "marginal", "parse_marginal",
    "plot_store", "readability_problems", "select", "sensitivity", "slice_title",
    "store_kind", "timecourse", "voltage_lines", "voltage_map",
]

#: The store kinds :func:`store_kind` recognises.
KINDS = ("sweep", "reduction", "sensitivity", "fit", "timecourse")
_KIND_ALIASES = {
    "sweep": "sweep", "cube": "sweep", "reduction": "reduction", "reduce": "reduction",
    "reductions": "reduction", "sensitivity": "sensitivity", "fit": "fit",
    "simulate": "timecourse", "simulation": "timecourse", "timecourse": "timecourse",
    "time_course": "timecourse",
}


def store_kind(ds: xr.Dataset) -> str:
    """What an rpx Dataset holds: one of :data:`KINDS`.

    Read from what is there: an explicit ``kind`` attribute when it names a known kind;
    otherwise ``reduce_hash`` → reduction (checked before ``spec_hash``, which reductions
    also carry), ``spec_hash``/``spec`` → sweep, a ``param`` dimension with ``method``
    and ``<out>_S1``/``_mu_star``/``_dgsm`` variables → sensitivity, ``V_obs`` and
    ``V_fit`` → fit, a ``time`` dimension → time course.

    Raises:
        ValueError: none of these match.
    """
    attrs = ds.attrs
    kind = str(attrs.get("kind", "")).strip().lower()
    if kind in _KIND_ALIASES:
        return _KIND_ALIASES[kind]
    if "reduce_hash" in attrs or any(str(k).endswith("_hist") or "_mean_by_" in str(k)
                                     for k in ds.data_vars):
        return "reduction"
    if "spec_hash" in attrs or "spec" in attrs:
        return "sweep"
    if "param" in ds.dims and any(
        str(k).endswith(("_S1", "_ST", "_mu_star", "_dgsm_bound")) for k in ds.data_vars
    ):
        return "sensitivity"
    if "V_obs" in ds.data_vars and "V_fit" in ds.data_vars:
        return "fit"
    if "time" in ds.dims:
        return "timecourse"
    raise ValueError(
        "not an rpx store that can be plotted: expected a sweep (attr spec_hash), a reduction "
        "(reduce_hash), a sensitivity (param dim, *_S1/_mu_star/_dgsm_bound), a fit "
        "(V_obs, V_fit) or a time course (time dim)"
    )


def plot_store(ds: xr.Dataset, **kw: Any) -> Any:
    """The default figure of any rpx Dataset, by :func:`store_kind`.

    Keywords go to the figure function: sweep → :func:`voltage_lines` (``x``
    required; with ``y`` → :func:`voltage_map`), reduction → :func:`marginal` (with
    ``x``) or :func:`histogram`, sensitivity → :func:`sensitivity`, fit →
    :func:`fit_result`, time course → :func:`timecourse`.

    Returns:
        The Axes or Figure of the figure function.
    """
    kind = store_kind(ds)
    if kind == "sweep":
        kw = dict(kw)
        y = kw.pop("y", None)
        if y is not None:
            kw.pop("hue", None)
            kw.pop("nernst_ion", None)
            return voltage_map(ds, kw.pop("x"), y, **kw)
        return voltage_lines(ds, kw.pop("x"), kw.pop("hue", None), **kw)
    if kind == "reduction":
        return marginal(ds, **kw) if kw.get("x") else histogram(ds, **{k: v for k, v in
                                                                      kw.items() if k != "x"})
    if kind == "sensitivity":
        return sensitivity(ds, **kw)
    if kind == "fit":
        return fit_result(ds, **kw)
    return timecourse(ds, **kw)
