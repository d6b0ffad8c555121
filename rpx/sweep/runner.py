"""Run a sweep: evaluate every chunk on the device and stream it into a zarr store.

Evaluation and writing overlap: the main thread dispatches jitted chunk evaluations
(JAX dispatch is asynchronous) into a bounded queue, and writer threads move finished
chunks to the host, write them and then their completion markers. Memory is bounded
by the queue length, not by the size of the space. Chunks are spread round-robin over
every JAX device (:mod:`rpx.sweep.devices`). With a ``dask.distributed`` client, chunks run
as tasks on its workers instead (:mod:`rpx.sweep.distributed`).
"""

from __future__ import annotations

import itertools
import math
import queue
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from rpx.sweep.devices import place_offsets, replicate_inputs
from rpx.sweep.kernel import chunk_offsets, chunk_slices, make_chunk_fn
from rpx.sweep.spec import SweepSpec, load_spec
from rpx.sweep.store import ChunkWriter, done_chunks, open_target, read_spec, write_template

_STOP = object()


def _version() -> str:
    from rpx import __version__

    return __version__


def prepare_store(
    spec: SweepSpec,
    url: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    storage_options: Mapping[str, Any] | None = None,
) -> tuple[Any, set[tuple[int, ...]]]:
    """Open or create the store for ``spec``; return it with the set of finished chunks.

    A missing store is created. An existing store is resumed when it was created by
    the same spec (same hash), and refused otherwise unless ``overwrite``. With
    ``resume=True`` the store must already exist.
    """
    store, exists = open_target(
        url, storage_options, resume=resume, overwrite=overwrite, what="store"
    )
    if exists:
        old, attrs = read_spec(store)
        if attrs.get("spec_hash") != spec.hash():
            raise ValueError(
                f"{url} holds a different sweep (spec hash {attrs.get('spec_hash', '?')[:12]}, "
                f"this spec {spec.hash()[:12]}); use --overwrite to replace it"
            )
        return store, done_chunks(store)
    write_template(store, spec, _version())
    return store, set()


def iter_chunks(spec: SweepSpec) -> Iterator[tuple[int, ...]]:
    """Grid indices of all chunks in C order."""
    return itertools.product(*(range(n) for n in spec.chunk_grid))


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
    spec.validate()
    if client is not None:
        from rpx.sweep.distributed import run_distributed

        return run_distributed(
            spec, url, client, resume=resume, overwrite=overwrite, quiet=quiet,
            storage_options=storage_options, chunks_per_task=chunks_per_task,
        )
    replicas = replicate_inputs(spec)
    store, done = prepare_store(
        spec, url, resume=resume, overwrite=overwrite, storage_options=storage_options
    )
    todo = [i for i in iter_chunks(spec) if i not in done]
    n_chunks = math.prod(spec.chunk_grid)
    writer = ChunkWriter(store, spec)
    kernel = make_chunk_fn(spec)
    points_done = sum(_points(spec, i) for i in done)
    bar = tqdm(
        total=spec.size,
        initial=points_done,
        unit="pt",
        unit_scale=True,
        disable=quiet,
        desc=f"{spec.model} sweep",
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
                    writer.write(index, chunk_slices(spec, index), out)
                    with lock:
                        written[0] += 1
                        bar.update(_points(spec, index))
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
            offsets = place_offsets(chunk_offsets(spec, index), device)
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
        "points": spec.size,
        "chunks": n_chunks,
        "skipped": len(done),
        "written": len(todo),
        "devices": len(replicas),
    }


def _points(spec: SweepSpec, index: tuple[int, ...]) -> int:
    return math.prod(s.stop - s.start for s in chunk_slices(spec, index))
