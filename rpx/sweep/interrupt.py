"""Ctrl-C (SIGINT) that stops a run at a safe point, promptly, with one line.

Python runs signal handlers only between bytecodes of the main thread, so a main thread
waiting inside a long compiled computation, or a ``KeyboardInterrupt`` raised inside a
garbage-collection callback (where Python prints and drops it), can delay or lose a
Ctrl-C. :func:`interruptible` therefore installs a handler that only sets a flag, and a
wake-up pipe (``signal.set_wakeup_fd``, written by the C-level handler at once) read by a
watcher thread. Runs check the flag between chunks and stop with :class:`Interrupted`.
On the command line (:data:`HARD_EXIT_S` set), a run that has not stopped that many
seconds after the signal, or a second Ctrl-C, ends the process with exit status 130
after printing the line and releasing store locks; the stores are crash-safe, so this
loses at most the chunks in flight.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator

# Seconds the command line waits for a run to stop before it exits (None: never).
HARD_EXIT_S: float | None = None
# Called before a hard exit (store locks register their release here).
ON_HARD_EXIT: list[Callable[[], None]] = []


class Interrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C at a safe point; ``str()`` is the line to print."""


def hard_exit(line: str) -> None:
    """Print ``line``, release registered locks and end the process with status 130."""
    with contextlib.suppress(Exception):
        print(f"rpx: {line}", file=sys.stderr, flush=True)
    for fn in list(ON_HARD_EXIT):
        with contextlib.suppress(Exception):
            fn()
    os._exit(130)


@contextlib.contextmanager
def interruptible(
    message: Callable[[], str], grace: float | None = None
) -> Iterator[threading.Event]:
    """Yield an event set by Ctrl-C while the block runs; ``message()`` gives the line
    printed on a hard exit, which comes ``grace`` seconds after the signal (default
    :data:`HARD_EXIT_S`; only where :data:`HARD_EXIT_S` is set, i.e. on the command
    line). Outside the main thread it yields an event nothing sets."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    count = [0]
    finished = threading.Event()

    def handler(signum: int, frame: object) -> None:
        count[0] += 1
        stop.set()
        if count[0] > 1 and HARD_EXIT_S is None:
            raise KeyboardInterrupt

    def watch() -> None:
        seen = 0
        while True:
            try:
                data = os.read(read_fd, 64)
            except OSError:
                return
            if not data or finished.is_set():
                return
            seen += data.count(bytes([signal.SIGINT]))
            if not seen:
                continue
            stop.set()
            if HARD_EXIT_S is None:
                continue
            wait = HARD_EXIT_S if grace is None else grace
            if seen > 1 or not finished.wait(wait):
                if not finished.is_set():
                    hard_exit(message())

    previous = signal.signal(signal.SIGINT, handler)
    previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    watcher = threading.Thread(target=watch, daemon=True, name="rpx-interrupt")
    watcher.start()
    try:
        yield stop
    finally:
        finished.set()
        signal.set_wakeup_fd(previous_fd)
        signal.signal(signal.SIGINT, previous)
        os.close(write_fd)
        watcher.join(timeout=1.0)
        with contextlib.suppress(OSError):
            os.close(read_fd)
