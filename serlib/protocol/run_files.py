"""The files of one protocol run, and how a finished run is recognised (no TensorFlow needed to read them).

Every run writes ``<output_dir>/results/<setting>/<condition>/seed<k>/fold<f>/``: ``predictions.csv``,
``hidden.h5`` (``ids``, ``hidden`` = last hidden layer [N, H], ``attention`` = attention weights
[N, steps]) and, last and atomically, ``metrics.json``, whose presence (with the same fingerprint)
marks the run finished so a re-run skips it. Cross-corpus runs also keep ``model.keras`` and
``model.json`` (feature and AE parameters, for ``serlib predict``). Training is in ``runs``.
When the test corpus has a scoring subset (manifest column ``subset``, e.g. ASED's sentence type),
``predictions.csv`` also holds ``speaker`` and ``subset`` (``SUBSET_PREDICTION_COLUMNS``) and
``metrics.json`` the UAR on each subset (``subset_uar``, ``subset_n``; ``subset_scores``).
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from serlib.base import metrics
from serlib.base.config import Config
from serlib.base.files import write_csv, write_json
from serlib.data.manifest import EMOTIONS, LEVELS
from serlib.protocol.conditions import fingerprint
from serlib.protocol.labeled import LabeledData

log = logging.getLogger(__name__)

PREDICTION_COLUMNS = (
    "utterance_id",
    "fold",
    "seed",
    "condition",
    "true",
    "predicted",
    *(f"p_{emotion}" for emotion in EMOTIONS),
    "arousal_true",
    "arousal_predicted",
    "valence_true",
    "valence_predicted",
)


SUBSET_PREDICTION_COLUMNS = ("speaker", "subset")
"""Columns added to ``PREDICTION_COLUMNS`` when the test corpus has a scoring subset."""


def subset_scores(true: np.ndarray, predicted: np.ndarray, subset: np.ndarray | None) -> dict[str, Any]:
    """``subset_uar`` and ``subset_n``: the UAR and utterance count of each subset value ({} without)."""
    if subset is None:
        return {}
    subset = np.asarray(subset).astype(str)
    true, predicted = np.asarray(true), np.asarray(predicted)
    names = sorted(set(subset.tolist()))
    return {
        "subset_uar": {name: metrics.uar(true[subset == name], predicted[subset == name]) for name in names},
        "subset_n": {name: int((subset == name).sum()) for name in names},
    }


def prediction_columns(subset: np.ndarray | None) -> list[str]:
    """The columns of a run's ``predictions.csv``: with a scoring subset, also speaker and subset."""
    return [*PREDICTION_COLUMNS, *(SUBSET_PREDICTION_COLUMNS if subset is not None else ())]


@dataclass(frozen=True)
class RunKey:
    """One cell of the protocol grid: a fresh ACNN per (setting, condition, seed, fold)."""

    setting: str
    condition: str
    seed: int
    fold: int


@dataclass
class TrainedRun:
    """What ``runs.fit_predict`` returns and ``write_run`` stores: the test predictions and the training record."""

    model: Any  # this thread's traced ACNN (serlib.models.acnn.reuse): valid until the next fit_predict of its shape
    probabilities: dict[str, np.ndarray]
    hidden: np.ndarray
    attention: np.ndarray
    history: dict[str, list[float]]
    seconds: float
    band_statistics: tuple[np.ndarray, np.ndarray] | None  # the in-model standardisation's (mean, std)
    tensorflow: dict[str, Any] | None = None  # serlib.base.runtime.settings() while training
    selected_epoch: int | None = None  # with acnn.model_selection: the epoch whose weights were kept


def run_folder(output_dir: str | Path, setting: str, condition: str, seed: int, fold: int) -> Path:
    """The folder of one run's files under ``output_dir``."""
    return Path(output_dir) / "results" / setting / condition / f"seed{seed}" / f"fold{fold}"


def protocol_lock(output_dir: str | Path) -> Path:
    """The lock file that serialises writing ``results/protocol.json`` and the tables made from it, so
    that two sittings of one grid in the same folder (other seeds or conditions) cannot mix them."""
    return Path(output_dir) / "results" / ".protocol.lock"


def _labels_uar(true: np.ndarray, predicted: np.ndarray) -> float:
    rated = true >= 0
    return metrics.uar(true[rated], predicted[rated]) if rated.any() else math.nan


class TrainingError(ValueError):
    """A run's training collapsed (non-finite loss or probabilities); nothing of it is stored."""


def check_health(trained: TrainedRun, label: str) -> None:
    """Refuse a run whose loss or test probabilities are not finite: NaN probabilities would make every
    prediction the first class and a plausible-looking UAR (learning_rate too high, damaged features)."""
    losses = np.asarray(trained.history.get("loss", []), dtype=float)
    if losses.size and not np.isfinite(losses).all():
        epoch = int(np.argmin(np.isfinite(losses))) + 1
        raise TrainingError(
            f"run {label}: the training loss became {losses[epoch - 1]} in epoch {epoch}; nothing was stored "
            "(lower acnn.learning_rate or check the features)"
        )
    for head, values in trained.probabilities.items():
        bad = int((~np.isfinite(np.asarray(values, dtype=float))).any(axis=-1).sum())
        if bad:
            raise TrainingError(
                f"run {label}: {bad} test utterances have non-finite {head} probabilities; nothing was stored "
                "(lower acnn.learning_rate or check the features)"
            )


def write_run(
    folder: Path,
    trained: TrainedRun,
    test: LabeledData,
    *,
    setting: str,
    condition: str,
    seed: int,
    fold: int,
    n_train: int,
    extra: dict[str, Any] | None = None,
    model_metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write predictions.csv, hidden.h5, (model.keras, model.json) and, last, metrics.json of one run;
    a collapsed training (``check_health``) is a TrainingError and writes nothing."""
    check_health(trained, f"{setting} {condition} seed {seed} fold {fold} ({folder})")
    folder.mkdir(parents=True, exist_ok=True)
    emotion_p = trained.probabilities["emotion"]
    predicted = emotion_p.argmax(axis=1)
    arousal_predicted = trained.probabilities["arousal"].argmax(axis=1)
    valence_predicted = trained.probabilities["valence"].argmax(axis=1)
    frame = pd.DataFrame(
        {
            "utterance_id": test.ids,
            "fold": fold,
            "seed": seed,
            "condition": condition,
            "true": [EMOTIONS[i] for i in test.emotion],
            "predicted": [EMOTIONS[i] for i in predicted],
            **{f"p_{name}": emotion_p[:, i] for i, name in enumerate(EMOTIONS)},
            "arousal_true": [LEVELS[i] if i >= 0 else "" for i in test.arousal],
            "arousal_predicted": [LEVELS[i] for i in arousal_predicted],
            "valence_true": [LEVELS[i] if i >= 0 else "" for i in test.valence],
            "valence_predicted": [LEVELS[i] for i in valence_predicted],
            "speaker": test.speaker,
            "subset": test.score_subset if test.score_subset is not None else "",
        }
    )
    columns = prediction_columns(test.score_subset)
    write_csv(frame.loc[:, columns], folder / "predictions.csv", float_format="%.6f")
    _write_hidden(
        folder / "hidden.h5", test.ids, trained.hidden, trained.attention, setting, condition, seed, fold
    )
    if model_metadata is not None:
        tmp = folder / f".model.tmp{os.getpid()}.keras"
        trained.model.save(tmp)
        os.replace(tmp, folder / "model.keras")
        write_json(model_metadata, folder / "model.json")
    result = {
        "setting": setting,
        "condition": condition,
        "seed": int(seed),
        "fold": int(fold),
        "uar": metrics.uar(test.emotion, predicted),
        "accuracy": float(np.mean(test.emotion == predicted)),
        "arousal_uar": _labels_uar(test.arousal, arousal_predicted),
        "valence_uar": _labels_uar(test.valence, valence_predicted),
        "confusion": metrics.confusion(test.emotion, predicted, range(len(EMOTIONS))).tolist(),
        "classes": list(EMOTIONS),
        **subset_scores(test.emotion, predicted, test.score_subset),
        "n_train": int(n_train),
        "n_test": len(test),
        "epochs": len(trained.history.get("loss", [])),
        "final_loss": trained.history["loss"][-1] if trained.history.get("loss") else math.nan,
        "loss_history": trained.history.get("loss", []),
        "train_seconds": round(trained.seconds, 3),
        "tensorflow": trained.tensorflow,
        **(extra or {}),
    }
    write_json(result, folder / "metrics.json")  # last: marks the run finished
    return result


def _write_hidden(
    path: Path,
    ids: np.ndarray,
    hidden: np.ndarray,
    attention: np.ndarray,
    setting: str,
    condition: str,
    seed: int,
    fold: int,
) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with h5py.File(tmp, "w") as handle:
        handle.create_dataset("ids", data=np.asarray(ids, dtype=object), dtype=h5py.string_dtype("utf-8"))
        handle.create_dataset("hidden", data=hidden.astype(np.float32))
        handle.create_dataset("attention", data=attention.astype(np.float32))
        handle.attrs.update(
            {
                "setting": setting,
                "condition": condition,
                "seed": seed,
                "fold": fold,
                "layer": "ACNN last hidden layer: attention output (+ AE vector), before dropout and softmax",
            }
        )
    os.replace(tmp, path)


def read_hidden(path: str | Path) -> tuple[list[str], np.ndarray]:
    """The utterance ids and last-hidden-layer vectors stored by a run (``hidden.h5``)."""
    with h5py.File(path, "r") as handle:
        return [str(x) for x in handle["ids"].asstr()[...]], np.asarray(
            handle["hidden"][...], dtype=np.float32
        )


def finished(config: Config, key: RunKey, expected: str | None = None) -> dict[str, Any] | None:
    """The stored metrics of a finished run with the current parameters (fingerprint ``expected``,
    computed when not given), else None."""
    path = run_folder(config.output_dir, key.setting, key.condition, key.seed, key.fold) / "metrics.json"
    if not path.is_file():
        return None
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        log.warning("%s is unreadable; the run is repeated", path)
        return None
    if expected is None:
        expected = fingerprint(config, key.setting, config.condition(key.condition))
    if stored.get("fingerprint") != expected:
        log.warning("%s was computed with other parameters; the run is repeated", path)
        return None
    return stored
