"""Sweep specifications: a frozen, self-validating, hashable description of a parameter space.

A :class:`SweepSpec` names the model, the fixed parameters (a preset plus overrides),
the swept axes (explicit values, ``linspace`` or ``logspace``), an optional sampled
design (a ``sample`` dimension), the outputs, the dtype and the chunk shape. The same
spec is a Python object and a TOML file (:func:`load_spec`). :meth:`SweepSpec.validate`
checks everything before any work starts, and :meth:`SweepSpec.hash` identifies the
space so that a store can only be resumed by the spec that created it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import qmc

from rpx.physics.models import DERIVED_PARAMS, derived_output_meta, get_model
from rpx.physics.params import check_values, param
from rpx.physics.presets import presets
from rpx.sweep.memory import check_fits

DESIGN_METHODS = ("uniform", "loguniform", "sobol", "lhs")
SAMPLE_DIM = "sample"
MAX_CHUNK_POINTS = 1 << 26  # 67M points per chunk: bounds device and host memory
DTYPES = ("float32", "float64")


@dataclasses.dataclass(frozen=True)
class Axis:
    """One swept parameter with its values (in the parameter's units).

    Build with :meth:`linspace`/:meth:`logspace` or give explicit ``values``.
    ``logspace(name, start, stop, num)`` spaces values geometrically *between the
    values* ``start`` and ``stop`` (like ``numpy.geomspace``), not between exponents.
    """

    name: str
    values: tuple[float, ...]

    @classmethod
    def linspace(cls, name: str, start: float, stop: float, num: int) -> Axis:
        _check_num(name, num)
        return cls(name, tuple(np.linspace(start, stop, int(num)).tolist()))

    @classmethod
    def logspace(cls, name: str, start: float, stop: float, num: int) -> Axis:
        _check_num(name, num)
        if not (start > 0 and stop > 0):
            raise ValueError(
                f"axis {name}: logspace needs start > 0 and stop > 0, got {start}, {stop}"
            )
        return cls(name, tuple(np.geomspace(start, stop, int(num)).tolist()))

    def __len__(self) -> int:
        return len(self.values)


def _check_num(name: str, num: int) -> None:
    if int(num) != num or num < 1:
        raise ValueError(f"axis {name}: num must be a positive integer, got {num!r}")
    # Values are held as Python floats, numpy coordinates and JSON text (~64 B each).
    check_fits(f"axis {name}", int(num), 64)


@dataclasses.dataclass(frozen=True)
class Range:
    """A sampled parameter: ``lo``..``hi`` in its units, drawn on a linear or log scale."""

    name: str
    lo: float
    hi: float
    log: bool = False


@dataclasses.dataclass(frozen=True)
class Design:
    """A sampled design over ranges, giving the ``sample`` dimension of a sweep.

    Methods: ``uniform`` (independent uniform draws; log-uniform where a range has
    ``log=True``), ``loguniform`` (every range log-uniform), ``sobol`` (scrambled Sobol
    sequence, ``scipy.stats.qmc.Sobol``) and ``lhs`` (Latin hypercube,
    ``scipy.stats.qmc.LatinHypercube``). ``n`` points, reproducible from ``seed``.
    """

    method: str
    n: int
    ranges: tuple[Range, ...]
    seed: int = 0

    def unit_points(self) -> np.ndarray:
        """The design in the unit cube, shape (n, len(ranges)), float64."""
        d = len(self.ranges)
        rng = np.random.default_rng(self.seed)
        if self.method in ("uniform", "loguniform"):
            return rng.random((self.n, d))
        if self.method == "sobol":
            return qmc.Sobol(d, scramble=True, rng=rng).random(self.n)
        return qmc.LatinHypercube(d, rng=rng).random(self.n)

    def points(self) -> np.ndarray:
        """Design points in parameter units, shape (n, len(ranges)), float64."""
        u = self.unit_points()
        cols = []
        for j, r in enumerate(self.ranges):
            if r.log or self.method == "loguniform":
                cols.append(np.exp(np.log(r.lo) + u[:, j] * (np.log(r.hi) - np.log(r.lo))))
            else:
                cols.append(r.lo + u[:, j] * (r.hi - r.lo))
        return np.stack(cols, axis=1)


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """A parameter space to evaluate.

    Attributes:
        model: registered model name.
        axes: swept parameters (grid dimensions, in this order).
        design: optional sampled design (a ``sample`` dimension after the axes).
        preset: preset giving every parameter that is neither swept nor overridden.
        fixed: overrides of preset values, ``((name, value), ...)``.
        outputs: model outputs to store (``V`` always), plus optional ``E_K``...
            (Nernst potentials) and ``I_K``... (GHK currents at rest). The groups
            ``"nernst"`` and ``"currents"`` expand to all four of each.
        gradients: parameters to differentiate every float output with respect to
            (stored as ``dV_d<name>``).
        log_gradients: also store ``dV_dlog10_<name>`` (per decade).
        dtype: ``"float32"`` (default) or ``"float64"`` (needs ``jax_enable_x64``).
        chunks: chunk length per dimension ``((dim, size), ...)``; unnamed dims get a
            default that keeps about 2^20 points per chunk.
    """

    model: str
    axes: tuple[Axis, ...] = ()
    design: Design | None = None
    preset: str = "default"
    fixed: tuple[tuple[str, float], ...] = ()
    outputs: tuple[str, ...] = ("V",)
    gradients: tuple[str, ...] = ()
    log_gradients: bool = False
    dtype: str = "float32"
    chunks: tuple[tuple[str, int], ...] = ()

    # ------------------------------------------------------------------ derived views
    @property
    def dims(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.axes) + ((SAMPLE_DIM,) if self.design else ())

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(a) for a in self.axes) + ((self.design.n,) if self.design else ())

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def swept(self) -> tuple[str, ...]:
        """Names of the parameters that vary (axes and design ranges)."""
        names = tuple(a.name for a in self.axes)
        return names + (tuple(r.name for r in self.design.ranges) if self.design else ())

    @property
    def chunk_shape(self) -> tuple[int, ...]:
        given = dict(self.chunks)
        shape = []
        budget = 1 << 20
        # Default chunking: whole trailing dims first, so chunks are contiguous slabs.
        for dim, n in reversed(list(zip(self.dims, self.shape, strict=True))):
            size = given.get(dim, min(n, max(1, budget)))
            budget = max(1, budget // max(size, 1))
            shape.append(size)
        return tuple(reversed(shape))

    @property
    def chunk_grid(self) -> tuple[int, ...]:
        return tuple(-(-n // c) for n, c in zip(self.shape, self.chunk_shape, strict=True))

    def model_outputs(self) -> tuple[str, ...]:
        """Model outputs stored (expanded, in storage order), including ``status``."""
        m = get_model(self.model)
        derived = derived_output_meta()
        out: list[str] = []
        for name in self.outputs:
            expanded = {
                "nernst": [k for k in derived if k.startswith("E_")],
                "currents": [k for k in derived if k.startswith("I_")],
            }.get(name, [name])
            out.extend(k for k in expanded if k not in out)
        if "V" not in out:
            out.insert(0, "V")
        if "status" in m.outputs and "status" not in out:
            out.append("status")
        return tuple(out)

    @property
    def params_read(self) -> tuple[str, ...]:
        """Parameters the model and the requested derived outputs read."""
        names = list(get_model(self.model).params)
        for out in self.model_outputs():
            names.extend(n for n in DERIVED_PARAMS.get(out, ()) if n not in names)
        return tuple(names)

    def fixed_values(self) -> dict[str, float]:
        """Every parameter read that is not swept: overrides, else preset, else default."""
        from rpx.physics.api import fill_defaults

        names = tuple(n for n in self.params_read if n not in self.swept)
        return {k: float(v) for k, v in fill_defaults(dict(self.fixed), names, self.preset).items()}

    # --------------------------------------------------------------------- validation
    def validate(self) -> SweepSpec:
        """Check the whole spec; raise one ``ValueError`` naming the offending entry.

        Returns ``self`` so that ``spec = SweepSpec(...).validate()`` reads naturally.
        """
        m = get_model(self.model)
        known = set(m.outputs) | set(derived_output_meta()) | {"nernst", "currents"}
        for name in self.outputs:
            if name not in known:
                raise ValueError(
                    f"unknown output {name!r} for model {m.name!r}; allowed: "
                    f"{', '.join(sorted(known))}"
                )
        if self.preset != "default" and self.preset not in presets():
            raise ValueError(f"unknown preset {self.preset!r}; known: {', '.join(presets())}")
        if not self.axes and self.design is None:
            raise ValueError("a sweep needs at least one axis or a design")
        seen: set[str] = set()
        for a in self.axes:
            self._check_swept_name(a.name, self.params_read, seen)
            if len(a) == 0:
                raise ValueError(f"axis {a.name} is empty")
            check_values(a.name, np.asarray(a.values))
        if self.design is not None:
            d = self.design
            if d.method not in DESIGN_METHODS:
                raise ValueError(
                    f"design method {d.method!r} unknown; allowed: {', '.join(DESIGN_METHODS)}"
                )
            if int(d.n) != d.n or d.n < 1:
                raise ValueError(f"design n must be a positive integer, got {d.n!r}")
            check_fits("design n", int(d.n), 40 * max(1, len(d.ranges)))
            if not d.ranges:
                raise ValueError("a design needs at least one range")
            for r in d.ranges:
                self._check_swept_name(r.name, self.params_read, seen)
                check_values(r.name, np.asarray([r.lo, r.hi]))
                if not r.lo < r.hi:
                    raise ValueError(f"design range {r.name}: lo must be < hi, got {r.lo}, {r.hi}")
        for name, value in self.fixed:
            p = param(name)
            if name in seen:
                raise ValueError(f"parameter {name} is both swept and fixed")
            if name not in self.params_read:
                raise ValueError(
                    f"fixed parameter {name} is not read by model {m.name!r} "
                    f"(it reads {', '.join(self.params_read)})"
                )
            check_values(p.name, np.asarray(value))
        fixed = self.fixed_values()
        for group in m.nonzero:
            if all(g not in seen and fixed[g] == 0 for g in group):
                raise ValueError(
                    f"permeabilities {', '.join(group)} are all zero; at least one must be > 0"
                )
        for name in self.gradients:
            param(name)
            if name not in m.params:
                raise ValueError(f"gradient w.r.t. {name}: model {m.name!r} does not read it")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        dims = self.dims
        for dim, size in self.chunks:
            if dim not in dims:
                raise ValueError(f"chunks: {dim!r} is not a dimension; dimensions: {dims}")
            n = self.shape[dims.index(dim)]
            if int(size) != size or not 1 <= size <= n:
                raise ValueError(f"chunks: {dim}={size!r} does not fit; allowed 1..{n}")
        if math.prod(self.chunk_shape) > MAX_CHUNK_POINTS:
            raise ValueError(
                f"chunks {dict(zip(dims, self.chunk_shape, strict=True))} hold "
                f"{math.prod(self.chunk_shape)} points; at most {MAX_CHUNK_POINTS} allowed"
            )
        return self

    @staticmethod
    def _check_swept_name(name: str, allowed: Sequence[str], seen: set[str]) -> None:
        param(name)
        if name == SAMPLE_DIM:
            raise ValueError(f"{SAMPLE_DIM!r} is reserved for the design dimension")
        if name not in allowed:
            raise ValueError(
                f"swept parameter {name} is not read by this model (it reads {', '.join(allowed)})"
            )
        if name in seen:
            raise ValueError(f"parameter {name} is swept twice")
        seen.add(name)

    # ----------------------------------------------------------- serialisation, hash
    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict that :func:`spec_from_dict` turns back into an equal spec."""
        d = dataclasses.asdict(self)
        d["axes"] = [{"name": a.name, "values": list(a.values)} for a in self.axes]
        d["fixed"] = dict(self.fixed)
        d["chunks"] = dict(self.chunks)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def hash(self) -> str:
        """SHA-256 of the canonical JSON of the spec: equal spaces have equal hashes."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()


def _axis_from_dict(entry: Mapping[str, Any]) -> Axis:
    name = entry.get("name")
    if not isinstance(name, str):
        raise ValueError(f"every axis needs a name; got {dict(entry)!r}")
    kinds = [k for k in ("values", "linspace", "logspace") if k in entry]
    if len(kinds) != 1:
        raise ValueError(f"axis {name}: give exactly one of values, linspace, logspace")
    kind = kinds[0]
    if kind == "values":
        values = entry["values"]
        if not isinstance(values, Sequence) or isinstance(values, str):
            raise ValueError(f"axis {name}: values must be a list of numbers")
        return Axis(name, tuple(float(v) for v in values))
    args = entry[kind]
    if isinstance(args, Mapping):
        args = [args.get("start"), args.get("stop"), args.get("num")]
    if not isinstance(args, Sequence) or len(args) != 3:
        raise ValueError(f"axis {name}: {kind} takes [start, stop, num]")
    start, stop, num = args
    return getattr(Axis, kind)(name, float(start), float(stop), num)


def spec_from_dict(d: Mapping[str, Any]) -> SweepSpec:
    """Build (and validate) a spec from the dict form used by TOML files and ``to_dict``."""
    known = {f.name for f in dataclasses.fields(SweepSpec)}
    unknown = set(d) - known
    if unknown:
        raise ValueError(f"unknown spec entries {sorted(unknown)}; allowed: {sorted(known)}")
    if "model" not in d:
        raise ValueError("the spec must name a model")
    design = None
    if d.get("design"):
        dd = dict(d["design"])
        ranges = tuple(
            Range(r["name"], float(r["lo"]), float(r["hi"]), bool(r.get("log", False)))
            for r in dd.pop("ranges", [])
        )
        design = Design(
            method=dd.get("method", "sobol"),
            n=dd.get("n", 0),
            ranges=ranges,
            seed=int(dd.get("seed", 0)),
        )
    gradients = d.get("gradients", ())
    axes = tuple(_axis_from_dict(a) for a in d.get("axes", ()))
    fixed = tuple((str(k), float(v)) for k, v in dict(d.get("fixed", {})).items())
    if gradients is True:  # every swept and every named fixed parameter
        swept = [a.name for a in axes] + ([r.name for r in design.ranges] if design else [])
        gradients = swept + [k for k, _ in fixed]
    spec = SweepSpec(
        model=str(d["model"]),
        axes=axes,
        design=design,
        preset=str(d.get("preset", "default")),
        fixed=fixed,
        outputs=tuple(d.get("outputs", ("V",))),
        gradients=tuple(gradients or ()),
        log_gradients=bool(d.get("log_gradients", False)),
        dtype=str(d.get("dtype", "float32")),
        chunks=tuple((str(k), v) for k, v in dict(d.get("chunks", {})).items()),
    )
    return spec.validate()


def read_toml(path: str | Path) -> dict[str, Any]:
    """The contents of a TOML spec file; unreadable or invalid files raise ``ValueError``."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path}: not valid TOML: {err}") from None
    except OSError as err:
        raise ValueError(f"cannot read spec {path}: {err}") from None


def load_spec(path: str | Path) -> SweepSpec:
    """Read a TOML sweep spec (see ``examples/``) and validate it.

    A ``[reduce]`` table (read by ``rpx reduce``) is allowed and ignored here, so that
    one file describes a space for both ``rpx sweep`` and ``rpx reduce``.
    """
    d = read_toml(path)
    d.pop("reduce", None)
    return spec_from_dict(d)
