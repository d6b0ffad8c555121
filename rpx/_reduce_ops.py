"""What a reduction computes: its options, the on-device chunk partials and the host merges.

A chunk of the space is evaluated and reduced in one jitted function that returns small
*partials* (per-chunk counts, means, sums of squared deviations, minima, maxima,
histogram counts, extremes). The host merges partials into a float64/int64 state with
Chan's parallel update of mean and M2 = Σ(x − mean)², so the result does not depend on
how the space is chunked beyond float rounding. Points outside the space (the padding of
edge chunks) and NaN values are excluded, as xarray's ``skipna`` reductions do.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from rpx._kernel import chunk_function
from rpx._spec import SweepSpec
from rpx._store import variable_attrs

State = dict[str, np.ndarray]


@dataclasses.dataclass(frozen=True)
class Histogram:
    """Fixed bins for one variable: ``bins`` equal bins from ``lo`` to ``hi`` (its units).

    Bin ``k`` holds ``edges[k] <= x < edges[k + 1]``, the last bin also ``x == hi``
    (``numpy.histogram``'s convention); ``edges`` are in the sweep's dtype.
    """

    name: str
    lo: float
    hi: float
    bins: int

    def edges(self, dtype: str) -> np.ndarray:
        return np.linspace(self.lo, self.hi, self.bins + 1).astype(dtype)


@dataclasses.dataclass(frozen=True)
class Reductions:
    """Which reductions to compute over a space.

    Attributes:
        histograms: fixed-bin histograms, one per variable.
        marginals: variables whose count, mean, variance (ddof 0), min and max are
            reduced over all other dimensions, for every dimension.
        pairs: also reduce marginals (and band fractions) for every pair of dimensions.
        extremes: variables whose global min/max and their coordinates are found.
        band: ``(lo, hi)`` in mV: the fraction of the space with ``lo <= V <= hi``, in all
            and along every dimension; ``None`` for none.
    """

    histograms: tuple[Histogram, ...] = (Histogram("V", -150.0, 100.0, 250),)
    marginals: tuple[str, ...] = ("V",)
    pairs: bool = False
    extremes: tuple[str, ...] = ("V",)
    band: tuple[float, float] | None = (-80.0, -60.0)

    def validate(self, spec: SweepSpec) -> Reductions:
        """Check every entry against the variables of ``spec``; return ``self``."""
        known = list(variable_attrs(spec))
        names = [h.name for h in self.histograms] + list(self.marginals) + list(self.extremes)
        for name in names:
            if name not in known:
                raise ValueError(
                    f"reduce: unknown variable {name!r}; this sweep has {', '.join(known)}"
                )
        seen = set()
        for h in self.histograms:
            if h.name in seen:
                raise ValueError(f"reduce: two histograms of {h.name}")
            seen.add(h.name)
            if int(h.bins) != h.bins or h.bins < 1:
                raise ValueError(f"reduce: histogram {h.name} bins must be >= 1, got {h.bins!r}")
            if not (np.isfinite(h.lo) and np.isfinite(h.hi) and h.lo < h.hi):
                raise ValueError(
                    f"reduce: histogram {h.name} needs finite lo < hi, got {h.lo}, {h.hi}"
                )
        if self.band is not None:
            lo, hi = self.band
            if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
                raise ValueError(f"reduce: band needs finite lo <= hi, got {lo}, {hi}")
        return self

    def groups(self, spec: SweepSpec) -> list[tuple[int, ...]]:
        """Kept dimensions of each breakdown: every dimension, then pairs if asked."""
        nd = len(spec.dims)
        out = [(d,) for d in range(nd)]
        if self.pairs:
            out += list(itertools.combinations(range(nd), 2))
        return out

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["histograms"] = [dataclasses.asdict(h) for h in self.histograms]
        d["band"] = list(self.band) if self.band is not None else None
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))


def reductions_from_dict(d: Mapping[str, Any]) -> Reductions:
    """Reductions from the ``[reduce]`` table of a TOML spec (or ``to_dict``)."""
    known = {f.name for f in dataclasses.fields(Reductions)}
    unknown = set(d) - known
    if unknown:
        raise ValueError(f"reduce: unknown entries {sorted(unknown)}; allowed: {sorted(known)}")
    kw: dict[str, Any] = {}
    if "histograms" in d:
        hists = []
        for h in d["histograms"]:
            h = dict(h)
            if "range" in h:
                h["lo"], h["hi"] = h.pop("range")
            try:
                hists.append(Histogram(str(h["name"]), float(h["lo"]), float(h["hi"]), h["bins"]))
            except KeyError as err:
                raise ValueError(f"reduce: histogram {h!r} needs {err.args[0]}") from None
        kw["histograms"] = tuple(hists)
    for key in ("marginals", "extremes"):
        if key in d:
            kw[key] = tuple(str(v) for v in d[key])
    if "pairs" in d:
        kw["pairs"] = bool(d["pairs"])
    if "band" in d:
        band = d["band"]
        if band is not None and (len(band) != 2):
            raise ValueError(f"reduce: band must be [lo, hi], got {band!r}")
        kw["band"] = None if band is None else (float(band[0]), float(band[1]))
    return Reductions(**kw)


def key(group: tuple[int, ...]) -> str:
    return ",".join(map(str, group))


# ----------------------------------------------------------------------- on the device
def make_partials_fn(spec: SweepSpec, red: Reductions) -> Callable[..., dict[str, Array]]:
    """Jitted ``f(axes, table, fixed, offsets) -> partials`` of one chunk.

    Partials (flat dict): ``m:<var>:<group>:{n,mean,m2,min,max}`` over the chunk's
    positions along the kept dims; ``h:<var>`` counts ``[below, bins..., above, nan]``;
    ``e:<var>:{imin,vmin,imax,vmax,any}`` with chunk-flat (C-order) indices;
    ``b:<group>`` band counts.
    """
    chunk_fn = chunk_function(spec)
    chunk, shape, nd = spec.chunk_shape, spec.shape, len(spec.shape)
    dtype = jnp.dtype(spec.dtype)
    groups = red.groups(spec)
    edges = {h.name: h.edges(spec.dtype) for h in red.histograms}

    def others(g: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(i for i in range(nd) if i not in g)

    def fn(axes: Any, table: Any, fixed: Any, offsets: Array) -> dict[str, Array]:
        out = chunk_fn(axes, table, fixed, offsets)
        valid = jnp.ones(chunk, bool)
        for d in range(nd):
            idx = offsets[d] + jnp.arange(chunk[d], dtype=offsets.dtype)
            valid &= (idx < shape[d]).reshape([chunk[d] if i == d else 1 for i in range(nd)])
        p: dict[str, Array] = {}
        for name in red.marginals:
            x = out[name].astype(dtype)
            ok = valid & ~jnp.isnan(x)
            for g in groups:
                ax = others(g)
                n = jnp.sum(ok, axis=ax, dtype=jnp.int32, keepdims=True)
                s = jnp.sum(jnp.where(ok, x, 0), axis=ax, keepdims=True)
                mean = jnp.where(n > 0, s / jnp.maximum(n, 1).astype(dtype), 0)
                dev = jnp.where(ok, x - mean, 0)
                pre = f"m:{name}:{key(g)}:"
                p[pre + "n"] = jnp.squeeze(n, ax)
                p[pre + "mean"] = jnp.squeeze(mean, ax)
                p[pre + "m2"] = jnp.sum(dev * dev, axis=ax)
                p[pre + "min"] = jnp.min(jnp.where(ok, x, jnp.inf), axis=ax)
                p[pre + "max"] = jnp.max(jnp.where(ok, x, -jnp.inf), axis=ax)
        for h in red.histograms:
            p[f"h:{h.name}"] = _histogram(out[h.name].astype(dtype), valid, edges[h.name], h)
        for name in red.extremes:
            x = out[name].astype(dtype).ravel()
            ok = valid.ravel() & ~jnp.isnan(x)
            lo, hi = jnp.where(ok, x, jnp.inf), jnp.where(ok, x, -jnp.inf)
            imin, imax = jnp.argmin(lo).astype(jnp.int32), jnp.argmax(hi).astype(jnp.int32)
            p.update({
                f"e:{name}:imin": imin, f"e:{name}:vmin": lo[imin],
                f"e:{name}:imax": imax, f"e:{name}:vmax": hi[imax],
                f"e:{name}:any": jnp.any(ok),
            })
        if red.band is not None:
            V = out["V"]
            inside = valid & (V >= red.band[0]) & (V <= red.band[1])
            for g in groups:
                p[f"b:{key(g)}"] = jnp.sum(inside, axis=others(g), dtype=jnp.int32)
        return p

    return jax.jit(fn)


def _histogram(x: Array, valid: Array, edges: np.ndarray, h: Histogram) -> Array:
    """Counts ``[below, bin 0..bins-1, above, nan]`` of the valid points of ``x``.

    The bin is first estimated arithmetically, then corrected twice against the stored
    edges, which makes it exact (``edges[k] <= x < edges[k+1]``) for any estimate
    within two bins of the truth.
    """
    e = jnp.asarray(edges, x.dtype)
    nb = h.bins
    scale = jnp.asarray(nb / (h.hi - h.lo), x.dtype)
    k = jnp.clip(jnp.floor((x - e[0]) * scale), 0, nb - 1).astype(jnp.int32)
    k = jnp.where(jnp.isnan(x), 0, k)
    for _ in range(2):
        k = k - (x < e[k]).astype(jnp.int32) + (x >= e[k + 1]).astype(jnp.int32)
        k = jnp.clip(k, 0, nb - 1)
    idx = jnp.where(x < e[0], -1, jnp.where(x > e[nb], nb, k)) + 1
    idx = jnp.where(jnp.isnan(x), nb + 2, idx)
    idx = jnp.where(valid, idx, nb + 3)
    return jnp.bincount(idx.ravel(), length=nb + 4)[: nb + 3].astype(jnp.int32)


# ----------------------------------------------------------------------- on the host
def empty_state(spec: SweepSpec, red: Reductions) -> State:
    """The state of a reduction before any chunk: zero counts, ±inf extremes."""
    shape = spec.shape
    s: State = {"done": np.zeros(spec.chunk_grid, bool)}
    for g in red.groups(spec):
        gshape = tuple(shape[d] for d in g)
        for name in red.marginals:
            pre = f"m:{name}:{key(g)}:"
            s[pre + "n"] = np.zeros(gshape, np.int64)
            s[pre + "mean"] = np.zeros(gshape)
            s[pre + "m2"] = np.zeros(gshape)
            s[pre + "min"] = np.full(gshape, np.inf)
            s[pre + "max"] = np.full(gshape, -np.inf)
        if red.band is not None:
            s[f"b:{key(g)}"] = np.zeros(gshape, np.int64)
    for h in red.histograms:
        s[f"h:{h.name}"] = np.zeros(h.bins + 3, np.int64)
    for name in red.extremes:
        s[f"e:{name}:min"] = np.array([np.inf, -1.0])  # value, global flat index
        s[f"e:{name}:max"] = np.array([-np.inf, -1.0])
    return s


def merge(
    state: State, spec: SweepSpec, red: Reductions, index: tuple[int, ...], p: Mapping[str, Any]
) -> None:
    """Fold the host copy ``p`` of chunk ``index``'s partials into ``state`` in place."""
    chunk, shape = spec.chunk_shape, spec.shape
    start = [i * c for i, c in zip(index, chunk, strict=True)]
    for g in red.groups(spec):
        region = tuple(slice(start[d], min(start[d] + chunk[d], shape[d])) for d in g)
        trim = tuple(slice(0, r.stop - r.start) for r in region)
        for name in red.marginals:
            pre = f"m:{name}:{key(g)}:"
            nA, mA, m2A = state[pre + "n"][region], state[pre + "mean"][region], state[
                pre + "m2"
            ][region]
            nB = np.asarray(p[pre + "n"])[trim].astype(np.int64)
            mB = np.asarray(p[pre + "mean"])[trim].astype(np.float64)
            m2B = np.asarray(p[pre + "m2"])[trim].astype(np.float64)
            n = nA + nB
            w = nB / np.maximum(n, 1)
            delta = mB - mA
            state[pre + "mean"][region] = mA + delta * w
            state[pre + "m2"][region] = m2A + m2B + delta * delta * nA * w
            state[pre + "n"][region] = n
            np.minimum(state[pre + "min"][region], np.asarray(p[pre + "min"])[trim],
                       out=state[pre + "min"][region])
            np.maximum(state[pre + "max"][region], np.asarray(p[pre + "max"])[trim],
                       out=state[pre + "max"][region])
        if red.band is not None:
            state[f"b:{key(g)}"][region] += np.asarray(p[f"b:{key(g)}"])[trim]
    for h in red.histograms:
        state[f"h:{h.name}"] += np.asarray(p[f"h:{h.name}"])
    for name in red.extremes:
        if not bool(p[f"e:{name}:any"]):
            continue
        for which, better in (("min", np.less), ("max", np.greater)):
            v = float(p[f"e:{name}:v{which}"])
            local = np.unravel_index(int(p[f"e:{name}:i{which}"]), chunk)
            flat = float(np.ravel_multi_index(
                tuple(s + i for s, i in zip(start, local, strict=True)), shape
            ))
            best, best_flat = state[f"e:{name}:{which}"]
            if better(v, best) or (v == best and (best_flat < 0 or flat < best_flat)):
                state[f"e:{name}:{which}"][:] = (v, flat)
    state["done"][index] = True
