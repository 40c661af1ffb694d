"""Determinism on one machine: the same seed gives identical features, AE vectors, ACNN predictions and
UAR; another seed gives other numbers. Across processes the interruption test checks the same for the
whole protocol. What may differ across machines is listed in docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from tiny_pipeline import tiny_config

from serlib.base import config as config_module
from serlib.base import metrics, runtime
from serlib.data import audio, loaders
from serlib.data.manifest import EMOTIONS
from serlib.features import logmel as logmel_module
from serlib.features import store
from serlib.models import autoencoder
from serlib.models.acnn import feed as acnn_feed
from serlib.protocol import folds, labeled
from serlib.protocol import runs as runs_module


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """The tiny demo corpus with its stores, extracted twice into separate caches."""
    base = tmp_path_factory.mktemp("determinism")
    data = base / "data"
    first = tiny_config(base / "a", data)
    second = tiny_config(base / "b", data)
    manifest = loaders.load_configured(first, "emo")
    sets = {
        name: [store.extract_configured(config, "emo", name, progress=False) for config in (first, second)]
        for name in ("logmel", "spectrogram")
    }
    return first, manifest, sets


def test_features_are_identical_across_extractions(corpus):
    _, _, sets = corpus
    for name, (a, b) in sets.items():
        assert a.path != b.path and a.ids == b.ids
        np.testing.assert_array_equal(a.features, b.features, err_msg=name)
        np.testing.assert_array_equal(a.lengths, b.lengths)


def test_logmel_does_not_depend_on_importing_tensorflow_first(corpus, tmp_path):
    """openSMILE's library and TensorFlow's export the same FFT symbol names; the values must not
    change (nor the process crash) when TensorFlow was imported before serlib.features.logmel."""
    _, manifest, _ = corpus
    path = manifest["path"].iloc[0]
    script = (
        "import sys, numpy as np\n"
        "first = sys.argv[1] == 'tensorflow'\n"
        "if first:\n    import tensorflow\n"
        "from serlib.data import audio\n"
        "from serlib.features import logmel\n"
        "signal, rate = audio.load(sys.argv[2])\n"
        "np.save(sys.argv[3], logmel.logmel(signal, rate))\n"
    )
    outputs = {}
    for order in ("plain", "tensorflow"):
        target = tmp_path / f"{order}.npy"
        done = subprocess.run(
            [sys.executable, "-c", script, order, path, str(target)],
            capture_output=True,
            text=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        outputs[order] = np.load(target, allow_pickle=False)
    np.testing.assert_array_equal(outputs["plain"], outputs["tensorflow"])
    signal, rate = audio.load(path)
    np.testing.assert_array_equal(logmel_module.logmel(signal, rate), outputs["plain"])  # this process too


@pytest.fixture(scope="module")
def autoencoders(corpus, tmp_path_factory):
    """The tiny AE trained three times: seed 0 twice, seed 1 once; their vectors for the corpus."""
    config, _, sets = corpus
    spectrograms = sets["spectrogram"][0].features
    folder = tmp_path_factory.mktemp("autoencoders")
    vectors = {}
    for name, seed in (("a", 0), ("b", 0), ("other", 1)):
        path = autoencoder.train(
            config.autoencoder, spectrograms, folder / name, epochs=1, seed=seed, progress=False
        )
        model = autoencoder.load_model(path, compile=False)
        vectors[name] = (path, autoencoder.encode(model, spectrograms, batch_size=16))
    return vectors


def test_autoencoder_same_seed_same_vectors(autoencoders):
    (path_a, a), (path_b, b), (_, other) = autoencoders["a"], autoencoders["b"], autoencoders["other"]
    np.testing.assert_array_equal(a, b)
    losses = [json.loads((p.parent / autoencoder.STATE_FILE).read_text())["loss"] for p in (path_a, path_b)]
    assert losses[0] == losses[1]
    assert np.isfinite(a).all() and not np.allclose(a, other, atol=1e-3)


def _split(config, manifest, sets, vectors):
    logmel = sets["logmel"][0]
    data = labeled.labeled_data(manifest, logmel.ids, logmel.features, logmel.lengths, "emo")
    data = labeled.with_representations(data, sets["spectrogram"][0].ids, vectors, "emo")
    train, test = folds.fold_indices(folds.session_folds(data.session), 1)
    return data.subset(train), data.subset(test)


@pytest.fixture(scope="module")
def acnn_runs(corpus, autoencoders):
    """The tiny ACNN trained three times on fold 1: seed 0 twice, seed 1 once; and its test part."""
    config, manifest, sets = corpus
    train, test = _split(config, manifest, sets, autoencoders["a"][1])
    return [runs_module.fit_predict(config, train, test, seed) for seed in (0, 0, 1)], test


def test_acnn_same_seed_same_predictions_and_uar(acnn_runs):
    runs, test = acnn_runs
    first, again, other = (run.probabilities for run in runs)
    for head in ("emotion", "arousal", "valence"):
        np.testing.assert_array_equal(first[head], again[head], err_msg=head)
    uars = [metrics.uar(test.emotion, run.probabilities["emotion"].argmax(axis=1)) for run in runs]
    assert uars[0] == uars[1]
    np.testing.assert_array_equal(runs[0].hidden, runs[1].hidden)
    assert runs[0].history["loss"] == runs[1].history["loss"]
    assert not np.allclose(first["emotion"], other["emotion"], atol=1e-4)
    assert first["emotion"].shape == (len(test), len(EMOTIONS))


def test_acnn_run_draws_a_new_batch_order_per_epoch_from_its_seed(corpus, autoencoders, monkeypatch):
    """The protocol's runs feed the ACNN through ``acnn_feed`` with the run's seed (tests/test_acnn_feed.py
    checks the orders themselves)."""
    config, manifest, sets = corpus
    train, test = _split(config, manifest, sets, autoencoders["a"][1])
    calls = []
    fit_acnn = acnn_feed.fit_acnn
    monkeypatch.setattr(acnn_feed, "fit_acnn", lambda *a, **k: calls.append(k) or fit_acnn(*a, **k))
    runs_module.fit_predict(config, train, test, 3)
    assert [(c["seed"], c["shuffle"], c["epochs"]) for c in calls] == [(3, "every_epoch", config.acnn.epochs)]


def test_runs_record_their_tensorflow_settings(acnn_runs):
    """Clause (c): every ACNN run records the thread count and switches it ran with; in this process
    they are the ones serlib.runtime set at the start of the session."""

    trained = acnn_runs[0][0]  # an ACNN run of this process (seed 0, fold 1)
    assert trained.tensorflow == runtime.settings()
    assert trained.tensorflow["intra_op_threads"] == runtime.requested_threads()
    assert isinstance(trained.tensorflow["op_determinism"], bool) and trained.tensorflow["onednn"] in (
        "on",
        "off",
    )


def test_thread_setting_is_read_from_the_environment_in_a_fresh_process(tmp_path):
    """Even when the process's first TensorFlow op is loading a saved AE (``serlib evaluate`` with a
    finished AE encodes before it trains anything), the threads are serlib's: ``import serlib`` sets them
    at TensorFlow's import."""
    ae = config_module.load_preset("demo").autoencoder.model_copy(update={"layers": 1, "units": 4})
    saved = tmp_path / "ae.keras"
    autoencoder.build_autoencoder(ae, features=8).save(saved)
    script = (
        "import json, sys\n"
        "from serlib.models.autoencoder.model import load_model\n"
        "load_model(sys.argv[1])\n"
        "from serlib.base import runtime\n"
        "print(json.dumps(runtime.configure()))\n"
    )
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "SERLIB_TF_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script, str(saved)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "before serlib could set" not in done.stderr, done.stderr[-2000:]
    settings = json.loads(done.stdout.strip().splitlines()[-1])
    assert settings["intra_op_threads"] == settings["inter_op_threads"] == 1
    script = "import json; from serlib.base import runtime; print(json.dumps(runtime.configure()))"
    environment["SERLIB_TF_THREADS"] = "two"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=environment, timeout=120
    )
    assert done.returncode != 0 and "SERLIB_TF_THREADS='two' is not a whole number" in done.stderr


def test_late_thread_change_is_reported(caplog):
    """TensorFlow refuses new thread counts once it has run; serlib keeps the count and says why."""

    before = runtime.settings()
    with caplog.at_level("WARNING", logger="serlib.base.runtime"):
        after = runtime.configure(before["intra_op_threads"] + 1)
    assert after == before
    assert "before serlib could set" in caplog.text and "SERLIB_TF_THREADS" in caplog.text
