"""The ACNN's batch order (``acnn.shuffle``): Keras 3's own feed of arrays repeats one order in every
epoch under a global seed; ``EpochShuffledFeed`` draws a new seeded order per epoch."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from serlib.base import config as config_module
from serlib.evidence import migration
from serlib.models.acnn import feed as acnn_feed
from serlib.protocol import conditions


def recording_model(steps_per_execution: int) -> tuple[keras.Model, list[list[int]]]:
    """A one-input model whose training step records the utterance numbers of every batch it gets."""
    batches: list[list[int]] = []

    class Recording(keras.Model):
        def train_step(self, data):  # noqa: ANN001, ANN202 - Keras' signature
            inputs, targets = data
            # inputs and targets stay paired: both hold the utterance's number
            np.testing.assert_array_equal(inputs["x"].numpy(), targets["y"].numpy())
            batches.append(inputs["x"].numpy().astype(int).ravel().tolist())
            return {"seen": tf.constant(0.0)}

    x = keras.Input((1,), name="x")
    model = Recording({"x": x}, {"y": keras.layers.Dense(1, name="y")(x)})
    model.compile(loss="mse", run_eagerly=True, steps_per_execution=steps_per_execution)
    return model, batches


def _epochs(batches: list[list[int]], steps_per_epoch: int) -> list[list[int]]:
    return [sum(batches[i : i + steps_per_epoch], []) for i in range(0, len(batches), steps_per_epoch)]


COUNT, BATCH, EPOCHS = 10, 4, 3  # 3 batches per epoch, the last one of 2
NUMBERS = np.arange(COUNT, dtype=np.float32)[:, None]


# the pinned demo BL fingerprint (commit 36fdf3c) and what `serlib migrate` rewrites it to (issue 43)
MIGRATED = {"fb31cf5f9226ce66": "29f67329d4780497"}


def test_keras_own_feed_repeats_its_first_order_in_every_epoch_under_a_global_seed() -> None:
    """Why ``acnn.shuffle: every_epoch`` exists. Should a Keras release reshuffle, this fails and the
    docstrings of ``acnn_feed`` and of ``acnn.shuffle: once`` must be revised."""
    keras.utils.set_random_seed(0)
    model, batches = recording_model(steps_per_execution=1)
    model.fit({"x": NUMBERS}, {"y": NUMBERS}, batch_size=BATCH, epochs=EPOCHS, shuffle=True, verbose=0)
    epochs = _epochs(batches, 3)
    assert len(epochs) == EPOCHS and sorted(epochs[0]) == list(range(COUNT))
    assert epochs[0] != list(range(COUNT))  # shuffled once ...
    assert epochs[1] == epochs[0] and epochs[2] == epochs[0]  # ... and never again


@pytest.mark.parametrize("steps_per_execution", [1, 8])
def test_every_epoch_order_is_a_new_seeded_permutation_per_epoch(steps_per_execution: int) -> None:
    def train(seed: int) -> list[list[int]]:
        keras.utils.set_random_seed(seed)
        model, batches = recording_model(steps_per_execution)
        acnn_feed.fit_acnn(
            model,
            {"x": NUMBERS},
            {"y": NUMBERS},
            batch_size=BATCH,
            epochs=EPOCHS,
            seed=seed,
            shuffle="every_epoch",
            callbacks=[],
        )
        assert [len(b) for b in batches] == [4, 4, 2] * EPOCHS  # Keras' batching, the last one smaller
        return _epochs(batches, 3)

    epochs = train(seed=5)
    np.testing.assert_array_equal(epochs, acnn_feed.epoch_orders(COUNT, EPOCHS, seed=5))
    assert all(sorted(order) == list(range(COUNT)) for order in epochs)  # each utterance once per epoch
    assert len({tuple(order) for order in epochs}) == EPOCHS  # a new order every epoch
    assert train(seed=5) == epochs  # same seed, same orders
    assert train(seed=6) != epochs


def test_epoch_orders_depend_on_seed_and_epoch_only() -> None:
    three = acnn_feed.epoch_orders(100, 3, seed=1)
    assert three.shape == (3, 100) and three.dtype == np.int64
    np.testing.assert_array_equal(acnn_feed.epoch_orders(100, 5, seed=1)[:3], three)  # longer runs extend
    assert not np.array_equal(acnn_feed.epoch_orders(100, 3, seed=2), three)


def test_feed_refuses_unpaired_arrays_an_unknown_order_and_a_missing_epoch() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        acnn_feed.EpochShuffledFeed({"x": NUMBERS}, {"y": NUMBERS[:5]}, BATCH, EPOCHS, seed=0)
    feed = acnn_feed.EpochShuffledFeed({"x": NUMBERS}, {"y": NUMBERS}, BATCH, EPOCHS, seed=0)
    with pytest.raises(ValueError, match="outside the feed's 3 epochs"):
        feed.set_epoch(3)
    model, _ = recording_model(1)
    with pytest.raises(ValueError, match="acnn.shuffle must be"):
        acnn_feed.fit_acnn(
            model,
            {"x": NUMBERS},
            {"y": NUMBERS},
            batch_size=4,
            epochs=1,
            seed=0,
            shuffle="twice",
            callbacks=[],
        )


def test_once_keeps_the_fingerprint_of_every_earlier_run_and_every_epoch_gets_its_own() -> None:
    demo = config_module.load_preset("demo")
    assert (
        demo.acnn.shuffle == "every_epoch"
        and config_module.load_preset("paper").acnn.shuffle == "every_epoch"
    )
    once = config_module.override(demo, **{"acnn.shuffle": "once"})
    identity = {"demo/logmel": "store.h5"}

    def of(config: config_module.Config) -> str:
        """The fingerprint as stored before issue 43's key migration (the pin below) and today's must
        be one migration apart: ``serlib migrate`` maps the first to the second."""
        old = migration.old_fingerprint(config, "within", config.condition("BL"), identity)
        new = conditions.fingerprint(config, "within", config.condition("BL"), identity)
        return old if new == MIGRATED.get(old, new) else f"{old} (not migrated to {new})"

    # the demo preset's BL fingerprint at commit 36fdf3c, before acnn.shuffle existed
    assert of(once) == "fb31cf5f9226ce66"
    assert of(demo) != of(once)
