"""Options shared by the commands that write stores: resume/overwrite, progress, storage
options and a dask.distributed cluster (a scheduler address or a local cluster)."""


from __future__ import annotations

import argparse
import contextlib
import json
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


def add_storage_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--storage-options", metavar="JSON",
        help='fsspec options for URLs, e.g. \'{"client_kwargs": {"endpoint_url": "..."}}\' '
             "(credentials also come from the usual environment variables)",
    )


def add_run_options(p: argparse.ArgumentParser) -> None:
    """Resume/overwrite, progress, storage and cluster options of the store-writing commands."""
    p.add_argument("--resume", action="store_true", help="require an existing store to resume")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_storage_options(p)
    add_cluster_options(p)


def add_cluster_options(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--scheduler", metavar="ADDRESS", help="run chunk tasks on a dask.distributed cluster"
    )
    where.add_argument(
        "--workers", type=int, metavar="N", help="run chunk tasks on a local cluster of N processes"
    )
    p.add_argument(
        "--chunks-per-task", type=int, default=1, metavar="K", help="chunks per dask task"
    )


def parse_storage_options(text: str | None) -> dict:
    """The ``--storage-options`` JSON object (``{}`` when not given)."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"--storage-options is not valid JSON: {err}") from None
    if not isinstance(value, dict):
        raise ValueError("--storage-options must be a JSON object")
    return value
