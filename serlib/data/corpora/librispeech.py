"""LibriSpeech (Panayotov et al. 2015): read audiobooks, unlabeled speech for the paper's Li condition."""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import pandas as pd

from serlib.base.progress import bar as progress_bar
from serlib.data.corpora.common import finish, text_lines, visible
from serlib.data.manifest import CorpusError, audio_seconds

log = logging.getLogger(__name__)


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
    for line in text_lines(speakers):
        if not line.strip() or line.lstrip().startswith(";"):
            continue
        fields = [field.strip() for field in line.split("|", 4)]
        if len(fields) >= 2 and fields[1] in ("F", "M"):
            sexes[fields[0]] = "female" if fields[1] == "F" else "male"
    return sexes


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
            if not visible(path) or not path.stem.startswith(f"{speaker}-{chapter}-"):
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
    return finish(rows, source)


def _take_hours(rows: list[dict[str, Any]], hours: float, seed: int, source: str) -> list[dict[str, Any]]:
    """The shortest prefix of a seeded shuffle of ``rows`` (sorted by id) that reaches ``hours``."""
    if hours <= 0:
        raise CorpusError(f"{source}: hours must be positive, got {hours}")
    order = sorted(rows, key=lambda row: row["utterance_id"])
    random.Random(seed).shuffle(order)
    kept, seconds = [], 0.0
    with progress_bar(round(hours * 3600), "LibriSpeech hours", unit="s", leave=False) as bar:
        for row in order:
            if seconds >= hours * 3600:
                break
            length = audio_seconds(row["path"])
            kept.append(row)
            seconds += length
            bar.update(round(length))
    if seconds < hours * 3600:
        raise CorpusError(
            f"{source}: hours={hours} asked, but the chosen subsets hold only {seconds / 3600:.2f} h"
        )
    log.info("%s: kept %d utterances, %.2f h (seed %d)", source, len(kept), seconds / 3600, seed)
    return sorted(kept, key=lambda row: row["utterance_id"])
