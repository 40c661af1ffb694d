"""`serlib check` seed by seed (issue 42), without training: the CPU family, the tolerance derived from
the measured cross-CPU drift, the power statement against closed forms, and the check of a stored run
folder (tests/stored_runs.py, with the tiny configuration and a provenance.json) against a reference
written from it by the shipped references' code path: exact on the same machine, within the tolerance
for a copy whose provenance says another CPU family, a 3-point shift of one cell flagged under both
rules, a small drift flagged only under the exact rule, incomplete folders, a second CPU family added."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from check_mutations import OTHER, OTHER_FAMILY, as_other_family, shift_cell
from scipy import stats
from stored_runs import write_grid
from tiny_pipeline import tiny_config

from serlib.app import cli
from serlib.base import provenance
from serlib.evidence import check, check_power, check_seeds, references

SEEDS = (0, 1, 2, 3, 4)
FOLDS = {1: ["s1", "s2"], 2: ["s3", "s4"], 3: ["s5", "s6"]}


# -- families, tolerance ------------------------------------------------------------------------------
def test_cpu_family_is_the_vendor_and_the_widest_vector_instruction_set():
    assert references.cpu_family("Intel(R) server processor", ["avx2", "avx512f"]) == "Intel AVX-512"
    assert references.cpu_family("AMD server processor", ["sse4_2", "avx", "avx2", "fma"]) == "AMD AVX2"
    assert references.cpu_family("AMD server processor", "avx avx2 avx512f") == "AMD AVX-512"
    assert references.cpu_family("AMD server (2 cores, AVX2), as the report states") == "AMD AVX2"
    assert (
        references.cpu_family(OTHER["model"], OTHER["features"])
        == OTHER_FAMILY
        != references.cpu_family(provenance.cpu_info()["model"], provenance.cpu_info()["features"])
    )
    assert references.cpu_family("Apple M2", []) == "Apple"


def test_tolerance_is_the_per_seed_drift_bound_plus_the_margin():
    measured = check_seeds.MEASURED_DRIFT
    moved = [
        abs(round(a - b, 2))
        for setting in ("within", "cross")
        for a, b in zip(measured[setting]["AMD"], measured[setting]["Intel"], strict=True)
    ]
    tolerance = check_seeds.derive_tolerance()
    # a 2-seed mean that moved by m: at most 2 m in one seed
    assert tolerance["drift_bound_uar"] == pytest.approx(2 * max(moved))
    assert tolerance["uar"] >= tolerance["drift_bound_uar"] + check_seeds.MARGIN
    assert tolerance["uar"] < tolerance["drift_bound_uar"] + check_seeds.MARGIN + 0.1
    assert tolerance["drift_sd_uar"] == pytest.approx(math.sqrt(np.mean(np.square(moved)) * 2), abs=1e-4)
    # a smaller measured drift gives a smaller tolerance
    halved = {**measured, "within": {**measured["within"], "AMD": measured["within"]["Intel"]}}
    halved["cross"] = {"AMD": measured["cross"]["Intel"], "Intel": measured["cross"]["Intel"]}
    assert check_seeds.derive_tolerance(halved)["uar"] < tolerance["uar"]


def test_shipped_demo_reference_states_the_derived_tolerance_and_its_cpu_family():
    demo = references.load_reference("demo")
    derived = check_seeds.derive_tolerance()
    assert {k: demo.meta["tolerance"][k] for k in ("uar", "delta")} == {
        k: derived[k] for k in ("uar", "delta")
    }
    assert set(demo.values[references.FAMILY_COLUMN]) >= {demo.family}
    assert demo.family_environment(demo.family)["tensorflow-cpu"] == demo.meta["packages"]["tensorflow-cpu"]
    for name in ("nemo", "emodb", "emodb-replication", "ravdess", "ased"):  # from results/: with versions
        built = references.load_reference(name)
        assert built.meta["source"].startswith(f"results/{name} ")
        assert built.family_environment(built.family)["tensorflow-cpu"]
        assert "assumed" not in built.meta["tolerance"]


# -- the power, against closed forms --------------------------------------------------------------------
def test_tolerance_power_matches_its_closed_form():
    tol, sd = 2.5, 0.54
    # one seed: q(d) = Phi((tol - d)/sd) - Phi((-tol - d)/sd) = 0.2, the second term negligible at d ~ 3
    one = check_power.shift_for([lambda d: check_power.tolerance_power(d, tol, sd, 1)])
    assert one == pytest.approx(tol + sd * stats.norm.ppf(0.8), abs=1e-4)
    two = check_power.shift_for([lambda d: check_power.tolerance_power(d, tol, sd, 2)])
    assert two == pytest.approx(tol - sd * stats.norm.ppf(math.sqrt(0.2)), abs=1e-4)
    assert tol < two < one < tol + check_seeds.derive_tolerance()["drift_bound_uar"]


def test_interval_power_matches_the_normal_closed_form_and_a_simulation():
    sd, n_yours, level = 4.5, 2, 1 - 0.05 / 18
    # many reference seeds: the interval's t is z and its width sd * sqrt(1/n_yours)
    d = check_power.shift_for([lambda x: check_power.interval_power(x, sd, 10**6, n_yours, level)])
    z = stats.norm.ppf(0.5 + level / 2)
    assert d == pytest.approx((z + stats.norm.ppf(0.8)) * sd / math.sqrt(n_yours), rel=1e-3)
    # 10 reference seeds (the demo's): simulate the rule itself (check.expected_range) at that shift
    n_ref = 10
    d = check_power.shift_for([lambda x: check_power.interval_power(x, sd, n_ref, n_yours, level)])
    rng = np.random.default_rng(0)
    flagged = 0
    trials = 4000
    for _ in range(trials):
        reference = rng.normal(50.0, sd, n_ref)
        yours = rng.normal(50.0 + d, sd, n_yours).mean()
        low, high = check.expected_range(reference.mean(), reference.std(ddof=1), n_ref, n_yours, level)
        flagged += not low <= yours <= high
    assert flagged / trials == pytest.approx(0.8, abs=0.025)


def test_exact_rule_flags_any_printed_change():
    assert check_power.shift_for([check_power.exact_power]) == check_power.PRINTED_STEP


# -- a stored run, checked --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A stored tiny run (5 seeds, within, BL and sT) with its configuration and provenance, and a
    reference written from it as the shipped ones are (check.write_reference)."""
    base = tmp_path_factory.mktemp("seeds")
    run = base / "run"
    write_grid(
        run,
        "emo",
        FOLDS,
        {
            "BL": dict.fromkeys(sum(FOLDS.values(), []), 0.5),
            "sT": dict.fromkeys(sum(FOLDS.values(), []), 0.6),
        },
        seeds=SEEDS,
        conditions=(("BL", "none"), ("sT", "talks")),
    )
    config = tiny_config(
        run,
        **{
            "protocol.seeds": list(SEEDS),
            "protocol.within_corpus": "emo",
            "protocol.cross_corpus_train": None,
            "protocol.cross_corpus_test": None,
        },
    )
    path = run / "results" / "protocol.json"
    protocol = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps(protocol | {"config": config.model_dump(mode="json")}), encoding="utf-8")
    provenance.record(run, config)
    refs = base / "references"
    check.write_reference(run, "tiny", command="tests/test_check_seeds.py", references=refs)
    return run, refs


def _copy(run: Path, target: Path) -> Path:
    return Path(shutil.copytree(run, target))


def _cli(folder: Path, refs: Path, capsys) -> tuple[int, str]:
    status = cli.main(["check", str(folder), "--references", str(refs)])
    return status, capsys.readouterr().out


def test_the_unmodified_run_agrees_exactly_on_its_own_machine(stored, capsys):
    run, refs = stored
    result = check.check_run(run, references=refs)
    assert result.exit_status == 0, check.check_markdown(result)
    assert (result.seeds["rule"] == check_seeds.EXACT).all() and len(result.seeds) == 3 * len(SEEDS)
    assert (result.cells["rule"] == check.SEED_BY_SEED).sum() == 3
    status, out = _cli(run, refs, capsys)
    assert status == 0 and "all 3 cells agree: seed by seed" in out and "exactly" in out
    assert "Power: a shift of any one cell's UAR by 0.01 points" in out


def test_another_cpu_family_agrees_within_the_tolerance_and_states_its_power(stored, tmp_path, capsys):
    run, refs = stored
    amd = as_other_family(_copy(run, tmp_path / "amd"))
    result = check.check_run(amd, references=refs)
    assert result.exit_status == 0, check.check_markdown(result)
    assert (result.seeds["rule"] == check_seeds.TOLERANCE).all()
    tolerance = check_seeds.derive_tolerance()
    # a shift of a cell moves its UAR and its difference to BL (BL's: every difference) by d: the cell's
    # 80 % shift is the smaller of the two rows' (each row alone a lower bound on the cell's power)
    expected = min(
        check_power.shift_for(
            [
                lambda d, q=q: check_power.tolerance_power(
                    d, tolerance[q], tolerance[f"drift_sd_{q}"], len(SEEDS)
                )
            ]
        )
        for q in ("uar", "delta")
    )
    assert result.power["worst"][1] == pytest.approx(expected, abs=1e-4)
    status, out = _cli(amd, refs, capsys)
    assert status == 0 and f"within ±{tolerance['uar']:.2f}" in out
    assert OTHER_FAMILY in out and f"{expected:.2f} points" in out


def test_a_small_drift_is_not_the_same_computation_on_one_machine_but_agrees_across_families(
    stored, tmp_path
):
    run, refs = stored
    drifted = _copy(run, tmp_path / "drift")
    shift_cell(drifted, "sT", 1.0, seeds=(0,))  # about one point in one seed: a cross-CPU-sized drift
    same = check.check_run(drifted, references=refs)
    assert same.exit_status == check.EXIT_OUTSIDE and check.NOT_SAME in same.verdict
    assert any(line.startswith("commit:") for line in same.differences)
    other = check.check_run(as_other_family(drifted), references=refs)
    assert other.exit_status == 0, check.check_markdown(other)


@pytest.mark.parametrize("family", ["same", "other"])
def test_a_three_point_shift_of_one_cell_fails_the_check(stored, tmp_path, capsys, family):
    run, refs = stored
    shifted = _copy(run, tmp_path / "shifted")
    shift_cell(shifted, "sT", 3.0)
    if family == "other":
        as_other_family(shifted)
    result = check.check_run(shifted, references=refs)
    failed = result.seeds[~result.seeds["ok"]]
    assert set(failed["condition"]) == {"sT"} and (failed["difference"] >= 3.0 - 1e-9).all()
    status, out = _cli(shifted, refs, capsys)
    assert status == check.EXIT_OUTSIDE, out
    assert "agree" not in out.splitlines()[0] and "Per-seed values outside" in out


def test_new_seeds_keep_the_prediction_interval(stored, tmp_path):
    run, refs = stored
    reference = references.load_reference("tiny", refs)
    renamed = reference.values.assign(seed=reference.values["seed"] + 10)  # the reference's seeds 10-14
    renamed.to_csv(refs.parent / "renamed.csv", index=False)
    other = tmp_path / "refs"
    other.mkdir()
    shutil.copy(refs / "tiny.json", other / "tiny.json")
    shutil.copy(refs.parent / "renamed.csv", other / "tiny.csv")
    result = check.check_run(run, references=other)
    assert result.seeds.empty and set(result.cells["rule"]) == {check.INTERVAL, "–"}  # "–": BL's own Δ
    checked = result.cells[result.cells["verdict"] == check.AGREES]
    assert len(checked) == 3 and checked["shift_80"].notna().all()
    assert result.exit_status == 0, check.check_markdown(result)


def test_an_incomplete_run_is_incomplete_not_agreeing(stored, tmp_path, capsys):
    run, refs = stored
    missing = _copy(run, tmp_path / "missing")
    (missing / "results" / "within" / "sT" / "seed2" / "fold3" / "metrics.json").unlink()
    status, out = _cli(missing, refs, capsys)
    total = 2 * len(SEEDS) * len(FOLDS)
    assert status == check.EXIT_OUTSIDE and f"incomplete: {total - 1} of {total} runs" in out.splitlines()[0]
    assert "sT seed 2 fold 3" in out and "agree" not in out.splitlines()[0]
    short = _copy(run, tmp_path / "short")
    path = short / "results" / "within" / "BL" / "seed0" / "fold1" / "predictions.csv"
    frame = pd.read_csv(path)
    frame.head(len(frame) - 3).to_csv(path, index=False)
    status, out = _cli(short, refs, capsys)
    assert status == check.EXIT_OUTSIDE and f"incomplete: {total - 1} of {total}" in out
    assert f"{len(frame) - 3} of {len(frame)} rows" in out
    no_seed = _copy(run, tmp_path / "no-seed")
    for condition in ("BL", "sT"):
        shutil.rmtree(no_seed / "results" / "within" / condition / "seed4")
    result = check.check_run(no_seed, references=refs)
    assert result.exit_status == check.EXIT_OUTSIDE and result.verdict.startswith(
        f"incomplete: {total - 2 * len(FOLDS)} of {total}"
    )


def test_other_versions_fall_back_to_the_tolerance_and_name_what_differs(stored, tmp_path):
    run, refs = stored
    other = _copy(run, tmp_path / "versions")
    path = other / provenance.FILE_NAME
    record = json.loads(path.read_text(encoding="utf-8"))
    record["freeze"]["packages"]["numpy"] = "0.0.1"
    path.write_text(json.dumps(record), encoding="utf-8")
    result = check.check_run(other, references=refs)
    assert (result.seeds["rule"] == check_seeds.TOLERANCE).all() and result.exit_status == 0
    assert any("numpy: yours 0.0.1" in note for note in result.notes)
    kernels = _copy(run, tmp_path / "kernels")  # another ACNN implementation (auto's choice), same versions
    path = kernels / provenance.FILE_NAME
    record = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(
        json.dumps(record | {"acnn_implementation": {"implementation": "fast"}}), encoding="utf-8"
    )
    result = check.check_run(kernels, references=refs)
    assert (result.seeds["rule"] == check_seeds.TOLERANCE).all() and result.exit_status == 0
    assert any("ACNN implementation: yours fast, reference absent" in note for note in result.notes)


def test_a_second_cpu_family_is_added_and_used_exactly(stored, tmp_path):
    run, refs = stored
    mine = tmp_path / "refs"
    shutil.copytree(refs, mine)
    amd = as_other_family(_copy(run, tmp_path / "amd"))
    shift_cell(amd, "sT", 1.0, seeds=(0,))  # the AMD machine's own floats
    check.write_reference(amd, "tiny", command="test", references=mine, add_family=True)
    reference = references.load_reference("tiny", mine)
    own = references.record_family(provenance.load(run))
    assert reference.family == own and set(reference.values[references.FAMILY_COLUMN]) == {own, OTHER_FAMILY}
    assert set(reference.meta["families"]) == set(reference.values[references.FAMILY_COLUMN])
    # the spread still comes from the reference's own family
    pd.testing.assert_frame_equal(reference.cells(), references.load_reference("tiny", refs).cells())
    on_amd = check.check_run(amd, references=mine)
    assert on_amd.exit_status == 0 and (on_amd.seeds["rule"] == check_seeds.EXACT).all()
    assert set(on_amd.seeds["family"]) == {OTHER_FAMILY}
    on_own = check.check_run(run, references=mine)
    assert on_own.exit_status == 0 and set(on_own.seeds["family"]) == {reference.family}
    with pytest.raises(references.ReferencesError, match="made on this CPU family"):
        check.write_reference(run, "tiny", command="test", references=mine, add_family=True)


def test_the_report_section_states_the_rule_the_power_and_what_is_missing(stored, tmp_path):
    from serlib.app.report_check import check_section  # noqa: PLC0415

    run, refs = stored
    section = str(check_section(run, references=refs))
    assert "all 3 cells agree: seed by seed" in section and "Power: a shift of any one cell" in section
    assert "<td>seed by seed</td>" in section and "80 % shift" in section
    missing = _copy(run, tmp_path / "missing")
    (missing / "results" / "within" / "BL" / "seed0" / "fold1" / "metrics.json").unlink()
    section = str(check_section(missing, references=refs))
    assert "class='bad'>incomplete: " in section and "BL seed 0 fold 1" in section


def _typed_reference(folder: Path, config, name: str) -> None:
    """A reference typed from a report, as the lost runs' were: per-seed values of another CPU family
    than this host's, no package versions, the demo's cross-CPU tolerance marked as assumed."""
    family = OTHER_FAMILY
    rows = [
        {
            "setting": "within",
            "condition": c,
            "seed": seed,
            "uar": 50.0 + seed,
            references.FAMILY_COLUMN: family,
        }
        for c in ("BL", "U", "C")
        for seed in range(5)
    ]
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(folder / f"{name}.csv", index=False)
    meta = {
        "name": name,
        "preset": config.name,
        "format": "per_seed",
        "baseline": "BL",
        "comparison_sha256": references.comparison_hash(config),
        "config": references.comparison_config(config),
        "conditions": [c.model_dump(mode="json") for c in config.protocol.conditions],
        "seeds": list(range(5)),
        "command": "typed by hand",
        "source": "a report's per-seed table",
        "machine": dict(OTHER),
        "cpu_family": family,
        "tolerance": check_seeds.derive_tolerance()
        | {"assumed": "the cross-CPU tolerance measured on the demo"},
    }
    (folder / f"{name}.json").write_text(json.dumps(meta), encoding="utf-8")


def test_a_typed_reference_is_checked_seed_by_seed_within_its_assumed_tolerance(tmp_path):
    """A reference typed from a report (per-seed values, one CPU family, no versions): a run of its
    seeds 0-1 is compared seed by seed, never exactly, with the assumed tolerance named, whatever the
    CPU running the test."""
    from serlib.base import config as config_module  # noqa: PLC0415

    root = Path(__file__).resolve().parents[1]
    config = config_module.load(root / "configs" / "nemo.yaml")
    refs = tmp_path / "references"
    _typed_reference(refs, config, "typed-nemo")
    typed = references.load_reference("typed-nemo", refs)
    assert typed.family == OTHER_FAMILY and typed.family_environment(typed.family) is None
    run = tmp_path / "nemo"
    speakers = sum(FOLDS.values(), [])
    write_grid(
        run,
        "nemo",
        FOLDS,
        {c: dict.fromkeys(speakers, 0.5) for c in ("BL", "U", "C")},
        seeds=(0, 1),
        conditions=(("BL", "none"), ("U", "other"), ("C", "target")),
    )
    path = run / "results" / "protocol.json"
    protocol = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps(protocol | {"config": config.model_dump(mode="json")}), encoding="utf-8")
    provenance.record(run, config)
    result = check.check_run(run, references=refs)
    assert (
        result.reference == "typed-nemo" and len(result.seeds) == 2 * 5
    )  # BL, U, C, U - BL, C - BL; seeds 0-1
    assert (result.seeds["rule"] == check_seeds.TOLERANCE).all() and set(result.seeds["family"]) == {
        OTHER_FAMILY
    }
    assert any(
        "(tolerance: assumed: the cross-CPU tolerance measured on the demo" in note for note in result.notes
    )
    assert set(result.cells.loc[result.cells["rule"] == check.SEED_BY_SEED, "condition"]) == {"BL", "U", "C"}
