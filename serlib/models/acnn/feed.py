"""The ACNN's training feed: every epoch a new seeded order of the training utterances.

Stochastic gradient descent draws its mini-batches in a new random order every epoch (the Keras 2
code of the paper's time shuffled the index array before each epoch). Keras 3.15's own feed of numpy
arrays does not once a global seed is set: its permutation is a seeded random op inside a
``tf.data`` function, and every epoch starts a new iterator that restarts that op, so all epochs
repeat the first epoch's batches (``tests/test_acnn_feed.py`` shows it). ``EpochShuffledFeed``
draws one permutation per epoch with numpy from the run's seed and feeds the batches through
``tf.data``; ``acnn.shuffle: once`` keeps Keras' behaviour, with which the stored real-speech
results were trained.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from serlib.models.acnn import loop as acnn_loop

Arrays = dict[str, np.ndarray]


def epoch_orders(count: int, epochs: int, seed: int) -> np.ndarray:
    """``[epochs, count]``: row e is the order in which epoch e visits the utterances, a permutation
    seeded by (seed, e) as the autoencoder's epochs are (``autoencoder.training``)."""
    seed = int(seed) & 0xFFFFFFFF
    orders = [np.random.default_rng([seed, epoch]).permutation(count) for epoch in range(epochs)]
    return np.stack(orders).astype(np.int64)


class EpochShuffledFeed:
    """Training batches of ``(inputs, targets)`` in ``epoch_orders(count, epochs, seed)[e]`` order in
    epoch e; the last batch of an epoch may be smaller, as with Keras' own feed.

    Pass ``dataset`` to ``model.fit`` together with ``callback`` (it tells the feed which epoch begins).
    Which order an epoch gets depends only on the epoch's number, so an iterator Keras opens and drops
    between epochs changes nothing.
    """

    def __init__(self, inputs: Arrays, targets: Arrays, batch_size: int, epochs: int, seed: int) -> None:
        counts = {len(v) for v in (*inputs.values(), *targets.values())}
        if len(counts) != 1:
            raise ValueError(f"inputs and targets differ in length: {sorted(counts)}")
        self.count, self.batch_size = counts.pop(), int(batch_size)
        self.orders = epoch_orders(self.count, epochs, seed)
        self.steps_per_epoch = -(-self.count // self.batch_size)
        self._epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="feed_epoch")
        self.dataset = self._dataset(inputs, targets)

    def _dataset(self, inputs: Arrays, targets: Arrays) -> tf.data.Dataset:
        orders, epoch, batch_size = tf.constant(self.orders), self._epoch, self.batch_size

        def batches_of_this_epoch(_: Any) -> tf.data.Dataset:
            return tf.data.Dataset.from_tensor_slices(tf.gather(orders, epoch)).batch(batch_size)

        index_batches = tf.data.Dataset.range(1).flat_map(batches_of_this_epoch)
        whole = tf.data.Dataset.from_tensors((inputs, targets)).repeat()  # one copy, gathered per batch

        def gather(indices: tf.Tensor, data: Any) -> Any:
            return tf.nest.map_structure(lambda array: tf.gather(array, indices), data)

        dataset = tf.data.Dataset.zip(index_batches, whole).map(gather)
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(self.steps_per_epoch))
        options = tf.data.Options()
        options.experimental_external_state_policy = tf.data.experimental.ExternalStatePolicy.IGNORE
        return dataset.with_options(options).prefetch(2)

    def set_epoch(self, epoch: int) -> None:
        """Make the next iterator of ``dataset`` yield epoch ``epoch``'s order."""
        if not 0 <= epoch < len(self.orders):
            raise ValueError(f"epoch {epoch} outside the feed's {len(self.orders)} epochs")
        self._epoch.assign(int(epoch))

    def callback(self) -> keras.callbacks.Callback:
        """A Keras callback that moves the feed to each epoch as it begins."""
        feed = self

        class NextEpochOrder(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
                feed.set_epoch(epoch)

        return NextEpochOrder()


def fit_acnn(
    model: keras.Model,
    inputs: Arrays,
    targets: Arrays,
    *,
    batch_size: int,
    epochs: int,
    seed: int,
    shuffle: str,
    callbacks: list[Any],
    loop: str = "compiled",
) -> Any:
    """Train in the configured batch order (``acnn.shuffle``); returns Keras' ``History``.

    ``every_epoch``: a new seeded order per epoch, trained by ``loop.fit_epochs`` (one compiled function
    per epoch; ``loop="keras"``: ``model.fit`` on ``EpochShuffledFeed``, the same batches and numbers);
    ``once``: Keras' own feed of the arrays, which repeats its first order in every epoch.
    """
    if shuffle == "once":
        return model.fit(
            inputs,
            targets,
            batch_size=batch_size,
            epochs=epochs,
            shuffle=True,
            verbose=0,
            callbacks=callbacks,
        )
    if shuffle != "every_epoch":
        raise ValueError(f"acnn.shuffle must be 'every_epoch' or 'once', not {shuffle!r}")
    if loop not in ("compiled", "keras"):
        raise ValueError(f"loop must be 'compiled' or 'keras', not {loop!r}")
    if loop == "compiled" and not model.jit_compile:
        orders = epoch_orders(len(next(iter(targets.values()))), epochs, seed)
        return acnn_loop.fit_epochs(
            model, inputs, targets, batch_size=batch_size, orders=orders, callbacks=callbacks
        )
    feed = EpochShuffledFeed(inputs, targets, batch_size, epochs, seed)
    return model.fit(
        feed.dataset, epochs=epochs, shuffle=False, verbose=0, callbacks=[feed.callback(), *callbacks]
    )
