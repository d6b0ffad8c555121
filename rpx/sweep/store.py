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

from rpx.physics.derivatives import gradient_attrs
from rpx.physics.models import derived_output_meta, get_model
from rpx.physics.params import attrs as param_attrs
from rpx.sweep.kernel import gradient_names
from rpx.sweep.spec import SAMPLE_DIM, SweepSpec, spec_from_dict

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


def variable_attrs(spec: SweepSpec) -> dict[str, dict[str, Any]]:
    """``units``/``long_name`` (and flags) of every stored data variable."""
    m = get_model(spec.model)
    meta = {**derived_output_meta(), **dict(m.outputs)}
    out = {name: meta[name].attrs() for name in spec.model_outputs()}
    for var, o, p, per_decade in gradient_names(spec):
        out[var] = gradient_attrs(m, o, p, per_decade)
    return out


def template(spec: SweepSpec, version: str) -> xr.Dataset:
    """The lazy (dask-zeros) Dataset whose metadata is written before any chunk."""
    dims, shape, chunks = spec.dims, spec.shape, spec.chunk_shape
    coords = coordinates(spec)
    data_vars = {}
    m = get_model(spec.model)
    for name, attrs in variable_attrs(spec).items():
        integer = name in m.outputs and m.outputs[name].integer
        dtype = np.int32 if integer else np.dtype(spec.dtype)
        data_vars[name] = xr.Variable(dims, da.zeros(shape, dtype=dtype, chunks=chunks), attrs)
    ds = xr.Dataset(data_vars, coords)
    ds.attrs = {
        "title": f"rpx sweep of model {spec.model!r}",
        "rpx_version": version,
        "model": spec.model,
        "preset": spec.preset,
        "spec": spec.to_json(),
        "spec_hash": spec.hash(),
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "chunk_grid": list(spec.chunk_grid),
        "Conventions": "CF-1.10",
    }
    return ds


def coordinates(spec: SweepSpec) -> dict[str, xr.Variable]:
    """Axis, design and fixed-parameter coordinates of ``spec``, with units and long_name."""
    coords: dict[str, Any] = {}
    for a in spec.axes:
        coords[a.name] = xr.Variable(a.name, np.asarray(a.values), param_attrs(a.name))
    if spec.design is not None:
        pts = spec.design.points()
        coords[SAMPLE_DIM] = xr.Variable(
            SAMPLE_DIM,
            np.arange(spec.design.n),
            {"long_name": f"index of the {spec.design.method} design point", "units": "1"},
        )
        for j, r in enumerate(spec.design.ranges):
            coords[r.name] = xr.Variable(SAMPLE_DIM, pts[:, j], param_attrs(r.name))
    for name, value in spec.fixed_values().items():
        coords[name] = xr.Variable((), np.float64(value), param_attrs(name))
    return coords


def write_template(store: zarr.abc.store.Store, spec: SweepSpec, version: str) -> None:
    """Create every array, coordinate and attribute; no chunk data is written."""
    ds = template(spec, version)
    m = get_model(spec.model)
    encoding = {}
    for name in ds.data_vars:
        integer = name in m.outputs and m.outputs[name].integer
        encoding[name] = {
            "chunks": spec.chunk_shape,
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

    def __init__(self, store: zarr.abc.store.Store, spec: SweepSpec) -> None:
        self.store = store
        self.spec = spec
        group = zarr.open_group(store, mode="r+", zarr_format=3, use_consolidated=False)
        self.arrays = {name: group[name] for name in variable_attrs(spec)}

    def write(self, index: tuple[int, ...], region: tuple[slice, ...], data: dict) -> None:
        """Write one chunk's data (trimmed to ``region``), then its completion marker."""
        trim = tuple(slice(0, s.stop - s.start) for s in region)
        for name, arr in self.arrays.items():
            arr[region] = np.asarray(data[name])[trim]
        mark_done(self.store, index)
