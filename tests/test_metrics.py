"""UAR, confusion matrices and the summaries over seeds, against scikit-learn, scipy and hand values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn.metrics import balanced_accuracy_score, recall_score

from serlib.base import metrics

# scikit-learn warns about predicted classes missing from y_true: expected for UAR, not a failure
pytestmark = pytest.mark.filterwarnings(
    "ignore:y_pred contains classes not in y_true:UserWarning", "ignore:A single label was found:UserWarning"
)
LABELS = st.sampled_from(["angry", "happy", "neutral", "sad"])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(LABELS, LABELS), min_size=1, max_size=60))
def test_uar_is_balanced_accuracy_and_macro_recall_over_the_true_classes(pairs):
    y_true = [t for t, _ in pairs]
    y_pred = [p for _, p in pairs]
    value = metrics.uar(y_true, y_pred)
    assert value == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    macro = recall_score(y_true, y_pred, labels=sorted(set(y_true)), average="macro", zero_division=0)
    assert value == pytest.approx(macro)
    recalls = [np.mean([p == c for t, p in pairs if t == c]) for c in sorted(set(y_true))]
    assert value == pytest.approx(np.mean(recalls))


def test_uar_by_hand_differs_from_accuracy_on_unbalanced_classes():
    y_true = ["a"] * 8 + ["b"] * 2
    y_pred = ["a"] * 10  # accuracy 0.8, but only one of two classes recognised
    assert metrics.uar(y_true, y_pred) == pytest.approx(0.5)


def test_uar_refuses_mismatched_or_empty_inputs():
    with pytest.raises(metrics.MetricsError):
        metrics.uar([1, 2], [1])
    with pytest.raises(metrics.MetricsError):
        metrics.uar([], [])


def test_row_normalised_confusion_and_its_mean():
    counts = metrics.confusion(
        ["a", "a", "b", "b", "b", "b"], ["a", "b", "b", "b", "b", "a"], ["a", "b", "c"]
    )
    np.testing.assert_array_equal(counts, [[1, 1, 0], [1, 3, 0], [0, 0, 0]])
    normalised = metrics.row_normalise(counts)
    np.testing.assert_allclose(normalised, [[0.5, 0.5, 0], [0.25, 0.75, 0], [0, 0, 0]])
    mean = metrics.mean_confusion([counts, np.array([[2, 0, 0], [0, 4, 0], [0, 0, 1]])])
    np.testing.assert_allclose(mean, [[0.75, 0.25, 0], [0.125, 0.875, 0], [0, 0, 0.5]])


def test_summary_over_seeds_matches_scipy_t_interval():
    values = [0.58, 0.60, 0.57, 0.59, 0.61]
    summary = metrics.summarise(values)
    low, high = stats.t.interval(0.95, df=4, loc=np.mean(values), scale=stats.sem(values))
    assert summary["mean"] == pytest.approx(np.mean(values))
    assert (summary["min"], summary["max"], summary["n"]) == (0.57, 0.61, 5)
    assert (summary["ci_low"], summary["ci_high"]) == pytest.approx((low, high))
    single = metrics.summarise([0.5])
    assert single["mean"] == 0.5 and math.isnan(single["ci_low"])


def test_paired_test_against_the_baseline():
    baseline = [0.50, 0.52, 0.51, 0.49, 0.53, 0.50]
    condition = [0.53, 0.54, 0.52, 0.52, 0.55, 0.54]
    result = metrics.paired_test(condition, baseline)
    assert result["mean_difference"] == pytest.approx(np.mean(np.subtract(condition, baseline)))
    assert result["t_p"] == pytest.approx(stats.ttest_rel(condition, baseline).pvalue)
    assert result["t_p"] < 0.01
    assert result["wilcoxon_p"] == pytest.approx(stats.wilcoxon(condition, baseline).pvalue)
    same = metrics.paired_test(baseline, baseline)
    assert same["mean_difference"] == 0 and math.isnan(same["t_p"]) and math.isnan(same["wilcoxon_p"])
    with pytest.raises(metrics.MetricsError, match="same seeds"):
        metrics.paired_test([0.5, 0.6], [0.5])


def test_interval_needs_three_seeds_and_stays_on_the_uar_scale():
    two = metrics.summarise([0.10, 0.95])  # a t interval over 2 seeds would be about [-4.7, 5.8]
    assert math.isnan(two["ci_low"]) and math.isnan(two["ci_high"]) and two["std"] > 0
    assert metrics.interval_text(two["ci_low"], two["ci_high"], 2) == "n/a (2 seeds)"
    assert metrics.interval_text(math.nan, math.nan, 1) == "n/a (1 seed)"
    wide = metrics.summarise([0.02, 0.98, 0.99])
    assert 0.0 <= wide["ci_low"] <= wide["mean"] <= wide["ci_high"] <= 1.0
    unclipped = stats.t.interval(
        0.95, df=2, loc=np.mean([0.02, 0.98, 0.99]), scale=stats.sem([0.02, 0.98, 0.99])
    )
    assert unclipped[0] < 0 and unclipped[1] > 1 and (wide["ci_low"], wide["ci_high"]) == (0.0, 1.0)
    assert metrics.interval_text(0.7155, 0.7677, 5, scale=100) == "[71.55, 76.77]"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=12))
def test_no_interval_leaves_the_unit_range(values):
    summary = metrics.summarise(values)
    if len(values) < metrics.MIN_VALUES_FOR_INTERVAL:
        assert math.isnan(summary["ci_low"])
    else:
        assert 0.0 <= summary["ci_low"] <= summary["ci_high"] <= 1.0


def test_minimal_detectable_difference_matches_the_normal_formula_for_many_pairs():
    rng = np.random.default_rng(0)
    differences = rng.normal(0.0, 0.03, 10_000)
    expected = (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * differences.std(ddof=1) / 100.0
    assert metrics.minimal_detectable_difference(differences) == pytest.approx(expected, rel=2e-3)
    assert math.isnan(metrics.minimal_detectable_difference([0.01, 0.02]))


def test_a_true_difference_of_the_mdd_is_detected_four_times_in_five():
    """Simulated experiments of 20 pairs whose true mean difference is the MDD computed from the true
    spread: the paired t-test rejects at 5 % in about 80 % of them (the definition of power 0.8)."""
    rng = np.random.default_rng(1)
    sd, n = 0.02, 20
    measured = rng.normal(size=n)
    measured = (measured - measured.mean()) / measured.std(ddof=1) * sd  # a spread of exactly sd
    mdd = metrics.minimal_detectable_difference(measured)
    rejected = [stats.ttest_1samp(rng.normal(mdd, sd, n), 0.0).pvalue < 0.05 for _ in range(2000)]
    assert 0.76 < np.mean(rejected) < 0.84


def test_paired_comparison_interval_and_tests():
    base = np.array([0.50, 0.52, 0.51, 0.49, 0.53, 0.50, 0.48, 0.55])
    cond = base + np.array([0.01, 0.02, 0.00, 0.03, 0.01, 0.02, 0.01, 0.02])
    result = metrics.paired_comparison(cond, base)
    difference = cond - base
    low, high = stats.t.interval(0.95, df=7, loc=difference.mean(), scale=stats.sem(difference))
    assert (result["ci_low"], result["ci_high"]) == pytest.approx((low, high))
    assert result["n"] == 8 and result["t_p"] == pytest.approx(stats.ttest_rel(cond, base).pvalue)
    assert result["mdd"] == pytest.approx(metrics.minimal_detectable_difference(difference))
    assert result["mdd"] > 0 and result["ci_low"] > 0


def test_uar_by_group_is_uar_group_by_group():
    import pandas as pd

    rng = np.random.default_rng(7)
    classes = np.array(["angry", "happy", "neutral", "sad"])
    frame = pd.DataFrame(
        {
            "run": rng.integers(0, 5, 600),
            "speaker": rng.choice(["s1", "s2", "s3"], 600),
            "true": rng.choice(classes[:3], 600),  # a class never true, but predicted
            "predicted": rng.choice(classes, 600),
        }
    )
    grouped = metrics.uar_by_group(frame, ["run", "speaker"]).set_index(["run", "speaker"])
    assert len(grouped) == 15
    for (run, speaker), group in frame.groupby(["run", "speaker"]):
        row = grouped.loc[(run, speaker)]
        assert row["uar"] == pytest.approx(metrics.uar(group["true"], group["predicted"]), abs=1e-12)
        assert row["n_test"] == len(group) and row["classes"] == group["true"].nunique()
