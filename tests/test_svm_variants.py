"""The SVM reference's variants (serlib.protocol.svm): SVC against LinearSVC, class weights, and the
chosen C with its inner-CV curve per fold in the table of ``serlib baseline table``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.svm import SVC, LinearSVC

from serlib.evidence import svm_tables
from serlib.protocol import svm


def _data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    generator = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 30)
    features = generator.normal(size=(120, 6)) + 3.0 * np.eye(4, 6)[labels]
    return features, labels, np.tile(np.arange(1, 4), 40)


@pytest.mark.parametrize(("estimator", "kind"), [("svc", SVC), ("linear_svc", LinearSVC)])
@pytest.mark.parametrize("class_weight", ["balanced", None])
def test_each_variant_tunes_c_over_training_groups(estimator, kind, class_weight) -> None:
    features, labels, groups = _data()
    search = svm.fit_svm(features, labels, groups, estimator, class_weight)
    model = search.best_estimator_.named_steps["svm"]
    assert isinstance(model, kind) and model.class_weight == class_weight
    curve = svm.inner_curve(search)
    assert len(curve) == len(svm.C_GRID)
    assert curve[f"{search.best_params_['svm__C']:g}"] == pytest.approx(search.best_score_)
    assert np.mean(search.predict(features) == labels) > 0.7


def test_an_unknown_variant_is_refused() -> None:
    with pytest.raises(svm.BaselineError, match="linear_svc"):
        svm.svm_estimator("rbf")


def test_the_c_table_shows_the_chosen_c_and_the_curve_per_fold(tmp_path) -> None:
    protocol = {"settings": {"within": {"folds": [1, 2]}}}
    for fold, c in ((1, 0.01), (2, 1.0)):
        folder = tmp_path / "results" / "within" / svm.CONDITION / "seed0" / f"fold{fold}"
        folder.mkdir(parents=True)
        curve = {str(x): 0.4 + (0.1 if x == c else 0.0) for x in svm.C_GRID}
        (folder / "metrics.json").write_text(
            json.dumps(
                {
                    "setting": "within",
                    "condition": svm.CONDITION,
                    "seed": 0,
                    "fold": fold,
                    "uar": 0.45,
                    "best_c": c,
                    "inner_cv_uar": 0.5,
                    "inner_cv_uar_by_c": curve,
                }
            )
        )
    text = svm_tables.c_markdown(tmp_path, protocol)
    assert "| within | 1 | 45.00 | 0.01 | 50.00 |" in text
    assert "| within | 2 | 45.00 | 1 | 50.00 |" in text
    assert "C=0.0001" in text and "50.0" in text
