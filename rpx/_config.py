"""Process-wide settings rpx applies before JAX compiles anything: the persistent
compilation cache.

JAX can keep compiled programs on disk so that a new process loads them instead of
compiling again (``jax_compilation_cache_dir``). rpx turns this on by default, in a
per-user cache directory:

* ``RPX_CACHE_DIR=/some/dir`` puts the cache there;
* ``RPX_CACHE_DIR=off`` (or ``0``, ``false``, ``no``, ``none``, empty) leaves the cache
  off;
* unset: ``$XDG_CACHE_HOME/rpx/jax`` (else ``~/.cache/rpx/jax``; ``%LOCALAPPDATA%`` on
  Windows, ``~/Library/Caches`` on macOS).

Inside that directory every (rpx, JAX, jaxlib, machine, CPU features) combination has its own
subdirectory (:func:`versioned_dir`): ``xla/`` holds JAX's compiled programs,
``exported/`` the traced programs of :mod:`rpx.physics.exported`. A new JAX or rpx
version therefore never reads entries an older one wrote.

**Entries that cannot crash a process.** JAX (0.10) writes a cache entry with one
non-atomic ``write_bytes``: a process killed mid-write leaves a truncated file that
every later process reads. For rpx's own directory the file cache JAX builds is
replaced by :class:`SafeFileCache` (installed when JAX's ``compilation_cache`` module
loads, or at once if it already has): each entry is written to a temporary file and
renamed into place (``os.replace``, atomic), and carries a BLAKE2b digest of its
contents that is checked before JAX sees the bytes; an entry that is truncated, altered
or not written by rpx is deleted and the program compiled (and stored) again. JAX's
cache size limit (``jax_compilation_cache_max_size``) and content verification
(``jax_compilation_cache_check_contents``) keep JAX's own cache class.

A cache directory the user already gave JAX (``JAX_COMPILATION_CACHE_DIR`` or
``jax.config.update("jax_compilation_cache_dir", ...)``) is left alone. Programs that
compile in at least ``RPX_CACHE_MIN_COMPILE_S`` seconds (default 0.05) are stored.

This module never imports JAX itself: when JAX is not imported yet, the settings go
into the environment variables JAX reads when it starts (so worker processes started
from this one inherit them); when it is, into ``jax.config``. Nothing here touches
``jax_enable_x64`` or any numerical setting.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import os
import platform
import re
import sys
import tempfile
from pathlib import Path
from types import ModuleType

_OFF = {"off", "0", "false", "no", "none", ""}
_DEFAULT_MIN_COMPILE_S = "0.05"


def default_cache_dir() -> Path:
    """The per-user cache directory rpx uses when ``RPX_CACHE_DIR`` is not set."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "rpx" / "jax"


def cache_dir() -> Path | None:
    """Where compiled programs are kept (None: the persistent cache is off)."""
    value = os.environ.get("RPX_CACHE_DIR")
    if value is None:
        return default_cache_dir()
    if value.strip().lower() in _OFF:
        return None
    return Path(value).expanduser()


def _package_version(name: str) -> str:
    """Version of an installed package without importing it (its ``version.py``, else
    the distribution metadata; "unknown" when neither says)."""
    try:
        spec = importlib.machinery.PathFinder.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            for folder in spec.submodule_search_locations:
                text = (Path(folder) / "version.py").read_text()
                found = re.search(r'^_version(?:\s*:\s*str)?\s*=\s*"([^"]+)"', text, re.M)
                if found:
                    return found.group(1)
    except (OSError, ImportError, ValueError):
        pass
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:  # noqa: BLE001 - any failure only means "unknown"
        return "unknown"


def _rpx_version() -> str:
    try:
        from importlib.metadata import version

        return version("rpx")
    except Exception:  # noqa: BLE001 - a source tree without metadata
        return "0.0.0"


def _cpu_features() -> str:
    """A short digest of the CPU's feature flags (Linux ``/proc/cpuinfo``; "" elsewhere):
    XLA compiles for the host's instruction set, so a cache shared by machines of one
    architecture but different features (a home directory on a network disk) must not
    hand one machine's programs to another."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    flags = " ".join(sorted(line.split(":", 1)[1].split()))
                    return hashlib.blake2b(flags.encode(), digest_size=4).hexdigest()
    except OSError:
        pass
    return ""


def versioned_name() -> str:
    """``rpx-<v>-jax-<v>-jaxlib-<v>-<machine>[-<cpu features>]``: the subdirectory of
    this combination."""
    features = _cpu_features()
    parts = (
        f"rpx-{_rpx_version()}", f"jax-{_package_version('jax')}",
        f"jaxlib-{_package_version('jaxlib')}", platform.machine() or "machine",
        *([f"cpu{features}"] if features else []),
    )  # fmt: skip
    return re.sub(r"[^A-Za-z0-9._+-]", "_", "-".join(parts))


def versioned_dir() -> Path | None:
    """:func:`cache_dir` / :func:`versioned_name` (None: the persistent cache is off)."""
    root = cache_dir()
    return None if root is None else root / versioned_name()


def compile_cache_dir() -> Path | None:
    """Where JAX's compiled programs go (``<versioned_dir>/xla``; None: off)."""
    path = versioned_dir()
    return None if path is None else path / "xla"


def exported_dir() -> Path | None:
    """Where traced programs go (``<versioned_dir>/exported``), or None: off, or the user
    pointed JAX's compilation cache elsewhere (then rpx stores nothing of its own)."""
    return None if _ACTIVE is None else _ACTIVE.parent / "exported"


# ------------------------------------------------------------ safe cache entries
_MAGIC = b"RPXCACHE1\n"
_DIGEST = 32


def seal(value: bytes) -> bytes:
    """``value`` with rpx's header: a magic line and the BLAKE2b digest of ``value``."""
    return _MAGIC + hashlib.blake2b(value, digest_size=_DIGEST).digest() + value


def unseal(data: bytes) -> bytes | None:
    """The value :func:`seal` wrapped, or None when ``data`` is truncated or altered."""
    head = len(_MAGIC) + _DIGEST
    if len(data) < head or not data.startswith(_MAGIC):
        return None
    value = data[head:]
    if hashlib.blake2b(value, digest_size=_DIGEST).digest() != data[len(_MAGIC) : head]:
        return None
    return value


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory and
    ``os.replace``: readers see the old file, no file, or the whole new one."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def remove_stale_temporaries(folder: Path, older_than_s: float = 3600.0) -> None:
    """Delete temporary files of :func:`atomic_write` older than ``older_than_s`` (left
    by a process that ended mid-write; never read as entries)."""
    import time

    now = time.time()
    try:
        for tmp in folder.glob(".*.tmp"):
            try:
                if now - tmp.stat().st_mtime > older_than_s:
                    tmp.unlink()
            except OSError:
                pass
    except OSError:
        pass


def read_sealed(path: Path) -> bytes | None:
    """The sealed value stored at ``path``; None when absent; an unreadable, truncated or
    altered file is deleted (best effort) and None returned."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError:
        return None
    value = unseal(data)
    if value is None:
        try:
            path.unlink()
        except OSError:
            pass
    return value


def _safe_cache_class(interface: type) -> type:
    class SafeFileCache(interface):  # type: ignore[misc, valid-type]
        """JAX's file cache interface with atomic, digest-checked entries (see the
        module docstring). Entries are never evicted (as JAX's own cache without a size
        limit); the directory may be deleted at any time."""

        def __init__(self, path: str | Path) -> None:
            self._path = Path(path)
            self._path.mkdir(parents=True, exist_ok=True)
            remove_stale_temporaries(self._path)

        def _file(self, key: str) -> Path:
            if not key:
                raise ValueError("key cannot be empty")
            return self._path / f"{key}-cache"

        def get(self, key: str) -> bytes | None:
            return read_sealed(self._file(key))

        def put(self, key: str, value: bytes) -> None:
            path = self._file(key)
            if path.exists():
                return
            try:
                atomic_write(path, seal(bytes(value)))
            except OSError:
                pass  # a full or read-only disk: run on without storing

    return SafeFileCache


def _install(cc: ModuleType) -> None:
    """Make JAX's ``compilation_cache`` module build :class:`SafeFileCache` for rpx's
    directory (JAX's own cache for any other directory or option)."""
    if getattr(cc.get_file_cache, "_rpx_safe", False):
        return
    from jax._src import config as jax_config
    from jax._src.compilation_cache_interface import CacheInterface

    global SafeFileCache
    SafeFileCache = _safe_cache_class(CacheInterface)
    original = cc.get_file_cache

    def get_file_cache(path: str) -> object:
        if (
            _ACTIVE is not None
            and Path(path) == _ACTIVE
            and jax_config.compilation_cache_max_size.value == -1
            and not jax_config.compilation_cache_check_contents.value
        ):
            return SafeFileCache(path), path
        return original(path)

    get_file_cache._rpx_safe = True  # type: ignore[attr-defined]
    cc.get_file_cache = get_file_cache


class _InstallOnImport(importlib.abc.MetaPathFinder):
    """Runs :func:`_install` right after JAX's ``compilation_cache`` module loads."""

    NAME = "jax._src.compilation_cache"

    def find_spec(self, fullname: str, path: object, target: object = None) -> object:
        if fullname != self.NAME:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)  # type: ignore[arg-type]
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader = spec.loader
        exec_module = loader.exec_module

        def exec_then_install(module: ModuleType) -> None:
            exec_module(module)
            try:
                _install(module)
            except Exception:  # noqa: BLE001 - another JAX layout: keep JAX's cache
                pass

        loader.exec_module = exec_then_install  # type: ignore[method-assign]
        return spec


SafeFileCache: type | None = None
_ACTIVE: Path | None = None  # the compile cache directory rpx configured, if any


def _min_compile_s() -> str:
    value = os.environ.get("RPX_CACHE_MIN_COMPILE_S", _DEFAULT_MIN_COMPILE_S)
    try:
        float(value)
    except ValueError:
        return _DEFAULT_MIN_COMPILE_S
    return value


def setup_compilation_cache() -> Path | None:
    """Point JAX's persistent compilation cache at :func:`cache_dir` (idempotent).

    Returns the directory JAX's compiled programs go to (``<versioned_dir>/xla``), or
    None when the cache is off or the user configured JAX's cache directory directly
    (then that setting wins).
    """
    global _ACTIVE
    path = compile_cache_dir()
    given = os.environ.get("JAX_COMPILATION_CACHE_DIR")
    if path is None or (given and Path(given) != path):
        return None  # off, or the user's own JAX cache directory wins
    jax = sys.modules.get("jax")
    configured = jax.config.jax_compilation_cache_dir if jax is not None else None
    if configured and Path(configured) != path:
        return None
    try:
        path.mkdir(parents=True, exist_ok=True)
        (path.parent / "exported").mkdir(exist_ok=True)
    except OSError:
        return None  # an unwritable location: run without the cache rather than fail
    _ACTIVE = path
    if jax is None:
        # JAX reads these when it loads (worker processes started from here inherit
        # them and, importing rpx, recognise the directory as rpx's own)
        os.environ["JAX_COMPILATION_CACHE_DIR"] = str(path)
        os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", _min_compile_s())
        cc = sys.modules.get(_InstallOnImport.NAME)
        if cc is not None:  # pragma: no cover - JAX half imported
            _install(cc)
        elif not any(isinstance(f, _InstallOnImport) for f in sys.meta_path):
            sys.meta_path.insert(0, _InstallOnImport())
        return path
    try:
        from jax._src import compilation_cache as cc

        _install(cc)
    except (ImportError, AttributeError):  # pragma: no cover - other JAX versions
        cc = None
    if not configured:
        jax.config.update("jax_compilation_cache_dir", str(path))
        if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
            jax.config.update(
                "jax_persistent_cache_min_compile_time_secs", float(_min_compile_s())
            )
    try:  # JAX decides once per process, at its first compilation, whether to use the
        # cache, and builds its cache object then: start again if either happened
        if cc is not None and (
            (cc._cache_checked and not cc._cache_used)
            or (cc._cache is not None and type(cc._cache) is not SafeFileCache)
        ):
            cc.reset_cache()
    except AttributeError:  # pragma: no cover - other JAX versions
        pass
    return path
