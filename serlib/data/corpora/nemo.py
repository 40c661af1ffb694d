"""nEMO (Christop 2024): Polish acted speech, nine speakers, each its own session."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from serlib.data.corpora.common import (
    category_classes,
    check_audio,
    finish,
    log_dropped,
    read_tsv,
)
from serlib.data.manifest import GENDERS, CorpusError

log = logging.getLogger(__name__)


NEMO_CLASSES = {"anger": "angry", "happiness": "happy", "neutral": "neutral", "sadness": "sad"}


NEMO_EMOTIONS = ("anger", "fear", "happiness", "neutral", "sadness", "surprised")
"""nEMO's six labels (data.tsv); fear and surprised lie outside the paper's four classes."""


NEMO_COLUMNS = ("file_id", "emotion", "speaker_id", "gender")


NEMO_COUNTS = {"utterances": 4481, "angry": 749, "happy": 749, "neutral": 809, "sad": 769, "speakers": 9}


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
    table, lines, column = read_tsv(folder, "nEMO", NEMO_COLUMNS)
    source = f"nEMO {folder}"
    rows: list[dict[str, Any]] = []
    dropped: dict[str, int] = {}
    seen: dict[str, int] = {}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = [field.strip() for field in line.split("\t")]
        where = f"{table}:{number}"
        if len(fields) < len(column):
            raise CorpusError(f"{where}: {len(fields)} tab-separated fields, the header has {len(column)}")
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
        arousal_class, valence_class = category_classes(emotion)
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
    log_dropped(source, "files outside the 4 classes", dropped, kept=all_labels)
    rows = check_audio(rows, source, check_files, allow_missing, "nEMO keeps them in samples/<file_id>")
    return finish(rows, source, extra=("label_original", "text"))
