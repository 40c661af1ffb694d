"""ASED (issue 36): the loader on a fixture tree in ASED's layout (small Ogg/Opus files written here, one
of them corrupt), the sentence filter, the gender-balanced speaker groups, the lexically fair score
(no `specific` file is ever in a `common` score), the configuration, and a tiny ASED configuration end
to end on the real files (slow; skipped without ``SERLIB_DATA/ased``).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from serlib.base import config as config_module
from serlib.data import loaders
from serlib.data.corpora import ased as ased_module
from serlib.data.manifest import EMOTIONS, CorpusError
from serlib.evidence import subsets
from serlib.features import store
from serlib.protocol import labeled, run_files
from serlib.protocol.labeled import LabeledData

CONFIGS = Path(__file__).resolve().parents[1] / "configs"

HEADER = "file\temotion\tspeaker\tgender\tsentence\trepetition\tsentence_type\tduration_s\n"
CODES = {"neutral": "n1", "happy": "h3", "sad": "s4", "angry": "a5"}
# speaker -> gender: 3 F and 5 M, as one of ASED's groups
SPEAKERS = {"S01": "F", "S03": "F", "S05": "F", "S02": "M", "S04": "M", "S06": "M", "S08": "M", "S10": "M"}
CORRUPT = "a5-01-01-02-10.ogg"


def _name(emotion: str, sentence: int, repetition: int, speaker: str) -> str:
    gender = "01" if SPEAKERS[speaker] == "F" else "02"
    return f"{CODES[emotion]}-{sentence:02d}-{repetition:02d}-{gender}-{speaker[1:]}.ogg"


@pytest.fixture(scope="module")
def ased_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 speakers; each speaks common sentence 01 in every emotion and one specific sentence per emotion
    (03 neutral, 04 happy, 05 sad, 06 angry); S10's angry common file is corrupt bytes."""
    root = tmp_path_factory.mktemp("ased")
    (root / "samples").mkdir()
    specific = {"neutral": 3, "happy": 4, "sad": 5, "angry": 6}
    lines = [HEADER]
    rng = np.random.default_rng(0)
    for speaker, gender in SPEAKERS.items():
        for emotion in EMOTIONS:
            for sentence in (1, specific[emotion]):
                name = _name(emotion, sentence, 1, speaker)
                kind = "common" if sentence <= 2 else "specific"
                lines.append(f"{name}\t{emotion}\t{speaker}\t{gender}\t{sentence:02d}\t01\t{kind}\t0.3\n")
                if name == CORRUPT:
                    (root / "samples" / name).write_bytes(b"OggS" + rng.bytes(300))
                    continue
                tone = 0.2 * np.sin(2 * np.pi * (150 + 40 * sentence) * np.arange(4800) / 16000)
                noise = 0.01 * rng.standard_normal(4800)
                sf.write(
                    root / "samples" / name, (tone + noise).astype(np.float32), 16000, "OPUS", format="OGG"
                )
    (root / "data.tsv").write_text("".join(lines), encoding="utf-8")
    return root


def test_loader_reads_the_table_into_a_manifest(ased_root: Path) -> None:
    manifest = loaders.load("ased", ased_root, groups=2)
    assert len(manifest) == 8 * 4 * 2
    assert set(manifest["corpus"]) == {"ased"} and set(manifest["emotion"]) == set(EMOTIONS)
    row = manifest.set_index("utterance_id").loc["h3-04-01-01-03"]
    assert (row["speaker"], row["gender"], row["emotion"]) == ("S03", "female", "happy")
    assert (row["sentence"], row["repetition"], row["sentence_type"], row["subset"]) == (
        "04",
        "01",
        "specific",
        "specific",
    )
    assert row["path"] == str(ased_root / "samples" / "h3-04-01-01-03.ogg")
    assert (row["arousal_class"], row["valence_class"]) == ("high", "high")
    common = manifest[manifest["sentence"] == "01"]
    assert set(common["sentence_type"]) == {"common"} and (common["subset"] == "common").all()


def test_sentence_filter_keeps_only_that_type_and_keeps_the_groups(ased_root: Path) -> None:
    everything = loaders.load("ased", ased_root, groups=2).set_index("utterance_id")
    for kind in ("common", "specific"):
        part = loaders.load("ased", ased_root, sentences=kind, groups=2).set_index("utterance_id")
        assert len(part) == 32 and set(part["sentence_type"]) == {kind} and set(part["subset"]) == {kind}
        # the filter moves no speaker to another group
        assert (part["session"] == everything.loc[part.index, "session"]).all()
    with pytest.raises(CorpusError, match="sentences='fixed'.*all, common, specific"):
        loaders.load("ased", ased_root, sentences="fixed")


def test_speaker_groups_balance_gender_and_hold_every_speaker_once() -> None:
    # ASED's 25 F + 39 M with its speaker numbers
    genders = {f"S{k:02d}": ("female" if k <= 25 else "male") for k in range(1, 66) if k != 40}
    groups = ased_module.speaker_groups(genders, 8)
    assert set(groups) == set(genders)  # every speaker in exactly one group (a dict: one value each)
    members = pd.Series(groups).groupby(pd.Series(groups)).size()
    assert members.tolist() == [8] * 8
    females = pd.Series({s: genders[s] == "female" for s in genders}).groupby(pd.Series(groups)).sum()
    assert females.min() >= 3 and females.max() <= 4 and females.sum() == 25
    # deterministic and independent of the order the speakers are given in
    assert ased_module.speaker_groups(dict(reversed(list(genders.items()))), 8) == groups
    with pytest.raises(CorpusError, match="cannot fill"):
        ased_module.speaker_groups({"S01": "female", "S02": "male"}, 8)


def test_fixture_groups_are_leave_one_group_out_folds(ased_root: Path) -> None:
    manifest = loaders.load("ased", ased_root, groups=2)
    by_speaker = manifest.groupby("speaker")["session"].nunique()
    assert (by_speaker == 1).all()  # a speaker's files never straddle two folds
    speakers = manifest.drop_duplicates("speaker")
    assert speakers.groupby("session")["gender"].value_counts().unstack().to_dict() == {
        "female": {"1": 2, "2": 1},
        "male": {"1": 2, "2": 3},
    }
    chosen = loaders.load("ased", ased_root, groups=2, speakers=["S01", "S02", "S03", "S04"])
    assert sorted(set(chosen["speaker"])) == ["S01", "S02", "S03", "S04"]
    with pytest.raises(CorpusError, match="S99"):
        loaders.load("ased", ased_root, groups=2, speakers=["S01", "S99"])


def test_bad_tables_and_missing_audio_name_the_file(ased_root: Path, tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="no data.tsv"):
        loaders.load("ased", tmp_path)
    (tmp_path / "samples").mkdir()
    rows = (ased_root / "data.tsv").read_text(encoding="utf-8").splitlines(keepends=True)
    fields = rows[1].split("\t")
    fields[1] = "fearful"
    (tmp_path / "data.tsv").write_text(rows[0] + "\t".join(fields) + "".join(rows[2:]), encoding="utf-8")
    with pytest.raises(CorpusError, match=r"data.tsv:2: emotion 'fearful'"):
        loaders.load("ased", tmp_path, groups=2)
    (tmp_path / "data.tsv").write_text("".join(rows), encoding="utf-8")
    with pytest.raises(CorpusError, match="64 utterances have no audio file.*samples/<file>"):
        loaders.load("ased", tmp_path, groups=2)


def _fixture_config(root: Path, output: Path, allow_skip: bool) -> config_module.Config:
    config = config_module.load(CONFIGS / "ased.yaml")
    return config_module.override(
        config,
        **{
            "output_dir": str(output),
            "corpora": {"ased": {"type": "ased", "root": str(root), "options": {"groups": 2}}},
            "features.n_jobs": 1,
            "features.allow_skip": allow_skip,
            "protocol.conditions": [{"name": "BL", "autoencoder_corpus": "none"}],
            "protocol.figure2_condition": "BL",
        },
    )


def test_a_corrupt_ogg_is_an_error_naming_it_or_a_counted_skip(
    ased_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    manifest = loaders.load("ased", ased_root, groups=2)
    with pytest.raises(store.StoreError) as error:
        store.extract_manifest(
            manifest, "logmel", _fixture_config(ased_root, tmp_path / "a", False), progress=False
        )
    assert CORRUPT in str(error.value) and "allow_skip" in str(error.value)
    config = _fixture_config(ased_root, tmp_path / "b", True)
    with caplog.at_level(logging.WARNING):
        stored = store.extract_manifest(manifest, "logmel", config, progress=False)
    assert [item[0] for item in stored.skipped] == [Path(CORRUPT).stem]
    assert len(stored.ids) == len(manifest) - 1
    assert "skipped 1 unreadable utterances" in caplog.text
    data = labeled.load_labeled(config, "ased")  # the protocol's data: the skipped file left out
    assert len(data) == len(manifest) - 1 and Path(CORRUPT).stem not in set(data.ids)
    assert data.score_subset is not None and set(data.score_subset) == {"common", "specific"}
    part = data.subset(np.flatnonzero(data.score_subset == "common"))  # a fold's rows keep their subset
    assert part.score_subset is not None and set(part.score_subset) == {"common"} and len(part) == 31


def _labeled(subset: np.ndarray | None, emotion: np.ndarray, speaker: np.ndarray) -> LabeledData:
    n = len(emotion)
    return LabeledData(
        ids=np.asarray([f"u{i}" for i in range(n)]),
        logmel=np.zeros((n, 4, 2), np.float32),
        lengths=np.full(n, 4, np.int32),
        emotion=emotion,
        arousal=np.full(n, -1, np.int32),
        valence=np.full(n, -1, np.int32),
        session=np.full(n, "1"),
        speaker=speaker,
        score_subset=subset,
    )


def test_fair_score_never_counts_a_specific_file(tmp_path: Path) -> None:
    """A run whose predictions are right on every `specific` file and wrong on every `common` one scores
    100 % on specific, 0 % on common, in metrics.json and per speaker."""
    emotion = np.asarray([0, 1, 2, 3] * 4, np.int32)
    subset = np.asarray(["common"] * 8 + ["specific"] * 8)
    speaker = np.asarray(["S01", "S02"] * 8)
    correct = np.eye(4, dtype=np.float32)[emotion]
    wrong = np.eye(4, dtype=np.float32)[(emotion + 1) % 4]
    probabilities = np.where((subset == "specific")[:, None], correct, wrong)
    three = np.full((16, 3), 1 / 3, np.float32)
    trained = run_files.TrainedRun(
        model=None,
        probabilities={"emotion": probabilities, "arousal": three, "valence": three},
        hidden=np.zeros((16, 2), np.float32),
        attention=np.zeros((16, 3), np.float32),
        history={"loss": [1.0]},
        seconds=0.0,
        band_statistics=None,
    )
    folder = tmp_path / "run"
    common = {"setting": "within", "condition": "BL", "seed": 0, "fold": 1, "n_train": 1}
    result = run_files.write_run(folder, trained, _labeled(subset, emotion, speaker), **common)
    assert result["uar"] == pytest.approx(0.5)
    assert result["subset_uar"] == {"common": 0.0, "specific": 1.0}
    assert result["subset_n"] == {"common": 8, "specific": 8}
    predictions = pd.read_csv(folder / "predictions.csv")
    assert list(predictions.columns[-2:]) == ["speaker", "subset"]
    scores = subsets.run_speaker_scores(predictions).set_index(["speaker", "score"])
    assert scores.loc[("S01", "common"), "uar"] == 0.0 and scores.loc[("S01", "specific"), "uar"] == 1.0
    assert scores.loc[("S01", "all"), "n"] == 8 and scores.loc[("S02", "common"), "n"] == 4
    # a speaker lacking classes is scored over the classes present (S01 has angry and neutral only)
    assert scores.loc[("S01", "all"), "classes"] == 2
    # without a subset the predictions keep their columns and metrics.json has no subset score
    plain = run_files.write_run(tmp_path / "plain", trained, _labeled(None, emotion, speaker), **common)
    assert "subset_uar" not in plain
    assert list(pd.read_csv(tmp_path / "plain" / "predictions.csv").columns) == list(
        run_files.PREDICTION_COLUMNS
    )
    with pytest.raises(ValueError, match="no scoring subset"):
        subsets.run_speaker_scores(pd.read_csv(tmp_path / "plain" / "predictions.csv"))


@pytest.fixture
def _data_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    if "SERLIB_DATA" not in os.environ:
        monkeypatch.setenv("SERLIB_DATA", str(tmp_path / "data"))


@pytest.mark.usefixtures("_data_root")
def test_ased_config_declares_speaker_independent_folds_and_the_conditions() -> None:
    config = config_module.load(CONFIGS / "ased.yaml")
    assert config.protocol.within_corpus == "ased" and config.protocol.folds is None
    assert config.corpora["ased"].type == "ased"
    assert config.corpora["ased"].options == {"sentences": "all", "groups": 8}  # trained on all sentences
    assert {c.name: c.autoencoder_corpus for c in config.protocol.conditions} == {
        "BL": "none",
        "C": "target",
        "U": "other_speech",
    }
    parts = config.corpora["other_speech"].options["parts"]
    assert parts == ["librispeech", "nemo_all", "emodb_all", "ravdess_all"]
    assert all(config.corpora[p].type != "ased" for p in parts)  # U's AE hears no Amharic
    assert len(config.protocol.seeds) >= 5 and config.protocol.egemaps_svm
    # lengths from ASED's durations (2.0-3.7 s): every file whole
    assert config.features.logmel.max_frames == 370 and config.features.spectrogram.fixed_length_s == 3.7
    text = (CONFIGS / "ased.yaml").read_text(encoding="utf-8")
    for declared in ("Primary:  U vs BL on the `common`-sentence score", "Holm", "MDD", "classes PRESENT"):
        assert declared in text


@pytest.mark.slow
def test_tiny_ased_configuration_end_to_end(shared_data: Path, tmp_path: Path) -> None:
    if not (shared_data / "ased" / "data.tsv").is_file():
        pytest.skip(f"no ASED in {shared_data} (SERLIB_DATA)")
    from serlib.evidence import summaries  # noqa: PLC0415 - TensorFlow only for this slow test
    from serlib.protocol import svm  # noqa: PLC0415

    config = config_module.load(CONFIGS / "ased.yaml")
    corpora = config.model_dump(mode="json")["corpora"]
    # 6 small speakers (3 F, 3 M: 107 files, all with common sentences, S21 also with specific ones)
    # in 3 groups of one F and one M; the ACNN and the SVM (C tuned over 2 groups) test folds 1 and 3
    speakers = ["S02", "S03", "S07", "S08", "S14", "S21"]
    corpora["ased"]["options"] = {"groups": 3, "speakers": speakers}
    config = config_module.override(
        config,
        **{
            "output_dir": str(tmp_path / "run"),
            "figures_dir": str(tmp_path / "run" / "figures"),
            "corpora": {"ased": corpora["ased"]},
            "features.n_jobs": 1,
            "features.spectrogram.mel_bands": 32,
            "autoencoder.layers": 1,
            "autoencoder.units": 16,
            "autoencoder.epochs": 1,
            "acnn.filters": 16,
            "acnn.epochs": 2,
            "protocol.seeds": [0],
            "protocol.folds": [1, 3],
            "protocol.n_jobs": 1,
            "protocol.conditions": [
                {"name": "BL", "autoencoder_corpus": "none"},
                {"name": "C", "autoencoder_corpus": "target"},
            ],
            "protocol.figure2_condition": "C",
        },
    )
    manifest = labeled.labeled_manifest(config, "ased")
    assert len(manifest) == 107 and manifest.groupby("session")["gender"].nunique().tolist() == [2, 2, 2]
    summaries.evaluate(config, progress=False)
    svm.run_baseline(config)
    out = config.output_path
    runs = pd.read_csv(out / "runs.csv")
    assert sorted(set(runs["condition"])) == ["BL", "C"] and len(runs) == 4
    for folder in sorted((out / "results" / "within").glob("*/seed0/fold*")):
        metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
        predictions = pd.read_csv(folder / "predictions.csv", dtype={"speaker": str})
        fold_speakers = set(manifest.loc[manifest["session"] == str(metrics["fold"]), "speaker"])
        assert set(predictions["speaker"]) == fold_speakers
        truth = manifest.set_index("utterance_id").loc[predictions["utterance_id"], "sentence_type"]
        assert (predictions["subset"].to_numpy() == truth.to_numpy()).all()
        assert metrics["subset_n"]["common"] == int((predictions["subset"] == "common").sum()) > 0
    subsets.write_speaker_scores(out)
    means = pd.read_csv(out / "speaker_means.csv", dtype={"speaker": str})
    assert set(means["condition"]) == {"BL", "C", "eGeMAPS-SVM"}
    assert set(means["score"]) == {"all", "common", "specific"}
    tested = set(manifest.loc[manifest["session"] != "2", "speaker"])  # folds 1 and 3
    for condition in ("BL", "C", "eGeMAPS-SVM"):
        assert set(means.loc[means["condition"] == condition, "speaker"]) == tested, condition
