"""The ACNN: the paper preset's layer shapes and parameter counts, attention, the multi-view loss,
standardisation, and a safe-mode save/load round trip."""

from __future__ import annotations

import numpy as np
import pytest

from serlib.base import config as config_module
from serlib.features.normalisation import band_statistics
from serlib.models.acnn import kernels as acnn_kernels
from serlib.models.acnn import model as acnn


def _layer_shapes(model):
    return {layer.name: layer.output for layer in model.layers}


@pytest.fixture(scope="module")
def paper():
    return config_module.load_preset("paper")


def _tiny(**changes):
    base = {
        "features.logmel.max_frames": 60,
        "acnn.filters": 8,
        "acnn.pool_size": 5,
        "acnn.pool_stride": 3,
        "acnn.learning_rate": 0.01,
    }
    return config_module.override(config_module.load_preset("demo"), **(base | changes))


@pytest.mark.parametrize("external_dim", [0, 1024])
def test_paper_preset_layers_and_parameter_counts(paper, external_dim):
    model = acnn.build_configured(paper, external_dim=external_dim)
    conv = model.get_layer("conv")
    assert tuple(conv.output.shape) == (None, 247, 200)  # (750 - 10) // 3 + 1 time steps, 200 filters
    assert tuple(model.get_layer("pool").output.shape) == (None, 73, 200)  # (247 - 30) // 3 + 1
    assert conv.count_params() == 26 * 10 * 200 + 200 == 52_200
    assert model.get_layer("attention").count_params() == 200  # W only; a bias would cancel in the softmax
    hidden = 200 + external_dim
    assert tuple(model.get_layer("hidden").output.shape) == (None, hidden)
    assert model.get_layer("emotion").count_params() == hidden * 4 + 4
    assert model.get_layer("arousal").count_params() == hidden * 3 + 3
    assert model.get_layer("valence").count_params() == hidden * 3 + 3
    assert model.get_layer("standardise").count_params() == 2 * 26  # non-trainable mean and std
    assert model.get_layer("dropout").rate == pytest.approx(0.2)  # keep probability 0.8
    assert [t.name for t in model.inputs] == ["logmel", "representation"][: 1 + (external_dim > 0)]
    assert model.output_names == ["emotion", "arousal", "valence"]
    assert tuple(model.inputs[0].shape) == (None, 750, 26)


def test_pool_stride_equal_to_pool_size_gives_eight_steps(paper):
    config = config_module.override(paper, **{"acnn.pool_stride": 30})
    model = acnn.build_configured(config)
    assert tuple(model.get_layer("pool").output.shape) == (None, 8, 200)
    assert acnn.pooled_steps(750, config.acnn) == 8
    assert acnn.pooled_steps(750, paper.acnn) == 73


def test_dropout_is_the_keras_rate_of_the_setting(paper):
    assert (
        acnn.build_configured(paper, setting="cross").get_layer("dropout").rate
        == paper.acnn.dropout_cross
        == 0.3
    )
    assert acnn.build_configured(paper).get_layer("dropout").rate == paper.acnn.dropout == 0.2
    half = config_module.override(paper, **{"acnn.dropout": 0.5})
    assert acnn.build_configured(half).get_layer("dropout").rate == 0.5  # what Keras means by 0.5


def test_too_few_frames_for_the_pooling_is_a_clear_error(paper):
    config = config_module.override(paper, **{"features.logmel.max_frames": 50})
    with pytest.raises(acnn.ACNNError, match="max_frames"):
        acnn.build_configured(config)


@pytest.mark.parametrize("masking", [False, True])
def test_attention_weights_sum_to_one_and_masking_ignores_padding(masking):
    config = _tiny(**{"acnn.attention_masking": masking})
    model = acnn.build_configured(config)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 60, 26)).astype(np.float32)
    x[:, 30:] = 0.0  # 30 real frames, then padding
    alpha = acnn.attention_weights(model, {"logmel": x})
    steps = acnn.pooled_steps(60, config.acnn)
    assert alpha.shape == (5, steps)
    np.testing.assert_allclose(alpha.sum(axis=1), 1.0, atol=1e-5)
    assert (alpha >= 0).all()
    # pooled step p sees frames [9p, 9p + 3 * (5 - 1) + 10) = [9p, 9p + 22): step 4 starts at frame 36
    if masking:
        assert (alpha[:, 4:] == 0).all() and (alpha[:, :4] > 0).all()
    else:
        assert (alpha > 0).all()


def _softmax_cross_entropy(probabilities, labels):
    rated = labels >= 0
    return float(np.mean(-np.log(probabilities[rated, labels[rated]])))


def test_multi_view_loss_is_the_weighted_sum_of_three_cross_entropies():
    config = _tiny(**{"acnn.arousal_weight": 0.3, "acnn.valence_weight": 0.1})
    model = acnn.build_configured(config, external_dim=3)
    rng = np.random.default_rng(1)
    inputs = {
        "logmel": rng.normal(size=(6, 60, 26)).astype(np.float32),
        "representation": rng.uniform(-1, 1, size=(6, 3)).astype(np.float32),
    }
    targets = {
        "emotion": np.array([0, 1, 2, 3, 0, 1]),
        "arousal": np.array([0, 1, 2, -1, 2, 0]),  # one unrated utterance: left out of L_aro
        "valence": np.array([2, 1, 0, 1, 1, 2]),
    }
    emotion, arousal, valence = model.predict(inputs, verbose=0)  # dropout is off at inference
    expected = (
        0.6 * _softmax_cross_entropy(emotion, targets["emotion"])
        + 0.3 * _softmax_cross_entropy(arousal, targets["arousal"])
        + 0.1 * _softmax_cross_entropy(valence, targets["valence"])
    )
    result = model.evaluate(inputs, targets, batch_size=6, verbose=0, return_dict=True)
    assert result["loss"] == pytest.approx(expected, rel=1e-5)


def test_band_statistics_use_only_real_frames_and_padding_stays_zero():
    rng = np.random.default_rng(2)
    features = np.zeros((3, 60, 26), dtype=np.float32)
    lengths = np.array([60, 20, 41])
    for i, n in enumerate(lengths):
        features[i, :n] = rng.normal(loc=-15.0, scale=3.0, size=(n, 26))
    mean, std = band_statistics(features, lengths)
    real = np.concatenate([features[i, :n] for i, n in enumerate(lengths)])
    np.testing.assert_allclose(mean, real.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(std, real.std(axis=0), rtol=1e-4)
    layer = acnn.BandStandardisation(26)
    layer.set_statistics(mean, std)
    standardised = np.asarray(layer(features))
    assert (standardised[1, 20:] == 0).all()
    joined = np.concatenate([standardised[i, :n] for i, n in enumerate(lengths)])
    np.testing.assert_allclose(joined.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(joined.std(axis=0), 1.0, atol=1e-3)


def test_safe_mode_round_trip_gives_identical_predictions(tmp_path):
    config = _tiny(**{"acnn.attention_masking": True})
    rng = np.random.default_rng(3)
    model = acnn.build_configured(
        config, external_dim=4, band_statistics=(np.full(26, -10.0), np.full(26, 2.0))
    )
    inputs = {
        "logmel": rng.normal(size=(8, 60, 26)).astype(np.float32),
        "representation": rng.uniform(-1, 1, size=(8, 4)).astype(np.float32),
    }
    targets = {
        "emotion": rng.integers(0, 4, 8),
        "arousal": rng.integers(0, 3, 8),
        "valence": rng.integers(0, 3, 8),
    }
    model.fit(inputs, targets, epochs=1, batch_size=8, verbose=0)
    path = tmp_path / "acnn.keras"
    model.save(path)
    loaded = acnn.load_acnn(path)
    before, after = acnn.predict_all(model, inputs), acnn.predict_all(loaded, inputs)
    for name in ("emotion", "arousal", "valence", "hidden", "attention"):
        np.testing.assert_array_equal(before[name], after[name])
    assert before["hidden"].shape == (8, 8 + 4)
    np.testing.assert_allclose(np.asarray(loaded.get_layer("standardise").mean), -10.0)
    hidden = acnn.hidden_model(loaded).predict(inputs, verbose=0)
    np.testing.assert_array_equal(hidden, after["hidden"])


def _padded_batch(frames: int, count: int, seed: int = 0):
    """Log-Mel-like inputs whose lengths vary (zero padding at the end) and random labels."""
    rng = np.random.default_rng(seed)
    inputs = rng.normal(-8.0, 3.0, size=(count, frames, 26)).astype(np.float32)
    lengths = rng.integers(frames // 5, frames + 1, count)
    lengths[:3] = (frames, frames // 4, frames // 3)  # a full-length, and batches of short ones
    for row, length in enumerate(lengths):
        inputs[row, length:] = 0.0
    targets = {
        "emotion": rng.integers(0, 4, count).astype(np.int32),
        "arousal": rng.integers(-1, 3, count).astype(np.int32),
        "valence": rng.integers(-1, 3, count).astype(np.int32),
    }
    return inputs, lengths, targets


@pytest.mark.parametrize(
    "changes",
    [
        {},  # the paper's pooling (30 / 3): overlapping windows, the XLA-compiled gradient
        {"acnn.pool_stride": 30},  # non-overlapping windows
        {"acnn.pool_size": 10},  # 10 is no multiple of 3: Keras' own pooling
        {"acnn.attention_masking": True},
    ],
    ids=["pool-30-3", "pool-30-30", "pool-10-3", "masking"],
)
def test_fast_implementation_equals_the_reference_within_float32_rounding(paper, changes):
    """Predictions, the loss of each of two epochs and the weights after them: the speed kernels
    (padding-aware convolution, pooling with a compiled gradient) compute the reference's function."""
    import keras

    frames = 240
    base = {"features.logmel.max_frames": frames, "acnn.filters": 40} | changes
    inputs, lengths, targets = _padded_batch(frames, 96)
    results = {}
    for implementation in ("reference", "fast"):
        config = config_module.override(paper, **base, **{"acnn.implementation": implementation})
        keras.utils.set_random_seed(3)
        model = acnn.build_configured(config, band_statistics=band_statistics(inputs, lengths))
        before = model.predict(inputs, batch_size=32, verbose=0)
        history = model.fit(inputs, targets, batch_size=16, epochs=2, shuffle=True, verbose=0)
        results[implementation] = (before, history.history["loss"], model.get_weights(), model)
    (reference, fast) = results["reference"], results["fast"]

    assert type(fast[3].get_layer("pool")) is acnn_kernels.FastMaxPooling1D
    assert type(fast[3].get_layer("conv")) is acnn_kernels.PaddingAwareConv1D
    assert type(reference[3].get_layer("pool")) is keras.layers.MaxPooling1D
    pool = config_module.override(paper, **base).acnn
    assert acnn_kernels.fast_pooling_applies(pool.pool_size, pool.pool_stride, "valid") == (
        pool.pool_size != 10
    )
    for a, b in zip(reference[0], fast[0], strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    assert len(reference[1]) == len(fast[1]) == 2
    np.testing.assert_allclose(reference[1], fast[1], rtol=1e-5)
    for a, b in zip(reference[2], fast[2], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_padding_aware_convolution_and_fast_pooling_outputs_and_gradients(paper):
    """Layer by layer: the same outputs as Keras' layers, and the same kernel and bias gradients within
    rounding, for batches whose real frames end early (the skipped steps) or fill the input."""
    import tensorflow as tf

    inputs, _, _ = _padded_batch(120, 8, seed=1)
    for batch in (inputs[:1], inputs[1:3], inputs):  # long, short-only and mixed batches
        x = tf.constant(batch)
        reference = tf.keras.layers.Conv1D(16, 10, strides=3, activation="relu")
        fast = acnn_kernels.PaddingAwareConv1D(16, 10, strides=3, activation="relu")
        reference.build(x.shape)
        fast.build(x.shape)
        rng = np.random.default_rng(2)
        weights = [rng.normal(size=w.shape).astype(np.float32) * 0.1 for w in reference.weights]
        weights[1] += 0.05  # positive biases: the padded steps carry relu(b) > 0
        reference.set_weights(weights)
        fast.set_weights(weights)
        gradients = []
        for layer, pooling in (
            (reference, tf.keras.layers.MaxPooling1D(6, 3)),
            (fast, acnn_kernels.FastMaxPooling1D(6, 3)),
        ):
            with tf.GradientTape() as tape:
                pooled = pooling(layer(x))
                loss = tf.reduce_sum(tf.sin(pooled))
            gradients.append((pooled.numpy(), [g.numpy() for g in tape.gradient(loss, layer.weights)]))
        np.testing.assert_allclose(gradients[0][0], gradients[1][0], rtol=0, atol=1e-6)
        for a, b in zip(gradients[0][1], gradients[1][1], strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_fast_pooling_gradient_goes_to_each_windows_first_largest_step_as_max_pool_grad():
    """The block gradient of ``max_pool_1d`` equals TensorFlow's ``MaxPoolGrad`` (the first largest step of
    each window takes the window's gradient), ties included: ReLU zeros and constant padded steps."""
    import tensorflow as tf

    rng = np.random.default_rng(4)
    steps = rng.normal(size=(5, 97, 7)).astype(np.float32)
    steps = np.maximum(steps, 0.0)  # ReLU: many equal zeros
    steps[1:3, 40:] = 0.3  # the constant steps over zero padding
    steps[4] = np.round(steps[4], 1)  # coarse values: ties inside blocks and windows
    x = tf.constant(steps)
    # the paper's reading, the sensitivity run's (pool stride 30) and a small pool
    for size, stride in ((30, 3), (30, 30), (6, 3)):
        windows = (steps.shape[1] - size) // stride + 1
        upstream = tf.constant(rng.normal(size=(5, windows, 7)).astype(np.float32))
        results = []
        for pool in (tf.keras.layers.MaxPooling1D(size, stride), None):
            with tf.GradientTape() as tape:
                tape.watch(x)
                pooled = pool(x) if pool is not None else acnn_kernels.max_pool_1d(x, size, stride)
            results.append((pooled.numpy(), tape.gradient(pooled, x, output_gradients=upstream).numpy()))
        (expected_pooled, expected), (fast_pooled, gradient) = results
        np.testing.assert_array_equal(fast_pooled, expected_pooled)
        np.testing.assert_allclose(gradient, expected, rtol=0, atol=1e-6)
        assert np.count_nonzero(gradient) == np.count_nonzero(expected)  # the same steps take the gradient


def test_fast_layers_load_in_safe_mode(tmp_path, paper):
    config = config_module.override(
        paper, **{"features.logmel.max_frames": 120, "acnn.filters": 8, "acnn.implementation": "fast"}
    )
    model = acnn.build_configured(config)
    model.save(tmp_path / "fast.keras")
    loaded = acnn.load_acnn(tmp_path / "fast.keras")
    assert type(loaded.get_layer("conv")).__name__ == "PaddingAwareConv1D"
    inputs, _, _ = _padded_batch(120, 4)
    for a, b in zip(model.predict(inputs, verbose=0), loaded.predict(inputs, verbose=0), strict=True):
        np.testing.assert_array_equal(a, b)


def test_reused_traced_model_trains_exactly_like_a_fresh_one():
    """``acnn_reuse.fresh_acnn`` hands back this thread's traced model after another run trained it; a
    run on it gives the bytes a freshly built model gives (weights, optimizer slots, dropout seed reset),
    and a model of another shape is never handed out for it."""
    import keras

    from serlib.models.acnn import reuse as acnn_reuse

    config = _tiny(**{"acnn.filters": 16})
    inputs, lengths, targets = _padded_batch(60, 48, seed=1)
    external = np.random.default_rng(2).normal(size=(48, 5)).astype(np.float32)
    feeds = {"logmel": inputs, "representation": external}
    statistics = band_statistics(inputs, lengths)

    def train(seed: int, reuse: bool):
        keras.utils.set_random_seed(seed)
        options = {"external_dim": 5, "setting": "cross", "band_statistics": statistics}
        if reuse:
            model = acnn_reuse.fresh_acnn(config.acnn, 60, 26, **options)
        else:
            model = acnn.build_acnn(config.acnn, 60, 26, **options)
        history = model.fit(feeds, targets, batch_size=16, epochs=3, shuffle=True, verbose=0)
        return model, history.history["loss"], acnn.predict_all(model, feeds)

    first, first_loss, _ = train(0, reuse=True)  # traced here, kept for the run below
    other_shape = acnn_reuse.fresh_acnn(config.acnn, 60, 26, external_dim=3, setting="cross")
    assert other_shape is not first
    reused, reused_loss, reused_outputs = train(4, reuse=True)
    assert reused is first
    fresh, fresh_loss, fresh_outputs = train(4, reuse=False)
    assert fresh is not first
    assert reused_loss == fresh_loss and reused_loss != first_loss  # and the seed matters
    for name in ("emotion", "arousal", "valence", "hidden", "attention"):
        np.testing.assert_array_equal(reused_outputs[name], fresh_outputs[name], err_msg=name)
    for a, b in zip(reused.get_weights(), fresh.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
