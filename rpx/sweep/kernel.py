"""The chunk kernel: one jitted function evaluates a whole chunk of a sweep on the device.

Coordinates are generated inside the jitted function from the (padded) axis vectors and
the chunk's offsets, so there is no host-side meshgrid and no per-point Python. Axis
vectors are padded to a whole number of chunks, so every chunk, edge chunks included,
has the same shape and the kernel compiles once per sweep.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array, lax

from rpx.physics import formulas as phys
from rpx.physics.derivatives import model_value_and_gradients
from rpx.physics.models import Model, get_model
from rpx.physics.params import VALENCE
from rpx.sweep.spec import SweepSpec

ChunkFn = Callable[..., dict[str, Array]]


def derived_output(name: str, p: dict[str, Array], V: Array) -> Array:
    """A derived output: ``E_<ion>`` (Nernst, mV) or ``I_<ion>`` (GHK current at V)."""
    kind, ion = name.split("_", 1)
    z = VALENCE[ion]
    if kind == "E":
        return phys.nernst(p[f"{ion}_o"], p[f"{ion}_i"], z, p["T"])
    return phys.ghk_current(V, p[f"P_{ion}"], p[f"{ion}_o"], p[f"{ion}_i"], z, p["T"])


def gradient_names(spec: SweepSpec) -> list[tuple[str, str, str, bool]]:
    """``(variable, output, parameter, per_decade)`` of every stored derivative."""
    m = get_model(spec.model)
    outs = [o for o in spec.model_outputs() if o in m.outputs and not m.outputs[o].integer]
    names = []
    for out in outs:
        for p in spec.gradients:
            names.append((f"d{out}_d{p}", out, p, False))
            if spec.log_gradients:
                names.append((f"d{out}_dlog10_{p}", out, p, True))
    return names


def evaluate_point_set(spec: SweepSpec, params: dict[str, Array]) -> dict[str, Array]:
    """Every stored variable of ``spec`` for broadcastable ``params`` (no validation).

    Derivatives come from :func:`rpx.physics.derivatives.model_value_and_gradients` (forward
    mode, the model evaluated once), the same code as :func:`rpx.gradients`.
    """
    m: Model = get_model(spec.model)
    grads = gradient_names(spec)
    if grads:
        outs = list(dict.fromkeys(o for _, o, _, _ in grads))
        wrt = list(dict.fromkeys(p for _, _, p, _ in grads))
        outputs, derivatives = model_value_and_gradients(
            m, params, wrt, spec.log_gradients, outs
        )
    else:
        outputs, derivatives = m.fn(params), {}
    result = {
        name: outputs[name] if name in outputs else derived_output(name, params, outputs["V"])
        for name in spec.model_outputs()
    }
    result.update({var: derivatives[var] for var, _, _, _ in grads})
    return result


@functools.lru_cache(maxsize=16)
def make_chunk_fn(spec: SweepSpec) -> ChunkFn:
    """Jitted :func:`chunk_function` of ``spec``, cached per spec (specs are frozen and
    hashable), so rerunning or resuming a sweep in the same process does not recompile."""
    return jax.jit(chunk_function(spec))


def chunk_function(spec: SweepSpec) -> ChunkFn:
    """Traceable ``f(axes, table, fixed, offsets) -> {var: array of chunk_shape}``.

    Reductions call it inside their own jitted function; sweeps jit it alone.

    Args of the returned function:
        axes: tuple of padded 1-D axis vectors (one per grid axis).
        table: padded design table (n_padded, n_ranges) or None.
        fixed: dict of 0-d arrays for every non-swept parameter read.
        offsets: int32 vector, the chunk's start index along each dimension.
    """
    chunk = spec.chunk_shape
    nd = len(chunk)
    axis_names = [a.name for a in spec.axes]
    design_names = [r.name for r in spec.design.ranges] if spec.design else []

    def along(dim: int, v: Array) -> Array:
        shape = [1] * nd
        shape[dim] = chunk[dim]
        return v.reshape(shape)

    def chunk_fn(
        axes: tuple[Array, ...], table: Array | None, fixed: dict[str, Array], offsets: Array
    ) -> dict[str, Array]:
        params = dict(fixed)
        for i, (name, vec) in enumerate(zip(axis_names, axes, strict=True)):
            params[name] = along(i, lax.dynamic_slice(vec, (offsets[i],), (chunk[i],)))
        if table is not None:
            start = (offsets[-1], jnp.zeros_like(offsets[-1]))
            rows = lax.dynamic_slice(table, start, (chunk[-1], table.shape[1]))
            for j, name in enumerate(design_names):
                params[name] = along(nd - 1, rows[:, j])
        out = evaluate_point_set(spec, params)
        return {k: jnp.broadcast_to(v, chunk) for k, v in out.items()}

    return chunk_fn


def device_inputs(spec: SweepSpec) -> tuple[tuple[Array, ...], Array | None, dict[str, Array]]:
    """Axis vectors and design table padded to whole chunks, and fixed values, on device."""
    dtype = jnp.dtype(spec.dtype)
    if dtype == jnp.float64 and not jax.config.jax_enable_x64:
        raise ValueError("dtype float64 needs jax_enable_x64 (set JAX_ENABLE_X64=1)")

    def pad(values: np.ndarray, c: int) -> np.ndarray:
        n = values.shape[0]
        return np.concatenate([values, np.repeat(values[-1:], -n % c, axis=0)])

    chunk = spec.chunk_shape
    axes = tuple(
        jnp.asarray(pad(np.asarray(a.values), c), dtype=dtype)
        for a, c in zip(spec.axes, chunk, strict=False)
    )
    table = None
    if spec.design is not None:
        table = jnp.asarray(pad(spec.design.points(), chunk[-1]), dtype=dtype)
    fixed = {k: jnp.asarray(v, dtype=dtype) for k, v in spec.fixed_values().items()}
    return axes, table, fixed


def chunk_offsets(spec: SweepSpec, index: tuple[int, ...]) -> np.ndarray:
    """Start index along each dimension of the chunk with grid index ``index``."""
    return np.asarray([i * c for i, c in zip(index, spec.chunk_shape, strict=True)], np.int32)


def chunk_slices(spec: SweepSpec, index: tuple[int, ...]) -> tuple[slice, ...]:
    """The region of the full cube covered by chunk ``index`` (edge chunks are shorter)."""
    return tuple(
        slice(i * c, min((i + 1) * c, n))
        for i, c, n in zip(index, spec.chunk_shape, spec.shape, strict=True)
    )
