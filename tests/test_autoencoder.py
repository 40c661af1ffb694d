"""auDeep's recurrent autoencoder: architecture facts, training/resume, determinism, encoding, store integration."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest

from serlib.app import cli
from serlib.base import config as config_module
from serlib.base import config_yaml
from serlib.data import loaders
from serlib.data.demo import generator
from serlib.features import store as store_module
from serlib.models.autoencoder import encoding, fused_gru

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")
autoencoder = pytest.importorskip("serlib.models.autoencoder")

REPO = Path(__file__).resolve().parents[1]
FRAMES, BANDS, UNITS = 16, 16, 16


def _config(tmp: Path, **changes: object) -> config_module.Config:
    base = {
        "output_dir": str(tmp),
        "autoencoder.units": UNITS,
        "autoencoder.layers": 2,
        "autoencoder.batch_size": 16,
        "autoencoder.learning_rate": 0.01,
        "autoencoder.epochs": 3,
        "features.spectrogram.mel_bands": BANDS,
    }
    return config_module.override(config_module.load_preset("demo"), **{**base, **changes})


def _spectrograms(n: int = 96, frames: int = FRAMES, bands: int = BANDS, seed: int = 0) -> np.ndarray:
    """Smooth, learnable stand-ins for auDeep spectrograms (values in [-1, 1])."""
    rng = np.random.default_rng(seed)
    time_axis = np.arange(frames)[None, :, None]
    band_axis = np.arange(bands)[None, None, :]
    rate = rng.uniform(0.1, 0.5, (n, 1, 1))
    phase = rng.uniform(0, 6, (n, 1, 1))
    return (0.8 * np.sin(rate * time_axis + phase + 0.3 * band_axis)).astype(np.float32)


def _write_store(path: Path, data: np.ndarray, ids: list[str], chunk_numbers: list[int]) -> Path:
    """A feature store file in the layout of docs/architecture.md."""
    with h5py.File(path, "w") as handle:
        handle.create_dataset("features", data=data, chunks=(4, *data.shape[1:]))
        handle.create_dataset("ids", data=np.array(ids, dtype=object), dtype=h5py.string_dtype("utf-8"))
        handle.create_dataset("lengths", data=np.full(len(ids), data.shape[1], np.int32))
        handle.create_dataset("chunk_numbers", data=np.array(chunk_numbers, np.int32))
        handle.attrs["key"] = "test-store"
    return path


def _state(model_dir: Path) -> dict:
    return json.loads((model_dir / autoencoder.STATE_FILE).read_text())


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One uninterrupted 3-epoch training from an HDF5 store (reused by several tests)."""
    root = tmp_path_factory.mktemp("ae")
    config = _config(root)
    data = _spectrograms()
    store = _write_store(root / "store.h5", data, [f"u{i}" for i in range(len(data))], [0] * len(data))
    path = autoencoder.train(config.autoencoder, store, root / "model", seed=config.seed, progress=False)
    return {"config": config, "data": data, "store": store, "path": path, "root": root}


# -- architecture -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("variant", "expected"), [("reset_before", 2_659_968), ("reset_after", 2_664_576)])
def test_paper_architecture_parameter_count_and_representation_size(variant, expected):
    config = config_module.override(
        config_module.load_preset("paper"), **{"autoencoder.gru_variant": variant}
    )
    model = autoencoder.build_configured(config, compile=False)
    # spec 2.6: 2,659,968 for TF1's GRU; reset_after adds 3U biases per layer and direction (+4,608).
    assert model.count_params() == expected
    assert autoencoder.representation_dim(config.autoencoder) == 1024
    assert model.get_layer("representation").output.shape[-1] == 1024


@pytest.mark.parametrize("bidirectional", [True, False])
def test_the_plain_keras_autoencoder_is_the_fused_one(tmp_path, bidirectional):
    """``build_autoencoder``'s default (Keras' own GRU, batch-major) and training's speed kernel
    (``FUSED_GRU``: AudeepGRU, time-major, a lone stack's batch in two loops) draw the same initial
    weights from a seed and compute the same reconstruction within float32 rounding; only the kernel's
    layers differ."""
    config = _config(
        tmp_path, **{"autoencoder.bidirectional_decoder": bidirectional, "autoencoder.dropout": 0.0}
    )
    plain = autoencoder.build_configured(config, compile=False)
    fused = autoencoder.build_configured(config, compile=False, gru=autoencoder.FUSED_GRU)
    assert type(plain.get_layer("encoder_fw_gru_1")) is keras.layers.GRU
    assert type(fused.get_layer("encoder_fw_gru_1")) is autoencoder.AudeepGRU
    assert fused.get_layer("encoder_fw_gru_1").batch_shards == 2  # the unidirectional encoder runs alone
    assert fused.get_layer("decoder_fw_gru_1").batch_shards == (1 if bidirectional else 2)
    assert "time_major" not in [layer.name for layer in plain.layers]
    assert [w.shape for w in plain.weights] == [w.shape for w in fused.weights]
    for a, b in zip(plain.get_weights(), fused.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    x = _spectrograms(4)
    np.testing.assert_allclose(
        np.asarray(plain(x, training=False)), np.asarray(fused(x, training=False)), rtol=0, atol=1e-5
    )


def test_representation_size_depends_on_the_decoder():
    config = config_module.load_preset("paper")
    uni = config_module.override(config, **{"autoencoder.bidirectional_decoder": False})
    bi_encoder = config_module.override(config, **{"autoencoder.bidirectional_encoder": True})
    assert autoencoder.representation_dim(uni.autoencoder) == 512
    assert autoencoder.representation_dim(bi_encoder.autoencoder) == 1024


def test_tf1_initialisation(tmp_path):
    config = _config(tmp_path, **{"autoencoder.gru_variant": "reset_before"})
    model = autoencoder.build_configured(config, compile=False)
    gru = model.get_layer("encoder_fw_gru_1").cell
    bias = np.asarray(gru.bias)
    np.testing.assert_array_equal(bias[: 2 * UNITS], 1.0)  # update and reset gates
    np.testing.assert_array_equal(bias[2 * UNITS :], 0.0)  # candidate
    gate_limit = np.sqrt(6 / (BANDS + UNITS + 2 * UNITS))
    assert np.abs(np.asarray(gru.kernel)[:, : 2 * UNITS]).max() <= gate_limit
    representation_bias = np.asarray(model.get_layer("representation").bias)
    limit = np.sqrt(3 / representation_bias.size)  # TF1's Glorot on a 1-D bias: random, not zero
    assert 0 < np.abs(representation_bias).max() <= limit
    assert np.abs(representation_bias).max() > limit / 2


@pytest.mark.parametrize("gru", ["keras", "fused"])
@pytest.mark.parametrize(("bidirectional", "shift"), [(True, 1), (False, 2)])
def test_decoder_input_is_the_reversed_input_shifted(tmp_path, bidirectional, shift, gru):
    config = _config(tmp_path, **{"autoencoder.bidirectional_decoder": bidirectional})
    kernel = {"keras": autoencoder.KERAS_GRU, "fused": autoencoder.FUSED_GRU}[gru]
    model = autoencoder.build_configured(config, compile=False, gru=kernel)
    probe = keras.Model(model.input, model.get_layer("decoder_input").output)
    x = _spectrograms(3)
    decoder_input = np.asarray(probe(x, training=False))
    if kernel.time_major:  # the fused kernel runs the model time-major inside
        decoder_input = np.swapaxes(decoder_input, 0, 1)
    expected = np.zeros_like(x)
    expected[:, shift:] = x[:, ::-1][
        :, : FRAMES - shift
    ]  # [0, x[T-1], ..., x[1]] (uni: auDeep's double shift)
    np.testing.assert_array_equal(decoder_input, expected)


def _jacobian_norms(model, x: np.ndarray) -> np.ndarray:
    """norms[t, s] = |d (w . reconstruction[t]) / d input[s]| at inference (no dropout), random w.

    Zero exactly where output frame t does not depend on input frame s; non-zero (almost surely) where it does.
    """
    x = tf.constant(x)
    weights = tf.constant(np.random.default_rng(0).standard_normal(x.shape[-1]).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        reconstruction = model(x, training=False)
        projections = [tf.reduce_sum(reconstruction[:, t] * weights) for t in range(x.shape[1])]
    gradients = np.stack([np.asarray(tape.gradient(p, x))[0] for p in projections])  # [T, T, F]
    return np.sqrt((gradients**2).sum(axis=-1))


def _constant_representation(model) -> None:
    # Zero the representation kernel: the only path from input to output is then the teacher forcing.
    layer = model.get_layer("representation")
    layer.kernel.assign(np.zeros(layer.kernel.shape, np.float32))


def test_bidirectional_decoder_backward_direction_sees_its_target(tmp_path):
    config = _config(tmp_path, **{"autoencoder.units": 8})
    model = autoencoder.build_configured(config, compile=False)
    _constant_representation(model)
    frames = 8
    x = _spectrograms(1, frames=frames)
    norms = _jacobian_norms(model, x)
    last = frames - 1
    # Output t reconstructs x[T-1-t]; the backward stack reads decoder input t+1 = x[T-1-t]: leakage.
    assert all(norms[t, last - t] > 1e-4 for t in range(last))
    assert norms[last, 0] == 0.0  # x[0] is never fed to the decoder
    # Without the backward half of the output layer the leak disappears: it is the backward direction.
    output = model.get_layer("reconstruction")
    kernel = np.asarray(output.kernel).copy()
    kernel[8:] = 0.0
    output.kernel.assign(kernel)
    norms = _jacobian_norms(model, x)
    assert all(norms[t, last - t] == 0.0 for t in range(frames))


def test_unidirectional_decoder_sees_neither_target_nor_previous_frame(tmp_path):
    config = _config(tmp_path, **{"autoencoder.units": 8, "autoencoder.bidirectional_decoder": False})
    model = autoencoder.build_configured(config, compile=False)
    _constant_representation(model)
    frames = 8
    norms = _jacobian_norms(model, _spectrograms(1, frames=frames))
    last = frames - 1
    for t in range(2, frames):
        assert norms[t, last - t] == 0.0 and norms[t, frames - t] == 0.0  # own target, previous target
        assert norms[t, frames + 1 - t] > 1e-5  # target two steps back (auDeep's double shift)


@pytest.mark.parametrize("compiled", [True, False], ids=["XLA loops", "executor loops"])
@pytest.mark.parametrize("variant", ["reset_after", "reset_before"])
def test_fused_gru_matches_keras_gru(variant, compiled, monkeypatch):
    monkeypatch.setattr(fused_gru, "COMPILE_LOOPS", compiled)
    reset_after = variant == "reset_after"
    rng = np.random.default_rng(1)
    x = tf.constant(rng.uniform(-1, 1, (3, 7, 5)).astype(np.float32))
    h0 = tf.constant(rng.uniform(-1, 1, (3, 4)).astype(np.float32))
    layer = keras.layers.GRU(
        4,
        return_sequences=True,
        return_state=True,
        reset_after=reset_after,
        bias_initializer="random_uniform",
    )
    layer(x, initial_state=[h0])
    weights = [layer.cell.kernel, layer.cell.recurrent_kernel, layer.cell.bias]
    upstream = tf.constant(rng.standard_normal((3, 7, 4)).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, h0])
        outputs, last = layer(x, initial_state=[h0])
        reference = tf.reduce_sum(outputs * upstream) + tf.reduce_sum(last)
        fused_outputs, fused_last = fused_gru.fused_gru(x, h0, *weights, reset_after)
        fused = tf.reduce_sum(fused_outputs * upstream) + tf.reduce_sum(fused_last)
    np.testing.assert_allclose(fused_outputs, outputs, atol=1e-6)
    for expected, actual in zip(
        tape.gradient(reference, [x, h0, *weights]), tape.gradient(fused, [x, h0, *weights]), strict=True
    ):
        np.testing.assert_allclose(actual, expected, atol=1e-5)


# -- training ----------------------------------------------------------------------------------------
def test_training_lowers_the_loss_and_writes_history(trained):
    model_dir = trained["path"].parent
    losses = _state(model_dir)["loss"]
    assert len(losses) == 3
    assert losses[-1] < 0.6 * losses[0]
    rows = (model_dir / autoencoder.HISTORY_CSV).read_text().splitlines()
    assert rows[0] == "epoch,loss" and len(rows) == 4
    assert (model_dir / autoencoder.HISTORY_PNG).stat().st_size > 1000
    assert [p.name for p in model_dir.glob("checkpoint-*.keras")] == ["checkpoint-epoch0003.keras"]
    assert not list(model_dir.glob(".*tmp*"))


def test_epoch_batches_are_full_and_cover_the_data():
    batches = autoencoder.epoch_batches(10, 4, seed=3, epoch=0)
    assert batches.shape == (3, 4)  # ceil(N/B) batches of exactly B (auDeep's cycling queue)
    assert set(batches.reshape(-1)) == set(range(10))
    assert not np.array_equal(batches, autoencoder.epoch_batches(10, 4, seed=3, epoch=1))
    np.testing.assert_array_equal(batches, autoencoder.epoch_batches(10, 4, seed=3, epoch=0))


def test_kill_and_resume_gives_the_uninterrupted_result(trained, tmp_path):
    model_dir = tmp_path / "killed"
    config_path = config_yaml.save(trained["config"], tmp_path / "config.yaml")
    script = textwrap.dedent(
        f"""
        import os, signal
        import keras
        from serlib.base import config
        from serlib.models import autoencoder

        class Kill(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if epoch + 1 == 1:
                    os.kill(os.getpid(), signal.SIGKILL)

        loaded = config.load({str(config_path)!r})
        autoencoder.train(loaded.autoencoder, {str(trained["store"])!r}, {str(model_dir)!r},
                          seed=loaded.seed, progress=False, callbacks=[Kill()])
        """
    )
    environment = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, timeout=300)
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()[-2000:]
    state = _state(model_dir)
    assert state["epoch"] == 1 and (model_dir / state["checkpoint"]).is_file()
    assert not (model_dir / autoencoder.MODEL_FILE).exists()

    path = autoencoder.train(
        trained["config"].autoencoder,
        trained["store"],
        model_dir,
        seed=trained["config"].seed,
        progress=False,
    )
    resumed = _state(model_dir)
    assert resumed["loss"][:1] == state["loss"] and len(resumed["loss"]) == 3
    # Same seed, same machine (another process, interrupted or not): same losses, weights and vectors.
    # Batch order and dropout masks depend only on (seed, epoch); the optimizer state is in the checkpoint.
    assert resumed["loss"] == _state(trained["path"].parent)["loss"]
    resumed_model, uninterrupted_model = autoencoder.load_model(path), autoencoder.load_model(trained["path"])
    for got, expected in zip(resumed_model.get_weights(), uninterrupted_model.get_weights(), strict=True):
        np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(
        autoencoder.encode(resumed_model, trained["data"], trained["config"].autoencoder.batch_size),
        autoencoder.encode(uninterrupted_model, trained["data"], trained["config"].autoencoder.batch_size),
    )
    assert (
        autoencoder.train(
            trained["config"].autoencoder,
            trained["store"],
            model_dir,
            seed=trained["config"].seed,
            progress=False,
        )
        == path
    )  # done: no-op


def test_seed_sets_the_initial_weights(trained):
    a = autoencoder.build_configured(trained["config"], seed=0, compile=False).get_weights()
    b = autoencoder.build_configured(trained["config"], seed=0, compile=False).get_weights()
    c = autoencoder.build_configured(trained["config"], seed=1, compile=False).get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0], c[0])


def test_changed_settings_refuse_to_resume(trained, tmp_path):
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    state = _state(trained["path"].parent)
    state["fingerprint"]["seed"] = 99
    (model_dir / autoencoder.STATE_FILE).write_text(json.dumps(state))
    with pytest.raises(autoencoder.AutoencoderError, match="different"):
        autoencoder.train(
            trained["config"].autoencoder,
            trained["data"],
            model_dir,
            seed=trained["config"].seed,
            progress=False,
        )


# -- encoding ----------------------------------------------------------------------------------------
def test_save_load_safe_mode_encode_identical(trained, tmp_path):
    model = autoencoder.load_model(trained["path"])
    vectors = autoencoder.encode(model, trained["data"], batch_size=20)
    model.save(tmp_path / "copy.keras")
    loaded = keras.saving.load_model(tmp_path / "copy.keras", safe_mode=True)
    np.testing.assert_array_equal(autoencoder.encode(loaded, trained["data"], batch_size=20), vectors)
    assert vectors.shape == (
        len(trained["data"]),
        autoencoder.representation_dim(trained["config"].autoencoder),
    )
    assert np.isfinite(vectors).all() and np.abs(vectors).max() < 1.0  # tanh outputs
    assert np.abs(vectors).std() > 0.01
    with pytest.raises(autoencoder.AutoencoderError, match="16"):
        autoencoder.encode(model, np.zeros((2, FRAMES, 8), np.float32), batch_size=20)


def test_configured_training_and_encoding_with_chunks(trained, tmp_path, monkeypatch):

    changes = {"autoencoder.epochs": 1, "autoencoder.encode_batch_size": 7, "autoencoder.layers": 1}
    config = _config(tmp_path / "out", **changes)
    data = trained["data"][:20]
    ids = [f"utt{i // 2}" for i in range(20)]  # two chunks per utterance, stored in auDeep order
    path = _write_store(tmp_path / "spectrograms.h5", data, ids, [i % 2 for i in range(20)])
    feature_set = store_module.FeatureSet(
        path=path,
        ids=ids,
        lengths=np.full(20, FRAMES, np.int32),
        chunk_numbers=np.array([i % 2 for i in range(20)]),
    )
    monkeypatch.setattr(store_module, "extract_configured", lambda config, key, extractor, **_: feature_set)

    model_path = autoencoder.train_configured(config, "demo_talks", progress=False)
    assert model_path.parent.parent == config.cache_path / "autoencoders"
    assert model_path.parent.name.startswith("demo_talks-")
    stamp = model_path.stat().st_mtime_ns
    config_path = config_yaml.save(config, tmp_path / "config.yaml")
    assert cli.main(["train-ae", "--config", str(config_path), "--corpus", "demo_talks"]) == 0
    assert model_path.stat().st_mtime_ns == stamp  # already trained: returned at once

    representations = autoencoder.encode_configured(config, model_path, "demo_talks", progress=False)
    dimension = autoencoder.representation_dim(config.autoencoder)
    assert representations.ids == [f"utt{i}" for i in range(10)]
    assert representations.vectors.shape == (10, 2 * dimension)  # chunks concatenated in order
    per_chunk = autoencoder.encode(autoencoder.load_model(model_path), data, batch_size=7)
    np.testing.assert_array_equal(representations.vectors[3], np.concatenate([per_chunk[6], per_chunk[7]]))
    with h5py.File(representations.path, "r") as handle:
        assert handle.attrs["model_sha256"] == encoding._sha256(model_path)
    again = autoencoder.encode_configured(config, model_path, "demo_talks", progress=False)
    assert again.path == representations.path
    np.testing.assert_array_equal(again.vectors, representations.vectors)
    assert (
        cli.main(
            ["encode", "--config", str(config_path), "--model", str(model_path), "--corpus", "demo_talks"]
        )
        == 0
    )


@pytest.mark.slow
def test_demo_corpus_end_to_end(tmp_path):
    """Demo preset on a small generated demo corpus: the loss falls, one finite vector per labeled utterance."""

    sizes = {
        "labeled_sessions": 5,
        "utterances_per_speaker_emotion": 1,
        "cross_sessions": 2,
        "cross_utterances_per_speaker_emotion": 1,
        "unlabeled_talks": 4,
        # 32 talk utterances (8 per voice) train the AE: last/first epoch loss 0.34 measured, bound 0.7
        "unlabeled_utterances": 32,
        "books_readers": 2,
        "books_utterances": 4,
    }
    config = config_module.override(config_module.load_preset("demo"), output_dir=str(tmp_path))
    generator.generate(tmp_path / "data" / "demo", seed=0, **sizes)
    model_path = autoencoder.train_configured(config, "demo_talks", progress=False)
    losses = _state(model_path.parent)["loss"]
    assert len(losses) == config.autoencoder.epochs
    assert losses[-1] < 0.7 * losses[0]
    representations = autoencoder.encode_configured(config, model_path, "demo_emotion", progress=False)
    manifest = loaders.load_configured(config, "demo_emotion")
    assert representations.ids == manifest["utterance_id"].tolist()
    assert representations.vectors.shape == (
        len(manifest),
        autoencoder.representation_dim(config.autoencoder),
    )
    assert np.isfinite(representations.vectors).all()


def test_time_major_gru_fallback_path_matches_the_fused_path(monkeypatch):
    # On a GPU (cuDNN) AudeepGRU(time_major=True) transposes and runs Keras' own GRU; same numbers.
    x = tf.constant(np.random.default_rng(2).uniform(-1, 1, (7, 3, 5)).astype(np.float32))  # [T, B, F]
    h0 = tf.constant(np.random.default_rng(3).uniform(-1, 1, (3, 4)).astype(np.float32))
    layer = autoencoder.AudeepGRU(
        4, time_major=True, return_sequences=True, return_state=True, reset_after=False
    )
    fused_outputs, fused_last = layer(x, initial_state=[h0])
    monkeypatch.setattr(autoencoder.AudeepGRU, "_fused", lambda self, mask: False)
    outputs, last = layer(x, initial_state=[h0])
    assert outputs.shape == (7, 3, 4) and last.shape == (3, 4)
    np.testing.assert_allclose(outputs, fused_outputs, atol=1e-6)
    np.testing.assert_allclose(last, fused_last, atol=1e-6)


@pytest.mark.parametrize("batch", [1, 3])
def test_batch_shards_give_the_same_outputs_for_any_batch_size(batch):
    x = tf.constant(np.random.default_rng(4).uniform(-1, 1, (6, batch, 5)).astype(np.float32))  # [T, B, F]
    one = autoencoder.AudeepGRU(4, time_major=True, return_sequences=True, return_state=True)
    two = autoencoder.AudeepGRU(4, time_major=True, batch_shards=2, return_sequences=True, return_state=True)
    one(x), two(x)
    two.set_weights(one.get_weights())
    for a, b in zip(one(x), two(x), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.parametrize(("interval", "expected"), [(3600.0, [2]), (0.0, [1, 2, 2])])
def test_the_loss_plot_is_drawn_at_the_end_and_at_most_once_per_interval(
    tmp_path, monkeypatch, interval, expected
):
    """The loss CSV is written every epoch (a resumed run reads it); the plot, matplotlib's slow part,
    when training ends and otherwise at most every ``HISTORY_PNG_INTERVAL_S`` (issue 44)."""
    from serlib.models.autoencoder import training

    drawn: list[int] = []
    plot = training._plot_history
    monkeypatch.setattr(training, "HISTORY_PNG_INTERVAL_S", interval)
    monkeypatch.setattr(
        training, "_plot_history", lambda folder, losses: drawn.append(len(losses)) or plot(folder, losses)
    )
    config = _config(tmp_path)
    autoencoder.train(
        config.autoencoder, _spectrograms(), tmp_path / "model", epochs=2, seed=0, progress=False
    )
    # interval 0: after each of the 2 epochs and at the end; a long interval: only at the end
    assert drawn == expected  # the epochs' losses each plot showed
    assert (tmp_path / "model" / autoencoder.HISTORY_PNG).stat().st_size > 1000
    assert len((tmp_path / "model" / autoencoder.HISTORY_CSV).read_text().splitlines()) == 3
