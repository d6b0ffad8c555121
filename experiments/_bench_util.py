"""Small helpers for the benchmarks in ``experiments/``: timing, host description, tables."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np


def block(x: Any) -> Any:
    """Wait until every JAX array in the pytree ``x`` is computed; return ``x``."""
    return jax.block_until_ready(x)


def best_time(
    fn: Callable[[], Any], *, repeats: int, budget_s: float, first_counts: bool = False
) -> tuple[float, int, Any]:
    """Best wall time (s) of ``fn()`` over up to ``repeats`` timed calls.

    Unless ``first_counts`` (for plain numpy code, which has nothing to compile or warm
    up), one untimed call runs first, so that compilation and first-touch allocation
    stay outside the timing. Timed calls stop early once ``budget_s`` seconds have been
    spent on them (at least one timed call always runs). Results are waited for with
    ``jax.block_until_ready``.

    Returns:
        ``(best seconds, number of timed calls, result of the last call)``.
    """
    result = None if first_counts else block(fn())
    times: list[float] = []
    while len(times) < repeats and (not times or sum(times) < budget_s):
        t0 = time.perf_counter()
        result = block(fn())
        times.append(time.perf_counter() - t0)
    return min(times), len(times), result


def host_info() -> list[str]:
    """Lines describing the machine and software that a benchmark ran on."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        affinity = os.cpu_count()
    try:
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover
        load = "n/a"
    return [
        f"jax {jax.__version__}, jaxlib {importlib.metadata.version('jaxlib')}, "
        f"numpy {np.__version__}, "
        f"python {platform.python_version()}",
        f"devices: {jax.devices()}",
        f"CPU: {platform.processor() or platform.machine()}, os.cpu_count()={os.cpu_count()}, "
        f"usable cores={affinity}, load average (1, 5, 15 min) = {load}",
        f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}",
    ]


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured markdown table with columns right-aligned to their widest cell."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = [
        "| " + " | ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|",
    ]
    lines += [
        "| " + " | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows
    ]
    return "\n".join(lines)


def rate(points: int, seconds: float) -> str:
    """Points per second in engineering notation, e.g. ``3.1e+08``."""
    return f"{points / seconds:.2e}"
