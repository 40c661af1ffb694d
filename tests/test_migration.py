"""``serlib migrate`` (issue 43, item 3): stored values rewritten once to the current key names, each only
after recomputing it the old way; idempotent; run folders, exported results folders and references."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from serlib.app import cli
from serlib.base import config as config_module
from serlib.base import provenance
from serlib.base.config_compat import stored_form
from serlib.evidence import migration, references
from serlib.evidence import results_folder as rf
from serlib.protocol import conditions, run_files
from serlib.protocol.folds import CROSS_FOLD

SEEDS = (0, 1)


def _config() -> config_module.Config:
    demo = config_module.load_preset("demo")
    return config_module.override(
        demo,
        **{"acnn.implementation": "reference", "features.normalisation": "none", "acnn.dropout": 0.35},
    )


def _identity(config: config_module.Config, setting: str, condition: config_module.ConditionConfig):
    return {
        label: f"{label.replace('/', '-')}-{index:016x}.h5"
        for index, label in enumerate(conditions.identity_keys(config, setting, condition))
    }


def _old_run_folder(root: Path) -> tuple[Path, dict[str, str]]:
    """A run folder as the code before issue 43 left it: old fingerprints in protocol.json and every
    metrics.json, the old configuration hash in protocol.json and provenance.json, and a cache whose
    feature stores (empty files: only their names count) include one decoy per input."""
    config = _config()
    folder = root / "run"
    data = config.model_dump(mode="json")
    old_hash = migration.old_config_hash(data)
    fingerprints, new = {}, {}
    (folder / "cache" / "features").mkdir(parents=True)
    for setting in conditions.settings_of(config):
        for condition in config.protocol.conditions:
            identity = _identity(config, setting, condition)
            for label, name in identity.items():
                (folder / "cache" / "features" / name).touch()
                (folder / "cache" / "features" / f"{label.replace('/', '-')}-{'f' * 16}.h5").touch()
            label = f"{setting}/{condition.name}"
            fingerprints[label] = migration.old_fingerprint(config, setting, condition, identity)
            new[label] = conditions.fingerprint(config, setting, condition, identity)
            for seed in SEEDS:
                fold = CROSS_FOLD if setting == "cross" else 1
                run = folder / "results" / setting / condition.name / f"seed{seed}" / f"fold{fold}"
                run.mkdir(parents=True)
                metrics = {
                    "setting": setting,
                    "condition": condition.name,
                    "seed": seed,
                    "fold": fold,
                    "uar": 0.5,
                    "fingerprint": fingerprints[label],
                }
                (run / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    protocol = {
        "name": "demo",
        "conditions": [c.model_dump(mode="json") for c in config.protocol.conditions],
        "baseline": "BL",
        "seeds": list(SEEDS),
        "settings": {
            setting: {
                "train_corpus": conditions.corpora_of(config, setting)[0],
                "test_corpus": conditions.corpora_of(config, setting)[1],
                "folds": [CROSS_FOLD] if setting == "cross" else [1],
            }
            for setting in conditions.settings_of(config)
        },
        "figure2_condition": None,
        "fingerprints": fingerprints,
        "provenance": {"commit": "0" * 40, "dirty": False, "config_sha256": old_hash},
        "config": data,
    }
    (folder / "results" / "protocol.json").write_text(json.dumps(protocol, indent=2) + "\n", encoding="utf-8")
    record = {"config": {"name": "demo", "sha256": old_hash}, "earlier": [{"config": {"sha256": "a" * 64}}]}
    (folder / "provenance.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    new["config_hash"] = provenance.config_hash(config)
    return folder, new


def _finished_runs(folder: Path, new: dict[str, str]) -> int:
    """How many runs of the folder today's grid finds finished (``run_files.finished``)."""
    config = config_module.override(_config(), output_dir=str(folder))
    keys = [
        run_files.RunKey(setting, condition.name, seed, CROSS_FOLD if setting == "cross" else 1)
        for setting in conditions.settings_of(config)
        for condition in config.protocol.conditions
        for seed in SEEDS
    ]
    return sum(
        run_files.finished(config, key, new[f"{key.setting}/{key.condition}"]) is not None for key in keys
    )


def test_a_run_folder_gets_the_current_fingerprints_and_hashes_once(tmp_path: Path) -> None:
    folder, new = _old_run_folder(tmp_path)
    assert {v for k, v in new.items() if k != "config_hash"}.isdisjoint(
        json.loads((folder / "results" / "protocol.json").read_text())["fingerprints"].values()
    )  # the renamed keys change every ACNN fingerprint of this configuration
    assert _finished_runs(folder, new) == 0  # before: every run would be trained again
    result = migration.migrate(folder)
    assert result.kind == "run folder" and result.kept == [] and len(result.notes) == 1  # the earlier record
    protocol = json.loads((folder / "results" / "protocol.json").read_text())
    assert protocol["fingerprints"] == {k: v for k, v in new.items() if k != "config_hash"}
    assert protocol["provenance"]["config_sha256"] == new["config_hash"]
    assert json.loads((folder / "provenance.json").read_text())["config"]["sha256"] == new["config_hash"]
    for metrics in (folder / "results").glob("*/*/seed*/fold*/metrics.json"):
        setting, condition = metrics.parts[-5], metrics.parts[-4]
        assert json.loads(metrics.read_text())["fingerprint"] == new[f"{setting}/{condition}"]
    assert _finished_runs(folder, new) == 2 * len(SEEDS) * len(_config().protocol.conditions)  # none retrains
    before = {p: p.read_bytes() for p in folder.rglob("*.json")}
    again = migration.migrate(folder)
    assert (
        again.replaced == {}
        and again.files == []
        and before == {p: p.read_bytes() for p in folder.rglob("*.json")}
    )


def test_a_run_whose_stores_are_gone_is_reported_not_guessed(tmp_path: Path) -> None:
    folder, _ = _old_run_folder(tmp_path)
    shutil.rmtree(folder / "cache")
    before = json.loads((folder / "results" / "protocol.json").read_text())["fingerprints"]
    result = migration.migrate(folder)
    assert any("no feature stores" in reason for reason in result.kept)
    assert json.loads((folder / "results" / "protocol.json").read_text())["fingerprints"] == before
    assert cli.main(["migrate", str(folder)]) == 1  # a kept value is a failure of the command


def test_an_exported_results_folder_and_its_export_record(tmp_path: Path) -> None:
    run, new = _old_run_folder(tmp_path)
    protocol_text = (run / "results" / "protocol.json").read_text()
    old = json.loads(protocol_text)
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "protocol.json").write_text(protocol_text)
    rows = ["setting,condition,seed,fold,uar,fingerprint,config_sha256"]
    rows += [
        f"{label.split('/')[0]},{label.split('/')[1]},0,1,0.5,{value},{old['provenance']['config_sha256']}"
        for label, value in old["fingerprints"].items()
    ]
    (folder / "runs.csv").write_text("\n".join(rows) + "\n")
    (folder / "predictions.csv").write_text("setting,condition\n")
    record = {"format": 1, "sha256": rf.content_hash(folder), "bytes": {"runs.csv": 0}}
    (folder / rf.EXPORT_FILE).write_text(json.dumps(record, indent=2) + "\n")
    assert cli.main(["migrate", "--stores", str(run / "cache"), str(folder)]) == 0
    text = (folder / "runs.csv").read_text()
    assert all(value in text for key, value in new.items())
    assert not any(value in text for value in old["fingerprints"].values())
    written = json.loads((folder / rf.EXPORT_FILE).read_text())
    assert written["sha256"] == rf.content_hash(folder)
    assert written["bytes"]["runs.csv"] == (folder / "runs.csv").stat().st_size


def test_references_in_the_old_form_are_rewritten_and_match_again(tmp_path: Path) -> None:
    config = _config()
    current = references.comparison_config(config)
    old = stored_form(current)
    assert old != current and "dropout_keep_probability" in old["acnn"]
    meta = {"name": "mine", "comparison_sha256": migration.old_comparison_hash(old), "config": old}
    (tmp_path / "mine.json").write_text(json.dumps(meta, indent=2) + "\n")
    (tmp_path / "mine.csv").write_text("setting,condition,seed,uar\n")
    tampered = dict(meta, comparison_sha256="b" * 64, name="tampered")
    (tmp_path / "tampered.json").write_text(json.dumps(tampered, indent=2) + "\n")
    result = migration.migrate(tmp_path)
    assert result.kind == "references" and [k.split(":")[0] for k in result.kept] == ["tampered.json"]
    written = json.loads((tmp_path / "mine.json").read_text())
    assert written["comparison_sha256"] == references.comparison_hash(config)
    assert (
        written["config"]["acnn"]["dropout"] == 0.35
        and written["config"]["features"]["normalisation"] == "none"
    )
    assert migration.migrate(tmp_path).replaced == {}  # idempotent


def test_the_shipped_references_and_results_are_in_the_current_form() -> None:
    """``serlib migrate`` was run on them: nothing is left in the old form."""
    root = Path(__file__).resolve().parents[1]
    for path in sorted((root / "serlib" / "references").glob("*.json")):
        text = path.read_text(encoding="utf-8")
        assert "dropout_keep_probability" not in text and '"normalisation": "standardise"' not in text, path
    for path in sorted((root / "results").glob("*/export.json")):
        assert json.loads(path.read_text())["sha256"] == rf.content_hash(path.parent), path
    demo = json.loads((root / "serlib" / "references" / "demo.json").read_text())
    assert demo["comparison_sha256"] == references.comparison_hash(config_module.load_preset("demo"))


def test_a_folder_of_no_known_kind_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(migration.MigrationError, match="nothing to migrate"):
        migration.migrate(tmp_path)
