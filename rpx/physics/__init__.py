"""The physics layer: everything rpx knows about membranes, as pure JAX functions.

Owns the constants, the parameter table (names, units, domains), the formulas (Nernst,
GHK, Mullins–Noda, the Na/K pump), the bracketed root finder with implicit gradients,
the model registry, the presets, local derivatives, validated evaluation, the pump–leak
steady state and its time courses.

May import: JAX, numpy, scipy, equinox, diffrax, xarray (time-course results only) and
itself. Never imports :mod:`rpx.sweep`, :mod:`rpx.analysis`, :mod:`rpx.plot` or
:mod:`rpx.cli`.
"""
