"""Run the ``rpx`` command line in a subprocess whose local store writes can be watched,
slowed down, or cut off by a real SIGKILL at an exact write.

Usage: ``python tests/store_harness.py <rpx arguments>`` with, in the environment,

* ``RPX_TEST_LOG``: a file that receives the key of every completed store write;
* ``RPX_TEST_DELAY``: seconds to sleep before every write (keeps a run going);
* ``RPX_TEST_KILL``: ``REGEX:N:before`` or ``REGEX:N:after``: SIGKILL this process just
  before (or just after) the N-th write whose key matches REGEX;
* ``RPX_TEST_STALL``: ``module:function``: that function first writes ``STALL`` to the
  log and then sleeps for ten minutes (a computation that does not return soon).

Only ``LocalStore.set``, ``FsspecStore.set`` and the stalled function are wrapped: the
process, zarr and rpx are otherwise unchanged.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve()


def _install() -> None:
    from zarr.storage import FsspecStore, LocalStore

    log = os.environ.get("RPX_TEST_LOG")
    delay = float(os.environ.get("RPX_TEST_DELAY", "0") or 0)
    kill = os.environ.get("RPX_TEST_KILL")
    pattern, nth, when = None, 0, "before"
    if kill:
        regex, n, when = kill.rsplit(":", 2)
        pattern, nth = re.compile(regex), int(n)
    seen = [0]
    for cls in (LocalStore, FsspecStore):
        _wrap(cls, log, delay, pattern, nth, when, seen)
    _stall(log)


def _wrap(
    cls: type, log: str | None, delay: float, pattern: re.Pattern | None, nth: int, when: str,
    seen: list[int],
) -> None:
    original = cls.set

    async def watched_set(self: object, key: str, value: object) -> None:
        hit = False
        if pattern is not None and pattern.search(key):
            seen[0] += 1
            hit = seen[0] == nth
        if hit and when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        if delay:
            await asyncio.sleep(delay)
        await original(self, key, value)
        if log:
            with open(log, "a") as f:
                f.write(key + "\n")
        if hit and when == "after":
            os.kill(os.getpid(), signal.SIGKILL)

    cls.set = watched_set  # type: ignore[attr-defined]


def _stall(log: str | None) -> None:
    stall = os.environ.get("RPX_TEST_STALL")
    if stall:
        import importlib
        import time

        module_name, name = stall.split(":")
        module = importlib.import_module(module_name)
        target = getattr(module, name)

        def stalled(*args: object, **kw: object) -> object:
            with open(log, "a") as f:  # type: ignore[arg-type]
                f.write("STALL\n")
            time.sleep(600)
            return target(*args, **kw)

        setattr(module, name, stalled)


def run(
    args: Sequence[str], *, log: Path | None = None, delay: float = 0.0, kill: str | None = None,
    timeout: float = 600.0, extra_env: dict | None = None,
) -> subprocess.CompletedProcess:
    """Run ``rpx <args>`` through this harness; return the completed process."""
    return subprocess.run(
        [sys.executable, str(HERE), *map(str, args)],
        env={**env(log=log, delay=delay, kill=kill), **(extra_env or {})},
        capture_output=True, text=True, timeout=timeout,
    )


def env(
    *, log: Path | None = None, delay: float = 0.0, kill: str | None = None,
    stall: str | None = None,
) -> dict:
    out = {k: v for k, v in os.environ.items() if not k.startswith("RPX_TEST_")}
    out["JAX_PLATFORMS"] = "cpu"
    if log is not None:
        out["RPX_TEST_LOG"] = str(log)
    if delay:
        out["RPX_TEST_DELAY"] = str(delay)
    if kill:
        out["RPX_TEST_KILL"] = kill
    if stall:
        out["RPX_TEST_STALL"] = stall
    return out


def command(args: Sequence[str]) -> list[str]:
    return [sys.executable, str(HERE), *map(str, args)]


if __name__ == "__main__":
    _install()
    from rpx.cli import main

    sys.exit(main(sys.argv[1:]))
