"""Run a sweep: evaluate every chunk on the device and stream it into a zarr store.

Evaluation and writing overlap: the main thread dispatches jitted chunk evaluations
(JAX dispatch is asynchronous) into a bounded queue, and writer threads move finished
chunks to the host, write them and then their completion markers. Memory is bounded
by the queue length, not by the size of the space. Chunks are spread round-robin over
every JAX device (:mod:`rpx.sweep.devices`). With a ``dask.distributed`` client, chunks run
as tasks on its workers instead (:mod:`rpx.sweep.distributed`).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from rpx.sweep.devices import place_offsets, replicate_inputs
from rpx.sweep.distributed import run_distributed
from rpx.sweep.kernel import make_chunk_fn
from rpx.sweep.plan import make_plan
from rpx.sweep.spec import SweepSpec, load_spec
from rpx.sweep.store import ChunkWriter, prepare_store

_STOP = object()


def run_sweep(
    spec: SweepSpec | str | Path,
    url: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    storage_options: Mapping[str, Any] | None = None,
    queue_size: int = 3,
    writers: int = 2,
    client: Any = None,
    chunks_per_task: int = 1,
) -> dict[str, Any]:
    """Evaluate ``spec`` into the zarr store at ``url`` (a path or fsspec URL).

    Args:
        spec: a :class:`SweepSpec` or the path of a TOML spec.
        url: where the store lives.
        resume: require an existing store of the same spec and fill its missing chunks.
            (Rerunning on an existing store of the same spec resumes anyway.)
        overwrite: delete an existing store first.
        quiet: no progress bar.
        storage_options: fsspec options for URLs (credentials, endpoint...).
        queue_size: chunks evaluated ahead of the writers, per device (bounds memory).
        writers: writer threads.
        client: a ``dask.distributed.Client``: run chunk tasks on its workers, which
            must reach ``url`` under the same name (shared file system or object store).
        chunks_per_task: chunks evaluated by one task (with ``client``).

    Returns:
        A summary dict: ``points``, ``chunks``, ``skipped`` (already done), ``written``;
        locally also ``devices`` (the number of devices used), with a client ``tasks``.

    Raises:
        ValueError: invalid spec, or a store that cannot be used; nothing is written then.
    """
    if not isinstance(spec, SweepSpec):
        spec = load_spec(spec)
    plan = make_plan(spec)
    if client is not None:
        return run_distributed(
            plan, url, client, resume=resume, overwrite=overwrite, quiet=quiet,
            storage_options=storage_options, chunks_per_task=chunks_per_task,
        )
    replicas = replicate_inputs(plan)
    store, done = prepare_store(
        plan, url, resume=resume, overwrite=overwrite, storage_options=storage_options
    )
    todo = [i for i in plan.chunk_indices() if i not in done]
    n_chunks = plan.n_chunks
    writer = ChunkWriter(store, plan)
    kernel = make_chunk_fn(plan)
    points_done = sum(plan.chunk_points(i) for i in done)
    bar = tqdm(
        total=plan.size,
        initial=points_done,
        unit="pt",
        unit_scale=True,
        disable=quiet,
        desc=f"{plan.model_name} sweep",
        dynamic_ncols=True,
    )
    work: queue.Queue = queue.Queue(maxsize=queue_size * len(replicas))
    errors: list[BaseException] = []
    lock = threading.Lock()
    written = [len(done)]

    def drain() -> None:
        while True:
            item = work.get()
            if item is _STOP:
                return
            index, out = item
            try:
                if not errors:
                    writer.write(index, plan.chunk_slices(index), out)
                    with lock:
                        written[0] += 1
                        bar.update(plan.chunk_points(index))
                        bar.set_postfix_str(f"chunks {written[0]}/{n_chunks}")
            except BaseException as err:  # noqa: BLE001 - re-raised in the main thread
                errors.append(err)

    threads = [threading.Thread(target=drain, daemon=True) for _ in range(max(1, writers))]
    for t in threads:
        t.start()
    try:
        for k, index in enumerate(todo):
            if errors:
                break
            device, inputs = replicas[k % len(replicas)]
            offsets = place_offsets(plan.chunk_offsets(index), device)
            work.put((index, kernel(*inputs, offsets)))
    finally:
        for _ in threads:
            work.put(_STOP)
        for t in threads:
            t.join()
        bar.close()
    if errors:
        raise errors[0]
    return {
        "points": plan.size,
        "chunks": n_chunks,
        "skipped": len(done),
        "written": len(todo),
        "devices": len(replicas),
    }

