"""The ``verify`` command: check every completed chunk of an rpx store, optionally repair.

Sweep stores: every chunk with a completion marker must exist for every variable,
decode (zstd and its CRC-32C checksum) and match the digest in its marker; one line is
printed per damaged chunk and the exit status is 1 (0 when intact). ``--repair`` clears
the markers of the damaged chunks, so that the next run of the same ``rpx sweep``
command recomputes exactly those. Reduction stores: the saved state must decode and match
its digest (and the results decode once complete); ``--repair`` of a damaged state marks
the store for a rebuild by the next ``rpx reduce``. Sensitivity and fit stores and saved
time courses: every array must decode (they are rewritten by rerunning their command).

Damage never passes as intact: a completion marker that does not parse, a root
``zarr.json`` that does not parse, and an array whose metadata is missing (any array
the consolidated metadata lists) are each reported in one line, with exit status 1.
"""

from __future__ import annotations

import argparse
import sys

from rpx.cli.common import add_debug_option, add_storage_options, command


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify", help="check every completed chunk of an rpx store (exit 1 if damaged)"
    )
    p.add_argument("store", help="store path or fsspec URL")
    p.add_argument(
        "--repair", action="store_true",
        help="clear the completion markers of damaged chunks so the next run recomputes them",
    )
    add_storage_options(p)
    add_debug_option(p)
    p.set_defaults(func=command(_verify))


def _verify(args: argparse.Namespace) -> int:
    from rpx.cli.common import parse_storage_options
    from rpx.sweep.store import CorruptStore, open_store, root_attrs, store_exists, store_kind

    options = parse_storage_options(args.storage_options)
    store = open_store(args.store, options, read_only=not args.repair)
    if not store_exists(store):
        raise ValueError(f"no zarr store at {args.store}")
    try:
        attrs = root_attrs(store, args.store)
    except CorruptStore as err:  # damage, not bad input
        print(f"{args.store}: damaged: {err}")
        if args.repair:
            print(f"{args.store}: cannot be repaired in place; rerun the command that wrote "
                  "it with --overwrite", file=sys.stderr)
        return 1
    kind = store_kind(attrs)
    if kind is None:
        if _is_timecourse(store):  # a saved rpx.simulate Dataset: its arrays are checked
            return _verify_dataset(args, store)
        raise ValueError(f"{args.store} is a zarr store not written by rpx")
    from rpx.sweep.store import template_complete

    if not template_complete(attrs):
        print(f"{args.store}: template incomplete (a run was cut off while creating it); "
              "the same command rebuilds it")
        return 1
    if kind == "sweep":
        return _verify_sweep(args, store, attrs)
    if kind == "reduction":
        return _verify_reduction(args, store, attrs)
    return _verify_dataset(args, store)


def _verify_sweep(args: argparse.Namespace, store: object, attrs: dict) -> int:
    import json

    from rpx.sweep.plan import make_plan
    from rpx.sweep.spec import spec_from_dict
    from rpx.sweep.store import (
        StoreLock,
        done_chunks,
        unmark,
        verify_sweep,
    )

    plan = make_plan(spec_from_dict(json.loads(attrs["spec"])))
    missing = _missing(store, plan.variables)
    if missing:
        print(f"{args.store}: damaged: {'; '.join(missing)}")
        if args.repair:
            print(f"{args.store}: cannot be repaired in place; rerun the same `rpx sweep` "
                  "command with --overwrite", file=sys.stderr)
        return 1
    n_done = len(done_chunks(store))  # type: ignore[arg-type]
    bad = verify_sweep(store, plan)  # type: ignore[arg-type]
    for index, what in bad:
        print(f"{args.store}: chunk {'.'.join(map(str, index))} damaged: {what}")
    print(f"{args.store}: {n_done - len(bad)} of {n_done} completed chunks intact "
          f"({plan.n_chunks} in the sweep)")
    if bad and args.repair:
        with StoreLock(store, args.store):  # type: ignore[arg-type]
            unmark(store, [index for index, _ in bad])  # type: ignore[arg-type]
        print(f"{args.store}: cleared {len(bad)} completion marker(s); run the same "
              "`rpx sweep` command again to recompute them", file=sys.stderr)
    return 1 if bad else 0


def _verify_reduction(args: argparse.Namespace, store: object, attrs: dict) -> int:
    import json

    import xarray as xr

    from rpx.sweep.plan import make_plan
    from rpx.sweep.reduce import read_state
    from rpx.sweep.reduce_ops import reductions_from_dict
    from rpx.sweep.spec import spec_from_dict
    from rpx.sweep.store import TEMPLATE_ATTR, StoreLock, update_root_attrs

    plan = make_plan(spec_from_dict(json.loads(attrs["spec"])))
    red = reductions_from_dict(json.loads(attrs["reductions"])).validate(plan)
    problems = _missing(store, ())
    if problems:  # an array without metadata cannot be read back
        for p in problems:
            print(f"{args.store}: damaged: {p}")
        if args.repair:
            print(f"{args.store}: cannot be repaired in place; rerun the same `rpx reduce` "
                  "command with --overwrite", file=sys.stderr)
        return 1
    try:
        read_state(store, plan, red, attrs)
    except ValueError as err:
        problems.append(f"saved state: {err}")
    if attrs.get("complete"):
        ds = xr.open_zarr(store, consolidated=False)
        for name in ds.data_vars:
            try:
                ds[name].load()
            except Exception as err:  # noqa: BLE001 - any decode failure is damage
                problems.append(f"result {name} does not decode ({type(err).__name__})")
    for p in problems:
        print(f"{args.store}: damaged: {p}")
    if not problems:
        print(f"{args.store}: reduction state and results intact")
    elif args.repair:
        with StoreLock(store, args.store):  # type: ignore[arg-type]
            update_root_attrs(store, **{TEMPLATE_ATTR: "writing"})
        print(f"{args.store}: marked for a rebuild; run the same `rpx reduce` command again",
              file=sys.stderr)
    return 1 if problems else 0


def _verify_dataset(args: argparse.Namespace, store: object) -> int:
    import xarray as xr

    missing = _missing(store, ())
    if missing:  # damage, even though the remaining arrays would open
        print(f"{args.store}: damaged: {'; '.join(missing)}")
        if args.repair:
            print(f"{args.store}: cannot be repaired in place; rerun the command that wrote "
                  "it with --overwrite", file=sys.stderr)
        return 1
    ds = xr.open_zarr(store, consolidated=None)
    bad = 0
    for name in [*ds.data_vars, *ds.coords]:
        try:
            ds[name].load()
        except Exception as err:  # noqa: BLE001 - any decode failure is damage
            bad += 1
            print(f"{args.store}: {name} does not decode ({type(err).__name__})")
    if bad and args.repair:
        print(f"{args.store}: cannot be repaired in place; rerun the command that wrote it "
              "with --overwrite", file=sys.stderr)
    if not bad:
        print(f"{args.store}: every array decodes")
    return 1 if bad else 0


def _missing(store: object, expected: tuple[str, ...] | list[str]) -> list[str]:
    """``["array V: metadata missing", ...]`` over ``expected`` and every array the root's
    consolidated metadata lists."""
    from rpx.sweep.store import array_problems, listed_arrays

    names = dict.fromkeys([*expected, *listed_arrays(store)])  # type: ignore[arg-type]
    return array_problems(store, names)  # type: ignore[arg-type]


def _is_timecourse(store: object) -> bool:
    """True for a store with a ``time`` dimension (as :func:`rpx.plot.store_kind`)."""
    import warnings

    import xarray as xr

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return "time" in xr.open_zarr(store, consolidated=None).dims
    except Exception:  # noqa: BLE001 - unreadable: not recognised as one
        return False
