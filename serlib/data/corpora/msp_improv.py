"""MSP-IMPROV (Busso et al. 2017): the paper's cross-corpus test set, six sessions of improvised dyads."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pandas as pd

from serlib.data.corpora.common import (
    check_audio,
    finish,
    log_clipped,
    log_dropped,
    log_unrated,
    rating,
    text_lines,
    visible,
)
from serlib.data.manifest import CorpusError

log = logging.getLogger(__name__)


MSP_IMPROV_PAPER_COUNTS = {"angry": 792, "happy": 2644, "neutral": 3477, "sad": 885}
"""The paper's 4-class MSP-IMPROV subset (7,798 utterances)."""


MSP_IMPROV_PAPER_STRUCTURE = {"sessions": 6, "speakers": 12}
"""The paper's MSP-IMPROV: 6 sessions "in the same manner" as IEMOCAP, 12 speakers (Sec. 3)."""


MSP_IMPROV_CLASSES = {"A": "angry", "H": "happy", "N": "neutral", "S": "sad"}


_MSP_NAME = re.compile(
    r"^(?:UTD|MSP)-IMPROV-S(?P<sentence>\d{2})(?P<target>[A-Z])-(?P<sex>[FM])(?P<session>\d{2})-"
    r"(?P<scenario>[A-Z])-(?P<turn>[A-Z0-9]+)$"
)


_MSP_HEADER = re.compile(
    r"^(?P<video>(?:UTD|MSP)-IMPROV-[A-Z0-9-]+)\.avi\s*;\s*(?P<label>[A-Z])\s*;\s*A:\s*(?P<arousal>\S*?)\s*;"
    r"\s*V:\s*(?P<valence>\S*?)\s*;\s*D:\s*(?P<dominance>\S+?)\s*;\s*N:\s*(?P<naturalness>\S+?)\s*;\s*$"
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
    (video, consensus letter, mean arousal, valence, dominance and naturalness ratings); the lines after it
    are single raters' answers and are not used. Any line naming a video, and the first line of every
    block, must match that form exactly, otherwise the file is rejected with the line number.
    """
    entries: list[dict[str, Any]] = []
    block_start = True
    for number, line in enumerate(text_lines(label_file), start=1):
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
        if visible(path):
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
                "arousal": rating(entry["arousal"] or "nan", entry["where"], clipped),
                "valence": rating(entry["valence"] or "nan", entry["where"], clipped),
                "label_original": entry["label"],
            }
        )
    log_clipped(source, clipped)
    log_unrated(source, rows)
    log_dropped(source, "turns outside the 4 classes", dropped, kept=all_labels)
    labelled = {row["utterance_id"] for row in rows}
    unlabelled = sum(1 for stem in audio if stem.startswith("MSP-IMPROV-") and stem not in labelled)
    if unlabelled:
        log.info("%s: %d audio files have no kept label line and are not used", source, unlabelled)
    rows = check_audio(
        rows, source, check_files, allow_missing, f"no MSP-IMPROV-*.wav of that name anywhere under {folder}"
    )
    return finish(rows, source, extra=("label_original",))
