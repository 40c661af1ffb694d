"""The protocol on a tiny synthetic corpus: folds, files per run, skipping, determinism, Table 1, Figure 2.

The corpus is a manifest CSV (no audio is read) whose log-Mel "features" are structured random arrays
served through a monkeypatched ``experiments.extract_features``; the AE condition reads a representation
file written by the test, so no autoencoder is trained.
"""

from __future__ import annotations

import json
import math
import shutil
import types
from pathlib import Path

import h5py
import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serlib.base import config as config_module
from serlib.base import metrics
from serlib.data import manifest as manifests
from serlib.data.manifest import EMOTIONS, LEVELS
from serlib.evidence import summaries, table1
from serlib.models.acnn import model as acnn
from serlib.protocol import conditions as conditions_module
from serlib.protocol import folds as folds_module
from serlib.protocol import grid, labeled, run_files
from serlib.protocol import runs as runs_module

FRAMES, BANDS = 60, 26
SESSIONS, PER_SPEAKER = 3, 16


def _manifest(path: Path, prefix: str, sessions: int, seed: int) -> pd.DataFrame:
    """Sessions of one female and one male speaker, each with every emotion equally often."""
    rng = np.random.default_rng(seed)
    rows = []
    for session in range(1, sessions + 1):
        for gender in ("F", "M"):
            for i in range(PER_SPEAKER):
                emotion = EMOTIONS[i % 4]
                arousal = {"angry": 4.5, "happy": 4.0, "neutral": 3.0, "sad": 1.5}[emotion]
                rows.append(
                    {
                        "utterance_id": f"{prefix}{session}{gender}_{i:03d}",
                        "corpus": prefix,
                        "path": f"{prefix}{session}{gender}_{i:03d}.wav",
                        "speaker": f"{prefix}{session}{gender}",
                        "session": str(session),
                        "gender": "female" if gender == "F" else "male",
                        "emotion": emotion,
                        "arousal": arousal,
                        "valence": "" if i == 5 else float(rng.uniform(1, 5)),  # one unrated utterance
                    }
                )
    pd.DataFrame(rows).to_csv(path, index=False)
    return manifests.read_manifest(path, check_files=False)


def _features(manifest: pd.DataFrame, seed: int) -> types.SimpleNamespace:
    """Zero-padded log-Mel-like arrays whose band profile depends on the emotion (separable classes)."""
    rng = np.random.default_rng(seed)
    n = len(manifest)
    lengths = rng.integers(35, FRAMES + 1, size=n).astype(np.int32)
    features = np.zeros((n, FRAMES, BANDS), dtype=np.float32)
    profiles = np.random.default_rng(100).normal(size=(4, BANDS)) * 2.0  # the same in every corpus
    for row, emotion in enumerate(manifest["emotion"]):
        frames = profiles[EMOTIONS.index(emotion)] + rng.normal(size=(lengths[row], BANDS))
        features[row, : lengths[row]] = frames - 20.0  # raw log energies: far from zero
    return types.SimpleNamespace(
        path=None, ids=manifest["utterance_id"].tolist(), features=features, lengths=lengths, skipped=[]
    )


def _config(tmp: Path, conditions: list[dict], cross: bool = True) -> config_module.Config:
    return config_module.from_dict(
        {
            "name": "synthetic",
            "output_dir": str(tmp / "out"),
            "figures_dir": str(tmp / "figures"),
            "corpora": {
                "synth": {
                    "type": "manifest",
                    "root": str(tmp / "synth.csv"),
                    "options": {"check_files": False},
                },
                "other": {
                    "type": "manifest",
                    "root": str(tmp / "other.csv"),
                    "options": {"check_files": False},
                },
            },
            "features": {"logmel": {"max_frames": FRAMES}},
            "acnn": {
                "filters": 8,
                "kernel_frames": 10,
                "conv_stride": 3,
                "pool_size": 5,
                "pool_stride": 3,
                "epochs": 6,
                "batch_size": 32,
                "learning_rate": 0.02,
            },
            "protocol": {
                "within_corpus": "synth",
                "cross_corpus_train": "synth" if cross else None,
                "cross_corpus_test": "other" if cross else None,
                "seeds": [0, 1],
                "folds": [1, 2],
                "conditions": conditions,
            },
        }
    )


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """Corpora, feature sets and a fake AE representation file, with extract_logmel patched."""
    tmp = tmp_path_factory.mktemp("protocol")
    synth = _manifest(tmp / "synth.csv", "S", SESSIONS, seed=1)
    other = _manifest(tmp / "other.csv", "O", 1, seed=2)
    feature_sets = {"synth": _features(synth, seed=3), "other": _features(other, seed=3)}
    for key, feature_set in feature_sets.items():
        feature_set.path = tmp / f"{key}.h5"
        feature_set.path.write_bytes(b"")
    representation = tmp / "representations.h5"
    rng = np.random.default_rng(4)
    ids = synth["utterance_id"].tolist() + other["utterance_id"].tolist()
    with h5py.File(representation, "w") as handle:
        handle.create_dataset("ids", data=np.asarray(ids, dtype=object), dtype=h5py.string_dtype("utf-8"))
        handle.create_dataset("vectors", data=np.tanh(rng.normal(size=(len(ids), 6))).astype(np.float32))
    patch = pytest.MonkeyPatch()
    patch.setattr(labeled, "extract_features", lambda config, key, extractor="logmel": feature_sets[key])

    def sources(config, setting, condition):
        train_key, test_key = conditions_module.corpora_of(config, setting)
        result = {"train_corpus": train_key, "test_corpus": test_key, "autoencoder_corpus": None}
        if condition.autoencoder_corpus != "none":
            result |= {
                "autoencoder_corpus": "synth",
                "autoencoder_model": "fake.keras",
                "train_representations": str(representation),
                "test_representations": str(representation),
            }
        return result

    patch.setattr(conditions_module, "prepare_sources", sources)
    yield types.SimpleNamespace(tmp=tmp, synth=synth, features=feature_sets)
    patch.undo()


CONDITIONS = [{"name": "BL", "autoencoder_corpus": "none"}, {"name": "C", "autoencoder_corpus": "target"}]


@pytest.fixture(scope="module")
def protocol_run(synthetic):
    """One full protocol run (within + cross, BL + C, 2 seeds, 2 folds = 12 ACNN trainings)."""
    config = _config(synthetic.tmp, CONDITIONS)
    table = summaries.evaluate(config, progress=False)
    return types.SimpleNamespace(config=config, table=table, out=Path(config.output_dir))


def test_session_folds_number_sessions_and_fall_back_to_sorted_positions():
    assert folds_module.session_folds(["3", "1", "2", "1"]).tolist() == [3, 1, 2, 1]
    assert folds_module.session_folds(["Ses02", "Ses01", "Ses10"]).tolist() == [2, 1, 3]


@settings(max_examples=25, deadline=None)
@given(
    sessions=st.integers(2, 6),
    speakers_per_session=st.integers(1, 3),
    utterances=st.integers(1, 4),
    data=st.data(),
)
def test_leave_one_session_out_never_shares_a_speaker(sessions, speakers_per_session, utterances, data):
    speakers, session_of = [], []
    for session in range(1, sessions + 1):
        for speaker in range(speakers_per_session):
            speakers += [f"{session}-{speaker}"] * utterances
            session_of += [str(session)] * utterances
    order = data.draw(st.permutations(range(len(speakers))))
    speakers = np.asarray(speakers)[list(order)]
    folds = folds_module.session_folds(np.asarray(session_of)[list(order)])
    for fold in range(1, sessions + 1):
        train, test = folds_module.fold_indices(folds, fold)
        assert set(speakers[train]).isdisjoint(speakers[test])
        assert len(train) + len(test) == len(speakers)
        assert set(folds[test]) == {fold}


def test_fold_indices_refuses_an_unknown_fold():
    with pytest.raises(labeled.ProtocolError, match="fold 7"):
        folds_module.fold_indices(np.asarray([1, 1, 2, 2]), 7)


def test_labeled_data_aligns_by_id_and_marks_unrated(synthetic):
    manifest = synthetic.synth
    features = synthetic.features["synth"]
    shuffled = np.random.default_rng(0).permutation(len(features.ids))
    data = labeled.labeled_data(
        manifest, [features.ids[i] for i in shuffled], features.features[shuffled], features.lengths[shuffled]
    )
    assert data.ids.tolist() == manifest["utterance_id"].tolist()
    np.testing.assert_array_equal(data.logmel, features.features)
    assert (data.valence == -1).sum() == (manifest["valence"].isna()).sum() > 0
    assert data.emotion.tolist() == [EMOTIONS.index(e) for e in manifest["emotion"]]
    with pytest.raises(labeled.ProtocolError, match="no log-Mel features"):
        labeled.labeled_data(manifest, features.ids[1:], features.features[1:], features.lengths[1:])


def test_protocol_writes_every_run_and_its_files(protocol_run, synthetic):
    out = protocol_run.out
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 2 * 2 * 2 + 2 * 2  # within: conditions x seeds x folds; cross: conditions x seeds
    folder = run_files.run_folder(out, "within", "C", 1, 2)
    predictions = pd.read_csv(folder / "predictions.csv")
    assert list(predictions.columns[:10]) == [
        "utterance_id", "fold", "seed", "condition", "true", "predicted", "p_angry", "p_happy", "p_neutral", "p_sad",
    ]  # fmt: skip
    test_ids = synthetic.synth.loc[synthetic.synth["session"] == "2", "utterance_id"]
    assert sorted(predictions["utterance_id"]) == sorted(test_ids)
    np.testing.assert_allclose(predictions[[f"p_{e}" for e in EMOTIONS]].sum(axis=1), 1.0, atol=1e-5)
    ids, hidden = run_files.read_hidden(folder / "hidden.h5")
    assert ids == predictions["utterance_id"].tolist()
    assert hidden.shape == (len(ids), 8 + 6)  # attention output (filters) + AE vector
    stored = json.loads((folder / "metrics.json").read_text())
    assert stored["uar"] == pytest.approx(
        np.mean([np.mean(g["predicted"] == g["true"]) for _, g in predictions.groupby("true")])
    )
    assert not (run_files.run_folder(out, "within", "BL", 0, 3)).exists()  # protocol.folds = [1, 2]


def test_baseline_scores_above_chance_on_separable_data(protocol_run):
    table = protocol_run.table.set_index("condition")
    assert table.loc["BL", "within_mean"] > 50.0  # 4 classes: chance is 25 %
    assert table.loc["BL", "cross_mean"] > 50.0


def test_table1_has_one_row_per_condition_and_consistent_summaries(protocol_run):
    out = protocol_run.out
    table = pd.read_csv(out / "table1.csv")
    assert table["condition"].tolist() == ["BL", "C"]
    runs = pd.read_csv(out / "runs.csv")
    within = runs[(runs["setting"] == "within") & (runs["condition"] == "C")]
    per_seed = within.groupby("seed")["uar"].mean() * 100
    row = table.set_index("condition").loc["C"]
    assert row["within_mean"] == pytest.approx(per_seed.mean(), abs=1e-3)
    assert row["within_min"] == pytest.approx(per_seed.min(), abs=1e-3)
    assert row["within_max"] == pytest.approx(per_seed.max(), abs=1e-3)
    assert row["within_seeds"] == 2 and row["within_folds"] == 2
    assert math.isnan(row["within_ci_low"]) and math.isnan(row["within_ci_high"])  # 2 seeds: no interval
    markdown = (out / "table1.md").read_text()
    assert "| C | within | 2 | 2 | n/a (2 seeds) |" in markdown
    main_table = markdown.split("\n\n")[1].splitlines()  # caption, table, supplementary note, table
    assert [line.split("|")[1].strip() for line in main_table[2:]] == ["BL", "C"]
    assert table1.render_table(out) == markdown


def test_figure2_is_written_as_png_and_pdf(protocol_run):
    for folder in (protocol_run.out / "figures", Path(protocol_run.config.figures_dir)):
        image = matplotlib.image.imread(folder / "figure2_confusion.png")
        assert image.std() > 0.01
        assert (folder / "figure2_confusion.pdf").stat().st_size > 1000
    matrices = pd.read_csv(protocol_run.out / "figures" / "figure2_confusion.csv")
    rows = matrices[list(EMOTIONS)].to_numpy()
    np.testing.assert_allclose(rows.sum(axis=1), 1.0, atol=1e-3)


def test_rerunning_a_finished_protocol_trains_nothing(protocol_run, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(runs_module, "fit_predict", refuse)
    before = (protocol_run.out / "table1.csv").read_text()
    table = summaries.evaluate(protocol_run.config, progress=False)
    assert table["condition"].tolist() == ["BL", "C"]
    assert (protocol_run.out / "table1.csv").read_text() == before


def test_same_seed_gives_identical_predictions(protocol_run):
    folder = run_files.run_folder(protocol_run.out, "within", "BL", 0, 1)
    first = (folder / "predictions.csv").read_text()
    (folder / "metrics.json").unlink()  # mark unfinished: the run is repeated
    runs_module.run_one(protocol_run.config, "within", "BL", 0, 1)
    assert (folder / "predictions.csv").read_text() == first


def test_changed_parameters_repeat_a_run(protocol_run):
    changed = config_module.override(protocol_run.config, **{"acnn.epochs": 1})
    key = run_files.RunKey("within", "BL", 0, 1)
    assert run_files.finished(protocol_run.config, key) is not None
    assert run_files.finished(changed, key) is None
    # a re-extracted corpus (another feature-store file) also repeats the run
    condition = protocol_run.config.condition("BL")
    other_audio = conditions_module.fingerprint(
        protocol_run.config, "within", condition, {"synth/logmel": "new.h5"}
    )
    assert run_files.finished(protocol_run.config, key, other_audio) is None


def test_cross_run_keeps_a_safe_model_that_reproduces_its_predictions(protocol_run, synthetic):

    folder = run_files.run_folder(protocol_run.out, "cross", "BL", 1, 0)
    model = acnn.load_acnn(folder / "model.keras")
    metadata = json.loads((folder / "model.json").read_text())
    assert metadata["classes"]["emotion"] == list(EMOTIONS)
    assert metadata["classes"]["arousal"] == list(LEVELS)
    assert metadata["logmel"]["max_frames"] == FRAMES
    # one key for the normalisation: the mode and the in-model band statistics (issue 43, item 4)
    assert "feature_normalisation" not in metadata
    assert metadata["normalisation"]["mode"] == protocol_run.config.features.normalisation
    assert (
        len(metadata["normalisation"]["band_statistics"]["mean"]) == protocol_run.config.features.logmel.bands
    )
    predictions = pd.read_csv(folder / "predictions.csv")
    features = synthetic.features["other"]
    order = [features.ids.index(u) for u in predictions["utterance_id"]]
    probabilities = model.predict({"logmel": features.features[order]}, verbose=0)[0]
    np.testing.assert_allclose(probabilities, predictions[[f"p_{e}" for e in EMOTIONS]], atol=1e-5)


# -- normalisation modes and model selection ---------------------------------------------------------
def _labeled_with(synthetic, mode: str, feature_sets=None, other_emotions=None):
    """(test corpus 'other', training corpus 'synth') as the protocol loads them under ``mode``."""
    config = config_module.override(_config(synthetic.tmp, CONDITIONS), **{"features.normalisation": mode})
    sets = feature_sets or synthetic.features
    original = labeled.labeled_manifest

    def relabelled(config, key):
        manifest = original(config, key).copy()
        if key == "other" and other_emotions is not None:
            manifest["emotion"] = other_emotions
        return manifest

    labeled._DATA_CACHE.clear()
    patch = pytest.MonkeyPatch()
    patch.setattr(labeled, "extract_features", lambda config, key, extractor="logmel": sets[key])
    patch.setattr(labeled, "labeled_manifest", relabelled)
    try:
        return labeled.load_labeled(config, "other"), labeled.load_labeled(config, "synth")
    finally:
        patch.undo()
        labeled._DATA_CACHE.clear()


@pytest.mark.parametrize("mode", ["corpus", "speaker"])
def test_corpus_and_speaker_normalisation_use_only_the_test_corpus_and_no_labels(synthetic, mode):
    test, _ = _labeled_with(synthetic, mode)
    groups = [None] if mode == "corpus" else sorted(set(test.speaker.tolist()))
    for group in groups:
        rows = np.flatnonzero(np.ones(len(test), bool) if group is None else test.speaker == group)
        real = np.concatenate([test.logmel[i, : test.lengths[i]] for i in rows])
        np.testing.assert_allclose(real.mean(axis=0), 0.0, atol=1e-4)
        np.testing.assert_allclose(real.std(axis=0), 1.0, atol=1e-3)
    for i in range(len(test)):
        assert (test.logmel[i, test.lengths[i] :] == 0).all()  # padding stays padding
    # another training corpus: the test corpus' normalised features do not change
    shifted = types.SimpleNamespace(**vars(synthetic.features["synth"]))
    shifted.features = synthetic.features["synth"].features * 3.0 + 7.0
    again, _ = _labeled_with(synthetic, mode, feature_sets=synthetic.features | {"synth": shifted})
    np.testing.assert_array_equal(again.logmel, test.logmel)
    # other labels (every emotion moved to the next class): the same features
    moved = [
        EMOTIONS[(EMOTIONS.index(e) + 1) % 4]
        for e in labeled.labeled_manifest(_config(synthetic.tmp, CONDITIONS), "other")["emotion"]
    ]
    relabelled, _ = _labeled_with(synthetic, mode, other_emotions=moved)
    np.testing.assert_array_equal(relabelled.logmel, test.logmel)
    assert not np.array_equal(relabelled.emotion, test.emotion)


def test_train_normalisation_leaves_the_features_to_the_model(synthetic):
    test, _ = _labeled_with(synthetic, "train")
    other = synthetic.features["other"]
    position = {u: i for i, u in enumerate(other.ids)}
    np.testing.assert_array_equal(test.logmel, other.features[[position[u] for u in test.ids]])


def test_development_session_follows_the_test_session(synthetic):
    config = _config(synthetic.tmp, CONDITIONS)
    data = labeled.load_labeled(config, "synth")
    folds = folds_module.session_folds(data.session)
    for fold, expected in ((1, "2"), (2, "3"), (3, "1")):
        train_index, test_index = folds_module.fold_indices(folds, fold)
        train, development = folds_module.development_split(data.subset(train_index), data.subset(test_index))
        assert set(development.session.tolist()) == {expected}
        assert expected not in set(train.session.tolist()) and str(fold) not in set(train.session.tolist())
    train, development = folds_module.development_split(data)  # cross-corpus: the last session
    assert set(development.session.tolist()) == {"3"} and len(train) + len(development) == len(data)


def test_held_out_session_keeps_the_best_development_epoch(synthetic):
    from serlib.models.acnn import model as acnn

    config = config_module.override(
        _config(synthetic.tmp, CONDITIONS),
        **{"acnn.model_selection": "held_out_session", "acnn.patience": 3, "acnn.epochs": 12},
    )
    data = labeled.load_labeled(config, "synth")
    train_index, test_index = folds_module.fold_indices(folds_module.session_folds(data.session), 1)
    train, development = folds_module.development_split(data.subset(train_index), data.subset(test_index))
    trained = runs_module.fit_predict(config, train, data.subset(test_index), 0, development=development)
    scores = trained.history["development_uar"]
    assert trained.selected_epoch == int(np.argmax(scores)) + 1
    assert len(scores) == len(trained.history["loss"]) <= 12
    if len(scores) < 12:  # stopped early: patience epochs after the best without a better one
        assert len(scores) - trained.selected_epoch == 3
    kept = acnn.predict_all(trained.model, development.inputs())["emotion"].argmax(axis=1)
    assert metrics.uar(development.emotion, kept) == pytest.approx(max(scores))


# -- the cross-corpus matrix and sensitivity runs ------------------------------------------------------
def test_matrix_runs_every_ordered_pair_per_normalisation(synthetic):
    from serlib.evidence import matrix

    config = config_module.override(
        _config(synthetic.tmp, [CONDITIONS[0]]),
        output_dir=str(synthetic.tmp / "matrix"),
        **{"protocol.cross_corpus_matrix": ["synth", "other"], "protocol.seeds": [0], "acnn.epochs": 2},
    )
    table = matrix.run_matrix(config, normalisations=["train", "corpus"], progress=False)
    assert sorted(zip(table["normalisation"], table["train"], table["test"], strict=True)) == [
        ("corpus", "other", "synth"),
        ("corpus", "synth", "other"),
        ("train", "other", "synth"),
        ("train", "synth", "other"),
    ]
    assert (table["condition"] == "BL").all() and table["mean"].between(0, 100).all()
    cell = (
        synthetic.tmp
        / "matrix"
        / "corpus"
        / "synth-to-other"
        / "results"
        / "cross"
        / "BL"
        / "seed0"
        / "fold0"
    )
    assert json.loads((cell / "metrics.json").read_text())["train_corpus"] == "synth"
    text = (synthetic.tmp / "matrix" / "matrix.md").read_text()
    assert "**BL**, normalisation `corpus`" in text and "| synth | – |" in text
    with pytest.raises(labeled.ProtocolError, match="at least two"):
        matrix.pairs(config_module.override(config, **{"protocol.cross_corpus_matrix": ["synth"]}))


def _patch_descriptor_stores(synthetic, monkeypatch) -> list[str]:
    """labeled.extract_features patched to give 25-value descriptor stores for egemaps_lld; the
    extractors asked for are appended to the returned list."""
    descriptors = {}
    for key, log_mel in synthetic.features.items():
        path = synthetic.tmp / f"{key}-egemaps_lld.h5"
        path.write_bytes(b"")
        descriptors[key] = types.SimpleNamespace(
            path=path,
            ids=log_mel.ids,
            features=log_mel.features[:, :, :25].copy(),
            lengths=log_mel.lengths,
            skipped=[],
        )
    asked = []

    def extract(config, key, extractor="logmel"):
        asked.append(extractor)
        return descriptors[key] if extractor == "egemaps_lld" else synthetic.features[key]

    monkeypatch.setattr(labeled, "extract_features", extract)
    return asked


def test_the_acnn_reads_egemaps_descriptors_when_configured(synthetic, monkeypatch):
    """features.acnn_input egemaps_lld: runs read the descriptor store (25 values per frame), the ACNN
    is built for it, and the runs' fingerprints differ from the log-Mel runs' (nothing reused)."""
    asked = _patch_descriptor_stores(synthetic, monkeypatch)
    base = config_module.override(
        _config(synthetic.tmp, [CONDITIONS[0]], cross=False),
        output_dir=str(synthetic.tmp / "descriptors"),
        **{"protocol.seeds": [0], "protocol.folds": [1], "acnn.epochs": 2},
    )
    config = config_module.override(base, **{"features.acnn_input": "egemaps_lld"})
    assert labeled.acnn_input_shape(config.features) == (FRAMES, 25)
    assert labeled.load_labeled(config, "synth").logmel.shape[1:] == (FRAMES, 25)

    table = summaries.evaluate(config, progress=False)
    assert set(asked) == {"egemaps_lld"}
    assert 0 <= table.set_index("condition").loc["BL", "within_mean"] <= 100
    condition = config.protocol.conditions[0]
    assert conditions_module.fingerprint(config, "within", condition) != conditions_module.fingerprint(
        base, "within", condition
    )


def test_epoch_curves_build_the_acnn_for_the_configured_input(synthetic, monkeypatch, capsys):
    """`serlib epochs` on egemaps_lld input trains, through the grid's run function, an ACNN on the 25
    descriptors per frame: a copy of that function once built a 26-band model from logmel.bands."""
    from serlib.app import cli
    from serlib.base import config_yaml
    from serlib.models.acnn import run as acnn_run

    asked = _patch_descriptor_stores(synthetic, monkeypatch)
    config = config_module.override(
        _config(synthetic.tmp, [CONDITIONS[0]], cross=False),
        output_dir=str(synthetic.tmp / "epochs-descriptors"),
        **{"protocol.seeds": [0], "protocol.folds": [1], "features.acnn_input": "egemaps_lld"},
    )
    shapes = []
    train = acnn_run.train

    def recording_train(*args, **kwargs):
        trained = train(*args, **kwargs)
        shapes.append(tuple(trained.model.get_layer("logmel").output.shape))
        return trained

    monkeypatch.setattr(acnn_run, "train", recording_train)
    path = config_yaml.save(config, synthetic.tmp / "epochs-descriptors.yaml")
    assert cli.main(["epochs", "--config", str(path), "--max-epochs", "2"]) == 0
    assert set(asked) == {"egemaps_lld"}
    assert shapes == [(None, FRAMES, 25)]  # one inner split of outer fold 1, 25 descriptors per frame
    curves = pd.read_csv(synthetic.tmp / "epochs-descriptors" / "epoch_selection.csv")
    assert curves["epoch"].tolist() == [1, 2] and curves["uar"].between(0, 1).all()
    assert "plateau_epoch" in capsys.readouterr().out


def test_sensitivity_reuses_the_base_runs_and_pairs_each_variant_with_them(
    protocol_run, synthetic, monkeypatch
):
    from serlib.base import config_yaml
    from serlib.evidence import sensitivity

    # The module's finished protocol is the base (within + cross, BL + C, seeds 0-1, folds 1-2): its
    # within BL runs are reused; the reference drops the cross setting and C, as for configs/nemo.yaml.
    config_yaml.save(protocol_run.config, synthetic.tmp / "base.yaml")
    plan = synthetic.tmp / "plan.yaml"
    plan.write_text(
        "base: base.yaml\nconditions: [BL]\nseeds: [0, 1]\n"
        f"output_dir: {synthetic.tmp / 'sens'}\n"
        "variants:\n  pool-stride-5: {acnn.pool_stride: 5}\n"
    )
    trained = []
    fit_predict = runs_module.fit_predict
    monkeypatch.setattr(
        runs_module,
        "fit_predict",
        lambda config, *a, **k: trained.append(config.output_dir) or fit_predict(config, *a, **k),
    )
    table = sensitivity.run_sensitivity(plan, progress=False)
    assert all("pool-stride-5" in folder for folder in trained) and len(trained) == 2 * 2  # 2 folds x 2 seeds
    row = table.set_index("pairs_over").loc["fold x seed"]
    assert row["variant"] == "pool-stride-5" and row["condition"] == "BL" and row["pairs"] == 4
    assert "pool-stride-5" in (synthetic.tmp / "sens" / "sensitivity.md").read_text()


def test_a_sitting_summarises_its_own_grid_when_another_replaced_protocol_json(
    protocol_run, tmp_path, monkeypatch
):
    """Two `serlib evaluate` sittings of one grid in one folder (here BL, and C started meanwhile): the one
    that finishes writes its own grid again and summarises it, never the other sitting's (which once gave a
    finished BL sitting the Table 1 of C's unfinished one)."""
    out = tmp_path / "out"
    shutil.copytree(protocol_run.out / "results", out / "results")  # every run finished: no training here
    config = config_module.override(protocol_run.config, output_dir=str(out))
    sitting_bl = config_module.keep_conditions(config, ["BL"])
    sitting_c = config_module.keep_conditions(config, ["C"])
    check_finished = grid.finished

    def other_sitting_starts(*args, **kwargs):
        if json.loads((out / "results" / "protocol.json").read_text())["conditions"][0]["name"] == "BL":
            grid._write_protocol(sitting_c, [1, 2], {})  # what C's start writes while BL's runs train
        return check_finished(*args, **kwargs)

    monkeypatch.setattr(grid, "finished", other_sitting_starts)
    table = summaries.evaluate(sitting_bl, progress=False)
    assert table["condition"].tolist() == ["BL"]
    written = pd.read_csv(out / "table1.csv")
    assert written["condition"].tolist() == ["BL"] and written["within_seeds"].tolist() == [2]
    assert json.loads((out / "results" / "protocol.json").read_text())["conditions"][0]["name"] == "BL"
    assert "| BL |" in table1.written_table(out) and "| C |" not in table1.written_table(out)
