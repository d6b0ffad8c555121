"""The analysis layer: global sensitivity indices and fitting models to measured voltages.

Owns the global sensitivity designs and estimators (Sobol', Morris, DGSM), and fitting
(data tables, the batched Adam + Levenberg–Marquardt solver, standard errors and
identifiability), profile-likelihood intervals (``profile``) and posterior sampling
(``sample``, BlackJAX NUTS).

May import: :mod:`rpx.physics`, :mod:`rpx.sweep`, JAX, optax, BlackJAX, numpy, scipy,
pandas, xarray and itself. Never imports :mod:`rpx.plot` or :mod:`rpx.cli`.
"""
