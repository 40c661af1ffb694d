"""Corpus manifests: one table format that every loader returns, its validation, and the loaders.

A manifest is a pandas DataFrame with the columns of ``MANIFEST_COLUMNS``; any corpus can be used by
writing such a table as CSV and naming it with the ``manifest`` loader, so users need no code.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

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
            frame[column] = frame[column].fillna("").astype(str)
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
            problems.append(f"{column} outside 1-5 in {len(bad)} rows (e.g. {ids[bad.index[0]]}: {bad.iloc[0]})")
    starts = pd.to_numeric(manifest["start_s"], errors="coerce")
    ends = pd.to_numeric(manifest["end_s"], errors="coerce")
    inverted = (starts.notna() & ends.notna()) & (ends <= starts)
    if inverted.any():
        problems.append(f"{int(inverted.sum())} segments end before they start (e.g. {ids[inverted.idxmax()]})")
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
        raise CorpusError(f"manifest {path} does not exist; write a CSV with columns {', '.join(MANIFEST_COLUMNS)}")
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
    frame["path"] = [str(p) if Path(p).is_absolute() else str((path.parent / p).resolve()) for p in frame["path"]]
    try:
        manifest = make_manifest(frame)
    except CorpusError as error:
        raise CorpusError(f"{path}: {error}") from None
    if (manifest["corpus"] == "").any():
        manifest.loc[manifest["corpus"] == "", "corpus"] = path.stem
    return validate(manifest, str(path), check_files=check_files)


def write_manifest(manifest: pd.DataFrame, path: str | Path, relative_to: str | Path | None = None) -> Path:
    """Write a manifest CSV atomically; paths are stored relative to ``relative_to`` when given."""
    import os

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


def describe(manifest: pd.DataFrame) -> dict[str, Any]:
    """Counts per class, session and speaker, and total hours where segment times are known."""
    summary: dict[str, Any] = {
        "utterances": int(len(manifest)),
        "emotion": manifest["emotion"].replace("", "(unlabeled)").value_counts().to_dict(),
        "sessions": int(manifest["session"].nunique()),
        "speakers": int(manifest["speaker"].nunique()),
        "per_session": manifest["session"].value_counts().sort_index().to_dict(),
    }
    durations = manifest["end_s"] - manifest["start_s"]
    if durations.notna().any():
        summary["hours_of_segments"] = float(durations.sum() / 3600.0)
    return summary


# -- loader registry -------------------------------------------------------------------------------
Loader = Callable[..., pd.DataFrame]
_LOADERS: dict[str, Loader] = {}


def register(name: str) -> Callable[[Loader], Loader]:
    def decorate(function: Loader) -> Loader:
        _LOADERS[name] = function
        return function

    return decorate


@register("manifest")
def load_manifest(root: str | Path, check_files: bool = True) -> pd.DataFrame:
    """Any corpus, given as a manifest CSV in serlib's schema (``root`` is the CSV file)."""
    return read_manifest(root, check_files=check_files)


def load(name: str, root: str | Path, **options: Any) -> pd.DataFrame:
    """Load corpus ``name`` from folder ``root`` as a validated manifest DataFrame."""
    _import_loaders()
    if name not in _LOADERS:
        raise CorpusError(f"unknown corpus type {name!r}; known: {', '.join(sorted(_LOADERS))}")
    return _LOADERS[name](root, **options)


def load_configured(config: Any, key: str) -> pd.DataFrame:
    """Load the corpus configured under ``config.corpora[key]`` (generating the demo corpus if needed)."""
    corpus = config.corpora[key]
    root = config.corpus_root(key)
    options = dict(corpus.options)
    if corpus.type == "demo":
        from serlib import demo_corpus

        demo_corpus.ensure(root, **config.demo_corpus)
    manifest = load(corpus.type, root, **options)
    manifest = manifest.copy()
    manifest["corpus"] = key
    return manifest


def _import_loaders() -> None:
    """Import modules that register further loaders (kept lazy so the base import stays light)."""
    for module in ("serlib.demo_corpus",):
        try:
            __import__(module)
        except ModuleNotFoundError as error:
            if error.name != module:
                raise
