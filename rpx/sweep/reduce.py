"""Reduce a parameter space without storing it: streaming on-device reductions to zarr.

Chunks are evaluated and reduced on the devices (:mod:`rpx.sweep.reduce_ops`), their small
partials merged on the host, and only the results are stored: an xarray Dataset in a
zarr 3 store whose coordinates are the sweep's. Resumable: every checkpoint writes the
exact merge state (one float64 vector, including which chunks are merged) as a new array
``rpx_state/g<k>``, then the root attributes naming it (one atomic object), then removes
the previous one. The result arrays are filled when every chunk is merged (root
attribute ``complete``). A rerun of the same spec and reductions continues from the last
checkpoint and, because chunks are merged in the same order, gives bit-identical results.

Like sweep stores (:mod:`rpx.sweep.store`), the template is marked ``rpx_template =
"writing"`` until it is complete (a store cut off earlier is rebuilt by the next run),
one writer holds ``rpx.lock``, and each checkpoint records the BLAKE2b digest of the
state it points at (``rpx_state_digest``, checked on resume and by ``rpx verify``).
Ctrl-C writes a checkpoint and raises :class:`rpx.sweep.interrupt.Interrupted`.
"""

from __future__ import annotations

import collections
import datetime
import hashlib
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import zarr
from tqdm.auto import tqdm
from zarr.core.sync import sync

from rpx.physics.params import attrs as param_attrs
from rpx.sweep import store as _store
from rpx.sweep.devices import place_offsets, replicate_inputs
from rpx.sweep.distributed import reduce_partials
from rpx.sweep.interrupt import Interrupted, interruptible
from rpx.sweep.plan import Plan, make_plan
from rpx.sweep.reduce_ops import (
    Reductions,
    State,
    empty_state,
    key,
    make_partials_fn,
    merge,
    reductions_from_dict,
)
from rpx.sweep.spec import SAMPLE_DIM, SweepSpec, read_toml, spec_from_dict
from rpx.sweep.store import (
    KIND_ATTR,
    StoreLock,
    available_memory,
    check_kind,
    check_target,
    clear_store,
    coordinates,
    digest,
    finish_template,
    human,
    now,
    open_store,
    remove_partial_writes,
    root_attrs,
    store_exists,
    template_complete,
    update_root_attrs,
    variable_attrs,
    write_dataset_template,
)

STATE_GROUP = "rpx_state"
STATE_CHUNK = 1 << 22  # float64 values per chunk of the stored state (32 MiB)


def load_reduce_spec(path: str | Path) -> tuple[SweepSpec, Reductions]:
    """A TOML sweep spec and its optional ``[reduce]`` table (defaults: :class:`Reductions`)."""
    d = read_toml(path)
    red = reductions_from_dict(d.pop("reduce", {}))
    spec = spec_from_dict(d)
    return spec, red.validate(make_plan(spec))


def reduce_hash(spec: SweepSpec | Plan, red: Reductions) -> str:
    """SHA-256 of the space and the reductions: a store resumes only with the same one."""
    return hashlib.sha256((spec.to_json() + red.to_json()).encode()).hexdigest()


# -------------------------------------------------------------------------- results
def results(plan: Plan, red: Reductions, state: State) -> xr.Dataset:
    """The labelled results of ``state`` (without store attributes)."""
    dims = plan.dims
    var_attrs = variable_attrs(plan)
    data: dict[str, xr.Variable] = {}
    coords = dict(coordinates(plan))
    for g in red.groups(plan):
        gdims = tuple(dims[d] for d in g)
        by = "_and_".join(gdims)
        for name in red.marginals:
            pre = f"m:{name}:{key(g)}:"
            units, long = var_attrs[name]["units"], var_attrs[name]["long_name"]
            n = state[pre + "n"]
            some = n > 0
            stats = {
                "count": (n, "1", "number of non-NaN points"),
                "mean": (np.where(some, state[pre + "mean"], np.nan), units, "mean"),
                "var": (
                    np.where(some, state[pre + "m2"] / np.maximum(n, 1), np.nan),
                    f"({units})^2" if "/" in units else f"{units}^2",
                    "variance (ddof 0)",
                ),
                "min": (np.where(some, state[pre + "min"], np.nan), units, "minimum"),
                "max": (np.where(some, state[pre + "max"], np.nan), units, "maximum"),
            }
            for stat, (values, u, what) in stats.items():
                data[f"{name}_{stat}_by_{by}"] = xr.Variable(gdims, values, {
                    "units": u,
                    "long_name": f"{what} of {long} over all but {', '.join(gdims)}",
                })
        if red.band is not None:
            lo, hi = red.band
            per_cell = plan.size / math.prod(plan.shape[d] for d in g)
            data[f"V_band_fraction_by_{by}"] = xr.Variable(
                gdims, state[f"b:{key(g)}"] / per_cell, {
                    "units": "1",
                    "long_name": f"fraction of points with {lo:g} <= V <= {hi:g} mV "
                                 f"over all but {', '.join(gdims)}",
                })
    if red.band is not None:
        lo, hi = red.band
        data["V_band_fraction"] = xr.Variable((), state["b:0"].sum() / plan.size, {
            "units": "1",
            "long_name": f"fraction of the space with {lo:g} <= V <= {hi:g} mV",
            "band": [lo, hi],
        })
    for h in red.histograms:
        units, long = var_attrs[h.name]["units"], var_attrs[h.name]["long_name"]
        edges = h.edges(plan.dtype)
        counts = state[f"h:{h.name}"]
        b, e = f"{h.name}_bin", f"{h.name}_bin_edge"
        coords[b] = xr.Variable(b, (edges[:-1] + edges[1:]) / 2, {
            "units": units, "long_name": f"centre of a {h.name} histogram bin"})
        coords[e] = xr.Variable(e, edges, {
            "units": units,
            "long_name": f"{h.name} histogram bin edges: bin k holds edge[k] <= x < edge[k+1]"
                         " (the last bin includes its upper edge)"})
        data[f"{h.name}_hist"] = xr.Variable(b, counts[1:-2], {
            "units": "1", "long_name": f"number of points per bin of {long}"})
        for i, what in ((0, "below"), (-2, "above"), (-1, "nan")):
            desc = {"below": f"below {edges[0]:g}", "above": f"above {edges[-1]:g}",
                    "nan": "NaN"}[what]
            data[f"{h.name}_{what}"] = xr.Variable((), counts[i], {
                "units": "1", "long_name": f"number of points with {h.name} {desc}"})
    for name in red.extremes:
        units, long = var_attrs[name]["units"], var_attrs[name]["long_name"]
        for which in ("min", "max"):
            value, flat = state[f"e:{name}:{which}"]
            found = flat >= 0
            data[f"{name}_{which}"] = xr.Variable((), value if found else np.nan, {
                "units": units, "long_name": f"{which}imum of {long} over the space"})
            at = np.unravel_index(int(flat), plan.shape) if found else None
            for coord, (units_c, v) in _coords_at(plan, at).items():
                data[f"{name}_arg{which}_{coord}"] = xr.Variable((), v, {
                    "units": units_c, "long_name": f"{coord} where {name} is {which}imal"})
    return xr.Dataset(data, coords)


def _coords_at(
    plan: Plan, at: tuple[int, ...] | None
) -> dict[str, tuple[str, float | int]]:
    """``{coordinate: (units, value)}`` of the point with multi-index ``at`` (NaN: none)."""
    out: dict[str, tuple[str, float | int]] = {}
    for d, a in enumerate(plan.axes):
        out[a.name] = (param_attrs(a.name)["units"], np.nan if at is None else a.values[at[d]])
    if plan.design is not None:
        i = None if at is None else at[-1]
        out[SAMPLE_DIM] = ("1", -1 if i is None else i)
        pts = plan.design_points
        for j, r in enumerate(plan.design.ranges):
            out[r.name] = (param_attrs(r.name)["units"], np.nan if i is None else pts[i, j])
    return out


# ------------------------------------------------------------------- store and state
def _pack(state: State) -> np.ndarray:
    """The whole state as one float64 vector (counts < 2^53 are exact in float64)."""
    return np.concatenate([np.asarray(v, np.float64).ravel() for v in state.values()])


def _unpack(flat: np.ndarray, layout: State) -> State:
    out, i = {}, 0
    for name, v in layout.items():
        out[name] = flat[i : i + v.size].reshape(v.shape).astype(v.dtype)
        i += v.size
    if i != flat.size:
        raise ValueError(f"reduction state has {flat.size} values, expected {i}")
    return out


def _update_root_attrs(store: Any, **values: Any) -> None:
    """Set root attributes in one write of the root metadata (so a kill leaves all or none).

    ``attrs.update`` of zarr-python writes the metadata once per key: a kill between two
    writes would leave the state pointer and ``chunks_done`` disagreeing.
    """
    update_root_attrs(store, **values)


def _remove_stale_states(store: Any, current: str) -> None:
    """Delete every saved state but ``current``: a kill between writing a checkpoint and
    removing the previous one (or during the write) leaves one behind."""

    async def names() -> list[str]:
        return [name async for name in store.list_dir(f"{STATE_GROUP}/")]

    for name in sync(names()):
        if name.startswith("g") and f"{STATE_GROUP}/{name}" != current:
            sync(store.delete_dir(f"{STATE_GROUP}/{name}"))


def _write_checkpoint(store: Any, plan: Plan, state: State, generation: int) -> None:
    """Write the state as ``rpx_state/g<generation>``, then point the root at it."""
    path = f"{STATE_GROUP}/g{generation}"
    flat = _pack(state)
    zarr.create_array(
        store, name=path, data=flat, chunks=(min(flat.size, STATE_CHUNK),), overwrite=True
    )
    _update_root_attrs(
        store, rpx_state=path, rpx_state_digest=digest(flat),
        chunks_done=int(state["done"].sum()), updated=_now(),
    )
    if generation > 0:
        sync(store.delete_dir(f"{STATE_GROUP}/g{generation - 1}"))


def _write_results(store: Any, plan: Plan, red: Reductions, state: State) -> None:
    """Fill the result arrays, mark the store complete and consolidate its metadata."""
    root = zarr.open_group(store, mode="r+", zarr_format=3, use_consolidated=False)
    for name, var in results(plan, red, state).data_vars.items():
        root[name][...] = var.values
    _update_root_attrs(store, complete=True, updated=_now())
    _store.consolidate(store)


def read_state(store: Any, plan: Plan, red: Reductions, attrs: Mapping[str, Any]) -> State:
    """The merge state the root points at, checked against its digest.

    Raises:
        ValueError: the state is missing, does not decode or does not match its digest.
    """
    path = attrs.get("rpx_state")
    try:
        flat = np.asarray(zarr.open_array(store, path=path, mode="r", zarr_format=3)[...])
    except Exception as err:  # noqa: BLE001 - any failure to read it is damage
        raise ValueError(
            f"the saved reduction state {path} cannot be read ({type(err).__name__}); "
            "run `rpx verify STORE --repair`, then the same command again"
        ) from None
    want = attrs.get("rpx_state_digest")
    if want is not None and digest(flat) != want:
        raise ValueError(
            f"the saved reduction state {path} does not match its digest; "
            "run `rpx verify STORE --repair`, then the same command again"
        )
    return _unpack(flat, empty_state(plan, red))


def _prepare(
    plan: Plan, red: Reductions, url: str | Path, store: Any, *, overwrite: bool,
) -> tuple[State, int, bool]:
    """The merge state, its generation and whether the results are written (call under
    the store's lock). A new store, or one whose template was cut off, is (re)built."""
    h = reduce_hash(plan, red)
    exists = store_exists(store)
    attrs = root_attrs(store) if exists else {}
    if exists and not overwrite and template_complete(attrs):
        check_kind(url, attrs, "reduction")
        if attrs.get("reduce_hash") != h or "rpx_state" not in attrs:
            raise ValueError(
                f"{url} holds another reduction (reduce hash "
                f"{attrs.get('reduce_hash', '?')[:12]}, this one {h[:12]}); "
                "use --overwrite to replace it"
            )
        remove_partial_writes(url)
        path = attrs["rpx_state"]
        state = read_state(store, plan, red, attrs)
        generation = int(path.rsplit("/g", 1)[1])
        _remove_stale_states(store, path)
        return state, generation, bool(attrs.get("complete"))
    if exists and not overwrite:
        _store.check_rebuild(url, attrs, "reduction")

    async def keys() -> list[str]:
        return [k async for k in store.list_prefix("")]

    if sync(keys()) != [_store.LOCK_KEY]:
        clear_store(url, store, keep_lock=True)
    from rpx import __version__

    layout = empty_state(plan, red)
    ds = results(plan, red, layout)
    ds.attrs = {
        "title": f"rpx reductions of a {plan.model_name!r} space of {plan.size:,} points",
        KIND_ATTR: "reduction",
        "rpx_version": __version__,
        "model": plan.model_name,
        "preset": plan.preset,
        "spec": plan.to_json(),
        "spec_hash": plan.hash,
        "reductions": red.to_json(),
        "reduce_hash": h,
        "points": plan.size,
        "chunks_total": math.prod(plan.chunk_grid),
        "complete": False,
        "created": now(),
        "Conventions": "CF-1.10",
    }
    write_dataset_template(store, ds)
    _write_checkpoint(store, plan, layout, 0)
    finish_template(store)
    return layout, 0, False


def reduce_memory(plan: Plan, red: Reductions, in_flight: int) -> tuple[int, str]:
    """Host bytes a reduction needs (without allocating anything) and its largest part.

    The state is held about three times (state, packed checkpoint, results); each chunk
    in flight holds its partials (histogram counts, per-cell breakdowns) once more.
    """
    parts: list[tuple[int, str]] = []
    for g in red.groups(plan):
        cells = math.prod(plan.shape[d] for d in g)
        by = "_and_".join(plan.dims[d] for d in g)
        per = 8 * (5 * len(red.marginals) + (1 if red.band is not None else 0))
        parts.append((cells * per, f"breakdown by {by}: {cells:,} cells"))
    for h in red.histograms:
        parts.append(((int(h.bins) + 3) * 8, f"histogram {h.name}: {int(h.bins):,} bins"))
    state = sum(b for b, _ in parts) + plan.n_chunks
    total = 3 * state + in_flight * (state + plan.chunk_bytes)
    largest = max(parts, default=(0, "state"))[1]
    return total, largest


def check_reduce_memory(plan: Plan, red: Reductions, in_flight: int) -> None:
    """Refuse (ValueError) reductions whose state cannot fit in the available memory."""
    need, largest = reduce_memory(plan, red, in_flight)
    have = available_memory()
    if need > have:
        raise ValueError(
            f"reduce: the reductions need about {human(need)} of memory ({largest}) but "
            f"{human(have)} are available; use fewer histogram bins or no --pairs"
        )


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


# ------------------------------------------------------------------------- the run
def run_reduce(
    spec: SweepSpec | str | Path,
    url: str | Path,
    reductions: Reductions | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    storage_options: Mapping[str, Any] | None = None,
    checkpoint_s: float = 30.0,
    queue_size: int = 4,
    client: Any = None,
    chunks_per_task: int = 1,
    force: bool = False,
) -> dict[str, Any]:
    """Reduce every point of ``spec`` on the devices and store the results at ``url``.

    Args:
        spec: a :class:`SweepSpec`, or a TOML path (its ``[reduce]`` table gives the
            reductions unless ``reductions`` is passed).
        url: zarr store path or fsspec URL for the results.
        reductions: what to compute (default :class:`Reductions`).
        resume: require an existing reduction of the same spec and continue it (a rerun
            on an existing store of the same spec and reductions continues anyway).
        overwrite: delete an existing store first.
        quiet: no progress bar.
        storage_options: fsspec options for URLs (credentials, endpoint...).
        checkpoint_s: seconds between checkpoints (0: after every chunk).
        queue_size: chunks in flight per device (bounds device memory).
        client: a ``dask.distributed.Client``: evaluate and reduce chunks in tasks on its
            workers, which return partials only (they need not reach ``url``); the
            results are bit-identical to a local run on the same kind of device.
        chunks_per_task: chunks evaluated by one task (with ``client``).
        force: accepted for symmetry with :func:`rpx.run_sweep` (results are small;
            the memory check is not overridable).

    Returns:
        ``points``, ``chunks``, ``skipped`` (merged before this run), ``reduced``;
        locally also ``devices``, with a client ``tasks``.

    Raises:
        ValueError: invalid spec or reductions, reductions too large for memory, an
            unusable store or one locked by another writer; nothing is written.
        Interrupted: Ctrl-C, after a checkpoint; the same call resumes.
    """
    if not isinstance(spec, SweepSpec):
        spec, file_red = load_reduce_spec(spec)
        reductions = reductions or file_red
    plan = make_plan(spec)
    red = (reductions or Reductions()).validate(plan)
    if checkpoint_s < 0:
        raise ValueError(f"checkpoint_s must be >= 0, got {checkpoint_s}")
    if queue_size < 1:
        raise ValueError(f"queue_size must be >= 1, got {queue_size}")
    if int(chunks_per_task) != chunks_per_task or chunks_per_task < 1:
        raise ValueError(f"chunks_per_task must be a positive integer, got {chunks_per_task!r}")
    check_reduce_memory(plan, red, queue_size)
    check_target(url)
    store = open_store(url, storage_options)
    if resume and not store_exists(store):
        raise ValueError(f"cannot resume: no rpx reduction at {url}")
    with StoreLock(store, url):
        state, generation, complete = _prepare(plan, red, url, store, overwrite=overwrite)
        summary = _fold_all(
            plan, red, store, state, generation, quiet=quiet, checkpoint_s=checkpoint_s,
            queue_size=queue_size, client=client, chunks_per_task=chunks_per_task,
        )
        if not complete:
            _write_results(store, plan, red, state)
    return summary


def _fold_all(
    plan: Plan, red: Reductions, store: Any, state: State, generation: int, *,
    quiet: bool, checkpoint_s: float, queue_size: int, client: Any, chunks_per_task: int,
) -> dict[str, Any]:
    """Merge every missing chunk into ``state``, checkpointing; the run's summary."""
    grid = plan.chunk_grid
    todo = [i for i in plan.chunk_indices() if not state["done"][i]]
    skipped = math.prod(grid) - len(todo)
    bar = tqdm(total=plan.size, initial=plan.size * skipped // math.prod(grid), unit="pt",
               unit_scale=True, disable=quiet, desc=f"{plan.model_name} reduce", dynamic_ncols=True)
    last = time.monotonic()
    dirty = False

    def checkpoint() -> None:
        nonlocal last, generation, dirty
        generation += 1
        _write_checkpoint(store, plan, state, generation)
        last, dirty = time.monotonic(), False

    def line() -> str:
        return (f"interrupted after {int(state['done'].sum())} of {math.prod(grid)} chunks; "
                "run the same command again to resume")

    with interruptible(line) as stop:

        def fold(index: tuple[int, ...], partials: Mapping[str, Any]) -> None:
            nonlocal dirty
            merge(state, plan, red, index, {k: np.asarray(v) for k, v in partials.items()})
            dirty = True
            bar.update(plan.chunk_points(index))
            if time.monotonic() - last >= checkpoint_s:
                checkpoint()
            if stop.is_set():
                raise Interrupted(line())

        summary: dict[str, Any] = {
            "points": plan.size, "chunks": math.prod(grid), "skipped": skipped,
            "reduced": len(todo),
        }
        try:
            if client is None:
                summary["devices"] = _reduce_locally(plan, red, todo, queue_size, fold)
            else:
                for index, partials in reduce_partials(
                    client, plan, red, todo, chunks_per_task, stop
                ):
                    fold(index, partials)
                if stop.is_set():
                    raise Interrupted(line())
                summary["tasks"] = math.ceil(len(todo) / chunks_per_task)
        except Interrupted:
            if dirty:
                checkpoint()
            raise
        finally:
            bar.close()
        if dirty:
            checkpoint()
    return summary


def _reduce_locally(
    plan: Plan, red: Reductions | None, todo: list[tuple[int, ...]], queue_size: int,
    fold: Any, *, fn: Any = None, inputs: Any = None,
) -> int:
    """Evaluate ``todo`` on the local devices, folding partials in order; the device count.

    Chunks are dispatched round-robin over the devices and folded in dispatch order,
    keeping at most ``queue_size`` chunks in flight per device. ``fn(axes, table, fixed,
    offsets)`` (default: the partials of ``red``) and its ``(axes, table, fixed)``
    (default: the plan's, see :func:`rpx.sweep.kernel.device_inputs`) may be given
    instead, e.g. with posterior draws as batched fixed values
    (:mod:`rpx.analysis.predictive`).
    """
    if inputs is None:
        replicas = replicate_inputs(plan)
    else:
        import jax

        replicas = [(d, jax.device_put(inputs, d)) for d in jax.devices()]
    fn = make_partials_fn(plan, red) if fn is None else fn
    pending: collections.deque = collections.deque()
    for k, index in enumerate(todo):
        device, (axes, table, fixed) = replicas[k % len(replicas)]
        offsets = place_offsets(plan.chunk_offsets(index), device)
        pending.append((index, fn(axes, table, fixed, offsets)))
        if len(pending) > queue_size * len(replicas):
            fold(*pending.popleft())
    while pending:
        fold(*pending.popleft())
    return len(replicas)


def describe_reduce(
    spec: SweepSpec, url: str | Path, reductions: Reductions | None = None,
    *, queue_size: int = 4,
) -> str:
    """What :func:`run_reduce` would do (a dry run): points, chunks, the reductions'
    memory and result size. Writes nothing; allocates nothing of the state's size."""
    import jax

    plan = make_plan(spec)
    red = (reductions or Reductions()).validate(plan)
    n_dev = len(jax.devices())
    need, largest = reduce_memory(plan, red, queue_size * n_dev)
    state, _ = reduce_memory(plan, red, 0)
    dims = "  ".join(f"{d}={n:,}" for d, n in zip(plan.dims, plan.shape, strict=True))
    have = available_memory()
    verdict = "fits" if need <= have else "would be refused"
    return "\n".join([
        f"points  {plan.size:,}  ({dims}); the cube is not stored",
        f"chunks  {plan.n_chunks:,} of {' x '.join(map(str, plan.chunk_shape))}",
        f"store   about {human(state / 3)} of results and saved state",
        f"memory  about {human(need)} on the host (largest part: {largest}); "
        f"{human(have)} available: {verdict}",
        "dry run: nothing written",
    ])
