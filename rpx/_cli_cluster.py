"""A dask.distributed client for the command line: a scheduler address or a local cluster."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator
from typing import Any


@contextlib.contextmanager
def cluster_client(scheduler: str | None, workers: int | None) -> Iterator[Any]:
    """A client of the scheduler at ``scheduler``, or of a new local cluster of
    ``workers`` single-threaded worker processes (closed on exit)."""
    from distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    if workers is None or workers < 1:
        raise ValueError(f"--workers must be a positive integer, got {workers!r}")
    with (
        LocalCluster(n_workers=workers, threads_per_worker=1, processes=True) as cluster,
        Client(cluster) as client,
    ):
        yield client


def run_maybe_distributed(
    args: argparse.Namespace, fn: Callable[..., Any], *a: Any, **kw: Any
) -> Any:
    """``fn(*a, **kw)``, on a dask cluster (``client=``, ``chunks_per_task=``) when the
    command line names ``--scheduler`` or ``--workers``."""
    if args.scheduler or args.workers is not None:
        with cluster_client(args.scheduler, args.workers) as client:
            return fn(*a, client=client, chunks_per_task=args.chunks_per_task, **kw)
    return fn(*a, **kw)
