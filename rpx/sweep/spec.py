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

    def __post_init__(self) -> None:
        # Any sequence (a list, a numpy array) becomes a hashable tuple of floats, so
        # that specs compare, hash and serialise alike however the values were given.
        object.__setattr__(self, "values", _float_tuple(self.values))

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


def _float_tuple(values: object) -> object:
    """``values`` as a tuple of Python floats where it is a sequence of numbers; left
    as given otherwise, for the spec's validation to name."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        return values
    try:
        return tuple(float(v) for v in np.asarray(values, dtype=np.float64).ravel())
    except (TypeError, ValueError):
        return tuple(values)  # type: ignore[call-overload]


def _pairs(value: object) -> object:
    """A mapping or a sequence of pairs as a tuple of ``(name, value)`` tuples."""
    if isinstance(value, Mapping):
        return tuple(value.items())
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        return value
    return tuple(tuple(p) if isinstance(p, (list, tuple)) else p for p in value)


def _names(value: object) -> object:
    """A single name or a sequence of names as a tuple."""
    if isinstance(value, str):
        return (value,)
    if hasattr(value, "__iter__"):
        return tuple(value)  # type: ignore[arg-type]
    return value


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

    def __post_init__(self) -> None:
        object.__setattr__(self, "ranges", _names(self.ranges))

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

    def __post_init__(self) -> None:
        # Lists, dicts and numpy arrays become tuples: a spec is hashable and compares
        # equal however its containers were written.
        object.__setattr__(self, "axes", _names(self.axes))
        object.__setattr__(self, "fixed", _pairs(self.fixed))
        object.__setattr__(self, "outputs", _names(self.outputs))
        object.__setattr__(self, "gradients", _names(self.gradients))
        object.__setattr__(self, "chunks", _pairs(self.chunks))

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
        self._check_types()
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
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        dt = np.dtype(self.dtype)
        if not self.axes and self.design is None:
            raise ValueError("a sweep needs at least one axis or a design")
        seen: set[str] = set()
        for a in self.axes:
            self._check_swept_name(a.name, self.params_read, seen)
            if len(a) == 0:
                raise ValueError(f"axis {a.name} is empty")
            check_values(a.name, np.asarray(a.values), dt)
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
                check_values(r.name, np.asarray([r.lo, r.hi]), dt)
                if not r.lo < r.hi:
                    raise ValueError(f"design range {r.name}: lo must be < hi, got {r.lo}, {r.hi}")
                if (r.log or d.method == "loguniform") and not (
                    np.asarray(r.lo, dt) >= np.finfo(dt).tiny
                ):
                    raise ValueError(
                        f"design range {r.name}: a log range needs lo > 0 (in {self.dtype}), "
                        f"got lo = {r.lo!r}"
                    )
        for name, value in self.fixed:
            p = param(name)
            if name in seen:
                raise ValueError(f"parameter {name} is both swept and fixed")
            if name not in self.params_read:
                raise ValueError(
                    f"fixed parameter {name} is not read by model {m.name!r} "
                    f"(it reads {', '.join(self.params_read)})"
                )
            check_values(p.name, np.asarray(value), dt)
        self._check_model_domain(m, dt)
        for name in self.gradients:
            param(name)
            if name not in m.params:
                raise ValueError(f"gradient w.r.t. {name}: model {m.name!r} does not read it")
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

    def _check_types(self) -> None:
        """Field types of a spec built in Python (the dict reader checks them already)."""
        for field, kind in (("model", str), ("preset", str), ("dtype", str)):
            if not isinstance(getattr(self, field), kind):
                raise ValueError(f"{field} must be a string, got {getattr(self, field)!r}")
        if not isinstance(self.log_gradients, bool):
            raise ValueError(f"log_gradients must be True or False, got {self.log_gradients!r}")
        for a in self.axes:
            for v in a.values:
                if not _is_number(v):
                    raise ValueError(f"axis {a.name}: values must be numbers, got {v!r}")
        for name, value in self.fixed:
            if not _is_number(value):
                raise ValueError(f"fixed {name} must be a number, got {value!r}")
        if self.design is not None:
            for r in self.design.ranges:
                if not (_is_number(r.lo) and _is_number(r.hi) and isinstance(r.log, bool)):
                    raise ValueError(f"design range {r.name}: lo, hi numbers and log a bool")

    def _space_values(self, dt: np.dtype) -> tuple[dict[str, np.ndarray], set[str]]:
        """Every parameter read, as the values it takes (cast to ``dt``): an axis's
        values, a design column over the samples, or a fixed scalar; and the design names."""
        values: dict[str, np.ndarray] = {
            k: np.asarray(v, dt) for k, v in self.fixed_values().items()
        }
        for a in self.axes:
            values[a.name] = np.asarray(a.values, dt)
        design_names: set[str] = set()
        if self.design is not None:
            pts = self.design.points().astype(dt)
            for j, r in enumerate(self.design.ranges):
                values[r.name] = pts[:, j]
                design_names.add(r.name)
        return values, design_names

    def _check_model_domain(self, m: Any, dt: np.dtype) -> None:
        """The model's ``nonzero`` groups and ``positive`` sums hold at every point of the
        space (grid axes are independent; design columns vary together per sample)."""
        values, design_names = self._space_values(dt)
        tiny = np.finfo(dt).tiny
        groups = [
            (tuple((g,) for g in group),
             f"permeabilities {', '.join(group)} are all zero at some point of the space; "
             "at least one must be > 0", 0.0)
            for group in m.nonzero
        ] + [(pos.terms, f"{pos.message()} at some point of the space", tiny)
             for pos in getattr(m, "positive", ())]  # fmt: skip
        n = self.design.n if self.design is not None else 1
        for terms, message, floor in groups:
            if not all(k in values for t in terms for k in t):
                continue
            all_zero = np.ones(n, bool)
            for term in terms:
                term_zero = np.zeros(n, bool)
                for k in term:
                    zero = values[k] <= floor if floor == 0.0 else values[k] < floor
                    term_zero |= zero if k in design_names else bool(np.any(zero))
                all_zero &= term_zero
            if np.any(all_zero):
                raise ValueError(message)

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


# ------------------------------------------------------------ strict dict reading
def _is_number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _number(x: object, where: str) -> float:
    if not _is_number(x):
        raise ValueError(f"{where} must be a number, got {_show(x)}")
    return float(x)  # type: ignore[arg-type]


def _integer(x: object, where: str) -> int:
    if isinstance(x, bool) or not isinstance(x, int):
        raise ValueError(f"{where} must be an integer, got {_show(x)}")
    return x


def _boolean(x: object, where: str) -> bool:
    if not isinstance(x, bool):
        raise ValueError(f"{where} must be true or false, got {_show(x)}")
    return x


def _string(x: object, where: str) -> str:
    if not isinstance(x, str):
        raise ValueError(f"{where} must be a string, got {_show(x)}")
    return x


def _table(x: object, where: str, allowed: Sequence[str]) -> Mapping[str, Any]:
    if not isinstance(x, Mapping):
        raise ValueError(f"{where} must be a table with keys {', '.join(allowed)}, got {_show(x)}")
    unknown = [k for k in x if k not in allowed]
    if unknown:
        raise ValueError(
            f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(allowed)}"
        )
    return x


def _list(x: object, where: str) -> list[Any]:
    if isinstance(x, (str, bytes, Mapping)) or not isinstance(x, Sequence):
        raise ValueError(f"{where} must be a list, got {_show(x)}")
    return list(x)


def _show(x: object) -> str:
    kind = {bool: "a boolean", str: "a string", dict: "a table", list: "a list"}.get(
        type(x), type(x).__name__
    )
    text = repr(x)
    return f"{kind} {text if len(text) <= 40 else text[:37] + '...'}"


AXIS_KEYS = ("name", "values", "linspace", "logspace")
DESIGN_KEYS = ("method", "n", "ranges", "seed")
RANGE_KEYS = ("name", "lo", "hi", "log")
SPACE_KEYS = ("start", "stop", "num")


def _axis_from_dict(entry: object, i: int) -> Axis:
    entry = _table(entry, f"axes[{i}]", AXIS_KEYS)
    if "name" not in entry:
        raise ValueError(f"axes[{i}] needs a name")
    name = _string(entry["name"], f"axes[{i}].name")
    kinds = [k for k in ("values", "linspace", "logspace") if k in entry]
    if len(kinds) != 1:
        raise ValueError(f"axis {name}: give exactly one of values, linspace, logspace")
    kind = kinds[0]
    if kind == "values":
        values = _list(entry["values"], f"axis {name}: values")
        return Axis(name, tuple(_number(v, f"axis {name}: values[{j}]") for j, v in
                                enumerate(values)))
    args = entry[kind]
    if isinstance(args, Mapping):
        _table(args, f"axis {name}: {kind}", SPACE_KEYS)
        missing = [k for k in SPACE_KEYS if k not in args]
        if missing:
            raise ValueError(f"axis {name}: {kind} needs {', '.join(missing)}")
        args = [args["start"], args["stop"], args["num"]]
    args = _list(args, f"axis {name}: {kind}")
    if len(args) != 3:
        raise ValueError(f"axis {name}: {kind} takes [start, stop, num], got {len(args)} values")
    start = _number(args[0], f"axis {name}: {kind} start")
    stop = _number(args[1], f"axis {name}: {kind} stop")
    num = _integer(args[2], f"axis {name}: {kind} num")
    return getattr(Axis, kind)(name, start, stop, num)


def _design_from_dict(d: object) -> Design:
    d = _table(d, "design", DESIGN_KEYS)
    ranges = []
    for j, r in enumerate(_list(d.get("ranges", []), "design.ranges")):
        r = _table(r, f"design.ranges[{j}]", RANGE_KEYS)
        for k in ("name", "lo", "hi"):
            if k not in r:
                raise ValueError(f"design.ranges[{j}] needs {k}")
        name = _string(r["name"], f"design.ranges[{j}].name")
        ranges.append(Range(
            name,
            _number(r["lo"], f"design range {name}: lo"),
            _number(r["hi"], f"design range {name}: hi"),
            _boolean(r.get("log", False), f"design range {name}: log"),
        ))  # fmt: skip
    return Design(
        method=_string(d.get("method", "sobol"), "design.method"),
        n=_integer(d.get("n", 0), "design.n"),
        ranges=tuple(ranges),
        seed=_integer(d.get("seed", 0), "design.seed"),
    )


def spec_from_dict(d: Mapping[str, Any]) -> SweepSpec:
    """Build (and validate) a spec from the dict form used by TOML files and ``to_dict``.

    Strict: every key is known at every level, booleans are booleans, numbers numbers
    (a string or a nested list is refused, never coerced); every error is one line.

    Raises:
        ValueError: naming the offending entry.
    """
    known = [f.name for f in dataclasses.fields(SweepSpec)]
    if not isinstance(d, Mapping):
        raise ValueError(f"a spec must be a table, got {_show(d)}")
    unknown = sorted(set(d) - set(known))
    if unknown:
        raise ValueError(f"unknown spec entries {unknown}; allowed: {sorted(known)}")
    if "model" not in d:
        raise ValueError("the spec must name a model")
    design = _design_from_dict(d["design"]) if d.get("design") else None
    if "axes" in d and isinstance(d["axes"], Mapping):
        raise ValueError("axes must be a list of tables ([[axes]] in TOML), got a table")
    axes = tuple(_axis_from_dict(a, i) for i, a in enumerate(_list(d.get("axes", []), "axes")))
    fixed_table = d.get("fixed", {})
    if not isinstance(fixed_table, Mapping):
        raise ValueError(f"fixed must be a table of name = value, got {_show(fixed_table)}")
    fixed = tuple(
        (_string(k, "fixed"), _number(v, f"fixed {k}")) for k, v in fixed_table.items()
    )
    gradients = d.get("gradients", ())
    if gradients is True:  # every swept and every named fixed parameter
        swept = [a.name for a in axes] + ([r.name for r in design.ranges] if design else [])
        gradients = swept + [k for k, _ in fixed]
    elif gradients is False:
        gradients = []
    else:
        gradients = [_string(g, "gradients[]") for g in _list(gradients, "gradients")]
    outputs = [_string(o, "outputs[]") for o in _list(d.get("outputs", ["V"]), "outputs")]
    chunks_table = d.get("chunks", {})
    if not isinstance(chunks_table, Mapping):
        raise ValueError(f"chunks must be a table of dim = size, got {_show(chunks_table)}")
    spec = SweepSpec(
        model=_string(d["model"], "model"),
        axes=axes,
        design=design,
        preset=_string(d.get("preset", "default"), "preset"),
        fixed=fixed,
        outputs=tuple(outputs),
        gradients=tuple(gradients),
        log_gradients=_boolean(d.get("log_gradients", False), "log_gradients"),
        dtype=_string(d.get("dtype", "float32"), "dtype"),
        chunks=tuple((str(k), _integer(v, f"chunks {k}")) for k, v in chunks_table.items()),
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
