"""Every notebook under notebooks/ runs end to end (small configuration), its outputs are
stripped in git, and its figures are readable and show what the text says they show.

After the notebook's own cells, the test runs one more cell in the same kernel that
describes every open figure (and the explorer's) as JSON: labels, titles, scales, line
and patch counts, and :func:`rpx.plot.readability_problems` (clipped labels,
overlapping tick labels).
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))

DESCRIBE = r'''
import json as _json
import matplotlib.pyplot as _plt
from rpx import plot as _plot

def _describe(fig):
    axes = []
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        axes.append({
            "xlabel": ax.get_xlabel(), "ylabel": ax.get_ylabel(), "title": ax.get_title(),
            "xscale": ax.get_xscale(), "yscale": ax.get_yscale(),
            "lines": len(ax.get_lines()), "containers": len(ax.containers),
            "patch_gids": [p.get_gid() for p in ax.patches if p.get_gid()],
            "images": len(ax.get_images()),
            "colorbar": hasattr(ax, "_colorbar"),
        })
    sup = fig._suptitle.get_text() if fig._suptitle is not None else ""
    return {"axes": axes, "suptitle": sup, "problems": _plot.readability_problems(fig)}

_figs = [_plt.figure(n) for n in _plt.get_fignums()]
if "explorer" in globals():
    _figs.append(explorer.figure)
print("RPX_FIGURES" + _json.dumps([_describe(f) for f in _figs]))
'''


def test_there_are_notebooks() -> None:
    assert [p.name for p in NOTEBOOKS][:1] == ["01_explore_a_cube.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_outputs_are_stripped_in_git(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{path.name} has outputs"


def _run(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list, list]:
    # Small configuration; the kernel inherits the environment (and not the x64 flag
    # the test process runs with, so the notebooks run in JAX's default float32). With
    # the Agg backend figures stay open, so the last cell can inspect all of them.
    monkeypatch.setenv("RPX_NOTEBOOK_SCALE", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("JAX_ENABLE_X64", raising=False)
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(DESCRIBE))
    client = NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    errors = [o for o in outputs if o.output_type == "error"]
    assert not errors, errors[0].get("evalue")
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    figures = json.loads(text.split("RPX_FIGURES", 1)[1])
    return figures, outputs


def _all_axes(figures: list) -> list:
    return [ax for f in figures for ax in f["axes"]]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_and_its_figures_are_readable(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    figures, outputs = _run(path, tmp_path, monkeypatch)
    assert figures, f"{path.name} draws no figure"
    for i, fig in enumerate(figures):
        assert fig["problems"] == [], (path.name, i, fig["problems"])
        for ax in fig["axes"]:
            if ax["colorbar"]:
                assert ax["ylabel"] or ax["xlabel"], (path.name, "colorbar without a label")
                continue
            assert ax["xlabel"] and ax["ylabel"], (path.name, i, ax)
    axes = _all_axes(figures)
    stem = path.stem
    if stem.startswith("01"):
        # the explorer is displayed as a widget, with the static PNG beside it
        data = [o.get("data", {}) for o in outputs if o.output_type in ("display_data",
                                                                        "execute_result")]
        assert any("application/vnd.jupyter.widget-view+json" in d and "image/png" in d
                   for d in data)
        title = figures[-1]["axes"][0]["title"]  # the explorer states its slice
        assert title.startswith("at P_Na = ") and "Na_i = " in title
        assert any("band" in ax["patch_gids"] and "hatched" in ax["title"] for ax in axes)
        assert any(ax["xscale"] == "log" and ax["ylabel"].endswith("[mV]") for ax in axes)
    elif stem.startswith("02"):
        assert any(ax["containers"] >= 2 and "sobol index of V" in ax["xlabel"] for ax in axes)
        assert any("[mV/decade]" in ax["ylabel"] for ax in axes)
    elif stem.startswith("03"):
        assert any(ax["containers"] >= 1 and ax["xscale"] == "log"
                   and ax["xlabel"] == "extracellular K concentration [mM]" for ax in axes)
        assert any("estimate ± 1 SE" in ax["title"] for ax in axes)
    elif stem.startswith("04"):
        # units in every y label; the time courses mark the pump block
        for ax in axes:
            if not ax["colorbar"] and ax["ylabel"] != "cell":
                assert "[" in ax["ylabel"] or "relative" in ax["ylabel"], ax["ylabel"]
        # the event time is given in the time axis's unit (60 s = 0.0167 h)
        assert any(f["suptitle"].startswith("events (dotted): t = 0.0167 h: I_pump_max ×0")
                   for f in figures), [f["suptitle"] for f in figures]
        assert any("intracellular Na concentration" in ax["ylabel"] and "[mM]" in ax["ylabel"]
                   for ax in axes)
