"""Global sensitivity analysis: Sobol' indices, Morris elementary effects and DGSM.

Parameters vary over ranges, each ``uniform`` or ``loguniform`` (uniform in ln x); all
other model parameters are fixed (a preset plus overrides). Every method maps points
u ∈ [0, 1]^D of the unit hypercube to parameter values through the sampling coordinate
t (t = x for ``uniform``, t = ln x for ``loguniform``; t = t_lo + u·(t_hi − t_lo)).
Sampling happens on the host (``scipy.stats.qmc``, numpy); the model runs on the device
in fixed-size chunks, one jitted function per problem (padding keeps every chunk the
same shape, so it compiles once); the estimators (:mod:`rpx.analysis.estimators`) run on the
host in float64.

Methods
-------
``sobol``
    Saltelli design: a scrambled Sobol' sequence of dimension 2D gives the matrices A
    and B; AB_i is A with column i from B (BA_i likewise, for second order). Rows are
    generated on the device from the base points, in SALib's order. First-order, total
    and (on request) second-order indices. Cost: N·(D + 2) evaluations, N·(2D + 2)
    with second order.
``morris``
    r random one-at-a-time trajectories through a grid of p levels with step
    Δ = p/(2(p − 1)) (Morris 1991). μ, μ* and σ are in output units per unit of u: a
    step across the whole range (the whole log range for ``loguniform``) is u = 1, as in
    SALib's unscaled Morris. Cost: r·(D + 1) evaluations.
``dgsm``
    Exact forward-mode gradients ∂y/∂t_i (t_i = ln x_i for log-uniform inputs, i.e.
    x_i·∂y/∂x_i) at N scrambled Sobol' points: ``dgsm`` = ν_i·Var(t_i) with
    ν_i = E[(∂y/∂t_i)²], and ``dgsm_bound`` = ν_i·(t_hi − t_lo)²/(π²·Var(y)) ≥ ST_i.
    Total indices do not change under the monotone map x -> ln x, so the bound holds for
    log-uniform inputs too. Cost: N evaluations with D tangents, no finite differences.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from rpx.analysis.estimators import (
    dgsm_estimates,
    morris_estimates,
    morris_trajectories,
    sobol_estimates,
)
from rpx.physics.derivatives import float_outputs, model_value_and_gradients, paren_units
from rpx.physics.models import Model, get_model
from rpx.physics.params import PARAMS, check_params, check_values
from rpx.physics.presets import preset as preset_values

if TYPE_CHECKING:  # xarray and scipy.stats load on first use: `import rpx` stays light
    import xarray as xr

METHODS = ("sobol", "morris", "dgsm")
DISTS = ("uniform", "loguniform")
# Model evaluations per jitted call: large enough to amortise dispatch, small enough
# that a chunk (with D tangents for DGSM) stays within a few hundred MB.
CHUNK_POINTS = 1 << 17


def _number(name: str, x: object) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
        raise ValueError(f"range of {name}: bounds must be numbers, got {x!r}")
    return float(x)


@dataclasses.dataclass(frozen=True)
class ParamRange:
    """The distribution of one varied parameter: ``lo``..``hi`` (parameter units).

    ``dist="uniform"`` draws x uniformly; ``dist="loguniform"`` draws ln x uniformly
    (needs lo > 0). Build from a tuple ``(lo, hi)`` / ``(lo, hi, dist)`` or a mapping
    with keys ``lo``, ``hi``, ``dist`` via :meth:`parse`.
    """

    lo: float
    hi: float
    dist: str = "uniform"

    @classmethod
    def parse(cls, name: str, spec: object) -> ParamRange:
        """A :class:`ParamRange` from a ParamRange, tuple or mapping; errors name ``name``."""
        if isinstance(spec, ParamRange):
            r = spec
        elif isinstance(spec, Mapping):
            unknown = set(spec) - {"lo", "hi", "dist"}
            if unknown or not {"lo", "hi"} <= set(spec):
                raise ValueError(
                    f"range of {name}: expected keys lo, hi and optionally dist, got "
                    f"{', '.join(map(str, spec))}"
                )
            r = cls(
                _number(name, spec["lo"]),
                _number(name, spec["hi"]),
                str(spec.get("dist", "uniform")),
            )
        elif isinstance(spec, Sequence) and not isinstance(spec, str) and len(spec) in (2, 3):
            r = cls(_number(name, spec[0]), _number(name, spec[1]), *(str(s) for s in spec[2:]))
        else:
            raise ValueError(
                f"range of {name}: expected (lo, hi), (lo, hi, dist) or "
                f"{{lo, hi, dist}}, got {spec!r}"
            )
        r.validate(name)
        return r

    def validate(self, name: str) -> None:
        """Raise ``ValueError`` naming ``name`` if the range is empty or outside the domain."""
        if self.dist not in DISTS:
            raise ValueError(f"range of {name}: dist must be one of {', '.join(DISTS)}")
        if not (math.isfinite(self.lo) and math.isfinite(self.hi) and self.lo < self.hi):
            raise ValueError(
                f"range of {name}: need finite lo < hi, got lo={self.lo!r}, hi={self.hi!r}"
            )
        if self.dist == "loguniform" and not self.lo > 0:
            raise ValueError(f"range of {name}: loguniform needs lo > 0, got lo={self.lo!r}")
        if name in PARAMS:
            check_values(name, [self.lo, self.hi])

    @property
    def log(self) -> bool:
        return self.dist == "loguniform"

    @property
    def t_lo(self) -> float:
        """Lower end of the sampling coordinate t (x, or ln x for loguniform)."""
        return math.log(self.lo) if self.log else self.lo

    @property
    def t_width(self) -> float:
        """Length of the range of t (t_hi − t_lo)."""
        return math.log(self.hi / self.lo) if self.log else self.hi - self.lo


@dataclasses.dataclass(frozen=True)
class _Problem:
    model: Model
    names: tuple[str, ...]
    ranges: tuple[ParamRange, ...]
    fixed: dict[str, float]
    outputs: tuple[str, ...]
    dtype: np.dtype
    preset: str

    @property
    def logs(self) -> tuple[bool, ...]:
        return tuple(r.log for r in self.ranges)

    def device_args(self) -> tuple[Array, Array, dict[str, Array]]:
        """``(t_lo, t_width, fixed)`` as device arrays of the problem's dtype."""
        t_lo = jnp.asarray([r.t_lo for r in self.ranges], self.dtype)
        t_width = jnp.asarray([r.t_width for r in self.ranges], self.dtype)
        fixed = {k: jnp.asarray(v, self.dtype) for k, v in self.fixed.items()}
        return t_lo, t_width, fixed

    def key(self, kind: str, *extra: object) -> tuple:
        return (
            kind,
            self.model.fn,
            self.names,
            self.logs,
            tuple(self.fixed),
            self.outputs,
            self.dtype.name,
            *extra,
        )


def _problem(
    model: str | Model,
    ranges: Mapping[str, object],
    fixed: Mapping[str, float] | None,
    preset: str,
    outputs: Sequence[str] | None,
    dtype: str | None,
) -> _Problem:
    m = get_model(model)
    fixed = dict(fixed or {})
    if not ranges:
        raise ValueError("ranges: give at least one parameter to vary")
    for name in (*ranges, *fixed):
        if name not in m.params:
            raise ValueError(
                f"parameter {name!r} is not read by model {m.name!r}; "
                f"it reads {', '.join(m.params)}"
            )
    both = set(ranges) & set(fixed)
    if both:
        raise ValueError(f"parameters {', '.join(sorted(both))} are both fixed and varied")
    parsed = {name: ParamRange.parse(name, spec) for name, spec in ranges.items()}
    base = preset_values(preset)
    values: dict[str, float] = {}
    for name in m.params:
        if name in parsed:
            continue
        if name in fixed:
            v = fixed[name]
        elif name in base:
            v = base[name]
        elif name in PARAMS and PARAMS[name].default is not None:
            v = PARAMS[name].default
        else:
            raise ValueError(f"parameter {name!r} has no value: give it in fixed or ranges")
        if name in PARAMS:
            check_values(name, v)
        values[name] = float(v)
    # The model's domain (permeability groups, positive sums such as the GHK numerator) at
    # the least favourable point: each range at lo (at hi where a linear range starts at 0,
    # whose draws are > 0), by the rules of rpx.physics.params.check_params.
    probe = {k: (r.hi if r.lo == 0 else r.lo) for k, r in parsed.items() if k in PARAMS}
    check_params({k: np.float64(v) for k, v in (values | probe).items() if k in PARAMS}, m)
    allowed = float_outputs(m)
    outs = tuple(allowed if outputs is None else outputs)
    for out in outs:
        if out not in allowed:
            raise ValueError(f"output {out!r}: model {m.name!r} has {', '.join(allowed)}")
    if dtype is None:
        dt = np.dtype(jnp.result_type(float))
    elif dtype in ("float32", "float64"):
        dt = np.dtype(dtype)
        if dt == np.float64 and not jax.config.jax_enable_x64:
            raise ValueError("dtype float64 needs jax_enable_x64 (set JAX_ENABLE_X64=1)")
    else:
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    # Features inactive at every point (strengths fixed at 0) are left out of the program.
    m = m.specialise(values, tuple(parsed))
    return _Problem(m, tuple(parsed), tuple(parsed.values()), values, outs, dt, preset)


# --------------------------------------------------------------------------- device side
_KERNELS: dict[tuple, Callable] = {}


def _params_at(
    pb: _Problem, u: Array, t_lo: Array, t_width: Array, fixed: dict[str, Array]
) -> dict[str, Array]:
    """Parameter dict for unit points ``u`` of shape (n, D)."""
    params = dict(fixed)
    for j, (name, log) in enumerate(zip(pb.names, pb.logs, strict=True)):
        t = t_lo[j] + u[:, j] * t_width[j]
        params[name] = jnp.exp(t) if log else t
    return params


def _jit_cached(key: tuple, kernel: Callable) -> Callable:
    """``jax.jit(kernel)``, built once per ``key`` (so a repeated analysis does not recompile)."""
    if key not in _KERNELS:
        _KERNELS[key] = jax.jit(kernel)
    return _KERNELS[key]


def _values(pb: _Problem, u: Array, *args: object) -> dict[str, Array]:
    out = pb.model.fn(_params_at(pb, u, *args))
    return {k: jnp.broadcast_to(out[k], u.shape[:1]) for k in pb.outputs}


def _sobol_kernel(pb: _Problem, second_order: bool) -> Callable:
    """Jitted ``(base (c, 2D), t_lo, t_width, fixed) -> {out: (c, m)}`` in SALib row order.

    Row order within a base sample: A, AB_1..AB_D, [BA_1..BA_D,] B.
    """
    d = len(pb.names)

    def kernel(base: Array, *args: object) -> dict[str, Array]:
        a, b = base[:, None, :d], base[:, None, d:]
        swap = jnp.eye(d, dtype=bool)[None]
        blocks = [a, jnp.where(swap, b, a)]
        if second_order:
            blocks.append(jnp.where(swap, a, b))
        rows = jnp.concatenate([*blocks, b], axis=1)  # (c, m, D)
        out = _values(pb, rows.reshape(-1, d), *args)
        return {k: v.reshape(rows.shape[:2]) for k, v in out.items()}

    return _jit_cached(pb.key("sobol", second_order), kernel)


def _morris_kernel(pb: _Problem) -> Callable:
    """Jitted ``(trajectories (c, D+1, D), t_lo, t_width, fixed) -> {out: (c, D+1)}``."""

    def kernel(x: Array, *args: object) -> dict[str, Array]:
        out = _values(pb, x.reshape(-1, x.shape[-1]), *args)
        return {k: v.reshape(x.shape[:2]) for k, v in out.items()}

    return _jit_cached(pb.key("morris"), kernel)


def _dgsm_kernel(pb: _Problem) -> Callable:
    """Jitted ``(u (c, D), ...) -> {out: (c,), "d<out>": (c, D)}``: values and ∂y/∂t."""

    def kernel(u: Array, *args: object) -> dict[str, Array]:
        params = _params_at(pb, u, *args)
        values, grads = model_value_and_gradients(pb.model, params, pb.names, False, pb.outputs)
        res = {}
        for out in pb.outputs:
            res[out] = jnp.broadcast_to(values[out], u.shape[:1])
            cols = []
            for name, log in zip(pb.names, pb.logs, strict=True):
                g = grads[f"d{out}_d{name}"]
                cols.append(jnp.broadcast_to(g * params[name] if log else g, u.shape[:1]))
            res[f"d{out}"] = jnp.stack(cols, axis=-1)
        return res

    return _jit_cached(pb.key("dgsm"), kernel)


def _run_chunks(
    kernel: Callable, rows: Iterator[np.ndarray], n: int, chunk: int, pb: _Problem
) -> dict[str, np.ndarray]:
    """Evaluate ``kernel`` on row chunks (padded to ``chunk`` rows: one compilation).

    Device work is dispatched asynchronously; the host draws the next chunk and copies
    the previous result while the device computes.
    """
    args = pb.device_args()
    results: dict[str, np.ndarray] = {}
    pending = None

    def collect(start: int, k: int, out: dict[str, Array]) -> None:
        for name, arr in out.items():
            host = np.asarray(arr)[:k]
            if name not in results:
                results[name] = np.empty((n, *host.shape[1:]), host.dtype)
            results[name][start : start + k] = host

    start = 0
    for block in rows:
        k = block.shape[0]
        if k < chunk:
            pad = np.full((chunk - k, *block.shape[1:]), 0.5)
            block = np.concatenate([block, pad])
        out = kernel(jnp.asarray(block, pb.dtype), *args)
        if pending is not None:
            collect(*pending)
        pending = (start, k, out)
        start += k
    collect(*pending)
    return results


# ------------------------------------------------------------------------ host estimators
# ------------------------------------------------------------------------------ the API
def _is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def _sobol_rows(d: int, n: int, chunk: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    from scipy.stats import qmc

    engine = qmc.Sobol(d=d, scramble=True, rng=rng)
    for start in range(0, n, chunk):
        yield engine.random(min(chunk, n - start))


def _index_meta(method: str, out_units: str, conf_level: float) -> dict[str, tuple[str, str]]:
    """``{index: (units, long_name)}`` of the per-output variables of ``method``."""
    sq = "1" if out_units == "1" else f"{paren_units(out_units)}^2"
    common = {
        "mean": (out_units, "mean of the output over the sampled ranges"),
        "variance": (sq, "variance of the output over the sampled ranges"),
    }
    if method == "sobol":
        meta = {
            "S1": ("1", "first-order Sobol' index"),
            "ST": ("1", "total Sobol' index"),
            "S2": ("1", "second-order Sobol' index"),
        }
    elif method == "morris":
        meta = {
            "mu": (out_units, "Morris mean elementary effect (per unit of range)"),
            "mu_star": (out_units, "Morris mean absolute elementary effect (per unit of range)"),
            "sigma": (out_units, "standard deviation of the Morris elementary effects"),
        }
    else:
        meta = {
            "dgsm": (sq, "derivative-based global sensitivity measure nu_i * Var(t_i)"),
            "dgsm_bound": ("1", "DGSM upper bound on the total Sobol' index"),
        }
    pct = f"{100 * conf_level:g}%"
    for k, (u, ln) in list(meta.items()):
        meta[f"{k}_conf"] = (u, f"half-width of the {pct} bootstrap confidence interval of {ln}")
    return meta | common


def sensitivity(
    model: str | Model,
    ranges: Mapping[str, object],
    method: str = "sobol",
    n: int = 1024,
    *,
    fixed: Mapping[str, float] | None = None,
    preset: str = "default",
    outputs: Sequence[str] | None = None,
    second_order: bool = False,
    num_levels: int = 4,
    n_boot: int = 100,
    conf_level: float = 0.95,
    seed: int = 0,
    dtype: str | None = None,
    chunk_points: int = CHUNK_POINTS,
) -> xr.Dataset:
    """Global sensitivity indices of a model's outputs over parameter ranges.

    Args:
        model: registered model name or :class:`rpx.Model`.
        ranges: ``{name: (lo, hi)}``, ``(lo, hi, "loguniform")``,
            ``{"lo": .., "hi": .., "dist": ..}`` or :class:`ParamRange`, in the
            parameter's units (mM, cm/s, K, ...).
        method: ``"sobol"`` (S1, ST, optional S2), ``"morris"`` (μ, μ*, σ) or
            ``"dgsm"`` (exact-gradient DGSM and its bound on ST). See the module docs.
        n: base samples N (a power of two) for sobol and dgsm; trajectories r for morris.
        fixed: values of the parameters that are not varied; the rest come from
            ``preset``, else the parameter table's default.
        outputs: float outputs to analyse (default: all of the model's).
        second_order: also estimate S2 (sobol only; N·(2D + 2) evaluations).
        num_levels: Morris grid levels p (even, >= 2).
        n_boot: bootstrap resamples for the confidence intervals (0: none).
        conf_level: confidence level of the intervals.
        seed: seeds the Sobol' scrambling, the Morris design and the bootstrap.
        dtype: ``"float32"`` or ``"float64"`` for the model evaluations (default: JAX's).
        chunk_points: model evaluations per jitted call.

    Returns:
        A Dataset with dimension ``param`` (and ``param_2`` for S2) and, for each
        output ``o``, variables ``o_S1``, ``o_ST``... (see :func:`_index_meta`), each with
        ``units`` and ``long_name``; coordinates ``dist``, ``lo``, ``hi``,
        ``param_units``; provenance in ``attrs``.

    Example:
        >>> ds = sensitivity("ghk", {"K_o": (2.0, 20.0, "loguniform"), "P_Na": (1e-8, 2e-8)},
        ...                  n=256, n_boot=0)
        >>> bool(ds.V_ST.sel(param="K_o") > ds.V_ST.sel(param="P_Na"))
        True
    """
    import xarray as xr

    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"n must be an integer >= 2, got {n!r}")
    n = int(n)
    if method in ("sobol", "dgsm") and not _is_power_of_two(n):
        raise ValueError(
            f"n must be a power of two for Sobol' sequences, got {n} "
            f"(try {1 << max(1, round(math.log2(n)))})"
        )
    if second_order and method != "sobol":
        raise ValueError("second_order is only available with method 'sobol'")
    if int(n_boot) != n_boot or n_boot < 0 or n_boot == 1:
        raise ValueError(f"n_boot must be 0 or an integer >= 2, got {n_boot!r}")
    if not 0 < conf_level < 1:
        raise ValueError(f"conf_level must lie in (0, 1), got {conf_level!r}")
    if method == "morris" and (int(num_levels) != num_levels or num_levels < 2 or num_levels % 2):
        raise ValueError(f"num_levels must be an even integer >= 2, got {num_levels!r}")
    if chunk_points < 1:
        raise ValueError(f"chunk_points must be >= 1, got {chunk_points!r}")
    pb = _problem(model, ranges, fixed, preset, outputs, dtype)
    d = len(pb.names)
    if second_order and d < 2:
        raise ValueError("second_order needs at least two varied parameters")
    sample_rng, boot_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))

    per_row = {"sobol": 2 * d + 2 if second_order else d + 2, "morris": d + 1, "dgsm": 1}[method]
    chunk = min(n, max(1, chunk_points // per_row))
    if method != "morris":
        chunk = 1 << int(math.log2(chunk))  # keep Sobol' draws in powers of two
    if method == "sobol":
        kernel = _sobol_kernel(pb, second_order)
        raw = _run_chunks(kernel, _sobol_rows(2 * d, n, chunk, sample_rng), n, chunk, pb)
    elif method == "morris":
        traj = morris_trajectories(n, d, int(num_levels), sample_rng)
        rows = (traj[i : i + chunk] for i in range(0, n, chunk))
        raw = _run_chunks(_morris_kernel(pb), rows, n, chunk, pb)
    else:
        raw = _run_chunks(_dgsm_kernel(pb), _sobol_rows(d, n, chunk, sample_rng), n, chunk, pb)

    t_width = np.asarray([r.t_width for r in pb.ranges])
    data_vars = {}
    for out in pb.outputs:
        y = raw[out]
        bad = int(np.count_nonzero(~np.isfinite(y)))
        if bad:
            warnings.warn(
                f"{bad} of {y.size} evaluations of {out} are not finite "
                "(outside the model's valid region?); its indices are NaN",
                RuntimeWarning,
                stacklevel=2,
            )
        if method == "sobol":
            est = sobol_estimates(y, d, second_order, n_boot, conf_level, boot_rng)
        elif method == "morris":
            est = morris_estimates(traj, y, n_boot, conf_level, boot_rng)
            est |= {
                "mean": float(np.mean(y, dtype=np.float64)),
                "variance": float(np.var(y, dtype=np.float64)),
            }
        else:
            est = dgsm_estimates(y, raw[f"d{out}"], t_width, n_boot, conf_level, boot_rng)
        meta = _index_meta(method, pb.model.outputs[out].units, conf_level)
        for k, v in est.items():
            v = np.asarray(v, np.float64)
            dims = ("param", "param_2")[: v.ndim]
            units, long_name = meta[k]
            data_vars[f"{out}_{k}"] = xr.Variable(
                dims, v, {"units": units, "long_name": f"{long_name} of {out}"}
            )
        data_vars[f"{out}_n_nonfinite"] = xr.Variable(
            (), bad, {"units": "1", "long_name": f"number of non-finite evaluations of {out}"}
        )
    return xr.Dataset(
        data_vars,
        coords=_coords(pb, second_order),
        attrs=_attrs(pb, method, n, d, per_row, second_order, num_levels, n_boot, conf_level, seed),
    )


def _coords(pb: _Problem, second_order: bool) -> dict[str, xr.Variable]:
    import xarray as xr

    # variable-length strings (object arrays): zarr 3 has a spec for them
    names = np.asarray(pb.names, dtype=object)
    units = np.asarray([PARAMS[k].units if k in PARAMS else "1" for k in names], dtype=object)
    coords = {
        "param": xr.Variable("param", names, {"units": "1", "long_name": "varied parameter"}),
        "param_units": xr.Variable("param", units, {"units": "1", "long_name": "parameter units"}),
        "dist": xr.Variable(
            "param",
            np.asarray([r.dist for r in pb.ranges], dtype=object),
            {"units": "1", "long_name": "sampling distribution (uniform or loguniform)"},
        ),
        "lo": xr.Variable(
            "param",
            [r.lo for r in pb.ranges],
            {"units": "mixed: see param_units", "long_name": "lower end of the range"},
        ),
        "hi": xr.Variable(
            "param",
            [r.hi for r in pb.ranges],
            {"units": "mixed: see param_units", "long_name": "upper end of the range"},
        ),
    }
    if second_order:
        coords["param_2"] = xr.Variable(
            "param_2", names, {"units": "1", "long_name": "second varied parameter"}
        )
    return coords


def _attrs(
    pb: _Problem,
    method: str,
    n: int,
    d: int,
    per_row: int,
    second_order: bool,
    num_levels: int,
    n_boot: int,
    conf_level: float,
    seed: int,
) -> dict[str, object]:
    from rpx import __version__

    attrs = {
        "title": f"rpx global sensitivity analysis ({method}) of model {pb.model.name}",
        "method": method,
        "model": pb.model.name,
        "preset": pb.preset,
        "fixed": json.dumps(pb.fixed),
        "ranges": json.dumps(
            {k: dataclasses.asdict(r) for k, r in zip(pb.names, pb.ranges, strict=True)}
        ),
        "outputs": list(pb.outputs),
        "n": n,
        "n_evaluations": n * per_row,
        "n_boot": n_boot,
        "conf_level": conf_level,
        "seed": seed,
        "dtype": pb.dtype.name,
        "rpx_version": __version__,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    if method == "sobol":
        attrs["second_order"] = int(second_order)
    if method == "morris":
        attrs["num_levels"] = num_levels
        attrs["delta"] = num_levels / (2 * (num_levels - 1))
    return attrs


def summary_table(ds: xr.Dataset, output: str | None = None) -> str:
    """A text table of the per-parameter indices of one output (default: the first)."""
    out = output or ds.attrs["outputs"][0]
    cols = [v for v in ds.data_vars if v.startswith(f"{out}_") and ds[v].dims == ("param",)]
    df = ds[cols].to_dataframe()[cols]
    df.columns = [c[len(out) + 1 :] for c in cols]
    header = (
        f"{ds.attrs['method']} indices of {out} ({ds.attrs['model']}, "
        f"n={ds.attrs['n']}, {ds.attrs['n_evaluations']} evaluations)"
    )
    return header + "\n" + df.to_string(float_format=lambda v: f"{v:.4g}")
