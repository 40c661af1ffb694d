"""Notebook 05 by ear (issue 45): a confusion cell's utterances, the t-SNE point table with its hover
fields, the clips as the model heard them, and the widgets' logic without a browser (the browser part is
in tests/test_browser.py).

The fast tests plant a run folder whose cells are known by construction; the slow one reads the tiny
protocol run of ``tiny_pipeline.reference_run`` and checks the listing against the confusion matrix that
each run stored in its ``metrics.json``.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from serlib.analysis import listening, listening_views, tsne
from serlib.analysis.tsne import AnalysisError
from serlib.base import config as config_module
from serlib.data.manifest import EMOTIONS
from serlib.protocol.run_files import read_hidden

RATE_NATIVE = 22050  # not 16 kHz: the clip is resampled as the features' audio is


def _speech(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE_NATIVE)) / RATE_NATIVE
    return (0.3 * np.sin(2 * np.pi * (120 + 20 * seed) * t) + 0.01 * rng.standard_normal(t.size)).astype(
        np.float32
    )


# utterance -> (speaker, gender, true emotion, file seconds); u5 is a segment [1.0, 3.5) of a long file
UTTERANCES = {
    "u1": ("s1", "female", "happy", 2.0),
    "u2": ("s1", "female", "angry", 5.0),
    "u3": ("s2", "male", "happy", 1.5),
    "u4": ("s2", "male", "sad", 3.0),
    "u5": ("s2", "male", "happy", 6.0),
}
# (seed, utterance) -> predicted emotion; the happy -> angry cell: u1 and u3 in seed 0, u1 and u5 in seed 1
PREDICTED = {
    (0, "u1"): "angry", (0, "u2"): "angry", (0, "u3"): "angry", (0, "u4"): "sad", (0, "u5"): "happy",
    (1, "u1"): "angry", (1, "u2"): "happy", (1, "u3"): "happy", (1, "u4"): "sad", (1, "u5"): "angry",
}  # fmt: skip


def _probabilities(predicted: str, seed: int, uid: str) -> dict[str, float]:
    """A distribution whose largest value is the predicted emotion (distinct per utterance and seed)."""
    top = 0.55 + 0.05 * int(uid[1:]) + 0.01 * seed
    rest = (1.0 - top) / 3
    return {f"p_{e}": top if e == predicted else rest for e in EMOTIONS}


@pytest.fixture
def planted(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    """A run folder (within setting, BL, seeds 0-1, one fold) and the manifest of its test corpus."""
    audio = tmp_path / "audio"
    audio.mkdir()
    rows = []
    for number, (uid, (speaker, gender, emotion, seconds)) in enumerate(UTTERANCES.items()):
        path = audio / f"{uid}.wav"
        sf.write(path, _speech(seconds, number), RATE_NATIVE)
        start, end = (1.0, 3.5) if uid == "u5" else (None, None)
        rows.append({"utterance_id": uid, "corpus": "planted", "path": str(path), "start_s": start, "end_s": end,
                     "speaker": speaker, "gender": gender, "emotion": emotion})  # fmt: skip
    manifest = pd.DataFrame(rows)
    out = tmp_path / "run"
    protocol = {
        "conditions": [{"name": "BL", "autoencoder_corpus": "none"}],
        "seeds": [0, 1],
        "settings": {"within": {"train_corpus": "planted", "test_corpus": "planted", "folds": [1]}},
        "fingerprints": {"within/BL": "f1"},
    }
    (out / "results").mkdir(parents=True)
    (out / "results" / "protocol.json").write_text(json.dumps(protocol), encoding="utf-8")
    for seed in (0, 1):
        folder = out / "results" / "within" / "BL" / f"seed{seed}" / "fold1"
        folder.mkdir(parents=True)
        predictions = [
            {"utterance_id": uid, "fold": 1, "seed": seed, "condition": "BL", "true": UTTERANCES[uid][2],
             "predicted": PREDICTED[seed, uid], **_probabilities(PREDICTED[seed, uid], seed, uid)}
            for uid in UTTERANCES
        ]  # fmt: skip
        pd.DataFrame(predictions).to_csv(folder / "predictions.csv", index=False)
        metrics = {
            "setting": "within",
            "condition": "BL",
            "seed": seed,
            "fold": 1,
            "uar": 0.5,
            "fingerprint": "f1",
        }
        (folder / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    return out, manifest


def test_a_cell_lists_exactly_its_utterances_per_seed_and_pooled(planted: tuple[Path, pd.DataFrame]) -> None:
    out, manifest = planted
    pooled = listening.run_predictions(out, "within", "BL")
    cell = listening.cell_utterances(pooled, manifest, "happy", "angry")
    assert sorted(zip(cell["seed"], cell["utterance_id"], strict=True)) == [
        (0, "u1"),
        (0, "u3"),
        (1, "u1"),
        (1, "u5"),
    ]
    assert list(cell.columns) == list(listening.CELL_COLUMNS)
    assert cell["probability"].is_monotonic_decreasing  # most confident first
    first = cell.iloc[0]
    assert first["probability"] == pytest.approx(
        _probabilities("angry", first["seed"], first["utterance_id"])["p_angry"]
    )
    assert (cell["path"].str.endswith(".wav")).all() and set(cell["speaker"]) == {"s1", "s2"}
    seed1 = listening.cell_utterances(
        listening.run_predictions(out, "within", "BL", seed=1), manifest, "happy", "angry"
    )
    assert sorted(seed1["utterance_id"]) == ["u1", "u5"]
    counts = listening.confusion_counts(pooled)
    assert counts.loc["happy", "angry"] == len(cell) and int(counts.to_numpy().sum()) == len(pooled)
    assert listening.cell_utterances(pooled, manifest, "sad", "happy").empty


def test_stale_runs_and_missing_inputs_are_named(planted: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    out, manifest = planted
    stale = out / "results" / "within" / "BL" / "seed1" / "fold1" / "metrics.json"
    stale.write_text(stale.read_text(encoding="utf-8").replace('"f1"', '"old"'), encoding="utf-8")
    assert set(listening.run_predictions(out, "within")["seed"]) == {0}  # computed with other parameters
    with pytest.raises(AnalysisError, match="no finished within run with condition C.*notebook 04"):
        listening.run_predictions(out, "within", "C")
    with pytest.raises(AnalysisError, match="no 'cross' setting"):
        listening.run_predictions(out, "cross")
    with pytest.raises(AnalysisError, match="'joyful' is not one of"):
        listening.cell_utterances(listening.run_predictions(out, "within"), manifest, "joyful", "angry")
    with pytest.raises(
        AnalysisError, match=r"2 utterances of the cell happy -> angry are not in the manifest"
    ):
        listening.cell_utterances(
            listening.run_predictions(out, "within"), manifest.iloc[[1, 3, 4]], "happy", "angry"
        )


def test_clips_are_what_the_model_heard_as_16_khz_wav(planted: tuple[Path, pd.DataFrame]) -> None:
    _, manifest = planted
    config = config_module.override(config_module.load_preset("demo"), **{"features.logmel.max_frames": 300})
    heard = listening.heard_seconds(config)
    assert heard == pytest.approx(299 * 0.010 + 0.025)
    rows = manifest.set_index("utterance_id")
    for uid, expected in (("u2", heard), ("u3", 1.5), ("u5", 2.5)):  # cut; whole; a segment, whole
        data, rate = sf.read(io.BytesIO(listening.clip_wav(rows.loc[uid].to_dict(), heard)))
        info = sf.info(io.BytesIO(listening.clip_wav(rows.loc[uid].to_dict(), heard)))
        assert rate == 16000 and data.ndim == 1 and info.subtype == "PCM_16"
        assert len(data) / rate == pytest.approx(expected, abs=1e-3), uid
    # the segment starts at 1.0 s of its file: its first samples are the file's samples from there
    whole, _ = listening.load_clip({"path": rows.loc["u5", "path"], "start_s": None, "end_s": None}, None)
    segment, _ = listening.load_clip(rows.loc["u5"].to_dict(), None)
    assert np.corrcoef(whole[16000 : 16000 + 8000], segment[:8000])[0, 1] > 0.99
    levels = listening.clip_levels(manifest.head(2), heard)
    assert levels["heard_s"].tolist() == pytest.approx([2.0, heard], abs=1e-3)
    assert (levels["rms_db"] < 0).all() and (levels["rms_db"] > -20).all()  # a 0.3 sine: about -13 dBFS


def _embedding(manifest: pd.DataFrame, shown: list[int]) -> tsne.Embedding:
    labels = tsne.labels_for(
        manifest.assign(arousal_class="", valence_class="", session="1"), list(manifest["utterance_id"])
    )
    points = np.arange(2 * len(shown), dtype=np.float32).reshape(-1, 2)
    return tsne.Embedding(
        "acnn", "planted", np.zeros((len(manifest), 3), np.float32), labels, np.asarray(shown), points, 5.0
    )


def test_point_table_joins_labels_audio_and_the_runs_predictions(planted: tuple[Path, pd.DataFrame]) -> None:
    out, manifest = planted
    embedding = _embedding(manifest, [4, 0, 2])  # u5, u1, u3 drawn
    predictions = listening.predictions_for(out, embedding.labels["utterance_id"], "within", "BL")
    assert set(predictions["seed"]) == {0} and len(predictions) == len(manifest)  # lowest seed, once each
    table = listening.point_table(embedding, manifest, predictions)
    assert list(table.columns) == list(listening.POINT_COLUMNS)
    assert list(table["utterance_id"]) == ["u5", "u1", "u3"] and list(table["x"]) == [0.0, 2.0, 4.0]
    for column in listening.HOVER_COLUMNS:
        assert table[column].notna().all(), column
    row = table.set_index("utterance_id").loc["u1"]
    assert (row["corpus"], row["speaker"], row["gender"], row["emotion"]) == (
        "planted",
        "s1",
        "female",
        "happy",
    )
    assert row["predicted"] == "angry" and row["correct"] == "wrong"
    assert row["probability"] == pytest.approx(_probabilities("angry", 0, "u1")["p_angry"])
    assert table.set_index("utterance_id").loc["u5", "correct"] == "right"
    hover = listening.hover_text(row.to_dict() | {"utterance_id": "u1<b>"})
    assert "u1&lt;b&gt;" in hover and "predicted angry (p = 0.60)" in hover and "speaker s1 (female)" in hover
    unpredicted = listening.point_table(embedding, manifest)  # Figure 4 without an ACNN: no prediction
    assert (unpredicted["predicted"] == "").all() and unpredicted["probability"].isna().all()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_the_views_play_the_clicked_point_and_list_a_cells_players(
    planted: tuple[Path, pd.DataFrame],
) -> None:
    """The widgets' Python side, without a browser: what a click calls puts the clip's bytes in a player."""
    out, manifest = planted
    heard = 3.0
    embedding = _embedding(manifest, [0, 1, 2, 3, 4])
    points = listening.point_table(
        embedding, manifest, listening.predictions_for(out, list(manifest["utterance_id"]))
    )
    explorer = listening_views.TsneExplorer({"planted": points}, heard)
    assert sum(len(trace.x) for trace in explorer.figure.data) == 5
    assert [trace.name for trace in explorer.figure.data] == ["angry (1)", "happy (3)", "sad (1)"]
    explorer.play("u3")
    row = points.set_index("utterance_id").loc["u3"].to_dict() | {"utterance_id": "u3"}
    assert explorer.player is not None and _sha(explorer.player.value) == _sha(listening.clip_wav(row, heard))
    assert 'data-utterance="u3"' in explorer.info.value and explorer.clicked == "u3"
    explorer.family.value = "gender"
    explorer.keep.value = ("male",)
    assert set(explorer.table["utterance_id"]) == {"u3", "u4", "u5"}
    assert sum(len(trace.x) for trace in explorer.figure.data) == 3
    explorer.colour.value = "correct"
    assert sorted(trace.name for trace in explorer.figure.data) == ["right (2)", "wrong (1)"]

    confusion = listening_views.ConfusionExplorer(out, {"within": manifest}, heard)
    assert confusion.seed.value == listening_views.POOLED and confusion.condition.value == "BL"
    assert int(np.nansum(confusion.figure.data[0].text)) == 2 * len(UTTERANCES)  # both seeds pooled
    confusion.select("happy", "angry")
    assert len(confusion.rows.children) == 4
    shown = [(box.children[0].value, box.children[1].value) for box in confusion.rows.children]
    for label, sound in shown:
        uid = label.split('data-utterance="')[1].split('"')[0]
        assert _sha(sound) == _sha(
            listening.clip_wav(manifest.set_index("utterance_id").loc[uid].to_dict(), heard)
        )
    confusion.seed.value = 1
    confusion.select("happy", "angry")
    assert len(confusion.rows.children) == 2


def test_headless_views_are_static_tables(planted: tuple[Path, pd.DataFrame], monkeypatch) -> None:
    out, manifest = planted
    monkeypatch.setenv("SERLIB_PROGRESS", "lines")
    assert not listening.interactive()
    points = listening.point_table(_embedding(manifest, [0, 1]), manifest)
    static = listening_views.tsne_view({"planted": points}, object())
    assert isinstance(static, pd.DataFrame) and list(static.columns) == list(listening.HOVER_COLUMNS)
    config = config_module.override(config_module.load_preset("demo"), output_dir=str(out))
    confused = listening_views.confusion_view(config, settings=("within",))
    assert confused.loc[0, ["true", "predicted", "predictions"]].tolist() == ["happy", "angry", 4]
    assert listening_views.players(points, config) is None


# -- the tiny protocol run --------------------------------------------------------------------------------
@pytest.mark.slow
def test_on_the_tiny_run_a_cell_lists_the_utterances_its_confusion_counts(tmp_path_factory) -> None:
    from tiny_pipeline import reference_run

    from serlib.data import loaders

    config, _ = reference_run(tmp_path_factory.getbasetemp() / "tiny_shared")
    manifest = loaders.load_configured(config, listening.tested_corpus(config.output_path, "cross"))
    predictions = listening.run_predictions(config.output_path, "cross", "BL")
    folders = sorted((config.output_path / "results" / "cross" / "BL").glob("seed*/fold*/metrics.json"))
    stored = sum(np.asarray(json.loads(p.read_text(encoding="utf-8"))["confusion"]) for p in folders)
    for i, true in enumerate(EMOTIONS):
        for j, predicted in enumerate(EMOTIONS):
            cell = listening.cell_utterances(predictions, manifest, true, predicted)
            assert len(cell) == stored[i, j], (true, predicted)
            assert set(cell["utterance_id"]) <= set(manifest.loc[manifest["emotion"] == true, "utterance_id"])
    # the t-SNE of the run's hidden layer: every point has its hover fields and its run's prediction
    run = config.output_path / "results" / "cross" / "BL" / "seed0" / "fold0"
    ids, hidden = read_hidden(run / "hidden.h5")
    embedding = tsne.embed("acnn", "tiny", hidden, tsne.labels_for(manifest, ids), perplexity=5.0)
    table = listening.point_table(
        embedding, manifest, listening.predictions_for(config.output_path, ids, "cross", "BL")
    )
    assert len(table) == len(ids) and (table["predicted"] != "").all()
    for column in listening.HOVER_COLUMNS:
        assert table[column].notna().all() and (table[column].astype(str) != "").all(), column
    truth = pd.read_csv(run / "predictions.csv").set_index("utterance_id")
    assert (
        table.set_index("utterance_id")["predicted"] == truth.loc[table["utterance_id"], "predicted"]
    ).all()
    clip = listening.clip_wav(table.iloc[0], listening.heard_seconds(config))
    assert sf.info(io.BytesIO(clip)).duration <= listening.heard_seconds(config) + 1e-3
