"""Zarr 3 stores of sweeps: the template, chunk-aligned writes and durable completion markers.

Layout: an xarray-compatible zarr 3 group whose arrays are the outputs (dims = the
swept parameter names, plus ``sample`` for designs), the axis coordinates and the
fixed parameters as scalar coordinates, all with ``units`` and ``long_name``. A child
group ``rpx_done`` holds one empty object per finished chunk (``rpx_done/<i>.<j>...``),
written only after that chunk's data, so a crash loses at most the chunks in flight.
"""

from __future__ import annotations

import datetime
import json
import re
import shutil
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
import zarr
from zarr.codecs import ZstdCodec
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync
from zarr.storage import FsspecStore, LocalStore

from rpx.sweep.plan import Plan
from rpx.sweep.spec import SweepSpec, spec_from_dict

DONE_GROUP = "rpx_done"
_MARKER = re.compile(r"\d+(\.\d+)*")
_PARTIAL = re.compile(r".+\.[0-9a-f]{32}\.partial")
ZSTD_LEVEL = 3


def is_url(path: str) -> bool:
    return "://" in str(path) and not str(path).startswith("file://")


def open_store(
    url: str | Path, storage_options: Mapping[str, Any] | None = None, read_only: bool = False
) -> zarr.abc.store.Store:
    """A zarr store for a local path or any fsspec URL (``s3://...``, ``memory://...``)."""
    if is_url(str(url)):
        return FsspecStore.from_url(
            str(url), storage_options=dict(storage_options or {}), read_only=read_only
        )
    return LocalStore(str(url).removeprefix("file://"), read_only=read_only)


def store_exists(store: zarr.abc.store.Store) -> bool:
    return sync(store.exists("zarr.json"))


def check_target(url: str | Path) -> None:
    """Refuse a local path that exists but is not a zarr store (nothing there is touched)."""
    if is_url(str(url)):
        return
    path = Path(str(url).removeprefix("file://"))
    if path.exists() and not (path / "zarr.json").exists():
        if path.is_file() or any(path.iterdir()):
            raise ValueError(f"{path} exists and is not a zarr store; refusing to write there")


def remove_partial_writes(url: str | Path) -> None:
    """Delete the temporary files of local writes cut off by a crash (zarr writes a file
    as ``<name>.<uuid hex>.partial`` and renames it); object stores leave none."""
    if is_url(str(url)):
        return
    for path in Path(str(url).removeprefix("file://")).rglob("*.partial"):
        if _PARTIAL.fullmatch(path.name):
            path.unlink(missing_ok=True)


def clear_store(url: str | Path, store: zarr.abc.store.Store) -> None:
    """Delete an existing store (call :func:`check_target` first)."""
    if is_url(str(url)):
        sync(store.delete_dir(""))
    else:
        shutil.rmtree(Path(str(url).removeprefix("file://")))


def open_target(
    url: str | Path,
    storage_options: Mapping[str, Any] | None,
    *,
    resume: bool,
    overwrite: bool,
    what: str,
) -> tuple[zarr.abc.store.Store, bool]:
    """Open the store at ``url`` for an rpx run; return it and whether it already existed.

    A local path that exists but is not a store is refused; ``resume`` requires an
    existing store (``what`` names it in the error); ``overwrite`` deletes an existing
    one; an existing one that is kept loses the temporary files of interrupted writes.
    """
    check_target(url)
    store = open_store(url, storage_options)
    exists = store_exists(store)
    if resume and not exists:
        raise ValueError(f"cannot resume: no rpx {what} at {url}")
    if exists and overwrite:
        clear_store(url, store)
        return open_store(url, storage_options), False
    if exists:
        remove_partial_writes(url)
    return store, exists


def variable_attrs(plan: Plan) -> dict[str, dict[str, Any]]:
    """``units``/``long_name`` (and flags) of every stored data variable."""
    return {name: v.attrs for name, v in plan.variables.items()}


def template(plan: Plan, version: str) -> xr.Dataset:
    """The lazy (dask-zeros) Dataset whose metadata is written before any chunk."""
    dims, shape, chunks = plan.dims, plan.shape, plan.chunk_shape
    data_vars = {
        name: xr.Variable(
            dims, da.zeros(shape, dtype=v.dtype(plan.dtype), chunks=chunks), v.attrs
        )
        for name, v in plan.variables.items()
    }
    ds = xr.Dataset(data_vars, coordinates(plan))
    ds.attrs = {
        "title": f"rpx sweep of model {plan.model_name!r}",
        "rpx_version": version,
        "model": plan.model_name,
        "preset": plan.preset,
        "spec": plan.to_json(),
        "spec_hash": plan.hash,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "chunk_grid": list(plan.chunk_grid),
        "Conventions": "CF-1.10",
    }
    return ds


def coordinates(plan: Plan) -> dict[str, xr.Variable]:
    """Axis, design and fixed-parameter coordinates of ``plan``, with units and long_name."""
    return {c.name: xr.Variable(c.dims, c.values, c.attrs) for c in plan.coords}


def write_template(store: zarr.abc.store.Store, plan: Plan, version: str) -> None:
    """Create every array, coordinate and attribute; no chunk data is written."""
    ds = template(plan, version)
    encoding = {}
    for name, v in plan.variables.items():
        integer = v.integer
        encoding[name] = {
            "chunks": plan.chunk_shape,
            "compressors": [ZstdCodec(level=ZSTD_LEVEL)],
            "fill_value": -1 if integer else np.nan,
        }
    ds.to_zarr(
        store, mode="w", compute=False, zarr_format=3, consolidated=False, encoding=encoding
    )
    zarr.open_group(store, mode="r+", zarr_format=3).create_group(DONE_GROUP)
    with warnings.catch_warnings():  # consolidated metadata is a zarr-python extension
        warnings.filterwarnings("ignore", "Consolidated metadata", UserWarning)
        zarr.consolidate_metadata(store)


def read_spec(store: zarr.abc.store.Store) -> tuple[SweepSpec, dict[str, Any]]:
    """The spec and attributes an existing rpx store was created with."""
    attrs = dict(zarr.open_group(store, mode="r", zarr_format=3).attrs)
    if "spec" not in attrs:
        raise ValueError("this zarr store was not written by rpx (no 'spec' attribute)")
    return spec_from_dict(json.loads(attrs["spec"])), attrs


def marker_key(index: tuple[int, ...]) -> str:
    return f"{DONE_GROUP}/" + ".".join(map(str, index))


def mark_done(store: zarr.abc.store.Store, index: tuple[int, ...]) -> None:
    """Record chunk ``index`` as finished (call only after its data is written)."""
    buf = default_buffer_prototype().buffer.from_bytes(b"")
    sync(store.set(marker_key(index), buf))


def done_chunks(store: zarr.abc.store.Store) -> set[tuple[int, ...]]:
    """Grid indices of every finished chunk."""

    async def collect() -> list[str]:
        return [k async for k in store.list_prefix(f"{DONE_GROUP}/")]

    out = set()
    for key in sync(collect()):
        name = key.rsplit("/", 1)[-1]
        # Skip zarr.json and a store's in-flight temporary files (atomic writes).
        if _MARKER.fullmatch(name):
            out.add(tuple(int(i) for i in name.split(".")))
    return out


class ChunkWriter:
    """Writes evaluated chunks into the template's arrays (never creates arrays)."""

    def __init__(self, store: zarr.abc.store.Store, plan: Plan) -> None:
        self.store = store
        self.plan = plan
        group = zarr.open_group(store, mode="r+", zarr_format=3, use_consolidated=False)
        self.arrays = {name: group[name] for name in plan.variables}

    def write(self, index: tuple[int, ...], region: tuple[slice, ...], data: dict) -> None:
        """Write one chunk's data (trimmed to ``region``), then its completion marker."""
        trim = tuple(slice(0, s.stop - s.start) for s in region)
        for name, arr in self.arrays.items():
            arr[region] = np.asarray(data[name])[trim]
        mark_done(self.store, index)


def rpx_version() -> str:
    """The installed rpx version (written into every store)."""
    from rpx import __version__

    return __version__


def prepare_store(
    plan: Plan,
    url: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    storage_options: Mapping[str, Any] | None = None,
) -> tuple[Any, set[tuple[int, ...]]]:
    """Open or create the sweep store of ``plan``; return it with the set of finished chunks.

    A missing store is created. An existing store is resumed when it was created by
    the same spec (same hash), and refused otherwise unless ``overwrite``. With
    ``resume=True`` the store must already exist.
    """
    store, exists = open_target(
        url, storage_options, resume=resume, overwrite=overwrite, what="store"
    )
    if exists:
        _, attrs = read_spec(store)
        if attrs.get("spec_hash") != plan.hash:
            raise ValueError(
                f"{url} holds a different sweep (spec hash {attrs.get('spec_hash', '?')[:12]}, "
                f"this spec {plan.hash[:12]}); use --overwrite to replace it"
            )
        return store, done_chunks(store)
    write_template(store, plan, rpx_version())
    return store, set()
