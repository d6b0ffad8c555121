"""Physics at the edges: the kelvin guard, zero concentrations, status with NaN values and
gradients, no overflow at status 0, strict specs. Property tests (hypothesis) over each
model's documented domain in float32 and float64, and one regression test per reported case.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference as ref
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import rpx
from rpx.cli import main
from rpx.physics.api import fill_defaults
from rpx.physics.models import get_model
from rpx.physics.params import check_params, check_values
from rpx.sweep.spec import spec_from_dict

KELVIN_HINT = r"T = 37 K is not a plausible temperature: T is in kelvin \(37 °C = 310.15 K\)"


# ------------------------------------------------------------------ kelvin guard
@pytest.mark.parametrize("model", ["ghk", "mullins_noda", "ghk_pump", "pump_leak"])
def test_celsius_temperature_is_refused_with_a_hint_by_every_model(model: str) -> None:
    with pytest.raises(ValueError, match=KELVIN_HINT):
        rpx.prepare({"T": 37.0}, model)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: rpx.nernst(10.0, 100.0, 1, 37.0), KELVIN_HINT),
        (lambda: rpx.nernst(10.0, 100.0, 1, -273.0), r"T=-273\.0 is outside .*kelvin"),
        (lambda: rpx.ghk_current(-70.0, 1e-6, 5.0, 140.0, 1, 20.0), "T is in kelvin"),
        (lambda: rpx.nak_pump_current(-70.0, 10.0, 140.0, 5.0, 1.5, 10.0, 1.5, 0.0), "T=0.0"),
        (lambda: check_values("T", [310.0, 37.0]), KELVIN_HINT),
        (lambda: spec_from_dict({"model": "ghk", "axes": [{"name": "T", "values": [37.0]}]}),
         KELVIN_HINT),
    ],
)
def test_formula_functions_specs_and_tables_refuse_a_non_kelvin_temperature(
    call: object, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]


def test_traced_celsius_temperature_raises_under_jit() -> None:
    f = jax.jit(lambda T: rpx.nernst(10.0, 100.0, 1, T))
    assert np.isfinite(f(jnp.asarray(310.15)))
    with pytest.raises(Exception, match="T is in kelvin"):
        jax.block_until_ready(f(jnp.asarray(37.0)))


def test_calc_with_celsius_exits_2(capsys: pytest.CaptureFixture) -> None:
    assert main(["calc", "--preset", "mammalian_neuron", "--T", "37"]) == 2
    assert "T is in kelvin (37 °C = 310.15 K)" in capsys.readouterr().err


# ------------------------------------------------------------ zero concentrations
SQUID = rpx.preset("squid_axon")


@pytest.mark.parametrize(
    "change",
    [
        {"Na_o": 0.0},  # sodium-free bath
        {"Ca_o": 0.0, "P_Ca": 0.0},  # calcium-free bath
        {"Ca_o": 0.0, "P_Ca": 1e-9},  # calcium-free bath, Ca permeant
        {"Cl_o": 0.0, "Cl_i": 0.0},  # chloride-free solutions
        {"K_i": 0.0},
    ],
    ids=["Na-free", "Ca-free", "Ca-free-permeant", "Cl-free", "K_i-free"],
)
def test_ion_substitution_matches_the_50_digit_reference(change: dict) -> None:
    p = SQUID | change
    got = float(rpx.resting_potential(p))
    # zero of the summed GHK currents in 50-digit arithmetic (mpmath), never a closed form
    want = ref.increasing_root(lambda v: ref.passive_current(v, p), -100.0, 0.0)
    assert got == pytest.approx(float(want), abs=1e-9)
    g = rpx.evaluate(p, model="ghk_pump")
    assert int(g["status"]) == 0 and np.isfinite(float(g["V"]))


def test_sodium_free_squid_is_minus_71_883_mV() -> None:
    assert float(rpx.resting_potential(SQUID | {"Na_o": 0.0})) == pytest.approx(-71.883, abs=1e-3)


def test_zero_numerator_is_refused_naming_the_sum() -> None:
    with pytest.raises(ValueError, match="GHK numerator P_K·K_o"):
        rpx.resting_potential(SQUID | {"K_o": 0.0, "Na_o": 0.0, "Cl_i": 0.0})
    with pytest.raises(ValueError, match="Na_o must be > 0 for this model"):
        rpx.prepare({"Na_o": 0.0}, "pump_leak")


@pytest.mark.parametrize("z", [1, -1, 2])
def test_nernst_with_a_zero_side_is_infinite_with_the_sign_of_z(z: int) -> None:
    assert float(rpx.nernst(0.0, 100.0, z, 310.0)) == -math.inf * np.sign(z)
    assert float(rpx.nernst(10.0, 0.0, z, 310.0)) == math.inf * np.sign(z)


def test_float32_value_that_becomes_zero_is_judged_as_zero() -> None:
    p = {k: np.float32(v) for k, v in SQUID.items()}
    p |= {"K_o": np.float32(1e-50), "P_Na": np.float32(0.0), "P_Cl": np.float32(0.0)}
    with pytest.raises(ValueError, match="GHK numerator"):
        check_params(p, get_model("ghk"))
    with pytest.raises(ValueError, match="GHK numerator"):
        spec_from_dict({
            "model": "ghk", "dtype": "float32", "axes": [{"name": "K_o", "values": [1e-50]}],
            "fixed": {"P_Na": 0.0, "P_Cl": 0.0},
        })  # fmt: skip


# ------------------------------------------------------- overflow and status/gradients
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("model", ["ghk", "mullins_noda"])
def test_underflowing_products_give_finite_values_and_gradients(model: str, dtype: type) -> None:
    """P·c below the smallest float: the closed forms stay finite (issue item 7)."""
    p = SQUID | {"r_pump": 1.5, "P_K": 1e-25, "P_Na": 1e-30, "K_o": 1e-20, "Na_o": 1e-20,
                 "P_Cl": 0.0, "K_i": 1e3, "Na_i": 1e-3}  # fmt: skip
    V, grads = _value_and_grads(model, dtype)(_cast(p, model, dtype))
    assert np.isfinite(V) and all(np.isfinite(g) for g in grads.values())
    V64, _ = _value_and_grads(model, np.float64)(_cast(p, model, np.float64))
    assert float(V) == pytest.approx(float(V64), abs=0.01)


def test_pump_leak_without_na_leak_and_pump_is_finite_with_finite_gradients() -> None:
    V, grads, status = _pump_leak_grads({"P_Na": 0.0, "I_pump_max": 0.0})
    assert status == 0 and np.isfinite(V)
    assert all(np.isfinite(g) for g in grads.values())


def test_pump_leak_without_k_leak_is_nan_with_nan_gradients() -> None:
    V, grads, status = _pump_leak_grads({"P_K": 0.0})
    assert status != 0 and np.isnan(V)
    assert all(np.isnan(g) for g in grads.values()), grads


def test_status_meaning_is_printed_next_to_nan(capsys: pytest.CaptureFixture) -> None:
    assert main(["calc", "--preset", "squid_axon", "--P_K", "0"]) == 0
    out = capsys.readouterr().out
    assert "V[pump_leak] =      nan mV  (status 3: unbounded swelling)" in out
    for name in ("Na_i", "K_i", "Cl_i", "volume"):
        assert name not in out.split("V[pump_leak]")[1].split("\n")[1]
    assert main(["calc", "--preset", "mammalian_neuron"]) == 0
    out = capsys.readouterr().out
    assert "Na_i = 10 mM  K_i = 140 mM" in out and "volume =" in out


def _pump_leak_grads(change: dict) -> tuple[float, dict, int]:
    """V, dV/dθ (forward mode, as sweeps compute them; the jitted function of the
    property tests) and status of pump_leak in float64."""
    m = get_model("pump_leak")
    p = {k: float(v) for k, v in fill_defaults(change, m.params).items()}
    run = _value_and_grads("pump_leak", np.float64)
    V, grads = run(_cast(p, "pump_leak", np.float64))  # type: ignore[operator]
    return V, grads, run.status  # type: ignore[attr-defined]


# ---------------------------------------------------------------- property tests
def _cast(p: dict, model: str, dtype: type) -> dict:
    return {k: jnp.asarray(np.float64(p[k]), dtype) for k in get_model(model).params}


_VG: dict = {}


def _value_and_grads(model: str, dtype: type) -> object:
    """Jitted (V, status) and dV/dθ of a model (compiled once per model and dtype);
    reverse mode, forward mode for pump_leak."""
    key = (model, dtype)
    if key not in _VG:
        fn = get_model(model).fn

        def f(p: dict) -> tuple:
            out = fn(p)
            return out["V"], out.get("status", jnp.zeros((), jnp.int32))

        if model == "pump_leak":
            # forward mode (what sweeps store; compiles faster than reverse mode here)
            def fwd(p: dict) -> tuple:
                def g(q: dict) -> tuple:
                    V, status = f(q)
                    return V, (V, status)

                jac, aux = jax.jacfwd(g, has_aux=True)(p)
                return aux, jac

            vg = jax.jit(fwd)
        else:
            vg = jax.jit(jax.value_and_grad(f, has_aux=True))

        def run(p: dict) -> tuple:
            (V, status), grads = vg(p)
            run.status = int(status)  # type: ignore[attr-defined]
            return float(V), {k: float(g) for k, g in grads.items()}

        _VG[key] = run
    return _VG[key]


def _zero_or_log(lo: float, hi: float, zero_in: int) -> st.SearchStrategy[float]:
    """0 with probability 1/zero_in, else log-uniform over [10^lo, 10^hi]."""
    return st.tuples(st.integers(0, zero_in - 1), st.floats(lo, hi)).map(
        lambda t: 0.0 if t[0] == 0 else 10.0 ** t[1]
    )


ZERO_OR_LOG = _zero_or_log(-30.0, 4.0, 6)
PERM = _zero_or_log(-30.0, 0.0, 4)


@st.composite
def _domain(draw: st.DrawFn, pump: bool = False, leak: bool = False) -> dict[str, float]:
    """A point of the documented domain: concentrations 0 or 1e-30..1e4 mM, permeabilities
    0 or 1e-30..1 cm/s, T 200..400 K (narrower, physiological scales for pump_leak)."""
    if leak:
        p = {k: 10.0 ** draw(st.floats(0.0, 2.7)) for k in ("K_o", "Na_o", "Cl_o")}
        p |= {k: 10.0 ** draw(st.floats(-8.0, -5.0)) for k in ("P_K", "P_Na")}
        p["I_pump_max"] = draw(st.one_of(st.just(0.0), st.floats(0.01, 30.0)))
        p["z_X"] = draw(st.floats(-2.0, -0.2))
        p["T"] = draw(st.floats(270.0, 320.0))
        return p
    p = {f"{ion}_{side}": draw(ZERO_OR_LOG) for ion in ref.VALENCE for side in "oi"}
    p |= {f"P_{ion}": draw(PERM) for ion in ref.VALENCE}
    p["T"] = draw(st.floats(200.0, 400.0))
    p["r_pump"] = draw(st.floats(0.5, 3.0))
    if pump:
        # ghk_pump: a physiological leak scale, so the pump matters; Km log-uniform
        p["P_K"] = 10.0 ** draw(st.floats(-8.0, -5.0))
        p |= {k: 10.0 ** draw(st.floats(-1.0, 3.0)) for k in ("K_o", "K_i", "Na_o", "Na_i")}
        p["I_pump_max"] = 10.0 ** draw(st.floats(-2.0, 2.0))
        p["Km_Na_i"] = 10.0 ** draw(st.floats(0.0, 2.0))
        p["Km_K_o"] = 10.0 ** draw(st.floats(-1.0, 1.0))
    return p


def _in_domain(p: dict, model: str, dtype: type) -> bool:
    try:
        check_params(_cast_np(p, model, dtype), get_model(model))
    except ValueError:
        return False
    return True


def _cast_np(p: dict, model: str, dtype: type) -> dict:
    return {k: np.asarray(np.float64(p[k]), dtype) for k in get_model(model).params}


def _check_point(p: dict, model: str) -> None:
    results = {}
    for dtype in (np.float32, np.float64):
        if not _in_domain(p, model, dtype):
            continue
        run = _value_and_grads(model, dtype)
        V, grads = run(_cast(p, model, dtype))  # type: ignore[operator]
        status = run.status  # type: ignore[attr-defined]
        if status == 0:
            assert np.isfinite(V), (dtype, p)
            assert all(np.isfinite(g) for g in grads.values()), (dtype, grads, p)
        else:
            assert np.isnan(V) and all(np.isnan(g) for g in grads.values()), (dtype, p)
        results[dtype] = (status, V)
    assume(results)
    if len(results) == 2 and results[np.float32][0] == results[np.float64][0] == 0:
        # float32 within 0.01 mV of float64 of the same (float32-rounded) inputs
        rounded = {k: float(np.float32(v)) for k, v in p.items()}
        if _in_domain(rounded, model, np.float64):
            V64, _ = _value_and_grads(model, np.float64)(_cast(rounded, model, np.float64))
            assert results[np.float32][1] == pytest.approx(V64, abs=0.01), p


@settings(max_examples=60, deadline=None)
@given(p=_domain())
def test_ghk_over_its_domain(p: dict) -> None:
    _check_point(p, "ghk")


@settings(max_examples=60, deadline=None)
@given(p=_domain())
def test_mullins_noda_over_its_domain(p: dict) -> None:
    _check_point(p, "mullins_noda")


@settings(max_examples=25, deadline=None)
@given(p=_domain(pump=True))
def test_ghk_pump_over_its_domain(p: dict) -> None:
    _check_point(p, "ghk_pump")


@settings(max_examples=10, deadline=None)
@given(p=_domain(leak=True))
def test_pump_leak_over_its_domain(p: dict) -> None:
    q = fill_defaults(p, get_model("pump_leak").params)
    _check_point(dict(q), "pump_leak")


# -------------------------------------------------------------------- strict specs
BASE = {"model": "ghk", "axes": [{"name": "K_o", "values": [5.0, 10.0]}]}
SOBOL = {"method": "sobol", "n": 8}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (BASE | {"log_gradients": "no"}, "log_gradients must be true or false"),
        ({"model": "ghk", "design": SOBOL | {"ranges": [
            {"name": "P_K", "lo": 0.0, "hi": 1e-6, "log": True}]}}, "a log range needs lo > 0"),
        ({"model": "ghk", "design": {"method": "loguniform", "n": 8, "ranges": [
            {"name": "P_K", "lo": 0.0, "hi": 1e-6}]}}, "a log range needs lo > 0"),
        ({"model": "ghk", "axes": [{"name": "P_K", "values": [0.0, 1e-6]}],
          "fixed": {"P_Na": 0.0, "P_Cl": 0.0}}, "are all zero at some point of the space"),
        ({"model": "ghk", "axes": [{"name": "K_o", "values": ["5", 10.0]}]},
         "values\\[0\\] must be a number, got a string"),
        ({"model": "ghk", "axes": [{"name": "K_o", "linspce": [1, 2, 3]}]},
         "unknown key 'linspce'"),
        ({"model": "ghk", "axes": [{"name": "K_o", "values": [[1.0, 2.0]]}]},
         "must be a number, got a list"),
        ({"model": "ghk", "axes": [{"name": "K_o", "linspace": {"start": 1.0, "num": 3}}]},
         "linspace needs stop"),
        ({"model": "ghk", "axes": [{"name": "K_o", "linspace": [1.0, 3]}]},
         r"takes \[start, stop, num\]"),
        ({"model": "ghk", "axes": {"name": "K_o", "values": [1.0]}}, "axes must be a list"),
        (BASE | {"fixed": [1, 2]}, "fixed must be a table"),
        ({"model": "ghk", "design": SOBOL | {"ranges": [{"lo": 1.0, "hi": 2.0}]}},
         r"design.ranges\[0\] needs name"),
        ({"model": "ghk", "design": SOBOL | {"ranges": "K_o"}}, "design.ranges must be a list"),
        ({"model": "ghk", "design": {"method": "sobol", "n": 8.0, "ranges": [
            {"name": "K_o", "lo": 1.0, "hi": 2.0}]}}, "design.n must be an integer"),
        ({"model": "ghk", "design": SOBOL | {"seed": "x", "ranges": [
            {"name": "K_o", "lo": 1.0, "hi": 2.0}]}}, "design.seed must be an integer"),
        (BASE | {"gradients": "K_o"}, "gradients must be a list"),
        (BASE | {"fixed": {"T": True}}, "fixed T must be a number"),
    ],
)
def test_specs_refuse_with_one_line(spec: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message) as err:
        spec_from_dict(spec)
    assert "\n" not in str(err.value)


def test_zero_in_a_swept_axis_is_fine_where_the_model_stays_finite() -> None:
    spec = spec_from_dict({"model": "ghk", "axes": [{"name": "Na_o", "values": [0.0, 100.0]}]})
    assert spec.shape == (2,)
    # a linear design range from 0: its actual points are > 0, so the space is valid
    design = SOBOL | {"ranges": [{"name": "P_K", "lo": 0.0, "hi": 1e-6}]}
    spec = spec_from_dict({"model": "ghk", "design": design, "fixed": {"P_Na": 0.0, "P_Cl": 0.0}})
    assert spec.size == 8


def test_structural_toml_error_exits_2_and_resume_overwrite_conflict(
    tmp_path: object, capsys: pytest.CaptureFixture
) -> None:
    bad = tmp_path / "bad.toml"  # type: ignore[operator]
    bad.write_text('model = "ghk"\n[axes]\nname = "K_o"\nvalues = [1.0]\n')
    assert main(["sweep", str(bad), "-o", str(tmp_path / "x.zarr")]) == 2  # type: ignore[operator]
    err = capsys.readouterr().err
    assert "axes must be a list of tables" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as exit_:
        main(["sweep", str(bad), "-o", "x.zarr", "--resume", "--overwrite"])
    assert exit_.value.code == 2


@pytest.mark.parametrize(("flag", "side"), [("K_o", "outside"), ("K_i", "inside")])
def test_calc_names_the_side_that_underflowed_to_zero(
    flag: str, side: str, capsys: pytest.CaptureFixture
) -> None:
    """1e-320 mM is 0 in float32 and float64 alike (subnormals flush to 0): the note
    names the side from the value used, and says that it underflowed."""
    assert main(["calc", "--preset", "squid_axon", f"--{flag}", "1e-320"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if "E_K" in ln)
    assert f"no K {side}; {flag}=1e-320 underflowed to 0 in float" in line
    assert ("-inf" if side == "outside" else " inf") in line


@pytest.mark.parametrize("celsius", ["310", "-100", "nan"])
def test_ljp_celsius_out_of_range_names_the_flag_in_celsius(
    celsius: str, capsys: pytest.CaptureFixture
) -> None:
    """A temperature given with --celsius is judged and reported in °C, not as kelvin."""
    args = ["ljp", "--pipette", "KCl=140", "--bath", "NaCl=125", "--celsius", celsius]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "is in kelvin" not in err
    assert f"--celsius {float(celsius):g} is outside its allowed range [-73.15, 126.85] °C" in err
