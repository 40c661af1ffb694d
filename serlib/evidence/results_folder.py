"""A results folder (``serlib export``'s product, committed under ``results/``) read as a run folder.

A run folder of ``serlib evaluate`` keeps one ``predictions.csv`` and ``metrics.json`` per run, plus
``hidden.h5`` and models: too many files and bytes for git, and it lives on the machine that ran it.
A results folder keeps what every number of the report is computed from, in four text files:

* ``predictions.csv``: one row per (run, test utterance), sorted by ``PREDICTION_KEY``: the run key
  (setting, condition, seed, fold), the utterance, its speaker and scoring subset (empty where the
  corpus has none), the true and the predicted class, and the class probabilities rounded to 4
  decimals (``predicted`` is stored, never re-derived from the rounded probabilities);
* ``runs.csv``: one row per run: what its ``metrics.json`` held (fingerprint, UAR, train time, ...)
  and the folder's provenance (commit, configuration hash, CPU model, BLAS kernel, package versions);
* ``protocol.json`` (the run folder's ``results/protocol.json``) and ``config.yaml`` (the configuration
  the grid ran with); ``provenance.json`` when the run folder had one;
* ``export.json``: the format, the source folder, the counts and the sha256 of the files above.

**One resolver for every reader.** ``resolve(path)`` returns a run folder for ``path``: the path itself
when it is one, and for a results folder a run-folder layout materialised once into a cache folder
keyed by the export's content hash (``SERLIB_EVIDENCE_CACHE``, default ``~/.cache/serlib/evidence``):
per run ``predictions.csv`` and a ``metrics.json`` whose UAR, accuracy, confusion matrix and subset
scores are recomputed from the predictions (and checked against ``runs.csv``: a mismatch is an error
naming the run, so a damaged export is never read as evidence). ``table1.results_root`` calls it, so
``serlib table``, ``pool``, ``check`` and the probes read either kind of folder the same way.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from serlib.base import metrics
from serlib.base.files import write_json
from serlib.data.manifest import EMOTIONS
from serlib.protocol.labeled import ProtocolError
from serlib.protocol.run_files import run_folder, subset_scores

log = logging.getLogger(__name__)

FORMAT = 1
EXPORT_FILE = "export.json"
PREDICTIONS_FILE = "predictions.csv"
RUNS_FILE = "runs.csv"
PROTOCOL_FILE = "protocol.json"
CONFIG_FILE = "config.yaml"
PROVENANCE_FILE = "provenance.json"
HASHED = (PROTOCOL_FILE, RUNS_FILE, PREDICTIONS_FILE)  # what a materialised copy is computed from
CACHE_VARIABLE = "SERLIB_EVIDENCE_CACHE"
KEY = ("setting", "condition", "seed", "fold")
# Raised whenever materialise() writes other files for the same export, so that no copy made by an
# older serlib is read (3: numeric columns with empty cells kept as numbers, empty cells as null).
MATERIALISATION_VERSION = 3
# runs.csv columns that are text even when a value looks like a number (hashes, commits, names)
TEXT_RUN_COLUMNS = ("fingerprint", "commit", "config_sha256", "cpu_model", "blas", "packages", "tensorflow")
PREDICTION_KEY = (*KEY, "utterance_id")
PROBABILITIES = tuple(f"p_{emotion}" for emotion in EMOTIONS)
PREDICTION_COLUMNS = (*PREDICTION_KEY, "speaker", "subset", "true", "predicted", *PROBABILITIES)
UAR_TOLERANCE = 1e-9
_COMPLETE = ".complete"


class ResultsFolderError(ProtocolError):
    """A results folder is damaged or incomplete; the message names the file and the fix."""


def is_results_folder(path: str | Path) -> bool:
    """Whether ``path`` is a results folder written by ``serlib export`` (``export.json`` present)."""
    return (Path(path) / EXPORT_FILE).is_file()


def content_hash(folder: str | Path) -> str:
    """sha256 over the names and bytes of the files a materialised copy is computed from."""
    digest = hashlib.sha256()
    for name in HASHED:
        path = Path(folder) / name
        if not path.is_file():
            raise ResultsFolderError(
                f"{path} is missing: a results folder holds {', '.join(HASHED)}; export it again with "
                "`serlib export RUN_DIR --out FOLDER`"
            )
        digest.update(name.encode("utf-8") + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def cache_root() -> Path:
    """Where materialised run-folder copies of results folders are kept."""
    configured = os.environ.get(CACHE_VARIABLE)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "serlib" / "evidence"


def resolve(path: str | Path) -> Path:
    """A run folder for ``path``: ``path`` itself unless it is a results folder, whose run-folder copy
    (materialised on first use, keyed by the content hash) is returned instead."""
    path = Path(path)
    if not is_results_folder(path):
        return path
    digest = content_hash(path)
    target = cache_root() / f"{path.resolve().name}-{digest[:16]}-m{MATERIALISATION_VERSION}"
    if (target / _COMPLETE).is_file():
        return target
    staging = target.with_name(f".{target.name}.tmp{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    materialise(path, staging)
    (staging / _COMPLETE).write_text(digest + "\n", encoding="utf-8")
    try:
        os.replace(staging, target)
    except OSError:  # another process materialised the same export first: use its copy
        shutil.rmtree(staging, ignore_errors=True)
        if not (target / _COMPLETE).is_file():
            raise
    log.info("results folder %s read through its run-folder copy %s", path, target)
    return target


def read_predictions(folder: str | Path) -> pd.DataFrame:
    """A results folder's ``predictions.csv`` (text columns as strings; ``subset`` empty as '')."""
    path = Path(folder) / PREDICTIONS_FILE
    text = ["utterance_id", "speaker", "subset", "true", "predicted", "setting", "condition"]
    frame = pd.read_csv(path, dtype={c: str for c in text}, keep_default_na=False)
    missing = [c for c in PREDICTION_COLUMNS if c not in frame.columns and c not in PROBABILITIES]
    if missing:
        raise ResultsFolderError(f"{path} lacks the columns {missing}; export the run folder again")
    return frame


def read_runs(folder: str | Path) -> pd.DataFrame:
    """A results folder's ``runs.csv`` (one row per run). A numeric column that some runs leave empty
    (the SVM's rows have no arousal UAR) keeps its numbers as numbers and its empty cells as ''."""
    path = Path(folder) / RUNS_FILE
    text = {column: str for column in TEXT_RUN_COLUMNS}
    frame = pd.read_csv(path, dtype=text, keep_default_na=False)
    missing = [c for c in (*KEY, "uar") if c not in frame.columns]
    if missing:
        raise ResultsFolderError(f"{path} lacks the columns {missing}; export the run folder again")
    for column in frame.columns.difference([*TEXT_RUN_COLUMNS, *KEY]):
        if pd.api.types.is_string_dtype(frame[column]):
            frame[column] = _numbers_where_numeric(frame[column])
    return frame


def _numbers_where_numeric(column: pd.Series) -> pd.Series:
    """``column`` with its cells as numbers when every non-empty cell is one (else unchanged)."""
    filled = column[column != ""]
    numbers = pd.to_numeric(filled, errors="coerce")
    if filled.empty or numbers.isna().any():
        return column
    mixed = column.astype(object)
    mixed[filled.index] = list(numbers)
    return mixed


def speakers_of(folder: str | Path) -> pd.DataFrame:
    """``utterance_id``, ``speaker`` of every test utterance of a results folder (what ``serlib pool``
    would otherwise read from the corpora's manifests)."""
    frame = read_predictions(folder)[["utterance_id", "speaker"]].drop_duplicates()
    return frame.reset_index(drop=True)


def _metrics_of(run: dict[str, Any], predictions: pd.DataFrame, where: str) -> dict[str, Any]:
    """A run's ``metrics.json``: the stored fields of ``runs.csv``, the scores recomputed from the
    predictions (checked against the stored UAR)."""
    index = {name: i for i, name in enumerate(EMOTIONS)}
    true = predictions["true"].map(index).to_numpy()
    predicted = predictions["predicted"].map(index).to_numpy()
    if np.isnan(true.astype(float)).any() or np.isnan(predicted.astype(float)).any():
        raise ResultsFolderError(f"{where}: a class outside {list(EMOTIONS)}; export the run folder again")
    true, predicted = true.astype(np.int64), predicted.astype(np.int64)
    uar = metrics.uar(true, predicted)
    stored = run.get("uar")
    if stored is not None and not (isinstance(stored, float) and math.isnan(stored)):
        if abs(float(stored) - uar) > UAR_TOLERANCE:
            raise ResultsFolderError(
                f"{where}: the UAR of its predictions ({uar:.6f}) is not the stored {float(stored):.6f}; the "
                "results folder is damaged: export it again from the run folder"
            )
    subset = predictions["subset"].to_numpy() if (predictions["subset"] != "").any() else None
    stored_fields = {k: _plain(v) for k, v in run.items() if k not in KEY and k != "uar"}
    return {
        "setting": run["setting"],
        "condition": run["condition"],
        "seed": int(run["seed"]),
        "fold": int(run["fold"]),
        **stored_fields,
        "uar": uar,
        "accuracy": float(np.mean(true == predicted)),
        "confusion": metrics.confusion(true, predicted, range(len(EMOTIONS))).tolist(),
        "classes": list(EMOTIONS),
        "n_test": len(predictions),
        **subset_scores(true, predicted, subset),
        "materialised_from": "results folder (serlib export): scores recomputed from its predictions",
    }


def _plain(value: Any) -> Any:
    """A runs.csv cell as metrics.json held it: JSON text decoded, numpy numbers as Python's."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    if isinstance(value, np.generic):
        return value.item()
    return None if value == "" else value


def materialise(source: str | Path, dest: str | Path) -> Path:
    """Write the run-folder layout of the results folder ``source`` into ``dest``."""
    source, dest = Path(source), Path(dest)
    (dest / "results").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source / PROTOCOL_FILE, dest / "results" / "protocol.json")
    for name in (CONFIG_FILE, PROVENANCE_FILE):
        if (source / name).is_file():
            shutil.copyfile(source / name, dest / name)
    predictions = read_predictions(source)
    runs = read_runs(source)
    groups = dict(iter(predictions.groupby(list(KEY), sort=False)))
    for run in runs.to_dict("records"):
        key = tuple(run[k] if k in ("setting", "condition") else int(run[k]) for k in KEY)
        where = f"{source}: run {'/'.join(map(str, key))}"
        own = groups.get(key)
        if own is None:
            raise ResultsFolderError(f"{where} has no predictions in {PREDICTIONS_FILE}; export it again")
        folder = run_folder(dest, *key)  # type: ignore[arg-type]
        folder.mkdir(parents=True, exist_ok=True)
        columns = ["utterance_id", "fold", "seed", "condition", "true", "predicted"]
        columns += [c for c in PROBABILITIES if c in own.columns]
        if (own["subset"] != "").any():  # as the run wrote it: speaker and subset only with a subset
            columns += ["speaker", "subset"]
        own.loc[:, columns].to_csv(folder / "predictions.csv", index=False)
        write_json(_metrics_of(run, own, where), folder / "metrics.json")
    if len(groups) != len(runs):
        raise ResultsFolderError(
            f"{source}: {PREDICTIONS_FILE} holds {len(groups)} runs, {RUNS_FILE} {len(runs)}; export it again"
        )
    return dest
