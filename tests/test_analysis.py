"""t-SNE, k-NN probe and silhouette on synthetic vectors whose structure is known (fast, no TensorFlow)."""

from __future__ import annotations

import types

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from serlib.analysis import autoencoders, tsne
from serlib.base import config as config_module
from serlib.models import autoencoder


def _clusters(n_per_class: int = 40, dims: int = 16, spread: float = 8.0, seed: int = 0):
    """Three well separated Gaussian clusters, each spoken by all of 6 speakers."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(["angry", "happy", "sad"], n_per_class)
    centres = rng.normal(size=(3, dims)) * spread
    vectors = centres[np.repeat(np.arange(3), n_per_class)] + rng.normal(size=(3 * n_per_class, dims))
    speakers = np.tile([f"S{i}{g}" for i in range(1, 4) for g in "FM"], 3 * n_per_class // 6)
    return vectors.astype(np.float32), labels, speakers


def test_tsne_is_deterministic_with_a_seed_and_finite():
    vectors, _, _ = _clusters()
    first = tsne.tsne(vectors, seed=3, perplexity=10)
    second = tsne.tsne(vectors, seed=3, perplexity=10)
    assert first.shape == (len(vectors), 2)
    assert np.isfinite(first).all()
    np.testing.assert_array_equal(first, second)


def test_tsne_lowers_a_perplexity_too_large_for_few_points():
    vectors, _, _ = _clusters(n_per_class=3)
    points = tsne.tsne(vectors, perplexity=30)
    assert points.shape == (9, 2)


def test_tsne_refuses_non_finite_vectors():
    vectors, _, _ = _clusters()
    vectors[5, 2] = np.nan
    with pytest.raises(tsne.AnalysisError, match="NaN"):
        tsne.tsne(vectors)


def test_subsample_is_deterministic_sorted_and_bounded():
    first = tsne.subsample(1000, 100, seed=1)
    np.testing.assert_array_equal(first, tsne.subsample(1000, 100, seed=1))
    assert len(first) == 100 and len(np.unique(first)) == 100 and (np.diff(first) > 0).all()
    assert not np.array_equal(first, tsne.subsample(1000, 100, seed=2))
    np.testing.assert_array_equal(tsne.subsample(50, 100), np.arange(50))


def test_knn_probe_high_on_separable_clusters_and_near_chance_on_random_labels():
    vectors, labels, speakers = _clusters()
    assert tsne.knn_probe(vectors, labels, groups=speakers, k=5) > 0.95
    assert tsne.knn_probe(vectors, labels, k=5) > 0.95
    rng = np.random.default_rng(1)
    noise = rng.normal(size=vectors.shape)
    chance = [tsne.knn_probe(noise, rng.permutation(labels), k=5, seed=s) for s in range(5)]
    assert abs(float(np.mean(chance)) - 1 / 3) < 0.12


def test_knn_probe_groups_keep_speakers_apart():
    # The label is the speaker's identity signature: stratified folds see it, speaker-grouped folds cannot.
    rng = np.random.default_rng(0)
    speakers = np.repeat([f"S{i}" for i in range(6)], 20)
    label_of = {f"S{i}": ("low", "high")[i % 2] for i in range(6)}
    labels = np.array([label_of[s] for s in speakers])
    offsets = {s: rng.normal(size=8) * 10 for s in label_of}
    vectors = np.stack([offsets[s] for s in speakers]) + rng.normal(size=(120, 8))
    assert tsne.knn_probe(vectors, labels, k=3) > 0.95
    assert tsne.knn_probe(vectors, labels, groups=speakers, k=3) < 0.8


def test_knn_probe_errors_are_clear():
    vectors, labels, _ = _clusters()
    with pytest.raises(tsne.AnalysisError, match="aligned"):
        tsne.knn_probe(vectors, labels[:-1])
    with pytest.raises(tsne.AnalysisError, match="2 classes"):
        tsne.knn_probe(vectors, np.array(["sad"] * len(vectors)))


def test_silhouette_sign_follows_the_structure():
    vectors, labels, _ = _clusters()
    assert tsne.silhouette(vectors, labels) > 0.5
    rng = np.random.default_rng(3)
    assert abs(tsne.silhouette(vectors, rng.permutation(labels))) < 0.1
    # Class "a" = 10 points of cluster "angry" and 30 of cluster "happy"; class "b" = the other 10 of
    # "happy". Most "a" points have class b beside them and most of their own class far away: negative.
    chosen = np.r_[0:10, 40:80]
    wrong = np.array(["a"] * 40 + ["b"] * 10)
    assert tsne.silhouette(vectors[chosen], wrong) < 0


def _embedding(n_per_class: int = 30) -> tsne.Embedding:
    vectors, labels, speakers = _clusters(n_per_class=n_per_class)
    rng = np.random.default_rng(2)
    emotions = labels.astype(object)
    emotions[::7] = "neutral"
    frame = pd.DataFrame(
        {
            "emotion": emotions,
            "arousal_class": np.where(labels == "sad", "low", "high"),
            "valence_class": rng.choice(["low", "medium", "high"], len(labels)),
            "speaker": speakers,
            "gender": np.where(np.char.endswith(speakers.astype(str), "F"), "female", "male"),
        }
    )
    return tsne.embed("acnn", "synthetic clusters", vectors, frame, seed=0, perplexity=10, max_points=60)


def test_embedding_subsamples_the_picture_but_probes_all_vectors():
    embedding = _embedding()
    assert len(embedding.points) == 60 and len(embedding.vectors) == 90
    row = tsne.probe_panel(embedding, tsne.PANELS["emotion"], k=5)
    assert row["points"] == int((embedding.labels["emotion"] != "neutral").sum())  # neutral left out
    assert row["classes"] == 3 and row["knn_uar"] > 0.9 and row["silhouette"] > 0.3


def test_figures_are_written_as_png_and_pdf_with_probe_rows(tmp_path):
    embedding = _embedding()
    config = types.SimpleNamespace(
        tsne=types.SimpleNamespace(seed=0),
        output_path=tmp_path / "run",
        figures_dir=str(tmp_path / "figures"),
    )
    _, probes = tsne.figures_for(embedding, config, k=5)
    assert list(probes["figure"].unique()) == ["figure3_tsne_acnn", "tsne_acnn_speaker_gender"]
    assert list(probes["panel"]) == ["emotion", "arousal_class", "valence_class", "speaker", "gender"]
    for folder in (tmp_path / "run" / "figures", tmp_path / "figures"):
        for stem in ("figure3_tsne_acnn", "tsne_acnn_speaker_gender"):
            assert (folder / f"{stem}.pdf").stat().st_size > 1000
            image = matplotlib.image.imread(folder / f"{stem}.png")
            assert image.std() > 0.01
    path = tsne.write_probes(probes, tmp_path / "run" / "tsne_probes.csv")
    table = pd.read_csv(path)
    assert list(table.columns) == list(tsne.PROBE_COLUMNS) and len(table) == 5


def test_labels_for_aligns_by_id_and_names_unknown_ids():
    manifest = pd.DataFrame(
        {
            "utterance_id": ["a", "b", "c"],
            "emotion": ["sad", "", "angry"],
            "speaker": ["1", "2", "3"],
            "gender": "female",
        }
    )
    labels = tsne.labels_for(manifest, ["c", "a"])
    assert list(labels["utterance_id"]) == ["c", "a"] and list(labels["emotion"]) == ["angry", "sad"]
    with pytest.raises(tsne.AnalysisError, match="not in the manifest"):
        tsne.labels_for(manifest, ["a", "zz"])


def test_decoder_leakage_probe_sees_the_bidirectional_decoder_read_its_target():

    base = config_module.override(
        config_module.load_preset("demo"),
        **{"autoencoder.layers": 1, "autoencoder.units": 4, "features.spectrogram.mel_bands": 8},
    )
    spectrogram = np.random.default_rng(0).uniform(-1, 1, (12, 8)).astype(np.float32)
    leaky = autoencoders.decoder_leakage(
        autoencoder.build_configured(base), spectrogram, offsets=range(-2, 4)
    )
    assert list(leaky["offset"]) == [-2, -1, 0, 1, 2, 3] and np.isfinite(leaky["rmse"]).all()
    # The backward stack reads later decoder inputs: blanking the target (+1) changes the output.
    assert leaky.set_index("offset").loc[1, "change"] > 1e-4
    # A unidirectional decoder is causal: blanking any later input leaves frame t exactly as it was.
    causal = config_module.override(base, **{"autoencoder.bidirectional_decoder": False})
    table = autoencoders.decoder_leakage(
        autoencoder.build_configured(causal), spectrogram, offsets=range(0, 4)
    )
    assert table.loc[table["offset"] == 0, "change"].item() > 1e-4  # its own teacher-forced input
    np.testing.assert_allclose(table.loc[table["offset"] >= 1, "change"], 0.0, atol=1e-6)
    np.testing.assert_allclose(table["rmse"].iloc[1:], table["baseline_rmse"].iloc[1:], atol=1e-6)
