"""The ``presets`` command: list the presets, or every value and source of one."""

from __future__ import annotations

import argparse

from rpx.physics.params import PARAMS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("presets", help="list the parameter presets with their sources")
    p.add_argument("name", nargs="?", help="show every value and source of one preset")
    p.set_defaults(func=_presets)


def _presets(args: argparse.Namespace) -> int:
    from rpx.physics.presets import preset_info, presets

    if args.name:
        info = preset_info(args.name)
        print(f"{info.name}: {info.description}")
        print(f"reported V: {info.V_range[0]:g} .. {info.V_range[1]:g} mV ({info.V_source})")
        for k, v in info.values.items():
            print(f"  {k:>10} = {v:<12g} {PARAMS[k].units:<8} {info.sources[k]}")
        return 0
    for name in presets():
        info = preset_info(name)
        print(f"{name:<28} {info.description}")
    return 0
