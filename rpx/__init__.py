"""rpx — the resting-potential explorer.

Every public name is importable from here (``rpx.resting_potential``, ``rpx.SweepSpec``
...). They are loaded on first use (PEP 562): ``import rpx`` imports neither JAX nor
xarray nor zarr, so the command line parses its arguments and reports bad input before
any of them load. The first access of a JAX-based name also completes the model
registry (the pump–leak models register themselves on import).

Importing rpx turns on JAX's persistent compilation cache in a per-user directory
(``RPX_CACHE_DIR`` chooses it, ``RPX_CACHE_DIR=off`` disables it; see
:mod:`rpx._config`). It never changes ``jax_enable_x64`` or any numerical setting.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from rpx._config import setup_compilation_cache as _setup_compilation_cache

_setup_compilation_cache()

# name -> module defining it. Modules under rpx.physics.{params,presets,constants} are
# free of JAX; every other module imports it.
_LAZY: dict[str, str] = {
    # physics: JAX-free tables
    "F": "rpx.physics.constants",
    "R": "rpx.physics.constants",
    "PARAMS": "rpx.physics.params",
    "Param": "rpx.physics.params",
    "preset": "rpx.physics.presets",
    "preset_info": "rpx.physics.presets",
    "presets": "rpx.physics.presets",
    # physics: compiled entry points (one cached program per model, options and shapes)
    "evaluate": "rpx.physics.api",
    "prepare": "rpx.physics.api",
    "resting_potential": "rpx.physics.api",
    "nernst": "rpx.physics.api",
    "ghk_current": "rpx.physics.api",
    "ghk_voltage": "rpx.physics.api",
    "mullins_noda_voltage": "rpx.physics.api",
    "nak_pump_current": "rpx.physics.api",
    "gradients": "rpx.physics.derivatives",
    "pump_leak_steady_state": "rpx.physics.api",
    "ljp": "rpx.physics.ljp",
    "Model": "rpx.physics.models",
    "Output": "rpx.physics.models",
    "get_model": "rpx.physics.models",
    "models": "rpx.physics.models",
    "register": "rpx.physics.models",
    "Event": "rpx.physics.simulate",
    "simulate": "rpx.physics.simulate",
    # sweeps and reductions
    "Axis": "rpx.sweep.spec",
    "Design": "rpx.sweep.spec",
    "Range": "rpx.sweep.spec",
    "SweepSpec": "rpx.sweep.spec",
    "load_spec": "rpx.sweep.spec",
    "spec_from_dict": "rpx.sweep.spec",
    "run_sweep": "rpx.sweep.runner",
    "Reductions": "rpx.sweep.reduce",
    "load_reduce_spec": "rpx.sweep.reduce",
    "run_reduce": "rpx.sweep.reduce",
    # analysis
    "ParamRange": "rpx.analysis.sensitivity",
    "sensitivity": "rpx.analysis.sensitivity",
    "IdentifiabilityWarning": "rpx.analysis.fit",
    "fit": "rpx.analysis.fit",
    "sample": "rpx.analysis.sample",
    "posterior_predictive": "rpx.analysis.predictive",
}
_JAX_FREE = {"rpx.physics.constants", "rpx.physics.params", "rpx.physics.presets"}
_SUBPACKAGES = ("analysis", "cli", "demo", "physics", "plot", "sweep")

if TYPE_CHECKING:  # static analysers and IDEs see the real names
    from rpx.analysis.fit import IdentifiabilityWarning as IdentifiabilityWarning
    from rpx.analysis.fit import fit as fit
    from rpx.analysis.predictive import posterior_predictive as posterior_predictive
    from rpx.analysis.sample import sample as sample
    from rpx.analysis.sensitivity import ParamRange as ParamRange
    from rpx.analysis.sensitivity import sensitivity as sensitivity
    from rpx.physics.api import evaluate as evaluate
    from rpx.physics.api import ghk_current as ghk_current
    from rpx.physics.api import ghk_voltage as ghk_voltage
    from rpx.physics.api import mullins_noda_voltage as mullins_noda_voltage
    from rpx.physics.api import nak_pump_current as nak_pump_current
    from rpx.physics.api import nernst as nernst
    from rpx.physics.api import prepare as prepare
    from rpx.physics.api import pump_leak_steady_state as pump_leak_steady_state
    from rpx.physics.api import resting_potential as resting_potential
    from rpx.physics.constants import F as F
    from rpx.physics.constants import R as R
    from rpx.physics.derivatives import gradients as gradients
    from rpx.physics.ljp import ljp as ljp
    from rpx.physics.models import Model as Model
    from rpx.physics.models import Output as Output
    from rpx.physics.models import get_model as get_model
    from rpx.physics.models import models as models
    from rpx.physics.models import register as register
    from rpx.physics.params import PARAMS as PARAMS
    from rpx.physics.params import Param as Param
    from rpx.physics.presets import preset as preset
    from rpx.physics.presets import preset_info as preset_info
    from rpx.physics.presets import presets as presets
    from rpx.physics.simulate import Event as Event
    from rpx.physics.simulate import simulate as simulate
    from rpx.sweep.reduce import Reductions as Reductions
    from rpx.sweep.reduce import load_reduce_spec as load_reduce_spec
    from rpx.sweep.reduce import run_reduce as run_reduce
    from rpx.sweep.runner import run_sweep as run_sweep
    from rpx.sweep.spec import Axis as Axis
    from rpx.sweep.spec import Design as Design
    from rpx.sweep.spec import Range as Range
    from rpx.sweep.spec import SweepSpec as SweepSpec
    from rpx.sweep.spec import load_spec as load_spec
    from rpx.sweep.spec import spec_from_dict as spec_from_dict

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is not None:
        if module not in _JAX_FREE:
            # every built-in model is registered before any JAX-based name is used
            importlib.import_module("rpx.physics.pump_leak")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value
    if name in _SUBPACKAGES:
        return importlib.import_module(f"rpx.{name}")
    raise AttributeError(f"module 'rpx' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, *_SUBPACKAGES})


try:
    __version__ = version("rpx")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"
