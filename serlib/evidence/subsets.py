"""Speaker-level scores of a protocol's runs, on all test files and on each scoring subset.

The unit of the confirmatory ASED test (configs/ased.yaml) is the speaker: per run, the UAR of each
test speaker's files, on all of them and on each subset of the manifest column ``subset`` (ASED:
``common`` / ``specific`` sentences). A speaker's UAR is the mean recall over the classes present in
that speaker's scored files (``metrics.uar``): a speaker who lacks a class is scored on the classes
they have, so no class with zero files enters a mean as 0 or NaN. ``speaker_means`` then averages the
seeds per speaker, the unit of the paired tests. The runs' own ``metrics.json`` also carry
``subset_uar`` (``run_files.subset_scores``).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from serlib.base import metrics, run_schemas
from serlib.base.files import write_csv
from serlib.evidence.table1 import collect_runs, results_root
from serlib.protocol.labeled import ProtocolError
from serlib.protocol.run_files import SUBSET_PREDICTION_COLUMNS
from serlib.protocol.svm import CONDITION as SVM_CONDITION

ALL = "all"
"""The score over every test file of a run (beside one score per subset)."""


SPEAKER_COLUMNS = ("setting", "condition", "seed", "fold", "speaker", "score", "uar", "n", "classes")


def run_speaker_scores(predictions: pd.DataFrame) -> pd.DataFrame:
    """One row per (speaker, score) of one run's predictions: ``score`` is ``all`` or a subset name."""
    missing = [c for c in SUBSET_PREDICTION_COLUMNS if c not in predictions.columns]
    if missing:
        raise ProtocolError(
            f"the predictions lack the columns {missing}: the test corpus has no scoring subset "
            "(manifest column 'subset'), or the run predates it; re-run it"
        )
    rows = []
    for speaker, own in predictions.groupby(predictions["speaker"].astype(str), sort=True):
        parts = [(ALL, own)] + [(str(name), part) for name, part in own.groupby("subset", sort=True)]
        for score, part in parts:
            rows.append(
                {
                    "speaker": speaker,
                    "score": score,
                    "uar": metrics.uar(part["true"], part["predicted"]),
                    "n": len(part),
                    "classes": int(part["true"].nunique()),
                }
            )
    return pd.DataFrame(rows)


def speaker_scores(output_dir: str | Path) -> pd.DataFrame:
    """Speaker-level scores (``SPEAKER_COLUMNS``) of every finished run of the protocol in ``output_dir``
    (its configured conditions, fingerprints checked as Table 1 does) and of the eGeMAPS SVM's runs."""
    root = results_root(output_dir)
    _, runs = collect_runs(root)
    folders = [(r.setting, r.condition, int(r.seed), int(r.fold), Path(r.folder)) for r in runs.itertuples()]
    for path in sorted((root / "results").glob(f"*/{SVM_CONDITION}/seed*/fold*/metrics.json")):
        stored = run_schemas.read_metrics(path)
        folders.append(
            (stored["setting"], SVM_CONDITION, int(stored["seed"]), int(stored["fold"]), path.parent)
        )
    pieces = []
    for setting, condition, seed, fold, folder in folders:
        predictions = run_schemas.read_predictions(folder / "predictions.csv")
        scores = run_speaker_scores(predictions)
        scores.insert(0, "fold", fold)
        scores.insert(0, "seed", seed)
        scores.insert(0, "condition", condition)
        scores.insert(0, "setting", setting)
        pieces.append(scores)
    if not pieces:
        return pd.DataFrame(columns=list(SPEAKER_COLUMNS))
    return pd.concat(pieces, ignore_index=True).loc[:, list(SPEAKER_COLUMNS)]


def speaker_means(scores: pd.DataFrame) -> pd.DataFrame:
    """The unit of the paired tests: per (setting, condition, score, speaker) the mean UAR over seeds."""
    keys = ["setting", "condition", "score", "speaker"]
    grouped = scores.groupby(keys, sort=True)
    return grouped.agg(uar=("uar", "mean"), seeds=("seed", "nunique"), n=("n", "first")).reset_index()


def write_speaker_scores(output_dir: str | Path) -> Path:
    """``speaker_scores.csv`` (per run) and ``speaker_means.csv`` (seeds averaged) in ``output_dir``."""
    root = results_root(output_dir)
    scores = speaker_scores(root)
    write_csv(scores, root / "speaker_scores.csv", float_format="%.6f")
    write_csv(speaker_means(scores), root / "speaker_means.csv", float_format="%.6f")
    return root / "speaker_scores.csv"
