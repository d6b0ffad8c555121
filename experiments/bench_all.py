"""Run every benchmark and write their tables into one section of experiments/README.md.

Each benchmark runs as its own process (so that one's memory and compilation caches do
not distort the next), one after another; the markdown tables each prints are
collected verbatim, under the exact command that produced them, together with the
machine description (device, jax version, load average). The section between the
markers ``<!-- bench_all:begin -->`` and ``<!-- bench_all:end -->`` of
experiments/README.md is replaced by the result; everything else in the file is left
as it is.

    .venv/bin/python experiments/bench_all.py              # every benchmark, default sizes
    .venv/bin/python experiments/bench_all.py --quick      # small sanity sizes
    .venv/bin/python experiments/bench_all.py --only core sweep --no-write
"""

from __future__ import annotations

import argparse
import datetime
import shlex
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
README = HERE / "README.md"
BEGIN, END = "<!-- bench_all:begin -->", "<!-- bench_all:end -->"

# name -> (script, arguments for a full run, arguments for --quick, what the table shows)
BENCHMARKS: dict[str, tuple[str, list[str], list[str], str]] = {
    "core": (
        "bench_core.py", ["--max-points", "1e8", "--models", "ghk", "mullins_noda"], ["--quick"],
        "physics core, closed forms: rpx vs the numpy reference processed in cache-sized "
        "chunks of 65536 points (the stronger numpy baseline; points/s, float32)",
    ),
    "core_plain_numpy": (
        "bench_core.py",
        ["--max-points", "1e7", "--models", "ghk", "mullins_noda", "--numpy-chunk", "0"],
        ["--quick", "--numpy-chunk", "0"],
        "physics core, closed forms, against numpy on whole arrays (no cache-sized chunks: "
        "the plain vectorised reference; 1e8 points would need tens of GB of temporaries)",
    ),
    "core_pump": (
        "bench_core.py", ["--max-points", "1e7", "--models", "ghk_pump"],
        ["--quick", "--models", "ghk_pump"],
        "physics core, root-solved ghk_pump: rpx vs the numpy reference (points/s, float32; "
        "1e8 points would take the numpy reference minutes)",
    ),
    "sweep": (
        "bench_sweep.py", [], ["--quick"],
        "end-to-end sweep to zarr vs zarr alone writing the same arrays (storage limit)",
    ),
    "reduce": (
        "bench_reduce.py", [], ["--side", "40"],
        "streaming reductions without storing the cube (points/s)",
    ),
    "sensitivity": (
        "bench_sensitivity.py", [], ["--log2n", "10", "--trajectories", "100", "--n-boot", "20"],
        "global sensitivity: rpx vs SALib on the same model and N",
    ),
    "fit": (
        "bench_fit.py", [], ["--sizes", "1", "10", "100"],
        "cells fitted per second: rpx (batched) vs scipy least_squares cell by cell",
    ),
    "pump_leak": (
        "bench_pump_leak.py", [], ["--quick"],
        "pump-leak steady states per second",
    ),
}


def tables(text: str) -> str:
    """The markdown tables (consecutive lines starting with '|') of ``text``."""
    blocks: list[list[str]] = []
    previous_was_table = False
    for line in text.splitlines():
        is_table = line.lstrip().startswith("|")
        if is_table:
            if not previous_was_table:
                blocks.append([])
            blocks[-1].append(line.strip())
        previous_was_table = is_table
    return "\n\n".join("\n".join(b) for b in blocks)


def machine() -> str:
    """Device, jax version and load, measured in a subprocess like the benchmarks."""
    code = (
        f"import sys; sys.path.insert(0, {str(HERE)!r}); from _bench_util import host_info; "
        "print('\\n'.join(host_info()))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def run(name: str, quick: bool) -> str:
    script, full, small, what = BENCHMARKS[name]
    path = HERE / script
    argv = [sys.executable, str(path), *(small if quick else full)]
    shown = " ".join(shlex.quote(a) for a in [".venv/bin/python", f"experiments/{script}",
                                               *argv[2:]])
    if not path.exists():
        return f"### {name}\n\n{what}: `experiments/{script}` does not exist; not run.\n"
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    body = tables(proc.stdout)
    if proc.returncode != 0:
        body = f"FAILED with exit code {proc.returncode}:\n\n```\n{proc.stderr[-2000:]}\n```"
    elif not body:
        body = "```\n" + proc.stdout.strip()[-3000:] + "\n```"
    return f"### {name}\n\n{what}. Command (took {seconds:.0f} s):\n\n    {shown}\n\n{body}\n"


def write_section(section: str) -> None:
    text = README.read_text() if README.exists() else "# Experiments\n"
    block = f"{BEGIN}\n{section}\n{END}"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        heading = "## Benchmark summary (experiments/bench_all.py)"
        text = f"{text.rstrip()}\n\n{heading}\n\n{block}\n"
    README.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes for a sanity run")
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), help="run only these")
    parser.add_argument("--no-write", action="store_true", help="print only; leave README.md")
    args = parser.parse_args(argv)
    names = args.only or list(BENCHMARKS)
    stamp = datetime.datetime.now(datetime.UTC).isoformat(timespec="minutes")
    command = " ".join(["experiments/bench_all.py", *(argv if argv is not None else sys.argv[1:])])
    parts = [
        f"Written by `.venv/bin/python {command}` on {stamp}.",
        "Machine at the start:\n\n```\n" + machine() + "\n```",
    ]
    for name in names:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        parts.append(run(name, args.quick))
    section = "\n\n".join(parts)
    print(section)
    if not args.no_write:
        write_section(section)
        print(f"updated {README}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
