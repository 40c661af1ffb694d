"""RAVDESS (Livingstone & Russo 2018): English acted speech, actors paired into sessions."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pandas as pd

from serlib.data.corpora.common import category_classes, finish, log_dropped, visible
from serlib.data.manifest import EMOTIONS, CorpusError

log = logging.getLogger(__name__)


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
        for path in sorted(p for p in actor_folder.glob("*.wav") if visible(p)):
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
            arousal_class, valence_class = category_classes(emotion)
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
    log_dropped(source, "files outside the 4 classes", dropped, kept=all_labels)
    return finish(rows, source, extra=("label_original",))
