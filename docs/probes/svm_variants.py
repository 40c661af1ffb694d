"""The eGeMAPS + linear SVM reference in four variants, on the configured within-corpus folds.

SVC (one-vs-one, hinge: serlib's reference) against LinearSVC (one-vs-rest, squared hinge), each with
``class_weight`` balanced and none; C from ``svm.C_GRID`` chosen by GroupKFold over the training
speakers (sessions) only, as ``serlib svm``. Printed per variant: the chosen C and the test
UAR per fold, the mean over folds and the UAR of the pooled predictions; the inner-CV curves go to
``<output_dir>/svm_variants.csv``. The eGeMAPS functionals come from the store (extracted if missing,
as ``serlib svm`` does).

    SERLIB_DATA=/path/to/data python docs/probes/svm_variants.py --config configs/nemo.yaml
    ... --variant linear_svc:balanced --variant linear_svc:none    # a subset
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from serlib.base import config as config_module
from serlib.base import metrics
from serlib.base.files import write_csv
from serlib.protocol import svm
from serlib.protocol.folds import fold_indices, session_folds, within_folds

VARIANTS = (("svc", "balanced"), ("svc", None), ("linear_svc", "balanced"), ("linear_svc", None))


def run(config_path: Path, variants: tuple[tuple[str, str | None], ...] = VARIANTS) -> pd.DataFrame:
    config = config_module.resolve(None, config_path)
    key = config.protocol.within_corpus
    if key is None:
        raise SystemExit(
            f"{config_path}: protocol.within_corpus is null; the probe needs a within-corpus grid"
        )
    manifest, features = svm.labeled_functionals(config, key)
    labels = svm.labels_of(manifest)
    folds = session_folds(manifest["session"])
    rows = []
    for estimator, class_weight in variants:
        true, predicted = [], []
        for fold in within_folds(config):
            train, test = fold_indices(folds, fold)
            search = svm.fit_svm(features[train], labels[train], folds[train], estimator, class_weight)
            guess = search.predict(features[test])
            true.append(labels[test])
            predicted.append(guess)
            rows.append(
                {
                    "estimator": estimator,
                    "class_weight": class_weight or "none",
                    "fold": fold,
                    "test_uar": metrics.uar(labels[test], guess),
                    "chosen_c": float(search.best_params_["svm__C"]),
                    "inner_uar": float(search.best_score_),
                    "inner_curve": json.dumps(svm.inner_curve(search)),
                }
            )
        pooled = metrics.uar(np.concatenate(true), np.concatenate(predicted))
        mine = [
            r for r in rows if r["estimator"] == estimator and r["class_weight"] == (class_weight or "none")
        ]
        print(
            f"{estimator:10s} class_weight {class_weight or 'none':8s}: mean over folds "
            f"{100 * np.mean([r['test_uar'] for r in mine]):.2f} %, pooled {100 * pooled:.2f} %; "
            "chosen C per fold " + ", ".join(f"{r['chosen_c']:g}" for r in mine)
        )
        for r in mine:
            r["pooled_uar"] = pooled
    frame = pd.DataFrame(rows)
    names = "-".join(f"{e}_{w or 'none'}" for e, w in variants) if variants != VARIANTS else "all"
    write_csv(frame, Path(config.output_dir) / f"svm_variants-{names}.csv", float_format="%.6f")
    return frame


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("configs/nemo.yaml"))
    parser.add_argument(
        "--variant",
        action="append",
        choices=[f"{e}:{w or 'none'}" for e, w in VARIANTS],
        help="estimator:class_weight (repeatable; default all four)",
    )
    arguments = parser.parse_args()
    chosen = tuple(
        (v.split(":")[0], None if v.endswith(":none") else "balanced") for v in arguments.variant or []
    )
    run(arguments.config, chosen or VARIANTS)
