"""``serlib export`` and the results folder (serlib.evidence.export, results_folder): a run folder's
evidence written for git and read back, after the run folder is gone, by the same verbs."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from stored_runs import write_grid, write_matrix_cells

from serlib.app import cli
from serlib.base import run_schemas
from serlib.evidence import results_folder


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(results_folder.CACHE_VARIABLE, str(tmp_path / "cache"))


def _grids(tmp_path) -> pd.DataFrame:
    x = write_grid(
        tmp_path / "runs" / "x",
        "x",
        {1: ["a", "b"], 2: ["c"], 3: ["d"]},
        {"BL": {s: 0.5 for s in "abcd"}, "U": {s: 0.8 for s in "abcd"}, "C": {s: 0.6 for s in "abcd"}},
    )
    y = write_grid(  # ASED-like: predictions carry speaker and subset
        tmp_path / "runs" / "y",
        "y",
        {1: ["e"], 2: ["f"], 3: ["g"]},
        {c: {s: 0.6 for s in "efg"} for c in ("BL", "U", "C")},
        subset_accuracy={"common": {"BL": 0.5, "U": 0.7, "C": 0.5}},
        rng_seed=3,
    )
    for name in ("x", "y"):  # probabilities, as the ACNN writes them
        for path in (tmp_path / "runs" / name / "results").glob("*/*/seed*/fold*/predictions.csv"):
            frame = pd.read_csv(path, dtype=str)
            for emotion in ("angry", "happy", "neutral", "sad"):
                frame[f"p_{emotion}"] = (frame["predicted"] == emotion) * 0.7 + 0.1
            frame.to_csv(path, index=False)
    return pd.concat([x, y])


def test_an_export_prints_the_same_tables_after_the_run_folder_is_deleted(tmp_path, capsys) -> None:
    table = _grids(tmp_path)
    speakers_csv = tmp_path / "speakers.csv"
    table.to_csv(speakers_csv, index=False)
    config = tmp_path / "grid.yaml"
    config.write_text("name: x\n", encoding="utf-8")
    runs, results = tmp_path / "runs", tmp_path / "results"
    before = {}
    for name in ("x", "y"):
        assert cli.main(["table", str(runs / name)]) == 0
        before[name] = capsys.readouterr().out
    pool_args = ["--pool-condition", "U", "--score", "common", "--pool-score", "common"]
    assert (
        cli.main(
            [
                "pool",
                str(runs / "x"),
                str(runs / "y"),
                "--speakers",
                str(speakers_csv),
                *pool_args,
                "--out",
                str(tmp_path / "p1"),
            ]
        )
        == 0
    )
    pooled_before = capsys.readouterr().out
    for name in ("x", "y"):
        assert (
            cli.main(
                [
                    "export",
                    str(runs / name),
                    "--out",
                    str(results / name),
                    "--config",
                    str(config),
                    "--speakers",
                    str(speakers_csv),
                ]
            )
            == 0
        )
    assert "argmax of the rounded probabilities differs" in capsys.readouterr().out
    shutil.rmtree(runs)
    for name in ("x", "y"):
        assert cli.main(["table", str(results / name)]) == 0
        assert capsys.readouterr().out == before[name]
    # no --speakers: a results folder names its speakers itself
    assert (
        cli.main(["pool", str(results / "x"), str(results / "y"), *pool_args, "--out", str(tmp_path / "p2")])
        == 0
    )
    assert capsys.readouterr().out == pooled_before
    assert "Holm" in pooled_before and "common" in pooled_before


def test_the_export_is_sorted_rounded_and_records_its_hash(tmp_path) -> None:
    table = _grids(tmp_path)
    from serlib.evidence import export

    config = tmp_path / "grid.yaml"
    config.write_text("name: y\n", encoding="utf-8")
    record = export.export(tmp_path / "runs" / "y", tmp_path / "results" / "y", table, config)
    folder = tmp_path / "results" / "y"
    assert {p.name for p in folder.iterdir()} >= {
        "predictions.csv",
        "runs.csv",
        "protocol.json",
        "export.json",
    }
    frame = pd.read_csv(folder / "predictions.csv", keep_default_na=False)
    keys = list(results_folder.PREDICTION_KEY)
    assert frame[keys].equals(frame.sort_values(keys)[keys].reset_index(drop=True))
    assert set(frame["subset"]) == {"common", "specific"}
    assert len(frame) == record["predictions"] == 3 * 2 * 3 * 32  # conditions x seeds x folds x files
    assert record["sha256"] == results_folder.content_hash(folder)
    assert record["argmax_of_rounded_probabilities_differs"] == 0
    assert not list(tmp_path.glob("results/.*"))  # no staging folder left


def test_runs_without_some_scores_keep_the_other_runs_numbers(tmp_path) -> None:
    """An SVM run has no arousal UAR: its empty cell must not turn the ACNN runs' numbers into text
    (the materialised metrics.json would be refused as damaged)."""
    table = _grids(tmp_path)
    from serlib.evidence import export

    runs = tmp_path / "runs" / "x" / "results" / "within"
    for source in sorted((runs / "BL").glob("seed0/fold*")):
        target = runs / "eGeMAPS-SVM" / "seed0" / source.name
        shutil.copytree(source, target)
        metrics = json.loads((source / "metrics.json").read_text(encoding="utf-8"))
        metrics.pop("arousal_uar", None)
        (target / "metrics.json").write_text(
            json.dumps({**metrics, "condition": "eGeMAPS-SVM"}), encoding="utf-8"
        )
    for path in runs.glob("[BUC]*/seed*/fold*/metrics.json"):
        metrics = json.loads(path.read_text(encoding="utf-8"))
        path.write_text(json.dumps({**metrics, "arousal_uar": 0.625}), encoding="utf-8")
    (tmp_path / "runs" / "x" / "config.yaml").write_text("name: x\n", encoding="utf-8")
    export.export(tmp_path / "runs" / "x", tmp_path / "results" / "x", table, None)
    stored = results_folder.read_runs(tmp_path / "results" / "x")
    acnn = stored[stored["condition"] == "BL"]["arousal_uar"]
    assert list(acnn) == [0.625] * len(acnn)
    assert set(stored[stored["condition"] == "eGeMAPS-SVM"]["arousal_uar"]) == {""}
    folder = results_folder.resolve(tmp_path / "results" / "x")
    read = json.loads((folder / "results/within/BL/seed0/fold1/metrics.json").read_text(encoding="utf-8"))
    assert read["arousal_uar"] == 0.625
    svm = run_schemas.read_metrics(folder / "results/within/eGeMAPS-SVM/seed0/fold1/metrics.json")
    assert svm["arousal_uar"] is None


def test_a_damaged_export_is_refused_naming_the_run(tmp_path, capsys) -> None:
    table = _grids(tmp_path)
    from serlib.evidence import export

    (tmp_path / "runs" / "x" / "config.yaml").write_text("name: x\n", encoding="utf-8")
    export.export(tmp_path / "runs" / "x", tmp_path / "results" / "x", table, None)
    path = tmp_path / "results" / "x" / "predictions.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    first = lines[1].split(",")
    first[7] = "sad" if first[7] != "sad" else "angry"  # the predicted class of one utterance
    lines[1] = ",".join(first)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert cli.main(["table", str(tmp_path / "results" / "x")]) == 2
    error = capsys.readouterr().err
    assert "is not the stored" in error and "within/BL/0/1" in error


def test_export_without_speakers_names_the_fix(tmp_path) -> None:
    _grids(tmp_path)
    from serlib.evidence import export
    from serlib.protocol.labeled import ProtocolError

    with pytest.raises(ProtocolError, match="--speakers"):
        export.export(tmp_path / "runs" / "x", tmp_path / "results" / "x", None, None)
    protocol = json.loads((tmp_path / "runs" / "x" / "results" / "protocol.json").read_text())
    assert "config" not in protocol  # and so the configuration file is needed too


def test_a_folder_of_run_folders_exports_each_in_its_place(tmp_path, capsys) -> None:
    table = _grids(tmp_path)
    csv = tmp_path / "speakers.csv"
    table.to_csv(csv, index=False)
    config = tmp_path / "grid.yaml"
    config.write_text("name: matrix\n", encoding="utf-8")
    out = tmp_path / "results" / "matrix"
    args = [
        "export",
        str(tmp_path / "runs"),
        "--out",
        str(out),
        "--config",
        str(config),
        "--speakers",
        str(csv),
    ]
    assert cli.main([*args, "--no-probabilities"]) == 0
    assert capsys.readouterr().out.count("runs,") == 2
    for name in ("x", "y"):
        header = (out / name / "predictions.csv").read_text(encoding="utf-8").splitlines()[0]
        assert header.endswith("true,predicted") and "p_angry" not in header
        assert cli.main(["table", str(out / name)]) == 0


def test_serlib_check_reads_an_export_as_its_run_folder(tmp_path) -> None:
    from serlib.base import config as config_module
    from serlib.base import provenance
    from serlib.evidence import check, export

    config = config_module.load_preset("demo")
    conditions = tuple((c.name, c.autoencoder_corpus) for c in config.protocol.conditions)
    accuracy = {name: {s: 0.6 for s in "abc"} for name, _ in conditions}
    run = tmp_path / "run"
    table = write_grid(
        run, "demo", {1: ["a"], 2: ["b"], 3: ["c"]}, accuracy, seeds=(0, 1, 2), conditions=conditions
    )
    protocol_path = run / "results" / "protocol.json"
    protocol = json.loads(protocol_path.read_text(encoding="utf-8")) | {
        "config": config.model_dump(mode="json")
    }
    protocol_path.write_text(json.dumps(protocol), encoding="utf-8")
    provenance.record(run, config)
    check.write_reference(run, "fixture", command="tests/test_export.py", references=tmp_path / "refs")
    before = check.check_markdown(check.check_run(run, references=tmp_path / "refs"))
    export.export(run, tmp_path / "results" / "demo", table)
    shutil.rmtree(run)
    after = check.check_markdown(check.check_run(tmp_path / "results" / "demo", references=tmp_path / "refs"))
    assert "all 9 cells agree" in before
    assert after.splitlines()[1:] == before.splitlines()[1:]  # the first line names the folder read


def test_a_check_reference_is_built_from_a_results_folder(tmp_path, monkeypatch) -> None:
    import importlib
    from pathlib import Path

    import yaml

    from serlib.base import config as config_module
    from serlib.base import provenance
    from serlib.evidence import check, export

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "docs" / "probes"))
    probe = importlib.import_module("results_references")
    config = config_module.load_preset("demo")
    conditions = tuple((c.name, c.autoencoder_corpus) for c in config.protocol.conditions)
    run = tmp_path / "run"
    table = write_grid(
        run,
        "demo",
        {1: ["a"], 2: ["b"]},
        {n: {"a": 0.6, "b": 0.6} for n, _ in conditions},
        seeds=(0, 1),
        conditions=conditions,
    )
    protocol_path = run / "results" / "protocol.json"
    protocol = json.loads(protocol_path.read_text(encoding="utf-8")) | {
        "config": config.model_dump(mode="json")
    }
    protocol_path.write_text(json.dumps(protocol), encoding="utf-8")
    provenance.record(run, config)
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "demo.yaml").write_text(
        yaml.safe_dump(config.model_dump(mode="json")), encoding="utf-8"
    )
    export.export(run, tmp_path / "results" / "demo", table)
    shutil.rmtree(run)
    written = probe.build("demo", tmp_path / "results", tmp_path / "configs", tmp_path / "refs")
    assert [p.name for p in written] == ["demo.csv", "demo.json"]
    result = check.check_run(tmp_path / "results" / "demo", references=tmp_path / "refs")
    assert result.comparable and result.reference == "demo"
    with pytest.raises(SystemExit, match="serlib export runs/nemo"):
        probe.build("nemo", tmp_path / "results", tmp_path / "configs", tmp_path / "refs")


def test_an_exported_matrix_gives_the_cells_of_its_run_folders(tmp_path) -> None:
    from serlib.evidence import export, matrix

    speakers = write_matrix_cells(tmp_path / "runs", {"train": 0.6, "speaker": 0.7})
    config = tmp_path / "grid.yaml"
    config.write_text("name: matrix\n", encoding="utf-8")
    before = matrix.collect_tree(tmp_path / "runs")
    export.export_tree(tmp_path / "runs", tmp_path / "results" / "matrix", speakers, config)
    shutil.rmtree(tmp_path / "runs")
    after = matrix.collect_tree(tmp_path / "results" / "matrix")
    assert len(before) == 6 and set(before["normalisation"]) == {"train", "speaker"}
    pd.testing.assert_frame_equal(after, before)
