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
from rpx.physics.params import VALENCE
from rpx.sweep.plan import Plan

ChunkFn = Callable[..., dict[str, Array]]


def derived_output(name: str, p: dict[str, Array], V: Array) -> Array:
    """A derived output: ``E_<ion>`` (Nernst, mV) or ``I_<ion>`` (GHK current at V)."""
    kind, ion = name.split("_", 1)
    z = VALENCE[ion]
    if kind == "E":
        return phys.nernst(p[f"{ion}_o"], p[f"{ion}_i"], z, p["T"])
    return phys.ghk_current(V, p[f"P_{ion}"], p[f"{ion}_o"], p[f"{ion}_i"], z, p["T"])


def evaluate_point_set(plan: Plan, params: dict[str, Array]) -> dict[str, Array]:
    """Every stored variable of ``plan`` for broadcastable ``params`` (no validation).

    Derivatives come from :func:`rpx.physics.derivatives.model_value_and_gradients`
    (forward mode, the model evaluated once), the same code as :func:`rpx.gradients`.
    """
    m = plan.model
    if plan.gradients:
        outs = list(dict.fromkeys(g.output for g in plan.gradients))
        wrt = list(dict.fromkeys(g.param for g in plan.gradients))
        outputs, derivatives = model_value_and_gradients(
            m, params, wrt, plan.log_gradients, outs
        )
    else:
        outputs, derivatives = m.fn(params), {}
    result = {
        name: outputs[name] if name in outputs else derived_output(name, params, outputs["V"])
        for name in plan.outputs
    }
    result.update({g.var: derivatives[g.var] for g in plan.gradients})
    return result


@functools.lru_cache(maxsize=16)
def make_chunk_fn(plan: Plan) -> ChunkFn:
    """Jitted :func:`chunk_function` of ``plan``, cached per plan (one plan per spec, see
    :func:`rpx.sweep.plan.make_plan`), so rerunning or resuming a sweep in the same
    process does not recompile."""
    return jax.jit(chunk_function(plan))


def chunk_function(plan: Plan) -> ChunkFn:
    """Traceable ``f(axes, table, fixed, offsets) -> {var: array of chunk_shape}``.

    Reductions call it inside their own jitted function; sweeps jit it alone.

    Args of the returned function:
        axes: tuple of padded 1-D axis vectors (one per grid axis).
        table: padded design table (n_padded, n_ranges) or None.
        fixed: dict of 0-d arrays for every non-swept parameter read.
        offsets: int32 vector, the chunk's start index along each dimension.
    """
    chunk = plan.chunk_shape
    nd = len(chunk)
    axis_names = [a.name for a in plan.axes]
    design_names = [r.name for r in plan.design.ranges] if plan.design else []

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
        out = evaluate_point_set(plan, params)
        return {k: jnp.broadcast_to(v, chunk) for k, v in out.items()}

    return chunk_fn


def device_inputs(plan: Plan) -> tuple[tuple[Array, ...], Array | None, dict[str, Array]]:
    """Axis vectors and design table padded to whole chunks, and fixed values, on device."""
    dtype = jnp.dtype(plan.dtype)
    if dtype == jnp.float64 and not jax.config.jax_enable_x64:
        raise ValueError("dtype float64 needs jax_enable_x64 (set JAX_ENABLE_X64=1)")

    def pad(values: np.ndarray, c: int) -> np.ndarray:
        n = values.shape[0]
        return np.concatenate([values, np.repeat(values[-1:], -n % c, axis=0)])

    chunk = plan.chunk_shape
    axes = tuple(
        jnp.asarray(pad(np.asarray(a.values), c), dtype=dtype)
        for a, c in zip(plan.axes, chunk, strict=False)
    )
    table = None
    if plan.design is not None:
        table = jnp.asarray(pad(plan.design_points, chunk[-1]), dtype=dtype)
    fixed = {k: jnp.asarray(v, dtype=dtype) for k, v in plan.fixed.items()}
    return axes, table, fixed
