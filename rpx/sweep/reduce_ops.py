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
import functools
import itertools
import json
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from rpx.sweep.kernel import chunk_function
from rpx.sweep.plan import Plan
from rpx.sweep.store import variable_attrs

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

    def validate(self, plan: Plan) -> Reductions:
        """Check every entry against the variables of ``plan``; return ``self``."""
        known = list(variable_attrs(plan))
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

    def groups(self, plan: Plan) -> list[tuple[int, ...]]:
        """Kept dimensions of each breakdown: every dimension, then pairs if asked."""
        nd = len(plan.dims)
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
class Moments(NamedTuple):
    """Count, mean, M2 = Σ(x − mean)², min and max of the valid values of some cells."""

    n: Array
    mean: Array
    m2: Array
    min: Array
    max: Array


def _moments(x: Array, ok: Array, axes: tuple[int, ...]) -> Moments:
    """Moments of ``x`` where ``ok``, over ``axes`` (kept with size 1), in two passes.

    ``mean = Σx / n`` first, then ``M2 = Σ(x − mean)²`` about that mean: no
    cancellation, unlike ``Σx² − n·mean²``. Empty cells get ``mean = M2 = 0``.
    """
    n = jnp.sum(ok, axis=axes, dtype=jnp.int32, keepdims=True)
    s = jnp.sum(jnp.where(ok, x, 0), axis=axes, keepdims=True)
    mean = s / jnp.maximum(n, 1).astype(x.dtype)
    dev = jnp.where(ok, x - mean, 0)
    return Moments(
        n, mean, jnp.sum(dev * dev, axis=axes, keepdims=True),
        jnp.min(jnp.where(ok, x, jnp.inf), axis=axes, keepdims=True),
        jnp.max(jnp.where(ok, x, -jnp.inf), axis=axes, keepdims=True),
    )


def _pool(m: Moments, axes: tuple[int, ...]) -> Moments:
    """Merge the cells of ``m`` along ``axes`` (Chan et al. 1979, k cells at once).

    With cell counts n_k, means μ_k and M2_k: ``n = Σ n_k``, ``μ = Σ n_k μ_k / n`` and
    ``M2 = Σ M2_k + Σ n_k (μ_k − μ)²``, a sum of non-negative terms (stable); empty
    cells (n_k = 0, μ_k = M2_k = 0) add nothing.
    """
    n = jnp.sum(m.n, axis=axes, keepdims=True)
    w = m.n.astype(m.mean.dtype)
    mean = jnp.sum(w * m.mean, axis=axes, keepdims=True) / jnp.maximum(n, 1).astype(w.dtype)
    d = m.mean - mean
    return Moments(
        n, mean, jnp.sum(m.m2 + w * d * d, axis=axes, keepdims=True),
        jnp.min(m.min, axis=axes, keepdims=True), jnp.max(m.max, axis=axes, keepdims=True),
    )


def _bases(
    chunk: tuple[int, ...], groups: list[tuple[int, ...]]
) -> dict[tuple[int, ...], tuple[int, ...]]:
    """``{group: base}``: the kept dims of the per-cell statistics each group is pooled from.

    Only bases are reduced from the chunk's values; a base drops one dimension, the
    longest in the chunk that its first group does not keep, and serves every later
    group it contains: every axis from two bases, every pair from three.
    """
    nd = len(chunk)
    out: dict[tuple[int, ...], tuple[int, ...]] = {}
    for g in groups:
        base = next((b for b in out.values() if set(g) <= set(b)), None)
        if base is None:
            rest = [d for d in range(nd) if d not in g]
            drop = max(rest, key=lambda d: (chunk[d], d)) if rest else None
            base = tuple(d for d in range(nd) if d != drop)
        out[g] = base
    return out


def _others(kept: tuple[int, ...], nd: int) -> tuple[int, ...]:
    """The dimensions of ``range(nd)`` not in ``kept``: those reduced over."""
    return tuple(i for i in range(nd) if i not in kept)


def _marginals(x: Array, ok: Array, bases: Mapping[tuple[int, ...], tuple[int, ...]],
               pre: str) -> dict[str, Array]:
    """``{pre<group>:{n,mean,m2,min,max}}`` of every group: its base's moments, pooled."""
    nd = x.ndim
    cells = {b: _moments(x, ok, _others(b, nd)) for b in dict.fromkeys(bases.values())}
    p = {}
    for g, b in bases.items():
        m = _pool(cells[b], tuple(d for d in b if d not in g))
        for stat, v in m._asdict().items():
            p[f"{pre}{key(g)}:{stat}"] = jnp.squeeze(v, _others(g, nd))
    return p


def _counts(inside: Array, bases: Mapping[tuple[int, ...], tuple[int, ...]]) -> dict[str, Array]:
    """``{b:<group>: count}`` of the true points of ``inside`` by group, through the bases."""
    nd = inside.ndim
    cells = {b: jnp.sum(inside, axis=_others(b, nd), dtype=jnp.int32, keepdims=True)
             for b in dict.fromkeys(bases.values())}
    return {
        f"b:{key(g)}": jnp.squeeze(
            jnp.sum(cells[b], axis=tuple(d for d in b if d not in g), keepdims=True),
            _others(g, nd))
        for g, b in bases.items()
    }


def _extremes(x: Array, ok: Array, pre: str) -> dict[str, Array]:
    """Min and max of the valid values and the first chunk-flat (C-order) index of each.

    ``argmin`` as a variadic reduction is slow on CPUs; instead the value is reduced
    first, then the smallest index where it occurs (two plain reductions).
    """
    x, ok = x.ravel(), ok.ravel()
    i = jnp.arange(x.size, dtype=jnp.int32)
    lo, hi = jnp.where(ok, x, jnp.inf), jnp.where(ok, x, -jnp.inf)
    vmin, vmax = jnp.min(lo), jnp.max(hi)
    return {
        pre + "imin": jnp.min(jnp.where(lo == vmin, i, x.size)), pre + "vmin": vmin,
        pre + "imax": jnp.min(jnp.where(hi == vmax, i, x.size)), pre + "vmax": vmax,
        pre + "any": jnp.any(ok),
    }


@functools.lru_cache(maxsize=16)
def make_partials_fn(plan: Plan, red: Reductions) -> Callable[..., dict[str, Array]]:
    """Jitted ``f(axes, table, fixed, offsets) -> partials`` of one chunk, cached per
    plan (one per spec) and reductions (frozen), so rerunning or resuming does not recompile.

    Partials (flat dict): ``m:<var>:<group>:{n,mean,m2,min,max}`` over the chunk's
    positions along the kept dims; ``h:<var>`` counts ``[below, bins..., above, nan]``;
    ``e:<var>:{imin,vmin,imax,vmax,any}`` with chunk-flat (C-order) indices;
    ``b:<group>`` band counts. Marginals and band counts of all groups are pooled from
    a few per-cell bases (:func:`_bases`), so the chunk is read a few times, not once
    per group and statistic.
    """
    chunk_fn = chunk_function(plan)
    chunk, shape, nd = plan.chunk_shape, plan.shape, len(plan.shape)
    dtype = jnp.dtype(plan.dtype)
    bases = _bases(chunk, red.groups(plan))
    edges = {h.name: h.edges(plan.dtype) for h in red.histograms}

    def fn(axes: Any, table: Any, fixed: Any, offsets: Array) -> dict[str, Array]:
        out = chunk_fn(axes, table, fixed, offsets)
        valid = jnp.ones(chunk, bool)
        for d in range(nd):
            idx = offsets[d] + jnp.arange(chunk[d], dtype=offsets.dtype)
            valid &= (idx < shape[d]).reshape([chunk[d] if i == d else 1 for i in range(nd)])
        p: dict[str, Array] = {}
        for name in red.marginals:
            x = out[name].astype(dtype)
            p.update(_marginals(x, valid & ~jnp.isnan(x), bases, f"m:{name}:"))
        for h in red.histograms:
            p[f"h:{h.name}"] = _histogram(out[h.name].astype(dtype), valid, edges[h.name], h)
        for name in red.extremes:
            x = out[name].astype(dtype)
            p.update(_extremes(x, valid & ~jnp.isnan(x), f"e:{name}:"))
        if red.band is not None:
            V = out["V"]
            p.update(_counts(valid & (V >= red.band[0]) & (V <= red.band[1]), bases))
        return p

    return jax.jit(fn)


def _uniform_scale(edges: np.ndarray) -> float | None:
    """``s = bins / (edge[-1] − edge[0])`` in the edges' dtype if ``round((x − edge[0])·s)``
    is always one of the two edges of ``x``'s bin, else ``None``.

    With ``D = max_k |edge[k] − edge[0] − k/s|·s`` (how far, in bins, the stored edges
    are from a uniform grid; float64 on the host), the exact ``(x − edge[0])·s`` of an
    ``x`` in bin k lies in ``[k − D, k + 1 + D)``, and computing it in the dtype (eps)
    adds at most ``2·eps·(bins + 1 + D)``; below half a bin in all, rounding gives
    ``k`` or ``k + 1``.
    """
    nb = edges.size - 1
    s = edges.dtype.type(nb / (float(edges[-1]) - float(edges[0])))
    e = edges.astype(np.float64)
    grid = e[0] + np.arange(nb + 1) / float(s)
    reach = float(np.max(np.abs(e - grid))) * float(s)
    eps = float(np.finfo(edges.dtype).eps)
    return s if reach + 4 * eps * (nb + 2 + reach) < 0.5 else None


def _histogram(x: Array, valid: Array, edges: np.ndarray, h: Histogram) -> Array:
    """Counts ``[below, bin 0..bins-1, above, nan]`` of the valid points of ``x``.

    Bin k holds ``edges[k] <= x < edges[k+1]`` exactly. For (nearly) uniform edges
    (:func:`_uniform_scale`) the nearest edge ``j = round((x − edges[0])·s)`` is one of
    the two of x's bin, so ``k = j − [x < edges[j]]`` (one table look-up per point);
    otherwise a binary search of the edges.
    """
    e = jnp.asarray(edges, x.dtype)
    nb = h.bins
    s = _uniform_scale(edges)
    if s is None:
        k = jnp.searchsorted(e, x, side="right").astype(jnp.int32) - 1
    else:
        u = (x - e[0]) * jnp.asarray(s, x.dtype)
        j = jnp.minimum(jnp.round(jnp.where(u > 0, u, 0)), nb).astype(jnp.int32)  # NaN: 0
        k = j - (x < e.at[j].get(mode="promise_in_bounds")).astype(jnp.int32)
    idx = jnp.where(x < e[0], -1, jnp.where(x > e[nb], nb, jnp.clip(k, 0, nb - 1))) + 1
    idx = jnp.where(jnp.isnan(x), nb + 2, idx)
    idx = jnp.where(valid, idx, nb + 3)
    return jnp.bincount(idx.ravel(), length=nb + 4)[: nb + 3].astype(jnp.int32)


# ----------------------------------------------------------------------- on the host
def empty_state(plan: Plan, red: Reductions) -> State:
    """The state of a reduction before any chunk: zero counts, ±inf extremes."""
    shape = plan.shape
    s: State = {"done": np.zeros(plan.chunk_grid, bool)}
    for g in red.groups(plan):
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
    state: State, plan: Plan, red: Reductions, index: tuple[int, ...], p: Mapping[str, Any]
) -> None:
    """Fold the host copy ``p`` of chunk ``index``'s partials into ``state`` in place."""
    chunk, shape = plan.chunk_shape, plan.shape
    start = [i * c for i, c in zip(index, chunk, strict=True)]
    for g in red.groups(plan):
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
