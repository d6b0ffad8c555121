"""rpx — the resting-potential explorer."""

import importlib
from importlib.metadata import PackageNotFoundError, version

from rpx._api import evaluate as evaluate
from rpx._api import prepare as prepare
from rpx._api import resting_potential as resting_potential
from rpx._constants import F as F
from rpx._constants import R as R
from rpx._global import ParamRange as ParamRange
from rpx._global import sensitivity as sensitivity
from rpx._models import Model as Model
from rpx._models import Output as Output
from rpx._models import get_model as get_model
from rpx._models import models as models
from rpx._models import register as register
from rpx._params import PARAMS as PARAMS
from rpx._params import Param as Param
from rpx._physics import ghk_current as ghk_current
from rpx._physics import ghk_voltage as ghk_voltage
from rpx._physics import mullins_noda_voltage as mullins_noda_voltage
from rpx._physics import nak_pump_current as nak_pump_current
from rpx._physics import nernst as nernst
from rpx._presets import preset as preset
from rpx._presets import preset_info as preset_info
from rpx._presets import presets as presets
from rpx._pump_leak import pump_leak_steady_state as pump_leak_steady_state
from rpx._sensitivity import gradients as gradients

# Names whose modules pull in xarray, zarr, dask, optax or diffrax are imported on first
# use (PEP 562), so that `import rpx` and the command line stay quick.
_LAZY = {
    "Axis": "rpx._spec",
    "Design": "rpx._spec",
    "Event": "rpx._simulate",
    "IdentifiabilityWarning": "rpx._fit",
    "Range": "rpx._spec",
    "Reductions": "rpx._reduce",
    "SweepSpec": "rpx._spec",
    "fit": "rpx._fit",
    "load_reduce_spec": "rpx._reduce",
    "load_spec": "rpx._spec",
    "run_reduce": "rpx._reduce",
    "run_sweep": "rpx._sweep",
    "simulate": "rpx._simulate",
    "spec_from_dict": "rpx._spec",
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
