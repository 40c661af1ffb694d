"""The power of ``serlib check``: the smallest shift of one Table 1 cell that it flags with 80 % probability.

A shift ``d`` of a cell (a bug that costs or adds ``d`` points of UAR in one setting x condition) moves
each of the cell's seeds by about ``d``. Per rule of ``serlib.evidence.check``:

- **exact** (same CPU family, package versions, oneDNN and threads as the reference's values): any
  change of a printed value (0.01 points) is flagged, with probability 1.
- **tolerance** (seeds the reference has, computed on another CPU family or environment): seed ``i`` is
  flagged when ``|d + drift_i| > tol``. With the drift normal with sd ``s`` (measured,
  ``check_seeds.derive_tolerance``) and independent over the ``n`` compared seeds,
  P(flag) = 1 - q(d)^n, q(d) = Phi((tol - d)/s) - Phi((-tol - d)/s). With any drift within its measured
  bound ``D`` (no distribution assumed) a shift is always flagged when ``d > tol + D``.
- **interval** (new seeds): the mean of ``n`` new seeds is flagged outside the prediction interval
  ``m ± t_c · sd · sqrt(1/n + 1/n_ref)``; with the seeds normal, (mean - m) / (sd · sqrt(1/n + 1/n_ref))
  is noncentral t with ``n_ref - 1`` degrees of freedom and noncentrality d / (sd · sqrt(1/n + 1/n_ref)),
  so P(flag) = 1 - F(t_c) + F(-t_c), F its distribution function.

Where a cell has seeds under two rules they are checked independently, so P(flag) = 1 - prod(1 - P_i).
``shift_for`` solves P(flag)(d) = 80 % for ``d`` (P rises with d >= 0).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from scipy import optimize, stats

POWER = 0.8
PRINTED_STEP = 0.01  # the smallest printed change of a UAR in % (two decimals): the exact rule's power


def tolerance_power(d: float, tolerance: float, drift_sd: float, n: int) -> float:
    """P(at least one of ``n`` seeds is outside ``±tolerance``) for a shift ``d``, normal drift sd ``drift_sd``."""
    if n < 1:
        return 0.0
    inside = stats.norm.cdf((tolerance - d) / drift_sd) - stats.norm.cdf((-tolerance - d) / drift_sd)
    return float(1.0 - inside**n)


def interval_power(d: float, sd: float, n_reference: int, n_yours: int, level: float) -> float:
    """P(the mean of ``n_yours`` new seeds, shifted by ``d``, is outside the ``level`` prediction interval)."""
    if n_yours < 1 or n_reference < 2 or not math.isfinite(sd) or sd <= 0:
        return 0.0
    df = n_reference - 1
    critical = float(stats.t.ppf(0.5 + level / 2.0, df))
    noncentrality = d / (sd * math.sqrt(1.0 / n_yours + 1.0 / n_reference))
    power = float(stats.nct.sf(critical, df, noncentrality) + stats.nct.cdf(-critical, df, noncentrality))
    if math.isnan(power):  # scipy's noncentral t fails far in its tails: the normal there
        power = float(stats.norm.sf(critical - noncentrality) + stats.norm.cdf(-critical - noncentrality))
    return power


def exact_power(d: float) -> float:
    """The exact rule flags every change of a printed value."""
    return 1.0 if d >= PRINTED_STEP else 0.0


def shift_for(parts: Sequence[Callable[[float], float]], power: float = POWER) -> float:
    """The smallest ``d >= 0`` at which the independent checks ``parts`` (each P(flag) as a function of d)
    flag with probability ``power`` together; nan without any part."""
    if not parts:
        return math.nan

    def together(d: float) -> float:
        missed = 1.0
        for part in parts:
            missed *= 1.0 - part(d)
        return 1.0 - missed

    if together(PRINTED_STEP) >= power:
        return PRINTED_STEP
    high = 1.0
    while together(high) < power:
        high *= 2.0
        if high > 1e4:
            return math.inf
    return float(optimize.brentq(lambda d: together(d) - power, PRINTED_STEP, high, xtol=1e-6))
