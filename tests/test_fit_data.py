"""Fit data: reading (CSV with comments, DataFrame, Dataset), validation errors, the CLI."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import rpx
from rpx.analysis.fit_data import load_data
from rpx.cli import main

K_O = np.array([2.5, 5.0, 10.0, 20.0, 50.0, 100.0])  # mM


def frame(**extra: object) -> pd.DataFrame:
    V = np.asarray(rpx.resting_potential({"K_o": np.asarray(K_O)}))
    return pd.DataFrame({"K_o": K_O, "V": V, **extra})


@pytest.mark.parametrize(
    ("data", "kw", "match"),
    [
        (frame().drop(columns="V"), {}, "need a column 'V'"),
        (frame().assign(V=lambda d: d["V"].where(d.index != 2)), {}, r"'V' has .*\(row 2\)"),
        (frame().assign(K_o=[2.5, np.inf, 10.0, 20.0, 50.0, 100.0]), {}, "'K_o' has a missing"),
        (frame(K_out=1.0), {}, "unknown data column 'K_out'"),
        (frame(r_pump=1.5), {}, "'r_pump' is not a parameter of this model"),
        (frame(P_Na=1e-8), {}, "'P_Na' is both a data column and a free parameter"),
        (frame(V_sd=0.0), {}, "'V_sd' must be > 0"),
        (frame().assign(K_o=["a"] * 6), {}, "'K_o' must be numeric"),
        (frame().assign(K_o=-1.0), {}, r"K_o=-1.0 is outside its allowed range"),
        (frame().head(1), {"free": ["P_Na", "P_Cl"]}, "1 data points but 2 free parameters"),
        (
            frame(cell=["a"] * 5 + ["b"]),
            {"free": ["P_Na", "P_Cl"]},
            r"1 data points \(cell 'b'\) but 2 free",
        ),
        (frame().head(0), {}, "0 data points"),
        (frame(), {"free": ["P_Xx"]}, "unknown parameter 'P_Xx'"),
        (frame(), {"free": ["r_pump"]}, "'r_pump' is not read by model 'ghk'"),
        (frame(), {"free": "P_Na,P_Na"}, "repeated"),
        (frame(), {"free": []}, "at least one free parameter"),
        (frame(), {"model": "nope"}, "unknown model 'nope'"),
        (frame(), {"fixed": {"P_Na": 1e-8}}, "'P_Na' is free"),
        (frame(), {"fixed": {"K_i": -3.0}}, "K_i=-3.0 is outside"),
        # fixed values pass the same rules as the API: positive sums too, not only the
        # permeability groups (P_Na is free, but its product with Na_o = 0 is 0)
        (
            frame(),
            {"fixed": {"P_K": 0.0, "Na_o": 0.0, "P_Cl": 0.0, "P_Ca": 0.0}},
            r"GHK numerator P_K·K_o \+ Na_o \+ P_Cl·Cl_i \+ P_Ca·Ca_o is 0",
        ),
        (frame().assign(K_o=[2.5, 5.0, -1.0, 20.0, 50.0, 100.0]), {}, r"outside .*\(row 2\)"),
        (frame(), {"bounds": {"P_Cl": (0.0, 1e-6)}}, "'P_Cl', which is not a free parameter"),
        (frame(), {"bounds": {"P_Na": (1e-6, 1e-8)}}, "lo < hi"),
        (frame(), {"init": {"P_K": 1e-7}}, "init given for 'P_K'"),
        (frame(), {"starts": 0}, "starts must be a positive integer"),
        (frame(), {"dtype": "float16"}, "dtype must be"),
        ("no/such/file.csv", {}, "no data file"),
        (str(Path(__file__).resolve().parent), {}, "is a directory"),
        (str(Path(__file__).resolve().parent / "data" / "fit_reference.npz"), {},
         r"not a text \(CSV\) file|not a valid CSV"),
        (np.zeros((3, 2)), {}, "data must be a pandas DataFrame"),
        (xr.Dataset({"K_o": ("p", K_O)}), {}, "need a column 'V'"),
    ],
)
def test_bad_input_raises_clear_value_error(data: object, kw: dict, match: str) -> None:
    kw = {"free": ["P_Na"], **kw}
    with pytest.raises(ValueError, match=match):
        rpx.fit(data, **kw)


def test_csv_with_comments_equals_dataframe(tmp_path: Path) -> None:
    df = frame()
    path = tmp_path / "data.csv"
    path.write_text("# source: simulated\n# units: mM, mV\n" + df.to_csv(index=False))
    from rpx.analysis.fit_data import load_data

    a = load_data(path, ("K_o", "V"), ["P_Na"])
    b = load_data(df, ("K_o", "V"), ["P_Na"])
    np.testing.assert_array_equal(a.V, b.V)
    np.testing.assert_array_equal(a.conditions["K_o"], b.conditions["K_o"])
    assert a.squeeze and a.V.shape == (1, 6) and a.V_sd is None


@pytest.mark.parametrize(
    ("cell", "labels", "points"),
    [
        ([3, 3, 3, 7, 7, 7], [3, 7], [[0, 1, 2], [3, 4, 5]]),  # ascending: reshaped
        ([3, 3, 7, 7, 7, 9], [3, 7, 9], [[0, 1, -1], [2, 3, 4], [5, -1, -1]]),
        ([7, 3, 7, 3, 3, 7], [7, 3], [[0, 2, 5], [1, 3, 4]]),  # first appearance order
        ([7, 7, 7, 3, 3, 3], [7, 3], [[0, 1, 2], [3, 4, 5]]),
    ],
)
def test_integer_cell_labels_group_rows_in_order_of_first_appearance(
    cell: list[int], labels: list[int], points: list[list[int]]
) -> None:
    from rpx.analysis.fit_data import load_data

    df = frame(cell=np.asarray(cell, dtype=np.int64), V_sd=np.arange(1, 7, dtype=np.int32))
    data = load_data(df, ("K_o", "V"), ["P_Na"])
    assert data.cells.tolist() == labels
    rows = np.asarray(points)
    np.testing.assert_array_equal(data.mask, rows >= 0)
    np.testing.assert_array_equal(data.conditions["K_o"][rows >= 0], K_O[rows[rows >= 0]])
    np.testing.assert_array_equal(data.V_sd[rows >= 0], np.arange(1.0, 7.0)[rows[rows >= 0]])


def test_cells_of_different_lengths_are_padded() -> None:
    from rpx.analysis.fit_data import load_data

    df = frame(cell=["x", "x", "y", "y", "y", "x"])
    data = load_data(df, ("K_o", "V"), ["P_Na"])
    assert list(data.cells) == ["x", "y"] and list(data.n_points) == [3, 3]
    np.testing.assert_array_equal(data.conditions["K_o"][0], [2.5, 5.0, 100.0])
    df = frame(cell=["x"] * 4 + ["y"] * 2)
    data = load_data(df, ("K_o", "V"), ["P_Na"])
    assert data.mask.tolist() == [[True] * 4, [True, True, False, False]]
    assert np.isnan(data.V[1, 2:]).all()
    np.testing.assert_array_equal(data.conditions["K_o"][1], [50.0, 100.0, 50.0, 50.0])


def test_cli_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``rpx fit`` prints estimates ± SE and writes the same Dataset as rpx.fit."""
    K_o = np.asarray(K_O)
    truth = {**rpx.preset("frog_muscle"), "K_o": K_o, "Cl_o": 300.0 / K_o, "P_Cl": 6.6e-7}
    V = np.asarray(rpx.resting_potential(truth)) + np.array([0.2, -0.1, 0.0, 0.1, -0.2, 0.1])
    csv = tmp_path / "data.csv"
    pd.DataFrame({"K_o": K_o, "Cl_o": 300.0 / K_o, "V": V}).to_csv(csv, index=False)
    out = tmp_path / "fit.zarr"
    args = ["fit", str(csv), "--model", "ghk", "--free", "P_Na,P_Cl", "--preset", "frog_muscle"]
    assert main([*args, "--starts", "4", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "P_Na" in text and "P_Cl" in text and "±" in text and "cm/s" in text
    stored = xr.open_zarr(out, consolidated=False).load()
    direct = rpx.fit(csv, free="P_Na,P_Cl", preset="frog_muscle", starts=4)
    for name in ["P_Na", "P_Na_se", "P_Cl", "P_Cl_se", "loss", "V_fit"]:
        np.testing.assert_allclose(stored[name].values, direct[name].values, rtol=1e-12)
    assert stored["P_Na"].attrs["units"] == "cm/s"
    assert stored.attrs["free"] == ["P_Na", "P_Cl"] and list(stored["param"].values) == [
        "P_Na",
        "P_Cl",
    ]
    # An existing store is refused (exit 2) unless --overwrite.
    assert main([*args, "--starts", "4", "-o", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main([*args, "--starts", "4", "-o", str(out), "--overwrite"]) == 0
    assert main(["fit", str(csv), "--free", "P_Xx"]) == 2
    assert main(["fit", str(csv), "--free", "P_Na", "--fixed", "K_i"]) == 2


def test_cli_summarises_many_cells(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Beyond --show-cells, the table ends with a summary over every cell."""
    K_o = np.asarray(K_O)
    rows = []
    for cell, P_Na in enumerate([0.008, 0.01, 0.012]):
        p = {**rpx.preset("frog_muscle"), "K_o": K_o, "P_Na": P_Na * 3.3e-7}
        rows.append(pd.DataFrame({"cell": cell, "K_o": K_o, "V": rpx.resting_potential(p)}))
    csv = tmp_path / "cells.csv"
    pd.concat(rows).to_csv(csv, index=False)
    args = ["fit", str(csv), "--free", "P_Na", "--preset", "frog_muscle", "--starts", "2"]
    assert main([*args, "--show-cells", "1"]) == 0
    text = capsys.readouterr().out
    assert "cell 0:" in text and "cell 1:" not in text and "... 2 more cells" in text
    assert "all 3 cells: median" in text and "converged 3/3, identifiable 3/3" in text
    lo, mid, hi = np.percentile(np.array([0.008, 0.01, 0.012]) * 3.3e-7, [2.5, 50, 97.5])
    assert f"P_Na = {mid:.4g} [{lo:.4g}, {hi:.4g}]" in text
    assert main([*args, "--show-cells", "-1"]) == 2


@pytest.mark.parametrize(
    ("name", "citation", "columns"),
    [
        ("hodgkin_horowicz_1959", "J. Physiol. 148, 127-160", ["K_o", "Cl_o"]),
        ("hodgkin_katz_1949", "J. Physiol. 108, 37-77", ["K_o", "Na_o"]),
    ],
)
def test_bundled_classic_data(name: str, citation: str, columns: list[str]) -> None:
    """Packaged, cited, and every row names its source; an empty file says why and
    fitting it is refused with the data-point error rather than returning anything."""
    import importlib.resources

    path = importlib.resources.files("rpx") / "data" / f"{name}.csv"
    text = path.read_text()
    assert citation in text
    with importlib.resources.as_file(path) as p:
        df = pd.read_csv(p, comment="#", skipinitialspace=True)
        assert list(df.columns) == [*columns, "V", "V_sd", "source"]
        if len(df) == 0:
            assert "Rows: NONE" in text and "published fit" in text
            with pytest.raises(ValueError, match="0 data points"):
                rpx.fit(p, free=["P_Na"])
        else:
            assert df["source"].notna().all() and (df["source"].str.strip() != "").all()
            assert bool(rpx.fit(p, free=["P_Na"])["converged"])


def test_source_column_is_ignored_by_the_fit() -> None:
    from rpx.analysis.fit_data import load_data

    data = load_data(frame(source="Table 1"), ("K_o", "V"), ["P_Na"])
    assert set(data.conditions) == {"K_o"}


@pytest.mark.parametrize(
    ("value", "match"),
    [(True, "got bool True"), ("140", "got str '140'"), (None, "got NoneType None")],
)
def test_fixed_values_must_be_numbers(value: object, match: str) -> None:
    with pytest.raises(TypeError, match=f"parameter K_i must be a number .*{match}"):
        rpx.fit(frame(), free=["P_Na"], fixed={"K_i": value})


def test_csv_errors_name_the_file_and_line(tmp_path: Path) -> None:
    """A NaN in V names its CSV line (comments and blank lines counted), an empty file
    and an out-of-domain condition name the file."""
    csv = tmp_path / "cells.csv"
    path = re.escape(str(csv))
    csv.write_text("# recorded 2024\ncell,K_o,V\n\na,2.5,-80\na,5,nan\nb,10,-60\n")
    with pytest.raises(ValueError, match=rf"'V' has .*\(cell 'a', {path} line 5\)"):
        rpx.fit(csv, free=["P_Na"])
    csv.write_text("K_o,V\n2.5,-80\n-5,-70\n")
    with pytest.raises(ValueError, match=rf"K_o=-5.0 is outside .*\({path} line 3\)"):
        rpx.fit(csv, free=["P_Na"])
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ValueError, match=rf"data file '{re.escape(str(empty))}' is empty"):
        rpx.fit(empty, free=["P_Na"])


# A fixed value of a parameter that the data also give would be silently ignored (the
# data win): rpx.fit, rpx.sample and their commands refuse it in one line.
@pytest.mark.parametrize("entry", ["fit", "sample"])
def test_fixed_value_of_a_data_column_is_refused(entry: str) -> None:
    fn = rpx.fit if entry == "fit" else rpx.sample
    with pytest.raises(ValueError, match=r"^parameter 'K_o' is given as a fixed value but "
                                         r"is also a column of the data"):
        fn(frame(), free=["P_Na"], fixed={"K_o": 5.0})
    ds = xr.Dataset({"V": ("k", frame()["V"].to_numpy())},
                    coords={"K_o": ("k", np.asarray(K_O))})
    with pytest.raises(ValueError, match="'K_o' is given as a fixed value"):
        fn(ds, free=["P_Na"], fixed={"K_o": 5.0, "P_Cl": 0.0})


def test_fixed_value_of_a_solution_condition_is_refused() -> None:
    """K_i set by the pipette solution of every row cannot also be fixed."""
    df = frame(pipette="KCl=140", ljp=0.0)
    load_data(df, rpx.get_model("ghk").params, ["P_Na"])  # readable
    with pytest.raises(ValueError, match="'K_i' is given as a fixed value but is also set "
                                         "by the data's pipette/bath solutions"):
        load_data(df, rpx.get_model("ghk").params, ["P_Na"],
                  fixed={"K_i": 100.0})


@pytest.mark.parametrize("command", ["fit", "sample"])
def test_cli_fixed_value_of_a_data_column_exits_2(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    csv = tmp_path / "d.csv"
    frame().to_csv(csv, index=False)
    code = main([command, str(csv), "--free", "P_Na", "--fixed", "K_o=5"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "'K_o' is given as a fixed value" in err, err
