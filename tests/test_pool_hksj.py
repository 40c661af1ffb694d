"""Small-sample pooling (serlib.evidence.confirmatory.hksj_interval) against closed forms, and the
``--skip`` of ``serlib pool`` matched by resolved paths (an unmatched skip is an error)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from stored_runs import write_grid

from serlib.evidence import confirmatory
from serlib.protocol.labeled import ProtocolError


def _summaries(means: list[float], sd: float, n: int) -> pd.DataFrame:
    index = [f"c{i}" for i in range(len(means))]
    return pd.DataFrame({"mean": means, "sd": sd, "n": n}, index=index)


@pytest.mark.parametrize("means", [[1.0, 2.0, 4.0, 7.0], [1.0, 1.1, 0.9, 1.05]])
def test_hksj_with_equal_variances_is_the_t_interval_of_the_corpus_means(means) -> None:
    # equal within-corpus variances give equal weights (fixed and random), so the HKSJ variance is the
    # sample variance of the estimates / k and the interval the one-sample t interval, k - 1 df
    pooled = confirmatory.pooled_from_summaries(_summaries(means, sd=2.0, n=16))
    k = len(means)
    half = stats.t.isf(0.025, k - 1) * np.std(means, ddof=1) / np.sqrt(k)
    assert pooled["hksj_ci_low"] == pytest.approx(np.mean(means) - half)
    assert pooled["hksj_ci_high"] == pytest.approx(np.mean(means) + half)
    assert pooled["hksj_p"] == pytest.approx(stats.ttest_1samp(means, 0.0).pvalue)
    # the MDD has power 0.8 at alpha 0.05 for the noncentral t with k - 1 df (checked with scipy's nct)
    se, critical = pooled["hksj_se"], stats.t.isf(0.025, k - 1)
    noncentrality = pooled["hksj_mdd"] / se
    power = stats.nct.sf(critical, k - 1, noncentrality) + stats.nct.cdf(-critical, k - 1, noncentrality)
    assert power == pytest.approx(0.8, abs=1e-4)
    wider = "HKSJ" if 2 * half >= pooled["ci_high"] - pooled["ci_low"] else "DL"
    assert pooled["verdict_interval"] == wider


def test_hksj_of_the_reports_pooled_rows_is_the_issues_hand_computation() -> None:
    # the family rows of docs/results-real-speech.md (mean, 95 % t CI, speakers); issue 41 computed
    # the HKSJ interval from them by hand: about [-1.81, +4.68]
    rows = {"nemo": (1.35, -1.73, 4.42, 9), "emodb": (-0.65, -3.88, 2.58, 10)}
    rows |= {"ravdess": (2.58, -3.56, 8.71, 8), "ased": (4.23, 0.16, 8.30, 45)}
    frame = pd.DataFrame(
        {
            "mean": [r[0] for r in rows.values()],
            "sd": [(r[2] - r[1]) / 2 / stats.t.isf(0.025, r[3] - 1) * np.sqrt(r[3]) for r in rows.values()],
            "n": [r[3] for r in rows.values()],
        },
        index=list(rows),
    )
    pooled = confirmatory.pooled_from_summaries(frame)
    assert pooled["ci_low"] == pytest.approx(-0.57, abs=0.01) and pooled["ci_high"] == pytest.approx(
        3.44, abs=0.01
    )
    assert pooled["hksj_ci_low"] == pytest.approx(-1.81, abs=0.01)
    assert pooled["hksj_ci_high"] == pytest.approx(4.68, abs=0.01)
    assert pooled["verdict_interval"] == "HKSJ" and pooled["hksj_mdd"] > pooled["mdd"]


def _two_grids(tmp_path) -> pd.DataFrame:
    tables = [
        write_grid(
            tmp_path / n,
            n,
            {1: ["a"], 2: ["b"], 3: ["c"]},
            {c: {s: 0.6 for s in "abc"} for c in ("BL", "U", "C")},
            rng_seed=i,
        )
        for i, n in enumerate(("x", "y"))
    ]
    return pd.concat(tables)


def test_a_skip_matches_its_folder_through_a_link_or_a_relative_path(tmp_path, monkeypatch) -> None:
    speakers = _two_grids(tmp_path)
    link = tmp_path / "link-to-y"
    link.symlink_to(tmp_path / "y")
    folders = [tmp_path / "x", link]
    for skip in (f"{tmp_path / 'y'}:within", f"{link}:within"):
        result = confirmatory.pool(folders, speakers, skip=[skip])
        assert set(result.family["corpus"]) == {"x: x (within)"}
    monkeypatch.chdir(tmp_path)
    result = confirmatory.pool([tmp_path / "x", tmp_path / "y"], speakers, skip=[f"{os.curdir}/y:within"])
    assert set(result.family["corpus"]) == {"x: x (within)"}


def test_a_skip_that_matches_nothing_is_an_error_naming_it(tmp_path) -> None:
    speakers = _two_grids(tmp_path)
    folders = [tmp_path / "x", tmp_path / "y"]
    with pytest.raises(ProtocolError, match="elsewhere/y:within"):
        confirmatory.pool(folders, speakers, skip=[f"{tmp_path / 'elsewhere' / 'y'}:within"])
    with pytest.raises(ProtocolError, match="y:cross"):
        confirmatory.pool(folders, speakers, skip=[f"{tmp_path / 'y'}:cross"])
    with pytest.raises(ProtocolError, match="FOLDER:SETTING"):
        confirmatory.pool(folders, speakers, skip=["y"])
