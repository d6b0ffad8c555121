"""Interactive inspection of a cube in a notebook: :func:`explore`.

Built on ipywidgets (imported on first use): a drop-down for the variable, one for the
horizontal dimension and one for an optional second (map) dimension, and a selection
slider for every other dimension. Each change re-draws a matplotlib figure (Agg) from
the selected slice only — :func:`rpx.plot.select` slices the lazy, dask-backed array
before anything is computed — and shows it as a PNG in an ``ipywidgets.Image``, so it
needs no extra front-end extension and works on cubes larger than memory. Where no
widget front end exists (plain Python, a static notebook viewer, ipywidgets missing) the
explorer is a static figure of the initial slice; its display bundle always carries that
PNG beside the widget, so exported notebooks show the figure too.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from rpx.plot._common import fmt, units_of
from rpx.plot.cube import voltage_lines, voltage_map

NONE = "(lines)"


def widget_frontend() -> bool:
    """Whether ipywidgets can be shown here: importable, inside a Jupyter kernel."""
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


class Explorer:
    """A figure of one slice of a cube, with widgets that move through the cube.

    Attributes:
        figure: the matplotlib Figure (redrawn on every change; not managed by pyplot).
        var, x, y: the shown variable, horizontal dimension and map dimension (None:
            lines).
        at: ``{dim: value}`` of every other dimension of ``var``.
        widget: the ``ipywidgets.VBox`` (None for the static fallback).
        controls: ``{"var"|"x"|"y": Dropdown}``; sliders: ``{dim: SelectionSlider}``.
    """

    def __init__(
        self,
        ds: xr.Dataset | xr.DataArray,
        var: str | None = None,
        x: str | None = None,
        y: str | None = None,
        at: Mapping[str, float] | None = None,
        *,
        widgets: bool | None = None,
        figsize: tuple[float, float] = (6.4, 4.4),
        dpi: int = 90,
    ) -> None:
        if isinstance(ds, xr.DataArray):
            ds = ds.to_dataset(name=str(ds.name or "value"))
        self.ds = ds
        self.choices = [str(k) for k, v in ds.data_vars.items()
                        if v.ndim >= 1 and np.issubdtype(v.dtype, np.number)]
        if not self.choices:
            raise ValueError("explore needs a Dataset with at least one numeric array variable")
        var = var or ("V" if "V" in self.choices else self.choices[0])
        if var not in self.choices:
            raise ValueError(f"var {var!r} is not an array variable; choose from {self.choices}")
        self.var = var
        dims = self._dims(var)
        self.x = x or dims[0]
        if self.x not in dims:
            raise ValueError(f"x={self.x!r} is not a dimension of {var!r}; dims: {dims}")
        if y is not None and (y not in dims or y == self.x):
            raise ValueError(f"y={y!r} must be another dimension of {var!r}; dims: {dims}")
        self.y = y
        self.at: dict[str, float] = {}
        unknown = [d for d in (at or {}) if d not in self._held()]
        if unknown:
            raise ValueError(f"at: {unknown} are not held dimensions; held: {self._held()}")
        self._check(at or {})
        self._reset_at(at or {})
        self.dpi = dpi
        self.figure = Figure(figsize=figsize, layout="constrained")
        FigureCanvasAgg(self.figure)
        self.widget: Any = None
        self.controls: dict[str, Any] = {}
        self.sliders: dict[str, Any] = {}
        self._image: Any = None
        self._slider_box: Any = None
        self._busy = False
        use = widget_frontend() if widgets is None else widgets
        if use:
            self._build()
        self.draw()

    # ----------------------------------------------------------------- state
    def _dims(self, var: str) -> list[str]:
        da = self.ds[var]
        return [str(d) for d in da.dims if da.sizes[d] >= 2] or [str(d) for d in da.dims]

    def _held(self) -> list[str]:
        return [str(d) for d in self.ds[self.var].dims if d not in (self.x, self.y)]

    def _reset_at(self, at: Mapping[str, float]) -> None:
        old = {**self.at, **at}
        self.at = {}
        for d in self._held():
            c = np.asarray(self.ds[d].values)
            if d in old:
                i = int(np.nanargmin(np.abs(c.astype(np.float64) - float(old[d]))))
            else:
                i = c.size // 2
            self.at[d] = float(c[i])

    def _check(self, at: Mapping[str, float]) -> None:
        for d, v in at.items():
            c = np.asarray(self.ds[d].values, dtype=np.float64)
            lo, hi = float(c.min()), float(c.max())
            tol = 1e-9 * max(abs(lo), abs(hi), 1e-300)
            if not lo - tol <= float(v) <= hi + tol:
                units = units_of(self.ds[d])
                raise ValueError(f"at {d}={float(v):g} is outside the range of {d}: "
                                 f"{lo:g} … {hi:g}" + (f" {units}" if units else ""))

    @property
    def ax(self) -> Axes:
        """The main Axes of the figure (the first one)."""
        return self.figure.axes[0]

    def draw(self) -> None:
        """Redraw the figure for the current ``var``, ``x``, ``y`` and ``at`` (only that
        slice of the store is read) and update the image widget."""
        self.figure.clear()
        ax = self.figure.add_subplot()
        if self.y:
            voltage_map(self.ds, self.x, self.y, var=self.var, at=self.at, ax=ax)
        else:
            voltage_lines(self.ds, self.x, var=self.var, at=self.at, ax=ax)
        if self._image is not None:
            self._image.value = self.png()

    def png(self) -> bytes:
        """The current figure as PNG bytes."""
        buf = io.BytesIO()
        self.figure.savefig(buf, format="png", dpi=self.dpi)
        return buf.getvalue()

    def set(self, **at: float) -> None:
        """Hold dimensions at new values (nearest grid value) and redraw: ``set(Na_i=20)``.

        Raises:
            ValueError: a name that is not a held dimension, a value outside its axis.
        """
        for d in at:
            if d not in self.at:
                raise ValueError(f"{d!r} is not a held dimension; held: {list(self.at)}")
        self._check(at)
        self._busy = True
        try:
            self._reset_at({d: float(v) for d, v in at.items()})
            for d, s in self.sliders.items():
                s.value = self.at[d]
        finally:
            self._busy = False
        self.draw()

    # --------------------------------------------------------------- widgets
    def _make_sliders(self) -> list[Any]:
        import ipywidgets as w

        self.sliders = {}
        for d in self._held():
            c = np.asarray(self.ds[d].values)
            units = units_of(self.ds[d])
            opts = [(f"{fmt(v)} {units}".strip(), float(v)) for v in c]
            s = w.SelectionSlider(options=opts, value=self.at[d], description=d,
                                  continuous_update=False,
                                  layout=w.Layout(width="95%"),
                                  style={"description_width": "initial"})
            s.observe(self._on_slider, names="value")
            self.sliders[d] = s
        return list(self.sliders.values())

    def _build(self) -> None:
        try:
            import ipywidgets as w
        except ImportError as err:
            raise ImportError(
                "rpx.plot.explore(widgets=True) needs ipywidgets: pip install 'rpx[notebook]'"
            ) from err

        dims = self._dims(self.var)
        self.controls = {
            "var": w.Dropdown(options=self.choices, value=self.var, description="variable"),
            "x": w.Dropdown(options=dims, value=self.x, description="x"),
            "y": w.Dropdown(options=[NONE, *[d for d in dims if d != self.x]],
                            value=self.y or NONE, description="map over"),
        }
        for c in self.controls.values():
            c.observe(self._on_control, names="value")
            c.layout = w.Layout(width="auto")
        self._image = w.Image(format="png")
        self._slider_box = w.VBox(self._make_sliders())
        self.widget = w.VBox([w.HBox(list(self.controls.values())), self._slider_box,
                              self._image])

    def _on_slider(self, change: Mapping[str, Any]) -> None:
        if self._busy:
            return
        for d, s in self.sliders.items():
            self.at[d] = float(s.value)
        self.draw()

    def _on_control(self, change: Mapping[str, Any]) -> None:
        if self._busy:
            return
        self._busy = True
        try:
            var = self.controls["var"].value
            dims = self._dims(var)
            x = self.controls["x"].value if self.controls["x"].value in dims else dims[0]
            y = self.controls["y"].value
            y = None if y == NONE or y not in dims or y == x else y
            self.var, self.x, self.y = var, x, y
            self.controls["x"].options = dims
            self.controls["x"].value = x
            self.controls["y"].options = [NONE, *[d for d in dims if d != x]]
            self.controls["y"].value = y or NONE
            self._reset_at({})
            self._slider_box.children = self._make_sliders()
        finally:
            self._busy = False
        self.draw()

    # --------------------------------------------------------------- display
    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle: dict[str, Any] = {"image/png": self.png(), "text/plain": repr(self)}
        if self.widget is not None:
            data = self.widget._repr_mimebundle_(include=include, exclude=exclude)
            if isinstance(data, tuple):
                data = data[0]
            bundle.update(data or {})
        return bundle

    def __repr__(self) -> str:
        held = ", ".join(f"{d}={fmt(v)}" for d, v in self.at.items())
        mode = f"{self.var} over {self.x}, {self.y}" if self.y else f"{self.var} against {self.x}"
        return f"<rpx Explorer: {mode}" + (f" at {held}" if held else "") + ">"


def explore(
    ds: xr.Dataset | xr.DataArray,
    var: str | None = None,
    x: str | None = None,
    y: str | None = None,
    at: Mapping[str, float] | None = None,
    *,
    widgets: bool | None = None,
    figsize: tuple[float, float] = (6.4, 4.4),
) -> Explorer:
    """Inspect a cube interactively: ``var`` against ``x`` (or a map over ``x``, ``y``),
    a slider for every other dimension.

    Display the result in a notebook (last expression of a cell). Each change reads only
    the shown slice from a lazy (``xr.open_zarr``) store.

    Args:
        ds: a sweep Dataset or DataArray (any dims with coordinates).
        var: variable to show first (default V).
        x: dimension on the horizontal axis (default: the first).
        y: a second dimension for a colour map (default: lines).
        at: starting values of the other dimensions (nearest; default: middle).
        widgets: True to build the widgets, False for a static figure, None (default):
            widgets when running in a Jupyter kernel with ipywidgets installed.
        figsize: figure size in inches.

    Returns:
        An :class:`Explorer` (``.widget``, ``.figure``, ``.set(dim=value)``).

    Raises:
        ValueError: unknown variable or dims, ``at`` outside an axis.
    """
    return Explorer(ds, var, x, y, at, widgets=widgets, figsize=figsize)
