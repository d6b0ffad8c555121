"""The model types and the registry they are kept in (no models here).

:class:`Model` and :class:`Output` describe a model; :func:`register` adds one. Built-in
models register themselves from :mod:`rpx.physics.models` (closed forms) and
:mod:`rpx.physics.pump_leak`; look models up with :func:`rpx.physics.models.get_model`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

from jax import Array

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
    """

    name: str
    fn: Callable[[Params], dict[str, Array]]
    params: tuple[str, ...]
    outputs: Mapping[str, Output]
    description: str
    nonzero: tuple[tuple[str, ...], ...] = ()
    positive: tuple[Positive, ...] = ()


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
