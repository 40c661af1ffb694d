"""Corpus manifests: one table format that every loader returns, its validation, and the loaders.

A manifest is a pandas DataFrame with the columns of ``MANIFEST_COLUMNS``; any corpus can be used by
writing such a table as CSV and naming it with the ``manifest`` loader, so users need no code.
"""

from __future__ import annotations

import logging
import math
import random
import re
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
        seconds = sum(_audio_seconds(path) for path in whole)
        summary["hours"] = float((durations.sum() + seconds) / 3600.0)
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


def load(name: str, root: str | Path, segment_s: float | None = None, **options: Any) -> pd.DataFrame:
    """Load corpus ``name`` from folder ``root`` as a validated manifest DataFrame.

    Options are the loader's keyword arguments; a misspelt one is an error that lists the valid ones.
    ``segment_s``, accepted by every loader, splits the rows into pieces of that many seconds
    (``segments``).
    """
    if segment_s is not None:
        manifest = load(name, root, **options)
        return validate(segments(manifest, float(segment_s), f"{name} {root}"), f"{name} {root}", False)
    import inspect

    if name not in _LOADERS:
        _import_loaders()  # loaders defined in other modules (demo) register themselves on import
    if name not in _LOADERS:
        raise CorpusError(f"unknown corpus type {name!r}; known: {', '.join(sorted(_LOADERS))}")
    loader = _LOADERS[name]
    parameters = inspect.signature(loader).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        allowed = [
            p for p in list(parameters)[1:] if parameters[p].kind is not inspect.Parameter.VAR_POSITIONAL
        ]
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            raise CorpusError(
                f"corpus type {name!r} has no option {', '.join(map(repr, unknown))}; its options are "
                f"{', '.join([*allowed, 'segment_s'])}"
            )
    return loader(root, **options)


def load_configured(config: Any, key: str) -> pd.DataFrame:
    """Load the corpus configured under ``config.corpora[key]`` (generating the demo corpus if needed).

    A corpus of type ``union`` is the rows of the configured corpora named in its option ``parts``,
    each id prefixed with its part's key (``librispeech:19-198-0001``), optionally split into
    ``segment_s`` pieces: several sources of unlabeled speech for one autoencoder.
    """
    corpus = config.corpora[key]
    if corpus.type == "union":
        return _union(config, key)
    root = config.corpus_root(key)
    options = dict(corpus.options)
    if corpus.type == "demo":
        from serlib import demo_corpus

        demo_corpus.ensure(root, **config.demo_corpus)
    manifest = load(corpus.type, root, **options)
    manifest = manifest.copy()
    manifest["corpus"] = key
    return manifest


UNION_OPTIONS = ("parts", "segment_s")


def _union(config: Any, key: str) -> pd.DataFrame:
    options = dict(config.corpora[key].options)
    unknown = sorted(set(options) - set(UNION_OPTIONS))
    parts = options.get("parts")
    if unknown or not isinstance(parts, list) or not parts:
        raise CorpusError(
            f"corpora.{key}: a union takes the options {', '.join(UNION_OPTIONS)} with parts = a list of "
            f"corpus keys (got {sorted(options)})"
        )
    pieces = []
    for part in parts:
        if part == key or part not in config.corpora or config.corpora[part].type == "union":
            raise CorpusError(
                f"corpora.{key}.options.parts: {part!r} must be another configured corpus that is not a union"
            )
        manifest = load_configured(config, part).copy()
        manifest["utterance_id"] = part + ":" + manifest["utterance_id"].astype(str)
        pieces.append(manifest.loc[:, list(MANIFEST_COLUMNS)])
    manifest = pd.concat(pieces, ignore_index=True)
    if options.get("segment_s") is not None:
        manifest = segments(manifest, float(options["segment_s"]), f"corpora.{key}")
    manifest["corpus"] = key
    return validate(make_manifest(manifest), f"corpora.{key}", check_files=False)


def _import_loaders() -> None:
    """Import modules that register further loaders (kept lazy so the base import stays light)."""
    for module in ("serlib.demo_corpus",):
        try:
            __import__(module)
        except ModuleNotFoundError as error:
            if error.name != module:
                raise


# -- shared helpers of the corpus loaders -----------------------------------------------------------
PAPER_CLASS_NAMES = {"ang": "angry", "hap": "happy", "exc": "happy", "neu": "neutral", "sad": "sad"}
"""IEMOCAP's majority labels mapped to the paper's four classes (happy and excited merged)."""

CATEGORY_AROUSAL_VALENCE: dict[str, tuple[str, str]] = {
    "angry": ("high", "low"),
    "happy": ("high", "high"),
    "neutral": ("medium", "medium"),
    "sad": ("low", "low"),
}
"""Arousal and valence classes for corpora without dimensional ratings (Emo-DB, RAVDESS).

Each category is placed at its quadrant of Russell's circumplex model of affect (Russell 1980): anger
high arousal / low valence, happiness high / high, sadness low / low, and neutral in the paper's
middle class on both. Binary arousal/valence groupings of acted-emotion categories in this spirit are
common in SER benchmarks (e.g. Schuller et al., ASRU 2009, for Emo-DB); the 3-level version with a
medium neutral is our choice. Numeric ratings stay empty, because none were collected; only the
classes that the multi-view loss needs are filled.
"""


def _text_lines(path: Path) -> list[str]:
    """A text file's lines without a UTF-8 BOM and with LF, CRLF or CR line ends.

    Bytes that are not UTF-8 (free-text annotator comments) become U+FFFD; every line the loaders
    parse is ASCII and is matched strictly, so a replaced character there is an error, not a guess.
    """
    return path.read_bytes().decode("utf-8-sig", errors="replace").splitlines()


def _visible(path: Path) -> bool:
    """False for hidden files such as macOS '._' resource forks that archives often carry along."""
    return not path.name.startswith(".")


def _rating(value: str, where: str, clipped: list[str]) -> float:
    """A 1-5 rating from its text; NaN stays NaN, values outside the scale are clipped and noted."""
    try:
        number = float(value)
    except ValueError:
        raise CorpusError(f"{where}: rating {value!r} is not a number") from None
    if math.isnan(number):
        return number
    if not 1.0 <= number <= 5.0:
        clipped.append(f"{where} ({number})")
        number = min(5.0, max(1.0, number))
    return number


def _log_clipped(source: str, clipped: list[str]) -> None:
    if clipped:
        log.warning(
            "%s: %d ratings outside 1-5 were clipped to the scale, e.g. %s", source, len(clipped), clipped[:3]
        )


def _check_audio(
    rows: list[dict[str, Any]], source: str, check_files: bool, allow_missing: bool, hint: str
) -> list[dict[str, Any]]:
    """Rows whose audio exists; missing files are an error unless ``allow_missing`` (then logged)."""
    if not check_files:
        return rows
    present = {path: Path(path).is_file() for path in {row["path"] for row in rows}}
    missing = [row for row in rows if not present[row["path"]]]
    if not missing:
        return rows
    examples = sorted({row["path"] for row in missing})[:3]
    if not allow_missing:
        raise CorpusError(
            f"{source}: {len(missing)} utterances have no audio file, e.g. {examples}; {hint} "
            "(or pass allow_missing=True to skip them)"
        )
    log.warning("%s: skipped %d utterances without audio, e.g. %s", source, len(missing), examples)
    return [row for row in rows if present[row["path"]]]


def _finish(rows: list[dict[str, Any]], source: str, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """A validated manifest from loader rows, keeping the named extra columns after the schema's."""
    if not rows:
        raise CorpusError(f"{source}: no utterances were found (see the log for what was skipped)")
    frame = pd.DataFrame(rows)
    manifest = make_manifest(frame)
    for column in extra:
        manifest[column] = frame[column].fillna("").astype(str).to_numpy()
    return validate(manifest, source, check_files=False)


def _log_dropped(source: str, what: str, counts: dict[str, int], kept: bool = False) -> None:
    """Log how many items outside the four classes were left out (or kept unlabelled), per label."""
    if counts:
        total = sum(counts.values())
        detail = ", ".join(f"{label}: {count}" for label, count in sorted(counts.items()))
        verb = "kept unlabelled" if kept else "left out"
        log.info("%s: %s %d %s (%s)", source, verb, total, what, detail)


def _category_classes(emotion: str) -> tuple[str, str]:
    return CATEGORY_AROUSAL_VALENCE.get(emotion, ("", ""))


# -- IEMOCAP ---------------------------------------------------------------------------------------
IEMOCAP_PAPER_COUNTS = {"angry": 1103, "happy": 1636, "neutral": 1708, "sad": 1084}
"""The paper's 4-class IEMOCAP subset (5,531 utterances; happy includes excited)."""

IEMOCAP_LABELS = ("neu", "ang", "hap", "sad", "fru", "exc", "fea", "sur", "dis", "oth", "xxx")
"""Every majority label of IEMOCAP's evaluation files (xxx: no majority); anything else is an error."""

_IEMOCAP_LINE = re.compile(
    r"^\[\s*(?P<start>[0-9.]+)\s*-\s*(?P<end>[0-9.]+)\s*\]\s+(?P<utterance>\S+)\s+(?P<label>\S+)\s+"
    r"\[\s*(?P<valence>[^,\s\]]+)\s*,\s*(?P<arousal>[^,\s\]]+)\s*,\s*(?P<dominance>[^,\s\]]+)\s*\]\s*$"
)
_IEMOCAP_UTTERANCE = re.compile(r"^Ses0?(?P<session>\d)(?P<wearer>[FM])_\S*_(?P<speaker>[FM])\d+$")


def _iemocap_folder(root: Path) -> Path:
    for candidate in (root, root / "IEMOCAP_full_release"):
        if any((candidate / f"Session{n}").is_dir() for n in range(1, 6)):
            return candidate
    raise CorpusError(
        f"no Session1..5 folders under {root} or {root / 'IEMOCAP_full_release'}: point root at "
        "IEMOCAP_full_release (the folder that holds Session1 ... Session5)"
    )


@register("iemocap")
def iemocap(
    root: str | Path, all_labels: bool = False, check_files: bool = True, allow_missing: bool = False
) -> pd.DataFrame:
    """IEMOCAP's utterances with the paper's 4 classes (happy + excited = happy), sessions 1-5.

    Labels come from the top-level ``Session{n}/dialog/EmoEvaluation/*.txt`` files (majority label and
    mean [valence, activation, dominance]); audio is ``Session{n}/sentences/wav/<dialog>/<utterance>.wav``.
    The speaker is the session plus the last F/M of the utterance id (the speaking actor, not the one
    wearing markers). ``all_labels=True`` keeps every utterance, with ``emotion`` empty outside the
    four classes; the extra column ``label_original`` always holds IEMOCAP's own label (neu, exc, ...).
    """
    folder = _iemocap_folder(Path(root))
    source = f"IEMOCAP {folder}"
    sessions = [n for n in range(1, 6) if (folder / f"Session{n}").is_dir()]
    if len(sessions) < 5:
        log.warning("%s: only sessions %s are present (IEMOCAP has 5)", source, sessions)
    rows: list[dict[str, Any]] = []
    dropped: dict[str, int] = {}
    clipped: list[str] = []
    seen: dict[str, str] = {}
    for session in sessions:
        label_folder = folder / f"Session{session}" / "dialog" / "EmoEvaluation"
        label_files = sorted(p for p in label_folder.glob("*.txt") if p.is_file() and _visible(p))
        if not label_files:
            raise CorpusError(
                f"{label_folder}: no evaluation files (*.txt); IEMOCAP keeps its labels in "
                "Session{n}/dialog/EmoEvaluation/<dialog>.txt"
            )
        for label_file in label_files:
            for number, line in enumerate(_text_lines(label_file), start=1):
                if not line.startswith("["):
                    continue  # header, blank and per-annotator lines
                where = f"{label_file}:{number}"
                match = _IEMOCAP_LINE.match(line)
                if match is None:
                    raise CorpusError(
                        f"{where}: cannot read {line!r}; expected "
                        "'[start - end]<TAB>utterance<TAB>label<TAB>[V, A, D]'"
                    )
                utterance = match["utterance"]
                parts = _IEMOCAP_UTTERANCE.match(utterance)
                if parts is None or int(parts["session"]) != session:
                    raise CorpusError(
                        f"{where}: utterance id {utterance!r} is not of the form Ses0{session}F_<dialog>_M012 "
                        f"for Session{session}"
                    )
                label = match["label"]
                if label not in IEMOCAP_LABELS:
                    raise CorpusError(
                        f"{where}: unknown label {label!r}; IEMOCAP's labels are {', '.join(IEMOCAP_LABELS)}"
                    )
                if utterance in seen:
                    raise CorpusError(
                        f"{where}: utterance {utterance!r} is listed twice (first at {seen[utterance]}); "
                        "keep one of the two blocks"
                    )
                seen[utterance] = where
                emotion = PAPER_CLASS_NAMES.get(label, "")
                if not emotion:
                    dropped[label] = dropped.get(label, 0) + 1
                    if not all_labels:
                        continue
                sex = parts["speaker"]
                rows.append(
                    {
                        "utterance_id": utterance,
                        "corpus": "iemocap",
                        "path": str(
                            folder
                            / f"Session{session}"
                            / "sentences"
                            / "wav"
                            / label_file.stem
                            / f"{utterance}.wav"
                        ),
                        "speaker": f"{session}{sex}",
                        "session": str(session),
                        "gender": "female" if sex == "F" else "male",
                        "emotion": emotion,
                        "valence": _rating(match["valence"], where, clipped),
                        "arousal": _rating(match["arousal"], where, clipped),
                        "label_original": label,
                    }
                )
    _log_clipped(source, clipped)
    _log_dropped(source, "utterances outside the 4 classes", dropped, kept=all_labels)
    rows = _check_audio(
        rows, source, check_files, allow_missing, "IEMOCAP keeps them in Session{n}/sentences/wav/<dialog>/"
    )
    return _finish(rows, source, extra=("label_original",))


# -- MSP-IMPROV ------------------------------------------------------------------------------------
MSP_IMPROV_PAPER_COUNTS = {"angry": 792, "happy": 2644, "neutral": 3477, "sad": 885}
"""The paper's 4-class MSP-IMPROV subset (7,798 utterances)."""

MSP_IMPROV_CLASSES = {"A": "angry", "H": "happy", "N": "neutral", "S": "sad"}
_MSP_NAME = re.compile(
    r"^(?:UTD|MSP)-IMPROV-S(?P<sentence>\d{2})(?P<target>[A-Z])-(?P<sex>[FM])(?P<session>\d{2})-"
    r"(?P<scenario>[A-Z])-(?P<turn>[A-Z0-9]+)$"
)
_MSP_HEADER = re.compile(
    r"^(?P<video>(?:UTD|MSP)-IMPROV-[A-Z0-9-]+)\.avi\s*;\s*(?P<label>[A-Z])\s*;\s*A:\s*(?P<arousal>\S+?)\s*;"
    r"\s*V:\s*(?P<valence>\S+?)\s*;\s*D:\s*(?P<dominance>\S+?)\s*;\s*N:\s*(?P<raters>\S+?)\s*;\s*$"
)


def _msp_improv_label_file(root: Path) -> Path:
    names = ("Evalution.txt", "Evaluation.txt")
    candidates = [root / name for name in names]
    candidates += [
        folder / name for folder in sorted(p for p in root.iterdir() if p.is_dir()) for name in names
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise CorpusError(
        f"no Evalution.txt (sic) or Evaluation.txt in {root} or one folder below it: point root at the "
        "MSP-IMPROV folder that holds the evaluation file and the audio"
    )


def _msp_improv_labels(label_file: Path) -> list[dict[str, Any]]:
    """The consensus line of every block of MSP-IMPROV's evaluation file.

    No original file was available to us: the format follows public parsers of the corpus. A block
    starts after a blank line with ``UTD-IMPROV-S01A-F01-P-FM01.avi; N; A:2.6; V:3.0; D:2.4 ; N:5;``
    (video, consensus letter, mean arousal, valence, dominance, number of raters); the lines after it
    are single raters' answers and are not used. Any line naming a video, and the first line of every
    block, must match that form exactly, otherwise the file is rejected with the line number.
    """
    entries: list[dict[str, Any]] = []
    block_start = True
    for number, line in enumerate(_text_lines(label_file), start=1):
        text = line.strip()
        if not text:
            block_start = True
            continue
        if block_start or ".avi" in text:
            match = _MSP_HEADER.match(text)
            if match is None:
                raise CorpusError(
                    f"{label_file}:{number}: cannot read {text!r}; expected a block's first line like "
                    "'UTD-IMPROV-S01A-F01-P-FM01.avi; N; A:2.6; V:3.0; D:2.4 ; N:5;'"
                )
            name = match["video"]
            if _MSP_NAME.match(name) is None:
                raise CorpusError(
                    f"{label_file}:{number}: video name {name!r} is not of the form UTD-IMPROV-S01A-F01-P-FM01"
                )
            entries.append({**match.groupdict(), "where": f"{label_file}:{number}"})
        block_start = False
    return entries


@register("msp_improv")
def msp_improv(
    root: str | Path, all_labels: bool = False, check_files: bool = True, allow_missing: bool = False
) -> pd.DataFrame:
    """MSP-IMPROV's turns with the consensus classes A/H/N/S -> angry/happy/neutral/sad, sessions 1-6.

    Labels and mean arousal/valence come from ``Evalution.txt`` (sic) or ``Evaluation.txt`` in root or
    one folder below; audio ``MSP-IMPROV-S01A-F01-P-FM01.wav`` is found anywhere under root. The
    ``F01`` field gives sex and session: speaker ``1F``, session ``1``. Other consensus letters (O
    other, X no agreement) are left out, or kept unlabelled with ``all_labels=True``; the consensus
    letter is kept in the extra column ``label_original``.
    """
    folder = Path(root)
    if not folder.is_dir():
        raise CorpusError(f"MSP-IMPROV folder {folder} does not exist")
    label_file = _msp_improv_label_file(folder)
    source = f"MSP-IMPROV {folder}"
    audio: dict[str, Path] = {}
    copies: list[str] = []
    for path in sorted(folder.rglob("*.wav")):
        if _visible(path):
            if path.stem in audio and path.stem.startswith("MSP-IMPROV-"):
                copies.append(f"{audio[path.stem]} and {path}")
            audio[path.stem] = path
    if copies:
        raise CorpusError(
            f"{source}: {len(copies)} utterances have more than one audio file, e.g. {copies[0]}; point root "
            "at a folder that holds one copy of the corpus"
        )
    rows: list[dict[str, Any]] = []
    dropped: dict[str, int] = {}
    clipped: list[str] = []
    for entry in _msp_improv_labels(label_file):
        utterance = "MSP" + entry["video"][3:]
        name = _MSP_NAME.match(entry["video"])
        assert name is not None  # checked by the parser
        session = str(int(name["session"]))
        if not 1 <= int(session) <= 6:
            raise CorpusError(f"{entry['where']}: session {session} is outside MSP-IMPROV's 1-6")
        emotion = MSP_IMPROV_CLASSES.get(entry["label"], "")
        if not emotion:
            dropped[entry["label"]] = dropped.get(entry["label"], 0) + 1
            if not all_labels:
                continue
        rows.append(
            {
                "utterance_id": utterance,
                "corpus": "msp_improv",
                "path": str(audio.get(utterance, folder / f"{utterance}.wav")),
                "speaker": f"{session}{name['sex']}",
                "session": session,
                "gender": "female" if name["sex"] == "F" else "male",
                "emotion": emotion,
                "arousal": _rating(entry["arousal"], entry["where"], clipped),
                "valence": _rating(entry["valence"], entry["where"], clipped),
                "label_original": entry["label"],
            }
        )
    _log_clipped(source, clipped)
    _log_dropped(source, "turns outside the 4 classes", dropped, kept=all_labels)
    labelled = {row["utterance_id"] for row in rows}
    unlabelled = sum(1 for stem in audio if stem.startswith("MSP-IMPROV-") and stem not in labelled)
    if unlabelled:
        log.info("%s: %d audio files have no kept label line and are not used", source, unlabelled)
    rows = _check_audio(
        rows, source, check_files, allow_missing, f"no MSP-IMPROV-*.wav of that name anywhere under {folder}"
    )
    return _finish(rows, source, extra=("label_original",))


# -- TED-LIUM 2 ------------------------------------------------------------------------------------
TEDLIUM2_PAPER = {
    "talks": 1495,
    "segments": 92973,
    "hours": 207,
    "subset_talks": 400,
    "subset_segments": 25303,
}
"""The paper's TED-LIUM 2 numbers: the train set's 1,495 talks (207 h) give 92,973 segments; the
400-talk subset gives 25,303 segments."""

TEDLIUM2_SPLITS = ("train", "dev", "test")
_IGNORED_SEGMENT = "ignore_time_segment_in_scoring"


def _tedlium_folder(root: Path, splits: tuple[str, ...]) -> Path:
    for candidate in (root, root / "TEDLIUM_release2"):
        if all((candidate / split / "stm").is_dir() for split in splits):
            return candidate
    raise CorpusError(
        f"no {'/'.join(splits)}/stm folders under {root} or {root / 'TEDLIUM_release2'}: point root at "
        "TEDLIUM_release2 (the folder that holds train/, dev/ and test/ with sph/ and stm/)"
    )


def _stm_segments(stm: Path, source: str, skipped: dict[str, int]) -> list[dict[str, Any]]:
    """One dict per scored STM line ``talk channel speaker start end <o,f0,gender> transcript``."""
    segments = []
    for number, line in enumerate(_text_lines(stm), start=1):
        text = line.strip()
        if not text or text.startswith(";;"):
            continue
        fields = text.split(maxsplit=6)
        where = f"{stm}:{number}"
        if len(fields) < 5:
            raise CorpusError(
                f"{where}: cannot read {text!r}; expected '<talk> <channel> <speaker> <start> <end> ...'"
            )
        transcript = fields[6] if len(fields) > 6 else ""
        if transcript.strip() == _IGNORED_SEGMENT:
            skipped["ignore_time_segment_in_scoring"] = skipped.get("ignore_time_segment_in_scoring", 0) + 1
            continue
        try:
            start, end = float(fields[3]), float(fields[4])
        except ValueError:
            raise CorpusError(f"{where}: start/end {fields[3]!r} {fields[4]!r} are not numbers") from None
        if end <= start:
            skipped["empty segments"] = skipped.get("empty segments", 0) + 1
            continue
        label = fields[5] if len(fields) > 5 else ""
        gender = "female" if "female" in label else "male" if "male" in label else ""
        segments.append(
            {"talk": fields[0], "speaker": fields[2], "start": start, "end": end, "gender": gender}
        )
    return segments


@register("tedlium2")
def tedlium2(
    root: str | Path,
    talks: int | None = None,
    seed: int = 0,
    splits: tuple[str, ...] | list[str] = ("train",),
    check_files: bool = True,
    allow_missing: bool = False,
) -> pd.DataFrame:
    """TED-LIUM release 2 cut into the STM transcripts' segments (no emotion labels).

    Reads ``<split>/stm/<talk>.stm`` and ``<split>/sph/<talk>.sph`` for each split (default: the train
    set, the paper's 1,495 talks); ``ignore_time_segment_in_scoring`` gaps and empty segments are
    dropped. Each segment is a row with ``start_s``/``end_s`` into the talk's .sph; speaker is the STM
    speaker id, session the talk id, gender from the STM label ``<o,f0,male>``.
    ``talks=N`` keeps N talks chosen as ``random.Random(seed).sample(sorted talk ids, N)``, so the same
    seed and corpus always give the same subset (the paper's 400-talk subset is ``talks=400``).
    """
    splits = tuple(splits)
    unknown = [s for s in splits if s not in TEDLIUM2_SPLITS]
    if unknown or not splits:
        raise CorpusError(f"TED-LIUM 2 splits {list(splits)}: choose from {', '.join(TEDLIUM2_SPLITS)}")
    folder = _tedlium_folder(Path(root), splits)
    source = f"TED-LIUM 2 {folder}"
    skipped: dict[str, int] = {}
    by_talk: dict[str, list[dict[str, Any]]] = {}
    talk_audio: dict[str, Path] = {}
    for split in splits:
        stm_files = sorted(p for p in (folder / split / "stm").glob("*.stm") if _visible(p))
        if not stm_files:
            raise CorpusError(f"{folder / split / 'stm'}: no .stm transcripts")
        for stm in stm_files:
            segments = _stm_segments(stm, source, skipped)
            if not segments:
                continue
            talk = stm.stem
            if talk in by_talk:
                raise CorpusError(f"{source}: talk {talk} appears in more than one split")
            by_talk[talk] = segments
            talk_audio[talk] = folder / split / "sph" / f"{talk}.sph"
    _log_dropped(source, "STM lines", skipped)
    chosen = sorted(by_talk)
    if talks is not None:
        if not 0 < int(talks) <= len(chosen):
            raise CorpusError(f"{source}: talks={talks} but only {len(chosen)} talks have segments")
        chosen = sorted(random.Random(seed).sample(chosen, int(talks)))
        log.info("%s: kept %d of %d talks (seed %d)", source, len(chosen), len(by_talk), seed)
    rows: list[dict[str, Any]] = []
    for talk in chosen:
        seen: set[str] = set()
        for segment in by_talk[talk]:
            utterance = f"{talk}-{round(segment['start'] * 100):07d}-{round(segment['end'] * 100):07d}"
            if utterance in seen:
                raise CorpusError(
                    f"{talk_audio[talk].parent.parent / 'stm' / talk}.stm: two segments {utterance}"
                )
            seen.add(utterance)
            rows.append(
                {
                    "utterance_id": utterance,
                    "corpus": "tedlium2",
                    "path": str(talk_audio[talk]),
                    "start_s": segment["start"],
                    "end_s": segment["end"],
                    "speaker": segment["speaker"],
                    "session": talk,
                    "gender": segment["gender"],
                }
            )
    rows = _check_audio(
        rows, source, check_files, allow_missing, "TED-LIUM keeps talks in <split>/sph/<talk>.sph"
    )
    return _finish(rows, source)


# -- LibriSpeech -----------------------------------------------------------------------------------
LIBRISPEECH_PAPER = {"subset": "train-clean-100", "utterances": 28539, "hours": 100}
"""The paper's LibriSpeech part: train-clean-100, 28,539 utterances (about 100 h)."""

LIBRISPEECH_SUBSETS = (
    "dev-clean",
    "dev-other",
    "test-clean",
    "test-other",
    "train-clean-100",
    "train-clean-360",
    "train-other-500",
)


def _librispeech_folder(root: Path) -> Path:
    for candidate in (root, root / "LibriSpeech"):
        if any((candidate / subset).is_dir() for subset in LIBRISPEECH_SUBSETS):
            return candidate
    raise CorpusError(
        f"no LibriSpeech subset folders ({', '.join(LIBRISPEECH_SUBSETS)}) under {root} or "
        f"{root / 'LibriSpeech'}: point root at the LibriSpeech folder"
    )


def _librispeech_sexes(folder: Path) -> dict[str, str]:
    speakers = folder / "SPEAKERS.TXT"
    if not speakers.is_file():
        log.info("LibriSpeech %s: no SPEAKERS.TXT, speaker sex left empty", folder)
        return {}
    sexes = {}
    for line in _text_lines(speakers):
        if not line.strip() or line.lstrip().startswith(";"):
            continue
        fields = [field.strip() for field in line.split("|", 4)]
        if len(fields) >= 2 and fields[1] in ("F", "M"):
            sexes[fields[0]] = "female" if fields[1] == "F" else "male"
    return sexes


def _audio_seconds(path: str) -> float:
    import soundfile

    try:
        info = soundfile.info(path)
    except (RuntimeError, soundfile.LibsndfileError) as error:
        raise CorpusError(f"{path}: cannot read the audio header ({error})") from None
    return info.frames / info.samplerate


@register("librispeech")
def librispeech(
    root: str | Path,
    subsets: tuple[str, ...] | list[str] | None = None,
    hours: float | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """LibriSpeech utterances ``<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<n>.flac`` (no labels).

    ``subsets=None`` takes every subset folder present. Speaker sex comes from SPEAKERS.TXT when it
    exists; transcripts are not needed. Session is the chapter. ``hours=H`` keeps a subset of at least
    H hours: the utterances sorted by id are shuffled with ``random.Random(seed)`` and taken in that
    order until their durations (soundfile header: frames / sample rate) reach H hours. (Every loader
    also takes ``segment_s``: see ``load``.)
    """
    folder = _librispeech_folder(Path(root))
    source = f"LibriSpeech {folder}"
    present = [s for s in LIBRISPEECH_SUBSETS if (folder / s).is_dir()]
    chosen = list(subsets) if subsets is not None else present
    missing = [s for s in chosen if s not in present]
    if missing or not chosen:
        raise CorpusError(f"{source}: subsets {missing or chosen} not found; present: {', '.join(present)}")
    sexes = _librispeech_sexes(folder)
    rows: list[dict[str, Any]] = []
    odd = 0
    for subset in chosen:
        for path in sorted((folder / subset).glob("*/*/*.flac")):
            speaker, chapter = path.parent.parent.name, path.parent.name
            if not _visible(path) or not path.stem.startswith(f"{speaker}-{chapter}-"):
                odd += 1
                continue
            rows.append(
                {
                    "utterance_id": path.stem,
                    "corpus": "librispeech",
                    "path": str(path),
                    "speaker": speaker,
                    "session": chapter,
                    "gender": sexes.get(speaker, ""),
                }
            )
    if odd:
        log.info("%s: skipped %d files not named <speaker>-<chapter>-<n>.flac", source, odd)
    if hours is not None:
        rows = _take_hours(rows, float(hours), seed, source)
    return _finish(rows, source)


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
        end_of_row = _audio_seconds(row["path"]) if _missing(row["end_s"]) else float(row["end_s"])
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


def _take_hours(rows: list[dict[str, Any]], hours: float, seed: int, source: str) -> list[dict[str, Any]]:
    """The shortest prefix of a seeded shuffle of ``rows`` (sorted by id) that reaches ``hours``."""
    from serlib.progress import bar as progress_bar

    if hours <= 0:
        raise CorpusError(f"{source}: hours must be positive, got {hours}")
    order = sorted(rows, key=lambda row: row["utterance_id"])
    random.Random(seed).shuffle(order)
    kept, seconds = [], 0.0
    with progress_bar(round(hours * 3600), "LibriSpeech hours", unit="s", leave=False) as bar:
        for row in order:
            if seconds >= hours * 3600:
                break
            length = _audio_seconds(row["path"])
            kept.append(row)
            seconds += length
            bar.update(round(length))
    if seconds < hours * 3600:
        raise CorpusError(
            f"{source}: hours={hours} asked, but the chosen subsets hold only {seconds / 3600:.2f} h"
        )
    log.info("%s: kept %d utterances, %.2f h (seed %d)", source, len(kept), seconds / 3600, seed)
    return sorted(kept, key=lambda row: row["utterance_id"])


# -- Emo-DB ----------------------------------------------------------------------------------------
EMODB_EMOTIONS = {
    "W": "anger",
    "L": "boredom",
    "E": "disgust",
    "A": "fear",
    "F": "happiness",
    "T": "sadness",
    "N": "neutral",
}
"""Emo-DB's emotion letters (German initials: Wut, Langeweile, Ekel, Angst, Freude, Trauer, neutral)."""
EMODB_CLASSES = {"anger": "angry", "happiness": "happy", "neutral": "neutral", "sadness": "sad"}
EMODB_SPEAKER_SEX = {
    "03": "male",
    "08": "female",
    "09": "female",
    "10": "male",
    "11": "male",
    "12": "male",
    "13": "female",
    "14": "female",
    "15": "male",
    "16": "female",
}
"""Speaker sex from the Emo-DB documentation (Burkhardt et al. 2005)."""
EMODB_SESSIONS = {
    "08": "1",
    "03": "1",
    "09": "2",
    "10": "2",
    "13": "3",
    "11": "3",
    "14": "4",
    "12": "4",
    "16": "5",
    "15": "5",
}
"""Five pseudo-sessions of one female and one male speaker, so IEMOCAP's leave-one-session-out
protocol applies unchanged: the female codes in sorted order (08, 09, 13, 14, 16) are paired with
the male codes in sorted order (03, 10, 11, 12, 15)."""
EMODB_COUNTS = {"utterances": 535, "angry": 127, "happy": 71, "neutral": 79, "sad": 62, "speakers": 10}
_EMODB_NAME = re.compile(r"^(?P<speaker>\d{2})(?P<text>[a-z]\d{2})(?P<emotion>[A-Z])(?P<version>[a-z])$")


@register("emodb")
def emodb(root: str | Path, all_labels: bool = False, all_emotions: bool | None = None) -> pd.DataFrame:
    """Emo-DB's files ``SSTTTEV.wav`` (in ``root/wav/`` or ``root``) with the 4 classes by default.

    Speaker sex is from the corpus documentation, sessions are the speaker pairs of ``EMODB_SESSIONS``
    and arousal/valence classes follow ``CATEGORY_AROUSAL_VALENCE`` (no numeric ratings exist).
    ``all_labels=True`` (alias ``all_emotions``) keeps all 7 emotions, with ``emotion`` and the A/V
    classes empty outside anger/happiness/neutral/sadness; the extra column ``label_original``
    always holds the 7-class name (anger, boredom, disgust, fear, happiness, sadness, neutral).
    """
    keep_all = bool(all_emotions) if all_emotions is not None else all_labels
    folder = Path(root)
    if (folder / "wav").is_dir():
        folder = folder / "wav"
    source = f"Emo-DB {folder}"
    files = sorted(p for p in folder.glob("*.wav") if _visible(p)) if folder.is_dir() else []
    if not files:
        raise CorpusError(f"no .wav files in {Path(root) / 'wav'} or {root}: point root at the Emo-DB folder")
    rows: list[dict[str, Any]] = []
    dropped: dict[str, int] = {}
    odd = []
    for path in files:
        match = _EMODB_NAME.match(path.stem)
        if match is None or match["emotion"] not in EMODB_EMOTIONS:
            odd.append(path.name)
            continue
        speaker = match["speaker"]
        if speaker not in EMODB_SPEAKER_SEX:
            raise CorpusError(f"{path}: speaker {speaker} is not one of Emo-DB's {sorted(EMODB_SPEAKER_SEX)}")
        original = EMODB_EMOTIONS[match["emotion"]]
        emotion = EMODB_CLASSES.get(original, "")
        if not emotion:
            dropped[original] = dropped.get(original, 0) + 1
            if not keep_all:
                continue
        arousal_class, valence_class = _category_classes(emotion)
        rows.append(
            {
                "utterance_id": path.stem,
                "corpus": "emodb",
                "path": str(path),
                "speaker": speaker,
                "session": EMODB_SESSIONS[speaker],
                "gender": EMODB_SPEAKER_SEX[speaker],
                "emotion": emotion,
                "arousal_class": arousal_class,
                "valence_class": valence_class,
                "label_original": original,
            }
        )
    if odd:
        log.info("%s: skipped %d files not named like 03a01Wa.wav, e.g. %s", source, len(odd), odd[:3])
    _log_dropped(source, "files outside the 4 classes", dropped, kept=keep_all)
    return _finish(rows, source, extra=("label_original",))


# -- RAVDESS ---------------------------------------------------------------------------------------
RAVDESS_EMOTIONS = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fearful",
    "07": "disgust",
    "08": "surprised",
}
_RAVDESS_NAME = re.compile(
    r"^(?P<modality>\d{2})-(?P<channel>\d{2})-(?P<emotion>\d{2})-(?P<intensity>\d{2})-(?P<statement>\d{2})-"
    r"(?P<repetition>\d{2})-(?P<actor>\d{2})$"
)


@register("ravdess")
def ravdess(root: str | Path, all_labels: bool = False) -> pd.DataFrame:
    """RAVDESS speech files ``Actor_XX/03-01-EE-II-SS-RR-AA.wav`` (under ``root/wav/`` or ``root``).

    Neutral, happy, sad and angry are kept (both intensities); calm, fearful, disgust and surprised
    are left out, or kept unlabelled with ``all_labels=True`` (``label_original`` holds the name).
    Song files (vocal channel 02) are skipped. Speaker is the actor (odd = male); sessions pair actors
    (1, 2), (3, 4), ... so each holds one male and one female; A/V classes by ``CATEGORY_AROUSAL_VALENCE``.
    """
    folder = Path(root)
    if (folder / "wav").is_dir():
        folder = folder / "wav"
    source = f"RAVDESS {folder}"
    actors = sorted(p for p in folder.glob("Actor_*") if p.is_dir()) if folder.is_dir() else []
    if not actors:
        raise CorpusError(
            f"no Actor_XX folders in {Path(root) / 'wav'} or {root}: point root at the RAVDESS folder"
        )
    rows: list[dict[str, Any]] = []
    dropped: dict[str, int] = {}
    odd, songs = [], 0
    for actor_folder in actors:
        for path in sorted(p for p in actor_folder.glob("*.wav") if _visible(p)):
            match = _RAVDESS_NAME.match(path.stem)
            if match is None or match["emotion"] not in RAVDESS_EMOTIONS:
                odd.append(path.name)
                continue
            if match["channel"] != "01":
                songs += 1
                continue
            actor = match["actor"]
            if actor_folder.name != f"Actor_{actor}":
                raise CorpusError(f"{path}: actor {actor} in the name but the file is in {actor_folder.name}")
            original = RAVDESS_EMOTIONS[match["emotion"]]
            emotion = original if original in EMOTIONS else ""
            if not emotion:
                dropped[original] = dropped.get(original, 0) + 1
                if not all_labels:
                    continue
            arousal_class, valence_class = _category_classes(emotion)
            number = int(actor)
            rows.append(
                {
                    "utterance_id": path.stem,
                    "corpus": "ravdess",
                    "path": str(path),
                    "speaker": actor,
                    "session": str((number + 1) // 2),
                    "gender": "male" if number % 2 else "female",
                    "emotion": emotion,
                    "arousal_class": arousal_class,
                    "valence_class": valence_class,
                    "label_original": original,
                }
            )
    if odd:
        log.info(
            "%s: skipped %d files not named like 03-01-05-01-01-01-01.wav, e.g. %s", source, len(odd), odd[:3]
        )
    if songs:
        log.info("%s: skipped %d song files (vocal channel 02)", source, songs)
    _log_dropped(source, "files outside the 4 classes", dropped, kept=all_labels)
    return _finish(rows, source, extra=("label_original",))


# -- nEMO ------------------------------------------------------------------------------------------
NEMO_CLASSES = {"anger": "angry", "happiness": "happy", "neutral": "neutral", "sadness": "sad"}
NEMO_EMOTIONS = ("anger", "fear", "happiness", "neutral", "sadness", "surprised")
"""nEMO's six labels (data.tsv); fear and surprised lie outside the paper's four classes."""
NEMO_COLUMNS = ("file_id", "emotion", "speaker_id", "gender")
NEMO_COUNTS = {"utterances": 4481, "angry": 749, "happy": 749, "neutral": 809, "sad": 769, "speakers": 9}


@register("nemo")
def nemo(
    root: str | Path, all_labels: bool = False, check_files: bool = True, allow_missing: bool = False
) -> pd.DataFrame:
    """nEMO (Polish acted speech): ``root/data.tsv`` and the audio in ``root/samples/<file_id>``.

    Emotions anger/happiness/neutral/sadness map to the paper's four classes; fear and surprised are
    left out, or kept with an empty emotion under ``all_labels=True`` (for autoencoders: the ACNN
    only ever sees the four classes). Speaker and gender come from the TSV; every speaker is its own
    session, so leave-one-session-out is leave-one-speaker-out over 9 folds. A/V classes follow
    ``CATEGORY_AROUSAL_VALENCE``; ``label_original`` keeps nEMO's label and ``text`` the sentence.
    """
    folder = Path(root)
    table = folder / "data.tsv"
    if not table.is_file():
        raise CorpusError(
            f"no data.tsv in {folder}: point root at the nEMO folder that holds data.tsv and samples/"
        )
    source = f"nEMO {folder}"
    lines = _text_lines(table)
    if not lines:
        raise CorpusError(f"{table}: empty file; nEMO's data.tsv has a header line and one line per file")
    header = [name.strip() for name in lines[0].split("\t")]
    missing = [name for name in NEMO_COLUMNS if name not in header]
    if missing:
        raise CorpusError(
            f"{table}: missing columns {missing} in the header {header}; nEMO's data.tsv is tab-separated "
            f"with {', '.join(NEMO_COLUMNS)}, ..."
        )
    column = {name: header.index(name) for name in header}
    rows: list[dict[str, Any]] = []
    dropped: dict[str, int] = {}
    seen: dict[str, int] = {}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = [field.strip() for field in line.split("\t")]
        where = f"{table}:{number}"
        if len(fields) < len(header):
            raise CorpusError(f"{where}: {len(fields)} tab-separated fields, the header has {len(header)}")
        file_id, original = fields[column["file_id"]], fields[column["emotion"]]
        speaker, sex = fields[column["speaker_id"]], fields[column["gender"]].lower()
        if original not in NEMO_EMOTIONS:
            raise CorpusError(f"{where}: unknown emotion {original!r}; nEMO's are {', '.join(NEMO_EMOTIONS)}")
        if sex not in GENDERS:
            raise CorpusError(f"{where}: gender {sex!r} is neither 'female' nor 'male'")
        if not file_id or not speaker:
            raise CorpusError(f"{where}: empty file_id or speaker_id")
        utterance = Path(file_id).stem
        if utterance in seen:
            raise CorpusError(f"{where}: {file_id} is listed twice (first on line {seen[utterance]})")
        seen[utterance] = number
        emotion = NEMO_CLASSES.get(original, "")
        if not emotion:
            dropped[original] = dropped.get(original, 0) + 1
            if not all_labels:
                continue
        arousal_class, valence_class = _category_classes(emotion)
        rows.append(
            {
                "utterance_id": utterance,
                "corpus": "nemo",
                "path": str(folder / "samples" / file_id),
                "speaker": speaker,
                "session": speaker,
                "gender": sex,
                "emotion": emotion,
                "arousal_class": arousal_class,
                "valence_class": valence_class,
                "label_original": original,
                "text": fields[column["normalized_text"]] if "normalized_text" in column else "",
            }
        )
    _log_dropped(source, "files outside the 4 classes", dropped, kept=all_labels)
    rows = _check_audio(rows, source, check_files, allow_missing, "nEMO keeps them in samples/<file_id>")
    return _finish(rows, source, extra=("label_original", "text"))
