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
    from rpx.physics.params import VALENCE, check_params
    from rpx.physics.presets import preset

    # Every command-line value is checked before JAX loads: an unknown preset or a value
    # outside its parameter's range is reported at once.
    given = {k: getattr(args, k) for k in PARAMS if getattr(args, k) is not None}
    values = {**preset(args.preset), **given}
    check_params({k: np.float64(v) for k, v in given.items()})

    from rpx.physics.api import evaluate, nernst
    from rpx.physics.models import models

    print(f"preset {args.preset}" + (f" with {given}" if given else ""))
    for name in models():  # one compiled program per model (cached on disk between runs)
        try:
            v = float(evaluate(given, model=name, base=args.preset)["V"])
        except ValueError as err:
            if "no default" in str(err):
                continue
            raise
        print(f"  V[{name}] = {v:8.2f} mV")
    for ion, z in VALENCE.items():  # one program for the four ions (same shapes)
        E = nernst(np.float64(values[f"{ion}_o"]), np.float64(values[f"{ion}_i"]), z,
                   np.float64(values["T"]))
        print(f"  {'E_' + ion:<4} = {float(E):8.2f} mV")
    return 0
