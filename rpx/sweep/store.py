"""Zarr 3 stores of rpx runs: templates, chunk-aligned writes, completion markers, locks.

Layout of a sweep store: an xarray-compatible zarr 3 group whose arrays are the outputs
(dims = the swept parameter names, plus ``sample`` for designs), the axis coordinates and
the fixed parameters as scalar coordinates, all with ``units`` and ``long_name``. Chunks
are compressed with zstd and carry a CRC-32C checksum (zarr's ``crc32c`` codec), so a
damaged chunk fails to decode instead of reading back wrong. A child group ``rpx_done``
holds one small JSON object per finished chunk (``rpx_done/<i>.<j>...``), written only
after that chunk's data: per variable a BLAKE2b digest of the stored values and their
minimum, maximum and NaN count (``rpx info`` merges these instead of reading the data;
``rpx verify`` compares the digests).

Crash safety in every phase. The template is written with the root attribute
``rpx_template = "writing"`` and marked ``"complete"`` only after every array, the
marker group and the consolidated metadata exist; a store found with an incomplete
template is cleared and rewritten by the next run. Chunk data are written before their
markers, and a resume trusts a marker only when every chunk file it vouches for exists.

One writer at a time: ``rpx.lock`` at the top of the store names its holder (host, pid,
process start time, start and heartbeat times). It is created exclusively (``O_EXCL`` on
local disks); a lock whose process is gone on this host, or whose heartbeat is older than
:data:`LEASE_S` (other hosts, object stores), is taken over with a one-line note. On
object stores the lock is a lease: the holder rewrites its heartbeat every
:data:`HEARTBEAT_S` seconds, and creation is not atomic there (two writers starting within
the same instant may both proceed).

Every rpx store (sweep, reduction, sensitivity, fit) carries ``kind`` and
``rpx_version``, ``model``, its spec or options and their hash, and ``created``.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr
from zarr.codecs import Crc32cCodec, ZstdCodec
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync
from zarr.storage import FsspecStore, LocalStore

from rpx.sweep import interrupt
from rpx.sweep.memory import available_memory as available_memory  # re-exported
from rpx.sweep.memory import human

if TYPE_CHECKING:  # the physics (JAX) and xarray load only where a run needs them
    import xarray as xr

    from rpx.sweep.plan import Plan
    from rpx.sweep.spec import SweepSpec

DONE_GROUP = "rpx_done"
LOCK_KEY = "rpx.lock"
TEMPLATE_ATTR = "rpx_template"
KIND_ATTR = "kind"  # also read by rpx.plot.store_kind
STATS_ATTR = "rpx_stats"
HEARTBEAT_S = 20.0
LEASE_S = 120.0
_MARKER = re.compile(r"\d+(\.\d+)*")
_PARTIAL = re.compile(r".+\.[0-9a-f]{32}\.partial")
ZSTD_LEVEL = 3
KINDS = {
    "sweep": "an rpx sweep",
    "reduction": "an rpx reduction",
    "sensitivity": "an rpx sensitivity analysis",
    "fit": "an rpx fit",
    "posterior": "an rpx posterior sample",
}


# The completion markers and the lock are plain objects, not zarr nodes; zarr warns about
# them (from its event-loop thread) whenever it walks the hierarchy.
warnings.filterwarnings(
    "ignore", message=".*is not recognized as a component of a Zarr hierarchy"
)


class CorruptStore(ValueError):
    """A store's metadata does not parse: damage (``rpx verify`` exit 1), or a zarr
    directory that is not an rpx store."""


# The record :func:`read_markers` gives a completion marker that does not parse (damage:
# ``rpx verify`` reports it, a resume recomputes its chunk).
BAD_MARKER = "rpx_bad_marker"


class StoreLocked(ValueError):
    """Another process holds the store's lock (exit 2 on the command line)."""


def is_url(path: str) -> bool:
    return "://" in str(path) and not str(path).startswith("file://")


def local_path(url: str | Path) -> Path:
    return Path(str(url).removeprefix("file://"))


def open_store(
    url: str | Path, storage_options: Mapping[str, Any] | None = None, read_only: bool = False
) -> zarr.abc.store.Store:
    """A zarr store for a local path or any fsspec URL (``s3://...``, ``memory://...``)."""
    if is_url(str(url)):
        return FsspecStore.from_url(
            str(url), storage_options=dict(storage_options or {}), read_only=read_only
        )
    return LocalStore(str(local_path(url)), read_only=read_only)


def store_exists(store: zarr.abc.store.Store) -> bool:
    return sync(store.exists("zarr.json"))


def _buf(data: bytes) -> Any:
    return default_buffer_prototype().buffer.from_bytes(data)


def _get(store: zarr.abc.store.Store, key: str) -> bytes | None:
    value = sync(store.get(key, prototype=default_buffer_prototype()))
    return None if value is None else value.to_bytes()


def _keys(store: zarr.abc.store.Store, prefix: str = "") -> list[str]:
    async def collect() -> list[str]:
        return [k async for k in store.list_prefix(prefix)]

    return sync(collect())


def check_target(url: str | Path) -> None:
    """Refuse a local path that exists but is not a zarr store (nothing there is touched).

    A directory holding only an rpx lock (a run killed before its template) is accepted.
    """
    if is_url(str(url)):
        return
    path = local_path(url)
    if path.exists() and not (path / "zarr.json").exists():
        if path.is_file():
            raise ValueError(f"{path} exists and is not a zarr store; refusing to write there")
        if any(p.name != LOCK_KEY and not p.name.startswith(LOCK_KEY) for p in path.iterdir()):
            raise ValueError(f"{path} exists and is not a zarr store; refusing to write there")


def remove_partial_writes(url: str | Path) -> None:
    """Delete the temporary files of local writes cut off by a crash (zarr writes a file
    as ``<name>.<uuid hex>.partial`` and renames it); object stores leave none."""
    if is_url(str(url)):
        return
    for path in local_path(url).rglob("*.partial"):
        if _PARTIAL.fullmatch(path.name):
            path.unlink(missing_ok=True)


def clear_store(url: str | Path, store: zarr.abc.store.Store, keep_lock: bool = False) -> None:
    """Delete an existing store (call :func:`check_target` first); ``keep_lock`` keeps
    ``rpx.lock`` (a writer holding it clears the store's contents only).

    Crash-safe: the root is first marked ``rpx_template = "writing"`` and deleted last,
    so a kill in between leaves a store the next run rebuilds, never one that looks
    complete with arrays missing.
    """
    if keep_lock and sync(store.exists("zarr.json")):
        with contextlib.suppress(Exception):
            update_root_attrs(store, **{TEMPLATE_ATTR: "writing"})
    if is_url(str(url)):
        if not keep_lock:
            sync(store.delete_dir(""))
            return
        for k in sorted(_keys(store), key=lambda k: k == "zarr.json"):
            if k != LOCK_KEY:
                sync(store.delete(k))
        return
    path = local_path(url)
    if not keep_lock:
        shutil.rmtree(path)
        return
    for child in sorted(path.iterdir(), key=lambda p: p.name == "zarr.json"):
        if child.name == LOCK_KEY:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink(missing_ok=True)


def root_attrs(store: zarr.abc.store.Store, url: str | Path | None = None) -> dict[str, Any]:
    """The root attributes, read from the root metadata itself (never a stale copy).

    Raises :class:`CorruptStore` (naming ``url``'s ``zarr.json``) when the root metadata
    is not a JSON object: a truncated or overwritten file, or not a zarr store at all.
    """
    raw = _get(store, "zarr.json")
    if raw is None:
        return {}
    if url is None:  # name the store by where it is
        url = getattr(store, "root", None) or getattr(store, "path", None) or ""
    where = f"{str(url).rstrip('/')}/zarr.json" if str(url) else "zarr.json"
    try:
        meta = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise CorruptStore(
            f"{where}: the store metadata is corrupt or this is not a zarr store "
            f"(not valid JSON: {err})"
        ) from None
    if not isinstance(meta, dict) or not isinstance(meta.get("attributes", {}), dict):
        raise CorruptStore(f"{where}: the store metadata is corrupt or this is not a zarr "
                           "store (not a JSON object with attributes)")
    return dict(meta.get("attributes", {}))


def listed_arrays(store: zarr.abc.store.Store) -> list[str]:
    """The arrays the root's consolidated metadata lists (``[]`` when it has none): what
    the store should hold, to check against what it does hold."""
    try:
        meta = json.loads(_get(store, "zarr.json") or b"{}")
        listed = meta.get("consolidated_metadata", {}).get("metadata", {})
        return sorted(k for k, v in listed.items() if v.get("node_type") == "array")
    except (ValueError, AttributeError, TypeError):
        return []


def array_problems(store: zarr.abc.store.Store, names: Iterable[str]) -> list[str]:
    """``["array V: metadata missing", ...]``: arrays of ``names`` whose ``zarr.json`` is
    missing or does not parse (damage: the array cannot be opened)."""
    problems = []
    for name in names:
        raw = _get(store, f"{name}/zarr.json")
        if raw is None:
            problems.append(f"array {name}: metadata missing")
            continue
        try:
            meta = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            meta = None
        if not isinstance(meta, dict) or meta.get("node_type") != "array":
            problems.append(f"array {name}: metadata corrupt ({name}/zarr.json)")
    return problems


def store_kind(attrs: Mapping[str, Any]) -> str | None:
    """``sweep``, ``reduction``, ``sensitivity``, ``fit`` or None (not an rpx store);
    stores written before ``kind`` existed are recognised by their attributes."""
    if KIND_ATTR in attrs:
        return str(attrs[KIND_ATTR])
    if "reduce_hash" in attrs:
        return "reduction"
    if "n_evaluations" in attrs and "method" in attrs:
        return "sensitivity"
    if "free" in attrs and "model" in attrs:
        return "fit"
    if "spec" in attrs:
        return "sweep"
    return None


def describe(attrs: Mapping[str, Any]) -> str:
    """What a store holds, in words: ``an rpx fit (model ghk, created ...)``."""
    kind = store_kind(attrs)
    if kind is None:
        return "a zarr store not written by rpx"
    what = KINDS.get(kind, f"an rpx {kind} store")
    extra = ", ".join(
        f"{k} {attrs[k]}" for k in ("method", "model", "created") if k in attrs
    )
    return f"{what} ({extra})" if extra else what


def template_complete(attrs: Mapping[str, Any]) -> bool:
    """False while a template is being written (or was cut off)."""
    return attrs.get(TEMPLATE_ATTR, "complete") == "complete"


def check_rebuild(url: str | Path, attrs: Mapping[str, Any], kind: str) -> None:
    """Refuse to rebuild, without ``--overwrite``, an incomplete store of another kind."""
    other = attrs.get(KIND_ATTR)
    if other not in (None, kind):
        raise ValueError(
            f"{url} holds {describe(attrs)}, cut off while it was written, not "
            f"{KINDS.get(kind, 'an rpx ' + kind)}; "
            "use another path, or --overwrite to replace it"
        )


def consolidate(store: zarr.abc.store.Store) -> None:
    with warnings.catch_warnings():  # consolidated metadata is a zarr-python extension
        warnings.filterwarnings("ignore", "Consolidated metadata", UserWarning)
        # The completion markers are plain objects, not zarr nodes.
        warnings.filterwarnings("ignore", ".*not recognized as a component", UserWarning)
        zarr.consolidate_metadata(store)


def update_root_attrs(store: zarr.abc.store.Store, **values: Any) -> None:
    """Set root attributes in one write of the root metadata (a kill leaves all or none).

    ``attrs.update`` of zarr-python writes the metadata once per key. Keys set to None
    are removed.
    """
    root = zarr.open_group(store, mode="r+", zarr_format=3, use_consolidated=False)
    new = {**root.attrs.asdict(), **values}
    root.attrs.put({k: v for k, v in new.items() if v is not None})


def now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


# ------------------------------------------------------------------------------ lock
def _pid_start(pid: int) -> str | None:
    """The kernel's start time of process ``pid`` (Linux), to tell a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _alive(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    now_start = _pid_start(pid)
    return start is None or now_start is None or now_start == start


class StoreLock:
    """The one-writer lock of a store (see the module docstring).

    Use as a context manager, or :meth:`acquire` / :meth:`release`.
    """

    def __init__(self, store: zarr.abc.store.Store, url: str | Path) -> None:
        self.store = store
        self.url = str(url)
        self.token = uuid.uuid4().hex
        self.note: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.held = False

    def _record(self, started: str) -> dict[str, Any]:
        return {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "pid_start": _pid_start(os.getpid()),
            "started": started,
            "heartbeat": time.time(),
            "token": self.token,
            "command": " ".join(sys.argv[:1] + sys.argv[1:4])[:200],
        }

    def read(self) -> dict[str, Any] | None:
        raw = _get(self.store, LOCK_KEY)
        if raw is None:
            return None
        try:
            return dict(json.loads(raw))
        except (ValueError, TypeError):
            return {}

    def _stale(self, holder: Mapping[str, Any]) -> str | None:
        """Why ``holder``'s lock can be taken over, or None when it is live."""
        beat = float(holder.get("heartbeat", 0.0) or 0.0)
        if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int):
            if not _alive(holder["pid"], holder.get("pid_start")):
                return "its process is gone"
            return None
        if time.time() - beat > LEASE_S:
            return f"no heartbeat for {time.time() - beat:.0f} s"
        return None

    def acquire(self) -> StoreLock:
        started = now()
        for _ in range(5):
            record = self._record(started)
            sync(self.store.set_if_not_exists(LOCK_KEY, _buf(json.dumps(record).encode())))
            holder = self.read()
            if holder is not None and holder.get("token") == self.token:
                self.held = True
                interrupt.ON_HARD_EXIT.append(self.release)
                self._thread = threading.Thread(target=self._beat, daemon=True)
                self._thread.start()
                return self
            if holder is None:
                continue
            why = self._stale(holder)
            if why is None:
                raise StoreLocked(
                    f"{self.url} is being written by pid {holder.get('pid', '?')} on "
                    f"{holder.get('host', '?')} since {holder.get('started', '?')} "
                    f"(lock {LOCK_KEY} in the store); wait for it to finish, or delete the "
                    "lock if that process is gone"
                )
            self.note = (
                f"rpx: note: took over the lock of {self.url} from pid {holder.get('pid', '?')}"
                f" on {holder.get('host', '?')} ({why})"
            )
            print(self.note, file=sys.stderr)
            sync(self.store.delete(LOCK_KEY))
        raise StoreLocked(f"could not take the lock of {self.url} (contended)")

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            with contextlib.suppress(Exception):
                holder = self.read()
                if holder is None or holder.get("token") != self.token:
                    return
                holder["heartbeat"] = time.time()
                sync(self.store.set(LOCK_KEY, _buf(json.dumps(holder).encode())))

    def release(self) -> None:
        """Delete the lock if this process still holds it (idempotent)."""
        if not self.held:
            return
        self.held = False
        self._stop.set()
        with contextlib.suppress(ValueError):
            interrupt.ON_HARD_EXIT.remove(self.release)
        with contextlib.suppress(Exception):
            holder = self.read()
            if holder is not None and holder.get("token") == self.token:
                sync(self.store.delete(LOCK_KEY))

    def __enter__(self) -> StoreLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


# -------------------------------------------------------------------------- opening
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
    Call it while holding the store's :class:`StoreLock` (``overwrite`` keeps the lock).
    """
    check_target(url)
    store = open_store(url, storage_options)
    exists = store_exists(store)
    if resume and not exists:
        raise ValueError(f"cannot resume: no rpx {what} at {url}")
    if exists and overwrite:
        clear_store(url, store, keep_lock=True)
        return store, False
    if exists:
        remove_partial_writes(url)
    return store, exists


def check_kind(url: str | Path, attrs: Mapping[str, Any], kind: str) -> None:
    """Refuse a store that holds something other than ``kind``, saying what it holds."""
    found = store_kind(attrs)
    if found != kind:
        raise ValueError(
            f"{url} holds {describe(attrs)}, not {KINDS.get(kind, 'an rpx ' + kind)}; "
            "use another path, or --overwrite to replace it"
        )


def variable_attrs(plan: Plan) -> dict[str, dict[str, Any]]:
    """``units``/``long_name`` (and flags) of every stored data variable."""
    return {name: v.attrs for name, v in plan.variables.items()}


def template(plan: Plan, version: str) -> xr.Dataset:
    """The lazy (dask-zeros) Dataset whose metadata is written before any chunk."""
    import dask.array as da
    import xarray as xr

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
        KIND_ATTR: "sweep",
        "rpx_version": version,
        "model": plan.model_name,
        "preset": plan.preset,
        "spec": plan.to_json(),
        "spec_hash": plan.hash,
        "created": now(),
        "chunk_grid": list(plan.chunk_grid),
        "Conventions": "CF-1.10",
    }
    return ds


def coordinates(plan: Plan) -> dict[str, xr.Variable]:
    """Axis, design and fixed-parameter coordinates of ``plan``, with units and long_name."""
    import xarray as xr

    return {c.name: xr.Variable(c.dims, c.values, c.attrs) for c in plan.coords}


def write_dataset_template(store: zarr.abc.store.Store, ds: xr.Dataset, **kw: Any) -> None:
    """Write ``ds`` (lazy variables: metadata only) marked ``rpx_template = "writing"``.

    The store must be empty but for its lock (so ``mode="a"``: ``"w"`` would delete the
    lock, ``"w-"`` refuses a non-empty store). Finish with :func:`finish_template`.
    """
    ds = ds.copy()
    ds.attrs = {**ds.attrs, TEMPLATE_ATTR: "writing"}
    # The root goes first, already saying what it is and that it is incomplete (xarray
    # would write a bare root first and its attributes later).
    zarr.open_group(
        store, mode="a", zarr_format=3, use_consolidated=False,
        attributes={TEMPLATE_ATTR: "writing", KIND_ATTR: ds.attrs.get(KIND_ATTR)},
    )
    ds.to_zarr(store, mode="a", zarr_format=3, consolidated=False, **kw)


def finish_template(store: zarr.abc.store.Store) -> None:
    """Publish a template: mark it complete (one root write), then consolidate."""
    update_root_attrs(store, **{TEMPLATE_ATTR: "complete"})
    consolidate(store)


def write_template(store: zarr.abc.store.Store, plan: Plan, version: str) -> None:
    """Create every array, coordinate and attribute; no chunk data is written.

    Crash-safe: the root says ``rpx_template = "writing"`` until the last step.
    """
    encoding = {}
    for name, v in plan.variables.items():
        encoding[name] = {
            "chunks": plan.chunk_shape,
            "compressors": [ZstdCodec(level=ZSTD_LEVEL), Crc32cCodec()],
            "fill_value": -1 if v.integer else np.nan,
        }
    write_dataset_template(store, template(plan, version), compute=False, encoding=encoding)
    zarr.open_group(store, mode="r+", zarr_format=3, use_consolidated=False).create_group(
        DONE_GROUP
    )
    finish_template(store)


def read_spec(store: zarr.abc.store.Store) -> tuple[SweepSpec, dict[str, Any]]:
    """The spec and attributes an existing rpx sweep store was created with."""
    from rpx.sweep.spec import spec_from_dict

    attrs = root_attrs(store)
    if store_kind(attrs) != "sweep":
        raise ValueError(f"this zarr store holds {describe(attrs)}, not an rpx sweep")
    return spec_from_dict(json.loads(attrs["spec"])), attrs


# -------------------------------------------------------------------- markers, stats
def marker_key(index: tuple[int, ...]) -> str:
    return f"{DONE_GROUP}/" + ".".join(map(str, index))


def mark_done(
    store: zarr.abc.store.Store, index: tuple[int, ...], record: Mapping[str, Any] | None = None
) -> None:
    """Record chunk ``index`` as finished (call only after its data is written);
    ``record`` (per-variable digest and statistics) is stored in the marker."""
    body = json.dumps(record, sort_keys=True).encode() if record else b""
    sync(store.set(marker_key(index), _buf(body)))


def done_chunks(store: zarr.abc.store.Store) -> set[tuple[int, ...]]:
    """Grid indices of every chunk with a completion marker."""
    out = set()
    for key in _keys(store, f"{DONE_GROUP}/"):
        name = key.rsplit("/", 1)[-1]
        # Skip zarr.json and a store's in-flight temporary files (atomic writes).
        if _MARKER.fullmatch(name):
            out.add(tuple(int(i) for i in name.split(".")))
    return out


def chunk_key(name: str, index: tuple[int, ...]) -> str:
    """Store key of chunk ``index`` of array ``name`` (zarr 3 default encoding)."""
    return f"{name}/c/" + "/".join(map(str, index))


def present_chunks(store: zarr.abc.store.Store, plan: Plan) -> set[tuple[int, ...]]:
    """Chunks whose files exist for every stored variable (one listing per variable)."""
    present: set[tuple[int, ...]] | None = None
    for name in plan.variables:
        found = set()
        for key in _keys(store, f"{name}/c/"):
            parts = key[len(name) + 3:].split("/")
            if all(p.isdigit() for p in parts) and len(parts) == len(plan.chunk_grid):
                found.add(tuple(int(p) for p in parts))
        present = found if present is None else present & found
    return present or set()


def digest(values: np.ndarray) -> str:
    """BLAKE2b-128 of an array's values (C order, stored dtype)."""
    return hashlib.blake2b(np.ascontiguousarray(values).tobytes(), digest_size=16).hexdigest()


def chunk_record(values: np.ndarray) -> dict[str, Any]:
    """Digest, min, max (None when all NaN) and NaN count of one chunk of one variable."""
    values = np.asarray(values)
    out: dict[str, Any] = {"digest": digest(values), "n": int(values.size)}
    if np.issubdtype(values.dtype, np.integer):
        out.update(min=int(values.min()), max=int(values.max()), nan=0)
        return out
    nan = int(np.isnan(values).sum())
    if nan == values.size:
        out.update(min=None, max=None, nan=nan)
    else:
        out.update(min=float(np.nanmin(values)), max=float(np.nanmax(values)), nan=nan)
    return out


def read_markers(
    store: zarr.abc.store.Store, indices: set[tuple[int, ...]] | None = None
) -> dict[tuple[int, ...], dict[str, Any]]:
    """The records of the completion markers (``{}`` for markers without one)."""
    if indices is None:
        indices = done_chunks(store)
    order = sorted(indices)

    async def get_all() -> list[Any]:
        import asyncio

        proto = default_buffer_prototype()
        return await asyncio.gather(*(store.get(marker_key(i), prototype=proto) for i in order))

    out = {}
    for index, value in zip(order, sync(get_all()), strict=True):
        raw = b"" if value is None else value.to_bytes()
        try:
            rec = json.loads(raw) if raw else {}
        except (ValueError, UnicodeDecodeError):
            rec = None
        if not isinstance(rec, dict) or not isinstance(rec.get("vars", {}), dict):
            rec = {BAD_MARKER: True}
        out[index] = rec
    return out


def bad_markers(records: Mapping[tuple[int, ...], Mapping[str, Any]]) -> set[tuple[int, ...]]:
    """The chunks of ``records`` (:func:`read_markers`) whose marker does not parse."""
    return {index for index, rec in records.items() if rec.get(BAD_MARKER)}


def merge_stats(records: Mapping[tuple[int, ...], Mapping[str, Any]]) -> dict[str, Any]:
    """Per variable: min, max and NaN count over the chunk records, and how many chunks
    carried statistics (``chunks``)."""
    stats: dict[str, dict[str, Any]] = {}
    for rec in records.values():
        for name, r in rec.get("vars", {}).items():
            s = stats.setdefault(name, {"min": None, "max": None, "nan": 0, "n": 0, "chunks": 0})
            s["nan"] += int(r.get("nan", 0))
            s["n"] += int(r.get("n", 0))
            s["chunks"] += 1
            if r.get("min") is not None:
                s["min"] = r["min"] if s["min"] is None else min(s["min"], r["min"])
                s["max"] = r["max"] if s["max"] is None else max(s["max"], r["max"])
    return stats


class ChunkWriter:
    """Writes evaluated chunks into the template's arrays (never creates arrays)."""

    def __init__(self, store: zarr.abc.store.Store, plan: Plan) -> None:
        self.store = store
        self.plan = plan
        group = zarr.open_group(store, mode="r+", zarr_format=3, use_consolidated=False)
        # Every chunk is written, even one that is all NaN: a marker then always vouches
        # for files that exist.
        self.arrays = {
            name: group[name].with_config({"write_empty_chunks": True})
            for name in plan.variables
        }

    def write(self, index: tuple[int, ...], region: tuple[slice, ...], data: dict) -> None:
        """Write one chunk's data (trimmed to ``region``), then its completion marker with
        each variable's digest and statistics."""
        trim = tuple(slice(0, s.stop - s.start) for s in region)
        record = {}
        for name, arr in self.arrays.items():
            values = np.asarray(data[name])[trim].astype(arr.dtype, copy=False)
            arr[region] = values
            record[name] = chunk_record(values)
        mark_done(self.store, index, {"vars": record})


# --------------------------------------------------------------------------- verify
def verify_sweep(
    store: zarr.abc.store.Store, plan: Plan
) -> list[tuple[tuple[int, ...], str]]:
    """Damaged completed chunks: ``[(index, what is wrong), ...]`` in grid order.

    Every chunk with a completion marker is checked: the marker parses, each variable's
    chunk file exists, decodes (zstd and the CRC-32C checksum), and matches the digest in
    the marker. Check :func:`array_problems` first (an array without metadata cannot be
    opened here).
    """
    group = zarr.open_group(store, mode="r", zarr_format=3, use_consolidated=False)
    arrays = {name: group[name] for name in plan.variables}
    done = done_chunks(store)
    records = read_markers(store, done)
    present = {name: set() for name in arrays}
    for name in arrays:
        for key in _keys(store, f"{name}/c/"):
            present[name].add(key)
    bad = []
    for index in sorted(done):
        problems = []
        if records.get(index, {}).get(BAD_MARKER):
            bad.append((index, "completion marker does not parse"))
            continue
        rec = records.get(index, {}).get("vars", {})
        for name, arr in arrays.items():
            if chunk_key(name, index) not in present[name]:
                problems.append(f"{name} missing")
                continue
            try:
                values = arr[plan.chunk_slices(index)]
            except Exception as err:  # noqa: BLE001 - any decode failure is damage
                problems.append(f"{name} does not decode ({type(err).__name__})")
                continue
            want = rec.get(name, {}).get("digest")
            if want is not None and digest(values) != want:
                problems.append(f"{name} digest mismatch")
        if problems:
            bad.append((index, "; ".join(problems)))
    return bad


def unmark(store: zarr.abc.store.Store, indices: list[tuple[int, ...]]) -> None:
    """Delete the completion markers of ``indices`` (their chunks are recomputed on the
    next run) and the merged statistics that counted them."""
    for index in indices:
        sync(store.delete(marker_key(index)))
    if indices:
        update_root_attrs(store, **{STATS_ATTR: None})
        consolidate(store)


def rpx_version() -> str:
    """The installed rpx version (written into every store)."""
    from rpx import __version__

    return __version__


# ------------------------------------------------------------------ sweep lifecycle
@contextlib.contextmanager
def sweep_store(
    plan: Plan,
    url: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    storage_options: Mapping[str, Any] | None = None,
) -> Iterator[tuple[Any, set[tuple[int, ...]]]]:
    """Hold the store's lock; yield the prepared store and its finished chunks.

    A missing store (or one whose template was cut off by a kill) gets a fresh template.
    An existing store is resumed when it holds the same sweep (same spec hash) and
    refused otherwise unless ``overwrite``; a marker is trusted only when every chunk
    file it vouches for exists. With ``resume=True`` the store must already exist.
    """
    check_target(url)
    store = open_store(url, storage_options)
    if resume and not store_exists(store):
        raise ValueError(f"cannot resume: no rpx store at {url}")
    with StoreLock(store, url):
        yield _prepare_sweep(plan, url, store, overwrite=overwrite)


def _prepare_sweep(
    plan: Plan, url: str | Path, store: Any, *, overwrite: bool
) -> tuple[Any, set[tuple[int, ...]]]:
    exists = store_exists(store)
    attrs = {}
    if exists:
        try:
            attrs = root_attrs(store, url)
        except CorruptStore:
            if not overwrite:
                raise
    if exists and not overwrite and template_complete(attrs):
        check_kind(url, attrs, "sweep")
        if attrs.get("spec_hash") != plan.hash:
            raise ValueError(
                f"{url} holds a different sweep (spec hash {attrs.get('spec_hash', '?')[:12]}, "
                f"this spec {plan.hash[:12]}); use --overwrite to replace it"
            )
        remove_partial_writes(url)
        if not sync(store.exists(f"{DONE_GROUP}/zarr.json")):
            raise ValueError(f"{url} is a damaged rpx sweep (no {DONE_GROUP} group)")
        damaged = array_problems(store, plan.variables)
        if damaged:
            raise CorruptStore(f"{url} is a damaged rpx sweep ({'; '.join(damaged)}); "
                               "use --overwrite to rebuild it")
        if not json.loads(_get(store, "zarr.json") or b"{}").get("consolidated_metadata"):
            consolidate(store)  # a kill between marking the template complete and this
        done = done_chunks(store)
        # A marker that does not parse vouches for nothing: its chunk is recomputed.
        done -= bad_markers(read_markers(store, done))
        return store, done & present_chunks(store, plan)
    # New, overwritten, or a template cut off by a kill: start from an empty store.
    if exists and not overwrite:
        check_rebuild(url, attrs, "sweep")
    if _keys(store) != [LOCK_KEY]:
        clear_store(url, store, keep_lock=True)
    write_template(store, plan, rpx_version())
    return store, set()


def prepare_store(
    plan: Plan,
    url: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    storage_options: Mapping[str, Any] | None = None,
) -> tuple[Any, set[tuple[int, ...]]]:
    """:func:`sweep_store` without keeping the lock (for callers that write nothing
    more, or coordinate writers themselves)."""
    with sweep_store(
        plan, url, resume=resume, overwrite=overwrite, storage_options=storage_options
    ) as out:
        return out


def finish_sweep(store: zarr.abc.store.Store, plan: Plan) -> None:
    """Merge the per-chunk statistics into the root attributes (one write), consolidate."""
    stats = merge_stats(read_markers(store))
    update_root_attrs(store, **{STATS_ATTR: json.dumps(stats, sort_keys=True)})
    consolidate(store)


def sweep_stats(
    store: zarr.abc.store.Store, attrs: Mapping[str, Any], n_done: int,
    records: Mapping[tuple[int, ...], Mapping[str, Any]] | None = None,
) -> dict:
    """Merged statistics of the finished chunks: from the root when they cover every
    finished chunk, else from the markers (``records`` when already read by
    :func:`read_markers`; small reads, never the data)."""
    if attrs.get(STATS_ATTR):
        stats = json.loads(attrs[STATS_ATTR])
        if all(s.get("chunks") == n_done for s in stats.values()):
            return stats
    return merge_stats(read_markers(store) if records is None else records)


# ------------------------------------------------------------ other kinds of stores
def options_hash(options: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a command's options."""
    return hashlib.sha256(json.dumps(options, sort_keys=True, default=str).encode()).hexdigest()


def check_writable(
    url: str | Path, *, overwrite: bool, storage_options: Mapping[str, Any] | None = None
) -> None:
    """Refuse, before any computation, a target :func:`write_dataset_store` would refuse."""
    check_target(url)
    store = open_store(url, storage_options)
    if store_exists(store) and not overwrite:
        attrs = root_attrs(store)
        if template_complete(attrs):
            raise ValueError(f"{url} holds {describe(attrs)}; pass --overwrite to replace it")


def write_dataset_store(
    ds: xr.Dataset,
    url: str | Path,
    kind: str,
    options: Mapping[str, Any],
    *,
    overwrite: bool = False,
    storage_options: Mapping[str, Any] | None = None,
) -> None:
    """Write a computed Dataset (a sensitivity analysis or a fit) as a self-describing,
    consolidated rpx store: ``kind``, ``rpx_version``, ``model`` (from ``ds``),
    ``options`` (JSON) and ``options_hash``, ``created``.

    Crash-safe like sweep templates (``rpx_template = "writing"`` until complete) and
    under the store's lock. An existing store is replaced only with ``overwrite`` (or
    when its own write was cut off); otherwise the error says what it holds.
    """
    check_target(url)
    store = open_store(url, storage_options)
    with StoreLock(store, url):
        if store_exists(store):
            attrs = root_attrs(store)
            if not overwrite and template_complete(attrs):
                raise ValueError(f"{url} holds {describe(attrs)}; pass --overwrite to replace it")
            if not overwrite:
                check_rebuild(url, attrs, kind)
        if _keys(store) != [LOCK_KEY]:
            clear_store(url, store, keep_lock=True)
        out = ds.copy()
        out.attrs = {
            **ds.attrs,
            KIND_ATTR: kind,
            "rpx_version": rpx_version(),
            "options": json.dumps(options, sort_keys=True, default=str),
            "options_hash": options_hash(options),
            "created": ds.attrs.get("created", now()),
        }
        write_dataset_template(store, out)
        finish_template(store)


# ------------------------------------------------------------------------ estimates
def free_bytes(url: str | Path) -> int | None:
    """Free bytes on the file system of a local target (None for URLs)."""
    if is_url(str(url)):
        return None
    path = local_path(url).absolute()
    while not path.exists():
        path = path.parent
    return shutil.disk_usage(path).free


def check_can_write(url: str | Path) -> None:
    """Raise the ``OSError`` of creating a (deleted at once) probe file in the nearest
    existing directory of a local target: the real cause (permission denied, read-only
    file system) rather than a misleading free-space figure. URLs are not probed."""
    if is_url(str(url)):
        return
    path = local_path(url).absolute()
    while not path.exists():
        path = path.parent
    if not path.is_dir():
        return  # a file: check_target names it
    try:
        with tempfile.TemporaryFile(dir=path, prefix=".rpx-probe-"):
            pass
    except OSError as err:  # name the directory, not the probe file
        raise type(err)(err.errno, err.strerror, str(path)) from None


def remaining_bytes(
    plan: Plan, url: str | Path, storage_options: Mapping[str, Any] | None = None
) -> int:
    """Uncompressed bytes still to write into ``url`` for ``plan`` (all of them unless an
    existing store of the same sweep has finished chunks). Reads markers' names only."""
    store = open_store(url, storage_options)
    if store_exists(store):
        attrs = root_attrs(store)
        if attrs.get("spec_hash") == plan.hash and template_complete(attrs):
            left = plan.n_chunks - len(done_chunks(store))
            return plan.store_bytes * left // max(plan.n_chunks, 1)
    return plan.store_bytes


def check_free_space(url: str | Path, needed: int, force: bool) -> None:
    """Refuse a local target that cannot be written (the ``OSError`` of a probe file, e.g.
    ``PermissionError``: checked first, even with ``force``) or whose free space is below
    ``needed`` bytes (ValueError)."""
    check_can_write(url)
    free = free_bytes(url)
    if free is None or force or needed <= free:
        return
    raise ValueError(
        f"the store needs up to {human(needed)} (uncompressed estimate) but only "
        f"{human(free)} are free at {local_path(url).absolute().parent}; "
        "free space, or pass --force to write anyway"
    )
