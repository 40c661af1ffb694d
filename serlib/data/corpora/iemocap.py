"""IEMOCAP (Busso et al. 2008): the paper's within-corpus data, four classes (happy + excited), five sessions."""

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
    rating,
    text_lines,
    visible,
)
from serlib.data.manifest import CorpusError

log = logging.getLogger(__name__)


PAPER_CLASS_NAMES = {"ang": "angry", "hap": "happy", "exc": "happy", "neu": "neutral", "sad": "sad"}
"""IEMOCAP's majority labels mapped to the paper's four classes (happy and excited merged)."""


IEMOCAP_PAPER_COUNTS = {"angry": 1103, "happy": 1636, "neutral": 1708, "sad": 1084}
"""The paper's 4-class IEMOCAP subset (5,531 utterances; happy includes excited)."""


IEMOCAP_PAPER_STRUCTURE = {"sessions": 5, "speakers": 10}
"""The paper's IEMOCAP: 5 sessions of one female and one male speaker (Sec. 3)."""


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
        for label_file in _label_files(folder, session):
            for number, line in enumerate(text_lines(label_file), start=1):
                if not line.startswith("["):
                    continue  # header, blank and per-annotator lines
                where = f"{label_file}:{number}"
                match, sex = _label_line(line, where, session, seen)
                emotion = PAPER_CLASS_NAMES.get(match["label"], "")
                if not emotion:
                    dropped[match["label"]] = dropped.get(match["label"], 0) + 1
                    if not all_labels:
                        continue
                rows.append(_row(folder, session, label_file.stem, match, sex, emotion, where, clipped))
    log_clipped(source, clipped)
    log_dropped(source, "utterances outside the 4 classes", dropped, kept=all_labels)
    rows = check_audio(
        rows, source, check_files, allow_missing, "IEMOCAP keeps them in Session{n}/sentences/wav/<dialog>/"
    )
    return finish(rows, source, extra=("label_original",))


def _label_files(folder: Path, session: int) -> list[Path]:
    """The evaluation files of one session (``Session{n}/dialog/EmoEvaluation/*.txt``); none is an error."""
    label_folder = folder / f"Session{session}" / "dialog" / "EmoEvaluation"
    label_files = sorted(p for p in label_folder.glob("*.txt") if p.is_file() and visible(p))
    if not label_files:
        raise CorpusError(
            f"{label_folder}: no evaluation files (*.txt); IEMOCAP keeps its labels in "
            "Session{n}/dialog/EmoEvaluation/<dialog>.txt"
        )
    return label_files


def _label_line(line: str, where: str, session: int, seen: dict[str, str]) -> tuple[re.Match[str], str]:
    """One utterance line of an evaluation file, checked, and the speaking actor's F/M; an unreadable line,
    an utterance id of another session, an unknown label or an utterance seen before (``seen``: id -> where,
    updated here) is an error naming the file and line."""
    match = _IEMOCAP_LINE.match(line)
    if match is None:
        raise CorpusError(
            f"{where}: cannot read {line!r}; expected '[start - end]<TAB>utterance<TAB>label<TAB>[V, A, D]'"
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
    return match, parts["speaker"]


def _row(
    folder: Path,
    session: int,
    dialog: str,
    match: re.Match[str],
    sex: str,
    emotion: str,
    where: str,
    clipped: list[str],
) -> dict[str, Any]:
    """The manifest row of one checked utterance line (ratings outside 1-5 clipped and noted in ``clipped``)."""
    utterance = match["utterance"]
    return {
        "utterance_id": utterance,
        "corpus": "iemocap",
        "path": str(folder / f"Session{session}" / "sentences" / "wav" / dialog / f"{utterance}.wav"),
        "speaker": f"{session}{sex}",
        "session": str(session),
        "gender": "female" if sex == "F" else "male",
        "emotion": emotion,
        "valence": rating(match["valence"], where, clipped),
        "arousal": rating(match["arousal"], where, clipped),
        "label_original": match["label"],
    }
