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
import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from rpx.sweep.spec import SweepSpec

_WORKER_CACHE: dict[tuple[str, ...], Any] = {}


def run_distributed(
    spec: SweepSpec,
    url: str | Path,
    client: Any,
    *,
    resume: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    storage_options: Mapping[str, Any] | None = None,
    chunks_per_task: int = 1,
) -> dict[str, Any]:
    """Evaluate ``spec`` into ``url`` with the workers of the ``dask.distributed`` ``client``.

    The store must be reachable under the same URL from the client and every worker
    (a shared file system or an object store). Returns the same summary as
    :func:`rpx.sweep.runner.run_sweep`, plus ``tasks``.
    """
    from distributed import as_completed

    from rpx.sweep.runner import iter_chunks, prepare_store

    if int(chunks_per_task) != chunks_per_task or chunks_per_task < 1:
        raise ValueError(f"chunks_per_task must be a positive integer, got {chunks_per_task!r}")
    spec.validate()
    options = dict(storage_options or {})
    _, done = prepare_store(
        spec, url, resume=resume, overwrite=overwrite, storage_options=options
    )
    todo = [i for i in iter_chunks(spec) if i not in done]
    batches = [todo[k : k + chunks_per_task] for k in range(0, len(todo), chunks_per_task)]
    bar = tqdm(total=spec.size, initial=spec.size - sum(_points(spec, i) for i in todo),
               unit="pt", unit_scale=True, disable=quiet, desc=f"{spec.model} sweep",
               dynamic_ncols=True)
    futures = client.map(
        sweep_task, batches, spec=spec, url=str(url), storage_options=options, pure=False
    )
    try:
        for future in as_completed(futures):
            bar.update(future.result())
    except BaseException:
        client.cancel(futures)
        raise
    finally:
        bar.close()
    return {
        "points": spec.size,
        "chunks": math.prod(spec.chunk_grid),
        "skipped": len(done),
        "written": len(todo),
        "tasks": len(batches),
    }


def sweep_task(
    indices: list[tuple[int, ...]], spec: SweepSpec, url: str, storage_options: dict
) -> int:
    """Worker side: evaluate and write the chunks ``indices``; return the points written."""
    import jax

    from rpx.sweep.devices import place_offsets
    from rpx.sweep.kernel import chunk_offsets, chunk_slices

    if spec.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    kernel, replicas, writer = _worker_setup(spec, url, storage_options)
    outs = []
    for k, index in enumerate(indices):
        device, inputs = replicas[k % len(replicas)]
        outs.append(kernel(*inputs, place_offsets(chunk_offsets(spec, index), device)))
    for index, out in zip(indices, outs, strict=True):
        writer.write(index, chunk_slices(spec, index), out)
    return sum(_points(spec, i) for i in indices)


def _worker_setup(spec: SweepSpec, url: str, storage_options: dict) -> Any:
    """Kernel, device inputs and writer of one sweep, built once per worker process."""
    from rpx.sweep.devices import replicate_inputs
    from rpx.sweep.kernel import make_chunk_fn
    from rpx.sweep.store import ChunkWriter, open_store

    cache_key = (spec.hash(), url, json.dumps(storage_options, sort_keys=True, default=str))
    if cache_key not in _WORKER_CACHE:
        _WORKER_CACHE.clear()
        writer = ChunkWriter(open_store(url, storage_options), spec)
        _WORKER_CACHE[cache_key] = (make_chunk_fn(spec), replicate_inputs(spec), writer)
    return _WORKER_CACHE[cache_key]


def reduce_partials(
    client: Any,
    spec: SweepSpec,
    red: Any,
    todo: Sequence[tuple[int, ...]],
    chunks_per_task: int,
) -> Iterator[tuple[tuple[int, ...], dict[str, Any]]]:
    """``(index, partials)`` of every chunk of ``todo``, in that order, computed by tasks.

    Tasks of ``chunks_per_task`` chunks run on the workers of the ``dask.distributed``
    ``client``; results that arrive early wait until every chunk before them is yielded
    (at most the partials of all chunks are held, and partials are small). Pending tasks
    are cancelled if the consumer stops or fails.
    """
    from distributed import as_completed

    batches = [list(todo[k : k + chunks_per_task]) for k in range(0, len(todo), chunks_per_task)]
    futures = client.map(reduce_task, batches, spec=spec, red=red, pure=False)
    position = {f.key: k for k, f in enumerate(futures)}
    ready: dict[int, list[dict[str, Any]]] = {}
    next_batch = 0
    try:
        for future in as_completed(futures):
            ready[position[future.key]] = future.result()
            while next_batch in ready:
                yield from zip(batches[next_batch], ready.pop(next_batch), strict=True)
                next_batch += 1
    finally:
        if next_batch < len(batches):
            client.cancel(futures)


def reduce_task(indices: list[tuple[int, ...]], spec: SweepSpec, red: Any) -> list[dict]:
    """Worker side: the partials (numpy arrays) of the chunks ``indices``."""
    import jax
    import numpy as np

    from rpx.sweep.devices import place_offsets
    from rpx.sweep.kernel import chunk_offsets

    if spec.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    fn, replicas = _worker_reduce_setup(spec, red)
    outs = []
    for k, index in enumerate(indices):
        device, (axes, table, fixed) = replicas[k % len(replicas)]
        outs.append(fn(axes, table, fixed, place_offsets(chunk_offsets(spec, index), device)))
    return [{key: np.asarray(v) for key, v in out.items()} for out in outs]


def _worker_reduce_setup(spec: SweepSpec, red: Any) -> Any:
    """Partials function and device inputs of one reduction, built once per worker."""
    from rpx.sweep.devices import replicate_inputs
    from rpx.sweep.reduce_ops import make_partials_fn

    cache_key = ("reduce", spec.hash(), red.to_json())
    if cache_key not in _WORKER_CACHE:
        _WORKER_CACHE.clear()
        _WORKER_CACHE[cache_key] = (make_partials_fn(spec, red), replicate_inputs(spec))
    return _WORKER_CACHE[cache_key]


def _points(spec: SweepSpec, index: tuple[int, ...]) -> int:
    from rpx.sweep.kernel import chunk_slices

    return math.prod(s.stop - s.start for s in chunk_slices(spec, index))
