"""Points per second of the rpx physics core against a vectorised numpy reference.

For each model (``ghk``, ``mullins_noda``, ``ghk_pump``) and grid size it times, in float32:

1. ``numpy``: the same physics written the way a careful numpy user would (vectorised
   float32 arrays, processed in cache-sized chunks; for ``ghk_pump`` a vectorised,
   bracketed Newton solve with the same iteration logic as ``rpx.physics.roots``);
2. ``rpx arrays``: the jitted model function on the same flat arrays, already on device;
3. ``rpx grid``: the jitted model function on a grid built inside ``jit`` by broadcasting
   the 1-D axis vectors (no host meshgrid, no full-size input arrays);
4. ``rpx V+grad``: value and the derivative of V with respect to every parameter of the
   model at every grid point, by forward mode (one JVP per parameter, vmapped), on the
   generated grid.

Three parameters are swept on log axes around the preset ``default``; all others are
scalars from that preset (or the parameter table's default). Every rpx result is checked
against the numpy reference (max |ΔV| in mV) and the gradients against float64 central
differences of the numpy reference at a random subsample of points, so that the timings
cannot silently compare different computations.

Usage::

    .venv/bin/python experiments/bench_core.py              # 1e6 and 1e7 points
    .venv/bin/python experiments/bench_core.py --max-points 1e8
    .venv/bin/python experiments/bench_core.py --quick      # small sanity run
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))
sys.path.append(str(_HERE.parent))  # run from a source tree without installing rpx

from _bench_util import best_time, format_table, host_info, rate  # noqa: E402

from rpx.physics.api import fill_defaults  # noqa: E402
from rpx.physics.constants import MV_PER_V, F, R  # noqa: E402
from rpx.physics.models import get_model  # noqa: E402
from rpx.physics.params import PARAMS, VALENCE  # noqa: E402

MODELS = ("ghk", "mullins_noda", "ghk_pump")
SIZES = (1e6, 1e7, 1e8)
# Swept parameters: (name, lowest, highest value as a factor of the preset value), log axes.
SWEEP = (("K_o", 0.1, 10.0), ("P_Na", 0.1, 10.0), ("Na_i", 0.1, 1.5))
# Iteration logic of rpx.physics.models.ghk_pump / rpx.physics.roots.increasing_root,
# mirrored below.
PUMP_STEP_MV = 50.0
MAX_EXPAND = 16
MAX_ITER = 60
U_SMALL = 1e-3  # |u| below which the GHK kernel uses its Taylor series (as rpx.physics.formulas)

NpParams = Mapping[str, np.ndarray]


# ------------------------------------------------------------------ numpy reference
def np_thermal_voltage(T: np.ndarray) -> np.ndarray:
    """RT/F in mV."""
    return (R * MV_PER_V / F) * T


def np_ghk(p: NpParams) -> np.ndarray:
    """Passive GHK voltage (mV) of K, Na, Cl, Ca.

    The positive root of a·x² + b·x − c in x = e^(−FV/RT).
    """
    A_out = p["P_K"] * p["K_o"] + p["P_Na"] * p["Na_o"] + p["P_Cl"] * p["Cl_i"]
    A_in = p["P_K"] * p["K_i"] + p["P_Na"] * p["Na_i"] + p["P_Cl"] * p["Cl_o"]
    a = A_out + 4.0 * p["P_Ca"] * p["Ca_o"]
    c = A_in + 4.0 * p["P_Ca"] * p["Ca_i"]
    b = A_out - A_in
    s = np.sqrt(b * b + 4.0 * a * c)
    x = np.where(b >= 0, 2.0 * c / (np.abs(b) + s), (np.abs(b) + s) / (2.0 * a))
    return -np_thermal_voltage(p["T"]) * np.log(x)


def np_mullins_noda(p: NpParams) -> np.ndarray:
    """Mullins–Noda steady state (mV)."""
    r = p["r_pump"]
    num = r * p["P_K"] * p["K_o"] + p["P_Na"] * p["Na_o"]
    den = r * p["P_K"] * p["K_i"] + p["P_Na"] * p["Na_i"]
    return np_thermal_voltage(p["T"]) * np.log(num / den)


def _np_ghk_kernels(u: np.ndarray) -> tuple[np.ndarray, ...]:
    """g(u), g(−u), g'(u), g'(−u) for g(u) = u/(1 − e^(−u)), without overflow or 0/0."""
    small = np.abs(u) < U_SMALL
    a = np.where(small, 1.0, np.abs(u))
    e = np.exp(-a)
    d = -np.expm1(-a)  # 1 − e^(−|u|)
    g_pos = a / d  # g(|u|)
    g_neg = g_pos * e  # g(−|u|)
    dg_pos = (d - a * e) / (d * d)  # g'(|u|)
    dg_neg = 1.0 - dg_pos  # g'(−|u|), since g(u) − g(−u) = u
    pos = u >= 0
    t0, t1 = 1.0 + u * u / 12.0, u / 2.0
    g_u = np.where(small, t0 + t1, np.where(pos, g_pos, g_neg))
    g_mu = np.where(small, t0 - t1, np.where(pos, g_neg, g_pos))
    dg_u = np.where(small, 0.5 + u / 6.0, np.where(pos, dg_pos, dg_neg))
    dg_mu = np.where(small, 0.5 - u / 6.0, np.where(pos, dg_neg, dg_pos))
    return g_u, g_mu, dg_u, dg_mu


def _np_total_current(V: np.ndarray, p: NpParams, slope: bool) -> tuple[np.ndarray, np.ndarray]:
    """Total current (uA/cm², GHK K, Na, Cl, Ca plus Luo–Rudy pump) and, if ``slope``, dI/dV."""
    vt = np_thermal_voltage(p["T"])
    current = np.zeros_like(V)
    didv = np.zeros_like(V)
    for ion, z in VALENCE.items():
        c_in, c_out, scale = p[f"{ion}_i"], p[f"{ion}_o"], p[f"P_{ion}"] * (z * F)
        g_u, g_mu, dg_u, dg_mu = _np_ghk_kernels((z * V) / vt)
        current += scale * (c_in * g_u - c_out * g_mu)
        if slope:
            didv += (scale * z / vt) * (c_in * dg_u + c_out * dg_mu)
    w = V / vt
    x = p["Na_o"] / 67.3
    sigma = (np.exp(x) - 1.0) / 7.0
    with np.errstate(over="ignore"):  # e^(−w) → inf far below the root: f_NaK → 0, as it should
        e1 = np.exp(-0.1 * w)
        e2 = (0.0365 * sigma) * np.exp(-w)
    f_nak = 1.0 / (1.0 + 0.1245 * e1 + e2)
    na_term = 1.0 / (1.0 + (p["Km_Na_i"] / p["Na_i"]) ** 1.5)
    k_term = p["K_o"] / (p["K_o"] + p["Km_K_o"])
    amp = p["I_pump_max"] * na_term * k_term
    current += amp * f_nak
    if slope:
        didv += (amp / vt) * (f_nak * f_nak) * (0.01245 * e1 + e2)
    return current, didv


def np_ghk_pump(p: NpParams) -> np.ndarray:
    """Zero of the total current (mV) by the bracketed Newton of rpx.physics.roots, in numpy."""
    hi = np.broadcast_to(np_ghk(p), np.broadcast_shapes(*(np.shape(v) for v in p.values())))
    hi = np.ascontiguousarray(hi)
    tol = 64 * np.finfo(hi.dtype).eps * (1.0 + np.abs(hi))
    lo = hi - PUMP_STEP_MV
    f_lo = _np_total_current(lo, p, slope=False)[0]
    k = 0
    while k < MAX_EXPAND and np.any(f_lo > 0):
        up = f_lo > 0
        lo = np.where(up, hi - PUMP_STEP_MV * 2.0 ** (k + 1), lo)
        f_lo = np.where(up, _np_total_current(lo, p, slope=False)[0], f_lo)
        k += 1
    bracketed = f_lo <= 0
    x, hi_, dx = hi, hi, np.full_like(hi, np.inf)
    it = 0
    while it < MAX_ITER and np.any(np.abs(dx) > tol):
        fx, dfx = _np_total_current(x, p, slope=True)
        lo = np.where(fx <= 0, x, lo)
        hi_ = np.where(fx >= 0, x, hi_)
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = x - fx / dfx
        inside = (newton > lo) & (newton < hi_) & np.isfinite(newton)
        x_new = np.where(inside, newton, 0.5 * (lo + hi_))
        x_new = np.where(fx == 0, x, x_new)
        dx = x_new - x
        x = x_new
        it += 1
    ok = bracketed & (np.abs(dx) <= tol)
    return np.where(ok, x, np.nan)


NUMPY_MODELS: dict[str, Callable[[NpParams], np.ndarray]] = {
    "ghk": np_ghk,
    "mullins_noda": np_mullins_noda,
    "ghk_pump": np_ghk_pump,
}


def np_chunked(
    fn: Callable[[NpParams], np.ndarray], p: NpParams, n: int, chunk: int
) -> np.ndarray:
    """Apply ``fn`` to consecutive slices of the length-``n`` arrays in ``p`` (scalars shared)."""
    if chunk <= 0 or chunk >= n:
        return fn(p)
    arrays = {k: v for k, v in p.items() if np.ndim(v)}
    scalars = {k: v for k, v in p.items() if not np.ndim(v)}
    out = np.empty(n, dtype=next(iter(arrays.values())).dtype)
    for start in range(0, n, chunk):
        sl = slice(start, start + chunk)
        out[sl] = fn({**scalars, **{k: v[sl] for k, v in arrays.items()}})
    return out


# --------------------------------------------------------------------------- the rpx side
def _grid(axes: tuple[jax.Array, ...]) -> dict[str, jax.Array]:
    """Reshape the 1-D axis vectors (in ``SWEEP`` order) to broadcast to the full grid."""
    n = len(axes)
    return {
        name: jnp.reshape(v, tuple(-1 if i == j else 1 for j in range(n)))
        for i, ((name, _, _), v) in enumerate(zip(SWEEP, axes, strict=True))
    }


def rpx_kernels(model_name: str) -> dict[str, Callable]:
    """Jitted rpx functions: on flat arrays, on a generated grid, value and forward gradient."""
    fn = get_model(model_name).fn

    @jax.jit
    def on_arrays(p: dict[str, jax.Array]) -> jax.Array:
        return fn(p)["V"]

    def on_grid_(axes: tuple[jax.Array, ...], fixed: dict[str, jax.Array]) -> jax.Array:
        return fn({**fixed, **_grid(axes)})["V"]

    @jax.jit
    def value_and_grad(
        axes: tuple[jax.Array, ...], fixed: dict[str, jax.Array]
    ) -> tuple[jax.Array, jax.Array]:
        # Forward mode: one tangent per parameter (ones on that parameter, zeros elsewhere),
        # vmapped, gives dV/dθ at every grid point for every parameter θ of the model.
        primals = (axes, fixed)
        leaves, treedef = jax.tree.flatten(primals)
        basis = [
            jax.tree.unflatten(
                treedef, [jnp.full_like(x, float(i == j)) for j, x in enumerate(leaves)]
            )
            for i in range(len(leaves))
        ]
        basis = jax.tree.map(lambda *xs: jnp.stack(xs), *basis)
        value, grads = jax.vmap(
            lambda t: jax.jvp(on_grid_, primals, t), out_axes=(None, 0)
        )(basis)
        return value, grads

    return {"arrays": on_arrays, "grid": jax.jit(on_grid_), "grad": value_and_grad}


def grad_names(fixed: Mapping[str, object]) -> list[str]:
    """Parameter names in the order of the leading axis of the gradients of ``value_and_grad``."""
    return jax.tree.leaves((tuple(name for name, _, _ in SWEEP), {k: k for k in fixed}))


# ------------------------------------------------------------------------------ running
def grid_shape(points: float) -> tuple[int, int, int]:
    """Three axis lengths whose product is close to ``points``."""
    n = max(2, round(points ** (1 / 3)))
    return n, n, max(2, round(points / (n * n)))


def axes_for(base: Mapping[str, float], shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Log-spaced float32 axis vectors of the swept parameters around their preset values."""
    return {
        name: np.geomspace(lo * base[name], hi * base[name], n).astype(np.float32)
        for (name, lo, hi), n in zip(SWEEP, shape, strict=True)
    }


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """max |a − b|, treating NaN == NaN as equal and NaN vs number as infinite."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    if np.any(nan_a != nan_b):
        return math.inf
    both = ~nan_a
    return float(np.max(np.abs(a[both] - b[both]), initial=0.0))


def gradient_error(
    model_name: str,
    base: Mapping[str, float],
    axes: Mapping[str, np.ndarray],
    grads: np.ndarray,
    names: list[str],
    samples: int,
    rng: np.random.Generator,
) -> float:
    """Max over parameters of max|dV/dθ (rpx) − central difference (numpy, float64)| / max|·|.

    Uses the float64 numpy reference at ``samples`` random grid points, relative step
    1e-6 per parameter (a parameter that is 0, e.g. P_Ca, gets a forward difference with
    1e-6 times the largest preset value of a parameter with the same units); the error of
    each parameter is scaled by the largest magnitude of its derivative over the sample
    (an identically zero derivative counts as no error).
    """
    ref = NUMPY_MODELS[model_name]
    shape = tuple(len(v) for v in axes.values())
    idx = rng.integers(0, np.prod(shape), size=samples)
    sub = np.unravel_index(idx, shape)
    p64: dict[str, np.ndarray] = {k: np.float64(v) for k, v in base.items()}
    for (k, v), i in zip(axes.items(), sub, strict=True):
        p64[k] = v.astype(np.float64)[i]
    worst = 0.0
    for j, name in enumerate(names):
        up, down = dict(p64), dict(p64)
        if np.all(p64[name] != 0):
            h = 1e-6 * np.abs(p64[name])
            up[name], down[name] = p64[name] + h, p64[name] - h
            fd = (ref(up) - ref(down)) / (2 * h)
        else:
            units = PARAMS[name].units
            h = 1e-6 * max(abs(v) for k, v in base.items() if PARAMS[k].units == units)
            up[name] = p64[name] + h
            fd = (ref(up) - ref(p64)) / h
        ad = grads[(j, *sub)].astype(np.float64)
        scale = max(float(np.max(np.abs(fd))), float(np.max(np.abs(ad))))
        if scale > 0:
            worst = max(worst, float(np.max(np.abs(ad - fd))) / scale)
    return worst


def bench_one(
    model_name: str, points: float, args: argparse.Namespace, rng: np.random.Generator
) -> dict[str, object]:
    """Time the four variants for one model and size; check that they agree."""
    model = get_model(model_name)
    base = {k: float(v) for k, v in fill_defaults({}, model.params).items()}
    shape = grid_shape(points)
    n = math.prod(shape)
    axes = axes_for(base, shape)
    fixed = {k: np.float32(v) for k, v in base.items() if k not in axes}

    # (1) numpy on host meshgrid arrays (float32, contiguous).
    mesh = np.meshgrid(*axes.values(), indexing="ij")
    flat = {k: np.ascontiguousarray(m.ravel()) for k, m in zip(axes, mesh, strict=True)}
    del mesh
    p_np = {**fixed, **flat}
    ref = NUMPY_MODELS[model_name]
    t_np, r_np, v_np = best_time(
        lambda: np_chunked(ref, p_np, n, args.numpy_chunk),
        repeats=args.repeats,
        budget_s=args.budget,
        first_counts=True,
    )

    kernels = rpx_kernels(model_name)
    # (2) rpx on the same flat arrays, already on device.
    p_dev = jax.device_put({**fixed, **flat})
    t_arr, r_arr, v_arr = best_time(
        lambda: kernels["arrays"](p_dev), repeats=args.repeats, budget_s=args.budget
    )
    v_arr = np.asarray(v_arr)
    p_dev = None  # free the device copy before the next variant
    # (3) rpx on a grid generated inside jit from the 1-D axis vectors.
    axes_dev = jax.device_put(tuple(axes.values()))
    fixed_dev = jax.device_put(fixed)
    t_grid, r_grid, v_grid = best_time(
        lambda: kernels["grid"](axes_dev, fixed_dev), repeats=args.repeats, budget_s=args.budget
    )
    v_grid = np.asarray(v_grid).ravel()
    row: dict[str, object] = {
        "model": model_name,
        "points": n,
        "numpy": t_np,
        "arrays": t_arr,
        "grid": t_grid,
        "dV_np_arr": max_abs_diff(v_np, v_arr),
        "dV_arr_grid": max_abs_diff(v_arr, v_grid),
        "nan": int(np.count_nonzero(np.isnan(v_arr))),
        "runs": (r_np, r_arr, r_grid),
    }
    del v_arr
    # (4) value and forward-mode gradient w.r.t. every parameter, on the generated grid.
    names = grad_names(fixed)
    grad_bytes = 4 * n * (len(names) + 1)
    if grad_bytes > args.max_grad_gb * 2**30:
        row["grad"] = None
    else:
        t_grad, r_grad, (v_g, g) = best_time(
            lambda: kernels["grad"](axes_dev, fixed_dev), repeats=args.repeats,
            budget_s=args.budget,
        )
        row["grad"] = t_grad
        row["runs"] = (*row["runs"], r_grad)
        row["dV_grad"] = max_abs_diff(v_grid, np.asarray(v_g))
        g = np.asarray(g).reshape(len(names), *shape)
        row["grad_err"] = gradient_error(model_name, base, axes, g, names, args.fd_samples, rng)
        row["n_grad"] = len(names)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-points", type=float, default=1e7,
                        help="largest grid size of 1e6, 1e7, 1e8 to run (default 1e7)")
    parser.add_argument("--quick", action="store_true", help="small sanity run (2e4 points)")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per variant")
    parser.add_argument("--budget", type=float, default=4.0,
                        help="stop repeating a variant after this many seconds of timed calls")
    parser.add_argument("--numpy-chunk", type=int, default=1 << 16,
                        help="points per numpy chunk (0: whole arrays at once)")
    parser.add_argument("--fd-samples", type=int, default=200,
                        help="grid points at which gradients are checked by central differences")
    parser.add_argument("--max-grad-gb", type=float, default=4.0,
                        help="skip value+grad when its output would exceed this many GiB")
    args = parser.parse_args(argv)
    sizes = [2e4] if args.quick else [s for s in SIZES if s <= args.max_points]
    if args.quick:
        args.repeats = 1

    print("rpx core benchmark, dtype float32")
    for line in host_info():
        print(line)
    print(f"command: {' '.join(sys.argv)}")
    print(f"swept (log axes, factors of the preset value): {SWEEP}; numpy chunk "
          f"{args.numpy_chunk} points; best of up to {args.repeats} timed calls "
          f"(at most {args.budget} s of repeats per variant)\n")
    rng = np.random.default_rng(0)
    rows = []
    for name in args.models:
        for s in sizes:
            r = bench_one(name, s, args, rng)
            rows.append(r)
            grad = r["grad"]
            print(f"  {name} {r['points']:.2e} points: numpy {r['numpy']:.3f} s, "
                  f"arrays {r['arrays']:.3f} s, grid {r['grid']:.3f} s, "
                  f"grad {'skipped' if grad is None else f'{grad:.3f} s'}; runs {r['runs']}",
                  flush=True)

    headers = ["model", "points", "numpy pts/s", "rpx arrays pts/s", "rpx grid pts/s",
               "rpx V+grad pts/s", "arrays/numpy", "grid/numpy", "max|ΔV| mV np vs rpx",
               "max|ΔV| mV arrays vs grid", "grad rel. err", "NaN"]
    table = []
    for r in rows:
        n = r["points"]
        grad = r["grad"]
        table.append([
            r["model"], f"{n:.2e}", rate(n, r["numpy"]), rate(n, r["arrays"]),
            rate(n, r["grid"]),
            "skipped" if grad is None else f"{rate(n, grad)} ({r['n_grad']} params)",
            f"{r['numpy'] / r['arrays']:.2f}x", f"{r['numpy'] / r['grid']:.2f}x",
            f"{r['dV_np_arr']:.1e}", f"{r['dV_arr_grid']:.1e}",
            "-" if grad is None else f"{r['grad_err']:.1e}", str(r["nan"]),
        ])
    print()
    print(format_table(headers, table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
