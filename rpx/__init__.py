"""rpx — the resting-potential explorer."""

import importlib
from importlib.metadata import PackageNotFoundError, version

from rpx.analysis.sensitivity import ParamRange as ParamRange
from rpx.analysis.sensitivity import sensitivity as sensitivity
from rpx.physics.api import evaluate as evaluate
from rpx.physics.api import prepare as prepare
from rpx.physics.api import resting_potential as resting_potential
from rpx.physics.constants import F as F
from rpx.physics.constants import R as R
from rpx.physics.derivatives import gradients as gradients
from rpx.physics.formulas import ghk_current as ghk_current
from rpx.physics.formulas import ghk_voltage as ghk_voltage
from rpx.physics.formulas import mullins_noda_voltage as mullins_noda_voltage
from rpx.physics.formulas import nak_pump_current as nak_pump_current
from rpx.physics.formulas import nernst as nernst
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
from rpx.physics.pump_leak import pump_leak_steady_state as pump_leak_steady_state

# Names whose modules pull in xarray, zarr, dask, optax or diffrax are imported on first
# use (PEP 562), so that `import rpx` and the command line stay quick.
_LAZY = {
    "Axis": "rpx.sweep.spec",
    "Design": "rpx.sweep.spec",
    "Event": "rpx.physics.simulate",
    "IdentifiabilityWarning": "rpx.analysis.fit",
    "Range": "rpx.sweep.spec",
    "Reductions": "rpx.sweep.reduce",
    "SweepSpec": "rpx.sweep.spec",
    "fit": "rpx.analysis.fit",
    "ljp": "rpx.physics.ljp",
    "load_reduce_spec": "rpx.sweep.reduce",
    "load_spec": "rpx.sweep.spec",
    "run_reduce": "rpx.sweep.reduce",
    "run_sweep": "rpx.sweep.runner",
    "simulate": "rpx.physics.simulate",
    "spec_from_dict": "rpx.sweep.spec",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rpx' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


try:
    __version__ = version("rpx")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"
