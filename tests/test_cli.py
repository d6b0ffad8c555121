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


# ------------------------------------------------------- before JAX, xarray or zarr
_NO_HEAVY_IMPORTS = """
import contextlib, io, json, sys
from rpx.cli import main
heavy = ("jax", "xarray", "zarr", "dask", "scipy")
results = []
for argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
    results.append({"argv": argv, "code": code, "out": out.getvalue(), "err": err.getvalue(),
                    "loaded": [m for m in heavy if m in sys.modules]})
print(json.dumps(results))
"""


def test_help_version_models_and_bad_input_do_not_import_jax(tmp_path: Path) -> None:
    import json

    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("model = \n")
    argvs = [
        ["--help"],
        ["--version"],
        ["calc", "--help"],
        ["models"],
        ["models", "ghk_pump"],
        ["models", "goldman"],
        ["presets"],
        ["presets", "squid_axon"],
        ["calc", "--K_o", "-5"],
        ["calc", "--P_Ca", "-1e-9"],
        ["calc", "--T", "37"],
        ["calc", "--P_Na", "nan"],
        ["calc", "--preset", "octopus"],
        ["calc", "--K_o", "abc"],
        ["sweep", str(tmp_path / "missing.toml"), "-o", str(tmp_path / "x.zarr")],
        ["sweep", str(bad_toml), "-o", str(tmp_path / "x.zarr")],
        ["sweep", str(bad_toml), "-o", str(tmp_path / "x.zarr"), "--workers", "0"],
        ["sweep", str(bad_toml), "-o", "x.zarr", "--storage-options", "{not json"],
    ]
    run = subprocess.run(
        [sys.executable, "-c", _NO_HEAVY_IMPORTS, json.dumps(argvs)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert run.returncode == 0, run.stderr
    results = {" ".join(r["argv"]): r for r in json.loads(run.stdout)}
    for key, r in results.items():
        assert r["loaded"] == [], f"rpx {key} imported {r['loaded']}"
    assert results["--help"]["code"] == 0 and "models" in results["--help"]["out"]
    assert results["--version"]["out"].strip() == f"rpx {rpx.__version__}"
    assert "pump_leak" in results["models"]["out"] and "I_pump" in results["models"]["out"]
    assert "Km_Na_i" in results["models ghk_pump"]["out"]
    for key, message in [
        ("models goldman", "unknown model 'goldman'"),
        ("calc --K_o -5", "K_o=-5.0 is outside its allowed range"),
        # a negative value in exponent notation reaches the range check (one line)
        ("calc --P_Ca -1e-9", "P_Ca=-1e-09 is outside its allowed range"),
        ("calc --T 37", "T is in kelvin"),
        ("calc --P_Na nan", "P_Na=nan is outside"),
        ("calc --preset octopus", "unknown preset 'octopus'"),
        ("calc --K_o abc", "invalid float value"),
        (f"sweep {tmp_path / 'missing.toml'} -o {tmp_path / 'x.zarr'}", "cannot read spec"),
        (f"sweep {bad_toml} -o {tmp_path / 'x.zarr'}", "not valid TOML"),
        (f"sweep {bad_toml} -o {tmp_path / 'x.zarr'} --workers 0", "--workers must be"),
        (f"sweep {bad_toml} -o x.zarr --storage-options {{not json", "not valid JSON"),
    ]:
        r = results[key]
        assert r["code"] == 2 and message in r["err"], (key, r)
        assert r["err"].startswith("rpx: error:") or "usage:" in r["err"], (key, r)


def test_models_catalog_is_the_registry() -> None:
    from rpx.cli.models import CATALOG
    from rpx.physics.models import get_model

    builtin = [n for n in rpx.models() if get_model(n).fn.__module__.startswith("rpx.")]
    assert sorted(CATALOG) == sorted(builtin)
    for name, info in CATALOG.items():
        m = get_model(name)
        fix = f"{name}: the registry changed; update CATALOG in rpx/cli/models.py"
        assert info.description == m.description, fix
        assert info.params == m.params, fix
        assert info.outputs == {k: (o.units, o.long_name) for k, o in m.outputs.items()}, fix


def test_unknown_option_of_a_command_prints_that_command_usage(
    capsys: pytest.CaptureFixture,
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["calc", "--K_0", "5"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: rpx calc ") and "unrecognized arguments: --K_0 5" in err


def test_a_closed_output_pipe_exits_quietly_and_is_no_endpoint_failure() -> None:
    from rpx.cli.common import outside_cause

    proc = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from rpx.cli import main; sys.exit(main(['calc', '--K_o', '5']))"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # the reader leaves at once, as `| head -0` would
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) in (0, 141)
    assert "Traceback" not in err and "BrokenPipe" not in err and "error" not in err, err
    cause = outside_cause(BrokenPipeError(32, "Broken pipe"))
    assert "endpoint" not in cause and "broken pipe" in cause


def test_missing_object_store_credentials_are_named() -> None:
    from botocore.exceptions import NoCredentialsError

    from rpx.cli.common import outside_cause

    cause = outside_cause(NoCredentialsError(), "s3://nobucket/x.zarr")
    assert cause.startswith("no credentials for s3://nobucket/x.zarr: set AWS_ACCESS_KEY_ID")
    assert "--storage-options" in cause and "endpoint" not in cause


def test_info_summarises_a_saved_time_course(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    import numpy as np

    t = np.linspace(0.0, 10.0, 11)
    ds = xr.Dataset(
        {"V": ("time", -70.0 + t, {"units": "mV", "long_name": "membrane potential"})},
        coords={"time": ("time", t, {"units": "s", "long_name": "time"})},
    )
    out = tmp_path / "run.zarr"
    ds.to_zarr(out, zarr_format=3, consolidated=False)
    assert main(["info", str(out)]) == 0
    info = capsys.readouterr().out
    assert "(a time course" in info and "11 samples, 0..10 s" in info
    assert "V" in info and "min -70 max -60" in info


def test_command_prints_each_warning_as_one_clean_line(capsys: pytest.CaptureFixture) -> None:
    """The shared command wrapper: a warning (even a multi-line one) is one
    ``rpx: warning:`` line on stderr, without file, line or category."""
    import argparse
    import warnings

    from rpx.cli.common import command

    def noisy(args: argparse.Namespace) -> int:
        warnings.warn("first line\n   second   line", UserWarning, stacklevel=1)
        warnings.warn("another", RuntimeWarning, stacklevel=1)
        return 0

    assert command(noisy)(argparse.Namespace()) == 0
    captured = capsys.readouterr()
    assert captured.err == "rpx: warning: first line second line\nrpx: warning: another\n"
    assert captured.out == ""


def test_sample_few_draws_warning_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture
                                              ) -> None:
    """`rpx sample --draws 10` warns in one line (then the bad --fixed stops it: exit 2)."""
    csv = tmp_path / "d.csv"
    csv.write_text("K_o,V\n2.5,-90\n10,-60\n50,-30\n")
    code = main(["sample", str(csv), "--free", "P_Na", "--draws", "10", "--fixed", "K_o=5"])
    err = capsys.readouterr().err.splitlines()
    assert code == 2
    assert len(err) == 2, err
    assert err[0].startswith("rpx: warning: draws=10 per chain is below the 100 effective")
    assert err[1].startswith("rpx: error: parameter 'K_o' is given as a fixed value")
    assert not any(".py:" in line or "UserWarning" in line for line in err)


def test_calc_prints_the_transporters_at_the_steady_state(
    capsys: pytest.CaptureFixture,
) -> None:
    """With KCC2 on, the pump-leak lines give the steady-state E_Cl and the fluxes; the
    Nernst block says its potentials are those of the given concentrations."""
    argv = ["calc", "--preset", "mammalian_neuron", "--P_Cl", "1e-7", "--g_KCC2", "1e-2"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    want = rpx.evaluate(
        rpx.preset("mammalian_neuron") | {"P_Cl": 1e-7, "g_KCC2": 1e-2}, model="pump_leak"
    )
    assert f"E_Cl = {float(want['E_Cl']):.4g} mV" in out
    assert f"J_KCC2 = {float(want['J_KCC2']):.4g} uA/cm^2" in out
    assert "Ca_i =" not in out  # no Ca2+ route
    assert "Nernst potentials at the given concentrations:" in out
