"""``make demo``: a table of every preset, then a real sweep to a zarr store and its summary."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from rpx.cli.info import store_summary
from rpx.sweep.runner import run_sweep
from rpx.sweep.spec import load_spec

SPEC = Path(__file__).resolve().parent.parent / "examples" / "demo.toml"


def preset_table() -> str:
    """Resting potential of every model and every Nernst potential, for each preset (mV)."""
    import numpy as np

    from rpx.physics.api import evaluate
    from rpx.physics.models import equilibrium_potentials
    from rpx.physics.presets import preset, presets

    models = ("ghk", "mullins_noda", "ghk_pump")
    head = f"{'preset':<26}" + "".join(f"{m:>14}" for m in models)
    head += "".join(f"{e:>9}" for e in ("E_K", "E_Na", "E_Cl", "E_Ca"))
    rows = [head + "   (mV)"]
    for name in presets():
        vals = [float(evaluate({}, model=m, base=name)["V"]) for m in models]
        p = {k: np.float64(v) for k, v in preset(name).items()}
        E = [float(v) for v in equilibrium_potentials(p).values()]
        rows.append(
            f"{name:<26}" + "".join(f"{v:14.2f}" for v in vals) + "".join(f"{e:9.1f}" for e in E)
        )
    return "\n".join(rows)


def main(out: str = "demo.zarr") -> int:
    print(preset_table(), end="\n\n")
    spec = load_spec(SPEC)
    print(f"sweep {SPEC.name}: {spec.size:,} points of model {spec.model!r} -> {out}")
    t0 = time.perf_counter()
    summary = run_sweep(spec, out, overwrite=True)
    dt = time.perf_counter() - t0
    print(f"{summary['points']:,} points in {dt:.1f} s ({summary['points'] / dt:,.0f} points/s)\n")
    print(store_summary(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
