"""Spreading chunks over every JAX device: one input replica and one stream per device.

Each device gets its own copy of the (small) padded axis vectors, design table and
fixed values; chunk ``k`` of a run goes to device ``k mod n_devices``. A jitted
function called with arguments committed to one device runs on that device, and JAX
dispatch is asynchronous, so all devices evaluate chunks at the same time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from rpx.sweep.kernel import device_inputs
from rpx.sweep.plan import Plan

Inputs = tuple[Any, Any, Any]


def replicate_inputs(
    plan: Plan, devices: Sequence[jax.Device] | None = None
) -> list[tuple[jax.Device, Inputs]]:
    """``(device, (axes, table, fixed))`` for each device (default: ``jax.devices()``)."""
    devices = list(devices or jax.devices())
    inputs = device_inputs(plan)
    return [(d, jax.device_put(inputs, d)) for d in devices]


def place_offsets(offsets: np.ndarray, device: jax.Device) -> jax.Array:
    """A chunk's offset vector committed to ``device``."""
    return jax.device_put(offsets, device)
