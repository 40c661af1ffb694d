"""Counts by class, session and speaker beside the paper's (serlib.analysis.corpus_counts, `serlib
counts`): the paper's numbers come from the loaders' constants; a difference is a warning, not an error."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from serlib.analysis import corpus_counts
from serlib.app import cli
from serlib.base import config as config_module
from serlib.data.corpora import iemocap, librispeech, tedlium


def _labeled(counts: dict[str, int], sessions: int) -> pd.DataFrame:
    """A manifest with the given class counts spread over ``sessions`` sessions of a F and a M speaker."""
    emotions = [e for e, n in counts.items() for _ in range(n)]
    index = np.arange(len(emotions))
    session = (index % sessions + 1).astype(str)
    sex = np.where(index % (2 * sessions) < sessions, "F", "M")
    return pd.DataFrame(
        {
            "emotion": emotions,
            "session": session,
            "speaker": [f"{s}{x}" for s, x in zip(session, sex, strict=True)],
        }
    )


def _unlabeled(rows: int, sessions: int) -> pd.DataFrame:
    index = np.arange(rows)
    return pd.DataFrame({"emotion": "", "session": (index % sessions).astype(str), "speaker": index % 7})


PAPER = config_module.load_preset("paper")


def test_the_papers_iemocap_counts_match_without_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    manifests = {"iemocap": _labeled(iemocap.IEMOCAP_PAPER_COUNTS, 5)}
    with caplog.at_level(logging.WARNING):
        table = corpus_counts.compare(PAPER, manifests)
    assert caplog.text == ""
    rows = table.set_index("count")
    assert rows.loc["utterances", "paper"] == 5531 and rows.loc["class happy", "paper"] == 1636
    assert (rows.loc["sessions", "serlib"], rows.loc["speakers", "serlib"]) == (5, 10)
    assert (table["difference"] == 0).all()
    sessions = corpus_counts.by_group(manifests, "session")
    assert sessions["total"].sum() == 5531 and sessions["speakers"].tolist() == [2] * 5
    assert sessions[["angry", "happy", "neutral", "sad"]].sum().tolist() == [1103, 1636, 1708, 1084]
    assert len(corpus_counts.by_group(manifests, "speaker")) == 10


def test_a_stated_difference_is_one_visible_warning(caplog: pytest.LogCaptureFixture) -> None:
    stated = librispeech.LIBRISPEECH_PAPER["utterances"]
    fewer = dict(iemocap.IEMOCAP_PAPER_COUNTS, sad=1000)
    manifests = {"librispeech_100h": _unlabeled(27952, 585), "iemocap": _labeled(fewer, 4)}
    with caplog.at_level(logging.WARNING):
        table = corpus_counts.compare(PAPER, manifests)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert (
        "librispeech_100h differs from the paper: utterances 27,952 vs the paper's 28,539 (-587)" in lines[0]
    )
    assert (
        "class sad 1,000 vs the paper's 1,084 (-84)" in lines[1] and "sessions 4 vs the paper's 5" in lines[1]
    )
    libri = table[table["corpus"] == "librispeech_100h"].set_index("count")
    assert libri.loc["utterances", "paper"] == stated and pd.isna(libri.loc["speakers", "paper"])


def test_the_paper_is_compared_only_where_configured_as_in_the_paper() -> None:
    corpora = PAPER.corpora
    assert corpus_counts.paper_numbers(corpora["tedlium_full"]) == {
        "utterances": tedlium.TEDLIUM2_PAPER["segments"],
        "sessions": tedlium.TEDLIUM2_PAPER["talks"],
    }
    assert corpus_counts.paper_numbers(corpora["tedlium_small"]) == {"sessions": 400}
    other = corpora["librispeech_100h"].model_copy(update={"options": {"subsets": ["dev-clean"]}})
    assert corpus_counts.paper_numbers(other) == {}
    assert corpus_counts.paper_numbers(corpora["msp_improv"])["utterances"] == 7798


def test_serlib_counts_prints_the_comparison_and_exits_0(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "LibriSpeech" / "train-clean-100" / "19" / "198"
    folder.mkdir(parents=True)
    for n in range(3):
        sf.write(folder / f"19-198-{n:04d}.flac", np.full(1600, 0.1, dtype=np.float32), 16000)
    corpora = "\n".join(
        f"  {key}: {{type: {c.type}, root: {tmp_path / 'LibriSpeech'}, options: {dict(c.options)}}}"
        for key, c in PAPER.corpora.items()
    )
    (tmp_path / "lab.yaml").write_text(f"base: paper\ncorpora:\n{corpora}\n")
    assert cli.main(["counts", "--config", str(tmp_path / "lab.yaml"), "--corpus", "librispeech_100h"]) == 0
    out = capsys.readouterr().out
    assert "librispeech_100h utterances       3  28539      -28536" in out
    assert "warning: librispeech_100h differs from the paper: utterances 3 vs the paper's 28,539" in out
    assert cli.main(["counts", "--config", str(tmp_path / "lab.yaml"), "--corpus", "nope"]) == 2
