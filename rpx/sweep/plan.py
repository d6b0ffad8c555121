"""The plan: a sweep spec resolved once against the model registry and the parameter table.

A :class:`SweepSpec` says what the user asked for; a :class:`Plan` says what will be
computed and stored: the model object, every stored variable with its metadata (model
outputs, derived Nernst potentials and currents, derivatives), the fixed values, the
coordinates, the chunk grid, the dtype and the hash. The kernel, the store template, the
chunk writers, the reductions and the distributed runner all receive the plan; nothing
below it looks the model up again or re-derives a name from the spec.

Plans are built by :func:`make_plan`, cached per spec (specs are frozen and hashable), so
the same spec always gives the same plan object and compiled kernels cached per plan are
reused on resume.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from rpx.physics.derivatives import gradient_attrs
from rpx.physics.models import Model, derived_output_meta, get_model
from rpx.physics.params import attrs as param_attrs
from rpx.sweep.spec import SAMPLE_DIM, Axis, Design, SweepSpec


@dataclasses.dataclass(frozen=True)
class Variable:
    """One stored data variable: its CF attributes and whether it is an integer (status)."""

    name: str
    attrs: dict[str, Any]
    integer: bool = False

    def dtype(self, float_dtype: str) -> np.dtype:
        return np.dtype(np.int32) if self.integer else np.dtype(float_dtype)


@dataclasses.dataclass(frozen=True)
class Gradient:
    """One stored derivative: variable name, differentiated output, parameter, per decade."""

    var: str
    output: str
    param: str
    per_decade: bool


@dataclasses.dataclass(frozen=True)
class Coordinate:
    """One coordinate of the store: its dimensions, values (numpy) and CF attributes."""

    name: str
    dims: tuple[str, ...]
    values: np.ndarray
    attrs: dict[str, Any]


@dataclasses.dataclass(frozen=True, eq=False)
class Plan:
    """Everything a sweep or reduction needs, derived once from a validated spec.

    Attributes:
        spec: the spec it was resolved from (for serialisation into stores).
        model: the registered :class:`rpx.Model`, without the features that are
            inactive at every point (:meth:`rpx.Model.specialise`).
        outputs: model and derived outputs stored, in storage order (``status`` last).
        gradients: the stored derivatives, in storage order.
        variables: every stored data variable by name (outputs, then derivatives).
        fixed: value of every parameter read that is not swept (units of the table).
        coords: coordinates (axes, design index and design values, fixed scalars).
        dims, shape, chunk_shape, chunk_grid: the cube and its chunking.
        dtype: ``"float32"`` or ``"float64"``.
        hash: the spec hash that identifies the space in stores.
        design_points: the sampled design in parameter units, (n, n_ranges), or None.
    """

    spec: SweepSpec
    model: Model
    outputs: tuple[str, ...]
    gradients: tuple[Gradient, ...]
    variables: dict[str, Variable]
    fixed: dict[str, float]
    coords: tuple[Coordinate, ...]
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    chunk_shape: tuple[int, ...]
    chunk_grid: tuple[int, ...]
    dtype: str
    hash: str
    design_points: np.ndarray | None = None

    # The spec's own fields that the layers below read, under the same names.
    @property
    def model_name(self) -> str:
        return self.model.name

    @property
    def preset(self) -> str:
        return self.spec.preset

    @property
    def axes(self) -> tuple[Axis, ...]:
        return self.spec.axes

    @property
    def design(self) -> Design | None:
        return self.spec.design

    @property
    def log_gradients(self) -> bool:
        return self.spec.log_gradients

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def n_chunks(self) -> int:
        return math.prod(self.chunk_grid)

    def to_json(self) -> str:
        return self.spec.to_json()

    # ------------------------------------------------------------------ size estimates
    @property
    def bytes_per_point(self) -> int:
        """Bytes stored per point of the cube, all variables together (uncompressed)."""
        return sum(v.dtype(self.dtype).itemsize for v in self.variables.values())

    @property
    def store_bytes(self) -> int:
        """Uncompressed size of every stored variable (an upper bound of the store)."""
        return self.size * self.bytes_per_point

    @property
    def chunk_bytes(self) -> int:
        """Uncompressed bytes of one full chunk of every variable."""
        return math.prod(self.chunk_shape) * self.bytes_per_point

    def run_memory(self, in_flight: int) -> int:
        """Host memory a run needs with ``in_flight`` chunks evaluated ahead of the
        writers: those chunks and their trimmed copies, plus coordinates and design."""
        coords = sum(np.asarray(c.values).nbytes for c in self.coords)
        return (in_flight + 2) * self.chunk_bytes + coords

    # ------------------------------------------------------------------ the chunk grid
    def chunk_indices(self) -> Iterator[tuple[int, ...]]:
        """Grid indices of all chunks in C order."""
        return itertools.product(*(range(n) for n in self.chunk_grid))

    def chunk_offsets(self, index: tuple[int, ...]) -> np.ndarray:
        """Start index along each dimension of the chunk with grid index ``index``."""
        return np.asarray(
            [i * c for i, c in zip(index, self.chunk_shape, strict=True)], np.int32
        )

    def chunk_slices(self, index: tuple[int, ...]) -> tuple[slice, ...]:
        """The region of the cube covered by chunk ``index`` (edge chunks are shorter)."""
        return tuple(
            slice(i * c, min((i + 1) * c, n))
            for i, c, n in zip(index, self.chunk_shape, self.shape, strict=True)
        )

    def chunk_points(self, index: tuple[int, ...]) -> int:
        """Number of points of the cube in chunk ``index``."""
        return math.prod(s.stop - s.start for s in self.chunk_slices(index))


@functools.lru_cache(maxsize=64)
def make_plan(spec: SweepSpec) -> Plan:
    """Validate ``spec`` and resolve it into a :class:`Plan` (cached per spec).

    Raises:
        ValueError: the spec is invalid (see :meth:`SweepSpec.validate`).
    """
    spec.validate()
    m = get_model(spec.model)
    outputs = spec.model_outputs()
    meta = {**derived_output_meta(), **dict(m.outputs)}
    variables: dict[str, Variable] = {
        name: Variable(name, meta[name].attrs(), name in m.outputs and m.outputs[name].integer)
        for name in outputs
    }
    grads = []
    for out in outputs:
        if out not in m.outputs or m.outputs[out].integer:
            continue
        for p in spec.gradients:
            grads.append(Gradient(f"d{out}_d{p}", out, p, False))
            if spec.log_gradients:
                grads.append(Gradient(f"d{out}_dlog10_{p}", out, p, True))
    for g in grads:
        variables[g.var] = Variable(g.var, gradient_attrs(m, g.output, g.param, g.per_decade))
    fixed = spec.fixed_values()
    pts = spec.design.points() if spec.design is not None else None
    # Features whose strengths are 0 at every point of the space are left out of the
    # traced kernel (same values; derivatives w.r.t. them keep them in).
    known: dict[str, object] = dict(fixed)
    known |= {a.name: np.asarray(a.values) for a in spec.axes}
    if spec.design is not None:
        known |= {r.name: pts[:, j] for j, r in enumerate(spec.design.ranges)}
    m = m.specialise(known, spec.gradients)
    coords: list[Coordinate] = [
        Coordinate(a.name, (a.name,), np.asarray(a.values), param_attrs(a.name))
        for a in spec.axes
    ]
    if spec.design is not None:
        coords.append(Coordinate(
            SAMPLE_DIM, (SAMPLE_DIM,), np.arange(spec.design.n),
            {"long_name": f"index of the {spec.design.method} design point", "units": "1"},
        ))
        for j, r in enumerate(spec.design.ranges):
            coords.append(Coordinate(r.name, (SAMPLE_DIM,), pts[:, j], param_attrs(r.name)))
    for name, value in fixed.items():
        coords.append(Coordinate(name, (), np.float64(value), param_attrs(name)))
    return Plan(
        spec=spec,
        model=m,
        outputs=outputs,
        gradients=tuple(grads),
        variables=variables,
        fixed=fixed,
        coords=tuple(coords),
        dims=spec.dims,
        shape=spec.shape,
        chunk_shape=spec.chunk_shape,
        chunk_grid=spec.chunk_grid,
        dtype=spec.dtype,
        hash=spec.hash(),
        design_points=pts,
    )
