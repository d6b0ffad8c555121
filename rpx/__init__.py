"""rpx — the resting-potential explorer."""

from importlib.metadata import PackageNotFoundError, version

from rpx._api import evaluate as evaluate
from rpx._api import prepare as prepare
from rpx._api import resting_potential as resting_potential
from rpx._constants import F as F
from rpx._constants import R as R
from rpx._fit import IdentifiabilityWarning as IdentifiabilityWarning
from rpx._fit import fit as fit
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
from rpx._reduce import Reductions as Reductions
from rpx._reduce import load_reduce_spec as load_reduce_spec
from rpx._reduce import run_reduce as run_reduce
from rpx._sensitivity import gradients as gradients
from rpx._simulate import Event as Event
from rpx._simulate import simulate as simulate
from rpx._spec import Axis as Axis
from rpx._spec import Design as Design
from rpx._spec import Range as Range
from rpx._spec import SweepSpec as SweepSpec
from rpx._spec import load_spec as load_spec
from rpx._spec import spec_from_dict as spec_from_dict
from rpx._sweep import run_sweep as run_sweep

try:
    __version__ = version("rpx")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"
