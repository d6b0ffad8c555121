"""Test configuration: float64 available, strict dtype promotion, explicit precision casts.

x64 is switched on once, here, before any test module imports rpx; a test chooses its
precision by casting its inputs (the ``cast`` fixture), never by flipping the flag.
"""

from __future__ import annotations

import atexit
import gc
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping

# The suite shares one persistent compilation cache among its own processes (the
# pytest workers and every subprocess a test starts: CLI runs, crash harnesses,
# notebook kernels), in a fresh directory made for this run and removed after it.
# Nothing depends on what earlier runs or the user's own cache hold, and a program
# compiled by one test is loaded by the next process that needs it. The cache writes
# entries atomically (rpx._config), so processes killed by the crash tests leave
# nothing half-written behind. The tests of the cache itself set RPX_CACHE_DIR
# themselves. ``RPX_TEST_CACHE=off`` runs the suite with no cache at all.
if os.environ.get("RPX_TEST_CACHE", "").lower() == "off":
    os.environ["RPX_CACHE_DIR"] = "off"
else:
    if not os.environ.get("RPX_TEST_CACHE_DIR"):  # the first process of this run
        os.environ["RPX_TEST_CACHE_DIR"] = tempfile.mkdtemp(prefix="rpx-test-cache-")
        atexit.register(shutil.rmtree, os.environ["RPX_TEST_CACHE_DIR"], True)
    os.environ["RPX_CACHE_DIR"] = os.environ["RPX_TEST_CACHE_DIR"]

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

Cast = Callable[[Mapping[str, object], type], dict[str, jax.Array]]


def _cast(params: Mapping[str, object], dtype: type) -> dict[str, jax.Array]:
    """Every value of ``params`` as a JAX array of floating ``dtype``.

    Values go through float64 numpy first, so that a float32 run and a float64 run of
    the same inputs differ only by the rounding of the inputs to float32.
    """
    return {k: jnp.asarray(np.asarray(v, dtype=np.float64), dtype=dtype) for k, v in params.items()}


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs() -> object:
    """Drop JAX's compiled programs after each test module.

    Every compiled XLA:CPU program holds about six memory mappings; a single process
    that compiles the whole suite's programs (over ten thousand) reaches the kernel's
    ``vm.max_map_count`` (65,530 by default), after which the next compilation crashes
    the process with a segmentation fault. Modules do not share programs, so clearing
    between them costs nothing but keeps the process far below the limit.
    """
    yield
    jax.clear_caches()
    gc.collect()


@pytest.fixture
def cast() -> Cast:
    """The function ``cast(params, dtype)``: a dict of JAX arrays of the given dtype."""
    return _cast


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def dtype(request: pytest.FixtureRequest) -> type:
    """Run a test once in float32 and once in float64."""
    return request.param
