"""Run a sweep: evaluate every chunk on the device and stream it into a zarr store.

Evaluation and writing overlap: the main thread dispatches jitted chunk evaluations
(JAX dispatch is asynchronous) into a bounded queue, and writer threads move finished
chunks to the host, write them and then their completion markers. Memory is bounded
by the queue length, not by the size of the space. Chunks are spread round-robin over
every JAX device (:mod:`rpx.sweep.devices`). With a ``dask.distributed`` client, chunks run
as tasks on its workers instead (:mod:`rpx.sweep.distributed`).

The run holds the store's lock throughout (:class:`rpx.sweep.store.StoreLock`). Ctrl-C
stops dispatching, drops the chunks in flight and raises
:class:`rpx.sweep.interrupt.Interrupted` ("interrupted after k of n chunks; ...");
everything written so far is kept and the same call resumes it. When every chunk is
done, the per-chunk statistics are merged into the root attributes.
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
from rpx.sweep.interrupt import Interrupted, interruptible
from rpx.sweep.kernel import make_chunk_fn
from rpx.sweep.plan import Plan, make_plan
from rpx.sweep.spec import SweepSpec, load_spec
from rpx.sweep.store import (
    ChunkWriter,
    check_free_space,
    finish_sweep,
    remaining_bytes,
    sweep_store,
)

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
    force: bool = False,
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
        force: write to a local target even when its free space is below the store's
            (uncompressed) size estimate.

    Returns:
        A summary dict: ``points``, ``chunks``, ``skipped`` (already done), ``written``;
        locally also ``devices`` (the number of devices used), with a client ``tasks``.

    Raises:
        ValueError: invalid spec, a store that cannot be used (another kind, another
            spec, not enough free space), or one locked by another writer
            (:class:`rpx.sweep.store.StoreLocked`); nothing is written then.
        Interrupted: Ctrl-C; the store is resumable.
    """
    if not isinstance(spec, SweepSpec):
        spec = load_spec(spec)
    plan = make_plan(spec)
    if client is not None:
        return run_distributed(
            plan, url, client, resume=resume, overwrite=overwrite, quiet=quiet,
            storage_options=storage_options, chunks_per_task=chunks_per_task, force=force,
        )
    left = plan.store_bytes if overwrite else remaining_bytes(plan, url, storage_options)
    check_free_space(url, left, force)
    replicas = replicate_inputs(plan)
    with sweep_store(
        plan, url, resume=resume, overwrite=overwrite, storage_options=storage_options
    ) as (store, done):
        todo = [i for i in plan.chunk_indices() if i not in done]
        written = _run_local(plan, store, done, todo, replicas, quiet, queue_size, writers)
        finish_sweep(store, plan)
    return {
        "points": plan.size,
        "chunks": plan.n_chunks,
        "skipped": len(done),
        "written": written,
        "devices": len(replicas),
    }


def interrupted_line(k: int, n: int) -> str:
    return f"interrupted after {k} of {n} chunks; run the same command again to resume"


def _run_local(
    plan: Plan, store: Any, done: set, todo: list, replicas: list, quiet: bool,
    queue_size: int, writers: int,
) -> int:
    """Evaluate and write ``todo``; the number of chunks written (raises Interrupted)."""
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
    finished = [len(done)]

    with interruptible(lambda: interrupted_line(finished[0], n_chunks)) as stop:

        def drain() -> None:
            while True:
                item = work.get()
                if item is _STOP:
                    return
                index, out = item
                try:
                    if not errors and not stop.is_set():
                        writer.write(index, plan.chunk_slices(index), out)
                        with lock:
                            finished[0] += 1
                            bar.update(plan.chunk_points(index))
                            bar.set_postfix_str(f"chunks {finished[0]}/{n_chunks}")
                except BaseException as err:  # noqa: BLE001 - re-raised in the main thread
                    errors.append(err)

        threads = [threading.Thread(target=drain, daemon=True) for _ in range(max(1, writers))]
        for t in threads:
            t.start()
        try:
            for k, index in enumerate(todo):
                if errors or stop.is_set():
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
        if stop.is_set():
            raise Interrupted(interrupted_line(finished[0], n_chunks))
    return finished[0] - len(done)


def describe_sweep(
    spec: SweepSpec | str | Path,
    url: str | Path,
    *,
    storage_options: Mapping[str, Any] | None = None,
    queue_size: int = 3,
    writers: int = 2,
) -> str:
    """What :func:`run_sweep` would do (a dry run): points, chunks, the estimated store
    size against the free space, the memory needed and what an existing store holds.
    Writes nothing."""
    import jax

    from rpx.sweep.store import available_memory, free_bytes, human, remaining_bytes

    if not isinstance(spec, SweepSpec):
        spec = load_spec(spec)
    plan = make_plan(spec)
    n_dev = len(jax.devices())
    dims = "  ".join(f"{d}={n:,}" for d, n in zip(plan.dims, plan.shape, strict=True))
    types = ", ".join(
        f"{name} {v.dtype(plan.dtype).name}" for name, v in plan.variables.items()
    )
    left = remaining_bytes(plan, url, storage_options)
    free = free_bytes(url)
    mem = plan.run_memory(queue_size * n_dev + max(1, writers))
    lines = [
        f"points  {plan.size:,}  ({dims})",
        f"chunks  {plan.n_chunks:,} of {' x '.join(map(str, plan.chunk_shape))} "
        f"({human(plan.chunk_bytes)} each, uncompressed)",
        f"store   up to {human(plan.store_bytes)} uncompressed ({types}; zstd-compressed "
        "on disk)",
    ]
    if left != plan.store_bytes:
        lines.append(f"resume  {human(left)} still to write (an existing store of this sweep)")
    if free is not None:
        verdict = "fits" if left <= free else "would be refused without --force"
        lines.append(f"disk    {human(free)} free at the target: {verdict}")
    lines.append(
        f"memory  about {human(mem)} on the host ({queue_size * n_dev} chunks in flight on "
        f"{n_dev} device(s), {max(1, writers)} writers); {human(available_memory())} available"
    )
    lines.append("dry run: nothing written")
    return "\n".join(lines)
