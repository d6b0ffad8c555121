"""At hand: compiled public edges, the persistent compilation cache, a quick command line.

* a second call with new values of the same shapes and dtypes does not compile again;
* under a user's ``jit`` the domain check is one fused check and one error;
* a second process loads the compiled programs from the persistent cache instead of
  compiling them (counted with JAX's monitoring events), and ``RPX_CACHE_DIR=off``
  turns the cache off;
* ``rpx calc`` compiles at most one program per model it prints (plus one for the
  Nernst potentials), and Ctrl-C ends it at once;
* programs kept traced on disk (``rpx.physics.exported``) give bit for bit the results
  of the jitted ones, and a damaged or mismatched file is traced again;
* cache entries are written whole and checked: truncated entries (a process killed
  mid-write) do not crash or mislead a new process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rpx
from rpx.cli.models import CATALOG
from rpx.physics import api

HEAVY = {"ghk_pump", "gradients", "pump_leak"}


def _compiles(fn: object) -> int:
    """Programs compiled (in this process) while calling ``fn()``."""
    before = api.compiled_programs()
    fn()  # type: ignore[operator]
    return api.compiled_programs() - before


@pytest.mark.parametrize(
    "call",
    [
        lambda x: rpx.resting_potential({"K_o": x}, model="ghk"),
        lambda x: rpx.resting_potential({"K_o": x, "P_Na": x * 1e-8}, model="ghk_pump"),
        lambda x: rpx.evaluate({"Na_i": x}, model="mullins_noda"),
        lambda x: rpx.prepare({"K_o": x}, "ghk"),
        lambda x: rpx.gradients({"K_o": x}, model="ghk_pump", wrt=["K_o", "P_Na"], log10=True),
        lambda x: rpx.pump_leak_steady_state({"K_o": x}),
        lambda x: rpx.nernst(x, 140.0, 1, 310.15),
        lambda x: rpx.ghk_current(-70.0, 1e-6, x, 140.0, 1, 310.15),
    ],
    ids=["resting_potential", "ghk_pump", "evaluate", "prepare", "gradients", "pump_leak",
         "nernst", "ghk_current"],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_new_values_of_the_same_shape_do_not_recompile(
    call: object, dtype: type, request: pytest.FixtureRequest
) -> None:
    if dtype is np.float32 and request.node.callspec.id.split("-")[-1] in HEAVY:
        pytest.skip("root-solved programs compile slowly: float64 only")
    first = np.asarray([4.0, 6.0, 8.0], dtype)
    assert _compiles(lambda: call(first)) <= 1  # type: ignore[operator]
    second = np.asarray([5.0, 10.0, 20.0], dtype)
    assert _compiles(lambda: call(second)) == 0  # type: ignore[operator]
    on_device = jnp.asarray(second * 2)
    assert _compiles(lambda: call(on_device)) == 0  # type: ignore[operator]
    # a new shape is one new program
    assert _compiles(lambda: call(np.full((3, 7), 7.0, dtype))) == 1  # type: ignore[operator]


def test_python_numbers_reuse_one_program_and_results_match_arrays() -> None:
    rpx.resting_potential({"K_o": 3.0}, model="mullins_noda")
    assert _compiles(lambda: rpx.resting_potential({"K_o": 7.0}, model="mullins_noda")) == 0
    v = rpx.resting_potential({"K_o": 7.0}, model="mullins_noda")
    w = rpx.resting_potential({"K_o": np.asarray([7.0])}, model="mullins_noda")
    assert isinstance(v, jax.Array) and v.shape == ()
    np.testing.assert_allclose(np.asarray(v), np.asarray(w)[0], rtol=1e-6)


def test_a_failed_check_still_names_the_parameter_and_value() -> None:
    with pytest.raises(ValueError, match=r"parameter P_K=-2\.0 is outside"):
        rpx.evaluate({"P_K": np.asarray([1e-6, -2.0])}, model="ghk")


def test_under_jit_one_fused_check_and_one_error() -> None:
    calls = {"branched": 0, "error_if": 0}
    branched, error_if = eqx.branched_error_if, eqx.error_if

    def count_branched(*a: object, **k: object) -> object:
        calls["branched"] += 1
        return branched(*a, **k)

    def count_error_if(*a: object, **k: object) -> object:
        calls["error_if"] += 1
        return error_if(*a, **k)

    with (
        mock.patch.object(eqx, "branched_error_if", count_branched),
        mock.patch.object(eqx, "error_if", count_error_if),
    ):
        # 16 parameters, one permeability group and two positivity sums: one error
        f = jax.jit(lambda k, p: rpx.resting_potential({"K_o": k, "P_Na": p}, model="ghk_pump"))
        v = f(jnp.asarray([5.0, 10.0]), jnp.asarray(1e-8))
    assert calls == {"branched": 1, "error_if": 0}
    assert np.all(np.isfinite(np.asarray(v)))
    with pytest.raises(Exception, match=r"parameter P_Na is outside"):
        f(jnp.asarray([5.0, 10.0]), jnp.asarray(-1.0)).block_until_ready()


def test_vmap_and_grad_through_the_compiled_edge() -> None:
    g = jax.grad(lambda k: rpx.resting_potential({"K_o": k, "T": 310.15}))(jnp.asarray(10.0))
    d = rpx.gradients({"K_o": 10.0, "T": 310.15}, wrt=["K_o"])["dV_dK_o"]
    np.testing.assert_allclose(np.asarray(g), np.asarray(d), rtol=1e-6)
    v = jax.vmap(lambda k: rpx.resting_potential({"K_o": k}))(jnp.asarray([5.0, 10.0]))
    np.testing.assert_allclose(
        np.asarray(v), np.asarray(rpx.resting_potential({"K_o": np.asarray([5.0, 10.0])}))
    )


# --------------------------------------------------------------- across processes
_COUNT = """
import json, sys
from jax import monitoring
events = {"programs": 0, "cache_hits": 0}
def on_duration(name, secs, **kw):
    if name == "/jax/core/compile/backend_compile_duration":
        events["programs"] += 1
def on_event(name, **kw):
    if name == "/jax/compilation_cache/cache_hits":
        events["cache_hits"] += 1
monitoring.register_event_duration_secs_listener(on_duration)
monitoring.register_event_listener(on_event)
from rpx.cli import main
code = main(sys.argv[1:])
print(json.dumps(events), file=sys.stderr)
sys.exit(code)
"""


def _run_counting(args: list[str], cache: str, timeout: float = 600) -> tuple[str, dict]:
    env = {**os.environ, "RPX_CACHE_DIR": cache, "RPX_CACHE_MIN_COMPILE_S": "0"}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    proc = subprocess.run(
        [sys.executable, "-c", _COUNT, *args], capture_output=True, text=True, env=env,
        timeout=timeout, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, json.loads(proc.stderr.strip().splitlines()[-1])


def test_calc_compiles_one_program_per_model_and_a_second_process_loads_them(
    tmp_path: Path,
) -> None:
    cache = tmp_path / "cache"
    args = ["calc", "--preset", "mammalian_neuron", "--K_o", "10"]
    out1, cold = _run_counting(args, str(cache))
    printed = out1.count("V[")
    assert printed == len(CATALOG)
    # one program per model printed, one for the four Nernst potentials
    assert cold["cache_hits"] == 0 and 1 <= cold["programs"] <= printed + 1
    assert any(cache.iterdir())
    out2, warm = _run_counting(args, str(cache))
    assert out2 == out1
    # the second process compiles nothing: every program comes from the disk cache
    assert warm["programs"] == cold["programs"] and warm["cache_hits"] == warm["programs"]


def test_cache_off_writes_nothing(tmp_path: Path) -> None:
    env = {**os.environ, "RPX_CACHE_DIR": "off", "HOME": str(tmp_path),
           "XDG_CACHE_HOME": str(tmp_path / "xdg"), "RPX_CACHE_MIN_COMPILE_S": "0"}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    code = (
        "import json\n"
        "from jax import monitoring\n"
        "hits = []\n"
        "monitoring.register_event_listener(lambda name, **kw: hits.append(name))\n"
        "import jax, rpx\n"
        "rpx.resting_potential({'K_o': 5.0})\n"
        "print(json.dumps({'dir': jax.config.jax_compilation_cache_dir,"
        " 'hits': hits.count('/jax/compilation_cache/cache_hits')}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=300, check=True)
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"dir": None, "hits": 0}
    assert not (tmp_path / "xdg").exists()


def test_cache_dir_defaults_to_a_per_user_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    from rpx import _config

    monkeypatch.delenv("RPX_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "/somewhere/cache")
    if sys.platform.startswith("linux"):
        assert _config.cache_dir() == Path("/somewhere/cache/rpx/jax")
    monkeypatch.setenv("RPX_CACHE_DIR", "~/rpx-cache")
    assert _config.cache_dir() == Path("~/rpx-cache").expanduser()
    for off in ("off", "OFF", "0", "none", ""):
        monkeypatch.setenv("RPX_CACHE_DIR", off)
        assert _config.cache_dir() is None


def test_import_rpx_does_not_change_numerics_or_import_jax() -> None:
    code = (
        "import sys, rpx; assert 'jax' not in sys.modules, 'jax imported';"
        "assert 'xarray' not in sys.modules and 'zarr' not in sys.modules;"
        "import jax; assert not jax.config.jax_enable_x64;"
        "names = dir(rpx); missing = [n for n in rpx.__all__ if n not in names];"
        "assert not missing, missing; print('ok')"
    )
    env = {**os.environ}
    env.pop("JAX_ENABLE_X64", None)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=300, check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_every_public_name_resolves() -> None:
    for name in rpx.__all__:
        assert getattr(rpx, name) is not None, name
    assert {"resting_potential", "SweepSpec", "fit", "simulate", "nernst"} <= set(dir(rpx))
    assert set(rpx.models()) >= {"ghk", "ghk_pump", "mullins_noda", "pump_leak"}


def test_gpu_benchmark_runs_with_tiny_sizes_on_any_device() -> None:
    script = Path(__file__).resolve().parent.parent / "experiments" / "bench_gpu.py"
    env = {**os.environ, "RPX_BENCH_TINY": "1"}
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          env=env, timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for what in ("ghk V on a device grid", "13 gradients", "ghk_pump steady states",
                 "pump_leak steady states", "fitted cells (20/20 converged)",
                 "sweep ghk to local zarr", "zarr alone"):
        assert what in proc.stdout, what


# ------------------------------------------------- traced programs kept on disk
def _outputs(out: dict) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in out.items()}


@pytest.mark.parametrize("model", ["ghk", "ghk_pump"])
def test_stored_programs_give_bitwise_the_results_of_the_jitted_ones(
    model: str, tmp_path: Path
) -> None:
    from rpx.physics import exported

    params = {"K_o": np.asarray([4.0, 10.0, 40.0]), "P_Na": np.asarray([1e-8, 2e-8, 5e-9])}
    direct = _outputs(rpx.evaluate(params, model=model))
    with exported.use_store(tmp_path):
        first = _outputs(rpx.evaluate(params, model=model))  # traced, exported, stored
        files = sorted(tmp_path.iterdir())
        assert len(files) == 1 and files[0].name.startswith(f"evaluate-{model}-")
    with exported.use_store(tmp_path):  # a fresh start: loaded from the file
        again = _outputs(rpx.evaluate(params, model=model))
        assert sorted(tmp_path.iterdir()) == files
        assert _compiles(lambda: rpx.evaluate({**params, "K_o": params["K_o"] * 2},
                                               model=model)) == 0
    for out in (first, again):
        assert out.keys() == direct.keys()
        for k in direct:
            np.testing.assert_array_equal(out[k], direct[k], strict=True)
    assert exported.store_dir() != tmp_path  # the block's store is gone with the block


def test_a_damaged_or_mismatched_stored_program_is_traced_again(tmp_path: Path) -> None:
    from rpx import _config
    from rpx.physics import exported

    params = {"K_o": np.asarray([4.0, 10.0])}
    want = np.asarray(rpx.resting_potential(params, model="mullins_noda"))
    with exported.use_store(tmp_path):
        rpx.resting_potential(params, model="mullins_noda")
    (path,) = tmp_path.iterdir()
    whole = path.read_bytes()
    value = _config.unseal(whole)
    assert value is not None
    size = int.from_bytes(value[:4], "little")
    other_key = value[4 : 4 + size].replace(b"mullins_noda", b"mullins_nodb")
    damaged = {
        "truncated": whole[: len(whole) // 2],
        "flipped byte": whole[:-10] + bytes([whole[-10] ^ 0xFF]) + whole[-9:],
        "empty": b"",
        "another key": _config.seal(len(other_key).to_bytes(4, "little") + other_key
                                    + value[4 + size :]),
        "not a program": _config.seal(value[: 4 + size] + b"\x00garbage"),
    }
    for what, data in damaged.items():
        path.write_bytes(data)
        with exported.use_store(tmp_path):
            got = np.asarray(rpx.resting_potential(params, model="mullins_noda"))
        np.testing.assert_array_equal(got, want, err_msg=what)
        stored = _config.unseal(path.read_bytes())  # stored again, whole, under its key
        assert stored is not None and stored[: 4 + size] == value[: 4 + size], what


def test_the_stored_key_names_everything_the_program_depends_on() -> None:
    from rpx.physics import exported

    args = (jnp.zeros(3), {"a": jnp.zeros((2, 2), jnp.float32)})
    text = exported.key_text("evaluate-ghk", ("k", 1), args)
    for part in (exported.source_digest(), "jax-", "jaxlib-", "equinox=", "float32",
                 "(2, 2)", str(jax.config.jax_enable_x64), jax.default_backend(), "'k', 1"):
        assert part in text, part
    assert exported.key_text("evaluate-ghk", ("k", 1), (jnp.zeros(4), args[1])) != text
    assert len(exported.source_digest()) == 32


def test_the_cache_file_class_writes_whole_entries_and_drops_damaged_ones(
    tmp_path: Path,
) -> None:
    from jax._src.compilation_cache_interface import CacheInterface

    from rpx import _config

    stale, fresh = tmp_path / ".k0-cache.a1.tmp", tmp_path / ".k2-cache.b2.tmp"
    for tmp in (stale, fresh):
        tmp.write_bytes(b"half an entry")
    os.utime(stale, (1.0, 1.0))
    cache = _config._safe_cache_class(CacheInterface)(tmp_path)
    assert not stale.exists() and fresh.exists()  # another process may be writing `fresh`
    fresh.unlink()
    assert cache.get("k1") is None
    cache.put("k1", b"compiled program")
    assert cache.get("k1") == b"compiled program"
    assert [p.name for p in tmp_path.iterdir()] == ["k1-cache"]  # no temporary file left
    entry = tmp_path / "k1-cache"
    for damaged in (entry.read_bytes()[:-3], b"", b"plain JAX entry without a digest"):
        entry.write_bytes(damaged)
        assert cache.get("k1") is None
        assert not entry.exists()  # removed, so the next put stores a whole entry again
        cache.put("k1", b"compiled program")
        assert cache.get("k1") == b"compiled program"


_TRUNCATE_RUN = """
import json, sys
from jax import monitoring
events = {"programs": 0, "cache_hits": 0}
def on_duration(name, secs, **kw):
    if name == "/jax/core/compile/backend_compile_duration":
        events["programs"] += 1
def on_event(name, **kw):
    if name == "/jax/compilation_cache/cache_hits":
        events["cache_hits"] += 1
monitoring.register_event_duration_secs_listener(on_duration)
monitoring.register_event_listener(on_event)
import numpy as np, rpx
from jax._src import compilation_cache as cc
v = rpx.resting_potential({"K_o": np.asarray([5.0, 10.0])}, model="ghk_pump")
print(json.dumps({"V": np.asarray(v).tolist(), "cache": type(cc._cache).__name__, **events}))
"""


def test_truncated_cache_entries_do_not_crash_a_new_process(tmp_path: Path) -> None:
    env = {**os.environ, "RPX_CACHE_DIR": str(tmp_path), "RPX_CACHE_MIN_COMPILE_S": "0"}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)

    def run() -> tuple[dict, str]:
        proc = subprocess.run([sys.executable, "-c", _TRUNCATE_RUN], capture_output=True,
                              text=True, env=env, timeout=600, check=False)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr

    first, _ = run()
    assert first["cache"] == "SafeFileCache" and first["programs"] >= 1
    (versioned,) = tmp_path.iterdir()
    assert versioned.name.startswith(f"rpx-{rpx.__version__}-jax-{jax.__version__}-")
    entries = [p for sub in ("xla", "exported") for p in (versioned / sub).iterdir()]
    assert {p.parent.name for p in entries} == {"xla", "exported"}
    for p in entries:  # as a process killed in the middle of writing would leave them
        p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 3])
    second, stderr = run()
    assert second["V"] == first["V"]
    assert "Error reading persistent compilation cache" not in stderr
    assert second["cache_hits"] == 0  # every damaged entry was dropped and rebuilt
    third, _ = run()
    assert third["V"] == first["V"] and third["cache_hits"] == third["programs"] >= 1


def test_ctrl_c_ends_calc_at_once_while_its_models_compile(tmp_path: Path) -> None:
    import signal
    import time

    env = {**os.environ, "RPX_CACHE_DIR": str(tmp_path)}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    # Ctrl-C handling even where this runs as a background job (SIGINT ignored at start)
    code = (
        "import runpy, signal, sys\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "sys.argv = ['rpx', 'calc', '--preset', 'mammalian_neuron', '--K_o', '10']\n"
        "runpy.run_module('rpx', run_name='__main__')\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith("preset mammalian_neuron")  # models started
    time.sleep(1.0)  # inside tracing or XLA on the worker threads
    start = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert time.monotonic() - start < 10
    assert "terminate called" not in err and "Traceback" not in err
