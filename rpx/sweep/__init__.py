"""The sweep layer: parameter spaces evaluated chunk by chunk into zarr stores.

Owns the spec (what the user asks for), the plan (the spec resolved once against the
model registry: outputs, gradient variables, attributes, coordinates, chunk grid), the
chunk kernel, the store (template, writers, completion markers), the local runner,
device placement, the dask.distributed runner and the reductions.

Data flows one way: ``spec -> plan -> kernel -> store -> runner``; the distributed
runner uses the local pieces (plan, kernel, store, devices), never the runner.

May import: :mod:`rpx.physics`, JAX, numpy, xarray, zarr, dask, fsspec and itself. Never
imports :mod:`rpx.analysis`, :mod:`rpx.plot` or :mod:`rpx.cli`.
"""
