"""rpx.plot and ``rpx plot``: figures from stores, labelled from the stored attributes."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402

import rpx  # noqa: E402
from rpx import plot  # noqa: E402
from rpx.cli import main  # noqa: E402
from rpx.sweep.runner import run_sweep  # noqa: E402
from rpx.sweep.spec import spec_from_dict  # noqa: E402


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
        }
    )
    run_sweep(spec, out, quiet=True)
    return out


@pytest.fixture
def cube(store: Path) -> xr.Dataset:
    return xr.open_zarr(store)


def test_voltage_lines_labels_from_attrs_and_draws_nernst(cube: xr.Dataset) -> None:
    ax = plot.voltage_lines(cube, "K_o", "P_Na", at={"Na_i": 50.0})
    assert ax.get_xscale() == "log"
    assert ax.get_xlabel() == "extracellular K concentration [mM]"
    assert ax.get_ylabel() == "resting membrane potential (V_in - V_out) [mV]"
    lines = ax.get_lines()
    assert len(lines) == 4  # three P_Na values and the Nernst line
    nernst = [ln for ln in lines if ln.get_label() == "E_K"][0]
    np.testing.assert_allclose(nernst.get_ydata(), cube["E_K"][:, 0, 0].values, rtol=1e-5)
    # each V line is the stored data at Na_i = 50 mM
    want = cube["V"].sel(Na_i=50.0).isel(P_Na=0).values
    np.testing.assert_allclose(lines[0].get_ydata(), want)
    plt.close(ax.figure)


def test_voltage_map_and_bad_dimension(cube: xr.Dataset) -> None:
    ax = plot.voltage_map(cube, "K_o", "P_Na", band=(-75.0, -65.0))
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert ax.get_ylabel() == "membrane permeability to Na [cm/s]"
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="'Cl_i' is not a dimension"):
        plot.voltage_map(cube, "K_o", "Cl_i")


def test_index_bars_sorts_by_magnitude() -> None:
    st = xr.DataArray([0.1, 0.7, 0.3], dims="param", coords={"param": ["K_o", "P_Na", "Na_i"]},
                      name="ST", attrs={"long_name": "total Sobol index", "units": "1"})
    ax = plot.index_bars(st, conf=st * 0.1)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["P_Na", "Na_i", "K_o"]
    assert ax.get_xlabel() == "total Sobol index"
    plt.close(ax.figure)


def test_histogram_needs_matching_edges() -> None:
    ax = plot.histogram(xr.DataArray([1, 3, 0]), np.array([-90.0, -80.0, -70.0, -60.0]))
    assert ax.get_ylabel() == "fraction of the space"
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="edges must have 4 values"):
        plot.histogram(xr.DataArray([1, 3, 0]), np.array([0.0, 1.0]))


def test_histogram_of_a_reduction(tmp_path: Path) -> None:
    from rpx.sweep.reduce import run_reduce
    from rpx.sweep.reduce_ops import Histogram, Reductions

    spec = spec_from_dict({"model": "ghk", "axes": [{"name": "K_o", "logspace": [1.0, 100.0, 50]}]})
    reductions = Reductions(histograms=(Histogram("V", -120.0, 20.0, 14),))
    run_reduce(spec, tmp_path / "r.zarr", reductions, quiet=True)
    ds = xr.open_zarr(tmp_path / "r.zarr")
    assert int(ds["V_hist"].sum()) == 50
    ax = plot.histogram(ds)
    assert ax.get_xlabel() == "V [mV]"
    (steps,) = ax.patches
    np.testing.assert_allclose(steps.get_data().values, ds["V_hist"].values / 50)
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="no histogram of 'E_K'"):
        plot.histogram(ds, var="E_K")


def test_fit_curve_draws_data_fit_and_nernst() -> None:
    p = rpx.preset("frog_muscle")
    K_o = np.geomspace(1.0, 100.0, 30)
    V = np.asarray(rpx.resting_potential({**p, "K_o": K_o}))
    fixed = {k: v for k, v in p.items() if k != "K_o"}
    curve = xr.DataArray(V, dims="K_o", coords={"K_o": ("K_o", K_o, {"units": "mM"}), **fixed})
    data = xr.Dataset(
        {"V": ("K_o", V[::5] + 1.0, {"units": "mV"}), "V_sd": ("K_o", np.ones(6))},
        coords={"K_o": K_o[::5]},
    )
    ax = plot.fit_curve(data, curve, "K_o")
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    E_K = float(rpx.nernst(p["K_o"], p["K_i"], 1, p["T"]))
    assert "E_K" in lines and ax.get_xscale() == "log"
    # the Nernst line varies with K_o along the curve's own coordinate
    np.testing.assert_allclose(
        lines["E_K"].get_ydata(), np.asarray(rpx.nernst(K_o, p["K_i"], 1, p["T"])), rtol=1e-6
    )
    assert lines["E_K"].get_ydata()[0] != E_K
    plt.close(ax.figure)


def test_cli_plot_writes_png(store: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    png = tmp_path / "fig.png"
    assert main(["plot", str(store), "--x", "K_o", "--hue", "P_Na", "-o", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    heat = tmp_path / "map.png"
    assert main(["plot", str(store), "--x", "K_o", "--y", "P_Na", "--at", "Na_i=20",
                 "-o", str(heat)]) == 0
    assert heat.stat().st_size > 1000
    assert main(["plot", str(store), "--x", "Cl_o", "-o", str(png)]) == 2
    assert "'Cl_o' is not a dimension" in capsys.readouterr().err
    assert main(["plot", str(store), "--x", "K_o", "--at", "Na_i", "-o", str(png)]) == 2
