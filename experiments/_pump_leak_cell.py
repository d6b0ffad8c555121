"""The cell used by the pump–leak experiments: a mammalian neuron with a chloride leak.

``mammalian_neuron`` preset (its P_Cl is 0, so Cl- could never move) with
P_Cl = 0.45·P_K, the resting P_Cl:P_K ratio of Hodgkin & Katz 1949 (J. Physiol. 108:37);
that borrowed ratio is a modelling choice, not a measurement on mammalian neurons.
Pump (Luo & Rudy 1994), impermeant solutes (z_X = -1), water permeability and volume
per area are the parameter table's defaults (see ``rpx.PARAMS[...].default_source``).
"""

from __future__ import annotations

import rpx


def neuron() -> dict[str, float]:
    cell = rpx.preset("mammalian_neuron")
    return cell | {"P_Cl": 0.45 * cell["P_K"]}
