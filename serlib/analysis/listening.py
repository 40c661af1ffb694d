"""Notebook 05 by ear (issue 45): which utterances a t-SNE point or a cell of Figure 2 stands for, with
their audio as the ACNN heard it.

Everything here is tables and bytes, testable without a browser: the predictions of a run folder's
finished runs (``run_predictions``), a confusion cell's utterances (``cell_utterances``), a t-SNE
picture's points joined with their labels, audio paths and predictions (``point_table``), and one
utterance's clip as WAV bytes (``clip_wav``). The widgets that show them are ``listening_views``.

**What is played.** The utterance's own file (its segment where the manifest gives times), from its
start for as long as the ACNN's input reaches: ``(max_frames - 1) x shift + frame`` seconds (4.0 s in
the demo, 7.5 s in the paper preset), decoded to 16 kHz mono and written as 16-bit PCM WAV (32 kB per
second), which every browser plays. What the model never heard (the rest of a longer turn) is not
played; a shorter utterance is played whole (the zero padding is not played).
"""

from __future__ import annotations

import html
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import soundfile as sf

from serlib.analysis.tsne import AnalysisError, Embedding
from serlib.base import progress
from serlib.data import audio
from serlib.data.manifest import EMOTIONS
from serlib.evidence.table1 import collect_runs

HOVER_COLUMNS = ("utterance_id", "corpus", "speaker", "gender", "emotion", "predicted", "probability")
"""What hovering a t-SNE point shows (``probability``: the model's probability of its prediction)."""

POINT_COLUMNS = (
    "x",
    "y",
    *HOVER_COLUMNS,
    "arousal_class",
    "valence_class",
    "correct",
    "path",
    "start_s",
    "end_s",
)

CELL_COLUMNS = (
    "utterance_id",
    "setting",
    "condition",
    "seed",
    "fold",
    "true",
    "predicted",
    "probability",
    "p_true",
    "corpus",
    "speaker",
    "gender",
    "path",
    "start_s",
    "end_s",
)

AUDIO_COLUMNS = ("utterance_id", "corpus", "path", "start_s", "end_s", "speaker", "gender")


def interactive() -> bool:
    """Whether a person looks at the notebook (a Jupyter kernel not run headlessly): ``serlib reproduce``
    starts its papermill kernels with ``SERLIB_PROGRESS=lines``, and then the views draw their static
    fallback instead of widgets nobody can click."""
    return progress.in_notebook() and not progress.lines_requested()


# -- the audio ----------------------------------------------------------------------------------------
def heard_seconds(config: Any) -> float:
    """Seconds of an utterance, from its start, that reach the ACNN's input: ``max_frames`` frames of
    ``frame_s`` every ``shift_s`` (the log-Mel store reads no more)."""
    logmel = config.features.logmel
    return round((logmel.max_frames - 1) * logmel.shift_s + logmel.frame_s, 6)


def _time(value: Any) -> float | None:
    return None if value is None or pd.isna(value) or value == "" else float(value)


def load_clip(row: Any, seconds: float | None) -> tuple[np.ndarray, int]:
    """The audio of one row with ``path``, ``start_s``, ``end_s`` (a manifest, point or cell row), from
    its start for at most ``seconds`` (None: all of it), as 16 kHz mono float32."""
    get = row.get if hasattr(row, "get") else lambda name: getattr(row, name)
    return audio.load(str(get("path")), _time(get("start_s")), _time(get("end_s")), max_duration_s=seconds)


def wav_bytes(signal: np.ndarray, sample_rate: int) -> bytes:
    """``signal`` as a 16-bit PCM mono WAV file in memory (clipped to [-1, 1])."""
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(signal, -1.0, 1.0), sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def clip_wav(row: Any, seconds: float | None) -> bytes:
    """One utterance as the model heard it (``seconds``: ``heard_seconds(config)``), as WAV bytes."""
    return wav_bytes(*load_clip(row, seconds))


# -- the predictions of a run folder ------------------------------------------------------------------
def run_predictions(
    output_dir: str | Path,
    setting: str,
    condition: str | None = None,
    seed: int | None = None,
    fold: int | None = None,
) -> pd.DataFrame:
    """Every test prediction of the finished runs of one setting (``predictions.csv``, with a ``setting``
    column), optionally of one condition, seed and fold. Only runs of the folder's protocol count (the
    fingerprint check of Table 1), so a stale run computed with other parameters is never listed."""
    protocol, runs = collect_runs(output_dir)
    if setting not in protocol["settings"]:
        raise AnalysisError(
            f"{output_dir}: the protocol has no {setting!r} setting (it has {sorted(protocol['settings'])})"
        )
    selected = runs[runs["setting"] == setting]
    for column, value in (("condition", condition), ("seed", seed), ("fold", fold)):
        if value is not None:
            selected = selected[selected[column] == value]
    if selected.empty:
        asked = ", ".join(
            f"{k} {v}" for k, v in (("condition", condition), ("seed", seed), ("fold", fold)) if v is not None
        )
        raise AnalysisError(
            f"{output_dir}: no finished {setting} run{' with ' + asked if asked else ''}: run notebook 04 "
            "(run_protocol) with this configuration first"
        )
    frames = []
    for folder in selected["folder"]:
        path = Path(folder) / "predictions.csv"
        if not path.is_file():
            raise AnalysisError(f"{path} is missing although the run finished: run notebook 04 again")
        frames.append(pd.read_csv(path, dtype={"utterance_id": str}, keep_default_na=False))
    frame = pd.concat(frames, ignore_index=True)
    frame.insert(1, "setting", setting)
    return frame


def tested_corpus(output_dir: str | Path, setting: str) -> str:
    """The configuration key of the corpus a setting's runs were tested on (``results/protocol.json``)."""
    path = Path(output_dir) / "results" / "protocol.json"
    if not path.is_file():
        raise AnalysisError(
            f"{path} is missing: run notebook 04 (run_protocol) with this configuration first"
        )
    protocol = json.loads(path.read_text(encoding="utf-8"))
    return str(protocol["settings"][setting]["test_corpus"])


def confusion_counts(predictions: pd.DataFrame) -> pd.DataFrame:
    """Counts of (true, predicted) pairs: rows true emotions, columns predicted, in ``EMOTIONS`` order.
    Pooled over whatever ``predictions`` holds (one seed, or every seed: each utterance once per seed)."""
    counts = pd.crosstab(predictions["true"], predictions["predicted"])
    counts = counts.reindex(index=list(EMOTIONS), columns=list(EMOTIONS), fill_value=0).astype(int)
    counts.index.name, counts.columns.name = "true", "predicted"
    return counts


def _audio_rows(manifest: pd.DataFrame, ids: Sequence[str], source: str) -> pd.DataFrame:
    """The manifest's audio columns of ``ids`` (a clear error for an id the manifest lacks)."""
    table = manifest.drop_duplicates("utterance_id").set_index("utterance_id")
    missing = sorted(set(ids) - set(table.index))
    if missing:
        raise AnalysisError(
            f"{len(missing)} utterances of {source} are not in the manifest (e.g. {missing[:3]}): was the "
            "run computed with another configuration? Open the notebook with the run's config.yaml"
        )
    columns = [c for c in AUDIO_COLUMNS[1:] if c in table.columns]
    return table.loc[list(dict.fromkeys(ids)), columns].reset_index()


def _check_emotion(value: str, role: str) -> str:
    if value not in EMOTIONS:
        raise AnalysisError(f"{role} emotion {value!r} is not one of {', '.join(EMOTIONS)}")
    return value


def cell_utterances(
    predictions: pd.DataFrame, manifest: pd.DataFrame, true: str, predicted: str
) -> pd.DataFrame:
    """The utterances of one confusion cell (true emotion ``true``, predicted ``predicted``), one row per
    prediction (an utterance appears once per seed when ``predictions`` pools seeds), most confident
    first, with the model's probability of its prediction and of the truth, and the audio columns."""
    _check_emotion(true, "true")
    _check_emotion(predicted, "predicted")
    rows = predictions[(predictions["true"] == true) & (predictions["predicted"] == predicted)].copy()
    rows["probability"] = rows[f"p_{predicted}"].astype(float)
    rows["p_true"] = rows[f"p_{true}"].astype(float)
    rows = rows.drop(columns=[c for c in ("speaker", "gender", "corpus") if c in rows.columns])
    audio_rows = _audio_rows(manifest, rows["utterance_id"].tolist(), f"the cell {true} -> {predicted}")
    table = rows.merge(audio_rows, on="utterance_id", how="left")
    if "setting" not in table:
        table["setting"] = ""
    table = table.sort_values(["probability", "utterance_id", "seed"], ascending=[False, True, True])
    return table.reindex(columns=list(CELL_COLUMNS)).reset_index(drop=True)


# -- the t-SNE points ---------------------------------------------------------------------------------
def predictions_for(
    output_dir: str | Path,
    ids: Sequence[str],
    setting: str = "within",
    condition: str | None = None,
    seed: int | None = None,
) -> pd.DataFrame:
    """One prediction per utterance of ``ids`` by ``condition``'s ACNN of ``seed`` (default: the lowest
    seed), each by the fold that tested it (leave-one-session-out tests each utterance once per seed).

    For Figure 3 pass the condition the hidden vectors came from: the predictions are then those of the
    very network whose hidden layer is drawn. Utterances that no run tested are left out.
    """
    predictions = run_predictions(output_dir, setting, condition)
    chosen = int(predictions["seed"].min()) if seed is None else seed
    predictions = predictions[predictions["seed"] == chosen]
    predictions = predictions[predictions["utterance_id"].isin(set(ids))]
    repeated = predictions["utterance_id"].duplicated()
    if repeated.any():
        raise AnalysisError(
            f"{output_dir}: {int(repeated.sum())} utterances were tested by several {setting} folds of "
            f"condition {condition}, seed {chosen} (e.g. {predictions.loc[repeated, 'utterance_id'].iloc[0]!r}): "
            "pass fold-specific predictions (run_predictions(..., fold=k))"
        )
    return predictions.reset_index(drop=True)


def _prediction_columns(predictions: pd.DataFrame | None) -> pd.DataFrame:
    """utterance_id, predicted and the probability of the prediction."""
    if predictions is None or predictions.empty:
        return pd.DataFrame({"utterance_id": pd.Series(dtype=str), "predicted": "", "probability": math.nan})
    if predictions["utterance_id"].duplicated().any():
        raise AnalysisError(
            "the predictions hold an utterance more than once: pass one run's (predictions_for)"
        )
    chosen = predictions[["utterance_id", "predicted"]].copy()
    values = predictions[[f"p_{e}" for e in EMOTIONS]].to_numpy(dtype=float)
    position = {emotion: i for i, emotion in enumerate(EMOTIONS)}
    chosen["probability"] = [values[i, position[p]] for i, p in enumerate(predictions["predicted"])]
    return chosen


def point_table(
    embedding: Embedding, manifest: pd.DataFrame, predictions: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per point of the t-SNE picture (``POINT_COLUMNS``): its coordinates, labels, corpus and
    audio path, and, when ``predictions`` are given (``predictions_for``), the predicted emotion, the
    model's probability of it and whether it is right (empty / NaN for points without a prediction)."""
    shown = embedding.labels.iloc[embedding.index].reset_index(drop=True)
    if "utterance_id" not in shown:
        raise AnalysisError(
            "the embedding's labels have no utterance_id column: build them with tsne.labels_for"
        )
    table = shown.assign(x=embedding.points[:, 0].astype(float), y=embedding.points[:, 1].astype(float))
    table = table.drop(columns=[c for c in ("corpus", "path", "start_s", "end_s") if c in table.columns])
    audio_rows = _audio_rows(manifest, table["utterance_id"].tolist(), embedding.description)
    audio_rows = audio_rows.drop(
        columns=[c for c in ("speaker", "gender") if c in table.columns and c in audio_rows]
    )
    table = table.merge(audio_rows, on="utterance_id", how="left")
    table = table.merge(_prediction_columns(predictions), on="utterance_id", how="left")
    table["predicted"] = table["predicted"].fillna("").astype(str)
    table["probability"] = table["probability"].astype(float)
    for column in ("corpus", "speaker", "gender", "emotion", "arousal_class", "valence_class"):
        table[column] = table[column].fillna("").astype(str) if column in table else ""
    table["correct"] = np.where(
        table["predicted"] == "", "", np.where(table["predicted"] == table["emotion"], "right", "wrong")
    )
    return table.reindex(columns=list(POINT_COLUMNS))


def hover_text(row: Any) -> str:
    """The hover label of one point (the HTML plotly draws): id, corpus, speaker and gender, the true
    emotion, and the prediction with its probability where there is one."""
    prediction = (
        f"{row['predicted']} (p = {row['probability']:.2f})" if row["predicted"] else "no ACNN prediction"
    )
    text = html.escape
    return (
        f"<b>{text(row['utterance_id'])}</b><br>corpus {text(row['corpus'])}<br>speaker {text(row['speaker'])}"
        f" ({text(row['gender']) or 'gender unknown'})<br>true {text(row['emotion']) or 'unlabelled'}"
        f"<br>predicted {text(prediction)}"
    )


def embedding_points(
    config: Any, embedding: Embedding, manifest: pd.DataFrame, condition: str
) -> pd.DataFrame:
    """``point_table`` of a t-SNE picture of the within corpus, with the predictions of ``condition``'s
    ACNN (lowest seed; each utterance by the fold that tested it): for Figure 3 the condition whose
    hidden layer is drawn, for Figure 4 the condition whose autoencoder made the vectors."""
    ids = embedding.labels["utterance_id"].tolist()
    return point_table(embedding, manifest, predictions_for(config.output_path, ids, condition=condition))


def clip_levels(table: pd.DataFrame, seconds: float | None) -> pd.DataFrame:
    """``table`` (points or a cell's utterances) with what can be measured of each clip as the model
    heard it: ``heard_s`` (its length) and ``rms_db`` (its level, dB relative to full scale)."""
    heard, level = [], []
    for _, row in table.iterrows():
        signal, rate = load_clip(row, seconds)
        heard.append(len(signal) / rate)
        level.append(
            20.0 * math.log10(max(float(np.sqrt(np.mean(np.square(signal, dtype=np.float64)))), 1e-10))
        )
    return table.assign(heard_s=heard, rms_db=level)
