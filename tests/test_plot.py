"""rpx.plot and ``rpx plot``: tested on what the figures draw.

Most tests use small synthetic Datasets with the variables and attributes rpx writes
(passive GHK in numpy), so they run in milliseconds; one small real sweep and one real
reduction check the stores end to end. Image regression: every figure kind is drawn
without text at a fixed size and DPI and compared with ``tests/baseline/*.png``
(``matplotlib.testing.compare.compare_images``, RMS tolerance); set
``RPX_UPDATE_BASELINES=1`` to rewrite the baselines.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import dask.array as dsa  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib import colors as mcolors  # noqa: E402
from matplotlib.collections import QuadMesh  # noqa: E402
from matplotlib.patches import PathPatch  # noqa: E402
from matplotlib.testing.compare import compare_images  # noqa: E402
from matplotlib.text import Text  # noqa: E402

import rpx  # noqa: E402
from rpx import plot  # noqa: E402
from rpx.cli import main  # noqa: E402
from rpx.physics.constants import F, R  # noqa: E402
from rpx.physics.params import attrs as param_attrs  # noqa: E402
from rpx.sweep.runner import run_sweep  # noqa: E402
from rpx.sweep.spec import spec_from_dict  # noqa: E402

BASELINE = Path(__file__).resolve().parent / "baseline"
V_ATTRS = {"units": "mV", "long_name": "resting membrane potential (V_in - V_out)"}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# ------------------------------------------------------------------ synthetic data
def ghk_cube(axes: dict[str, np.ndarray], chunks: dict[str, int] | None = None) -> xr.Dataset:
    """A sweep-like Dataset of the passive GHK voltage (K, Na, Cl) over ``axes``, with
    the coordinates, units and long names of an rpx sweep store."""
    p = {k: float(v) for k, v in rpx.preset("mammalian_neuron").items()}
    dims = list(axes)
    grids = np.meshgrid(*[np.asarray(v, np.float64) for v in axes.values()], indexing="ij")
    q = {**p, **dict(zip(dims, grids, strict=True))}
    num = q["P_K"] * q["K_o"] + q["P_Na"] * q["Na_o"] + q["P_Cl"] * q["Cl_i"]
    den = q["P_K"] * q["K_i"] + q["P_Na"] * q["Na_i"] + q["P_Cl"] * q["Cl_o"]
    rt_f = 1e3 * R * q["T"] / F
    V = rt_f * np.log(num / den)
    E_K = rt_f * np.log(q["K_o"] / q["K_i"]) * np.ones_like(V)
    coords = {d: (d, np.asarray(axes[d], np.float64), param_attrs(d)) for d in dims}
    coords |= {k: ((), v, param_attrs(k)) for k, v in p.items() if k not in dims}
    ds = xr.Dataset(
        {
            "V": (dims, V, V_ATTRS),
            "E_K": (dims, E_K, {"units": "mV", "long_name": "Nernst potential of K"}),
            "I_pump": (dims, 0.01 * (V + 80.0), {"units": "uA/cm^2",
                                                "long_name": "Na/K pump current density"}),
            "dV_dlog10_K_o": (dims, np.gradient(V, np.log10(axes[dims[0]]), axis=0), {
                "units": "mV/decade",
                "long_name": "change of resting membrane potential (V_in - V_out) per decade "
                             "of extracellular K concentration"}),
        },
        coords=coords,
        attrs={"spec_hash": "synthetic", "model": "ghk"},
    )
    return ds.chunk(chunks) if chunks else ds


@pytest.fixture(scope="module")
def cube() -> xr.Dataset:
    return ghk_cube({"K_o": np.geomspace(1.0, 100.0, 12), "P_Na": np.geomspace(1e-9, 1e-7, 3),
                     "Na_i": np.linspace(5.0, 40.0, 3)})


def sens_dataset(second_order: bool = True) -> xr.Dataset:
    names = np.array(["K_o", "P_Na", "Na_i"], dtype=object)
    s1, st = np.array([0.2, 0.6, 0.01]), np.array([0.25, 0.7, 0.02])
    v = {
        "V_S1": ("param", s1, {"units": "1", "long_name": "first-order Sobol' index of V"}),
        "V_S1_conf": ("param", s1 * 0.1, {"units": "1", "long_name": "half-width"}),
        "V_ST": ("param", st, {"units": "1", "long_name": "total Sobol' index of V"}),
        "V_ST_conf": ("param", st * 0.1, {"units": "1", "long_name": "half-width"}),
    }
    if second_order:
        s2 = np.full((3, 3), np.nan)
        s2[0, 1], s2[0, 2], s2[1, 2] = 0.05, 0.0, 0.01
        v["V_S2"] = (("param", "param_2"), s2, {"units": "1", "long_name": "S2 of V"})
        v["V_S2_conf"] = (("param", "param_2"), np.abs(s2) * 0.5 + 0.01, {"units": "1"})
    coords = {"param": ("param", names)}
    if second_order:
        coords["param_2"] = ("param_2", names)
    return xr.Dataset(v, coords, attrs={"method": "sobol", "model": "ghk", "outputs": ["V"],
                                        "n": 256, "n_boot": 50, "conf_level": 0.95})


def fit_dataset(n_cells: int = 3) -> xr.Dataset:
    """A fit-store-like Dataset: K_o·Cl_o constant (Hodgkin & Horowicz design), V_fit the
    GHK voltage at each cell's P_Na, V_obs = V_fit + noise."""
    p = rpx.preset("frog_muscle")
    K = np.geomspace(2.5, 100.0, 6)
    Cl = p["K_o"] * p["Cl_o"] / K
    P_Na = p["P_K"] * np.array([0.008, 0.01, 0.012, 0.009, 0.011, 0.01, 0.013, 0.007])[:n_cells]
    fixed = {k: v for k, v in p.items() if k not in ("K_o", "Cl_o", "P_Na")}
    V_fit = np.stack([np.asarray(rpx.resting_potential({**fixed, "K_o": K, "Cl_o": Cl,
                                                        "P_Na": pn})) for pn in P_Na])
    noise = np.random.default_rng(0).standard_normal(V_fit.shape)
    C, CP = ("cell",), ("cell", "point")
    v = {
        "P_Na": (C, P_Na, param_attrs("P_Na") | {"long_name": "fitted Na permeability"}),
        "P_Na_se": (C, P_Na * 0.1, {"units": "cm/s", "long_name": "standard error"}),
        "V_obs": (CP, V_fit + noise, {"units": "mV", "long_name": "measured resting potential"}),
        "V_sd": (CP, np.ones_like(V_fit), {"units": "mV", "long_name": "sd of V"}),
        "V_fit": (CP, V_fit, {"units": "mV", "long_name": "fitted resting potential (ghk)"}),
        "K_o": (CP, np.tile(K, (n_cells, 1)), param_attrs("K_o")),
        "Cl_o": (CP, np.tile(Cl, (n_cells, 1)), param_attrs("Cl_o")),
    }
    v |= {k: ((), val, param_attrs(k)) for k, val in fixed.items()}
    coords = {"cell": ("cell", np.array([f"c{i}" for i in range(n_cells)], dtype=object)),
              "param": ("param", np.array(["P_Na"], dtype=object))}
    return xr.Dataset(v, coords, attrs={"model": "ghk", "free": ["P_Na"]})


def timecourse_dataset() -> xr.Dataset:
    t = np.concatenate([[0.0], np.linspace(60.0, 4 * 3600.0, 25)])
    frac = np.array([0.0, 0.5])
    tau = 3600.0
    step = np.clip(t - 60.0, 0, None)[None, :] * (1 - frac[:, None]) / tau
    V = -70.0 + 40.0 * (1 - np.exp(-step))
    dims = ("set", "time")
    meta = {"V": ("mV", "resting membrane potential (V_in - V_out)"),
            "volume": ("1", "cell volume relative to the volume at which X_i equals X_content"),
            "Na_i": ("mM", "intracellular Na concentration"),
            "K_i": ("mM", "intracellular K concentration"),
            "Cl_i": ("mM", "intracellular Cl concentration")}
    data = {"V": V, "volume": 1 + 0.2 * (1 - np.exp(-step)), "Na_i": 10 + 60 * (1 - np.exp(-step)),
            "K_i": 140 - 60 * (1 - np.exp(-step)), "Cl_i": 8 + 20 * (1 - np.exp(-step))}
    v = {k: (dims, a, {"units": meta[k][0], "long_name": meta[k][1]}) for k, a in data.items()}
    v["status"] = ("set", np.zeros(2, np.int32), {"units": "1", "long_name": "status"})
    coords = {"time": ("time", t, {"units": "s", "long_name": "time"}),
              "I_pump_max": ((), 1.5, param_attrs("I_pump_max"))}
    events = [{"t": 60.0, "set": {}, "scale": {"I_pump_max": [0.0, 0.5]}}]
    return xr.Dataset(v, coords, attrs={"model": "pump_leak", "events": repr(events)})


def reduction_dataset() -> xr.Dataset:
    K = np.geomspace(1.0, 100.0, 12)
    mean = -80 + 15 * np.log10(K) ** 2
    edges = np.linspace(-120.0, 20.0, 15)
    u = {"units": "mV"}
    return xr.Dataset(
        {
            "V_mean_by_K_o": ("K_o", mean, u | {"long_name": "mean of resting membrane "
                                                "potential (V_in - V_out) over all but K_o"}),
            "V_var_by_K_o": ("K_o", np.full(12, 25.0), {"units": "mV^2", "long_name": "var"}),
            "V_min_by_K_o": ("K_o", mean - 12, u | {"long_name": "min"}),
            "V_max_by_K_o": ("K_o", mean + 9, u | {"long_name": "max"}),
            "V_hist": ("V_bin", np.arange(14) % 5, {"units": "1", "long_name": "counts"}),
            "V_below": ((), 3), "V_above": ((), 0), "V_nan": ((), 1),
        },
        coords={"K_o": ("K_o", K, param_attrs("K_o")),
                "V_bin": ("V_bin", (edges[1:] + edges[:-1]) / 2, u),
                "V_bin_edge": ("V_bin_edge", edges, u)},
        attrs={"reduce_hash": "synthetic", "spec_hash": "synthetic"},
    )


def lines_of(ax) -> list:
    return [ln for ln in ax.get_lines() if len(np.atleast_1d(ln.get_xdata())) > 0]


# ------------------------------------------------------------------------ scales
@pytest.mark.parametrize(
    ("values", "name", "want"),
    [
        (np.geomspace(1.0, 300.0, 16), "K_o", "log"),           # logspace
        (np.linspace(0.0, 5.0, 101), "I_pump_max", "linear"),   # includes 0 (issue case)
        (np.linspace(0.5, 5.0, 10), "I_pump_max", "linear"),    # linspace of a log parameter
        (np.geomspace(300.0, 400.0, 5), "T", "log"),            # geometric, whatever the name
        (np.array([1e-9, 1e-8]), "P_Na", "log"),                # 2 values, a decade, log param
        (np.array([5.0, 10.0]), "K_o", "linear"),               # under a decade
        (np.array([-90.0, -60.0, 0.0]), None, "linear"),
        (np.array([1.0, 2.0, 10.0, 50.0]), "T", "linear"),      # irregular, linear param
    ],
)
def test_axis_scale_follows_the_axis(values: np.ndarray, name: str | None, want: str) -> None:
    assert plot.axis_scale(values, name) == want


def test_axis_scale_override() -> None:
    assert plot.axis_scale(np.geomspace(1, 10, 5), "K_o", "linear") == "linear"
    assert plot.axis_scale(np.linspace(1, 10, 5), "K_o", "log") == "log"
    with pytest.raises(ValueError, match="log axis needs positive values"):
        plot.axis_scale(np.linspace(0, 10, 5), "I_pump_max", "log")
    with pytest.raises(ValueError, match="scale must be one of"):
        plot.axis_scale([1.0], None, "symlog")


def test_linspace_with_zero_is_drawn_linear() -> None:
    ds = ghk_cube({"K_o": np.geomspace(1.0, 100.0, 6)})
    ds = ds.expand_dims(I_pump_max=np.linspace(0.0, 5.0, 101)).transpose("K_o", "I_pump_max")
    ds["I_pump_max"].attrs = param_attrs("I_pump_max")
    ax = plot.voltage_lines(ds, "I_pump_max", "K_o")
    assert ax.get_xscale() == "linear"
    ax = plot.voltage_map(ds, "K_o", "I_pump_max")
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "linear")


# ------------------------------------------------------------------ voltage_lines
def test_lines_one_legend_entry_per_line_to_three_figures() -> None:
    pna = np.array([1.424543379774284, 2.0, 3.3333333, 4.5, 6.0, 8.0, 9.87654321]) * 1e-9
    ds = ghk_cube({"K_o": np.geomspace(1.0, 100.0, 8), "P_Na": pna})
    ax = plot.voltage_lines(ds, "K_o", "P_Na")
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts[:7] == ["1.42e-09", "2e-09", "3.33e-09", "4.5e-09", "6e-09", "8e-09", "9.88e-09"]
    assert texts[7:] == ["E_K (Nernst)"] and len(lines_of(ax)) == 8
    assert ax.get_legend().get_title().get_text() == "P_Na [cm/s]"
    colours = {tuple(ln.get_color()) for ln in lines_of(ax)[:7]}
    assert len(colours) == 7
    # with no Nernst line the entries stay rounded
    ax = plot.voltage_lines(ds, "K_o", "P_Na", nernst_ion=None)
    assert [t.get_text() for t in ax.get_legend().get_texts()][0] == "1.42e-09"


def test_lines_close_values_get_more_figures() -> None:
    ds = ghk_cube({"K_o": np.geomspace(1.0, 100.0, 4),
                   "Na_i": np.array([10.0, 10.04, 10.08])})
    ax = plot.voltage_lines(ds, "K_o", "Na_i", nernst_ion=None)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["10", "10.04", "10.08"]


def test_lines_beyond_the_legend_limit_get_a_sequential_colorbar() -> None:
    ds = ghk_cube({"K_o": np.geomspace(1.0, 100.0, 8), "P_Na": np.geomspace(1e-9, 1e-7, 12)})
    ax = plot.voltage_lines(ds, "K_o", "P_Na")
    fig = ax.figure
    assert len(fig.axes) == 2  # the colorbar
    cbar = fig.axes[1]
    mappable = cbar.collections[0] if cbar.collections else None
    cmap = ax.figure.axes[1]._colorbar.cmap if hasattr(cbar, "_colorbar") else mappable.cmap
    assert cmap.name == "viridis"
    assert "Na" in cbar.get_ylabel() and "[cm/s]" in cbar.get_ylabel()
    data_lines = [ln for ln in lines_of(ax) if ln.get_linestyle() == "-"]
    assert len(data_lines) == 12 and len({tuple(ln.get_color()) for ln in data_lines}) == 12
    labels = [t.get_text() for t in ax.get_legend().get_texts()] if ax.get_legend() else []
    assert labels in ([], ["E_K (Nernst)"])


def test_lines_draw_the_selected_slice_and_state_it(cube: xr.Dataset) -> None:
    ax = plot.voltage_lines(cube, "K_o", "P_Na", at={"Na_i": 22.0})  # nearest: 22.5
    want = cube["V"].sel(Na_i=22.5).transpose("P_Na", "K_o").values
    got = np.array([ln.get_ydata() for ln in lines_of(ax)[:3]])
    np.testing.assert_allclose(got, want)
    assert ax.get_title() == "at Na_i = 22.5 mM"
    ax = plot.voltage_lines(cube, "K_o")
    assert ax.get_title() == "at P_Na = 1e-08 cm/s, Na_i = 22.5 mM"
    np.testing.assert_allclose(lines_of(ax)[0].get_ydata(), cube["V"][:, 1, 1].values)


def test_at_outside_the_axis_is_an_error_naming_the_range(cube: xr.Dataset) -> None:
    with pytest.raises(ValueError, match=r"at Na_i=1000 is outside the range of Na_i: 5 … 40 mM"):
        plot.voltage_lines(cube, "K_o", "P_Na", at={"Na_i": 1000.0})
    with pytest.raises(ValueError, match="outside the range of P_Na"):
        plot.voltage_map(cube, "K_o", "Na_i", at={"P_Na": 1.0})
    with pytest.raises(ValueError, match="'Cl_i' is not a dimension"):
        plot.voltage_map(cube, "K_o", "Cl_i")
    with pytest.raises(ValueError, match="cannot also be held"):
        plot.voltage_lines(cube, "K_o", at={"K_o": 5.0})


def test_nernst_line_only_for_voltages(cube: xr.Dataset) -> None:
    ax = plot.voltage_lines(cube, "K_o", "P_Na", at={"Na_i": 5.0})
    (nernst,) = [ln for ln in lines_of(ax) if ln.get_label() == "E_K (Nernst)"]
    np.testing.assert_allclose(nernst.get_ydata(), cube["E_K"][:, 0, 0].values, rtol=1e-9)
    assert ax.get_xscale() == "log"
    assert ax.get_xlabel() == "extracellular K concentration [mM]"
    assert ax.get_ylabel().replace("\n", " ") == "resting membrane potential (V_in - V_out) [mV]"
    for var in ("I_pump", "dV_dlog10_K_o"):
        ax = plot.voltage_lines(cube, "K_o", "P_Na", var=var)
        assert all(ln.get_linestyle() == "-" for ln in lines_of(ax)), var
        assert not any("E_K" in ln.get_label() for ln in lines_of(ax))
        lo, hi = ax.get_ylim()
        data = np.concatenate([ln.get_ydata() for ln in lines_of(ax)])
        assert hi - lo < 1.5 * np.ptp(data) + 1e-9  # the axis is the data's own
    with pytest.raises(ValueError, match="'I_pump' is in 'uA/cm\\^2', not a voltage"):
        plot.voltage_lines(cube, "K_o", var="I_pump", nernst_ion="K")


def test_nernst_line_follows_a_swept_concentration() -> None:
    ds = ghk_cube({"K_o": np.geomspace(1.0, 100.0, 5), "K_i": np.array([100.0, 140.0])})
    ax = plot.voltage_lines(ds, "K_o", "K_i")
    dashed = [ln for ln in lines_of(ax) if ln.get_linestyle() == "--"]
    assert len(dashed) == 2
    np.testing.assert_allclose(dashed[1].get_ydata(), ds["E_K"].sel(K_i=140.0).values)


def test_nernst_from_the_spec_when_not_a_coordinate() -> None:
    ds = ghk_cube({"K_o": np.geomspace(1.0, 100.0, 5)}).drop_vars(["K_i"])
    ax = plot.voltage_lines(ds, "K_o")
    assert not any("E_K" in ln.get_label() for ln in lines_of(ax))  # auto: unknown K_i
    ds.attrs["spec"] = '{"preset": "mammalian_neuron", "fixed": {"K_i": 150.0}}'
    ax = plot.voltage_lines(ds, "K_o")
    (nernst,) = [ln for ln in lines_of(ax) if "E_K" in ln.get_label()]
    want = rpx.nernst(ds["K_o"].values, 150.0, 1, float(ds["T"]))
    np.testing.assert_allclose(nernst.get_ydata(), np.asarray(want), rtol=1e-9)


def test_long_labels_are_wrapped_and_inside_the_saved_figure(cube: xr.Dataset,
                                                             tmp_path: Path) -> None:
    ax = plot.voltage_lines(cube, "K_o", "P_Na", var="dV_dlog10_K_o")
    fig = ax.figure
    assert ax.get_ylabel().splitlines()[-1].endswith("[mV/decade]")
    fig.savefig(tmp_path / "f.png", dpi=100)  # not bbox_inches="tight": the figure itself
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    for text in (ax.xaxis.label, ax.yaxis.label, ax.title):
        bb = text.get_window_extent(renderer)
        assert box.x0 - 1 <= bb.x0 and bb.x1 <= box.x1 + 1, text.get_text()
        assert box.y0 - 1 <= bb.y0 and bb.y1 <= box.y1 + 1, text.get_text()
    assert plot.readability_problems(fig) == []


def test_readability_problems_finds_clipping_and_overlap() -> None:
    fig, ax = plt.subplots(figsize=(2.0, 2.0))
    ax.set_ylabel("a very long label that cannot fit into a small figure at all [mV]")
    ax.set_xticks(np.arange(30.0), [f"{v:.4f}" for v in np.arange(30.0)])
    problems = plot.readability_problems(fig)
    assert any("y label" in p and "clipped" in p for p in problems)
    assert any("x tick labels overlap" in p for p in problems)


# -------------------------------------------------------------------- voltage_map
def _centres_in_hatch(ax, xs, ys) -> np.ndarray:
    patches = [p for p in ax.patches if isinstance(p, PathPatch) and p.get_gid() == "band"]
    X, Y = np.meshgrid(xs, ys)
    pts = np.column_stack([X.ravel(), Y.ravel()])
    if not patches:
        return np.zeros(X.shape, bool)
    return patches[0].get_path().contains_points(pts).reshape(X.shape)


@pytest.mark.parametrize("band", [(-75.0, -65.0), (-200.0, -190.0), (-70.0, -70.0)])
def test_hatched_region_is_the_grid_points_in_the_band(cube: xr.Dataset, band) -> None:
    ax = plot.voltage_map(cube, "K_o", "P_Na", band=band, at={"Na_i": 5.0})
    z = cube["V"].sel(Na_i=5.0).transpose("P_Na", "K_o").values
    inside = (z >= band[0]) & (z <= band[1])
    got = _centres_in_hatch(ax, cube["K_o"].values, cube["P_Na"].values)
    np.testing.assert_array_equal(got, inside)
    assert f"({int(inside.sum())} of {inside.size} points)" in ax.get_title()
    # the hatch lies on the colour mesh: its outer corners are cell edges of the mesh
    mesh = [c for c in ax.collections if isinstance(c, QuadMesh)][0]
    coords = mesh.get_coordinates()
    edges_x, edges_y = coords[0, :, 0], coords[:, 0, 1]
    for p in ax.patches:
        for vx, vy in p.get_path().vertices:
            assert np.isclose(edges_x, vx, rtol=1e-12).any()
            assert np.isclose(edges_y, vy, rtol=1e-12).any()


def test_map_colour_range_is_the_datas_and_sequential(cube: xr.Dataset) -> None:
    ax = plot.voltage_map(cube, "K_o", "P_Na", at={"Na_i": 5.0})
    mesh = [c for c in ax.collections if isinstance(c, QuadMesh)][0]
    z = cube["V"].sel(Na_i=5.0).values
    assert mesh.get_clim() == pytest.approx((z.min(), z.max()))
    assert mesh.get_cmap().name == "viridis"
    np.testing.assert_allclose(np.asarray(mesh.get_array()).ravel(),
                               cube["V"].sel(Na_i=5.0).transpose("P_Na", "K_o").values.ravel())
    assert ax.get_title() == "at Na_i = 5 mM"
    # a signed non-voltage: diverging, symmetric about 0
    ax = plot.voltage_map(cube, "K_o", "P_Na", var="I_pump")
    mesh = [c for c in ax.collections if isinstance(c, QuadMesh)][0]
    lo, hi = mesh.get_clim()
    assert lo == pytest.approx(-hi) and mesh.get_cmap().name == "RdBu_r"


def _distance_to_polyline(p: np.ndarray, line: np.ndarray) -> float:
    a, b = line[:-1], line[1:]
    ab = b - a
    t = np.clip(np.sum((p - a) * ab, axis=1) / np.maximum(np.sum(ab * ab, axis=1), 1e-12), 0, 1)
    return float(np.min(np.hypot(*(a + t[:, None] * ab - p).T)))


def test_contour_labels_sit_on_their_lines(cube: xr.Dataset) -> None:
    import contourpy
    from matplotlib.contour import ContourSet

    ax = plot.voltage_map(cube, "K_o", "P_Na", at={"Na_i": 5.0})
    ax.figure.canvas.draw()
    (cs,) = [c for c in ax.collections if isinstance(c, ContourSet)]
    assert cs.labelTexts
    z = cube["V"].sel(Na_i=5.0).transpose("P_Na", "K_o").values
    gen = contourpy.contour_generator(cube["K_o"].values, cube["P_Na"].values, z)
    for text in cs.labelTexts:
        p = ax.transData.transform(text.get_position())
        lines = gen.lines(float(text.get_text()))  # the uncut level line, data coordinates
        d = min(_distance_to_polyline(p, ax.transData.transform(ln)) for ln in lines)
        assert d < 2.0, (text.get_text(), d)  # pixels


# ---------------------------------------------------------------------- results
def test_sensitivity_bars_with_confidence_and_s2_matrix() -> None:
    ds = sens_dataset()
    fig = plot.sensitivity(ds)
    ax, ax2 = fig.axes[:2]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["P_Na", "K_o", "Na_i"]
    bars = {c.get_label(): c for c in ax.containers}
    st = [r.get_width() for r in bars["total ST"].patches]
    np.testing.assert_allclose(st, [0.7, 0.25, 0.02])
    s1 = [r.get_width() for r in bars["first order S1"].patches]
    np.testing.assert_allclose(s1, [0.6, 0.2, 0.01])
    # error bars are the confidence half-widths
    seg = bars["total ST"].errorbar.lines[2][0].get_segments()
    np.testing.assert_allclose([s[1, 0] - s[0, 0] for s in seg], 2 * np.array([0.07, 0.025, 0.002]))
    img = ax2.get_images()[0].get_array()
    assert img[0, 1] == pytest.approx(0.05) and np.ma.is_masked(img[1, 0]) or np.isnan(img[1, 0])
    assert "95% bootstrap CI" in ax.get_title()
    fig = plot.sensitivity(sens_dataset(second_order=False))
    assert len(fig.axes) == 1
    with pytest.raises(ValueError, match="output 'E_K' has no indices here; outputs: V"):
        plot.sensitivity(ds, "E_K")


@pytest.mark.parametrize(("method", "main_label", "other"), [
    ("morris", "μ*", "σ"), ("dgsm", "DGSM bound on ST", None)])
def test_sensitivity_morris_and_dgsm(method: str, main_label: str, other: str | None) -> None:
    names = np.array(["K_o", "P_Na"], dtype=object)
    keys = {"morris": ["mu_star", "sigma"], "dgsm": ["dgsm_bound"]}[method]
    v = {}
    for j, k in enumerate(keys):
        v[f"V_{k}"] = ("param", np.array([3.0, 1.0]) / (j + 1), {"units": "mV"})
        v[f"V_{k}_conf"] = ("param", np.array([0.3, 0.1]), {"units": "mV"})
    ds = xr.Dataset(v, {"param": ("param", names)},
                    attrs={"method": method, "model": "ghk", "outputs": ["V"], "n": 64,
                           "n_boot": 0})
    ax = plot.sensitivity(ds).axes[0]
    from matplotlib.container import BarContainer

    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert [c.get_label() for c in bars] == [main_label] + ([other] if other else [])
    np.testing.assert_allclose([r.get_width() for r in bars[0].patches], [3.0, 1.0])
    assert ax.get_xlabel() == f"{method} index of V [mV]" and "CI" not in ax.get_title()


def test_fit_result_draws_data_curves_and_estimates() -> None:
    ds = fit_dataset(3)
    fig = plot.fit_result(ds)
    ax, ax2 = fig.axes[:2]
    assert ax.get_xscale() == "log"
    assert ax.get_xlabel() == "extracellular K concentration [mM]"
    # measured points with their error bars
    bars = [c for c in ax.containers]
    assert len(bars) == 3
    np.testing.assert_allclose(bars[0].lines[0].get_ydata(), ds["V_obs"][0].values)
    # each cell's curve passes through its V_fit (Cl_o interpolated log-log: exact here)
    curves = [ln for ln in ax.get_lines() if ln.get_linestyle() == "-" and len(ln.get_xdata()) > 50]
    assert len(curves) == 3
    for i, ln in enumerate(curves):
        got = np.interp(np.log(ds["K_o"][i].values), np.log(ln.get_xdata()), ln.get_ydata())
        np.testing.assert_allclose(got, ds["V_fit"][i].values, atol=0.05)
    # estimates ± SE
    (eb,) = ax2.containers
    # the power of ten is in the axis label, the ticks are plain numbers
    assert ax2.get_xlabel().endswith("[1e-09 cm/s]")
    np.testing.assert_allclose(eb.lines[0].get_xdata() * 1e-9, ds["P_Na"].values)
    seg = eb.lines[2][0].get_segments()
    np.testing.assert_allclose([(s[1, 0] - s[0, 0]) * 1e-9 for s in seg],
                               2 * ds["P_Na_se"].values)
    fig = plot.fit_result(fit_dataset(8), max_cells=2)
    assert "2 of 8 cells" in fig.axes[0].get_title()
    with pytest.raises(ValueError, match="x='Na_o' is not a condition"):
        plot.fit_result(ds, "Na_o")


def test_fit_curve_draws_data_fit_and_nernst() -> None:
    p = rpx.preset("frog_muscle")
    K_o = np.geomspace(1.0, 100.0, 30)
    V = np.asarray(rpx.resting_potential({**p, "K_o": K_o}))
    fixed = {k: v for k, v in p.items() if k != "K_o"}
    curve = xr.DataArray(V, dims="K_o", coords={"K_o": ("K_o", K_o, {"units": "mM"}), **fixed},
                         attrs={"units": "mV"})
    data = xr.Dataset({"V": ("K_o", V[::5] + 1.0, {"units": "mV"}), "V_sd": ("K_o", np.ones(6))},
                      coords={"K_o": K_o[::5]})
    ax = plot.fit_curve(data, curve, "K_o")
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    np.testing.assert_allclose(lines["E_K"].get_ydata(),
                               np.asarray(rpx.nernst(K_o, p["K_i"], 1, p["T"])), rtol=1e-6)
    assert ax.get_xscale() == "log"


def test_histogram_states_what_lies_outside() -> None:
    ds = reduction_dataset()
    ax = plot.histogram(ds)
    (steps,) = ax.patches
    c = ds["V_hist"].values
    np.testing.assert_allclose(steps.get_data().values, c / c.sum())
    assert ax.get_xlabel() == "V [mV]"
    assert ax.get_title() == "outside the bins: 3 below -120, 0 above 20, 1 NaN"
    with pytest.raises(ValueError, match="edges must have 4 values"):
        plot.histogram(xr.DataArray([1, 3, 0]), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="no histogram of 'E_K'.*histograms: V"):
        plot.histogram(ds, var="E_K")


def test_marginal_mean_with_its_spread() -> None:
    ds = reduction_dataset()
    for var in ("V", "V_mean_by_K_o"):
        ax = plot.marginal(ds, "K_o", var=var)
        (mean,) = ax.get_lines()
        np.testing.assert_allclose(mean.get_ydata(), ds["V_mean_by_K_o"].values)
        sd_band = [c for c in ax.collections if c.get_label() == "mean ± 1 sd"][0]
        ys = sd_band.get_paths()[0].vertices[:, 1]
        assert ys.max() == pytest.approx(float((ds["V_mean_by_K_o"] + 5).max()))
        assert ax.get_xscale() == "log"
        assert ax.get_ylabel().splitlines()[-1].endswith("[mV]")
        assert plot.readability_problems(ax.figure) == []
    with pytest.raises(ValueError, match="no marginal 'V_mean_by_P_Na'"):
        plot.marginal(ds, "P_Na")


def test_timecourse_panels_and_events() -> None:
    ds = timecourse_dataset()
    fig = plot.timecourse(ds)
    axes = [a for a in fig.axes if a.get_visible()]
    assert len(axes) == 5
    assert axes[0].get_ylabel().endswith("[mV]")
    assert "[mM]" in axes[2].get_ylabel()
    data = [ln for ln in axes[0].get_lines() if ln.get_linestyle() == "-"]
    y, x = data[1].get_ydata(), data[0].get_xdata()
    np.testing.assert_allclose(y[np.isfinite(y)], ds["V"][1].values)
    np.testing.assert_allclose(x[np.isfinite(x)], ds["time"].values / 3600)
    events = [ln for ln in axes[0].get_lines() if ln.get_linestyle() == ":"]
    assert len(events) == 1 and events[0].get_xdata()[0] == pytest.approx(60 / 3600)
    assert "t = 0.0167 h: I_pump_max ×0/0.5" in fig._suptitle.get_text()
    assert axes[-1].get_xlabel() == "time [h]"
    assert plot.readability_problems(fig) == []
    with pytest.raises(ValueError, match="'Q' is not in the time course"):
        plot.timecourse(ds, ["Q"])


def test_timecourse_many_sets_get_one_colorbar() -> None:
    ds = timecourse_dataset()
    ds = xr.concat([ds] * 6, "set").assign_coords(
        K_o=("set", np.geomspace(2.0, 20.0, 12), param_attrs("K_o")))
    fig = plot.timecourse(ds, ["V", "Na_i"])
    assert len(fig.axes) == 3  # two panels and one colorbar
    assert "[mM]" in fig.axes[-1].get_ylabel() and fig.axes[0].get_legend() is None
    colours = {tuple(ln.get_color()) for ln in fig.axes[0].get_lines()
               if ln.get_linestyle() == "-"}
    assert len(colours) == 12


def test_nernst_line_is_labelled_beside_a_colorbar() -> None:
    # 40 hue values: a colorbar for the lines, and still a legend entry for E_K
    many = ghk_cube({"K_o": np.geomspace(1.0, 100.0, 6), "P_Na": np.geomspace(1e-9, 1e-7, 40),
                     "Na_i": np.linspace(5.0, 40.0, 3)})
    ax = plot.voltage_lines(many, "K_o", "P_Na", at={"Na_i": 10.0})
    assert len(ax.figure.axes) == 2  # the colorbar
    legend = ax.get_legend()
    assert legend is not None
    assert [t.get_text() for t in legend.get_texts()] == ["E_K (Nernst)"]
    (nernst,) = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert nernst.get_label() == "E_K (Nernst)"
    few = plot.voltage_lines(many.isel(P_Na=slice(0, 3)), "K_o", "P_Na")
    assert "E_K (Nernst)" in [t.get_text() for t in few.get_legend().get_texts()]


def test_fit_estimates_use_no_cell_colours_and_scale_in_the_label() -> None:
    ds = fit_dataset(3)
    fig = plot.fit_result(ds, "K_o")
    ax, ax2 = fig.axes[:2]
    cell_colours = {mcolors.to_hex(c.lines[0].get_color()) for c in ax.containers}
    est_colours = {mcolors.to_hex(c.lines[0].get_color()) for c in ax2.containers}
    assert est_colours == {"#000000"} and not est_colours & cell_colours
    assert mcolors.to_hex(ax2.xaxis.label.get_color()) == "#000000"
    fig.canvas.draw()
    # no detached ×1e-9 offset text: the scale is in the axis label
    assert ax2.xaxis.get_offset_text().get_text() == ""
    assert ax.yaxis.get_offset_text().get_text() == ""
    assert "1e-09 cm/s" in ax2.get_xlabel()
    ticks = [t.get_text() for t in ax2.get_xticklabels() if t.get_text()]
    assert ticks and all("e" not in t for t in ticks)


def _offset_texts(fig) -> list[str]:
    fig.canvas.draw()
    return [t for a in fig.axes for t in (a.xaxis.get_offset_text().get_text(),
                                           a.yaxis.get_offset_text().get_text()) if t]


def test_no_detached_offset_text_on_linear_axes_of_small_values() -> None:
    # P_Na linearly spaced: x axis, colorbar of lines and colorbar of a map
    ds = ghk_cube({"P_Na": np.linspace(1e-9, 1e-7, 5), "K_o": np.linspace(2.0, 20.0, 12)})
    ds["I_small"] = ds["I_pump"] * 1e-6
    ds["I_small"].attrs.update(units="uA/cm^2", long_name="small current")
    ax = plot.voltage_lines(ds, "P_Na", "K_o")
    assert _offset_texts(ax.figure) == []
    ticks = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert "1e-07" in ticks or "8e-08" in ticks
    ax = plot.voltage_lines(ds, "K_o", "P_Na", var="I_small", nernst_ion=None)
    assert _offset_texts(ax.figure) == []
    ax = plot.voltage_map(ds, "K_o", "P_Na", var="I_small")
    assert _offset_texts(ax.figure) == []


def test_timecourse_events_in_the_axis_unit_and_no_ramp_before_an_event() -> None:
    # a step at t = 60 s sampled every 30 s over 10 min: axis in minutes
    t = np.arange(0.0, 601.0, 30.0)
    V = np.where(t < 60.0, -70.0, -40.0 + 0.01 * t)
    ds = xr.Dataset(
        {"V": ("time", V, {"units": "mV", "long_name": "resting membrane potential "
                                                        "(V_in - V_out)"}),
         "volume": ("time", np.ones_like(t), {"units": "1", "long_name": "cell volume"})},
        coords={"time": ("time", t, {"units": "s", "long_name": "time"})},
        attrs={"events": repr([{"t": 60.0, "set": {"K_o": 40.0}, "scale": {}}])},
    )
    fig = plot.timecourse(ds, ["V", "volume"])
    ax = fig.axes[0]
    assert ax.get_xlabel() == "time [min]"
    assert "t = 1 min: K_o = 40" in fig._suptitle.get_text()
    assert "resting" not in ax.get_ylabel() and "membrane potential" in ax.get_ylabel()
    (line,) = [ln for ln in ax.get_lines() if ln.get_linestyle() == "-"]
    x, y = np.asarray(line.get_xdata()), np.asarray(line.get_ydata())
    assert line.get_marker() not in (None, "None", "", " ")  # the samples are marked
    # no drawn segment joins a point before the event to one after it
    for i in range(x.size - 1):
        if np.isfinite(x[i]) and np.isfinite(x[i + 1]) and np.isfinite(y[i + 1]):
            assert not (x[i] < 1.0 < x[i + 1]) and not (x[i] < 1.0 <= x[i + 1])
    # every value is drawn at its sample time
    ok = np.isfinite(x)
    np.testing.assert_allclose(x[ok], t / 60.0)
    np.testing.assert_allclose(y[ok], V)


def _with_status(ds: xr.Dataset, bad: np.ndarray, code: int) -> xr.Dataset:
    V = ds["V"].where(~bad)
    status = xr.where(bad, code, 0).astype(np.int32).assign_attrs(
        units="1", long_name="status", flag_values=[0, 1, 2],
        flag_meanings="ok sodium_depleted not_converged")
    return ds.assign(V=V, status=status)


def test_nan_points_carry_their_status_meaning() -> None:
    ds = ghk_cube({"K_o": np.geomspace(1.0, 100.0, 6), "P_Na": np.geomspace(1e-9, 1e-7, 3)})
    bad = (ds["K_o"] > 30.0) & (ds["P_Na"] > 5e-9)  # 2 K_o × 2 P_Na = 4 points
    nan_ds = _with_status(ds, bad.transpose(*ds["V"].dims), 1)
    ax = plot.voltage_lines(nan_ds, "K_o", "P_Na")
    assert "4 of 18 points NaN: sodium_depleted" in ax.get_title().replace("\n", " ")
    ax = plot.voltage_map(nan_ds, "K_o", "P_Na")
    assert "4 of 18 points NaN: sodium_depleted" in ax.get_title().replace("\n", " ")
    # two causes are counted apart
    codes = xr.where(ds["K_o"] > 50.0, 2, 1).broadcast_like(ds["V"])
    two = _with_status(ds, bad.transpose(*ds["V"].dims), 0)
    two["status"] = xr.where(bad, codes, 0).astype(np.int32).assign_attrs(
        two["status"].attrs)
    title = plot.voltage_lines(two, "K_o", "P_Na").get_title().replace("\n", " ")
    assert "4 of 18 points NaN: 2 sodium_depleted, 2 not_converged" in title
    # a held dimension: the status is taken at the same slice
    cube3 = ghk_cube({"K_o": np.geomspace(1.0, 100.0, 6), "P_Na": np.geomspace(1e-9, 1e-7, 3),
                      "Na_i": np.array([5.0, 10.0, 40.0])})
    bad3 = ((cube3["K_o"] > 30.0) & (cube3["Na_i"] > 20.0)).broadcast_like(
        cube3["V"]).transpose(*cube3["V"].dims)
    s3 = _with_status(cube3, bad3, 1)
    assert "NaN" not in plot.voltage_lines(s3, "K_o", "P_Na", at={"Na_i": 10.0}).get_title()
    title = plot.voltage_lines(s3, "K_o", "P_Na", at={"Na_i": 40.0}).get_title()
    assert "6 of 18 points NaN: sodium_depleted" in title.replace("\n", " ")
    # more hue values than lines drawn: the points of the drawn lines are counted
    wide = ghk_cube({"K_o": np.geomspace(1.0, 100.0, 4), "P_Na": np.geomspace(1e-9, 1e-7, 70)})
    badw = (wide["K_o"] > 50.0).broadcast_like(wide["V"]).transpose(*wide["V"].dims)
    title = plot.voltage_lines(_with_status(wide, badw, 2), "K_o", "P_Na").get_title()
    assert "64 of 256 points NaN: not_converged" in title.replace("\n", " ")
    # no status variable: the count and that the reason is unknown
    plain = ds.assign(V=ds["V"].where(~bad.transpose(*ds["V"].dims)))
    assert "(no status stored)" in plot.voltage_lines(plain, "K_o", "P_Na").get_title()
    # fits: a failed cell's estimate is NaN with its fit status; missing data counted
    fit = fit_dataset(3)
    fit["P_Na"] = fit["P_Na"].where(xr.DataArray([True, False, True], dims="cell"))
    fit["V_obs"][0, 0] = np.nan
    fit["status"] = xr.DataArray(np.array([0, 2, 0], np.int32), dims="cell", attrs={
        "units": "1", "long_name": "fit status", "flag_values": [0, 1, 2],
        "flag_meanings": "converged not_converged non_finite"})
    fig = plot.fit_result(fit)
    assert "P_Na: 1 of 3 points NaN: non_finite" in fig.axes[1].get_title().replace("\n", " ")
    assert "1 of 18 measured points NaN" in fig.axes[0].get_title().replace("\n", " ")
    # time courses: per panel
    tc = timecourse_dataset()
    tc["V"] = tc["V"].where(xr.DataArray([True, False], dims="set"))
    tc["status"] = xr.DataArray(np.array([0, 2], np.int32), dims="set", attrs={
        "units": "1", "long_name": "time-course status", "flag_values": [0, 1, 2],
        "flag_meanings": "ok no_initial_steady_state integration_failed"})
    fig = plot.timecourse(tc, ["V", "volume"])
    assert fig.axes[0].get_title() == "26 of 52 points NaN: integration_failed"
    assert fig.axes[1].get_title() == ""


def test_store_kinds() -> None:
    assert plot.store_kind(ghk_cube({"K_o": np.geomspace(1, 10, 3)})) == "sweep"
    assert plot.store_kind(reduction_dataset()) == "reduction"
    assert plot.store_kind(sens_dataset()) == "sensitivity"
    assert plot.store_kind(fit_dataset(2)) == "fit"
    assert plot.store_kind(timecourse_dataset()) == "timecourse"
    ds = fit_dataset(2)
    ds.attrs["kind"] = "fit"
    assert plot.store_kind(ds) == "fit"
    with pytest.raises(ValueError, match="not an rpx store"):
        plot.store_kind(xr.Dataset({"a": ("q", [1.0])}))


# ---------------------------------------------------------------------- explorer
def _recording_cube() -> tuple[xr.Dataset, list]:
    """A dask-backed cube whose blocks record when they are computed."""
    base = ghk_cube({"K_o": np.geomspace(1.0, 100.0, 8), "P_Na": np.geomspace(1e-9, 1e-7, 4),
                     "Na_i": np.linspace(5.0, 40.0, 4)})
    seen: list = []
    V = base["V"].values

    def block(x: np.ndarray, block_info=None) -> np.ndarray:  # noqa: ANN001
        loc = block_info[None]["array-location"]
        seen.append(tuple(loc))
        return V[tuple(slice(a, b) for a, b in loc)]

    lazy = dsa.map_blocks(block, dsa.zeros(V.shape, chunks=(4, 1, 1)), dtype=np.float64)
    ds = base[["V"]].copy()
    ds["V"] = (base["V"].dims, lazy, base["V"].attrs)
    return ds, seen


def test_explorer_builds_and_a_slider_moves_to_the_right_slice() -> None:
    ds, seen = _recording_cube()
    ex = plot.explore(ds, widgets=True)
    assert ex.widget is not None and set(ex.sliders) == {"P_Na", "Na_i"}
    assert set(ex.controls) == {"var", "x", "y"}
    ex.sliders["Na_i"].value = float(ds["Na_i"][3])
    (line,) = [ln for ln in ex.ax.get_lines() if ln.get_label() == "V"]
    want = ds["V"].isel(P_Na=2, Na_i=3).values
    np.testing.assert_allclose(line.get_ydata(), want)
    assert "Na_i = 40 mM" in ex.ax.get_title()
    assert ex._image.value[:8] == b"\x89PNG\r\n\x1a\n"
    # only the shown slice was read: blocks of P_Na index 2 and Na_i index 3
    seen.clear()
    ex.sliders["P_Na"].value = float(ds["P_Na"][0])
    assert seen and all(loc[1] == (0, 1) and loc[2] == (3, 4) for loc in seen)
    # a map over two dims; the remaining slider is the only one
    ex.controls["y"].value = "P_Na"
    assert set(ex.sliders) == {"Na_i"}
    mesh = [c for c in ex.ax.collections if isinstance(c, QuadMesh)][0]
    np.testing.assert_allclose(np.asarray(mesh.get_array()).ravel(),
                               ds["V"].isel(Na_i=3).transpose("P_Na", "K_o").values.ravel())
    ex.set(Na_i=5.0)
    assert ex.sliders["Na_i"].value == 5.0 and "Na_i = 5 mM" in ex.ax.get_title()
    with pytest.raises(ValueError, match="outside the range of Na_i: 5 … 40 mM"):
        ex.set(Na_i=100.0)
    bundle = ex._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle and "image/png" in bundle


def test_explorer_without_a_widget_front_end_is_a_static_figure() -> None:
    ds, _ = _recording_cube()
    ex = plot.explore(ds, x="K_o", at={"Na_i": 20.0})  # plain Python: no kernel
    assert ex.widget is None
    assert ex.at["Na_i"] == pytest.approx(16.666666666666668)
    bundle = ex._repr_mimebundle_()
    assert set(bundle) == {"image/png", "text/plain"}
    with pytest.raises(ValueError, match="outside the range of Na_i"):
        plot.explore(ds, at={"Na_i": 50.0})


# ---------------------------------------------------------------- image regression
def _textless(fig) -> None:
    for t in fig.findobj(Text):
        t.set_visible(False)


def _figures() -> dict:
    cube = ghk_cube({"K_o": np.geomspace(1.0, 100.0, 12), "P_Na": np.geomspace(1e-9, 1e-7, 3),
                     "Na_i": np.linspace(5.0, 40.0, 3)})
    many = ghk_cube({"K_o": np.geomspace(1.0, 100.0, 12), "P_Na": np.geomspace(1e-9, 1e-7, 12)})
    return {
        "lines": lambda: plot.voltage_lines(cube, "K_o", "P_Na").figure,
        "lines_colorbar": lambda: plot.voltage_lines(many, "K_o", "P_Na").figure,
        "map": lambda: plot.voltage_map(cube, "K_o", "P_Na", band=(-75.0, -65.0)).figure,
        "sensitivity": lambda: plot.sensitivity(sens_dataset()),
        "fit": lambda: plot.fit_result(fit_dataset(3)),
        "histogram": lambda: plot.histogram(reduction_dataset()).figure,
        "marginal": lambda: plot.marginal(reduction_dataset(), "K_o").figure,
        "timecourse": lambda: plot.timecourse(timecourse_dataset()),
    }


@pytest.mark.parametrize("kind", list(_figures()))
def test_image_regression(kind: str, tmp_path: Path) -> None:
    with plt.rc_context({"path.simplify": False}):
        fig = _figures()[kind]()
        fig.set_size_inches(4.0, 3.0)
        _textless(fig)
        out = tmp_path / f"{kind}.png"
        fig.savefig(out, dpi=40)
    want = BASELINE / f"{kind}.png"
    if os.environ.get("RPX_UPDATE_BASELINES"):
        BASELINE.mkdir(exist_ok=True)
        want.write_bytes(out.read_bytes())
    assert want.exists(), f"no baseline {want}; run with RPX_UPDATE_BASELINES=1"
    assert compare_images(str(want), str(out), tol=3.0) is None


# --------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("plot") / "cube.zarr"
    spec = spec_from_dict(
        {
            "model": "ghk",
            "axes": [
                {"name": "K_o", "logspace": [1.0, 300.0, 16]},
                {"name": "P_Na", "logspace": [1e-9, 1e-7, 3]},
                {"name": "Na_i", "values": [20.0, 50.0]},
            ],
            "outputs": ["V", "E_K"],
            "gradients": ["K_o"],
            "log_gradients": True,
        }
    )
    run_sweep(spec, out, quiet=True)
    return out


@pytest.fixture(scope="module")
def reduced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rpx.sweep.reduce import run_reduce
    from rpx.sweep.reduce_ops import Histogram, Reductions

    out = tmp_path_factory.mktemp("plot") / "reduced.zarr"
    spec = spec_from_dict({"model": "ghk", "axes": [
        {"name": "K_o", "logspace": [1.0, 100.0, 10]},
        {"name": "P_Na", "logspace": [1e-9, 1e-7, 4]}]})
    red = Reductions(histograms=(Histogram("V", -120.0, 20.0, 14),), marginals=("V",),
                     pairs=True)
    run_reduce(spec, out, red, quiet=True)
    return out


def test_real_sweep_store_is_labelled_and_sliced(store: Path) -> None:
    ds = xr.open_zarr(store)
    ax = plot.voltage_lines(ds, "K_o", "P_Na", at={"Na_i": 50.0})
    assert ax.get_title() == "at Na_i = 50 mM"
    nernst = [ln for ln in lines_of(ax) if ln.get_label() == "E_K (Nernst)"][0]
    np.testing.assert_allclose(nernst.get_ydata(), ds["E_K"][:, 0, 0].values, rtol=1e-5)
    np.testing.assert_allclose(lines_of(ax)[0].get_ydata(),
                               ds["V"].sel(Na_i=50.0).isel(P_Na=0).values)
    assert plot.store_kind(ds) == "sweep"


def test_real_reduction_marginal_and_histogram(reduced: Path) -> None:
    ds = xr.open_zarr(reduced)
    assert plot.store_kind(ds) == "reduction"
    ax = plot.marginal(ds, "K_o")
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), ds["V_mean_by_K_o"].values)
    ax = plot.histogram(ds)
    assert int(ds["V_hist"].sum()) + int(ds["V_below"]) + int(ds["V_above"]) == 40
    np.testing.assert_allclose(ax.patches[0].get_data().values,
                               ds["V_hist"].values / ds["V_hist"].values.sum())


def test_cli_plot_every_store_kind(store: Path, reduced: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture) -> None:
    png = tmp_path / "fig.png"

    def ok(*argv: str) -> None:
        assert main(["plot", *argv, "-o", str(png)]) == 0, capsys.readouterr().err
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        png.unlink()

    ok(str(store), "--x", "K_o", "--hue", "P_Na")
    ok(str(store), "--x", "K_o", "--y", "P_Na", "--at", "Na_i=20", "--band", "-75", "-65")
    ok(str(store), "--x", "K_o", "--var", "dV_dlog10_K_o")
    ok(str(reduced), "--x", "K_o", "--var", "V_mean_by_K_o")  # the failing command
    ok(str(reduced), "--var", "V_mean_by_K_o")
    ok(str(reduced))
    ok(str(reduced), "--x", "K_o", "--y", "P_Na")
    sens = tmp_path / "sens.zarr"
    sens_dataset().to_zarr(sens, zarr_format=3, consolidated=False)
    ok(str(sens))
    fit = tmp_path / "fit.zarr"
    fit_dataset(2).to_zarr(fit, zarr_format=3, consolidated=False)
    ok(str(fit), "--x", "K_o", "--cells", "1")
    tc = tmp_path / "tc.zarr"
    timecourse_dataset().to_zarr(tc, zarr_format=3, consolidated=False)
    ok(str(tc), "--var", "V,volume")
    out = capsys.readouterr().out
    for kind in ("sweep", "reduction", "sensitivity", "fit", "timecourse"):
        assert f"({kind} store)" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--x", "Cl_o"], "'Cl_o' is not a dimension"),
        (["--x", "K_o", "--at", "Na_i"], "expected NAME=VALUE"),
        (["--x", "K_o", "--at", "Na_i=1000"],
         "at Na_i=1000 is outside the range of Na_i: 20 … 50 mM"),
        (["--x", "K_o", "--var", "dV_dlog10_K_o", "--nernst", "K"], "not a voltage"),
        (["--x", "K_o", "--xscale", "log", "--band", "1", "2"], "--band needs a map"),
        ([], "--x is required for a sweep store"),
    ],
)
def test_cli_plot_errors(store: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                         argv: list[str], message: str) -> None:
    assert main(["plot", str(store), *argv, "-o", str(tmp_path / "f.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rpx: error: ") and message in err


def test_cli_plot_unknown_stores(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    png = str(tmp_path / "f.png")
    assert main(["plot", str(tmp_path / "missing.zarr"), "-o", png]) == 2
    assert "no zarr store at" in capsys.readouterr().err
    other = tmp_path / "other.zarr"
    xr.Dataset({"a": ("q", [1.0, 2.0])}).to_zarr(other, zarr_format=3, consolidated=False)
    assert main(["plot", str(other), "-o", png]) == 2
    assert "not an rpx store that can be plotted" in capsys.readouterr().err
    sens = tmp_path / "sens.zarr"
    sens_dataset().to_zarr(sens, zarr_format=3, consolidated=False)
    assert main(["plot", str(sens), "--x", "K_o", "-o", png]) == 2
    assert "--x do(es) not apply to a sensitivity store" in capsys.readouterr().err
