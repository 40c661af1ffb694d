"""The confirmatory statistics (serlib.evidence.confirmatory, speakers): Holm against a textbook case,
the random-effects pooling against its closed form, the speaker as the unit, and clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from stored_runs import write_grid

from serlib.evidence import confirmatory, speakers
from serlib.protocol.labeled import ProtocolError


def test_holm_matches_the_textbook_adjustment() -> None:
    # m = 4: sorted p 0.005, 0.01, 0.03, 0.04 -> 4x, 3x, 2x, 1x = 0.02, 0.03, 0.06, 0.04 -> running max
    adjusted = confirmatory.holm([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02])
    # capped at 1, NaN left out of the family
    np.testing.assert_allclose(confirmatory.holm([0.6, np.nan, 0.2]), [0.6, np.nan, 0.4], equal_nan=True)


def _differences(groups: dict[str, list[float]]) -> pd.DataFrame:
    return pd.DataFrame([{"corpus": c, "difference": d} for c, values in groups.items() for d in values])


def test_pooling_of_agreeing_corpora_is_the_inverse_variance_mean_with_no_heterogeneity() -> None:
    # three corpora with the same mean difference (+1) and spreads: Q = 0, tau^2 = 0, I^2 = 0, and the
    # random-effects estimate is the fixed-effect (inverse-variance weighted) mean
    groups = {"a": [0.0, 1.0, 2.0], "b": [-1.0, 1.0, 3.0, 1.0], "c": [1.0, 0.0, 2.0, 1.0, 1.0]}
    pooled = confirmatory.pooled_estimate(_differences(groups))
    variances = np.array([np.var(v, ddof=1) / len(v) for v in groups.values()])
    weights = 1 / variances
    assert pooled["estimate"] == pytest.approx(1.0)
    assert pooled["tau2"] == pytest.approx(0.0, abs=1e-12)
    assert pooled["i2"] == pytest.approx(0.0, abs=1e-12)
    assert pooled["q"] == pytest.approx(0.0, abs=1e-12)
    se = np.sqrt(1 / weights.sum())
    assert pooled["se"] == pytest.approx(se)
    assert pooled["ci_low"] == pytest.approx(1.0 - stats.norm.ppf(0.975) * se)
    assert pooled["mdd"] == pytest.approx((stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * se, rel=1e-3)
    assert pooled["mixedlm_estimate"] == pytest.approx(1.0, abs=1e-6)


def test_pooling_of_disagreeing_corpora_follows_dersimonian_laird() -> None:
    groups = {"a": [4.0, 5.0, 6.0, 5.0], "b": [-1.0, 0.0, 1.0, 0.0, -1.0, 1.0], "c": [1.0, 3.0, 2.0]}
    pooled = confirmatory.pooled_estimate(_differences(groups))
    means = np.array([np.mean(v) for v in groups.values()])
    variances = np.array([np.var(v, ddof=1) / len(v) for v in groups.values()])
    w = 1 / variances
    fixed = (w * means).sum() / w.sum()
    q = (w * (means - fixed) ** 2).sum()
    tau2 = max(0.0, (q - 2) / (w.sum() - (w**2).sum() / w.sum()))
    w_star = 1 / (variances + tau2)
    assert pooled["fixed_estimate"] == pytest.approx(fixed)
    assert pooled["q"] == pytest.approx(q)
    assert pooled["tau2"] == pytest.approx(tau2)
    assert pooled["i2"] == pytest.approx((q - 2) / q)
    assert pooled["estimate"] == pytest.approx((w_star * means).sum() / w_star.sum())
    assert pooled["se"] == pytest.approx(np.sqrt(1 / w_star.sum()))
    assert pooled["q_p"] < 0.05


def test_speaker_uar_is_read_from_the_utterance_and_skips_a_class_the_speaker_lacks(tmp_path) -> None:
    # fold 1 holds two speakers; speaker "b" never speaks "sad"
    table = write_grid(
        tmp_path,
        "x",
        {1: ["a", "b"], 2: ["c"]},
        {c: {"a": 1.0, "b": 1.0, "c": 0.0} for c in ("BL", "U", "C")},
        lacking={"b": "sad"},
    )
    _, predictions = speakers.predictions_of(tmp_path)
    scores = speakers.speaker_uars(predictions, table)
    bl0 = scores[(scores["condition"] == "BL") & (scores["seed"] == 0)].set_index("speaker")
    assert sorted(bl0.index) == ["a", "b", "c"]
    assert bl0.loc["b", "classes"] == 3 and bl0.loc["b", "uar"] == 1.0  # mean recall over 3 classes
    assert bl0.loc["c", "uar"] == 0.0


def test_an_utterance_without_a_speaker_is_an_error_naming_the_fix(tmp_path) -> None:
    table = write_grid(
        tmp_path, "x", {1: ["a"], 2: ["b"]}, {c: {"a": 0.5, "b": 0.5} for c in ("BL", "U", "C")}
    )
    _, predictions = speakers.predictions_of(tmp_path)
    with pytest.raises(ProtocolError, match="--speakers"):
        speakers.speaker_uars(predictions, table.iloc[1:], str(tmp_path))


def test_pool_pairs_speakers_adjusts_the_family_and_pools_the_corpora(tmp_path) -> None:
    ones = {s: 0.5 for s in "abcdef"}
    # corpus x: U better than BL for every speaker; corpus y: U level with BL
    x = write_grid(
        tmp_path / "x",
        "x",
        {1: ["a", "b"], 2: ["c"], 3: ["d"]},
        {"BL": ones, "U": {s: 0.9 for s in "abcd"}, "C": ones},
        files_per_class=10,
    )
    y = write_grid(
        tmp_path / "y",
        "y",
        {1: ["e"], 2: ["f"], 3: ["g"]},
        {"BL": {s: 0.6 for s in "efg"}, "U": {s: 0.6 for s in "efg"}, "C": {s: 0.6 for s in "efg"}},
        files_per_class=10,
        rng_seed=1,
    )
    result = confirmatory.pool([tmp_path / "x", tmp_path / "y"], pd.concat([x, y]))
    family = result.family.set_index(["corpus", "condition"])
    assert len(family) == 4 and set(family["role"]) == {"AE", "control"}
    assert family.loc[("x: x (within)", "U"), "speakers"] == 4  # fold 1's two speakers counted apart
    assert family.loc[("x: x (within)", "U"), "seeds"] == 2
    assert family.loc[("x: x (within)", "U"), "mean_difference"] > 25
    np.testing.assert_allclose(family["holm_p"], confirmatory.holm(family["t_p"]))
    assert (family["holm_p"] >= family["t_p"]).all()
    pooled = result.pooled
    assert pooled["corpora"] == 2 and pooled["speakers"] == 7
    assert pooled["tau2"] > 0  # the corpora disagree
    assert pooled["conditions"] == {"x: x (within)": "U", "y: y (within)": "U"}
    text = confirmatory.pool_markdown(result)
    assert "Holm" in text and "DerSimonian-Laird" in text and "| MixedLM [95 % CI] |" in text
    closed_form = confirmatory.pool_markdown(result, mixedlm=False)  # the report's generated block
    assert "MixedLM" not in closed_form and "HKSJ" in closed_form
    assert [line.count("|") for line in closed_form.splitlines() if line.startswith("| ")][-1] == 12
    out = confirmatory.write_pool(result, tmp_path / "out")
    assert {p.name for p in out.iterdir()} >= {
        "family.csv",
        "speakers.csv",
        "pooled.csv",
        "pool.json",
        "pool.md",
    }


def test_a_missing_run_folder_names_the_command_that_makes_it(tmp_path) -> None:
    command = "serlib evaluate --config configs/nemo.yaml"
    with pytest.raises(speakers.MissingRunFolder, match="serlib evaluate --config configs/nemo.yaml"):
        speakers.require_runs(tmp_path / "runs" / "nemo", command)


def test_serlib_pool_prints_and_writes_the_tables_and_dry_runs_missing_folders(tmp_path, capsys) -> None:
    from serlib.app import cli

    tables = [
        write_grid(
            tmp_path / n,
            n,
            {1: ["a"], 2: ["b"], 3: ["c"]},
            {c: {s: p for s in "abc"} for c in ("BL", "U", "C")},
            rng_seed=i,
        )
        for i, (n, p) in enumerate((("x", 0.5), ("y", 0.7)))
    ]
    csv = tmp_path / "speakers.csv"
    pd.concat(tables).to_csv(csv, index=False)
    out = tmp_path / "pool"
    assert (
        cli.main(
            ["pool", str(tmp_path / "x"), str(tmp_path / "y"), "--speakers", str(csv), "--out", str(out)]
        )
        == 0
    )
    assert "Holm" in capsys.readouterr().out
    assert (out / "pool.md").is_file() and (out / "pooled.csv").is_file()
    missing = tmp_path / "runs" / "nemo"
    assert cli.main(["pool", str(missing), "--dry-run"]) == 0
    assert f"{missing}: missing; make it with `serlib evaluate" in capsys.readouterr().out
    assert cli.main(["pool", str(missing), "--speakers", str(csv), "--out", str(out)]) == 2
    assert "no stored runs here" in capsys.readouterr().err


def test_skipped_runs_leave_the_family_and_an_unmatched_condition_is_an_error(tmp_path) -> None:
    tables = [
        write_grid(
            tmp_path / n,
            n,
            {1: ["a"], 2: ["b"], 3: ["c"]},
            {c: {s: 0.6 for s in "abc"} for c in ("BL", "U", "C")},
        )
        for n in ("x", "y")
    ]
    speakers_ = pd.concat(tables)
    folders = [tmp_path / "x", tmp_path / "y"]
    result = confirmatory.pool(folders, speakers_, skip=[f"{tmp_path / 'y'}:within"])
    assert set(result.family["corpus"]) == {"x: x (within)"} and not result.pooled
    with pytest.raises(ProtocolError, match="U4h"):
        confirmatory.pool(folders, speakers_, conditions=["U", "U4h"])


def test_an_utterance_given_two_speakers_is_an_error() -> None:
    one = pd.DataFrame({"utterance_id": ["u1", "u2"], "speaker": ["a", "b"]})
    assert len(speakers.combine([one, one])) == 2  # the same rows twice: fine
    with pytest.raises(ProtocolError, match="name two speakers"):
        speakers.combine([one, pd.DataFrame({"utterance_id": ["u1"], "speaker": ["c"]})])


def test_a_scoring_subset_is_tested_and_pooled_apart_and_never_mixes_in_other_files(tmp_path) -> None:
    # ASED-like corpus: U beats BL on the `specific` files only (the words give the emotion away), and is
    # level with BL on the lexically fair `common` ones; speaker "h" has no `common` file at all
    everyone = {s: 0.5 for s in "abcdefgh"}
    x = write_grid(
        tmp_path / "x",
        "x",
        {1: ["a", "b"], 2: ["c", "d"], 3: ["e", "f"], 4: ["g", "h"]},
        {"BL": everyone, "U": everyone, "C": everyone},
        files_per_class=10,
        subset_accuracy={
            "common": {"BL": 0.5, "U": 0.5, "C": 0.5},
            "specific": {"BL": 0.4, "U": 0.95, "C": 0.4},
        },
        without_common=("h",),
    )
    y = write_grid(
        tmp_path / "y",
        "y",
        {1: ["m"], 2: ["n"], 3: ["o"]},
        {c: {s: 0.6 for s in "mno"} for c in ("BL", "U", "C")},
    )
    table = pd.concat([x, y])
    _, predictions = speakers.predictions_of(tmp_path / "x")
    uars = speakers.speaker_uars(predictions, table)
    assert set(uars["score"]) == {"all", "common", "specific"}
    common = uars[uars["score"] == "common"]
    assert "h" not in set(common["speaker"])  # left out of the fair score, not scored 0
    # every `common` score is computed from `common` files only: 5 per class, 4 classes
    assert (common["n_test"] == 20).all()

    result = confirmatory.pool(
        [tmp_path / "x", tmp_path / "y"], table, ["U"], scores=["common"], pool_score="common"
    )
    family = result.family.set_index(["corpus", "score"])
    assert sorted(family.index) == [
        ("x: x (within)", "all"),
        ("x: x (within)", "common"),
        ("y: y (within)", "all"),
    ]
    assert family.loc[("x: x (within)", "all"), "mean_difference"] > 15  # the lexical gain
    assert abs(family.loc[("x: x (within)", "common"), "mean_difference"]) < 8
    assert family.loc[("x: x (within)", "common"), "speakers"] == 7
    assert family.loc[("x: x (within)", "all"), "speakers"] == 8
    np.testing.assert_allclose(result.family["holm_p"], confirmatory.holm(result.family["t_p"]))
    assert result.pooled["scores"] == {"x: x (within)": "common", "y: y (within)": "all"}
    assert result.pooled["speakers"] == 7 + 3
    assert "| common |" in confirmatory.pool_markdown(result)

    with pytest.raises(ProtocolError, match="--score"):
        confirmatory.pool([tmp_path / "y"], table, ["U"], scores=["common"])
