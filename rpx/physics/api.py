"""Validated entry points: fill defaults from a preset, check the domain, evaluate a model."""

from __future__ import annotations

from collections.abc import Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

from rpx.physics.models import Model, get_model
from rpx.physics.params import check_names, check_values, param
from rpx.physics.presets import preset


def _float_dtype(values: list[object]) -> jnp.dtype:
    """Widest floating dtype among array inputs (Python scalars are weak and do not count)."""
    dtypes = [
        jnp.result_type(float) if not jnp.issubdtype(jnp.asarray(v).dtype, jnp.floating)
        else jnp.asarray(v).dtype
        for v in values
        if not isinstance(v, (int, float))
    ]
    if not dtypes:
        return jnp.result_type(float)
    return np.result_type(*dtypes)


def fill_defaults(
    params: Mapping[str, ArrayLike], names: tuple[str, ...], base: str = "default"
) -> dict[str, ArrayLike]:
    """Values of ``names``: from ``params``, else preset ``base``, else ``Param.default``."""
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


def prepare(
    params: Mapping[str, ArrayLike], model: str | Model, base: str = "default"
) -> dict[str, Array]:
    """Complete, cast and validate the parameters a model reads.

    Names not in ``params`` come from ``preset(base)``, else from the parameter
    table's default. All values are cast to one
    floating dtype (the widest of the array inputs, else JAX's default). Concrete values
    outside a parameter's physical domain raise ``ValueError`` naming the parameter and
    its allowed range; traced values (under ``jit``) are checked with
    ``equinox.error_if``, so the runtime error still names the parameter.

    Raises:
        ValueError: unknown parameter or model name, or a value outside its domain.
    """
    m = get_model(model)
    check_names(params)
    values = fill_defaults(params, m.params, base)
    dtype = _float_dtype([params[k] for k in m.params if k in params])
    out = {k: jnp.asarray(v, dtype=dtype) for k, v in values.items()}
    for name, x in out.items():
        if isinstance(x, jax.core.Tracer):
            p = param(name)
            ok = (x > p.lo if p.lo_open else x >= p.lo) & (x <= p.hi)
            out[name] = eqx.error_if(
                x, ~ok, f"parameter {name} is outside its allowed range {p.domain_str()}"
            )
        else:
            check_values(name, x)
    for group in m.nonzero:
        total = sum(out[k] for k in group)
        msg = f"permeabilities {', '.join(group)} are all zero; at least one must be > 0"
        if isinstance(total, jax.core.Tracer):
            out[group[0]] = eqx.error_if(out[group[0]], ~(total > 0), msg)
        elif not np.all(np.asarray(total) > 0):
            raise ValueError(msg)
    return out


def evaluate(
    params: Mapping[str, ArrayLike], model: str | Model = "ghk", base: str = "default"
) -> dict[str, Array]:
    """Validate ``params`` (see :func:`prepare`) and return every output of ``model``.

    Example:
        >>> out = evaluate({"K_o": 20.0}, model="ghk_pump")
        >>> sorted(out)
        ['I_pump', 'V', 'status']
    """
    m = get_model(model)
    return m.fn(prepare(params, m, base))


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

    Example:
        >>> import rpx
        >>> v = rpx.resting_potential({"K_o": [5.0, 10.0, 20.0]})
        >>> v.shape
        (3,)
    """
    return evaluate(params or {}, model)["V"]
