"""`serlib check` (issue 34): the expected range, the comparison hash, the shipped references, and the
check of a tiny protocol run against a reference made from it (agrees), of the same run with its
predictions permuted (outside, exit 1) and with another configuration (not comparable, exit 3).
Issue 42's mutations of the tiny run, each of which must make `serlib check` exit 1: the AE vectors of
one condition replaced by zeros and two classes' labels swapped in one condition's training data (both
retrained, seed 0), a 3-point shift of one cell (on this machine and under another CPU family's
provenance); the unmodified run agrees exactly, and within the tolerance as another family."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from check_mutations import as_other_family, shift_cell
from tiny_pipeline import tiny_config

from serlib.app import cli
from serlib.base import config as config_module
from serlib.base import provenance
from serlib.evidence import check, references

ROOT = Path(__file__).resolve().parents[1]


# -- the rule -------------------------------------------------------------------------------------------
def test_expected_range_is_the_prediction_interval_of_a_mean_of_n_seeds():
    # sd 2 over 10 reference seeds, 4 seeds of yours: t_{0.975, 9} = 2.2621571628 (tables),
    # half-width 2.2621571628 * 2 * sqrt(1/4 + 1/10) = 2.676618...
    low, high = check.expected_range(50.0, 2.0, n_reference=10, n_yours=4)
    half = 2.2621571628 * 2.0 * math.sqrt(0.25 + 0.1)
    assert low == pytest.approx(50.0 - half, abs=1e-6) and high == pytest.approx(50.0 + half, abs=1e-6)
    # more seeds of yours narrow it towards the reference's own uncertainty, never below it
    one = check.expected_range(50.0, 2.0, 10, 1)
    many = check.expected_range(50.0, 2.0, 10, 10_000)
    assert one[1] - one[0] > high - low > many[1] - many[0] > 2 * 2.2621571628 * 2.0 * math.sqrt(0.1) - 1e-9
    # a stricter level is wider; no spread without two reference seeds
    wide = check.expected_range(50.0, 2.0, 10, 4, level=0.99)
    assert wide[1] - wide[0] > high - low
    assert all(math.isnan(v) for v in check.expected_range(50.0, 2.0, n_reference=1, n_yours=4))


def test_range_constant_is_the_expected_range_of_normal_draws():
    assert references.range_constant(2) == pytest.approx(2.0 / math.sqrt(math.pi), abs=1e-6)  # 1.1284
    assert references.range_constant(10) == pytest.approx(3.0775, abs=1e-4)  # the control-chart table's d2


def test_comparison_hash_ignores_seeds_paths_and_workers_but_not_parameters(tmp_path: Path):
    demo = config_module.load_preset("demo")
    key = references.comparison_hash(demo)
    same = config_module.override(
        demo,
        output_dir=str(tmp_path),
        **{"protocol.seeds": [0, 1, 2, 3], "protocol.n_jobs": 1, "acnn.implementation": "reference"},
    )
    assert references.comparison_hash(same) == key
    other = config_module.override(demo, **{"acnn.epochs": 16})
    assert references.comparison_hash(other) != key
    assert references.config_differences(
        references.comparison_config(other), references.comparison_config(demo)
    ) == [("acnn.epochs", 16, 15)]


def test_a_subset_of_the_conditions_is_comparable_and_a_redefined_one_is_named():
    demo = config_module.load_preset("demo")
    reference = [c.model_dump(mode="json") for c in demo.protocol.conditions]
    subset = config_module.keep_conditions(demo, ["BL", "fT"])
    assert references.comparison_hash(subset) == references.comparison_hash(demo)
    assert references.condition_differences(subset.model_dump(mode="json"), reference) == {}
    changed = subset.model_dump(mode="json")
    changed["protocol"]["conditions"][1]["autoencoder_epochs"] = 3
    changed["protocol"]["conditions"].append(
        {"name": "X", "autoencoder_corpus": "none", "autoencoder_epochs": None}
    )
    why = references.condition_differences(changed, reference)
    assert set(why) == {"fT", "X"} and "defined otherwise" in why["fT"] and "no such condition" in why["X"]


# -- the shipped references ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "source"),
    [
        ("demo", "demo"),
        ("paper", "paper"),
        ("nemo", "configs/nemo.yaml"),
        ("emodb", "configs/emodb.yaml"),
        ("emodb-replication", "configs/emodb-replication.yaml"),
        ("ravdess", "configs/ravdess.yaml"),
        ("ased", "configs/ased.yaml"),
    ],
)
def test_shipped_reference_belongs_to_its_configuration(name: str, source: str):
    reference = references.load_reference(name)
    config = config_module.load_preset(source) if "/" not in source else config_module.load(ROOT / source)
    assert reference.meta["comparison_sha256"] == references.comparison_hash(config), (
        f"{source} changed since serlib/references/{name}.json was written: its reference no longer "
        f"describes it; re-run the command of {name}.json ({reference.meta.get('command')})"
    )
    cells = reference.cells()
    assert set(cells["quantity"]) == {"mean", "delta"}
    assert (cells["sd"] > 0).all() and (cells["n"] >= 3).all()


def test_demo_reference_holds_the_same_seeds_for_every_table1_cell():
    reference = references.load_reference("demo")
    counts = reference.values.groupby(["setting", "condition"])["seed"].nunique()
    assert len(counts) == 10 and (counts == len(reference.meta["seeds"])).all() and counts.min() >= 5
    assert reference.meta["machine"]["model"] and reference.meta["command"]
    assert {"tensorflow", "tensorflow-cpu"} & set(reference.meta["packages"])


def test_paper_reference_estimates_its_sd_from_the_range_of_ten_seeds():
    cells = references.load_reference("paper").cells().set_index(["setting", "condition", "quantity"])
    bl = cells.loc[("within", "BL", "mean")]
    assert bl["value"] == pytest.approx(58.03) and bl["n"] == 10
    assert bl["sd"] == pytest.approx((59.12 - 56.78) / 3.0775, rel=1e-3)
    ft = cells.loc[("cross", "fT", "delta")]
    assert ft["value"] == pytest.approx(45.76 - 42.99)
    sd_ft, sd_bl = (46.69 - 45.02) / 3.0775, (44.14 - 42.19) / 3.0775
    assert ft["sd"] == pytest.approx(math.hypot(sd_ft, sd_bl), rel=1e-3)


# -- a tiny protocol run, checked ---------------------------------------------------------------------
SEEDS = [0, 1, 2, 3, 4]
# Within the tiny labeled corpus (3 sessions = 3 folds, 96 utterances) with an ACNN that learns: BL
# 39-48 % and sT 49-52 % over seeds 0-2 on the development machine, where permuted predictions give
# chance (25 %). Five seeds: the expected range of a cell is then about +-2.5 seed sds wide.
TINY_CHANGES = {
    "protocol.seeds": SEEDS,
    "protocol.within_corpus": "emo",
    "protocol.cross_corpus_train": None,
    "protocol.cross_corpus_test": None,
    "demo_corpus.labeled_sessions": 3,
    "demo_corpus.utterances_per_speaker_emotion": 4,
    "acnn.filters": 32,
    "acnn.epochs": 12,
    "acnn.learning_rate": 0.005,
}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The tiny protocol over three seeds (a run folder with provenance) and a reference made from it."""
    from serlib.evidence import summaries  # noqa: PLC0415 - TensorFlow only for the tests that train

    base = tmp_path_factory.mktemp("check")
    config = tiny_config(base / "run", **TINY_CHANGES)
    provenance.record(config.output_path, config)
    summaries.evaluate(config, progress=False)
    refs = base / "references"
    check.write_reference(config.output_path, "tiny", command="tests/test_check.py", references=refs)
    return config.output_path, refs


def _copy(run: Path, target: Path) -> Path:
    shutil.copytree(run, target, ignore=shutil.ignore_patterns("cache", "data"))
    return target


def _cli(folder: Path, folder_of_references: Path, capsys) -> tuple[int, str]:
    status = cli.main(["check", str(folder), "--references", str(folder_of_references)])
    return status, capsys.readouterr().out


@pytest.mark.slow
def test_a_run_agrees_with_a_reference_made_from_the_same_code(tiny_run, capsys):
    run, refs = tiny_run
    result = check.check_run(run, references=refs)
    assert result.comparable and result.reference == "tiny"
    checked = result.cells[result.cells["verdict"].isin([check.AGREES, check.OUTSIDE])]
    assert len(checked) == 3  # within: BL and sT means, sT - BL
    assert (checked["verdict"] == check.AGREES).all(), check.check_markdown(result)
    assert (checked["n_yours"] == len(SEEDS)).all()
    assert (result.seeds["rule"] == "exact").all()  # same machine, versions, oneDNN, threads
    status, out = _cli(run, refs, capsys)
    assert status == 0 and "all 3 cells agree: seed by seed" in out and "Power:" in out


@pytest.mark.slow
def test_permuted_predictions_are_outside_the_spread_and_exit_non_zero(
    tiny_run, tmp_path, monkeypatch, capsys
):
    run, refs = tiny_run
    broken = _copy(run, tmp_path / "permuted")
    rng = np.random.default_rng(0)
    for path in sorted(broken.glob("results/*/*/seed*/fold*/predictions.csv")):
        frame = pd.read_csv(path)
        frame["predicted"] = rng.permutation(frame["predicted"].to_numpy())
        frame.to_csv(path, index=False)
    result = check.check_run(broken, references=refs)
    means = result.cells[result.cells["quantity"] == "mean"]
    assert (means["yours"] < means["reference"]).all()  # the stored metrics.json is not what counts
    assert means["verdict"].isin([check.OUTSIDE, check.NOT_SAME]).any(), check.check_markdown(result)
    assert any("differs from their predictions.csv" in note for note in result.notes)
    assert any(line.startswith("seeds:") for line in result.differences)
    status, out = _cli(broken, refs, capsys)
    assert status == check.EXIT_OUTSIDE and check.NOT_SAME in out and "What differs" in out


@pytest.mark.slow
def test_a_run_of_another_configuration_is_not_comparable(tiny_run, tmp_path, capsys):
    run, refs = tiny_run
    other = _copy(run, tmp_path / "other")
    path = other / "results" / "protocol.json"
    protocol = json.loads(path.read_text(encoding="utf-8"))
    protocol["config"]["acnn"]["epochs"] += 1
    path.write_text(json.dumps(protocol), encoding="utf-8")
    result = check.check_run(other, references=refs)
    assert not result.comparable and result.verdict == check.NOT_COMPARABLE
    assert any(line.startswith("acnn.epochs:") for line in result.differences)
    status, out = _cli(other, refs, capsys)
    assert status == check.EXIT_NOT_COMPARABLE and "not comparable" in out and "disagree" not in out


def test_the_report_has_a_check_section(tmp_path: Path):
    from sample_run import write_sample_run  # noqa: PLC0415

    from serlib.app import report  # noqa: PLC0415

    out = write_sample_run(tmp_path / "run")
    page = report.build(out).index.read_text(encoding="utf-8")
    section = page.split("<h2 id='check'>")[1].split("<h2")[0]
    assert "No check:" in section and "fingerprints" in section  # the synthetic run's protocol.json has none


# -- issue 42: mutations that must fail the check ----------------------------------------------------------
# One seed retrained (3 runs, not 6): `serlib check` compares each seed with the reference's same seed
# (the exact rule on this machine), so one changed seed is already NOT_SAME.
MUTATED_SEEDS = [0]


def _retrain(run: Path, target: Path, monkeypatch: pytest.MonkeyPatch, condition: str = "sT") -> Path:
    """A full copy of the run (stores and autoencoders kept) with ``condition``'s runs of seed 0
    trained again in this process, under whatever ``monkeypatch`` changed."""
    from serlib.evidence import summaries  # noqa: PLC0415

    copy = Path(shutil.copytree(run, target))
    shutil.rmtree(copy / "results" / "within" / condition)
    config = tiny_config(copy, **(TINY_CHANGES | {"protocol.seeds": MUTATED_SEEDS}))
    provenance.record(config.output_path, config)
    summaries.evaluate(config, n_jobs=1, progress=False)
    return copy


def _fails(folder: Path, refs: Path, capsys) -> str:
    status, out = _cli(folder, refs, capsys)
    assert status == check.EXIT_OUTSIDE, out
    assert "agree" not in out.splitlines()[0]
    return out


@pytest.mark.slow
def test_zeroed_ae_vectors_of_one_condition_fail_the_check(tiny_run, tmp_path, monkeypatch, capsys):
    from serlib.protocol import conditions  # noqa: PLC0415

    run, refs = tiny_run
    read = conditions.read_representations

    def zeros(path):
        ids, vectors = read(path)
        return ids, np.zeros_like(vectors)

    monkeypatch.setattr(conditions, "read_representations", zeros)
    mutated = _retrain(run, tmp_path / "zeros", monkeypatch)
    out = _fails(mutated, refs, capsys)
    assert check.NOT_SAME in out and "| within | sT | mean | seed by seed |" in out


@pytest.mark.slow
def test_two_labels_swapped_in_one_conditions_training_data_fail_the_check(
    tiny_run, tmp_path, monkeypatch, capsys
):
    import dataclasses  # noqa: PLC0415

    from serlib.protocol import runs  # noqa: PLC0415

    run, refs = tiny_run
    run_data = runs.run_data

    def swapped(config, setting, fold, sources):
        train, test = run_data(config, setting, fold, sources)
        if sources.get("autoencoder_corpus"):  # the AE condition sT, not BL
            emotion = train.emotion.copy()
            emotion[train.emotion == 0], emotion[train.emotion == 1] = 1, 0
            train = dataclasses.replace(train, emotion=emotion)
        return train, test

    monkeypatch.setattr(runs, "run_data", swapped)
    mutated = _retrain(run, tmp_path / "swapped", monkeypatch)
    out = _fails(mutated, refs, capsys)
    assert check.NOT_SAME in out


@pytest.mark.slow
@pytest.mark.parametrize("family", ["this machine's", "another"])
def test_a_three_point_shift_of_one_cell_fails_the_check(tiny_run, tmp_path, capsys, family):
    run, refs = tiny_run
    shifted = _copy(run, tmp_path / "shifted")
    shift_cell(shifted, "sT", 3.0, seeds=tuple(SEEDS))
    if family == "another":
        as_other_family(shifted)
    out = _fails(shifted, refs, capsys)
    assert "Per-seed values outside" in out and ("within ±" in out) == (family == "another")


@pytest.mark.slow
def test_the_unmodified_run_agrees_within_the_tolerance_as_another_cpu_family(tiny_run, tmp_path, capsys):
    run, refs = tiny_run
    other = as_other_family(_copy(run, tmp_path / "other"))
    status, out = _cli(other, refs, capsys)
    assert status == 0 and "agree: seed by seed" in out and "within ±" in out
    result = check.check_run(other, references=refs)
    assert (result.seeds["rule"] == "tolerance").all() and result.power["worst"][1] <= 3.0
