"""Emo-DB (Burkhardt et al. 2005): German acted emotions, ten speakers in five female/male pairs."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pandas as pd

from serlib.data.corpora.common import category_classes, finish, log_dropped, visible
from serlib.data.manifest import CorpusError

log = logging.getLogger(__name__)


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
    files = sorted(p for p in folder.glob("*.wav") if visible(p)) if folder.is_dir() else []
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
        arousal_class, valence_class = category_classes(emotion)
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
    log_dropped(source, "files outside the 4 classes", dropped, kept=keep_all)
    return finish(rows, source, extra=("label_original",))
