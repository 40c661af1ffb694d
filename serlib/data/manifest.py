"""Corpus manifests: the one table format every corpus loader returns, its validation and files.

A manifest is a pandas DataFrame with the columns of ``MANIFEST_COLUMNS``: one row per utterance (or
segment of a file), with its audio path, speaker, session, emotion and arousal/valence. Any corpus
can be used by writing such a table as CSV (the ``manifest`` corpus type), so users need no code.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import soundfile

log = logging.getLogger(__name__)


EMOTIONS = ("angry", "happy", "neutral", "sad")


LEVELS = ("low", "medium", "high")


MANIFEST_COLUMNS = (
    "utterance_id",
    "corpus",
    "path",
    "start_s",
    "end_s",
    "speaker",
    "session",
    "gender",
    "emotion",
    "arousal",
    "valence",
    "arousal_class",
    "valence_class",
)


GENDERS = ("female", "male")


SUBSET_COLUMN = "subset"
"""An optional extra manifest column: each utterance's scoring subset (ASED: ``common`` or ``specific``
sentences). When a corpus has it, every run's predictions carry it and each run is also scored per
subset (``serlib.evidence.subsets``)."""


class CorpusError(ValueError):
    """A corpus folder or manifest is not what serlib expects; the message says where and what to do."""


def level(rating: float | None) -> str:
    """The paper's 3-class binning of a 1-5 rating: low [1, 2], medium (2, 4), high [4, 5]."""
    if rating is None or (isinstance(rating, float) and math.isnan(rating)):
        return ""
    value = float(rating)
    if not 1.0 <= value <= 5.0:
        raise CorpusError(f"rating {value} is outside the 1-5 scale")
    if value <= 2.0:
        return "low"
    if value >= 4.0:
        return "high"
    return "medium"


def empty_manifest() -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series(dtype=_dtype(column)) for column in MANIFEST_COLUMNS})


def _dtype(column: str) -> str:
    return "float64" if column in ("start_s", "end_s", "arousal", "valence") else "object"


def _text(value: Any) -> str:
    """A text cell: empty for missing values, and 7 rather than 7.0 for ids that pandas turned into floats."""
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def make_manifest(rows: list[dict[str, Any]] | pd.DataFrame) -> pd.DataFrame:
    """Build a manifest from row dicts: fills missing optional columns, derives A/V classes, orders columns."""
    frame = pd.DataFrame(rows).copy() if not isinstance(rows, pd.DataFrame) else rows.copy()
    for column in MANIFEST_COLUMNS:
        if column not in frame:
            frame[column] = np.nan if _dtype(column) == "float64" else ""
    for column in ("start_s", "end_s", "arousal", "valence"):
        values = pd.to_numeric(frame[column], errors="coerce").astype("float64")
        text = frame[column].astype(str).str.strip().str.lower()
        not_number = values.isna() & frame[column].notna() & ~text.isin(["", "nan"])
        if not_number.any():
            first = not_number.idxmax()
            raise CorpusError(
                f"{column} = {frame.loc[first, column]!r} (utterance {frame.loc[first, 'utterance_id']!r}) is not a "
                f"number in {int(not_number.sum())} rows; write numbers or leave the cell empty"
            )
        if column in ("arousal", "valence") and ((values < 1) | (values > 5)).any():
            first = ((values < 1) | (values > 5)).idxmax()
            raise CorpusError(
                f"{column} = {values[first]} (utterance {frame.loc[first, 'utterance_id']!r}) is outside the 1-5 "
                "rating scale; fix the rating or leave the cell empty"
            )
        frame[column] = values
    for column in MANIFEST_COLUMNS:
        if _dtype(column) == "object":
            frame[column] = [_text(value) for value in frame[column]]
    derive = frame["arousal_class"] == ""
    frame.loc[derive, "arousal_class"] = [level(v) for v in frame.loc[derive, "arousal"]]
    derive = frame["valence_class"] == ""
    frame.loc[derive, "valence_class"] = [level(v) for v in frame.loc[derive, "valence"]]
    return frame.loc[:, list(MANIFEST_COLUMNS)].reset_index(drop=True)


def validate(manifest: pd.DataFrame, source: str = "manifest", check_files: bool = True) -> pd.DataFrame:
    """Check a manifest's schema and content; raise CorpusError listing what is wrong and where."""
    missing = [c for c in MANIFEST_COLUMNS if c not in manifest.columns]
    if missing:
        raise CorpusError(
            f"{source}: missing columns {missing}; a manifest needs {', '.join(MANIFEST_COLUMNS)}"
        )
    problems: list[str] = []
    ids = manifest["utterance_id"].astype(str)
    if (ids == "").any():
        problems.append(f"{int((ids == '').sum())} rows have an empty utterance_id")
    duplicated = ids[ids.duplicated()].unique().tolist()
    if duplicated:
        problems.append(f"duplicate utterance_id values: {duplicated[:5]}")
    emotions = manifest["emotion"].fillna("").astype(str)
    unknown = sorted(set(emotions) - set(EMOTIONS) - {""})
    if unknown:
        problems.append(f"unknown emotion labels {unknown}; allowed: {', '.join(EMOTIONS)} or empty")
    for column in ("arousal_class", "valence_class"):
        values = sorted(set(manifest[column].fillna("").astype(str)) - set(LEVELS) - {""})
        if values:
            problems.append(f"unknown {column} values {values}; allowed: {', '.join(LEVELS)} or empty")
    for column in ("arousal", "valence"):
        values = pd.to_numeric(manifest[column], errors="coerce")
        bad = values[(values < 1) | (values > 5)]
        if len(bad):
            problems.append(
                f"{column} outside 1-5 in {len(bad)} rows (e.g. {ids[bad.index[0]]}: {bad.iloc[0]})"
            )
    starts = pd.to_numeric(manifest["start_s"], errors="coerce")
    ends = pd.to_numeric(manifest["end_s"], errors="coerce")
    inverted = (starts.notna() & ends.notna()) & (ends <= starts)
    if inverted.any():
        problems.append(
            f"{int(inverted.sum())} segments end before they start (e.g. {ids[inverted.idxmax()]})"
        )
    if check_files:
        absent = [p for p in manifest["path"].astype(str).unique() if not Path(p).is_file()]
        if absent:
            problems.append(f"{len(absent)} audio files do not exist, e.g. {absent[:3]}")
    if problems:
        raise CorpusError(f"{source}: " + "; ".join(problems))
    return manifest


def read_manifest(path: str | Path, check_files: bool = True) -> pd.DataFrame:
    """Read a manifest CSV (relative audio paths are taken relative to the CSV's folder)."""
    path = Path(path)
    if not path.is_file():
        raise CorpusError(
            f"manifest {path} does not exist; write a CSV with columns {', '.join(MANIFEST_COLUMNS)}"
        )
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise CorpusError(
            f"{path}: not a readable UTF-8 CSV ({str(error).splitlines()[0]}); write a CSV with columns "
            f"{', '.join(MANIFEST_COLUMNS)}"
        ) from None
    missing = [c for c in ("utterance_id", "path") if c not in frame.columns]
    if missing:
        raise CorpusError(f"{path}: missing required columns {missing}")
    frame["path"] = [
        str(p) if Path(p).is_absolute() else str((path.parent / p).resolve()) for p in frame["path"]
    ]
    try:
        manifest = make_manifest(frame)
    except CorpusError as error:
        raise CorpusError(f"{path}: {error}") from None
    if (manifest["corpus"] == "").any():
        manifest.loc[manifest["corpus"] == "", "corpus"] = path.stem
    return validate(manifest, str(path), check_files=check_files)


def write_manifest(manifest: pd.DataFrame, path: str | Path, relative_to: str | Path | None = None) -> Path:
    """Write a manifest CSV atomically; paths are stored relative to ``relative_to`` when given."""

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = manifest.loc[:, list(MANIFEST_COLUMNS)].copy()
    if relative_to is not None:
        base = Path(relative_to).resolve()
        frame["path"] = [os.path.relpath(Path(p).resolve(), base) for p in frame["path"]]
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    frame.to_csv(tmp, index=False, float_format="%.6g")
    os.replace(tmp, path)
    return path


def describe(manifest: pd.DataFrame, audio_hours: bool = False) -> dict[str, Any]:
    """Counts per class, session, speaker and gender, and hours of audio.

    Hours are summed from segment times; ``audio_hours=True`` also reads the headers of whole-file
    rows (no segment times) to measure theirs, which takes a while on large corpora.
    """
    emotions = manifest["emotion"].fillna("").astype(str)
    summary: dict[str, Any] = {
        "utterances": int(len(manifest)),
        "emotion": emotions.replace("", "(unlabeled)").value_counts().to_dict(),
        "sessions": int(manifest["session"].nunique()),
        "speakers": int(manifest["speaker"].nunique()),
        "per_session": manifest["session"].value_counts().sort_index().to_dict(),
        "per_speaker": manifest["speaker"].value_counts().sort_index().to_dict(),
        "gender": manifest["gender"].fillna("").astype(str).replace("", "(unknown)").value_counts().to_dict(),
        "arousal_class": manifest["arousal_class"]
        .fillna("")
        .astype(str)
        .replace("", "(none)")
        .value_counts()
        .to_dict(),
        "valence_class": manifest["valence_class"]
        .fillna("")
        .astype(str)
        .replace("", "(none)")
        .value_counts()
        .to_dict(),
    }
    durations = manifest["end_s"] - manifest["start_s"]
    if durations.notna().any():
        summary["hours_of_segments"] = float(durations.sum() / 3600.0)
    if audio_hours:
        whole = manifest.loc[durations.isna(), "path"].astype(str)
        seconds = sum(audio_seconds(path) for path in whole)
        summary["hours"] = float((durations.sum() + seconds) / 3600.0)
    return summary


def audio_seconds(path: str) -> float:

    try:
        info = soundfile.info(path)
    except (RuntimeError, soundfile.LibsndfileError) as error:
        raise CorpusError(f"{path}: cannot read the audio header ({error})") from None
    return info.frames / info.samplerate


def segments(manifest: pd.DataFrame, segment_s: float, source: str = "corpus") -> pd.DataFrame:
    """Each row split into consecutive ``segment_s`` pieces (``start_s``/``end_s``, ids ``<id>_<k>``).

    A tail shorter than half a piece is dropped; a row shorter than that stays whole (as ``<id>_0``).
    Rows that are already segments of a longer file are split within their own start and end. So an
    autoencoder with a short fixed input length sees all of the audio, not one cut per file.
    """
    if segment_s <= 0:
        raise CorpusError(f"{source}: segment_s must be positive, got {segment_s}")
    pieces = []
    for row in manifest.to_dict("records"):
        begin = 0.0 if _missing(row["start_s"]) else float(row["start_s"])
        end_of_row = audio_seconds(row["path"]) if _missing(row["end_s"]) else float(row["end_s"])
        length = end_of_row - begin
        count = max(1, int(length // segment_s) + (length % segment_s >= segment_s / 2))
        for k in range(count):
            start = begin + k * segment_s
            end = min(start + segment_s, end_of_row)
            pieces.append(
                row | {"utterance_id": f"{row['utterance_id']}_{k}", "start_s": start, "end_s": end}
            )
    log.info("%s: %d rows split into %d segments of %.2f s", source, len(manifest), len(pieces), segment_s)
    frame = pd.DataFrame(pieces, columns=list(manifest.columns))
    return frame.astype({"start_s": "float64", "end_s": "float64"})


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
