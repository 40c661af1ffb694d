"""ASED v1 (Retta et al. 2022): Amharic speech emotions, 64 self-recorded speakers in 8 speaker groups.

The sentences split the corpus in two: the ``common`` sentences (01-02) were spoken in every emotion,
the ``specific`` ones (03-07) each in one emotion only, so their words give the emotion away. The
loader keeps the sentence type in the manifest's ``subset`` column (``serlib.data.manifest.SUBSET_COLUMN``)
so that every run is also scored on the ``common`` files alone (the lexically fair score).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from serlib.data.corpora.common import category_classes, check_audio, finish, read_tsv
from serlib.data.manifest import EMOTIONS, SUBSET_COLUMN, CorpusError

log = logging.getLogger(__name__)


ASED_COLUMNS = ("file", "emotion", "speaker", "gender", "sentence", "repetition", "sentence_type")


ASED_SENTENCES = ("all", "common", "specific")
"""The ``sentences`` option: every file, the two sentences spoken in every emotion, or the rest."""


ASED_GENDERS = {"F": "female", "M": "male"}


ASED_GROUPS = 8


ASED_COUNTS = {"utterances": 1960, "angry": 485, "happy": 485, "neutral": 521, "sad": 469, "speakers": 64}


def _speaker_number(speaker: str) -> tuple[int, str]:
    digits = "".join(c for c in speaker if c.isdigit())
    return (int(digits) if digits else -1, speaker)


def speaker_groups(genders: dict[str, str], groups: int = ASED_GROUPS) -> dict[str, str]:
    """The session ("1" .. ``groups``) of each speaker: gender-balanced, deterministic.

    The speakers sorted by (gender, speaker number) - all female speakers first, then all male ones -
    are dealt round-robin into ``groups`` groups: speaker k of that order goes to group k mod
    ``groups`` + 1. Each group then gets ``floor`` or ``ceil`` of n/groups speakers, and of each gender
    within one of the others. ASED's 25 F + 39 M: 8 groups of 8 speakers, 3-4 F and 4-5 M each.
    """
    if groups < 2:
        raise CorpusError(f"ASED: groups must be at least 2 (leave-one-group-out), got {groups}")
    if len(genders) < groups:
        raise CorpusError(f"ASED: {len(genders)} speakers cannot fill {groups} speaker groups; lower groups")
    order = sorted(genders, key=lambda s: (genders[s], *_speaker_number(s)))
    return {speaker: str(k % groups + 1) for k, speaker in enumerate(order)}


def ased(
    root: str | Path,
    sentences: str = "all",
    groups: int = ASED_GROUPS,
    speakers: list[str] | None = None,
    check_files: bool = True,
    allow_missing: bool = False,
) -> pd.DataFrame:
    """ASED: ``root/data.tsv`` and the audio in ``root/samples/<file>`` (16 kHz Ogg/Opus).

    ``sentences`` keeps ``all`` rows, or only the ``common`` (01-02) or ``specific`` (03-07) ones.
    Sessions are ``groups`` gender-balanced speaker groups (``speaker_groups``), formed over the
    speakers of the whole table (or of ``speakers``, a list that keeps only those speakers), so the
    sentence filter never moves a speaker to another group. Extra columns: ``sentence``,
    ``repetition``, ``sentence_type`` and ``subset`` (= sentence type, the scoring subset). A/V classes
    follow ``CATEGORY_AROUSAL_VALENCE``. Missing audio is an error (or a logged skip with
    ``allow_missing``); audio that cannot be decoded is the feature store's to report (an error naming
    the file, or a logged skip with a count under ``features.allow_skip``).
    """
    if sentences not in ASED_SENTENCES:
        raise CorpusError(f"ASED: sentences={sentences!r}; choose one of {', '.join(ASED_SENTENCES)}")
    folder = Path(root)
    source = f"ASED {folder}"
    wanted = None if speakers is None else {str(s) for s in speakers}
    rows, genders = _rows(folder, wanted)
    if wanted is not None:
        unknown = sorted(wanted - set(genders))
        if unknown:
            raise CorpusError(f"{source}: speakers {unknown} are not in data.tsv")
        genders = {s: g for s, g in genders.items() if s in wanted}
    sessions = speaker_groups(genders, int(groups))
    for row in rows:
        row["session"] = sessions[row["speaker"]]
    if sentences != "all":
        kept = [row for row in rows if row["sentence_type"] == sentences]
        log.info("%s: kept the %d %s-sentence files of %d", source, len(kept), sentences, len(rows))
        rows = kept
    rows = check_audio(rows, source, check_files, allow_missing, "ASED keeps them in samples/<file>")
    return finish(rows, source, extra=("sentence", "repetition", "sentence_type", SUBSET_COLUMN))


def _rows(folder: Path, wanted: set[str] | None) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The manifest rows of ``data.tsv`` (of the ``wanted`` speakers only, when given) and the gender of
    every speaker in the table; a bad line, a speaker with two genders or a file listed twice is an
    error naming the table and line."""
    table, lines, column = read_tsv(folder, "ASED", ASED_COLUMNS)
    rows: list[dict[str, Any]] = []
    genders: dict[str, str] = {}
    seen: dict[str, int] = {}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        where = f"{table}:{number}"
        value = _fields(line, column, where)
        speaker, gender = value["speaker"], ASED_GENDERS[value["gender"]]
        if genders.setdefault(speaker, gender) != gender:
            raise CorpusError(
                f"{where}: speaker {speaker} is {gender} here but {genders[speaker]} on an earlier line; "
                "ASED's data.tsv gives each speaker one gender (the speaker's majority code)"
            )
        utterance = Path(value["file"]).stem
        if utterance in seen:
            raise CorpusError(f"{where}: {value['file']} is listed twice (first on line {seen[utterance]})")
        seen[utterance] = number
        if wanted is not None and speaker not in wanted:
            continue
        rows.append(_row(folder, value, utterance, gender))
    return rows, genders


def _fields(line: str, column: dict[str, int], where: str) -> dict[str, str]:
    """One line of ``data.tsv`` as {column: value}, checked: the emotion, gender and sentence type are
    ones ASED uses, and file and speaker are not empty (``where`` names the table and line)."""
    fields = [field.strip() for field in line.split("\t")]
    if len(fields) < len(column):
        raise CorpusError(f"{where}: {len(fields)} tab-separated fields, the header has {len(column)}")
    value = {name: fields[column[name]] for name in ASED_COLUMNS}
    if value["emotion"] not in EMOTIONS:
        raise CorpusError(f"{where}: emotion {value['emotion']!r} is not one of {', '.join(EMOTIONS)}")
    if value["gender"] not in ASED_GENDERS:
        raise CorpusError(f"{where}: gender {value['gender']!r} is neither F nor M")
    if value["sentence_type"] not in ("common", "specific"):
        raise CorpusError(f"{where}: sentence_type {value['sentence_type']!r} is neither common nor specific")
    if not value["file"] or not value["speaker"]:
        raise CorpusError(f"{where}: empty file or speaker")
    return value


def _row(folder: Path, value: dict[str, str], utterance: str, gender: str) -> dict[str, Any]:
    """The manifest row of one checked line (its session is set once the speaker groups are formed)."""
    arousal_class, valence_class = category_classes(value["emotion"])
    return {
        "utterance_id": utterance,
        "corpus": "ased",
        "path": str(folder / "samples" / value["file"]),
        "speaker": value["speaker"],
        "gender": gender,
        "emotion": value["emotion"],
        "arousal_class": arousal_class,
        "valence_class": valence_class,
        "sentence": value["sentence"],
        "repetition": value["repetition"],
        "sentence_type": value["sentence_type"],
        SUBSET_COLUMN: value["sentence_type"],
    }
