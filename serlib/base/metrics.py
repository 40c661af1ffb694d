"""Evaluation measures: UAR, confusion matrices, and summaries over random seeds.

UAR (unweighted average recall) is the mean of the per-class recalls, i.e. scikit-learn's balanced
accuracy (equal to ``recall_score(average='macro')`` over the classes present in ``y_true``). Over seeds
serlib reports what the paper reports (mean, min, max) plus a 95 % confidence interval of the mean
(Student's t) and a paired test of each condition against the baseline.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats
from sklearn.metrics import balanced_accuracy_score, confusion_matrix
from statsmodels.stats.power import TTestPower


class MetricsError(ValueError):
    """Inputs to a measure are inconsistent (lengths, empty sets, unknown labels)."""


def uar(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Unweighted average recall: the mean recall over the classes that occur in ``y_true``."""
    true, predicted = np.asarray(y_true), np.asarray(y_pred)
    if true.shape != predicted.shape:
        raise MetricsError(f"y_true has {true.shape} labels but y_pred {predicted.shape}")
    if true.size == 0:
        raise MetricsError("UAR of an empty set of predictions is undefined")
    with warnings.catch_warnings():  # predicted classes absent from y_true are expected, not a problem
        warnings.simplefilter("ignore", UserWarning)
        return float(balanced_accuracy_score(true, predicted))


def uar_by_group(
    frame: pd.DataFrame, keys: Sequence[str], true: str = "true", predicted: str = "predicted"
) -> pd.DataFrame:
    """``uar`` of every group of ``frame`` by ``keys`` at once (the speaker-level tests score thousands of
    small groups, where ``uar``'s checks cost 3 ms a call): per group the mean over its true classes of
    the share predicted right, with ``n_test`` and ``classes``. ``tests/test_metrics.py`` holds it equal
    to ``uar`` group by group."""
    keys = list(keys)
    right = frame[true].to_numpy() == frame[predicted].to_numpy()
    marked = frame[[*keys, true]].assign(_right=right.astype(np.float64))
    recall = marked.groupby([*keys, true], sort=True, dropna=True)["_right"].mean()
    grouped = marked.groupby(keys, sort=True, dropna=True)
    return pd.DataFrame(
        {
            "uar": recall.groupby(level=list(range(len(keys))), sort=True).mean(),
            "n_test": grouped.size(),
            "classes": grouped[true].nunique(),
        }
    ).reset_index()


def confusion(y_true: ArrayLike, y_pred: ArrayLike, labels: Sequence[Any]) -> np.ndarray:
    """Counts ``[true, predicted]`` in the order of ``labels``."""
    return confusion_matrix(np.asarray(y_true), np.asarray(y_pred), labels=list(labels))


def row_normalise(counts: ArrayLike) -> np.ndarray:
    """Each row divided by its sum (recall per true class on the diagonal); empty rows stay zero."""
    array = np.asarray(counts, dtype=np.float64)
    totals = array.sum(axis=1, keepdims=True)
    return np.divide(array, totals, out=np.zeros_like(array), where=totals > 0)


def mean_confusion(matrices: Sequence[ArrayLike]) -> np.ndarray:
    """The mean of row-normalised confusion matrices (e.g. one per seed), as the paper's Figure 2."""
    if not len(matrices):
        raise MetricsError("no confusion matrices to average")
    return np.mean([row_normalise(m) for m in matrices], axis=0)


MIN_VALUES_FOR_INTERVAL = 3
"""Below 3 seeds a t interval is uninformative (2 seeds: the t quantile is 12.7 and the interval spans
most of the scale), so no interval is given."""


def summarise(
    values: ArrayLike, confidence: float = 0.95, bounds: tuple[float, float] | None = (0.0, 1.0)
) -> dict[str, float]:
    """Mean, min, max, standard deviation and a t-based confidence interval of the mean over seeds.

    The interval needs at least ``MIN_VALUES_FOR_INTERVAL`` values (else NaN: tables print "n/a (2
    seeds)") and is clipped to ``bounds``, the range the measure can take (a UAR lies in [0, 1]).
    """
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        raise MetricsError("no values to summarise")
    mean = float(array.mean())
    result = {"mean": mean, "min": float(array.min()), "max": float(array.max()), "n": int(array.size)}
    result["std"] = float(array.std(ddof=1)) if array.size > 1 else math.nan
    result.update(ci_low=math.nan, ci_high=math.nan)
    if array.size >= MIN_VALUES_FOR_INTERVAL:
        half = float(
            stats.t.ppf(0.5 + confidence / 2, df=array.size - 1) * result["std"] / math.sqrt(array.size)
        )
        low, high = mean - half, mean + half
        if bounds is not None:
            low, high = max(low, bounds[0]), min(high, bounds[1])
        result.update(ci_low=low, ci_high=high)
    return result


def interval_text(low: float, high: float, n: int, scale: float = 1.0, digits: int = 2) -> str:
    """A confidence interval for a table: ``[71.55, 76.77]``, or why there is none (``n/a (2 seeds)``)."""
    if n < MIN_VALUES_FOR_INTERVAL or math.isnan(low) or math.isnan(high):
        return f"n/a ({n} seed{'s' if n != 1 else ''})"
    return f"[{scale * low:.{digits}f}, {scale * high:.{digits}f}]"


def paired_test(condition: ArrayLike, baseline: ArrayLike) -> dict[str, float]:
    """Paired comparison of per-seed scores of a condition with the baseline's for the same seeds.

    Returns the mean difference, the two-sided paired t-test p-value (primary; the seeds are the
    pairing unit, each seed's score already averaged over folds) and the Wilcoxon signed-rank p-value
    (distribution-free check; with fewer than 6 pairs it cannot fall below 0.05). NaN where undefined.
    """
    a = np.asarray(condition, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    if a.shape != b.shape:
        raise MetricsError(f"paired test needs the same seeds in both conditions, got {a.size} and {b.size}")
    difference = a - b
    result = {"mean_difference": float(difference.mean()) if difference.size else math.nan}
    result["t_p"] = math.nan
    result["wilcoxon_p"] = math.nan
    if difference.size >= 2 and np.any(difference != difference[0]):
        result["t_p"] = float(stats.ttest_rel(a, b).pvalue)
    if difference.size >= 2 and np.any(difference != 0):
        result["wilcoxon_p"] = float(stats.wilcoxon(a, b, zero_method="zsplit").pvalue)
    return result


def minimal_detectable_difference(differences: ArrayLike, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest true mean difference a two-sided paired t-test over these pairs would detect at
    level ``alpha`` with probability ``power``, given their measured spread (statsmodels' power of the
    one-sample t-test: effect size in standard deviations, times the pairs' standard deviation).

    NaN for fewer than 3 pairs. For many pairs it approaches ``(z[1-alpha/2] + z[power]) * sd / sqrt(n)``.
    """
    values = np.asarray(differences, dtype=np.float64)
    if values.size < MIN_VALUES_FOR_INTERVAL:
        return math.nan
    effect = TTestPower().solve_power(
        effect_size=None, nobs=values.size, alpha=alpha, power=power, alternative="two-sided"
    )
    return float(effect) * float(values.std(ddof=1))


def paired_comparison(
    condition: ArrayLike, baseline: ArrayLike, alpha: float = 0.05, power: float = 0.8
) -> dict[str, float]:
    """A condition against the baseline over matched pairs (e.g. (fold, seed) runs): the mean
    difference with its t confidence interval, the paired t-test and Wilcoxon p-values
    (``paired_test``), the pairs' standard deviation and the minimal detectable difference."""
    a = np.asarray(condition, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    result = paired_test(a, b)
    difference = a - b
    n = int(difference.size)
    result.update(n=n, sd=math.nan, ci_low=math.nan, ci_high=math.nan, mdd=math.nan)
    if n >= 2:
        result["sd"] = float(difference.std(ddof=1))
    if n >= MIN_VALUES_FOR_INTERVAL:
        half = float(stats.t.ppf(1 - alpha / 2, df=n - 1) * result["sd"] / math.sqrt(n))
        result.update(ci_low=result["mean_difference"] - half, ci_high=result["mean_difference"] + half)
        result["mdd"] = minimal_detectable_difference(difference, alpha, power)
    return result
