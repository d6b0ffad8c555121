"""Traced programs kept on disk between processes (``jax.export``).

JAX's persistent compilation cache (:mod:`rpx._config`) spares a new process XLA's
compilation, not the tracing and lowering that come before it: for the root-solved
models those take seconds. This module stores the *traced* program, serialized with
``jax.export``, next to the compilation cache (``<cache>/<versions>/exported``), so that
a new process deserializes the StableHLO module and hands it to XLA, whose compiled
executable then comes from the compilation cache.

A stored program is used only when everything it was built from matches, all of which
goes into its key: the entry point and model (name, function, parameters and checks),
the static options, the input tree, shapes, dtypes and weak types, the platform, the
JAX settings that change tracing (``jax_enable_x64``, dtype and rank promotion, default
matmul precision), the versions of rpx, JAX, jaxlib, equinox, diffrax, lineax,
optimistix and numpy, and a digest of
every source file of ``rpx.physics`` (so an edited source is never served a stale
program; only functions of ``rpx.physics`` are stored). Files are written atomically
(temporary file, ``os.replace``) with a BLAKE2b digest that is checked before the
bytes are deserialized; an unreadable, truncated or altered file, or one whose key
does not match, is deleted and the program traced and stored again. Off whenever the
persistent cache is off (``RPX_CACHE_DIR=off``) or the user configured JAX's cache
directory directly.

The stored program is the same StableHLO module that ``jax.jit`` lowers, compiled by
the same XLA: results equal those of the jitted function (tested bit for bit in
``tests/test_at_hand.py``).
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections.abc import Callable, Hashable
from pathlib import Path

import jax
import numpy as np

from rpx import _config

_SUFFIX = ".jaxexport"
_LOADED: dict[str, Callable] = {}
_UNEXPORTABLE: set[str] = set()
_LOCK = threading.Lock()
_STORE_OVERRIDE: list[Path | None] = []
_SWEPT: set[Path] = set()


@functools.cache
def _can_serialize() -> bool:
    """``jax.export`` serializes with the ``flatbuffers`` package (a dependency of rpx)."""
    import importlib.util

    return importlib.util.find_spec("flatbuffers") is not None


def store_dir() -> Path | None:
    """Directory of the stored programs (None: storing is off)."""
    if not _can_serialize():
        return None
    if _STORE_OVERRIDE:
        return _STORE_OVERRIDE[-1]
    return _config.exported_dir()


@functools.cache
def source_digest() -> str:
    """BLAKE2b digest of every ``.py`` file of ``rpx.physics`` and of ``rpx._config``
    (the programs stored here are built from those modules only)."""
    here = Path(__file__).resolve().parent
    h = hashlib.blake2b(digest_size=16)
    for path in [*sorted(here.glob("*.py")), here.parent / "_config.py"]:
        h.update(path.name.encode())
        try:
            h.update(path.read_bytes())
        except OSError:
            h.update(b"<unreadable>")
    return h.hexdigest()


@functools.cache
def _versions() -> tuple[str, ...]:
    from importlib.metadata import PackageNotFoundError, version

    # Read from their metadata: importing equinox costs a quarter of a second. The
    # solver libraries of rpx.simulate's stored program count too.
    libs = []
    for lib in ("equinox", "diffrax", "lineax", "optimistix"):
        try:
            libs.append(f"{lib}={version(lib)}")
        except PackageNotFoundError:
            libs.append(f"{lib}=absent")
    return (
        _config.versioned_name(), f"jax={jax.__version__}", *libs, f"numpy={np.__version__}",
    )  # fmt: skip


def _settings() -> tuple[str, ...]:
    c = jax.config
    values = (
        jax.default_backend(), bool(c.jax_enable_x64), c.jax_numpy_dtype_promotion,
        c.jax_numpy_rank_promotion, c.jax_default_matmul_precision,
    )  # fmt: skip
    return tuple(str(getattr(v, "value", v)) for v in values)


def _usable(args: tuple) -> bool:
    """Only plain runs: no debugging modes that re-run programs op by op, and every input
    a concrete array on the default device."""
    c = jax.config
    if c.jax_disable_jit or c.jax_debug_nans or c.jax_debug_infs:
        return False
    device = jax.devices()[0]
    for leaf in jax.tree_util.tree_leaves(args):
        if not isinstance(leaf, jax.Array) or isinstance(leaf, jax.core.Tracer):
            return False
        if leaf.devices() != {device}:
            return False
    return True


def signature(args: tuple) -> str:
    """The input tree and every leaf's shape, dtype and weak type, as text."""
    leaves, tree = jax.tree_util.tree_flatten(args)
    avals = [
        f"{np.dtype(x.dtype).name}{tuple(x.shape)}{'w' if getattr(x, 'weak_type', False) else ''}"
        for x in leaves
    ]
    return f"{tree}|{';'.join(avals)}"


def key_text(name: str, key: Hashable, args: tuple) -> str:
    """Everything a stored program depends on, as one line (see the module docstring)."""
    return repr((name, key, signature(args), _settings(), _versions(), source_digest()))


def _file(store: Path, name: str, text: str) -> Path:
    safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name)[:80]
    return store / f"{safe}-{hashlib.sha256(text.encode()).hexdigest()[:32]}{_SUFFIX}"


def _load(path: Path, text: str) -> object | None:
    """The ``Exported`` stored at ``path`` under exactly ``text``, else None (a damaged
    or mismatched file is deleted)."""
    from jax import export

    value = _config.read_sealed(path)
    if value is None:
        return None
    head = text.encode()
    size = int.from_bytes(value[:4], "little") if len(value) >= 4 else -1
    if size != len(head) or value[4 : 4 + size] != head:
        _remove(path)
        return None
    try:
        return export.deserialize(bytearray(value[4 + size :]))
    except Exception:  # noqa: BLE001 - any failure: trace again
        _remove(path)
        return None


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def _store(path: Path, text: str, exp: object) -> None:
    if path.parent not in _SWEPT:  # once per process and folder
        _SWEPT.add(path.parent)
        _config.remove_stale_temporaries(path.parent)
    head = text.encode()
    try:
        blob = bytes(exp.serialize())  # type: ignore[attr-defined]
        _config.atomic_write(path, _config.seal(len(head).to_bytes(4, "little") + head + blob))
    except Exception:  # noqa: BLE001 - a full disk or an unserializable program: run on
        pass


def program(
    name: str, key: Hashable, fn: Callable, args: tuple, compiler_options: dict | None = None
) -> Callable | None:
    """A compiled callable computing ``fn(*args)`` for inputs shaped like ``args``,
    loaded from the store or traced, exported and stored there; None when storing is
    off, the inputs are not plain device arrays, or the program cannot be exported
    (host callbacks...): the caller then runs its own ``jax.jit``.

    Args:
        name: a readable prefix of the file name (``"evaluate-pump_leak"``).
        key: identifies ``fn`` completely given the inputs' shapes (deterministic
            ``repr``: strings, numbers, tuples), e.g. the entry point, model and options.
        fn: a pure function of ``args`` (arrays), traced once per key and signature.
        args: the concrete inputs (device arrays); only their shapes and dtypes count.
        compiler_options: XLA options the program is compiled with (part of the key).
    """
    store = store_dir()
    if store is None or not _usable(args):
        return None
    if compiler_options:
        key = (key, tuple(sorted(compiler_options.items())))
    text = key_text(name, key, args)
    with _LOCK:
        ready = _LOADED.get(text)
    if ready is not None:
        return ready
    if text in _UNEXPORTABLE:
        return None
    path = _file(store, name, text)
    exp = _load(path, text)
    if exp is None:
        from jax import export

        try:
            exp = export.export(jax.jit(fn))(*args)
        except Exception:  # noqa: BLE001 - e.g. custom calls without a stable ABI
            with _LOCK:
                _UNEXPORTABLE.add(text)
            return None
        try:
            store.mkdir(parents=True, exist_ok=True)
        except OSError:
            pass
        _store(path, text, exp)
    ready = jax.jit(exp.call, compiler_options=compiler_options)  # type: ignore[attr-defined]
    with _LOCK:
        ready = _LOADED.setdefault(text, ready)
    return ready


def compiled_programs() -> int:
    """How many programs the loaded stored programs have compiled in this process."""
    with _LOCK:
        loaded = list(_LOADED.values())
    return sum(f._cache_size() for f in loaded)  # type: ignore[attr-defined]


class use_store:  # noqa: N801 - used as a context manager
    """Store programs in ``path`` (None: off) inside a ``with`` block (for tests)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def __enter__(self) -> None:
        _STORE_OVERRIDE.append(self.path)
        with _LOCK:  # programs loaded from another store are not this store's
            _LOADED.clear()
            _UNEXPORTABLE.clear()

    def __exit__(self, *exc: object) -> None:
        _STORE_OVERRIDE.pop()
        with _LOCK:
            _LOADED.clear()
            _UNEXPORTABLE.clear()
