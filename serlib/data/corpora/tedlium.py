"""TED-LIUM release 2: talks cut into their transcripts' segments, unlabeled speech for the paper's sT and fT."""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import pandas as pd

from serlib.data.corpora.common import check_audio, finish, log_dropped, text_lines, visible
from serlib.data.manifest import CorpusError

log = logging.getLogger(__name__)


TEDLIUM2_PAPER = {
    "talks": 1495,
    "segments": 92973,
    "hours": 207,
    "subset_talks": 400,
    "subset_segments": 25303,
}
"""The paper's TED-LIUM 2 numbers: the train set's 1,495 talks (207 h) give 92,973 segments; the
paper's 400-talk subset gives 25,303 segments. The paper does not publish which 400 talks: serlib's
``talks: 400`` draws 400 at random, and such a draw averages about 24,900 segments (public per-talk
counts), so its segment count differs from the paper's."""


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
    for number, line in enumerate(text_lines(stm), start=1):
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
    seed and corpus always give the same subset. ``talks=400`` has the size of the paper's subset, not
    its talks (the paper does not list them).
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
        stm_files = sorted(p for p in (folder / split / "stm").glob("*.stm") if visible(p))
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
    log_dropped(source, "STM lines", skipped)
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
    rows = check_audio(
        rows, source, check_files, allow_missing, "TED-LIUM keeps talks in <split>/sph/<talk>.sph"
    )
    return finish(rows, source)
