"""The classic reference: eGeMAPS functionals + standardised linear SVM, on the ACNN's folds.

``run_baseline`` trains, per leave-one-session-out fold of ``protocol.within_corpus`` (and once for the
cross-corpus setting), a scikit-learn ``Pipeline(StandardScaler, SVC(kernel="linear"))`` on the 88
eGeMAPSv02 functionals (``store`` extractor ``egemaps``). The SVM's C is chosen by ``GridSearchCV``
with ``GroupKFold`` over the *training* sessions only (UAR = balanced accuracy as the criterion), so
the test session never influences the model. Results go to the ACNN's layout
(``<output_dir>/results/<setting>/eGeMAPS-SVM/seed0/fold<f>/`` with ``predictions.csv`` and, last,
``metrics.json``), and ``table_with_baseline`` renders Table 1 with the SVM as an extra row. The SVM
is deterministic, so it has one "seed" (min = max = mean; no interval over seeds).

``acnn_epoch_curves`` is the inner validation used to choose ``acnn.epochs`` for small corpora on
training folds only: for each outer fold the ACNN (BL) is trained on all but one of the outer fold's
training sessions and scored on the held-out training session after every epoch.

Command line: ``python -m serlib.baseline {svm,table,epochs} --config configs/emodb.yaml``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from serlib import metrics
from serlib.config import Config
from serlib.corpora import EMOTIONS

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


# -- data -----------------------------------------------------------------------------------------------
def labeled_functionals(config: Config, key: str) -> tuple[pd.DataFrame, np.ndarray]:
    """The 4-class utterances of corpus ``key`` (manifest rows) and their 88 eGeMAPS functionals."""
    from serlib import experiments, store

    features = store.extract_configured(config, key, "egemaps")
    manifest = experiments.labeled_manifest(config, key).reset_index(drop=True)
    position = {utterance: i for i, utterance in enumerate(features.ids)}
    missing = [u for u in manifest["utterance_id"] if u not in position]
    if missing:
        raise BaselineError(
            f"corpora.{key}: {len(missing)} labeled utterances have no eGeMAPS features (e.g. {missing[:3]}); "
            "re-run `serlib extract --extractor egemaps`"
        )
    rows = np.asarray([position[u] for u in manifest["utterance_id"]], dtype=np.int64)
    everything = np.asarray(features.features, dtype=np.float64).reshape(len(features.ids), -1)
    mode = config.features.normalisation
    if mode != "train":  # every utterance of the corpus (or speaker) in the store, labels unused
        from serlib import corpora, normalisation

        speakers = corpora.load_configured(config, key).set_index("utterance_id")["speaker"]
        groups = normalisation.groups_for(mode, speakers.reindex(features.ids).fillna("").to_numpy(), key)
        everything = normalisation.standardise_vectors(everything, groups)
    values = everything[rows]
    if not np.all(np.isfinite(values)):
        raise BaselineError(f"corpora.{key}: non-finite eGeMAPS functionals in {features.path}")
    return manifest, values


def labels_of(manifest: pd.DataFrame) -> np.ndarray:
    lookup = {name: i for i, name in enumerate(EMOTIONS)}
    return np.asarray([lookup[e] for e in manifest["emotion"]], dtype=np.int64)


# -- model ---------------------------------------------------------------------------------------------
def fit_svm(features: np.ndarray, labels: np.ndarray, groups: np.ndarray) -> Any:
    """A standardised linear SVM with C chosen by GroupKFold over ``groups`` (the training sessions)."""
    from sklearn.model_selection import GridSearchCV, GroupKFold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    sessions = sorted(set(np.asarray(groups).tolist()))
    if len(sessions) < 2:
        raise BaselineError("tuning C needs at least 2 training sessions (GroupKFold over sessions)")
    pipeline = Pipeline([("scale", StandardScaler()), ("svm", SVC(kernel="linear", class_weight="balanced"))])
    search = GridSearchCV(
        pipeline,
        {"svm__C": list(C_GRID)},
        scoring="balanced_accuracy",
        cv=GroupKFold(n_splits=len(sessions)),
        refit=True,
        n_jobs=1,
    )
    search.fit(features, labels, groups=groups)
    return search


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
    from serlib import experiments

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
        }
    )
    folder.mkdir(parents=True, exist_ok=True)
    experiments._write_csv(
        frame.loc[:, list(experiments.PREDICTION_COLUMNS)], folder / "predictions.csv", float_format="%.6f"
    )
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
    experiments._write_json(result, folder / "metrics.json")
    return result


def fingerprint(config: Config, setting: str) -> str:
    """Hash of what an SVM run depends on: the corpora, audio rate, folds restriction and SVM grid."""
    import hashlib

    from serlib import experiments

    train_key, test_key = experiments.corpora_of(config, setting)
    parts = {
        "setting": setting,
        "audio": config.audio.model_dump(mode="json"),
        "corpora": {k: config.corpora[k].model_dump(mode="json") for k in sorted({train_key, test_key})},
        "svm": PARAMETERS,
        "normalisation": config.features.normalisation,
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

    Within: the folds of ``experiments.within_folds`` (``protocol.folds`` or every session). Cross: train
    on all 4-class utterances of the training corpus (C tuned over its sessions), test on the test
    corpus. Finished runs with the same fingerprint are reused.
    """
    from serlib import experiments

    chosen = list(settings) if settings is not None else experiments._settings(config)
    rows = []
    for setting in chosen:
        train_key, test_key = experiments.corpora_of(config, setting)
        expected = fingerprint(config, setting)
        train_manifest, train_features = labeled_functionals(config, train_key)
        train_labels = labels_of(train_manifest)
        train_folds = experiments.session_folds(train_manifest["session"])
        if setting == "within":
            folds = experiments.within_folds(config)
        else:
            folds = [experiments.CROSS_FOLD]
            test_manifest, test_features = labeled_functionals(config, test_key)
            test_labels = labels_of(test_manifest)
        for fold in folds:
            folder = experiments.run_folder(config.output_dir, setting, CONDITION, SEED, fold)
            done = _finished(folder, expected)
            if done is not None:
                rows.append(done)
                continue
            start = time.perf_counter()
            if setting == "within":
                train_index, test_index = experiments.fold_indices(train_folds, fold)
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


# -- Table 1 with the SVM row -------------------------------------------------------------------------------
def baseline_runs(output_dir: str | Path, protocol: dict[str, Any]) -> pd.DataFrame:
    """The SVM's finished runs in ``experiments.collect_runs``' row format."""
    from serlib import experiments

    rows = []
    for setting, description in protocol["settings"].items():
        for fold in description["folds"]:
            folder = experiments.run_folder(output_dir, setting, CONDITION, SEED, fold)
            path = folder / "metrics.json"
            if path.is_file():
                stored = json.loads(path.read_text(encoding="utf-8"))
                rows.append({c: stored.get(c) for c in experiments.RUN_COLUMNS} | {"folder": str(folder)})
    return pd.DataFrame(rows, columns=[*experiments.RUN_COLUMNS, "folder"])


def table_with_baseline(output_dir: str | Path) -> str:
    """Table 1 (Markdown) of the stored ACNN runs plus the eGeMAPS-SVM row; also written to
    ``<output_dir>/table1_with_svm.md`` and ``.csv``."""
    from serlib import experiments

    root = experiments._results_root(output_dir)
    protocol, runs = experiments.collect_runs(root)
    svm = baseline_runs(root, protocol)
    if svm.empty:
        raise BaselineError(f"{root} holds no {CONDITION} runs; run `python -m serlib.baseline svm` first")
    protocol = dict(protocol)
    protocol["conditions"] = [*protocol["conditions"], {"name": CONDITION, "autoencoder_corpus": "none"}]
    combined = pd.concat([runs, svm], ignore_index=True) if not runs.empty else svm
    table = experiments.table1(protocol, combined)
    baseline = protocol.get("baseline")
    lines = []
    for setting in protocol["settings"]:
        # The SVM has one run, so the paired test over seeds does not apply: its Δ is against BL's
        # mean over seeds, and within-corpus it is tested over folds (SVM fold UAR vs BL's fold UAR
        # averaged over seeds).
        row = table.index[table["condition"] == CONDITION][0]
        base = table.loc[table["condition"] == baseline, f"{setting}_mean"]
        delta = float(table.loc[row, f"{setting}_mean"] - base.iloc[0]) if len(base) else math.nan
        table.loc[row, [f"{setting}_delta_vs_bl", f"{setting}_t_p", f"{setting}_wilcoxon_p"]] = [
            delta,
            math.nan,
            math.nan,
        ]
        ours = svm[svm["setting"] == setting].set_index("fold")["uar"]
        theirs = (
            runs[(runs["setting"] == setting) & (runs["condition"] == baseline)].groupby("fold")["uar"].mean()
        )
        paired = pd.concat([ours, theirs], axis=1, keys=["svm", "bl"]).dropna()
        if len(paired) >= 2:
            test = metrics.paired_test(paired["svm"], paired["bl"])
            table.loc[row, [f"{setting}_t_p", f"{setting}_wilcoxon_p"]] = [test["t_p"], test["wilcoxon_p"]]
            lines.append(
                f"{CONDITION} vs {baseline}, {setting}: paired over {len(paired)} folds (BL averaged over seeds per "
                f"fold): mean difference {100 * test['mean_difference']:+.2f} points, t-test p "
                f"{test['t_p']:.3f}, Wilcoxon p {test['wilcoxon_p']:.3f}."
            )
    text = experiments.table_markdown(protocol, table)
    text += (
        f"\n{CONDITION}: eGeMAPSv02 functionals (88) + standardised linear SVM, C tuned by GroupKFold over the "
        f"training sessions; deterministic, so one run per fold (no interval over seeds); its Δ is against "
        f"{baseline}'s mean over seeds, and its p-values (where given) come from a paired test over folds.\n"
    )
    if lines:
        text += "\n" + "\n".join(lines) + "\n"
    experiments._write_csv(table, root / "table1_with_svm.csv", float_format="%.4f")
    experiments._write_text(text, root / "table1_with_svm.md")
    return text


def confusion_markdown(output_dir: str | Path) -> str:
    """Mean row-normalised confusion matrices (%, rows = true class) per setting and condition, the
    eGeMAPS-SVM included: per seed, the counts pooled over its folds; then the mean over seeds."""
    from serlib import experiments

    root = experiments._results_root(output_dir)
    protocol, runs = experiments.collect_runs(root)
    svm = baseline_runs(root, protocol)
    protocol = dict(protocol)
    if not svm.empty:
        protocol["conditions"] = [*protocol["conditions"], {"name": CONDITION, "autoencoder_corpus": "none"}]
        runs = pd.concat([runs, svm], ignore_index=True) if not runs.empty else svm
    lines = []
    for setting, description in protocol["settings"].items():
        matrices = experiments.confusion_by_condition(protocol, runs, setting)
        corpus = description["test_corpus"]
        for condition, matrix in matrices.items():
            lines += [
                f"{setting} ({corpus}), {condition}: rows true, columns predicted, % of the true class",
                "",
                "| true \\ predicted | " + " | ".join(EMOTIONS) + " |",
                "|---|" + "---:|" * len(EMOTIONS),
            ]
            for i, name in enumerate(EMOTIONS):
                lines.append(f"| {name} | " + " | ".join(f"{100 * v:.1f}" for v in matrix[i]) + " |")
            lines.append("")
    return "\n".join(lines)


# -- ACNN epochs chosen on training folds only ------------------------------------------------------------
def acnn_epoch_curves(
    config: Config, max_epochs: int = 100, seed: int = 0, inner_per_fold: int = 1
) -> pd.DataFrame:
    """Inner-validation UAR after every epoch, per outer fold and inner split (BL ACNN, no AE).

    For outer fold f (its test session is never used), the inner validation sessions are the
    ``inner_per_fold`` training sessions following f cyclically; for each, an ACNN is trained on the
    remaining training sessions for ``max_epochs`` epochs and scored on the inner session after every
    epoch. Rows: outer_fold, inner_session, epoch (1-based), uar, loss.
    """
    import keras

    from serlib import acnn, experiments, normalisation

    key = config.protocol.within_corpus
    if key is None:
        raise BaselineError("protocol.within_corpus is not set: no folds to choose epochs on")
    data = experiments.load_labeled(config, key)
    folds_of = experiments.session_folds(data.session)
    sessions = sorted(set(folds_of.tolist()))
    rows = []
    for outer in experiments.within_folds(config):
        training = [s for s in sessions if s != outer]
        start = training.index(next((s for s in training if s > outer), training[0]))
        inner_sessions = [
            training[(start + i) % len(training)] for i in range(min(inner_per_fold, len(training)))
        ]
        for inner in inner_sessions:
            train = data.subset(np.flatnonzero((folds_of != outer) & (folds_of != inner)))
            valid = data.subset(np.flatnonzero(folds_of == inner))
            keras.utils.set_random_seed(seed)
            statistics = normalisation.band_statistics(train.logmel, train.lengths)
            model = acnn.build_acnn(config, normalisation=statistics)
            scores: list[float] = []
            began = time.perf_counter()
            history = model.fit(
                train.inputs(),
                train.targets(),
                batch_size=config.acnn.batch_size,
                epochs=max_epochs,
                shuffle=True,
                verbose=0,
                callbacks=[_ValidationUAR(valid.inputs(), valid.emotion, scores)],
            )
            log.info(
                "outer fold %d, inner session %d: best inner UAR %.3f at epoch %d (%.0f s)",
                outer,
                inner,
                max(scores),
                int(np.argmax(scores)) + 1,
                time.perf_counter() - began,
            )
            for epoch, (uar, loss) in enumerate(zip(scores, history.history["loss"], strict=True), start=1):
                rows.append(
                    {"outer_fold": outer, "inner_session": inner, "epoch": epoch, "uar": uar, "loss": loss}
                )
    return pd.DataFrame(rows, columns=["outer_fold", "inner_session", "epoch", "uar", "loss"])


def _ValidationUAR(inputs: dict[str, np.ndarray], labels: np.ndarray, scores: list[float]) -> Any:
    """A Keras callback appending the emotion UAR on (inputs, labels) to ``scores`` after every epoch."""
    import keras

    from serlib import acnn

    class ValidationUAR(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            outputs = self.model.predict(inputs, batch_size=acnn.PREDICT_BATCH_SIZE, verbose=0)
            probabilities = outputs[0] if isinstance(outputs, list) else outputs["emotion"]
            scores.append(metrics.uar(labels, np.argmax(probabilities, axis=1)))

    return ValidationUAR()


def choose_epochs(curves: pd.DataFrame, window: int = 5, tolerance: float = 0.01) -> pd.DataFrame:
    """Per outer fold: the best epoch of its inner curve (mean over its inner splits, centred moving
    average over ``window`` epochs, as single epochs on ~70 utterances are noisy) and the first epoch
    whose smoothed inner UAR is within ``tolerance`` of that best (the start of the plateau)."""
    rows = []
    for outer, group in curves.groupby("outer_fold", sort=True):
        mean = group.groupby("epoch")["uar"].mean().sort_index()
        smooth = mean.rolling(window, center=True, min_periods=1).mean()
        best = int(smooth.idxmax())
        plateau = int(smooth.index[smooth >= smooth.loc[best] - tolerance][0])
        rows.append(
            {
                "outer_fold": int(outer),
                "best_epoch": best,
                "plateau_epoch": plateau,
                "smoothed_uar_at_best": float(smooth.loc[best]),
                "smoothed_uar_at_plateau": float(smooth.loc[plateau]),
                "smoothed_uar_at_last": float(smooth.iloc[-1]),
            }
        )
    return pd.DataFrame(rows)


# -- command line ---------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    from serlib import config as config_module
    from serlib import experiments

    parser = argparse.ArgumentParser(prog="python -m serlib.baseline", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["svm", "table", "epochs"])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=None, help="output folder (overrides output_dir)")
    parser.add_argument("--max-epochs", type=int, default=100, help="epochs: longest inner training")
    parser.add_argument(
        "--inner", type=int, default=1, help="epochs: inner validation sessions per outer fold"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = config_module.load(args.config)
    if args.out is not None:
        config = config_module.override(config, output_dir=str(args.out))
    try:
        if args.command == "svm":
            print(run_baseline(config).to_string(index=False))
            if (config.output_path / "results" / "protocol.json").is_file():
                print(table_with_baseline(config.output_dir), end="")
        elif args.command == "table":
            print(table_with_baseline(config.output_dir))
            print(confusion_markdown(config.output_dir), end="")
        else:
            curves = acnn_epoch_curves(config, max_epochs=args.max_epochs, inner_per_fold=args.inner)
            out = config.output_path / "epoch_selection.csv"
            out.parent.mkdir(parents=True, exist_ok=True)
            experiments._write_csv(curves, out, float_format="%.5f")
            print(choose_epochs(curves).to_string(index=False))
            print(f"curves: {out}")
    except ValueError as error:
        print(f"serlib.baseline {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
