"""The ``calc`` command: every model's resting potential and the Nernst potentials at one point."""

from __future__ import annotations

import argparse

import numpy as np

from rpx.physics.params import PARAMS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calc", help="resting potential of every model and Nernst potentials")
    p.add_argument("--preset", default="default", help="preset to start from")
    for name, prm in PARAMS.items():
        p.add_argument(f"--{name}", type=float, metavar=prm.units, help=prm.long_name)
    p.set_defaults(func=_calc)


def _calc(args: argparse.Namespace) -> int:
    from rpx.physics.api import evaluate
    from rpx.physics.models import equilibrium_potentials, models
    from rpx.physics.presets import preset

    given = {k: getattr(args, k) for k in PARAMS if getattr(args, k) is not None}
    values = {**preset(args.preset), **given}
    print(f"preset {args.preset}" + (f" with {given}" if given else ""))
    for name in models():
        try:
            v = float(evaluate(given, model=name, base=args.preset)["V"])
        except ValueError as err:
            if "no default" in str(err):
                continue
            raise
        print(f"  V[{name}] = {v:8.2f} mV")
    E = equilibrium_potentials({k: np.float64(v) for k, v in values.items()})
    for k, v in E.items():
        print(f"  {k:<4} = {float(v):8.2f} mV")
    return 0
