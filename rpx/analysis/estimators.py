"""Estimators of global sensitivity indices from model evaluations (host side, float64).

Pure numpy functions of arrays of outputs (and, for DGSM, gradients), independent of
how the samples were evaluated, so that they can be checked against SALib on the same
samples. Formulas and sources:

* Sobol' first-order and total indices from the Saltelli design (Saltelli 2002, Comput.
  Phys. Commun. 145:280; Saltelli et al. 2010, Comput. Phys. Commun. 181:259). With y
  standardised over all evaluations (as SALib does: the estimators are not invariant to
  a shift of y) and V = Var([y_A, y_B]):

  - S_i = mean(y_B·(y_ABi − y_A)) / V (Saltelli et al. 2010, table 2 (b)),
  - ST_i = mean((y_A − y_ABi)²) / (2V) (Jansen 1999; Saltelli et al. 2010, table 2 (f)),
  - S_ij = mean(y_BAi·y_ABj − y_A·y_B) / V − S_i − S_j (Saltelli 2002).

  These are the formulas of SALib 1.6 (``SALib.analyze.sobol``).
* Morris (1991, Technometrics 33:161) elementary effects on one-at-a-time trajectories:
  μ, μ* (Campolongo, Cariboni & Saltelli 2007, Environ. Model. Softw. 22:1509) and σ.
* DGSM (Sobol' & Kucherenko 2009, Math. Comput. Simul. 79:3009): ν_i = E[(∂y/∂t_i)²]
  and Poincaré's bound ST_i ≤ ν_i·w_i²/(π²·Var(y)) for t_i uniform on an interval of
  length w_i.

Confidence intervals are nonparametric bootstrap intervals: the rows (base samples or
trajectories) are resampled with replacement ``n_boot`` times (exact multinomial counts,
drawn block by block so that memory stays bounded) and ``*_conf`` is z_(1+c)/2 times the
bootstrap standard deviation, as in SALib.
"""

from __future__ import annotations

from collections.abc import Callable
from statistics import NormalDist

import numpy as np

# Rows per host block of the estimators (and of their bootstrap weights).
_BLOCK_ROWS = 1 << 14


def _bootstrap_sums(
    terms: Callable[[int, int], np.ndarray], n_rows: int, n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    """Row sums of ``terms`` under unit weights and ``n_boot`` bootstrap resamplings.

    Returns an array (1 + n_boot, n_terms): row 0 is Σ_r T_r, row b the sum with the
    multinomial counts of resample b (n_rows draws with replacement). Counts are drawn
    block by block: the number of draws falling in a block is binomial given those
    left, which is the exact multinomial law, with memory O(block · n_boot).
    """
    acc = None
    left = np.full(n_boot, n_rows)
    rows_left = n_rows
    for start in range(0, n_rows, _BLOCK_ROWS):
        t = terms(start, min(start + _BLOCK_ROWS, n_rows))
        s = t.shape[0]
        in_block = rng.binomial(left, s / rows_left)
        w = np.empty((1 + n_boot, s))
        w[0] = 1.0
        for b in range(n_boot):
            w[1 + b] = np.bincount(rng.integers(0, s, in_block[b]), minlength=s)
        left -= in_block
        rows_left -= s
        part = w @ t
        acc = part if acc is None else acc + part
    return acc


def _conf(boot: np.ndarray, conf_level: float) -> np.ndarray:
    """Half-width z·sd of bootstrap estimates ``boot`` (resamples on axis 0); NaN if none."""
    if boot.shape[0] < 2:
        return np.full(boot.shape[1:], np.nan)
    return NormalDist().inv_cdf(0.5 + conf_level / 2) * boot.std(axis=0, ddof=1)


def sobol_estimates(
    y: np.ndarray,
    d: int,
    second_order: bool,
    n_boot: int,
    conf_level: float,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Sobol' indices from outputs ``y`` of shape (N, D + 2) or (N, 2D + 2), SALib row order.

    Returns ``S1``, ``ST`` (D,), with second order ``S2`` (D, D; NaN except i < j), each
    with ``*_conf``; and ``mean``, ``variance`` of y (from the A and B rows).
    """
    n = y.shape[0]
    mean, std = float(np.mean(y, dtype=np.float64)), float(np.std(y, dtype=np.float64))
    scale = std if std > 0 else 1.0
    pairs = [(i, j) for i in range(d) for j in range(i + 1, d)] if second_order else []
    pi = np.asarray([p[0] for p in pairs], int)
    pj = np.asarray([p[1] for p in pairs], int)

    def terms(lo: int, hi: int) -> np.ndarray:
        z = (y[lo:hi].astype(np.float64) - mean) / scale
        a, b, ab = z[:, 0], z[:, -1], z[:, 1 : d + 1]
        cols = [
            a[:, None],
            b[:, None],
            a[:, None] ** 2,
            b[:, None] ** 2,
            b[:, None] * (ab - a[:, None]),
            (a[:, None] - ab) ** 2,
        ]
        if second_order:
            ba = z[:, d + 1 : 2 * d + 1]
            cols.append(ba[:, pi] * ab[:, pj] - (a * b)[:, None])
        return np.concatenate(cols, axis=1)

    m = _bootstrap_sums(terms, n, n_boot, rng) / n
    mu = (m[:, 0] + m[:, 1]) / 2
    var = (m[:, 2] + m[:, 3]) / 2 - mu**2
    with np.errstate(divide="ignore", invalid="ignore"):
        s1 = m[:, 4 : 4 + d] / var[:, None]
        st = 0.5 * m[:, 4 + d : 4 + 2 * d] / var[:, None]
        res = {
            "S1": s1[0],
            "S1_conf": _conf(s1[1:], conf_level),
            "ST": st[0],
            "ST_conf": _conf(st[1:], conf_level),
        }
        if second_order:
            s2 = m[:, 4 + 2 * d :] / var[:, None] - s1[:, pi] - s1[:, pj]
            full = np.full((d, d), np.nan)
            conf = np.full((d, d), np.nan)
            full[pi, pj] = s2[0]
            conf[pi, pj] = _conf(s2[1:], conf_level)
            res |= {"S2": full, "S2_conf": conf}
    ab_rows = np.concatenate([y[:, 0], y[:, -1]]).astype(np.float64)
    res |= {"mean": np.mean(ab_rows), "variance": np.var(ab_rows)}
    return res


def morris_trajectories(r: int, d: int, levels: int, rng: np.random.Generator) -> np.ndarray:
    """``r`` random Morris (1991) trajectories in [0, 1]^d, shape (r, d + 1, d).

    Each starts at a random grid point x* ∈ {0, 1/(p−1), ..., 1 − Δ}^d (moved up by Δ
    in the coordinates that will step down), then changes one coordinate at a time, in a
    random order and direction, by Δ = p/(2(p − 1)): the randomised design matrix
    B* = (J x* + (Δ/2)[(2B − J) D* + J]) P* of Morris (1991).
    """
    delta = levels / (2 * (levels - 1))
    grid = np.arange(levels // 2) / (levels - 1)
    x0 = rng.choice(grid, size=(r, d))
    signs = rng.choice(np.array([-1.0, 1.0]), size=(r, d))
    order = np.argsort(rng.random((r, d)), axis=1)
    start = x0 + delta * (signs < 0)
    step = (order[:, :, None] == np.arange(d)) * (signs * delta)[:, None, :]
    x = np.repeat(start[:, None, :], d + 1, axis=1)
    x[:, 1:, :] += np.cumsum(step, axis=1)
    return np.clip(x, 0.0, 1.0)


def morris_estimates(
    x: np.ndarray, y: np.ndarray, n_boot: int, conf_level: float, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """μ, μ*, σ (ddof 1) of the elementary effects of trajectories ``x`` (r, D+1, D) -> ``y``.

    The elementary effect of the coordinate that changes between consecutive points is
    (y_after − y_before)/(u_after − u_before). Each statistic has a bootstrap ``*_conf``
    (trajectories resampled).
    """
    r, _, d = x.shape
    dx = np.diff(x, axis=1)  # (r, D, D): one nonzero per step
    dims = np.argmax(np.abs(dx), axis=2)
    ee = np.empty((r, d))
    rows = np.arange(r)[:, None]
    step = dx[rows, np.arange(d)[None, :], dims]
    ee[rows, dims] = np.diff(y.astype(np.float64), axis=1) / step

    def terms(lo: int, hi: int) -> np.ndarray:
        e = ee[lo:hi]
        return np.concatenate([e, np.abs(e), e**2], axis=1)

    m = _bootstrap_sums(terms, r, n_boot, rng)
    mu, mu_star = m[:, :d] / r, m[:, d : 2 * d] / r
    with np.errstate(invalid="ignore", divide="ignore"):
        sigma = np.sqrt(np.maximum(m[:, 2 * d :] - r * mu**2, 0.0) / (r - 1))
    return {
        "mu": mu[0],
        "mu_conf": _conf(mu[1:], conf_level),
        "mu_star": mu_star[0],
        "mu_star_conf": _conf(mu_star[1:], conf_level),
        "sigma": sigma[0],
        "sigma_conf": _conf(sigma[1:], conf_level),
    }


def dgsm_estimates(
    y: np.ndarray,
    grad: np.ndarray,
    t_width: np.ndarray,
    n_boot: int,
    conf_level: float,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """DGSM from values ``y`` (N,) and gradients ``grad`` = ∂y/∂t (N, D).

    ``dgsm`` = ν_i·Var(t_i) = E[(∂y/∂t_i)²]·w_i²/12 and ``dgsm_bound`` =
    ν_i·w_i²/(π²·Var(y)) ≥ ST_i, with w_i = t_hi − t_lo.
    """
    n = y.shape[0]
    shift = float(np.mean(y, dtype=np.float64))

    def terms(lo: int, hi: int) -> np.ndarray:
        yy = y[lo:hi].astype(np.float64) - shift
        return np.concatenate(
            [yy[:, None], yy[:, None] ** 2, grad[lo:hi].astype(np.float64) ** 2], axis=1
        )

    m = _bootstrap_sums(terms, n, n_boot, rng) / n
    var = m[:, 1] - m[:, 0] ** 2
    nu = m[:, 2:]
    dgsm = nu * (t_width**2 / 12.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = nu * (t_width**2 / np.pi**2) / var[:, None]
    return {
        "dgsm": dgsm[0],
        "dgsm_conf": _conf(dgsm[1:], conf_level),
        "dgsm_bound": bound[0],
        "dgsm_bound_conf": _conf(bound[1:], conf_level),
        "mean": shift + m[0, 0],
        "variance": var[0],
    }
