"""Shared steps of the classic-experiment scripts: load a bundled data file, fit, plot.

A bundled file with measured rows is fitted directly. A file without rows (no value
could be traced to the paper) is compared with the paper's published fit instead: the
published-fit curve is sampled over an illustrative design (chosen here, not the
paper's), ``n_cells`` synthetic cells add Gaussian noise of ``noise_mV``, and all are
fitted in one batched call. That shows what the design determines and checks that
``rpx.fit`` returns the published ratios from their own curve; it is not a
reproduction of the measurements.
"""

from __future__ import annotations

import importlib.resources
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import xarray as xr  # noqa: E402

import rpx  # noqa: E402

OUT = Path(__file__).parent / "out"


def bundled(name: str) -> pd.DataFrame:
    """A data file shipped in ``rpx/data`` (comment lines skipped)."""
    path = importlib.resources.files("rpx") / "data" / f"{name}.csv"
    with importlib.resources.as_file(path) as p:
        return pd.read_csv(p, comment="#", skipinitialspace=True)


def synthetic(
    design: pd.DataFrame, truth: Mapping[str, float], preset: str, n_cells: int,
    noise_mV: float, seed: int,
) -> pd.DataFrame:
    """``n_cells`` copies of ``design`` with V from the published fit plus noise."""
    params = {**rpx.preset(preset), **truth, **{c: design[c].to_numpy() for c in design}}
    V = np.asarray(rpx.resting_potential(params))
    rng = np.random.default_rng(seed)
    n = len(design)
    return pd.DataFrame(
        {
            "cell": np.repeat(np.arange(n_cells), n),
            **{c: np.tile(design[c].to_numpy(), n_cells) for c in design},
            "V": np.tile(V, n_cells) + noise_mV * rng.standard_normal(n * n_cells),
            "V_sd": noise_mV,
        }
    )


def ratio_table(ds: xr.Dataset, free: Sequence[str], published: Mapping[str, float]) -> str:
    """Fitted P_x/P_K (median over cells, spread and median SE) next to the published."""
    P_K = float(ds["P_K"])
    lines = [f"{'ratio':<10} {'published':>10} {'fitted':>10} {'sd over cells':>14} {'SE':>10}"]
    for name in free:
        r = ds[name].values / P_K
        se = ds[f"{name}_se"].values / P_K
        lines.append(
            f"{name + '/P_K':<10} {published[name]:>10.4g} {np.median(r):>10.4g} "
            f"{np.std(r):>14.2g} {np.median(se):>10.2g}"
        )
    return "\n".join(lines)


def fit_cells(data: pd.DataFrame, free: Sequence[str], preset: str) -> xr.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("error", rpx.IdentifiabilityWarning)
        return rpx.fit(data, free=list(free), preset=preset, starts=4)


def figure(
    path: Path, title: str, x: str, ds: xr.Dataset, cell: int, curve: pd.DataFrame,
    published: np.ndarray, fitted: np.ndarray, E_K: np.ndarray, data_label: str,
) -> None:
    """V against ``x`` (log axis): one cell's points, fitted and published curves, E_K."""
    OUT.mkdir(exist_ok=True)
    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    one = ds.sel(cell=cell)
    ax.plot(one[x].values, one["V_obs"].values, "o", color="k", label=data_label)
    ax.plot(curve[x], published, "-", color="tab:blue", label="published fit (GHK)")
    ax.plot(curve[x], fitted, "--", color="tab:orange", label="rpx.fit (GHK), this cell")
    ax.plot(curve[x], E_K, ":", color="tab:gray", label="Nernst E_K")
    ax.set_xscale("log")
    ax.set_xlabel(f"{x} (mM)")
    ax.set_ylabel("V (mV)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
