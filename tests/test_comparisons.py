"""Paired comparisons with the baseline over (fold, seed) runs and over folds, with the MDD."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from serlib.base import metrics
from serlib.evidence import comparisons


def _runs(effect: float, folds: int = 6, seeds: int = 5, seed: int = 0) -> pd.DataFrame:
    """BL and a condition that is ``effect`` better on every (fold, seed), plus noise and fold effects."""
    rng = np.random.default_rng(seed)
    fold_level = rng.normal(0.6, 0.05, folds)
    rows = []
    for fold in range(1, folds + 1):
        for s in range(seeds):
            base = fold_level[fold - 1] + rng.normal(0, 0.01)
            rows.append({"setting": "within", "condition": "BL", "seed": s, "fold": fold, "uar": base})
            rows.append(
                {
                    "setting": "within",
                    "condition": "U",
                    "seed": s,
                    "fold": fold,
                    "uar": base + effect + rng.normal(0, 0.01),
                }
            )
    for fold in range(1, folds + 1):
        rows.append(
            {
                "setting": "within",
                "condition": "eGeMAPS-SVM",
                "seed": 0,
                "fold": fold,
                "uar": fold_level[fold - 1] - 0.02,
            }
        )
    return pd.DataFrame(rows)


def test_pairs_over_runs_and_over_folds():
    runs = _runs(0.015)
    table = comparisons.paired_comparisons(runs, "BL").set_index(["condition", "pairs_over"])
    over_runs = table.loc[("U", "fold x seed")]
    assert over_runs["pairs"] == 30
    u = runs[runs["condition"] == "U"].set_index(["fold", "seed"])["uar"]
    bl = runs[runs["condition"] == "BL"].set_index(["fold", "seed"])["uar"]
    difference = (u - bl.reindex(u.index)).to_numpy()
    assert over_runs["mean_difference"] == pytest.approx(100 * difference.mean())
    assert over_runs["t_p"] == pytest.approx(stats.ttest_1samp(difference, 0).pvalue)
    assert over_runs["mdd"] == pytest.approx(100 * metrics.minimal_detectable_difference(difference))
    assert over_runs["ci_low"] > 0 and over_runs["t_p"] < 0.001  # 1.5 points, tiny noise: seen
    over_folds = table.loc[("U", "fold")]
    assert over_folds["pairs"] == 6
    svm = table.loc[("eGeMAPS-SVM", "fold")]
    assert svm["pairs"] == 6 and svm["mean_difference"] == pytest.approx(-2.0, abs=0.5)
    assert ("eGeMAPS-SVM", "fold x seed") not in table.index  # one run per fold: no seed pairs


def test_no_effect_gives_a_wide_interval_around_zero_and_an_mdd_that_bounds_it():
    table = comparisons.paired_comparisons(_runs(0.0, seed=3), "BL").set_index(["condition", "pairs_over"])
    row = table.loc[("U", "fold x seed")]
    assert row["ci_low"] < 0 < row["ci_high"]
    assert row["mdd"] > abs(row["mean_difference"])
    text = comparisons.comparisons_markdown(table.reset_index())
    assert "| within | U | fold x seed (secondary) | 30 |" in text and "MDD" in text
