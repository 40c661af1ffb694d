"""The ACNN's training loop as one compiled function per epoch: Keras' steps without ``fit``'s machinery.

A demo run trains 15 epochs of 6-8 batches. ``model.fit`` spends more time around those steps than in
them (docs/performance.md, issue 44): per call it builds a data adapter, a ``tf.data`` pipeline and its
callbacks; per epoch it opens a new iterator over the pipeline and runs Python between the compiled
calls. ``fit_epochs`` does the same training with less: the run's arrays become tensors once, and each
epoch is one call of a traced function that gathers the epoch's batches in the order it is given
(the same orders as ``feed.EpochShuffledFeed``) and runs Keras' own ``model.train_step`` on each,
inside a ``tf.while_loop`` as ``fit`` with ``steps_per_execution`` does. Same batches in the same
order, same step (loss, weights, optimizer, dropout seeds): on one machine the weights and losses equal
``fit``'s (``tests/test_acnn_loop.py`` compares the two). The function is traced once per model, with
the batch dimension left open, so a model reused across runs (``reuse``) is not traced again.

Keras callbacks still see ``on_train_begin``, ``on_epoch_begin``, ``on_epoch_end`` (with the epoch's
``loss``) and ``on_train_end``, and ``model.stop_training`` ends training after an epoch (development
selection); per-batch hooks are not called (no serlib callback uses them).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from tensorflow.python.eager import context as tf_context

Arrays = dict[str, np.ndarray]
# TensorFlow's random ops that keep their state in the kernel (op-seeded, not stateless): a kernel cache
# kept across runs would carry their state from one run into the next (``set_random_seed``)
STATEFUL_RANDOM_OPS = frozenset(
    {
        "Multinomial",
        "ParameterizedTruncatedNormal",
        "RandomGamma",
        "RandomPoisson",
        "RandomPoissonV2",
        "RandomShuffle",
        "RandomStandardNormal",
        "RandomUniform",
        "RandomUniformInt",
        "TruncatedNormal",
    }
)
_seeding = threading.Lock()


def set_random_seed(seed: int) -> None:
    """``keras.utils.set_random_seed(seed)`` (Python, NumPy, Keras and TensorFlow seeds) without emptying
    TensorFlow's cache of instantiated functions.

    ``tf.random.set_seed`` empties that cache so that op-seeded random kernels start again; every traced
    function is then instantiated and optimised again at its next call, about 0.3 CPU-seconds for a
    demo run's epoch function (docs/performance.md, issue 44), more than 10 of its training steps. The
    ACNN's traced functions hold no such kernel (its dropout is stateless, seeded by Keras' seed
    generator, whose state ``reuse`` resets; ``stateful_random_ops`` checks), so keeping the cache
    changes no number; ``clear_stateful_kernels`` empties it for a model whose functions do. The
    cache-emptying call is replaced for the duration of Keras' seeding only, under a lock.
    """
    with _seeding, _kernel_cache_kept():
        keras.utils.set_random_seed(int(seed))


@contextlib.contextmanager
def _kernel_cache_kept() -> Iterator[None]:
    bindings: Any = tf_context.pywrap_tfe  # the call tf.random.set_seed makes to empty the cache
    clear = bindings.TFE_ContextClearCaches
    bindings.TFE_ContextClearCaches = lambda handle: None
    try:
        yield
    finally:
        bindings.TFE_ContextClearCaches = clear


def stateful_random_ops(function: Any) -> set[str]:
    """The op-seeded random ops (``STATEFUL_RANDOM_OPS``) in a traced ``tf.function`` with an input
    signature, its nested functions included."""
    graph = function.get_concrete_function().graph.as_graph_def()
    nodes = [*graph.node, *(node for f in graph.library.function for node in f.node_def)]
    return {node.op for node in nodes if node.op in STATEFUL_RANDOM_OPS}


def clear_stateful_kernels(model: keras.Model) -> bool:
    """Empty TensorFlow's kernel cache (as ``tf.random.set_seed`` does) when a traced function of
    ``model`` holds an op-seeded random kernel, so that a reused model's run starts as a fresh one's;
    True when it did."""
    analysis = model.__dict__.get("_serlib_analysis_model")
    functions = [
        *model.__dict__.get("_serlib_epoch_functions", {}).values(),
        *([analysis.__dict__["_serlib_predict_function"]] if analysis is not None else []),
    ]
    flags: dict[int, bool] = model.__dict__.setdefault("_serlib_stateful_random", {})
    for function in functions:
        if not hasattr(function, "get_concrete_function"):  # run eagerly: nothing traced, nothing kept
            continue
        if id(function) not in flags:
            flags[id(function)] = bool(stateful_random_ops(function))
    if any(flags.values()):
        tf_context.context().clear_kernel_cache()
        return True
    return False


def fit_epochs(
    model: keras.Model,
    inputs: Arrays,
    targets: Arrays,
    *,
    batch_size: int,
    orders: np.ndarray,
    callbacks: list[Any],
) -> keras.callbacks.History:
    """Train ``model`` (compiled by ``acnn.compile_acnn``) for ``len(orders)`` epochs, epoch e visiting
    the utterances in ``orders[e]`` order (``feed.epoch_orders``); returns Keras' ``History`` as
    ``model.fit`` does."""
    counts = {len(v) for v in (*inputs.values(), *targets.values())}
    if len(counts) != 1:
        raise ValueError(f"inputs and targets differ in length: {sorted(counts)}")
    count, orders = counts.pop(), np.asarray(orders, dtype=np.int64)
    if orders.ndim != 2 or orders.shape[1] != count:
        raise ValueError(f"orders of shape {orders.shape}: need [epochs, {count}] (one order per epoch)")
    data = (
        {name: tf.convert_to_tensor(value) for name, value in inputs.items()},
        {name: tf.convert_to_tensor(value) for name, value in targets.items()},
    )
    epoch_function = _epoch_function(model, data, int(batch_size))
    callback_list = keras.callbacks.CallbackList(callbacks, add_history=True, model=model)
    model.stop_training = False
    callback_list.on_train_begin()
    logs: dict[str, float] = {}
    for epoch in range(len(orders)):
        model.reset_metrics()
        callback_list.on_epoch_begin(epoch)
        epoch_function(data, tf.constant(orders[epoch]))
        logs = {name: float(value) for name, value in model.get_metrics_result().items()}
        callback_list.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    model.optimizer.finalize_variable_values(model.trainable_weights)
    callback_list.on_train_end(logs=logs)
    return model.history


def _epoch_function(model: keras.Model, data: Any, batch_size: int) -> Any:
    """This model's traced epoch (made once per model and batch size; the batch dimension stays open)."""
    signature = [
        tf.nest.map_structure(lambda t: tf.TensorSpec([None, *t.shape[1:]], t.dtype), data),
        tf.TensorSpec([None], tf.int64),
    ]
    key = f"{batch_size} {signature}"  # another batch size or input layout: another function
    cache: dict[str, Any] = model.__dict__.setdefault("_serlib_epoch_functions", {})
    if key in cache:
        return cache[key]
    if not model.built or not model.optimizer.built:  # as fit does before its first step
        model._symbolic_build(data_batch=data)
    # Keras' own per-step function (trainer._make_function): train_step, traced without autograph
    step = tf.autograph.experimental.do_not_convert(model.train_step)
    if not model.run_eagerly:
        step = tf.function(step, reduce_retracing=True)

    @tf.autograph.experimental.do_not_convert
    def epoch(data: Any, order: tf.Tensor) -> None:
        count = tf.shape(order, out_type=tf.int64)[0]
        steps = (count + batch_size - 1) // batch_size

        def body(index: tf.Tensor) -> tuple[tf.Tensor]:
            indices = order[index * batch_size : tf.minimum((index + 1) * batch_size, count)]
            step(tf.nest.map_structure(lambda array: tf.gather(array, indices), data))
            return (index + 1,)

        tf.while_loop(lambda index: index < steps, body, (tf.constant(0, tf.int64),))

    cache[key] = epoch if model.run_eagerly else tf.function(epoch, input_signature=signature)
    return cache[key]


def predict_batches(model: keras.Model, feeds: Arrays, batch_size: int) -> dict[str, np.ndarray]:
    """``model.predict(feeds, batch_size=batch_size)`` for a model with dict outputs, without its
    per-call machinery: each batch (the same slices as ``predict``'s) goes through one traced
    ``model(x, training=False)``, as Keras' ``predict_step`` does, traced once per model."""
    count = len(next(iter(feeds.values())))
    if count == 0:
        raise ValueError("predict_batches needs at least one utterance")
    # the model's own input specs (batch dimension open): inputs of another dtype are cast as Keras does
    specs = {tensor.name: tf.TensorSpec(tensor.shape, tensor.dtype) for tensor in model.inputs}
    function = model.__dict__.get("_serlib_predict_function")
    if function is None:
        call = tf.autograph.experimental.do_not_convert(lambda x: model(x, training=False))
        function = model if model.run_eagerly else tf.function(call, input_signature=[specs])
        model.__dict__["_serlib_predict_function"] = function
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, count, batch_size):
        batch = {
            name: tf.convert_to_tensor(feeds[name][start : start + batch_size], dtype=spec.dtype)
            for name, spec in specs.items()
        }
        for name, value in function(batch).items():
            parts.setdefault(name, []).append(np.asarray(value))
    return {name: np.concatenate(values) for name, values in parts.items()}
