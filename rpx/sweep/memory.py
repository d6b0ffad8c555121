"""Host memory available to a run, and refusals of sizes it cannot hold."""

from __future__ import annotations

import os
from pathlib import Path


def available_memory() -> int:
    """Bytes of memory available to this process (MemAvailable, else physical memory)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def human(n: float) -> str:
    """Bytes in B/kB/MB/GB/TB (powers of 1000)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} PB"


def check_fits(what: str, count: int, bytes_each: int) -> None:
    """Refuse (ValueError, before allocating anything) ``count`` items of ``bytes_each``
    bytes that would not fit in the available memory; the message names the number."""
    need, have = int(count) * bytes_each, available_memory()
    if need > have:
        raise ValueError(
            f"{what}: {int(count):,} values need about {human(need)} of memory but "
            f"{human(have)} are available; at most about {have // bytes_each:,} fit"
        )
