"""A model folder: the files a trained ACNN needs to predict, and their export from a finished protocol.

A *model folder* holds ``model.keras`` (the ACNN), ``model.json`` (class names, the log-Mel and
spectrogram parameters it was trained with, the AE parameters) and, for an AE condition,
``autoencoder.keras``. ``export_models`` copies the cross-corpus models of a finished protocol into
``<output_dir>/models/<condition>/`` with an index ``models.json`` naming the default model
(``serlib.app.predict`` reads them).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from serlib.base import run_schemas
from serlib.evidence.best_condition import RULE, best_ae_condition

log = logging.getLogger(__name__)

MODEL_FILE = "model.keras"
METADATA_FILE = "model.json"
AUTOENCODER_FILE = "autoencoder.keras"
INDEX_FILE = "models.json"
METADATA_FORMAT = "serlib-acnn-1"
INDEX_FORMAT = "serlib-models-1"


class PredictError(ValueError):
    """A model folder or model file cannot be used; the message names the file and what to do."""


def normalisation_mode(metadata: dict[str, Any]) -> str:
    """The ``features.normalisation`` a model was trained with, from its metadata: the key
    ``normalisation`` (``{"mode", "band_statistics", "in_model"}``), or, in a model written before issue
    43, ``feature_normalisation`` (the mode, ``train`` when absent: the only mode before it existed)
    beside a ``normalisation`` that held the statistics alone."""
    value = metadata.get("normalisation")
    if isinstance(value, dict) and "mode" in value:
        return str(value["mode"])
    return str(metadata.get("feature_normalisation", "train"))


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from a model folder; unreadable or not an object is a PredictError naming the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PredictError(f"{path}: not readable JSON ({error}); export the models again") from None
    if not isinstance(data, dict):
        raise PredictError(f"{path}: expected a JSON object; export the models again")
    return data


def read_checked(read: Callable[[Path], Any], path: Path) -> Any:
    """``read(path)`` (a ``run_schemas`` reader of model.json or models.json), its error a PredictError."""
    try:
        return read(path)
    except run_schemas.RunFileError as error:
        raise PredictError(str(error)) from None


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in blocks (no TensorFlow import needed)."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


# -- export ------------------------------------------------------------------------------------------
def export_models(
    source: Any, out_dir: str | os.PathLike[str] | None = None, seed: int | None = None
) -> Path:
    """Copy the cross-corpus BL model and the best AE-condition model of a finished protocol into model folders.

    ``source`` is the run's Config, or its output folder (conditions and seeds are then read from
    ``results/protocol.json``). ``out_dir`` defaults to ``<output_dir>/models``; each condition gets
    ``<out_dir>/<condition>/`` with ``model.keras``, ``model.json`` (the AE path made relative, the AE's
    sha256 and input shape added) and, for an AE condition, ``autoencoder.keras``. The run of ``seed``
    (default: the first configured seed) is exported, not the best seed. The AE condition is
    ``best_condition``'s (Figure 2's rule): highest mean cross-corpus UAR over seeds among the AEs that
    never heard the test corpus (never C), ties to the first configured; it is the default of
    ``models.json``, else BL. The folder is built beside
    the target and renamed in.
    """
    if isinstance(source, (str, os.PathLike)):
        output = Path(source)
        protocol = run_schemas.read_protocol_grid(output / "results" / "protocol.json")
        conditions = [(c["name"], c["autoencoder_corpus"]) for c in protocol["conditions"]]
        seeds = [int(s) for s in protocol["seeds"]]
        test_corpus = protocol["settings"].get("cross", {}).get("test_corpus")
    else:
        output = Path(source.output_dir)
        conditions = [(c.name, c.autoencoder_corpus) for c in source.protocol.conditions]
        seeds = [int(s) for s in source.protocol.seeds]
        test_corpus = source.protocol.cross_corpus_test
    out = Path(out_dir) if out_dir is not None else output / "models"
    if seed is None and not seeds:
        raise PredictError(f"{output}: the protocol names no seeds; pass seed=")
    seed = int(seeds[0] if seed is None else seed)
    cross = output / "results" / "cross"
    scores: dict[str, float] = {}
    for name, _ in conditions:
        uars = [run_schemas.read_uar(p) for p in sorted((cross / name).glob("seed*/fold0/metrics.json"))]
        if uars and (cross / name / f"seed{seed}" / "fold0" / MODEL_FILE).is_file():
            scores[name] = float(np.mean(uars))
    baseline = next((name for name, corpus in conditions if corpus == "none"), None)
    best = best_ae_condition(scores, conditions, test_corpus)
    chosen = ([baseline] if baseline in scores else []) + ([best] if best is not None else [])
    if not chosen:
        raise PredictError(
            f"{cross}: no finished cross-corpus runs with {MODEL_FILE} for seed {seed}; run `serlib evaluate` first"
        )
    staging = out.with_name(f".{out.name}.tmp{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        for name in chosen:
            _export_one(cross / name / f"seed{seed}" / "fold0", staging / name, scores[name])
        index = {
            "format": INDEX_FORMAT,
            "default": chosen[-1],
            "models": {name: {"cross_corpus_mean_uar": scores[name], "seed": seed} for name in chosen},
            "note": f"default = {RULE} (BL when none qualifies)",
        }
        (staging / INDEX_FILE).write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
        old = out.with_name(f".{out.name}.old{os.getpid()}")
        if out.exists():
            os.replace(out, old)
        os.replace(staging, out)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("exported models %s to %s (default %s)", chosen, out, chosen[-1])
    return out


def _export_one(run: Path, target: Path, mean_uar: float) -> None:
    metadata = read_json(run / METADATA_FILE)  # copied as it is; load_predictor validates it
    target.mkdir(parents=True)
    shutil.copy2(run / MODEL_FILE, target / MODEL_FILE)
    ae = metadata.get("autoencoder")
    if ae:
        source = Path(str(ae.get("model") or ""))
        if not source.is_file():
            raise PredictError(
                f"{run / METADATA_FILE}: its autoencoder {source} is missing; re-run `serlib evaluate`"
            )
        shutil.copy2(source, target / AUTOENCODER_FILE)
        ae["model"] = AUTOENCODER_FILE
        ae["sha256"] = sha256(target / AUTOENCODER_FILE)
        state = source.parent / "training_state.json"
        if state.is_file():
            shape = read_json(state).get("fingerprint", {}).get("shape")
            if shape:
                ae["input_shape"] = [int(n) for n in shape[1:]]
    metadata["source_run"] = str(run)
    metadata["cross_corpus_mean_uar"] = mean_uar
    (target / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
