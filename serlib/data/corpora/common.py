"""What the corpus loaders share: reading label files, checking audio, logging what was left out.

Each loader (one module per corpus) turns a corpus folder into a manifest (``serlib.data.manifest``);
these helpers keep their errors and logs alike.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from serlib.data.manifest import CorpusError, make_manifest, validate

log = logging.getLogger(__name__)


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


def text_lines(path: Path) -> list[str]:
    """A text file's lines without a UTF-8 BOM and with LF, CRLF or CR line ends.

    Bytes that are not UTF-8 (free-text annotator comments) become U+FFFD; every line the loaders
    parse is ASCII and is matched strictly, so a replaced character there is an error, not a guess.
    """
    return path.read_bytes().decode("utf-8-sig", errors="replace").splitlines()


def visible(path: Path) -> bool:
    """False for hidden files such as macOS '._' resource forks that archives often carry along."""
    return not path.name.startswith(".")


def rating(value: str, where: str, clipped: list[str]) -> float:
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


def log_clipped(source: str, clipped: list[str]) -> None:
    if clipped:
        log.warning(
            "%s: %d ratings outside 1-5 were clipped to the scale, e.g. %s", source, len(clipped), clipped[:3]
        )


def log_unrated(source: str, rows: list[dict[str, Any]]) -> None:
    """One warning with the count of labeled turns without an arousal or valence rating (empty or NaN):
    they get no arousal/valence class, so their arousal/valence UAR is over the rated turns only and is
    NaN when no turn is rated, which would otherwise pass without a word."""
    labeled = [row for row in rows if row.get("emotion")]
    unrated = [
        row["utterance_id"]
        for row in labeled
        if any(math.isnan(float(row.get(k, math.nan))) for k in ("arousal", "valence"))
    ]
    if unrated:
        log.warning(
            "%s: %d of %d labeled turns have no arousal or valence rating (e.g. %s): their arousal/valence "
            "classes are empty, so the arousal/valence UAR is over the rated turns only%s; fill in the "
            "A: and V: values of the evaluation file",
            source,
            len(unrated),
            len(labeled),
            unrated[0],
            " and is NaN here, since none is rated" if len(unrated) == len(labeled) else "",
        )


def check_audio(
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


def finish(rows: list[dict[str, Any]], source: str, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """A validated manifest from loader rows, keeping the named extra columns after the schema's."""
    if not rows:
        raise CorpusError(f"{source}: no utterances were found (see the log for what was skipped)")
    frame = pd.DataFrame(rows)
    manifest = make_manifest(frame)
    for column in extra:
        manifest[column] = frame[column].fillna("").astype(str).to_numpy()
    return validate(manifest, source, check_files=False)


def log_dropped(source: str, what: str, counts: dict[str, int], kept: bool = False) -> None:
    """Log how many items outside the four classes were left out (or kept unlabelled), per label."""
    if counts:
        total = sum(counts.values())
        detail = ", ".join(f"{label}: {count}" for label, count in sorted(counts.items()))
        verb = "kept unlabelled" if kept else "left out"
        log.info("%s: %s %d %s (%s)", source, verb, total, what, detail)


def category_classes(emotion: str) -> tuple[str, str]:
    return CATEGORY_AROUSAL_VALENCE.get(emotion, ("", ""))


def read_tsv(folder: Path, corpus: str, columns: Sequence[str]) -> tuple[Path, list[str], dict[str, int]]:
    """``folder/data.tsv`` of a corpus released as a TSV (nEMO, ASED): the table's path, its lines and
    the index of every header column; a clear error when the file, its header or a column is missing."""
    table = folder / "data.tsv"
    if not table.is_file():
        raise CorpusError(
            f"no data.tsv in {folder}: point root at the {corpus} folder that holds data.tsv and samples/"
        )
    lines = text_lines(table)
    if not lines:
        raise CorpusError(f"{table}: empty file; {corpus}'s data.tsv has a header line and one line per file")
    header = [name.strip() for name in lines[0].split("\t")]
    missing = [name for name in columns if name not in header]
    if missing:
        raise CorpusError(
            f"{table}: missing columns {missing} in the header {header}; {corpus}'s data.tsv is "
            f"tab-separated with {', '.join(columns)}, ..."
        )
    return table, lines, {name: header.index(name) for name in header}
