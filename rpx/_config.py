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

A cache directory the user already gave JAX (``JAX_COMPILATION_CACHE_DIR`` or
``jax.config.update("jax_compilation_cache_dir", ...)``) is left alone. Programs that
compile in at least ``RPX_CACHE_MIN_COMPILE_S`` seconds (default 0.05) are stored.

This module never imports JAX itself: when JAX is not imported yet, the settings go
into the environment variables JAX reads when it starts (so worker processes started
from this one inherit them); when it is, into ``jax.config``. Nothing here touches
``jax_enable_x64`` or any numerical setting.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

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


def _min_compile_s() -> str:
    value = os.environ.get("RPX_CACHE_MIN_COMPILE_S", _DEFAULT_MIN_COMPILE_S)
    try:
        float(value)
    except ValueError:
        return _DEFAULT_MIN_COMPILE_S
    return value


def setup_compilation_cache() -> Path | None:
    """Point JAX's persistent compilation cache at :func:`cache_dir` (idempotent).

    Returns the directory in use by rpx, or None when the cache is off or the user
    configured JAX's cache directory directly (then that setting wins).
    """
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return None
    path = cache_dir()
    if path is None:
        return None
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # an unwritable location: run without the cache rather than fail
    jax = sys.modules.get("jax")
    if jax is None:
        os.environ["JAX_COMPILATION_CACHE_DIR"] = str(path)
        os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", _min_compile_s())
        return path
    if jax.config.jax_compilation_cache_dir:
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", float(_min_compile_s()))
    try:  # JAX decides once per process, at its first compilation, whether to use the cache
        from jax._src import compilation_cache

        if compilation_cache._cache_checked and not compilation_cache._cache_used:
            compilation_cache.reset_cache()
    except (ImportError, AttributeError):  # pragma: no cover - other JAX versions
        pass
    return path
