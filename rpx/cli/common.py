"""Options shared by the commands that write stores: resume/overwrite, dry run, force,
progress, storage options, a dask.distributed cluster (a scheduler address or a local
cluster) and ``--debug``; :func:`command` gives them one way to fail and to stop.

Failures of the outside world (an unreachable scheduler or object-store endpoint, a
missing bucket, a read-only directory, a full disk) print one line naming the cause and
exit 1; ``--debug`` adds the traceback. Ctrl-C prints one line and exits 130. Python
warnings print as one line each, ``rpx: warning: <message>``.
"""


from __future__ import annotations

import argparse
import contextlib
import errno
import functools
import json
import logging
import sys
import tomllib
import traceback
import warnings
from collections.abc import Callable, Iterator
from typing import Any

# Seconds a command waits after Ctrl-C for its run to stop at a safe point.
INTERRUPT_GRACE_S = 5.0
# Seconds to wait for a dask scheduler to answer.
SCHEDULER_TIMEOUT_S = 10


class OutsideFailure(Exception):
    """A failure outside rpx (network, permissions, disk), with a one-line cause."""


def command(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Wrap a command: Ctrl-C → its one line and exit 130 (the run stops at a safe point
    within :data:`INTERRUPT_GRACE_S` seconds); failures other than bad input
    (``ValueError``, exit 2) → ``rpx: error: <cause>`` and exit 1, the traceback only
    with ``--debug``; warnings → one line each (:func:`warning_lines`)."""

    @functools.wraps(fn)
    def run(args: argparse.Namespace) -> int:
        from rpx.sweep import interrupt

        interrupt.HARD_EXIT_S = INTERRUPT_GRACE_S
        try:
            with warning_lines():
                return fn(args)
        except ValueError:
            if getattr(args, "debug", False):
                traceback.print_exc()
            raise
        except KeyboardInterrupt as err:
            print(f"rpx: {str(err) or 'interrupted'}", file=sys.stderr)
            return 130
        except BrokenPipeError:
            raise  # the reader of the output left (`| head`): rpx.cli.main exits quietly
        except Exception as err:  # noqa: BLE001 - one line, the traceback with --debug
            return _fail(args, err)

    return run


@contextlib.contextmanager
def warning_lines() -> Iterator[None]:
    """Within: every Python warning shown (the filters decide which, as usual) is
    printed as one line ``rpx: warning: <message>`` on standard error, its whitespace
    collapsed, without the file, line number, category and source line that the
    default display adds. The previous display and filters are restored on exit."""

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: Any = None, line: str | None = None) -> None:
        text = " ".join(str(message).split()) or category.__name__
        try:
            print(f"rpx: warning: {text}", file=sys.stderr, flush=True)
        except (OSError, ValueError):  # a closed standard error: nothing to tell
            pass

    with warnings.catch_warnings():
        warnings.showwarning = show
        # rpx's own markers and lock in a store are plain objects, not zarr nodes; zarr
        # warns about them whenever it walks the hierarchy (rpx.sweep.store filters this
        # at import; here too, in case that filter was set inside a context since left).
        warnings.filterwarnings(
            "ignore", message=".*is not recognized as a component of a Zarr hierarchy"
        )
        yield


def _fail(args: argparse.Namespace, err: BaseException) -> int:
    if getattr(args, "debug", False):
        traceback.print_exc()
        hint = ""
    else:
        hint = " (--debug shows the traceback)"
    where = getattr(args, "output", None) or getattr(args, "store", None)
    print(f"rpx: error: {outside_cause(err, where)}{hint}", file=sys.stderr)
    return 1


def outside_cause(err: BaseException, where: str | None = None) -> str:
    """One line naming the cause of a failure (permission, disk full, network, missing
    credentials...); ``where`` is the store URL the command was using, when known."""
    if isinstance(err, OutsideFailure):
        return str(err)
    names = {cls.__name__ for cls in type(err).__mro__}
    if names & {"NoCredentialsError", "PartialCredentialsError"} or (
        "unable to locate credentials" in str(err).lower()
    ):
        target = f" for {where}" if where else ""
        return (f"no credentials{target}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                "(or AWS_PROFILE), or pass them with --storage-options "
                "'{\"key\": ..., \"secret\": ...}'")
    if isinstance(err, BrokenPipeError) or getattr(err, "errno", None) == errno.EPIPE:
        # Not an endpoint failure: a pipe or socket closed by its reader.
        return f"broken pipe: {getattr(err, 'strerror', None) or err}"
    where = getattr(err, "filename", None)
    at = f" at {where}" if where else ""
    if isinstance(err, PermissionError) or getattr(err, "errno", None) in (
        errno.EACCES, errno.EPERM, errno.EROFS,
    ):
        return f"permission denied{at}: {getattr(err, 'strerror', None) or err}"
    if getattr(err, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
        return f"disk full{at}: {getattr(err, 'strerror', None) or err}"
    module = type(err).__module__ or ""
    text = " ".join(str(err).split()) or type(err).__name__
    if isinstance(err, FileNotFoundError) and "bucket" in text.lower():
        return f"bucket not found: {text}"
    if module.startswith(("botocore", "aiobotocore", "aiohttp")) or isinstance(
        err, ConnectionError
    ):
        return f"cannot reach the object store endpoint: {text}"
    return f"{type(err).__name__}: {text}"


@contextlib.contextmanager
def cluster_client(scheduler: str | None, workers: int | None) -> Iterator[Any]:
    """A client of the scheduler at ``scheduler``, or of a new local cluster of
    ``workers`` single-threaded worker processes (closed on exit)."""
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout=SCHEDULER_TIMEOUT_S)
        except (OSError, TimeoutError) as err:
            raise OutsideFailure(
                f"cannot reach the dask scheduler at {scheduler} "
                f"({' '.join(str(err).split()) or type(err).__name__})"
            ) from err
        with client:
            yield client
        return
    if workers is None or workers < 1:
        raise ValueError(f"--workers must be a positive integer, got {workers!r}")
    with (
        # Workers log only errors: a cancelled task (Ctrl-C) is not worth a warning line.
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True,
            silence_logs=logging.ERROR,
        ) as cluster,
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
    """Resume/overwrite, dry run, force, progress, storage, cluster and debug options of
    the store-writing commands."""
    mode = p.add_mutually_exclusive_group()  # --resume and --overwrite exclude each other
    mode.add_argument("--resume", action="store_true", help="require an existing store to resume")
    mode.add_argument("--overwrite", action="store_true", help="replace an existing store")
    p.add_argument(
        "--dry-run", action="store_true",
        help="print points, chunks, estimated store size and memory, then exit writing nothing",
    )
    p.add_argument(
        "--force", action="store_true",
        help="write even when the estimated store size exceeds the free disk space",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_storage_options(p)
    add_cluster_options(p)
    add_debug_option(p)


def add_debug_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--debug", action="store_true", help="print the full traceback of a failure"
    )


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


def check_run_options(args: argparse.Namespace) -> dict:
    """Check the run options of a store-writing command before any heavy import; return
    the parsed ``--storage-options``."""
    workers = getattr(args, "workers", None)
    if workers is not None and workers < 1:
        raise ValueError(f"--workers must be a positive integer, got {workers}")
    chunks_per_task = getattr(args, "chunks_per_task", 1)
    if chunks_per_task is not None and chunks_per_task < 1:
        raise ValueError(f"--chunks-per-task must be a positive integer, got {chunks_per_task}")
    return parse_storage_options(getattr(args, "storage_options", None))


def read_spec_file(path: str) -> dict:
    """The contents of a TOML spec file (same messages as :func:`rpx.sweep.spec.read_toml`),
    read without importing JAX so that a missing or malformed file is reported at once."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path}: not valid TOML: {err}") from None
    except OSError as err:
        raise ValueError(f"cannot read spec {path}: {err}") from None


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
