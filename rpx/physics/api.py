"""Validated entry points: fill defaults from a preset, check the domain, evaluate a model.

Each public entry point runs **one compiled program** per (model, options, input shapes
and dtypes), kept in this process (and, through JAX's persistent compilation cache, on
disk for the next process; see :mod:`rpx._config`):

* the program casts the inputs to one floating dtype, evaluates the model and computes
  one fused domain check (every parameter in its allowed range, every permeability
  group not all zero) as a single integer: the index of the first failed check, or -1;
* on concrete inputs (numpy or JAX arrays, Python numbers) the host reads that one
  integer; only when a check failed does it look at the values again to name the
  parameter and the offending value in a ``ValueError``;
* under the caller's ``jit``, ``vmap`` or ``grad`` the same program is traced into the
  caller's, and the check becomes one ``equinox.branched_error_if`` whose message names
  the parameter and its allowed range.

Calling again with new values of the same shapes and dtypes reuses the compiled
program (tested in ``tests/test_at_hand.py``). With the persistent cache on, the
programs of the built-in models on concrete inputs are also kept traced on disk
(:mod:`rpx.physics.exported`), so that a new process neither traces nor compiles them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Hashable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

from rpx.physics import exported, formulas
from rpx.physics import params as params_rules
from rpx.physics.models import Model, get_model
from rpx.physics.params import check_names, param
from rpx.physics.presets import preset

Values = dict[str, object]


def _float_dtype(values: list[object]) -> np.dtype:
    """Widest floating dtype among array inputs (Python scalars are weak and do not count),
    as JAX will represent it (float64 becomes float32 unless x64 is enabled)."""
    dtypes = []
    for v in values:
        if isinstance(v, (int, float)):
            continue
        dt = v.dtype if hasattr(v, "dtype") else np.asarray(v).dtype
        dtypes.append(dt if jnp.issubdtype(dt, jnp.floating) else jnp.result_type(float))
    dtype = np.result_type(*dtypes) if dtypes else jnp.result_type(float)
    return np.dtype(jax.dtypes.canonicalize_dtype(dtype))


def fill_defaults(
    params: Mapping[str, ArrayLike], names: tuple[str, ...], base: str = "default"
) -> dict[str, ArrayLike]:
    """Values of ``names``: from ``params``, else preset ``base``, else ``Param.default``.

    Every value of ``params`` must be a number or numeric array (the one type check of
    every entry point that takes a parameter mapping; see
    :func:`rpx.physics.params.check_type`).

    Raises:
        TypeError: a value of ``params`` is a bool, string, None, complex or object array.
        ValueError: a name has no value anywhere.
    """
    params_rules.check_types(params)
    defaults = preset(base)
    out: dict[str, ArrayLike] = {}
    for name in names:
        if name in params:
            out[name] = params[name]
        elif name in defaults:
            out[name] = defaults[name]
        elif param(name).default is not None:
            out[name] = param(name).default
        else:
            raise ValueError(f"parameter {name!r} has no default value; give it explicitly")
    return out


# ------------------------------------------------------------------ domain checks
def _range_message(name: str) -> str:
    return f"parameter {name} is outside its allowed range {param(name).domain_str()}"


def _group_message(group: tuple[str, ...]) -> str:
    return f"permeabilities {', '.join(group)} are all zero; at least one must be > 0"


def check_messages(m: Model) -> tuple[str, ...]:
    """The message of each check of :func:`first_failed_check`, in its order."""
    return params_rules.check_messages(m.params, m)


def first_failed_check(m: Model, p: Mapping[str, Array]) -> Array:
    """Index of the first failed domain check of ``p`` (cast values), or -1: one fused pass.

    The rules (each parameter's range and unit guard, the model's ``nonzero`` groups and
    ``positive`` sums) are those of :func:`rpx.physics.params.check_params`. Traceable.
    """
    return params_rules.first_failed_check({k: p[k] for k in m.params}, m)


def all_checks_pass(m: Model, p: Mapping[str, Array]) -> Array:
    """True when ``p`` (cast values) passes every domain check: one fused reduction.

    The check of concrete inputs (:func:`raise_domain_error` names the failure on the
    host); traced inputs use :func:`first_failed_check`, whose index names it in the
    program's error. Traceable.
    """
    return params_rules.all_checks_pass({k: p[k] for k in m.params}, m)


def raise_domain_error(m: Model, p: Mapping[str, ArrayLike]) -> None:
    """Raise the ``ValueError`` naming the first parameter (and value) that fails a check.

    The slow host path, run only once :func:`first_failed_check` reported a failure.
    """
    params_rules.check_params({k: np.asarray(p[k]) for k in m.params}, m)
    raise AssertionError("a domain check failed on the device but not on the host")


def _is_traced(values: Mapping[str, object]) -> bool:
    return any(isinstance(v, jax.core.Tracer) for v in values.values())


def _as_input(v: object, dtype: np.dtype) -> object:
    """Arrays pass unchanged (cast inside the program); Python numbers and lists become
    numpy arrays of ``dtype`` (so new values of the same shape reuse the program)."""
    if isinstance(v, (jax.core.Tracer, jax.Array, np.ndarray, np.generic)):
        return v
    return np.asarray(v, dtype=dtype)


def _cast(values: Mapping[str, Array], dtype: np.dtype) -> dict[str, Array]:
    return {k: jnp.asarray(v).astype(dtype) for k, v in values.items()}


# ---------------------------------------------------------------- program cache
_PROGRAMS: dict[Hashable, Callable] = {}


def program(key: Hashable, build: Callable[[], Callable]) -> Callable:
    """The jitted program stored under ``key``, built by ``build()`` the first time."""
    fn = _PROGRAMS.get(key)
    if fn is None:
        fn = _PROGRAMS[key] = build()
    return fn


def model_key(m: Model) -> Hashable:
    """What identifies a model's program: its name, function, parameters, checks and the
    features its variant leaves out."""
    return (m.name, m.base_fn, m.params, m.nonzero, getattr(m, "positive", ()), m.off)


def stored_model_key(m: Model) -> Hashable | None:
    """:func:`model_key` with the function named by module and qualified name, the same
    in every process; None for a function outside ``rpx.physics`` (a user's model,
    or of another layer, whose source the store's key does not cover: never stored)."""
    fn = m.base_fn
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if not isinstance(module, str) or not module.startswith("rpx.physics.") or "<" in qualname:
        return None
    return (
        m.name, f"{module}.{qualname}", m.params, m.nonzero, getattr(m, "positive", ()), m.off
    )


# Inputs of at most this many points (broadcast size) are compiled with AT_HAND_OPTIONS.
AT_HAND_POINTS = 1024
AT_HAND_OPTIONS = {"xla_backend_optimization_level": 0}


def _points(arrays: Mapping[str, Array]) -> int:
    """Broadcast size of the inputs (1 for scalars only)."""
    shape = jnp.broadcast_shapes(*(jnp.shape(a) for a in arrays.values())) if arrays else ()
    return math.prod(shape)


def _stable(kind: Hashable) -> bool:
    """Whether ``kind``'s repr is the same in every process (strings, numbers, tuples)."""
    if isinstance(kind, tuple):
        return all(_stable(k) for k in kind)
    return kind is None or isinstance(kind, (str, int, float, bool))


def run_checked(
    m: Model,
    kind: Hashable,
    body: Callable[[Model, dict[str, Array]], object],
    params: Mapping[str, ArrayLike],
    base: str,
    wrt: tuple[str, ...] = (),
) -> object:
    """Fill, cast and check ``params`` for model ``m`` and return ``body(model, cast
    values)``, all in one compiled program cached under ``(kind, model_key(model))``.

    ``model`` is ``m`` without the features the filled values show to be inactive
    (:meth:`rpx.Model.specialise`; ``wrt``: the parameters ``body`` differentiates
    with respect to). ``body`` must be a pure function of the model and the cast
    parameter dict that depends on nothing but ``kind``: it is compiled the first time
    the key is seen and reused afterwards.
    """
    check_names(params)
    values = fill_defaults(params, m.params, base)
    m = m.specialise(values, wrt)
    dtype = _float_dtype([params[k] for k in m.params if k in params])

    def run(
        arrays: dict[str, Array], scalars: Array, names: tuple[str, ...], dtype: np.dtype,
        traced: bool = False, plain: bool = False,
    ) -> tuple[object, Array]:
        v = arrays | {k: scalars[i] for i, k in enumerate(names)}
        # inputs stay inputs: constants (preset values under a caller's jit) are not
        # folded into the program, whose checks would otherwise be constant-folded
        # element by element over whole arrays at compile time
        p = _cast(jax.lax.optimization_barrier(v), dtype)
        if traced:  # the index of the failed check goes into the caller's program error
            return body(m, p), first_failed_check(m, p)
        if plain:
            # the closed forms in plain arithmetic only (no choice of form compiled in);
            # one reduction tells the host: 0 a failed check somewhere (as below), -2 a
            # point where the plain forms are not exact (the two-form program answers
            # instead), -1 neither
            with formulas.plain_closed_forms():
                out = body(m, p)
            ok = params_rules.params_ok({k: p[k] for k in m.params}, m)
            worst = jnp.min(jnp.where(ok, jnp.where(m.plain_points(p), 2, 1), 0))
            return out, jnp.asarray([0, -2, -1], jnp.int32)[worst]
        # concrete inputs: one boolean; the host names a failure (raise_domain_error)
        return body(m, p), jnp.where(all_checks_pass(m, p), -1, 0).astype(jnp.int32)

    def build(options: dict | None = None) -> Callable:
        return jax.jit(
            run, static_argnames=("names", "dtype", "traced", "plain"), compiler_options=options
        )

    inputs = {k: _as_input(v, dtype) for k, v in values.items()}
    traced = _is_traced(inputs)
    # Host scalars (Python numbers, 0-d numpy values: the preset defaults) travel as one
    # vector of the working dtype, so that a call moves a handful of buffers, not one per
    # parameter; the other inputs are moved to the device in one call, so that numpy and
    # JAX inputs of the same shapes share one program.
    names = tuple(
        k for k, v in inputs.items() if isinstance(v, (np.ndarray, np.generic)) and v.ndim == 0
    )
    scalars = np.asarray([inputs[k] for k in names], dtype=dtype)
    arrays = {k: v for k, v in inputs.items() if k not in names}
    if traced:
        prog = program((kind, model_key(m)), build)
        out, failed = prog(arrays, scalars, names=names, dtype=dtype, traced=True)
        import equinox as eqx  # only under a caller's transformation (saves its import)

        return eqx.branched_error_if(out, failed >= 0, jnp.maximum(failed, 0), check_messages(m))
    arrays, scalars = jax.device_put((arrays, scalars))
    # A question at hand (a few points) runs in milliseconds however it is compiled:
    # its program is compiled without XLA's backend optimisations, which takes a third
    # less time (rpx calc answers sooner); larger inputs get the optimised program.
    small = _points(arrays) <= AT_HAND_POINTS
    options = AT_HAND_OPTIONS if small else None
    prog = program((kind, model_key(m), small), functools.partial(build, options))
    # Concrete inputs of a model that declares where its closed forms are exact: first
    # the program with the plain forms only (smaller and faster to compile, and its
    # derivatives fuse); the two-form program only where they are not exact somewhere.
    for plain in (True, False) if m.plain_points is not None else (False,):
        stored = _stored_program(m, kind, run, names, dtype, plain, (arrays, scalars), options)
        if stored is not None:
            out, failed = stored(arrays, scalars)
        else:
            out, failed = prog(arrays, scalars, names=names, dtype=dtype, plain=plain)
        failed = int(failed)
        if failed >= 0:
            raise_domain_error(m, _cast(inputs, dtype))
        if failed == -1:
            break
    return out


def _stored_program(
    m: Model, kind: Hashable, run: Callable, names: tuple[str, ...], dtype: np.dtype,
    plain: bool, args: tuple, options: dict | None = None,
) -> Callable | None:
    """The program of ``run`` kept on disk (:mod:`rpx.physics.exported`), or None: the
    store is off, or the model or ``kind`` cannot be named the same in another process."""
    if exported.store_dir() is None:
        return None
    mkey = stored_model_key(m)
    if mkey is None or not _stable(kind):
        return None
    name = "-".join(str(k) for k in (kind if isinstance(kind, tuple) else (kind,))[:1])
    return exported.program(
        f"{name}-{m.name}" + ("-plain" if plain else ""),
        ("run_checked", kind, mkey, names, np.dtype(dtype).str, plain),
        functools.partial(run, names=names, dtype=dtype, plain=plain),
        args,
        options,
    )


# ----------------------------------------------------------------- entry points
def prepare(
    params: Mapping[str, ArrayLike], model: str | Model, base: str = "default"
) -> dict[str, Array]:
    """Complete, cast and validate the parameters a model reads.

    Names not in ``params`` come from ``preset(base)``, else from the parameter
    table's default. All values are cast to one
    floating dtype (the widest of the array inputs, else JAX's default). Concrete values
    outside a parameter's physical domain raise ``ValueError`` naming the parameter and
    its allowed range; traced values (under ``jit``) are checked with one
    ``equinox.branched_error_if``, so the runtime error still names the parameter.

    Returns:
        ``{name: array}`` for every parameter of the model, each with its own shape.

    Raises:
        TypeError: a value is not a number or numeric array (bool, str, None...).
        ValueError: unknown parameter or model name, or a value outside its domain.
    """
    m = get_model(model)
    return run_checked(m, "prepare", lambda _, p: p, params, base)


def evaluate(
    params: Mapping[str, ArrayLike], model: str | Model = "ghk", base: str = "default"
) -> dict[str, Array]:
    """Validate ``params`` (see :func:`prepare`) and return every output of ``model``.

    One compiled program per (model, input shapes and dtypes) fills, casts, checks and
    evaluates; later calls of the same shapes reuse it.

    Returns:
        ``{output: array}`` with the broadcast shape of the inputs (units in
        ``get_model(model).outputs``).

    Raises:
        TypeError: a value is not a number or numeric array (bool, str, None...).
        ValueError: unknown parameter or model name, or a value outside its domain.

    Example:
        >>> out = evaluate({"K_o": 20.0}, model="ghk_pump")
        >>> sorted(out)
        ['I_pump', 'V', 'status']
    """
    m = get_model(model)
    return run_checked(m, "evaluate", _evaluate_body, params, base)


def resting_potential(
    params: Mapping[str, ArrayLike] | None = None, model: str | Model = "ghk"
) -> Array:
    """Resting membrane potential (mV) of ``model`` for parameters that broadcast together.

    Args:
        params: maps parameter names (``K_o``, ``P_Na``, ...; units mM, cm/s, K) to
            arrays. Names not given come from ``rpx.preset("default")``, the squid giant
            axon of Hodgkin & Katz (1949).
        model: ``"ghk"`` (passive GHK, closed form, with Ca2+ too), ``"mullins_noda"``
            (pump-balance steady state) or ``"ghk_pump"`` (GHK currents plus the
            Luo–Rudy Na/K-ATPase, root-solved with implicit gradients), or any registered
            model.

    Returns:
        V = V_in - V_out in mV, with the broadcast shape of the inputs. Where a
        root-solved model finds no root, NaN.

    Raises:
        TypeError: a value is not a number or numeric array (bool, str, None...).
        ValueError: unknown parameter or model name, or a value outside its domain.

    Example:
        >>> import rpx
        >>> v = rpx.resting_potential({"K_o": [5.0, 10.0, 20.0]})
        >>> v.shape
        (3,)
    """
    m = get_model(model)
    return run_checked(m, "resting_potential", _voltage_body, params or {}, "default")


def _evaluate_body(m: Model, p: dict[str, Array]) -> dict[str, Array]:
    return m.fn(p)


def _voltage_body(m: Model, p: dict[str, Array]) -> Array:
    return m.fn(p)["V"]


# --------------------------------------------------------------- formula edges
def pump_leak_steady_state(
    params: Mapping[str, ArrayLike] | None = None, pump: str = "kinetic"
) -> dict[str, Array]:
    """Validated pump–leak steady state (Tosteson & Hoffman 1960; Kay 2017).

    Args:
        params: parameter name -> array (units of :data:`rpx.PARAMS`); arrays broadcast
            together. Missing names come from ``rpx.preset("default")``, else from the
            parameter table's defaults (``z_X``, ``X_content``, ``X_o``, pump).
        pump: ``"kinetic"`` (Luo–Rudy Na/K-ATPase, model ``pump_leak``) or ``"fixed"``
            (fixed pump current ``I_pump_fixed``, model ``pump_leak_fixed``).

    Returns:
        ``V`` (mV), ``Na_i``, ``K_i``, ``Cl_i``, ``X_i`` (mM), ``volume`` (1),
        ``I_pump`` (uA/cm^2) and ``status`` (0 ok, 1 not bracketed, 2 not converged,
        3 unbounded swelling, 4 sodium depleted, 5 out of range of the dtype); floats and
        their gradients are NaN where status != 0.

    Example:
        >>> import rpx
        >>> out = rpx.pump_leak_steady_state(rpx.preset("mammalian_neuron"))
        >>> round(float(out["V"]), 1), int(out["status"])
        (-73.8, 0)
    """
    if pump not in _MODEL_OF_PUMP:
        raise ValueError(f"pump must be one of {', '.join(_MODEL_OF_PUMP)}, not {pump!r}")
    return evaluate(params or {}, model=_MODEL_OF_PUMP[pump])


_MODEL_OF_PUMP = {"kinetic": "pump_leak", "fixed": "pump_leak_fixed"}


def _on_device(x: object) -> object:
    """numpy arrays as device arrays (so they share the program compiled for JAX arrays);
    Python numbers stay weakly typed, JAX arrays and tracers pass unchanged."""
    return jax.device_put(x) if isinstance(x, (np.ndarray, np.generic)) else x


def _compiled(fn: Callable) -> Callable:
    """``fn`` compiled once per input shapes and dtypes, keeping its name and docstring;
    inside a caller's ``jit`` it is traced into the caller's program.

    Arguments named like parameters (``T``...) are checked by the rules of
    :func:`rpx.physics.params.check_params`: concrete ones on the host (``ValueError``),
    traced ones with one ``equinox.branched_error_if``.
    """
    jitted = jax.jit(fn)

    @functools.wraps(fn)
    def edge(*args: object, **kwargs: object) -> object:
        params_rules.check_formula_args(fn, args, kwargs)
        on_device = [_on_device(a) for a in args]
        out = jitted(*on_device, **{k: _on_device(v) for k, v in kwargs.items()})
        return params_rules.guard_formula_result(out, fn, args, kwargs)

    edge._cache_size = jitted._cache_size  # type: ignore[attr-defined]
    return edge


nernst = _compiled(formulas.nernst)
ghk_current = _compiled(formulas.ghk_current)
ghk_voltage = _compiled(formulas.ghk_voltage)
mullins_noda_voltage = _compiled(formulas.mullins_noda_voltage)
nak_pump_current = _compiled(formulas.nak_pump_current)


def compiled_programs() -> int:
    """How many programs (all shapes of all entry points) this process has compiled."""
    jitted = [*_PROGRAMS.values(), nernst, ghk_current, ghk_voltage, mullins_noda_voltage,
              nak_pump_current]
    return sum(f._cache_size() for f in jitted) + exported.compiled_programs()

