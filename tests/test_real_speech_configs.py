"""The real-speech configurations of issue 15 validate and keep the protocol they promise, and a tiny
nEMO configuration runs end to end on the real nEMO files (slow; skipped without ``SERLIB_DATA/nemo``).

configs/emodb.yaml has its own checks in tests/test_emodb_validation.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import pandas as pd
import pytest

from serlib.base import config as config_module
from serlib.evidence import sensitivity, summaries, svm_tables, table1
from serlib.protocol import svm

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.fixture(autouse=True)
def _data_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The configurations name ${SERLIB_DATA}; loading them needs the variable, not the data."""
    if "SERLIB_DATA" not in os.environ:
        monkeypatch.setenv("SERLIB_DATA", str(tmp_path / "data"))


def test_nemo_config_is_leave_one_speaker_out_with_bl_c_u_and_the_svm() -> None:
    config = config_module.load(CONFIGS / "nemo.yaml")
    assert config.protocol.within_corpus == "nemo" and config.protocol.folds is None  # all 9 speakers
    assert config.protocol.cross_corpus_train is None and config.protocol.cross_corpus_test is None
    assert {c.name: c.autoencoder_corpus for c in config.protocol.conditions} == {
        "BL": "none",
        "C": "target",
        "U": "other_speech",
    }
    assert len(config.protocol.seeds) >= 5 and config.protocol.egemaps_svm
    # C's AE hears all 4,481 files (labels unused); U's AE hears no Polish
    assert config.corpora["nemo"].options["all_labels"] is True
    assert config.corpora["other_speech"].options["parts"] == ["librispeech", "emodb_all", "ravdess_all"]
    assert all(
        config.corpora[part].type != "nemo" for part in config.corpora["other_speech"].options["parts"]
    )
    # lengths chosen from nEMO's durations (97.8 % of files at most 4.0 s), not Emo-DB's 2.0 s
    assert config.features.logmel.max_frames == 400
    assert config.features.spectrogram.fixed_length_s == 4.0
    # the paper's architecture is kept (the batch order is that of the stored runs: test below)
    paper = config_module.load_preset("paper")
    kept = {"epochs", "shuffle"}
    assert config.acnn.model_dump(exclude=kept) == paper.acnn.model_dump(exclude=kept)
    assert (config.autoencoder.layers, config.autoencoder.units) == (2, 256)


def test_cross_corpus_config_reuses_the_nemo_cache_and_its_other_speech_autoencoder() -> None:
    nemo = config_module.load(CONFIGS / "nemo.yaml")
    matrix = config_module.load(CONFIGS / "cross-corpus.yaml")
    assert matrix.protocol.cross_corpus_matrix == ["emodb", "ravdess", "nemo"]
    assert {c.name: c.autoencoder_corpus for c in matrix.protocol.conditions} == {
        "BL": "none",
        "U": "other_speech",
    }
    assert matrix.protocol.egemaps_svm
    # the same cache folder, corpus definitions, features, AE parameters and seed give the same store
    # keys and the same AE folder, so nothing of nEMO's is recomputed (serlib.features.store,
    # serlib.models.autoencoder.training)
    assert matrix.cache_path == nemo.cache_path
    for key in ("nemo", "other_speech", "librispeech", "emodb_all", "ravdess_all"):
        assert matrix.corpora[key] == nemo.corpora[key], key
    assert matrix.features == nemo.features and matrix.audio == nemo.audio
    assert matrix.autoencoder == nemo.autoencoder and matrix.seed == nemo.seed
    assert matrix.acnn == nemo.acnn


def test_descriptor_matrix_differs_from_the_cross_corpus_matrix_only_in_the_acnn_input() -> None:
    matrix = config_module.load(CONFIGS / "cross-corpus.yaml")
    descriptors = config_module.load(CONFIGS / "cross-corpus-egemaps-lld.yaml")
    assert descriptors.features.acnn_input == "egemaps_lld" and matrix.features.acnn_input == "logmel"
    assert descriptors.features.logmel == matrix.features.logmel  # frames; no AE, so no spectrogram
    assert descriptors.protocol.cross_corpus_matrix == matrix.protocol.cross_corpus_matrix
    for key in descriptors.protocol.cross_corpus_matrix:
        assert descriptors.corpora[key] == matrix.corpora[key], key
    assert descriptors.acnn == matrix.acnn and descriptors.audio == matrix.audio
    assert descriptors.protocol.seeds == matrix.protocol.seeds
    assert [c.name for c in descriptors.protocol.conditions] == ["BL"]
    assert descriptors.output_dir != matrix.output_dir and descriptors.cache_path == matrix.cache_path


def test_sensitivity_plan_changes_one_reading_per_variant() -> None:
    reference, variants, output = sensitivity.load_plan(CONFIGS / "nemo-sensitivity.yaml")
    assert output == Path("runs/nemo-sensitivity")
    assert [c.name for c in reference.protocol.conditions] == ["BL"]
    # nemo.yaml draws Figure 2 for U, which the plan does not run: BL takes its place (a run would refuse
    # an unknown condition)
    assert reference.protocol.figure2_condition == "BL"
    assert set(variants) == {"dropout-rate-0.8", "pool-stride-30", "no-standardisation", "early-stopping"}
    base = reference.acnn.model_dump() | {"normalisation": reference.features.normalisation}
    for name, changes in variants.items():
        changed_config = config_module.override(reference, **changes)
        variant = changed_config.acnn.model_dump() | {"normalisation": changed_config.features.normalisation}
        changed = {key for key in base if base[key] != variant[key]}
        named = {key.split(".")[-1] for key in changes}
        assert changed and changed <= named, name  # nothing outside the variant's own reading moves
    # today's readings are the paper preset's
    paper = config_module.load_preset("paper").acnn
    assert (paper.dropout, paper.pool_stride) == (0.2, 3)
    assert config_module.load_preset("paper").features.normalisation == "train"
    assert paper.model_selection == "none"


def test_two_seed_sensitivity_repeats_two_readings_exactly() -> None:
    """The two-seed plan measures two readings of the seed-0 plan again, changed the same way, with
    seed 0 and a second seed, so that the seed-0 runs count as finished in it."""
    first_reference, first, _ = sensitivity.load_plan(CONFIGS / "nemo-sensitivity.yaml")
    reference, variants, output = sensitivity.load_plan(CONFIGS / "nemo-sensitivity-two-seeds.yaml")
    assert output == Path("runs/nemo-sensitivity-two-seeds") and reference.protocol.seeds == [0, 3]
    assert variants == {name: first[name] for name in ("dropout-rate-0.8", "early-stopping")}
    assert reference.model_dump(exclude={"protocol"}) == first_reference.model_dump(exclude={"protocol"})
    assert [c.name for c in reference.protocol.conditions] == ["BL"]


def test_real_speech_configs_keep_the_batch_order_of_their_stored_runs() -> None:
    """Their stored results were trained with one order repeated every epoch (acnn.shuffle: once); the
    batch-order plan changes that one reading on nEMO's BL and U and reuses the stored reference runs."""
    for name in ("nemo", "emodb", "cross-corpus", "cross-corpus-egemaps-lld"):
        assert config_module.load(CONFIGS / f"{name}.yaml").acnn.shuffle == "once", name
    reference, variants, output = sensitivity.load_plan(CONFIGS / "nemo-batch-order.yaml")
    assert output == Path("runs/nemo-batch-order") and reference.protocol.seeds == [3, 4]
    assert [c.name for c in reference.protocol.conditions] == ["BL", "U"]
    assert variants == {"shuffle-every-epoch": {"acnn.shuffle": "every_epoch"}}
    assert reference.output_dir == config_module.load(CONFIGS / "nemo.yaml").output_dir  # reused runs


def _nemo_subset(source: Path, target: Path, speakers: int, per_emotion: int) -> Path:
    """A nEMO tree with the first ``speakers`` speakers and ``per_emotion`` files of each of their six
    emotions, the audio linked to the real files (data.tsv keeps nEMO's own layout)."""
    table = pd.read_csv(source / "data.tsv", sep="\t", dtype=str, keep_default_na=False)
    chosen = sorted(table["speaker_id"].unique())[:speakers]
    table = table[table["speaker_id"].isin(chosen)].groupby(["speaker_id", "emotion"]).head(per_emotion)
    (target / "samples").mkdir(parents=True)
    for name in table["file_id"]:
        (target / "samples" / name).symlink_to(source / "samples" / name)
    table.to_csv(target / "data.tsv", sep="\t", index=False)
    return target


@pytest.mark.slow
def test_tiny_nemo_configuration_end_to_end(shared_data: Path, tmp_path: Path) -> None:
    if not (shared_data / "nemo" / "data.tsv").is_file():
        pytest.skip(f"no nEMO in {shared_data} (SERLIB_DATA)")
    # 3 speakers x 6 emotions x 4 files (72): each fold tests one speaker's 4 x 4 four-class files
    per_emotion = 4
    root = _nemo_subset(shared_data / "nemo", tmp_path / "nemo", speakers=3, per_emotion=per_emotion)
    config = config_module.load(CONFIGS / "nemo.yaml")
    corpora = config.model_dump(mode="json")["corpora"]
    corpora["nemo"]["root"] = str(root)
    config = config_module.override(
        config,
        **{
            "output_dir": str(tmp_path / "run"),
            "figures_dir": str(tmp_path / "run" / "figures"),
            "corpora": {"nemo": corpora["nemo"]},
            "features.n_jobs": 1,
            "features.spectrogram.mel_bands": 32,
            "autoencoder.layers": 1,
            "autoencoder.units": 16,
            "autoencoder.epochs": 1,
            "acnn.filters": 16,
            "acnn.epochs": 3,
            "protocol.seeds": [0],
            "protocol.folds": [1, 2],
            "protocol.n_jobs": 1,
            "protocol.conditions": [
                {"name": "BL", "autoencoder_corpus": "none"},
                {"name": "C", "autoencoder_corpus": "target"},
            ],
            "protocol.figure2_condition": "C",
        },
    )
    summaries.evaluate(config, progress=False)
    svm.run_baseline(config)
    out = config.output_path
    protocol = json.loads((out / "results" / "protocol.json").read_text(encoding="utf-8"))
    assert protocol["settings"]["within"]["folds"] == [1, 2]
    runs = pd.read_csv(out / "runs.csv")
    assert sorted(set(runs["condition"])) == ["BL", "C"] and len(runs) == 4
    for folder in (out / "results" / "within").glob("*/seed0/fold*"):
        predictions = pd.read_csv(folder / "predictions.csv")
        # leave-one-speaker-out: each fold tests exactly one speaker's 4-class files (per_emotion each)
        assert len(predictions) == 4 * per_emotion
        assert set(predictions["true"]) <= {"angry", "happy", "neutral", "sad"}
    table = table1.render_table(out)
    assert "| BL |" in table and "| C |" in table
    with_svm = svm_tables.table_with_baseline(out)
    assert "eGeMAPS" in with_svm and (out / "table1_with_svm.md").is_file()
    # C's AE learnt from all six emotions of the three speakers (labels unused): 3 x 6 x per_emotion files
    (spectrograms,) = (config.cache_path / "features").glob("nemo-spectrogram-*.h5")
    with h5py.File(spectrograms, "r") as handle:
        assert len(handle["ids"]) == 3 * 6 * per_emotion


def test_ased_matrix_reuses_the_ased_cache_and_the_development_pair_s_normalisation() -> None:
    """configs/cross-corpus-ased.yaml joins ASED to the matrix with ASED's stores and U autoencoder
    (same cache, corpus keys, lengths and AE), and its header runs only the normalisation chosen on the
    development pair of configs/cross-corpus.yaml (speaker), not a re-chosen one."""
    from serlib.evidence import matrix

    ased = config_module.load(CONFIGS / "ased.yaml")
    joined = config_module.load(CONFIGS / "cross-corpus-ased.yaml")
    assert joined.cache_path == ased.cache_path
    for key in ("ased", "other_speech", "librispeech", "nemo_all", "emodb_all", "ravdess_all"):
        assert joined.corpora[key] == ased.corpora[key], key
    assert joined.features.logmel == ased.features.logmel
    assert joined.features.spectrogram == ased.features.spectrogram
    assert joined.autoencoder == ased.autoencoder and joined.seed == ased.seed and joined.audio == ased.audio
    assert joined.acnn == ased.acnn
    assert {c.name: c.autoencoder_corpus for c in joined.protocol.conditions} == {
        "BL": "none",
        "U": "other_speech",
    }
    assert joined.protocol.egemaps_svm
    cells = matrix.pairs(joined, involving="ased")
    assert len(cells) == 6 and all("ased" in cell for cell in cells)
    assert ("emodb", "ravdess") not in cells and ("ased", "nemo") in cells and ("nemo", "ased") in cells
    header = (CONFIGS / "cross-corpus-ased.yaml").read_text()
    declared = (CONFIGS / "cross-corpus.yaml").read_text()
    assert "development pair: Emo-DB -> RAVDESS" in declared
    assert "--normalisation speaker" in header and "--normalisation train" not in header


def test_matrix_pairs_with_one_corpus_runs_only_its_pairs_and_refuses_others(monkeypatch, capsys) -> None:
    """``serlib matrix --pairs-with ased`` runs the pairs that train or test on ASED; a corpus outside
    protocol.cross_corpus_matrix is refused by name."""
    from serlib.app import cli
    from serlib.evidence import matrix

    seen = []

    def fake_run_matrix(config, normalisations, involving=None):
        seen.append(matrix.pairs(config, involving))
        return matrix.collect_matrix(config, normalisations)

    monkeypatch.setattr(matrix, "run_matrix", fake_run_matrix)
    monkeypatch.setenv("SERLIB_DATA", "/nonexistent")
    argv = ["matrix", "--config", str(CONFIGS / "cross-corpus-ased.yaml"), "--normalisation", "speaker"]
    assert cli.main([*argv, "--pairs-with", "ravdess"]) == 0
    assert sorted(seen[0]) == [
        ("ased", "ravdess"),
        ("emodb", "ravdess"),
        ("nemo", "ravdess"),
        ("ravdess", "ased"),
        ("ravdess", "emodb"),
        ("ravdess", "nemo"),
    ]
    assert cli.main([*argv, "--pairs-with", "iemocap"]) == 2
    assert "--pairs-with iemocap is not in protocol.cross_corpus_matrix" in capsys.readouterr().err
    assert len(seen) == 1


def test_matrix_command_runs_a_sub_matrix_of_the_configured_corpora(monkeypatch, capsys) -> None:
    """``serlib matrix --corpus emodb --corpus ravdess`` runs those two corpora's pairs only (the same
    cell folders as the full matrix); a corpus outside the configured list is refused by name."""
    from serlib.app import cli
    from serlib.evidence import matrix

    seen = []

    def fake_run_matrix(config, normalisations, involving=None):
        seen.append((list(config.protocol.cross_corpus_matrix), list(normalisations)))
        return matrix.collect_matrix(config, normalisations)

    monkeypatch.setattr(matrix, "run_matrix", fake_run_matrix)
    monkeypatch.setenv("SERLIB_DATA", "/nonexistent")
    argv = ["matrix", "--config", str(CONFIGS / "cross-corpus.yaml"), "--normalisation", "corpus"]
    assert cli.main([*argv, "--corpus", "emodb", "--corpus", "ravdess"]) == 0
    assert seen == [(["emodb", "ravdess"], ["corpus"])]
    assert cli.main([*argv, "--corpus", "iemocap"]) == 2
    assert (
        "--corpus iemocap is not in protocol.cross_corpus_matrix (emodb, ravdess, nemo)"
        in capsys.readouterr().err
    )
    assert len(seen) == 1


def test_evaluate_runs_a_subset_of_the_seeds_and_conditions(monkeypatch, capsys) -> None:
    """``serlib evaluate --seed 0 --condition BL --condition U`` runs that part of the configured grid
    (finished runs are reused by the full grid later); names outside the configuration are refused."""
    from serlib.app import cli
    from serlib.base import provenance
    from serlib.evidence import table1

    seen = []
    monkeypatch.setattr(summaries, "evaluate", lambda config: seen.append(config))
    monkeypatch.setattr(provenance, "record", lambda *args, **kwargs: None)
    monkeypatch.setattr(table1, "written_table", lambda folder: "")
    monkeypatch.setenv("SERLIB_DATA", "/nonexistent")
    argv = ["evaluate", "--config", str(CONFIGS / "nemo.yaml")]
    assert cli.main([*argv, "--seed", "0", "--condition", "BL", "--condition", "U"]) == 0
    (config,) = seen
    assert config.protocol.seeds == [0]
    assert [c.name for c in config.protocol.conditions] == ["BL", "U"]
    assert config.protocol.figure2_condition == "U"
    assert cli.main([*argv, "--seed", "7"]) == 2
    assert "--seed 7 is not in protocol.seeds (0, 1, 2, 3, 4)" in capsys.readouterr().err
    assert cli.main([*argv, "--condition", "fT"]) == 2
    assert "--condition fT is not in protocol.conditions (BL, C, U)" in capsys.readouterr().err
    assert len(seen) == 1


def test_ravdess_within_grid_reuses_the_emodb_cache_and_its_u4h_autoencoder() -> None:
    """configs/ravdess.yaml adds RAVDESS 01-08 to the pooled estimate: BL against U4h, whose AE (nEMO +
    LibriSpeech) never heard RAVDESS, found in Emo-DB's cache because every key it depends on is Emo-DB's."""
    emodb = config_module.load(CONFIGS / "emodb.yaml")
    ravdess = config_module.load(CONFIGS / "ravdess.yaml")
    assert ravdess.protocol.within_corpus == "ravdess" and ravdess.protocol.cross_corpus_test is None
    assert {c.name: c.autoencoder_corpus for c in ravdess.protocol.conditions} == {
        "BL": "none",
        "U4h": "unlabeled_4h",
    }
    assert Path(str(ravdess.cache_dir)) == Path(str(emodb.output_dir)) / "cache"
    for key in ("ravdess", "librispeech", "nemo_all", "unlabeled_4h"):
        assert ravdess.corpora[key] == emodb.corpora[key], key
    parts = ravdess.corpora["unlabeled_4h"].options["parts"]
    assert all(ravdess.corpora[part].type != "ravdess" for part in parts)
    assert ravdess.features == emodb.features and ravdess.audio == emodb.audio
    assert ravdess.autoencoder == emodb.autoencoder and ravdess.acnn == emodb.acnn
    assert len(ravdess.protocol.seeds) == 10
