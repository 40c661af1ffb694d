"""Reusing a traced ACNN between protocol runs: the numbers of a freshly built model, without re-tracing.

Every protocol run trains a *fresh* ACNN (paper: 10 seeds x folds x conditions). Building the Keras
model is cheap; what costs is tracing it: the first ``fit`` traces and optimises the training graph
and the first ``predict`` the inference graph, about 2-3 CPU-seconds per run at demo size, more than
the demo's training itself (docs/performance.md). A process that runs many runs of one architecture
can instead train one traced model again, once it holds exactly what a fresh model would hold:

1. the fresh model is still built (``acnn.build_acnn``) after the run's seeding, so it draws the same
   random numbers as before: same initial weights, band statistics and dropout seed;
2. its weights are copied into the traced model of the same architecture, the optimizer's slots
   (Adam's step count and moments) are set back to zero, and the dropout layer's seed state is copied.

The traced model then trains to byte-identical predictions (``tests/test_acnn.py`` compares a reused
model against a fresh one, run for run), so a run's result does not depend on which runs its process
did before it - the serial grid and Dask workers agree as before (docs/reliability.md). Models are
kept per thread (Keras models are not safe to train from two threads) and at most ``KEEP`` per thread.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any

import keras

from serlib.base.config import ACNNConfig
from serlib.models.acnn import model as acnn

KEEP = 4  # traced architectures kept per thread (a grid has one per (external_dim, dropout rate))
_local = threading.local()


def _traced() -> OrderedDict[str, keras.Model]:
    if not hasattr(_local, "models"):
        _local.models = OrderedDict()
    return _local.models


def fresh_acnn(acnn_config: ACNNConfig, frames: int, bands: int, **options: Any) -> keras.Model:
    """A model in exactly the state ``acnn.build_acnn(acnn_config, frames, bands, **options)`` returns
    now (options: ``external_dim``, ``setting``, ``band_statistics``, ``standardise``, ``convolution``,
    ``max_pooling``), reusing this thread's traced model of the same architecture when there is one."""
    fresh = acnn.build_acnn(acnn_config, frames, bands, **options)
    architecture = {
        name: f"{value.__module__}.{value.__qualname__}" if isinstance(value, type) else value
        for name, value in options.items()
        if name != "band_statistics"
    }
    key = json.dumps([acnn_config.model_dump(mode="json"), frames, bands, architecture], sort_keys=True)
    models = _traced()
    traced = models.get(key)
    if traced is None:
        models[key] = fresh
        while len(models) > KEEP:
            models.popitem(last=False)
        return fresh
    models.move_to_end(key)
    load_fresh_state(traced, fresh)
    return traced


def load_fresh_state(traced: keras.Model, fresh: keras.Model) -> None:
    """Give ``traced`` the state of the untrained ``fresh`` model of the same architecture: weights
    (trainable and not), zeroed optimizer slots and the dropout seed state."""
    traced_weights, fresh_weights = traced.weights, fresh.weights
    if [w.path for w in traced_weights] != [w.path for w in fresh_weights] or [
        tuple(w.shape) for w in traced_weights
    ] != [tuple(w.shape) for w in fresh_weights]:
        raise ValueError("load_fresh_state needs two ACNNs of the same architecture")
    for target, source in zip(traced_weights, fresh_weights, strict=True):
        target.assign(source.value)
    learning_rate = fresh.optimizer.learning_rate
    for variable in traced.optimizer.variables:
        if variable.path.endswith("learning_rate"):
            variable.assign(learning_rate)
        else:
            variable.assign(keras.ops.zeros(variable.shape, variable.dtype))
    for target_layer, source_layer in zip(traced.layers, fresh.layers, strict=True):
        generator: Any = getattr(source_layer, "seed_generator", None)
        if generator is not None:
            target_layer.seed_generator.state.assign(generator.state.value)
