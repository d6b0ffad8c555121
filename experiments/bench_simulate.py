"""First-call (compile) and repeat times of ``rpx.simulate``.

The mammalian-neuron cell of ``_pump_leak_cell.py``, 61 output times over 1 h, with 0,
1 or 2 pump-scaling events, as one parameter set (scalar parameters: no ``vmap``) and as
3 sets (1-D parameters: ``vmap``). Each case runs in a fresh process, so every first
call compiles; the second call of the same shape reuses the compiled program.

    .venv/bin/python experiments/bench_simulate.py
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE))
from _bench_util import format_table, host_info  # noqa: E402

CASE = """
import sys, time
sys.path.insert(0, {here!r})
import jax
jax.config.update("jax_enable_x64", True)
import numpy as np
import rpx
from _pump_leak_cell import neuron
cell, n_events, sets = neuron(), {events}, {sets}
if sets > 1:
    cell = cell | {{"I_pump_max": np.full(sets, cell.get("I_pump_max", 1.5))}}
t = np.linspace(0.0, 3600.0, 61)
events = [rpx.Event(600.0 * (k + 1), scale={{"I_pump_max": 0.5}}) for k in range(n_events)]
times = []
for _ in range(2):
    t0 = time.perf_counter()
    ds = rpx.simulate(cell, t, events)
    times.append(time.perf_counter() - t0)
assert np.all(ds["status"].values == 0)
print(times[0], times[1])
"""


def main() -> None:
    print("\n".join(host_info()), end="\n\n")
    rows = []
    for sets in (1, 3):
        for events in (0, 1, 2):
            code = CASE.format(here=str(_HERE), events=events, sets=sets)
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 check=True).stdout.split()
            first, again = float(out[-2]), float(out[-1])
            rows.append([str(sets), str(events), f"{first:.1f}", f"{1e3 * again:.0f}"])
            print(rows[-1], flush=True)
    print(format_table(["sets", "events", "first call s", "second call ms"], rows))


if __name__ == "__main__":
    main()
