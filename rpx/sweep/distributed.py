"""Sweeps and reductions on a dask.distributed cluster.

Sweeps: the client side writes the store's template (exactly as a local sweep does) and
lists the chunks still missing; each task then evaluates a batch of chunks on its
worker's devices and writes them into their chunk-aligned regions, each followed by its
completion marker. Regions never overlap, so no locks are needed, and resume works as
for local sweeps: rerunning skips every chunk that has a marker.

Reductions: each task evaluates a batch of chunks and returns their small partials (no
store access on the workers); the client merges them in chunk order, the order of a
local run, so the results are bit-identical to it, and checkpoints as a local run does.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from rpx.sweep.devices import place_offsets, replicate_inputs
from rpx.sweep.kernel import make_chunk_fn
from rpx.sweep.plan import Plan, make_plan
from rpx.sweep.reduce_ops import Reductions, make_partials_fn
from rpx.sweep.spec import SweepSpec
from rpx.sweep.store import (
    ChunkWriter,
    check_free_space,
    finish_sweep,
    open_store,
    remaining_bytes,
    sweep_store,
)

_WORKER_CACHE: dict[tuple[str, ...], Any] = {}


def run_distributed(
    plan: Plan,
    url: str | Path,
    client: Any,
    *,
    resume: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    storage_options: Mapping[str, Any] | None = None,
    chunks_per_task: int = 1,
    force: bool = False,
) -> dict[str, Any]:
    """Evaluate ``plan`` into ``url`` with the workers of the ``dask.distributed`` ``client``.

    The store must be reachable under the same URL from the client and every worker
    (a shared file system or an object store). Returns the same summary as
    :func:`rpx.sweep.runner.run_sweep`, plus ``tasks``. The client holds the store's
    lock for the whole run; Ctrl-C cancels the pending tasks and raises
    :class:`rpx.sweep.interrupt.Interrupted` (chunks already written are kept).
    """
    from distributed import as_completed

    from rpx.sweep.interrupt import Interrupted, interruptible

    if int(chunks_per_task) != chunks_per_task or chunks_per_task < 1:
        raise ValueError(f"chunks_per_task must be a positive integer, got {chunks_per_task!r}")
    options = dict(storage_options or {})
    left = plan.store_bytes if overwrite else remaining_bytes(plan, url, options)
    check_free_space(url, left, force)
    with sweep_store(
        plan, url, resume=resume, overwrite=overwrite, storage_options=options
    ) as (store, done):
        todo = [i for i in plan.chunk_indices() if i not in done]
        batches = [todo[k : k + chunks_per_task] for k in range(0, len(todo), chunks_per_task)]
        bar = tqdm(total=plan.size, initial=plan.size - sum(plan.chunk_points(i) for i in todo),
                   unit="pt", unit_scale=True, disable=quiet, desc=f"{plan.model_name} sweep",
                   dynamic_ncols=True)
        finished = [len(done)]

        def line() -> str:
            return (f"interrupted after {finished[0]} of {plan.n_chunks} chunks; "
                    "run the same command again to resume")

        # Tasks carry the (small, picklable) spec; each worker resolves it into its own
        # plan once (make_plan is cached per spec).
        futures = client.map(
            sweep_task, batches, spec=plan.spec, url=str(url), storage_options=options,
            pure=False,
        )
        position = {f.key: k for k, f in enumerate(futures)}
        with interruptible(line) as stop:
            try:
                for future in _completed(as_completed(futures), stop):
                    bar.update(future.result())
                    finished[0] += len(batches[position[future.key]])
                if stop.is_set():
                    raise Interrupted(line())
            except BaseException:
                client.cancel(futures)
                raise
            finally:
                bar.close()
        finish_sweep(store, plan)
    return {
        "points": plan.size,
        "chunks": plan.n_chunks,
        "skipped": len(done),
        "written": len(todo),
        "tasks": len(batches),
    }


def _completed(ac: Any, stop: threading.Event | None) -> Iterator[Any]:
    """The futures of the ``as_completed`` iterator ``ac`` as they finish, polling so that
    ``stop`` (Ctrl-C) ends the iteration within a fraction of a second."""
    while not ac.is_empty():
        if stop is not None and stop.is_set():
            return
        batch = ac.next_batch(block=False)
        if not batch:
            time.sleep(0.05)
            continue
        yield from batch


def sweep_task(
    indices: list[tuple[int, ...]], spec: SweepSpec, url: str, storage_options: dict
) -> int:
    """Worker side: evaluate and write the chunks ``indices``; return the points written."""
    import jax

    if spec.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    plan = make_plan(spec)
    kernel, replicas, writer = _worker_setup(plan, url, storage_options)
    outs = []
    for k, index in enumerate(indices):
        device, inputs = replicas[k % len(replicas)]
        outs.append(kernel(*inputs, place_offsets(plan.chunk_offsets(index), device)))
    for index, out in zip(indices, outs, strict=True):
        writer.write(index, plan.chunk_slices(index), out)
    return sum(plan.chunk_points(i) for i in indices)


def _worker_setup(plan: Plan, url: str, storage_options: dict) -> Any:
    """Kernel, device inputs and writer of one sweep, built once per worker process."""
    cache_key = (plan.hash, url, json.dumps(storage_options, sort_keys=True, default=str))
    if cache_key not in _WORKER_CACHE:
        _WORKER_CACHE.clear()
        writer = ChunkWriter(open_store(url, storage_options), plan)
        _WORKER_CACHE[cache_key] = (make_chunk_fn(plan), replicate_inputs(plan), writer)
    return _WORKER_CACHE[cache_key]


def reduce_partials(
    client: Any,
    plan: Plan,
    red: Reductions,
    todo: Sequence[tuple[int, ...]],
    chunks_per_task: int,
    stop: threading.Event | None = None,
) -> Iterator[tuple[tuple[int, ...], dict[str, Any]]]:
    """``(index, partials)`` of every chunk of ``todo``, in that order, computed by tasks.

    Tasks of ``chunks_per_task`` chunks run on the workers of the ``dask.distributed``
    ``client``; results that arrive early wait until every chunk before them is yielded
    (at most the partials of all chunks are held, and partials are small). Pending tasks
    are cancelled if the consumer stops or fails, or when ``stop`` is set (the iteration
    then ends early; the caller checks ``stop``).
    """
    from distributed import as_completed

    batches = [list(todo[k : k + chunks_per_task]) for k in range(0, len(todo), chunks_per_task)]
    futures = client.map(reduce_task, batches, spec=plan.spec, red=red, pure=False)
    position = {f.key: k for k, f in enumerate(futures)}
    ready: dict[int, list[dict[str, Any]]] = {}
    next_batch = 0
    try:
        for future in _completed(as_completed(futures), stop):
            ready[position[future.key]] = future.result()
            while next_batch in ready:
                yield from zip(batches[next_batch], ready.pop(next_batch), strict=True)
                next_batch += 1
    finally:
        if next_batch < len(batches):
            client.cancel(futures)


def reduce_task(
    indices: list[tuple[int, ...]], spec: SweepSpec, red: Reductions
) -> list[dict]:
    """Worker side: the partials (numpy arrays) of the chunks ``indices``."""
    import jax
    import numpy as np

    if spec.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    plan = make_plan(spec)
    fn, replicas = _worker_reduce_setup(plan, red)
    outs = []
    for k, index in enumerate(indices):
        device, (axes, table, fixed) = replicas[k % len(replicas)]
        outs.append(fn(axes, table, fixed, place_offsets(plan.chunk_offsets(index), device)))
    return [{key: np.asarray(v) for key, v in out.items()} for out in outs]


def _worker_reduce_setup(plan: Plan, red: Reductions) -> Any:
    """Partials function and device inputs of one reduction, built once per worker."""
    cache_key = ("reduce", plan.hash, red.to_json())
    if cache_key not in _WORKER_CACHE:
        _WORKER_CACHE.clear()
        _WORKER_CACHE[cache_key] = (make_partials_fn(plan, red), replicate_inputs(plan))
    return _WORKER_CACHE[cache_key]
