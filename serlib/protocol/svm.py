"""The classic reference: eGeMAPS functionals + standardised linear SVM, on the ACNN's folds.

``run_baseline`` trains, per leave-one-session-out fold of ``protocol.within_corpus`` (and once for the
cross-corpus setting), a scikit-learn ``Pipeline(StandardScaler, SVC(kernel="linear"))`` on the 88
eGeMAPSv02 functionals (store extractor ``egemaps``). The SVM's C is chosen by ``GridSearchCV`` with
``GroupKFold`` over the *training* sessions only (UAR = balanced accuracy as the criterion), so the test
session never influences the model. Results go to the ACNN's layout
(``<output_dir>/results/<setting>/eGeMAPS-SVM/seed0/fold<f>/`` with ``predictions.csv`` and, last,
``metrics.json``), and ``serlib.evidence.svm_tables.table_with_baseline`` renders Table 1 with the SVM as
an extra row. The SVM is
deterministic, so it has one "seed" (min = max = mean; no interval over seeds).
Command line: ``serlib svm --config configs/emodb.yaml``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC

from serlib.base import metrics
from serlib.base.config import Config
from serlib.base.files import write_csv, write_json
from serlib.data import loaders
from serlib.data.manifest import EMOTIONS, SUBSET_COLUMN
from serlib.features import normalisation, store
from serlib.protocol import labeled
from serlib.protocol.conditions import corpora_of, settings_of
from serlib.protocol.folds import CROSS_FOLD, fold_indices, session_folds, within_folds
from serlib.protocol.run_files import prediction_columns, run_folder, subset_scores

log = logging.getLogger(__name__)

CONDITION = "eGeMAPS-SVM"


SEED = 0


C_GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0, 3.0, 10.0)
"""Candidate SVM complexities (log grid; eGeMAPS has 88 standardised features and a few hundred
training utterances, so the optimum is usually well below 1)."""


PARAMETERS = {
    "kernel": "linear",
    "class_weight": "balanced",
    "c_grid": list(C_GRID),
    "scoring": "balanced_accuracy",
}


class BaselineError(ValueError):
    """The baseline cannot run as configured; the message names the corpus, file or key and the fix."""


def svm_normalisation(mode: str) -> str:
    """The normalisation the SVM applies under ``features.normalisation: mode``.

    The SVM's pipeline always standardises with the training fold's statistics (``StandardScaler``:
    eGeMAPS functionals span orders of magnitude, and the classic reference is reported standardised),
    so ``none``, which switches off the ACNN's in-model standardisation, is ``train`` for the SVM;
    ``corpus`` and ``speaker`` standardise each group first, then as ``train``."""
    return "train" if mode == "none" else mode


def labeled_functionals(config: Config, key: str) -> tuple[pd.DataFrame, np.ndarray]:
    """The 4-class utterances of corpus ``key`` (manifest rows) and their 88 eGeMAPS functionals."""
    features = store.extract_configured(config, key, "egemaps")
    manifest = labeled.labeled_manifest(config, key).reset_index(drop=True)
    position = {utterance: i for i, utterance in enumerate(features.ids)}
    missing = [u for u in manifest["utterance_id"] if u not in position]
    if missing:
        raise BaselineError(
            f"corpora.{key}: {len(missing)} labeled utterances have no eGeMAPS features (e.g. {missing[:3]}); "
            "re-run `serlib extract --extractor egemaps`"
        )
    rows = np.asarray([position[u] for u in manifest["utterance_id"]], dtype=np.int64)
    everything = np.asarray(features.features, dtype=np.float64).reshape(len(features.ids), -1)
    mode = svm_normalisation(config.features.normalisation)
    if (
        mode in normalisation.GROUPED
    ):  # every utterance of the corpus (or speaker) in the store, labels unused
        speakers = loaders.load_configured(config, key).set_index("utterance_id")["speaker"]
        groups = normalisation.groups_for(mode, speakers.reindex(features.ids).fillna("").to_numpy(), key)
        everything = normalisation.standardise_vectors(everything, groups)
    values = everything[rows]
    if not np.all(np.isfinite(values)):
        raise BaselineError(f"corpora.{key}: non-finite eGeMAPS functionals in {features.path}")
    return manifest, values


def labels_of(manifest: pd.DataFrame) -> np.ndarray:
    lookup = {name: i for i, name in enumerate(EMOTIONS)}
    return np.asarray([lookup[e] for e in manifest["emotion"]], dtype=np.int64)


ESTIMATORS = ("svc", "linear_svc")
"""``svc``: ``SVC(kernel="linear")``, one-vs-one, hinge loss (serlib's reference, ``PARAMETERS``);
``linear_svc``: ``LinearSVC``, one-vs-rest, squared hinge (liblinear), as many eGeMAPS baselines use."""


def svm_estimator(estimator: str = "svc", class_weight: str | None = "balanced") -> Any:
    """The standardised linear SVM pipeline: ``estimator`` one of ``ESTIMATORS``; ``class_weight``
    ``"balanced"`` or None."""
    if estimator not in ESTIMATORS:
        raise BaselineError(f"SVM estimator {estimator!r}: choose one of {ESTIMATORS}")
    if class_weight not in ("balanced", None):
        raise BaselineError(f"SVM class_weight {class_weight!r}: choose 'balanced' or None")
    model = (
        SVC(kernel="linear", class_weight=class_weight)
        if estimator == "svc"
        else LinearSVC(class_weight=class_weight, max_iter=100_000, random_state=SEED)
    )
    return Pipeline([("scale", StandardScaler()), ("svm", model)])


def fit_svm(
    features: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    estimator: str = "svc",
    class_weight: str | None = "balanced",
    c_grid: Sequence[float] = C_GRID,
) -> Any:
    """A standardised linear SVM with C chosen by GroupKFold over ``groups`` (the training sessions);
    the defaults are serlib's reference (``PARAMETERS``), the others the variants of
    ``docs/probes/svm_variants.py``."""
    sessions = sorted(set(np.asarray(groups).tolist()))
    if len(sessions) < 2:
        raise BaselineError("tuning C needs at least 2 training sessions (GroupKFold over sessions)")
    search = GridSearchCV(
        svm_estimator(estimator, class_weight),
        {"svm__C": list(c_grid)},
        scoring="balanced_accuracy",
        cv=GroupKFold(n_splits=len(sessions)),
        refit=True,
        n_jobs=1,
    )
    search.fit(features, labels, groups=groups)
    return search


def inner_curve(search: Any) -> dict[str, float]:
    """The inner-CV UAR (mean over the inner folds) of each candidate C of a fitted ``fit_svm``."""
    return {
        f"{float(c):g}": float(score)
        for c, score in zip(
            search.cv_results_["param_svm__C"], search.cv_results_["mean_test_score"], strict=True
        )
    }


def _softmax(scores: np.ndarray) -> np.ndarray:
    shifted = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def _write_run(
    folder: Path,
    manifest: pd.DataFrame,
    labels: np.ndarray,
    search: Any,
    features: np.ndarray,
    *,
    setting: str,
    fold: int,
    n_train: int,
    seconds: float,
    extra: dict[str, Any],
) -> dict[str, Any]:
    predicted = np.asarray(search.predict(features), dtype=np.int64)
    # SVC has no probabilities without Platt scaling (a random internal CV); the p_* columns hold the
    # softmax of the one-vs-rest decision values, for ranking only.
    scores = _softmax(np.asarray(search.decision_function(features), dtype=np.float64))
    frame = pd.DataFrame(
        {
            "utterance_id": manifest["utterance_id"].astype(str).to_numpy(),
            "fold": fold,
            "seed": SEED,
            "condition": CONDITION,
            "true": [EMOTIONS[i] for i in labels],
            "predicted": [EMOTIONS[i] for i in predicted],
            **{f"p_{name}": scores[:, i] for i, name in enumerate(EMOTIONS)},
            "arousal_true": "",
            "arousal_predicted": "",
            "valence_true": "",
            "valence_predicted": "",
            "speaker": manifest["speaker"].astype(str).to_numpy(),
            "subset": manifest[SUBSET_COLUMN].astype(str).to_numpy() if SUBSET_COLUMN in manifest else "",
        }
    )
    subset = frame["subset"].to_numpy() if SUBSET_COLUMN in manifest else None
    folder.mkdir(parents=True, exist_ok=True)
    write_csv(frame.loc[:, prediction_columns(subset)], folder / "predictions.csv", float_format="%.6f")
    result = {
        "setting": setting,
        "condition": CONDITION,
        "seed": SEED,
        "fold": int(fold),
        "uar": metrics.uar(labels, predicted),
        "accuracy": float(np.mean(labels == predicted)),
        "arousal_uar": math.nan,
        "valence_uar": math.nan,
        "confusion": metrics.confusion(labels, predicted, range(len(EMOTIONS))).tolist(),
        "classes": list(EMOTIONS),
        **subset_scores(labels, predicted, subset),
        "n_train": int(n_train),
        "n_test": len(labels),
        "epochs": 0,
        "final_loss": math.nan,
        "train_seconds": seconds,
        "best_c": float(search.best_params_["svm__C"]),
        "inner_cv_uar": float(search.best_score_),
        "inner_cv_uar_by_c": {
            str(c): float(s)
            for c, s in zip(
                search.cv_results_["param_svm__C"], search.cv_results_["mean_test_score"], strict=True
            )
        },
        **extra,
    }
    write_json(result, folder / "metrics.json")
    return result


def fingerprint(config: Config, setting: str) -> str:
    """Hash of what an SVM run depends on: the corpora, audio rate, folds restriction and SVM grid."""
    train_key, test_key = corpora_of(config, setting)
    parts = {
        "setting": setting,
        "audio": config.audio.model_dump(mode="json"),
        "corpora": {k: config.corpora[k].model_dump(mode="json") for k in sorted({train_key, test_key})},
        "svm": PARAMETERS,
        "normalisation": svm_normalisation(config.features.normalisation),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def _finished(folder: Path, expected: str) -> dict[str, Any] | None:
    path = folder / "metrics.json"
    if not path.is_file():
        return None
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None
    return stored if stored.get("fingerprint") == expected else None


def run_baseline(config: Config, settings: Sequence[str] | None = None) -> pd.DataFrame:
    """Run the eGeMAPS + linear SVM baseline on the protocol's folds; one row per (setting, fold).

    Within: the folds of ``within_folds`` (``protocol.folds`` or every session). Cross: train
    on all 4-class utterances of the training corpus (C tuned over its sessions), test on the test
    corpus. Finished runs with the same fingerprint are reused.
    """
    chosen = list(settings) if settings is not None else settings_of(config)
    rows = []
    for setting in chosen:
        train_key, test_key = corpora_of(config, setting)
        expected = fingerprint(config, setting)
        train_manifest, train_features = labeled_functionals(config, train_key)
        train_labels = labels_of(train_manifest)
        train_folds = session_folds(train_manifest["session"])
        if setting == "within":
            folds = within_folds(config)
        else:
            folds = [CROSS_FOLD]
            test_manifest, test_features = labeled_functionals(config, test_key)
            test_labels = labels_of(test_manifest)
        for fold in folds:
            folder = run_folder(config.output_dir, setting, CONDITION, SEED, fold)
            done = _finished(folder, expected)
            if done is not None:
                rows.append(done)
                continue
            start = time.perf_counter()
            if setting == "within":
                train_index, test_index = fold_indices(train_folds, fold)
                search = fit_svm(
                    train_features[train_index], train_labels[train_index], train_folds[train_index]
                )
                seconds = time.perf_counter() - start
                result = _write_run(
                    folder,
                    train_manifest.iloc[test_index],
                    train_labels[test_index],
                    search,
                    train_features[test_index],
                    setting=setting,
                    fold=fold,
                    n_train=len(train_index),
                    seconds=seconds,
                    extra={"fingerprint": expected, "train_corpus": train_key, "test_corpus": test_key},
                )
            else:
                search = fit_svm(train_features, train_labels, train_folds)
                seconds = time.perf_counter() - start
                result = _write_run(
                    folder,
                    test_manifest,
                    test_labels,
                    search,
                    test_features,
                    setting=setting,
                    fold=fold,
                    n_train=len(train_labels),
                    seconds=seconds,
                    extra={"fingerprint": expected, "train_corpus": train_key, "test_corpus": test_key},
                )
            log.info(
                "%s %s fold %d: UAR %.4f (C=%g)", CONDITION, setting, fold, result["uar"], result["best_c"]
            )
            rows.append(result)
    columns = [
        "setting",
        "fold",
        "uar",
        "accuracy",
        "best_c",
        "inner_cv_uar",
        "n_train",
        "n_test",
        "train_seconds",
    ]
    return pd.DataFrame([{c: r.get(c) for c in columns} for r in rows], columns=columns)
