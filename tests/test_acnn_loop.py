"""The ACNN's compiled training loop and prediction (``serlib.models.acnn.loop``): the model ``fit`` and
``predict`` give, from the same batches in the same order, with Keras callbacks still called per epoch."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from test_acnn_feed import recording_model

from serlib.base import config as config_module
from serlib.features.normalisation import band_statistics
from serlib.models.acnn import feed as acnn_feed
from serlib.models.acnn import kernels as acnn_kernels
from serlib.models.acnn import loop as acnn_loop
from serlib.models.acnn import model as acnn
from serlib.models.acnn import reuse as acnn_reuse

FRAMES, BANDS, EXTERNAL = 60, 26, 5
# Same ops on the same batches: on one machine the two loops agree to the last bit (measured on the
# development machines); the tolerance only allows for a TensorFlow that orders a reduction differently.
TOLERANCE = {"rtol": 1e-5, "atol": 1e-6}


def _config(**changes):
    base = {
        "features.logmel.max_frames": FRAMES,
        "acnn.filters": 8,
        "acnn.pool_size": 5,
        "acnn.pool_stride": 3,
        "acnn.learning_rate": 0.01,
    }
    return config_module.override(config_module.load_preset("demo"), **(base | changes))


def _data(count: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    logmel = rng.normal(-8.0, 3.0, size=(count, FRAMES, BANDS)).astype(np.float32)
    lengths = rng.integers(FRAMES // 5, FRAMES + 1, count)
    logmel[np.arange(FRAMES)[None, :] >= lengths[:, None]] = 0.0
    inputs = {"logmel": logmel, "representation": rng.normal(size=(count, EXTERNAL)).astype(np.float32)}
    targets = {
        "emotion": rng.integers(0, 4, count).astype(np.int32),
        "arousal": rng.integers(-1, 3, count).astype(np.int32),
        "valence": rng.integers(-1, 3, count).astype(np.int32),
    }
    return inputs, targets, band_statistics(logmel, lengths)


def _train(loop: str, implementation: str, seed: int = 3, epochs: int = 4, count: int = 42):
    config = _config(**{"acnn.implementation": implementation})
    inputs, targets, statistics = _data(count)
    keras.utils.set_random_seed(seed)
    model = acnn.build_acnn(
        config.acnn,
        FRAMES,
        BANDS,
        external_dim=EXTERNAL,
        setting="within",
        band_statistics=statistics,
        **acnn_kernels.layers_for(config.acnn),  # the implementation under test, not the plain default
    )
    history = acnn_feed.fit_acnn(
        model,
        inputs,
        targets,
        batch_size=16,  # 3 batches per epoch, the last one of 10
        epochs=epochs,
        seed=seed,
        shuffle="every_epoch",
        callbacks=[],
        loop=loop,
    )
    return model, history.history, inputs


@pytest.mark.parametrize("implementation", ["reference", "fast"])
def test_compiled_loop_trains_the_model_keras_fit_trains(implementation: str) -> None:
    """Weights, optimizer state, per-epoch losses and test outputs of the compiled loop match ``fit``'s
    on the same seeded batches (dropout on: the seed stream is consumed alike)."""
    fitted, fitted_history, inputs = _train("keras", implementation)
    compiled, compiled_history, _ = _train("compiled", implementation)
    assert set(compiled_history) == set(fitted_history) and "loss" in compiled_history
    for name, values in fitted_history.items():
        assert len(compiled_history[name]) == 4
        np.testing.assert_allclose(compiled_history[name], values, **TOLERANCE, err_msg=name)
    for a, b in zip(fitted.get_weights(), compiled.get_weights(), strict=True):
        np.testing.assert_allclose(b, a, **TOLERANCE)
    assert int(compiled.optimizer.iterations.numpy()) == int(fitted.optimizer.iterations.numpy()) == 4 * 3
    for a, b in zip(fitted.optimizer.variables, compiled.optimizer.variables, strict=True):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), **TOLERANCE)
    before = acnn.predict_all(fitted, inputs, compiled=False)
    after = acnn.predict_all(compiled, inputs)
    for name in ("emotion", "arousal", "valence", "hidden", "attention"):
        np.testing.assert_allclose(after[name], before[name], **TOLERANCE, err_msg=name)
    # and the seed matters: another seed trains another model
    other, _, _ = _train("compiled", implementation, seed=4)
    assert not np.allclose(
        other.get_layer("conv").get_weights()[0], compiled.get_layer("conv").get_weights()[0]
    )


def test_compiled_loop_visits_the_epoch_orders_of_the_feed() -> None:
    """Every epoch visits the utterances in ``feed.epoch_orders``' order, in batches as Keras cuts them."""
    model, batches = recording_model(steps_per_execution=1)  # test_acnn_feed's recording model
    numbers = np.arange(10, dtype=np.float32)[:, None]
    orders = acnn_feed.epoch_orders(10, 3, seed=5)
    acnn_loop.fit_epochs(model, {"x": numbers}, {"y": numbers}, batch_size=4, orders=orders, callbacks=[])
    assert [len(b) for b in batches] == [4, 4, 2] * 3
    epochs = [sum(batches[i : i + 3], []) for i in range(0, 9, 3)]
    np.testing.assert_array_equal(epochs, acnn_feed.epoch_orders(10, 3, seed=5))


def test_callbacks_see_each_epoch_and_can_stop_training() -> None:
    """on_train_begin/on_epoch_begin/on_epoch_end(loss)/on_train_end, and ``stop_training`` after an
    epoch (the development selection of ``runs.fit_predict`` relies on it)."""
    events: list[tuple[str, int]] = []

    class Stop(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):  # noqa: ANN001, ANN201
            events.append(("begin", -1))

        def on_epoch_begin(self, epoch, logs=None):  # noqa: ANN001, ANN201
            events.append(("epoch", epoch))

        def on_epoch_end(self, epoch, logs=None):  # noqa: ANN001, ANN201
            assert np.isfinite(logs["loss"])
            events.append(("end", epoch))
            if epoch == 1:
                self.model.stop_training = True

        def on_train_end(self, logs=None):  # noqa: ANN001, ANN201
            events.append(("finish", -1))

    config = _config(**{"acnn.implementation": "reference"})
    inputs, targets, statistics = _data(20)
    model = acnn.build_acnn(config.acnn, FRAMES, BANDS, external_dim=EXTERNAL, band_statistics=statistics)
    orders = acnn_feed.epoch_orders(20, 5, seed=0)
    history = acnn_loop.fit_epochs(model, inputs, targets, batch_size=8, orders=orders, callbacks=[Stop()])
    assert events == [("begin", -1), ("epoch", 0), ("end", 0), ("epoch", 1), ("end", 1), ("finish", -1)]
    assert len(history.history["loss"]) == 2


def test_a_reused_model_is_traced_once_whatever_the_run_size() -> None:
    """The epoch and predict functions keep the batch dimension open: runs of other sizes on a model
    reused by ``reuse.fresh_acnn`` do not trace again (the saving this loop exists for)."""
    config = _config(**{"acnn.implementation": "reference"})
    model = None
    for count in (20, 33, 47):
        inputs, targets, statistics = _data(count, seed=count)
        keras.utils.set_random_seed(count)
        model = acnn_reuse.fresh_acnn(
            config.acnn, FRAMES, BANDS, external_dim=EXTERNAL, setting="cross", band_statistics=statistics
        )
        acnn_feed.fit_acnn(
            model, inputs, targets, batch_size=16, epochs=2, seed=count, shuffle="every_epoch", callbacks=[]
        )
        acnn.predict_all(model, inputs)
    functions = model.__dict__["_serlib_epoch_functions"]
    assert [f.experimental_get_tracing_count() for f in functions.values()] == [1]
    analysis = model._serlib_analysis_model
    assert analysis.__dict__["_serlib_predict_function"].experimental_get_tracing_count() == 1


def test_unusable_orders_and_empty_inputs_are_refused() -> None:
    config = _config(**{"acnn.implementation": "reference"})
    model = acnn.build_acnn(config.acnn, FRAMES, BANDS)
    inputs, targets, _ = _data(10)
    del inputs["representation"]
    with pytest.raises(ValueError, match=r"need \[epochs, 10\]"):
        acnn_loop.fit_epochs(model, inputs, targets, batch_size=4, orders=np.arange(10), callbacks=[])
    with pytest.raises(ValueError, match="at least one utterance"):
        acnn.predict_all(model, {"logmel": np.zeros((0, FRAMES, BANDS), np.float32)})


def _seeded_draws() -> list[float]:
    """One draw from each generator a run's seed seeds: Python, NumPy, Keras' global seed generator, and
    TensorFlow's global seed with the operation seed it gives the next op-seeded op."""
    import random

    from tensorflow.python.eager import context as tf_context

    return [
        random.random(),
        float(np.random.random()),
        float(keras.random.uniform((1,))[0]),
        tf_context.global_seed(),
        tf_context.internal_operation_seed(),
    ]


def test_set_random_seed_seeds_as_keras_does_but_keeps_instantiated_kernels() -> None:
    """``loop.set_random_seed`` draws what ``keras.utils.set_random_seed`` draws, and leaves TensorFlow's
    instantiated kernels as they are: an op-seeded random kernel inside a traced function carries on
    with its sequence where ``keras.utils.set_random_seed`` restarts it."""
    import tensorflow as tf

    keras.utils.set_random_seed(11)
    keras_draws = _seeded_draws()
    acnn_loop.set_random_seed(11)
    assert _seeded_draws() == keras_draws

    draw = tf.function(lambda: tf.random.uniform((3,)))  # a stateful (op-seeded) kernel
    keras.utils.set_random_seed(5)
    first, second = draw().numpy(), draw().numpy()
    keras.utils.set_random_seed(5)
    np.testing.assert_array_equal(draw().numpy(), first)  # cache emptied: the sequence starts again
    acnn_loop.set_random_seed(5)
    np.testing.assert_array_equal(draw().numpy(), second)  # cache kept: it goes on


def test_the_acnn_holds_no_op_seeded_random_kernel_and_a_model_that_does_is_reset() -> None:
    """The ACNN's traced epoch and prediction functions (both implementations) have only stateless
    random ops, so keeping their kernels between runs changes nothing; a model whose training step
    draws from an op-seeded kernel gets TensorFlow's cache emptied (``clear_stateful_kernels``)."""
    import tensorflow as tf

    for implementation in ("reference", "fast"):
        model, _, inputs = _train("compiled", implementation, epochs=1)
        acnn.predict_all(model, inputs)
        functions = [
            *model.__dict__["_serlib_epoch_functions"].values(),
            model._serlib_analysis_model.__dict__["_serlib_predict_function"],
        ]
        assert [acnn_loop.stateful_random_ops(f) for f in functions] == [set(), set()], implementation
        assert acnn_loop.clear_stateful_kernels(model) is False

    class Noisy(keras.layers.Layer):
        def call(self, x, training=False):  # noqa: ANN001, ANN201
            return x + tf.random.uniform(tf.shape(x)) if training else x

    x = keras.Input((2,), name="x")
    noisy = keras.Model({"x": x}, {"y": keras.layers.Dense(1, name="y")(Noisy()(x))})
    noisy.compile(optimizer="sgd", loss={"y": "mse"})
    numbers = np.ones((6, 2), np.float32)
    acnn_loop.fit_epochs(
        noisy, {"x": numbers}, {"y": numbers[:, :1]}, batch_size=3, orders=np.arange(6)[None], callbacks=[]
    )
    (function,) = noisy.__dict__["_serlib_epoch_functions"].values()
    assert acnn_loop.stateful_random_ops(function) == {"RandomUniform"}
    assert acnn_loop.clear_stateful_kernels(noisy) is True


def test_a_run_on_kept_kernels_equals_a_run_after_keras_seeding() -> None:
    """``run.train`` on a reused model, its kernels kept from the run before, gives the bytes of the
    same run on a fresh model seeded by ``keras.utils.set_random_seed`` (which empties the cache)."""
    from serlib.models.acnn import run as acnn_run

    config = _config(**{"acnn.implementation": "fast"})
    inputs, targets, _ = _data(40)
    lengths = (inputs["logmel"] != 0).any(axis=-1).sum(axis=1)
    acnn_reuse._traced().clear()
    first = acnn_run.train(config.acnn, inputs, targets, seed=0, lengths=lengths, setting="cross")
    kept = acnn_run.train(config.acnn, inputs, targets, seed=4, lengths=lengths, setting="cross")
    assert kept.model is first.model
    kept_outputs = acnn.predict_all(kept.model, inputs)

    acnn_reuse._traced().clear()
    keras.utils.set_random_seed(4)
    fresh = acnn.build_acnn(
        config.acnn,
        FRAMES,
        BANDS,
        external_dim=EXTERNAL,
        setting="cross",
        band_statistics=band_statistics(inputs["logmel"], lengths),
        **acnn_kernels.layers_for(config.acnn),
    )
    history = acnn_feed.fit_acnn(
        fresh,
        inputs,
        targets,
        batch_size=config.acnn.batch_size,
        epochs=config.acnn.epochs,
        seed=4,
        shuffle="every_epoch",
        callbacks=[],
    )
    assert kept.history["loss"] == [float(x) for x in history.history["loss"]]
    for a, b in zip(kept.model.get_weights(), fresh.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    fresh_outputs = acnn.predict_all(fresh, inputs)
    for name in ("emotion", "hidden", "attention"):
        np.testing.assert_array_equal(kept_outputs[name], fresh_outputs[name], err_msg=name)
