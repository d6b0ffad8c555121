"""The ``sensitivity`` command: global sensitivity indices of a model into a zarr store.

The spec is a TOML file (see ``examples/sensitivity.toml``)::

    model = "ghk_pump"            # registered model
    preset = "mammalian_neuron"   # values of the parameters that are not varied
    outputs = ["V"]               # float outputs to analyse (default: all)
    method = "sobol"              # optional; --method overrides
    n = 1024                      # optional; --n overrides
    seed = 0                      # optional, also n_boot, conf_level, second_order,
                                  # num_levels, dtype, chunk_points
    [fixed]                       # overrides of preset values
    T = 310.15
    [ranges]                      # varied parameters, in their units
    K_o = { lo = 2.0, hi = 20.0, dist = "loguniform" }
    P_Na = { lo = 5e-9, hi = 5e-8 }   # dist defaults to "uniform"

Every entry is checked before any model evaluation; errors name the entry (exit 2).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rpx.cli.common import add_debug_option, command

# Spec entries passed to rpx.sensitivity as keyword arguments (besides model and ranges).
OPTIONS = (
    "method",
    "n",
    "fixed",
    "preset",
    "outputs",
    "second_order",
    "num_levels",
    "n_boot",
    "conf_level",
    "seed",
    "dtype",
    "chunk_points",
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sensitivity", help="global sensitivity indices (Sobol', Morris, DGSM) into a zarr store"
    )
    p.add_argument("spec", help="TOML sensitivity spec (see examples/sensitivity.toml)")
    p.add_argument("--method", choices=("sobol", "morris", "dgsm"), help="overrides the spec")
    p.add_argument("--n", type=int, help="base samples (a power of two) or Morris trajectories")
    p.add_argument("--seed", type=int, help="overrides the spec's seed")
    p.add_argument("--second-order", action="store_true", help="Sobol' second-order indices")
    p.add_argument("-o", "--output", required=True, help="zarr store to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store")
    add_debug_option(p)
    p.set_defaults(func=command(_sensitivity))


def load_sensitivity_spec(path: str | Path) -> dict[str, Any]:
    """Read a TOML sensitivity spec into the keyword arguments of :func:`rpx.sensitivity`."""
    from rpx.sweep.spec import read_toml  # imported here: the parser loads without JAX

    return spec_kwargs(read_toml(path))


def spec_kwargs(d: Mapping[str, Any]) -> dict[str, Any]:
    """Check the entries of a spec dict and return them as :func:`rpx.sensitivity` kwargs."""
    known = {"model", "ranges", *OPTIONS}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"unknown spec entries {unknown}; allowed: {sorted(known)}")
    if "model" not in d:
        raise ValueError("the spec must name a model")
    ranges = d.get("ranges")
    if not isinstance(ranges, Mapping) or not ranges:
        raise ValueError("the spec needs a [ranges] table with at least one parameter")
    if not isinstance(d.get("fixed", {}), Mapping):
        raise ValueError("fixed must be a table of parameter = value")
    return dict(d)


def _sensitivity(args: argparse.Namespace) -> int:
    import jax

    from rpx.analysis.sensitivity import sensitivity, summary_table
    from rpx.sweep.interrupt import interruptible
    from rpx.sweep.store import check_writable, write_dataset_store

    spec = load_sensitivity_spec(args.spec)
    for key in ("method", "n", "seed"):
        if getattr(args, key) is not None:
            spec[key] = getattr(args, key)
    if args.second_order:
        spec["second_order"] = True
    spec.setdefault("dtype", "float64")
    if spec["dtype"] == "float64":
        jax.config.update("jax_enable_x64", True)
    check_writable(args.output, overwrite=args.overwrite)
    kwargs = {k: v for k, v in spec.items() if k not in ("model", "ranges")}
    with interruptible(lambda: f"interrupted; nothing was written to {args.output}", grace=0.5):
        ds = sensitivity(spec["model"], spec["ranges"], **kwargs)
        ds.attrs["spec"] = json.dumps(spec, sort_keys=True)
        write_dataset_store(ds, args.output, "sensitivity", spec, overwrite=args.overwrite)
    for out in ds.attrs["outputs"]:
        print(summary_table(ds, out))
    print(f"{args.output}: written")
    return 0
