"""One ACNN run: seed, build a fresh ACNN for the shape of the training data, train it in the configured order.

The protocol's runs (``serlib.protocol.runs``), ``serlib epochs`` (``serlib.protocol.epochs``) and the
calibration of ``acnn.implementation: auto`` (``choice``, which only times it) all train through ``train``,
so the three cannot drift apart: the model's input shape is read from the data it trains on (a copy of
this code once built a 26-band model for 25 eGeMAPS descriptors per frame), the band statistics come
from the same real frames, and the batches follow ``acnn.shuffle`` with the run's seed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from serlib.base.config import ACNNConfig
from serlib.features import normalisation
from serlib.models.acnn import LOGMEL_INPUT, REPRESENTATION_INPUT
from serlib.models.acnn import feed as acnn_feed
from serlib.models.acnn import kernels as acnn_kernels
from serlib.models.acnn import loop as acnn_loop
from serlib.models.acnn import reuse as acnn_reuse

Arrays = dict[str, np.ndarray]
Clock = Callable[[Callable[[], None]], float]  # runs the work it is given, returns the seconds it took


def wall_seconds(work: Callable[[], None]) -> float:
    """Wall-clock seconds that ``work`` takes (what a run records as its training time)."""
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


@dataclass
class TrainedACNN:
    """A trained ACNN with its training record: Keras' history per epoch, the seconds the training took
    (by the run's clock) and the band statistics of its in-model standardisation (None without one)."""

    model: keras.Model
    history: dict[str, list[float]]
    seconds: float
    statistics: tuple[np.ndarray, np.ndarray] | None


def train(
    acnn: ACNNConfig,
    inputs: Arrays,
    targets: Arrays,
    *,
    seed: int,
    lengths: np.ndarray,
    setting: str = "within",
    epochs: int | None = None,
    standardise: bool = True,
    callbacks: Sequence[Any] = (),
    clock: Clock = wall_seconds,
) -> TrainedACNN:
    """Train a freshly initialised ACNN on ``inputs`` (``logmel`` [N, frames, values per frame], and
    ``representation`` [N, D] when the run has an AE vector) for ``epochs`` (default ``acnn.epochs``).

    ``acnn.implementation`` must be resolved (``fast`` or ``reference``: ``kernels.layers_for``).
    ``seed`` seeds Python, NumPy and TensorFlow before the model is built (initial weights, dropout) and
    orders the batches; ``lengths``: the real frames of each utterance, for the band statistics of the
    in-model standardisation (``standardise``); ``setting`` chooses the dropout rate; ``callbacks``: Keras
    callbacks; ``clock(work)`` times the training (wall seconds; the calibration passes its CPU clock).
    The model is this thread's traced one of the same architecture when there is one
    (``reuse.fresh_acnn``: the numbers of a freshly built model).
    """
    layers = acnn_kernels.layers_for(acnn)
    # Keras' seeding, keeping the traced functions of earlier runs instantiated (loop.set_random_seed)
    acnn_loop.set_random_seed(int(seed))
    logmel = inputs[LOGMEL_INPUT]
    statistics = normalisation.band_statistics(logmel, lengths) if standardise else None
    representation = inputs.get(REPRESENTATION_INPUT)
    model = acnn_reuse.fresh_acnn(
        acnn,
        int(logmel.shape[1]),
        int(logmel.shape[2]),
        external_dim=0 if representation is None else int(representation.shape[1]),
        setting=setting,
        band_statistics=statistics,
        standardise=standardise,
        **layers,
    )
    acnn_loop.clear_stateful_kernels(model)  # only a model holding op-seeded random kernels needs it
    record: dict[str, Any] = {}

    def fit() -> None:
        record["history"] = acnn_feed.fit_acnn(
            model,
            inputs,
            targets,
            batch_size=acnn.batch_size,
            epochs=acnn.epochs if epochs is None else int(epochs),
            seed=int(seed),
            shuffle=acnn.shuffle,
            callbacks=list(callbacks),
        )

    seconds = clock(fit)
    history = {name: [float(x) for x in values] for name, values in record["history"].history.items()}
    return TrainedACNN(model=model, history=history, seconds=seconds, statistics=statistics)
