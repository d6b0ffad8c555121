"""Stores you can trust: checksums and ``rpx verify``, one writer at a time, size guards,
a fast ``rpx info``, self-describing stores of every kind, one-line outside failures."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import store_harness as harness
import xarray as xr
import zarr
from test_crash import SPEC, _files

from rpx.cli import main
from rpx.sweep.plan import make_plan
from rpx.sweep.spec import load_spec
from rpx.sweep.store import (
    LOCK_KEY,
    ChunkWriter,
    StoreLock,
    open_store,
    rpx_version,
    write_dataset_store,
    write_template,
)


@pytest.fixture
def spec_path(tmp_path: Path) -> Path:
    path = tmp_path / "space.toml"
    path.write_text(SPEC)
    return path


def _sweep(spec: Path, out: Path, *extra: str) -> int:
    return main(["sweep", str(spec), "-o", str(out), "--quiet", *extra])


# ------------------------------------------------------------------- verify, repair
def test_damaged_chunks_are_found_repaired_and_recomputed_bit_identical(
    spec_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, reference = tmp_path / "out.zarr", tmp_path / "reference.zarr"
    assert _sweep(spec_path, reference) == 0
    shutil.copytree(reference, out)
    assert main(["verify", str(out)]) == 0
    assert "8 of 8 completed chunks intact" in capsys.readouterr().out

    flipped = bytearray((out / "V/c/0/0").read_bytes())
    flipped[len(flipped) // 2] ^= 0x01
    (out / "V/c/0/0").write_bytes(bytes(flipped))
    truncated = (out / "V/c/1/1").read_bytes()
    (out / "V/c/1/1").write_bytes(truncated[: len(truncated) // 2])
    (out / "E_K/c/2/0").unlink()
    # A plain reader fails loudly on the flipped byte (CRC-32C), not with wrong values.
    with pytest.raises(Exception, match="(?i)checksum|crc"):
        xr.open_zarr(out)["V"].values  # noqa: B018

    assert main(["verify", str(out)]) == 1
    report = capsys.readouterr().out.splitlines()
    damaged = [line for line in report if " damaged: " in line]
    assert [re.search(r"chunk (\S+) damaged", line)[1] for line in damaged] == [
        "0.0", "1.1", "2.0"]
    assert "E_K missing" in damaged[2]
    assert "5 of 8 completed chunks intact" in report[-1]

    assert main(["verify", str(out), "--repair"]) == 1
    assert "cleared 3 completion marker(s)" in capsys.readouterr().err
    assert _sweep(spec_path, out) == 0
    assert "(3 written, 5 already done)" in capsys.readouterr().out
    assert main(["verify", str(out)]) == 0
    assert _files(out) == _files(reference)


def test_a_marker_whose_chunk_file_is_gone_is_not_trusted(
    spec_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.zarr"
    assert _sweep(spec_path, out) == 0
    before = (out / "V/c/3/1").read_bytes()
    (out / "V/c/3/1").unlink()
    capsys.readouterr()
    assert _sweep(spec_path, out) == 0
    assert "(1 written, 7 already done)" in capsys.readouterr().out
    assert (out / "V/c/3/1").read_bytes() == before


def test_a_damaged_reduction_state_is_found_and_rebuilt(
    spec_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, reference = tmp_path / "out.zarr", tmp_path / "reference.zarr"
    args = ["reduce", str(spec_path), "--quiet"]
    assert main([*args, "-o", str(reference)]) == 0
    shutil.copytree(reference, out)
    assert main(["verify", str(out)]) == 0
    state = json.loads((out / "zarr.json").read_text())["attributes"]["rpx_state"]
    chunk = out / state / "c" / "0"
    damaged = bytearray(chunk.read_bytes())
    damaged[-1] ^= 0x10
    chunk.write_bytes(bytes(damaged))
    capsys.readouterr()
    assert main(["verify", str(out)]) == 1
    assert "damaged: saved state" in capsys.readouterr().out
    assert main([*args, "-o", str(out)]) == 2  # a resume refuses a damaged state
    assert "rpx verify STORE --repair" in capsys.readouterr().err
    assert main(["verify", str(out), "--repair"]) == 1
    assert main([*args, "-o", str(out)]) == 0
    assert main(["verify", str(out)]) == 0
    a, b = xr.open_zarr(out).load(), xr.open_zarr(reference).load()
    for name in b.variables:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


def test_an_incomplete_store_of_another_kind_is_not_rebuilt_as_a_sweep(
    spec_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cut.zarr"
    zarr.open_group(out, mode="w", attributes={"kind": "fit", "rpx_template": "writing"})
    assert _sweep(spec_path, out) == 2
    assert "holds an rpx fit, cut off while it was written" in capsys.readouterr().err
    assert _sweep(spec_path, out, "--overwrite") == 0


# ----------------------------------------------------------------------- one writer
def _write_lock(out: Path, **holder: object) -> None:
    out.mkdir(parents=True, exist_ok=True)
    record = {"host": socket.gethostname(), "pid": 1, "started": "2026-01-01T00:00:00+00:00",
              "heartbeat": time.time(), "token": "other", **holder}
    (out / LOCK_KEY).write_text(json.dumps(record))


def test_a_second_writer_is_refused_naming_the_holder(
    spec_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.zarr"
    with StoreLock(open_store(out), out):
        assert _sweep(spec_path, out) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1
        assert f"is being written by pid {os.getpid()} on {socket.gethostname()}" in err
        assert main(["reduce", str(spec_path), "-o", str(out), "--quiet"]) == 2
        assert "is being written by pid" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == []  # nothing written, lock released
    _write_lock(out, host="elsewhere", heartbeat=time.time())  # a live lease elsewhere
    assert _sweep(spec_path, out) == 2
    assert "is being written by pid 1 on elsewhere" in capsys.readouterr().err


def test_stale_locks_are_taken_over_with_a_note(
    spec_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dead_pid = subprocess.Popen([sys.executable, "-c", "pass"])
    dead_pid.wait()  # its pid now names no process
    out = tmp_path / "a.zarr"
    _write_lock(out, pid=dead_pid.pid)
    assert _sweep(spec_path, out) == 0
    err = capsys.readouterr().err
    assert f"took over the lock of {out} from pid {dead_pid.pid}" in err
    assert "its process is gone" in err and not (out / LOCK_KEY).exists()
    out = tmp_path / "b.zarr"
    _write_lock(out, host="elsewhere", heartbeat=time.time() - 3600)  # lease expired
    assert _sweep(spec_path, out) == 0
    assert "(no heartbeat for 3600 s)" in capsys.readouterr().err


def test_two_writers_started_together_one_runs_one_is_refused(
    spec_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.zarr"
    args = ["sweep", spec_path, "-o", out, "--quiet"]
    procs = [
        subprocess.Popen(harness.command(args), env=harness.env(delay=0.05),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [(p.wait(timeout=600), p.communicate()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, (_, err) in results if code == 2)
    assert "is being written by pid" in loser and len(loser.strip().splitlines()) == 1
    assert main(["verify", str(out)]) == 0


# ------------------------------------------------------------------------ size guards
BIG = """
model = "ghk"
outputs = ["V"]
[[axes]]
name = "K_o"
logspace = [1.0, 100.0, 1000000]
[[axes]]
name = "P_Na"
logspace = [1e-9, 1e-6, 1000000]
[reduce]
histograms = [{ name = "V", lo = -100.0, hi = 0.0, bins = 100 }]
"""


def test_dry_run_writes_nothing_and_sizes_beyond_the_disk_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    big = tmp_path / "big.toml"
    big.write_text(BIG)
    out = tmp_path / "big.zarr"
    assert main(["sweep", str(big), "-o", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "points  1,000,000,000,000" in text and "store   up to 4.0 TB" in text
    assert "memory  about" in text and "dry run: nothing written" in text
    assert main(["reduce", str(big), "-o", str(out), "--dry-run"]) == 0
    assert "dry run: nothing written" in capsys.readouterr().out
    assert not out.exists()

    import rpx.sweep.store as store

    monkeypatch.setattr(store, "free_bytes", lambda url: 100)  # a nearly full disk
    spec = tmp_path / "small.toml"
    spec.write_text(SPEC)
    assert main(["sweep", str(spec), "-o", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "only 100 B are free" in err and "--force" in err and not out.exists()
    assert main(["sweep", str(spec), "-o", str(out), "--quiet", "--force"]) == 0


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('[[axes]]\nname = "K_o"\nlinspace = [1.0, 10.0, 100000000000]\n',
         "axis K_o: 100,000,000,000 values need"),
        ('[design]\nmethod = "uniform"\nn = 1000000000000\n'
         'ranges = [{ name = "K_o", lo = 1.0, hi = 10.0 }]\n',
         "design n: 1,000,000,000,000 values need"),
    ],
)
def test_axes_and_designs_beyond_memory_are_refused_with_the_number(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], entry: str, message: str
) -> None:
    spec = tmp_path / "s.toml"
    spec.write_text('model = "ghk"\n' + entry)
    assert main(["sweep", str(spec), "-o", str(tmp_path / "o.zarr"), "--dry-run"]) == 2
    assert message in capsys.readouterr().err


def test_histograms_beyond_memory_are_refused_with_the_number(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC.replace("bins = 12", "bins = 100000000000"))
    out = tmp_path / "o.zarr"
    assert main(["reduce", str(spec), "-o", str(out), "--quiet"]) == 2
    assert "histogram V: 100,000,000,000 bins" in capsys.readouterr().err
    assert not out.exists()


# --------------------------------------------------------------------------- info
LARGE = """
model = "ghk"
outputs = ["V", "E_K"]
[[axes]]
name = "K_o"
logspace = [1.0, 100.0, 1000]
[[axes]]
name = "P_Na"
logspace = [1e-9, 1e-6, 1000000]
[chunks]
K_o = 1
"""


def test_info_on_a_large_partial_store_reads_no_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1e9 points in 1,000 chunks, 3 of them written: `rpx info` reads metadata and the
    markers' statistics, never a data chunk."""
    from zarr.storage import LocalStore

    from rpx.cli.info import store_summary

    spec = tmp_path / "large.toml"
    spec.write_text(LARGE)
    plan = make_plan(load_spec(spec))
    out = tmp_path / "large.zarr"
    store = open_store(out)
    write_template(store, plan, rpx_version())
    writer = ChunkWriter(store, plan)
    n = plan.chunk_shape[1]
    for k, index in enumerate([(0, 0), (5, 0), (999, 0)]):
        V = np.linspace(-90.0 + k, -10.0, n, dtype=np.float32).reshape(1, n)
        V[0, :7] = np.nan
        writer.write(index, plan.chunk_slices(index), {"V": V, "E_K": V - 1})
    reads: list[str] = []
    original = LocalStore.get

    async def counting_get(self: LocalStore, key: str, *a: object, **kw: object) -> object:
        reads.append(key)
        return await original(self, key, *a, **kw)

    monkeypatch.setattr(LocalStore, "get", counting_get)
    text = store_summary(str(out))
    data = [k for k in reads if re.match(r"(V|E_K)/c/", k)]
    assert data == [], data
    assert "dims    K_o=1000  P_Na=1000000  (1,000,000,000 points)" in text
    assert "chunks  3/1000 complete (0.3%)" in text and "partial: run the same command" in text
    v = next(line for line in text.splitlines() if line.strip().startswith("V "))
    assert "min -90 max -10  NaN 21" in v
    # Nor does it load the physics (JAX) or parse the spec's values.
    probe = subprocess.run(
        [sys.executable, "-c", "import sys; from rpx.cli.info import store_summary; "
         f"print(store_summary({str(out)!r})); print('jax' in sys.modules)"],
        capture_output=True, text=True, timeout=300, check=True,
    )
    assert probe.stdout.splitlines()[-1] == "False" and "chunks  3/1000" in probe.stdout


# ------------------------------------------------------------ every kind, described
def test_every_store_kind_describes_itself_and_commands_say_what_a_store_holds(
    spec_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep, red, fit = tmp_path / "sweep.zarr", tmp_path / "red.zarr", tmp_path / "fit.zarr"
    assert _sweep(spec_path, sweep) == 0
    assert main(["reduce", str(spec_path), "-o", str(red), "--quiet"]) == 0
    ds = xr.Dataset(
        {"P_Na": xr.Variable(("cell",), [1e-8, 2e-8], {"units": "cm/s", "long_name": "P_Na"}),
         "converged": xr.Variable(("cell",), [True, False], {"units": "1", "long_name": "ok"})},
        attrs={"title": "rpx fit of model ghk", "model": "ghk", "preset": "default",
               "free": ["P_Na"]},
    )
    write_dataset_store(ds, fit, "fit", {"free": "P_Na"})
    capsys.readouterr()
    for path, kind in ((sweep, "sweep"), (red, "reduction"), (fit, "fit")):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # consolidated: no warning
            opened = xr.open_zarr(path)
        attrs = opened.attrs
        assert attrs["kind"] == kind and attrs["rpx_version"] == rpx_version()
        assert attrs["model"] == "ghk" and "created" in attrs
        assert zarr.open_group(path, mode="r").metadata.consolidated_metadata is not None
        assert main(["info", str(path)]) == 0
        assert "created ?" not in capsys.readouterr().out
    assert len(json.loads(xr.open_zarr(fit).attrs["options"])) == 1
    assert "options_hash" in xr.open_zarr(fit).attrs
    assert main(["info", str(fit)]) == 0
    assert "(a fit)" in (text := capsys.readouterr().out) and "converged 1/2" in text

    assert _sweep(spec_path, fit) == 2
    assert "holds an rpx fit (model ghk, created" in capsys.readouterr().err
    assert main(["reduce", str(spec_path), "-o", str(sweep), "--quiet"]) == 2
    assert "holds an rpx sweep" in capsys.readouterr().err
    with pytest.raises(ValueError, match="holds an rpx reduction"):
        write_dataset_store(ds, red, "fit", {})


# --------------------------------------------------------------- outside failures
def test_unreachable_scheduler_is_one_line(
    spec_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import rpx.cli.common as common

    monkeypatch.setattr(common, "SCHEDULER_TIMEOUT_S", 2)
    out = tmp_path / "out.zarr"
    code = _sweep(spec_path, out, "--scheduler", "tcp://127.0.0.1:9")
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert "rpx: error: cannot reach the dask scheduler at tcp://127.0.0.1:9" in err


@pytest.mark.parametrize(
    ("code", "words"),
    [(errno.EROFS, "permission denied at"), (errno.EACCES, "permission denied at"),
     (errno.ENOSPC, "disk full at")],
)
def test_disk_and_permission_failures_are_one_line_traceback_with_debug(
    spec_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, code: int, words: str,
) -> None:
    """The store's writes fail as a read-only or full file system makes them fail."""
    from zarr.storage import LocalStore

    original = LocalStore.set

    async def failing_set(self: LocalStore, key: str, value: object) -> None:
        if "/c/" in key and key.startswith("V/"):
            raise OSError(code, os.strerror(code), str(Path(self.root) / key))
        await original(self, key, value)

    monkeypatch.setattr(LocalStore, "set", failing_set)
    out = tmp_path / "out.zarr"
    assert _sweep(spec_path, out) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and f"rpx: error: {words} {out}" in err, err
    assert _sweep(spec_path, out, "--debug") == 1
    assert "Traceback" in capsys.readouterr().err
    monkeypatch.setattr(LocalStore, "set", original)
    assert _sweep(spec_path, out) == 0  # fixed: the same command completes the store
    assert main(["verify", str(out)]) == 0


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_directory_is_one_line(
    spec_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        assert _sweep(spec_path, parent / "out.zarr") == 1
        assert "rpx: error: permission denied" in capsys.readouterr().err
    finally:
        parent.chmod(0o755)


# ------------------------------------------------------ damage never passes as intact
def test_a_marker_that_does_not_parse_is_damage_repaired_and_not_trusted(
    spec_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.zarr"
    assert _sweep(spec_path, out) == 0
    before = (out / "V/c/1/0").read_bytes()
    (out / "rpx_done/1.0").write_text("garbage\n")
    capsys.readouterr()
    assert main(["verify", str(out)]) == 1
    report = capsys.readouterr().out.splitlines()
    assert [line for line in report if "damaged" in line] == [
        f"{out}: chunk 1.0 damaged: completion marker does not parse"]
    assert "7 of 8 completed chunks intact" in report[-1]
    # A resume does not trust it: its chunk is recomputed (bit-identical).
    assert _sweep(spec_path, out) == 0
    assert "(1 written, 7 already done)" in capsys.readouterr().out
    assert (out / "V/c/1/0").read_bytes() == before
    assert main(["verify", str(out)]) == 0
    # --repair clears such a marker.
    (out / "rpx_done/0.1").write_bytes(b"\xff\x00")
    assert main(["verify", str(out), "--repair"]) == 1
    assert "cleared 1 completion marker(s)" in capsys.readouterr().err
    assert not (out / "rpx_done/0.1").exists()


def test_corrupt_or_foreign_root_metadata_is_named(
    spec_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.zarr"
    assert _sweep(spec_path, out) == 0
    text = (out / "zarr.json").read_text()
    (out / "zarr.json").write_text(text[: len(text) // 2])
    capsys.readouterr()
    assert main(["verify", str(out)]) == 1
    line = capsys.readouterr().out.strip()
    assert "\n" not in line and f"{out}/zarr.json" in line and "corrupt" in line, line
    assert main(["info", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"{out}/zarr.json" in err and "corrupt" in err, err
    assert _sweep(spec_path, out) == 2  # not rebuilt over without --overwrite
    assert "corrupt" in capsys.readouterr().err
    assert _sweep(spec_path, out, "--overwrite") == 0
    junk = tmp_path / "junk.zarr"
    junk.mkdir()
    (junk / "zarr.json").write_text("hello\n")
    assert main(["info", str(junk)]) == 2
    err = capsys.readouterr().err
    assert f"{junk}/zarr.json" in err and "not a zarr store" in err, err


def test_missing_array_metadata_is_damage_in_one_line(
    spec_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.zarr"
    assert _sweep(spec_path, out) == 0
    (out / "V/zarr.json").unlink()
    capsys.readouterr()
    assert main(["verify", str(out)]) == 1
    captured = capsys.readouterr()
    assert captured.out.strip() == f"{out}: damaged: array V: metadata missing"
    assert _sweep(spec_path, out) == 2
    assert "array V: metadata missing" in capsys.readouterr().err
    assert _sweep(spec_path, out, "--overwrite") == 0
    assert main(["verify", str(out)]) == 0


def test_an_unwritable_target_is_named_before_the_free_space_check(
    spec_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tempfile

    from rpx.sweep import store

    def refuse(*a: object, **kw: object) -> None:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), "probe")

    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    monkeypatch.setattr(store, "free_bytes", lambda url: 0)  # as /sys reports
    for extra in ((), ("--force",)):
        assert _sweep(spec_path, tmp_path / "out.zarr", *extra) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"rpx: error: permission denied at {tmp_path}"), err
        assert "free" not in err and len(err.strip().splitlines()) == 1


def test_info_flags_a_marker_that_does_not_parse_and_a_dead_writer(
    spec_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.zarr"
    assert _sweep(spec_path, out) == 0
    (out / "rpx_done/2.1").write_text("garbage\n")
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    info = capsys.readouterr().out
    assert "damaged 1 completion marker(s) do not parse (chunk 2.1)" in info, info
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # its pid now names no process
    _write_lock(out, pid=dead.pid, heartbeat=time.time() - 16)
    assert main(["info", str(out)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("writer"))
    assert f"pid {dead.pid}" in line and "(process gone: the next run takes the lock over)" in line
    _write_lock(out, pid=os.getpid())  # alive: no such note
    assert main(["info", str(out)]) == 0
    assert "process gone" not in capsys.readouterr().out


def test_an_array_gone_from_any_store_kind_is_damage(
    spec_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "red.zarr"
    assert main(["reduce", str(spec_path), "--quiet", "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["verify", str(out)]) == 0
    name = next(p.parent.name for p in sorted(out.glob("*/zarr.json")))
    (out / name / "zarr.json").unlink()
    assert main(["verify", str(out)]) == 1
    assert f"damaged: array {name}: metadata missing" in capsys.readouterr().out
    t = np.linspace(0.0, 1.0, 4)
    ds = xr.Dataset({"V": ("time", t - 70.0, {"units": "mV", "long_name": "V"}),
                     "K_i": ("time", t + 140.0, {"units": "mM", "long_name": "K_i"})},
                    coords={"time": ("time", t, {"units": "s", "long_name": "time"})})
    out = tmp_path / "run.zarr"
    ds.to_zarr(out, zarr_format=3, consolidated=True)
    assert main(["verify", str(out)]) == 0
    (out / "K_i/zarr.json").unlink()
    capsys.readouterr()
    assert main(["verify", str(out)]) == 1
    assert capsys.readouterr().out.strip() == f"{out}: damaged: array K_i: metadata missing"
