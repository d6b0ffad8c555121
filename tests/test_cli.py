"""The ``rpx`` command line: presets, calc, sweep and info, with their exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import xarray as xr

import rpx
from rpx.cli import main

SPEC = """
model = "ghk"
preset = "mammalian_neuron"
outputs = ["V", "E_K"]
[[axes]]
name = "K_o"
logspace = [1.0, 100.0, 12]
[[axes]]
name = "P_Na"
values = [1e-8, 1e-7]
[chunks]
K_o = 5
"""


def test_presets_lists_every_preset_and_shows_sources(capsys: pytest.CaptureFixture) -> None:
    assert main(["presets"]) == 0
    listing = capsys.readouterr().out
    for name in rpx.presets():
        assert name in listing
    assert main(["presets", "squid_axon"]) == 0
    shown = capsys.readouterr().out
    assert "reported V: -70 .. -55 mV" in shown
    assert "Hodgkin & Katz 1949" in shown and "K_i" in shown


def test_calc_prints_every_model_and_nernst_potential(capsys: pytest.CaptureFixture) -> None:
    assert main(["calc", "--preset", "squid_axon", "--K_o", "50"]) == 0
    out = capsys.readouterr().out
    want = float(rpx.resting_potential({**rpx.preset("squid_axon"), "K_o": 50.0}))
    assert f"V[ghk] = {want:8.2f} mV" in out
    for model in ("mullins_noda", "ghk_pump"):
        assert f"V[{model}]" in out
    for ion in ("K", "Na", "Cl", "Ca"):
        assert f"E_{ion}" in out


def test_bad_input_exits_2_with_the_parameter_named(capsys: pytest.CaptureFixture) -> None:
    assert main(["calc", "--K_o", "-3"]) == 2
    assert "K_o=-3.0 is outside its allowed range" in capsys.readouterr().err
    assert main(["calc", "--preset", "octopus"]) == 2
    assert "unknown preset 'octopus'" in capsys.readouterr().err


def test_sweep_then_info(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC)
    out = tmp_path / "cube.zarr"
    assert main(["sweep", str(spec), "-o", str(out), "--quiet"]) == 0
    assert "24 points in 3 chunks (3 written, 0 already done)" in capsys.readouterr().out
    ds = xr.open_zarr(out)
    assert ds["V"].dims == ("K_o", "P_Na") and ds["V"].attrs["units"] == "mV"
    assert main(["info", str(out)]) == 0
    info = capsys.readouterr().out
    assert "chunks  3/3 complete (100.0%)" in info and "preset mammalian_neuron" in info
    # the same command again resumes and writes nothing; --resume on a missing store fails
    assert main(["sweep", str(spec), "-o", str(out), "--quiet"]) == 0
    assert "(0 written, 3 already done)" in capsys.readouterr().out
    assert main(["sweep", str(spec), "-o", str(tmp_path / "no.zarr"), "--resume"]) == 2


def test_console_script_runs_as_a_module() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "rpx", "presets"], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0 and "astrocyte" in run.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "rpx", "info", "/nonexistent/x.zarr"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2 and "no zarr store" in bad.stderr
