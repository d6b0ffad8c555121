"""Local sensitivity: exact partial derivatives of model outputs, in forward mode.

For every float output ``out`` of a model and every parameter ``name`` in ``wrt`` this
module gives, pointwise over arrays that broadcast together,

* ``d<out>_d<name>`` = ∂out/∂name, in output units per parameter unit
  (``mV/mM``, ``mV/(cm/s)``, ``mV/K``...), and
* ``d<out>_dlog10_<name>`` = ∂out/∂log10(name) = name·ln(10)·∂out/∂name, in output
  units per decade: the log-sensitivity physiologists reason with (E_K moves by
  RT·ln(10)/F, 61.5 mV, per decade of K_o at 37 °C).

Derivatives are computed with forward-mode automatic differentiation: one
Jacobian-vector product per parameter, batched with ``vmap`` over the parameters, so
the primal is evaluated once and the cost grows with the (few) parameters, not with the
(many) points. A parameter array of any broadcastable shape gets the tangent
``ones_like``: each output point depends only on its own broadcast element of the
parameter, so the tangent is exactly the pointwise partial derivative. Root-solved
models are differentiated by the implicit function theorem inside their solver
(:func:`rpx.physics.roots.implicit_root`), never through the iterations.

Everything here is a pure function of arrays: it composes with ``jit`` and ``vmap``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from rpx.physics.api import run_checked
from rpx.physics.models import Model, get_model
from rpx.physics.params import PARAMS

LN10 = math.log(10.0)


def gradient_name(output: str, name: str, log10: bool = False) -> str:
    """Variable name of a derivative: ``dV_dK_o`` or, per decade, ``dV_dlog10_K_o``."""
    return f"d{output}_dlog10_{name}" if log10 else f"d{output}_d{name}"


def paren_units(units: str) -> str:
    """A unit string safe to put on either side of a ``/`` (``cm/s`` -> ``(cm/s)``)."""
    return f"({units})" if any(c in units for c in "/* ") else units


def ratio_units(numerator: str, denominator: str) -> str:
    """Units of a derivative: ``ratio_units("mV", "cm/s") == "mV/(cm/s)"``.

    A dimensionless denominator (``"1"``) leaves the numerator unchanged.
    """
    if denominator == "1":
        return numerator
    return f"{paren_units(numerator)}/{paren_units(denominator)}"


def _param_meta(name: str) -> tuple[str, str]:
    """``(units, long_name)`` of a parameter; names outside the vocabulary are dimensionless."""
    p = PARAMS.get(name)
    return (p.units, p.long_name) if p is not None else ("1", name)


def gradient_attrs(
    model: str | Model, output: str, name: str, log10: bool = False
) -> dict[str, str]:
    """CF attributes (``units``, ``long_name``) of the derivative of ``output`` w.r.t. ``name``.

    Example:
        >>> gradient_attrs("ghk", "V", "P_K")["units"]
        'mV/(cm/s)'
        >>> gradient_attrs("ghk", "V", "K_o", log10=True)["units"]
        'mV/decade'
    """
    out = get_model(model).outputs[output]
    units, long_name = _param_meta(name)
    if log10:
        return {
            "units": ratio_units(out.units, "decade"),
            "long_name": f"change of {out.long_name} per decade of {long_name}",
        }
    return {
        "units": ratio_units(out.units, units),
        "long_name": f"partial derivative of {out.long_name} with respect to {long_name}",
    }


def float_outputs(model: str | Model) -> list[str]:
    """The outputs of ``model`` that can be differentiated (every non-integer output)."""
    m = get_model(model)
    return [k for k, o in m.outputs.items() if not o.integer]


def _check(
    m: Model, params: Mapping[str, ArrayLike], wrt: Sequence[str], outputs: Sequence[str] | None
) -> list[str]:
    missing = [k for k in m.params if k not in params]
    if missing:
        raise ValueError(
            f"model {m.name!r} needs values for {', '.join(missing)} "
            "(use rpx.gradients to fill them from a preset)"
        )
    for name in wrt:
        if name not in m.params:
            raise ValueError(
                f"cannot differentiate with respect to {name!r}: model {m.name!r} reads "
                f"{', '.join(m.params)}"
            )
    allowed = float_outputs(m)
    outs = allowed if outputs is None else list(outputs)
    for out in outs:
        if out not in allowed:
            raise ValueError(
                f"output {out!r} of model {m.name!r} cannot be differentiated; "
                f"float outputs: {', '.join(allowed)}"
            )
    return outs


def model_value_and_gradients(
    model: str | Model,
    params: Mapping[str, ArrayLike],
    wrt: Sequence[str],
    log10: bool = False,
    outputs: Sequence[str] | None = None,
) -> tuple[dict[str, Array], dict[str, Array]]:
    """Every output of ``model`` and the derivatives of its float outputs, in one pass.

    Args:
        model: registered model name or :class:`rpx.Model`.
        params: a value (array) for every parameter the model reads, broadcasting
            together and of one floating dtype (no defaults are filled and nothing is
            validated here: see :func:`gradients` for the checked entry point).
        wrt: parameters to differentiate with respect to (a subset of ``model.params``).
        log10: also return the per-decade derivatives ``d<out>_dlog10_<name>``
            = name·ln(10)·∂out/∂name (mV per decade for V).
        outputs: float outputs to differentiate (default: all of them).

    Returns:
        ``(values, derivatives)``: the model's outputs exactly as ``model.fn`` returns
        them, and ``{gradient_name(out, name[, True]): array}`` with the broadcast shape
        of the outputs. Units are given by :func:`gradient_attrs`.
    """
    m = get_model(model)
    outs = _check(m, params, wrt, outputs)
    wrt = list(dict.fromkeys(wrt))
    primal = {k: jnp.asarray(params[k]) for k in wrt}
    rest = {k: v for k, v in params.items() if k not in primal}

    def f(sub: dict[str, Array]) -> tuple[dict[str, Array], dict[str, Array]]:
        out = m.fn({**rest, **sub})
        return {k: out[k] for k in outs}, out

    if not wrt:
        return m.fn(dict(params)), {}
    if m.closed_form:
        # one jvp per parameter, the others constants: each derivative is its own small
        # expression (stacked one-hot tangents would make every one of them read every
        # partial derivative, since x·0 is not simplified away in floating point)
        values = m.fn(dict(params))
        d_out = {out: [] for out in outs}
        for name, x in primal.items():

            def f1(xi: Array, name: str = name) -> dict[str, Array]:
                out = m.fn({**rest, **primal, name: xi})
                return {k: out[k] for k in outs}

            _, d = jax.jvp(f1, (x,), (jnp.ones_like(x),))
            for out in outs:
                d_out[out].append(d[out])
        return values, _named(d_out, outs, list(primal), primal, log10)
    # One one-hot tangent per parameter in wrt, stacked on a leading axis and pushed
    # forward together: vmap(jvp) evaluates the primal once.
    basis = jnp.eye(len(wrt), dtype=jnp.result_type(*primal.values()))
    tangents = {
        k: basis[:, i].reshape((len(wrt),) + (1,) * jnp.ndim(x)) * jnp.ones_like(x)
        for i, (k, x) in enumerate(primal.items())
    }

    def push(t: dict[str, Array]) -> tuple:
        return jax.jvp(f, (primal,), (t,), has_aux=True)

    _, d_out, values = jax.vmap(push, out_axes=(None, 0, None))(tangents)
    return values, _named(d_out, outs, wrt, primal, log10)


def _named(
    d_out: Mapping[str, object], outs: Sequence[str], wrt: Sequence[str],
    primal: Mapping[str, Array], log10: bool,
) -> dict[str, Array]:
    """``{gradient_name(out, name[, True]): d_out[out][i]}`` (``i``: index of name in wrt)."""
    grads: dict[str, Array] = {}
    for out in outs:
        for i, name in enumerate(wrt):
            d = d_out[out][i]
            grads[gradient_name(out, name)] = d
            if log10:
                grads[gradient_name(out, name, True)] = d * primal[name] * LN10
    return grads


def model_gradients(
    model: str | Model,
    params: Mapping[str, ArrayLike],
    wrt: Sequence[str],
    log10: bool = False,
    outputs: Sequence[str] | None = None,
) -> dict[str, Array]:
    """Derivatives ``d<out>_d<name>`` (and, with ``log10``, ``d<out>_dlog10_<name>``).

    The derivative part of :func:`model_value_and_gradients` (same arguments). Pure
    and unvalidated, for use inside jitted kernels.

    Example:
        >>> import rpx
        >>> p = rpx.prepare({"K_o": [5.0, 10.0]}, "ghk")
        >>> sorted(model_gradients("ghk", p, ["K_o"], log10=True))
        ['dV_dK_o', 'dV_dlog10_K_o']
    """
    return model_value_and_gradients(model, params, wrt, log10, outputs)[1]


def gradients(
    params: Mapping[str, ArrayLike] | None = None,
    model: str | Model = "ghk",
    wrt: Sequence[str] | None = None,
    log10: bool = False,
    base: str = "default",
) -> dict[str, Array]:
    """Exact local sensitivities of a model at given parameter values.

    Args:
        params: maps parameter names to arrays that broadcast together (mM, cm/s, K,
            uA/cm^2); names not given come from preset ``base``. Validated like
            :func:`rpx.evaluate`.
        model: registered model name or :class:`rpx.Model`.
        wrt: parameters to differentiate with respect to (default: all the model reads).
        log10: also return per-decade derivatives ``d<out>_dlog10_<name>``.
        base: preset that supplies the values not in ``params``.

    One compiled program per (model, ``wrt``, ``log10``, input shapes and dtypes) fills
    the defaults, checks the domain in one fused pass and evaluates every derivative;
    a later call with new values of the same shapes reuses it.

    Returns:
        ``{"dV_dK_o": ..., ...}`` for every float output (``d<out>_d<name>``), each with
        the broadcast shape of the inputs.

    Example:
        >>> g = gradients({"K_o": 10.0, "T": 310.15}, wrt=["K_o"], log10=True)
        >>> round(float(g["dV_dlog10_K_o"]), 1) > 0
        True
    """
    m = get_model(model)
    names = tuple(dict.fromkeys(m.params if wrt is None else wrt))
    _check(m, dict.fromkeys(m.params), names, None)
    log10 = bool(log10)

    def body(mv: Model, p: dict[str, Array]) -> dict[str, Array]:
        return model_gradients(mv, p, list(names), log10)

    # one compiled program per (model, wrt, log10, input shapes and dtypes): fill, cast,
    # one fused domain check and the forward-mode derivatives
    return run_checked(m, ("gradients", names, log10), body, params or {}, base, names)
