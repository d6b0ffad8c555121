"""The model types and the registry they are kept in (no models here).

:class:`Model` and :class:`Output` describe a model; :func:`register` adds one. Built-in
models register themselves from :mod:`rpx.physics.models` (closed forms) and
:mod:`rpx.physics.pump_leak`; look models up with :func:`rpx.physics.models.get_model`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Collection, Mapping

import numpy as np
from jax import Array, core

from rpx.physics.params import Positive
from rpx.physics.roots import STATUS_MEANINGS

Params = Mapping[str, Array]


@dataclasses.dataclass(frozen=True)
class Output:
    """Metadata of one model output (written as CF attributes into stores)."""

    units: str
    long_name: str
    integer: bool = False
    extra_attrs: Mapping[str, object] = dataclasses.field(default_factory=dict)

    def attrs(self) -> dict[str, object]:
        return {"units": self.units, "long_name": self.long_name, **self.extra_attrs}


@dataclasses.dataclass(frozen=True)
class Feature:
    """A part of a model that is inactive wherever all its strengths are exactly 0.

    Where the values are known before tracing (concrete inputs of an entry point, the
    fixed values and axes of a sweep plan, the data and fixed values of a fit), an
    inactive feature is left out of the traced program: :meth:`Model.variant`. Its
    outputs are then those the model gives with the strengths at 0, so the variant
    agrees with the full model there, in values and in the derivatives w.r.t. every
    parameter outside ``params`` (derivatives w.r.t. ``params`` keep the feature).

    Attributes:
        name: the feature's key (``"calcium"``, ``"cotransport"``...).
        strengths: the feature is inactive where every one of these is 0.
        params: the parameters only the feature reads.
        needs_off: features that must be left out before this one can be.
    """

    name: str
    strengths: tuple[str, ...]
    params: tuple[str, ...]
    needs_off: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Model:
    """A registered model.

    Attributes:
        name: registry key (``"ghk"``, ``"mullins_noda"``, ``"ghk_pump"``...).
        fn: pure function mapping a dict of parameter arrays to a dict of output arrays.
        params: the parameter names ``fn`` reads.
        outputs: metadata of every output ``fn`` returns (always includes ``V``).
        description: one line for listings.
        nonzero: groups of parameters of which at least one must be > 0 at every point.
        positive: sums of products that must be > 0 at every point (the model's
            physical domain beyond each parameter's own range: e.g. the GHK voltage
            needs a positive numerator and denominator, so a concentration may be 0
            where another permeant ion keeps the sum positive). Checked by
            :func:`rpx.physics.params.check_params`.
        features: parts of the model that can be left out of a traced program where
            they are known to be inactive (:class:`Feature`); ``fn`` then takes the
            keyword ``off``, the names of the features left out.
        off: the features this variant leaves out (see :meth:`variant`).
        plain_points: optional ``f(params) -> bool array`` (broadcast shape), True where
            every closed form ``fn`` evaluates (:func:`rpx.physics.formulas.ghk_voltage`,
            :func:`~rpx.physics.formulas.mullins_noda_voltage`) is exact in plain
            arithmetic; it must cover every call of those formulas in ``fn``. With it the
            entry points compile, for concrete inputs, a program with the plain forms
            only, and use the two-form program where it is False somewhere.
        plain_monotone: every sum of products that ``plain_points`` tests is
            nondecreasing in every parameter (the formulas receive the parameters
            themselves, or products of them): over a box of parameter values with lower
            corner >= 0 it is then True wherever it is True at the box's two extreme
            corners. ``rpx.sample``, whose draws stay inside a prior box, then samples
            with the plain forms only (checked once per cell at those corners).
        closed_form: ``fn`` is elementwise closed forms only (no loops or root solves):
            derivatives are then taken one parameter at a time, so that each reads only
            the arrays its expression needs (the value's work is shared among them by
            the compiler); otherwise all at once with stacked tangents.
    """

    name: str
    fn: Callable[[Params], dict[str, Array]]
    params: tuple[str, ...]
    outputs: Mapping[str, Output]
    description: str
    nonzero: tuple[tuple[str, ...], ...] = ()
    positive: tuple[Positive, ...] = ()
    features: tuple[Feature, ...] = ()
    off: tuple[str, ...] = ()
    plain_points: Callable[[Params], Array] | None = None
    plain_monotone: bool = False
    closed_form: bool = False

    @property
    def base_fn(self) -> Callable:
        """The registered function (without a variant's ``off`` bound)."""
        fn = self.fn
        return fn.func if isinstance(fn, functools.partial) else fn

    def variant(self, off: Collection[str]) -> Model:
        """This model with the features ``off`` left out of its traced program.

        The same object for the same ``off`` (so compiled programs keyed on the model
        are reused); ``self`` when ``off`` is empty.
        """
        return _variant(self, tuple(sorted(off)))

    def inactive(
        self, known: Mapping[str, object], wrt: Collection[str] = ()
    ) -> tuple[str, ...]:
        """Features known to be inactive at every point: every strength's value in
        ``known`` is concrete (not traced) and exactly 0, no derivative w.r.t. the
        feature's parameters is asked for (``wrt``), and its ``needs_off`` are inactive.

        ``known`` maps parameter names to values (numbers, numpy or JAX arrays, or
        tracers); a missing name or a traced value counts as unknown (active).
        """
        off: list[str] = []
        wrt = set(wrt)
        for f in self.features:
            if wrt & set(f.params) or not all(n in off for n in f.needs_off):
                continue
            if all(_known_zero(known.get(s)) for s in f.strengths):
                off.append(f.name)
        return tuple(off)

    def specialise(self, known: Mapping[str, object], wrt: Collection[str] = ()) -> Model:
        """:meth:`variant` leaving out the features :meth:`inactive` finds."""
        if not self.features or self.off:
            return self
        return self.variant(self.inactive(known, wrt))


def _known_zero(v: object) -> bool:
    """Whether ``v`` is a concrete value that is exactly 0 everywhere."""
    if v is None or isinstance(v, core.Tracer):
        return False
    try:
        a = np.asarray(v)
    except Exception:  # noqa: BLE001  (anything not convertible counts as unknown)
        return False
    return a.dtype.kind in "biuf" and a.size > 0 and not np.any(a)


# (id of the full model, off) -> (the full model, kept alive so its id stays unique; variant)
_VARIANTS: dict[tuple[int, tuple[str, ...]], tuple[Model, Model]] = {}


def _variant(m: Model, off: tuple[str, ...]) -> Model:
    if not off:
        return m
    hit = _VARIANTS.get((id(m), off))
    if hit is not None:
        return hit[1]
    unknown = set(off) - {f.name for f in m.features}
    if unknown:
        raise ValueError(f"model {m.name!r} has no feature {sorted(unknown)[0]!r}")
    v = dataclasses.replace(m, fn=functools.partial(m.base_fn, off=off), off=off)
    _VARIANTS[(id(m), off)] = (m, v)
    return v


_REGISTRY: dict[str, Model] = {}


def register(model: Model) -> Model:
    """Add ``model`` to the registry (replacing a model of the same name)."""
    _REGISTRY[model.name] = model
    return model


# Outputs shared by several models.
V_OUT = Output("mV", "resting membrane potential (V_in - V_out)")
STATUS_OUT = Output(
    "1",
    "solver status",
    integer=True,
    extra_attrs={"flag_values": [0, 1, 2], "flag_meanings": STATUS_MEANINGS},
)
