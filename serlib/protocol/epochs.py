"""Choosing ``acnn.epochs`` on training folds only (inner validation), for corpora smaller than IEMOCAP.

For each outer fold the ACNN (BL) is trained on all but one of the outer fold's training sessions and
scored on the held-out training session after every epoch; the plateau epoch of each fold's curve is
reported (``choose_epochs``). The test session of the outer fold is never used.
Command line: ``serlib epochs --config configs/emodb.yaml``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import keras
import numpy as np
import pandas as pd

from serlib.base import metrics
from serlib.base.config import Config
from serlib.features import normalisation
from serlib.models.acnn import feed as acnn_feed
from serlib.models.acnn import model as acnn
from serlib.models.acnn import reuse as acnn_reuse
from serlib.protocol.conditions import resolve_implementation
from serlib.protocol.folds import session_folds, within_folds
from serlib.protocol.labeled import acnn_input_shape, load_labeled
from serlib.protocol.svm import BaselineError

log = logging.getLogger(__name__)


def acnn_epoch_curves(
    config: Config, max_epochs: int = 100, seed: int = 0, inner_per_fold: int = 1
) -> pd.DataFrame:
    """Inner-validation UAR after every epoch, per outer fold and inner split (BL ACNN, no AE).

    For outer fold f (its test session is never used), the inner validation sessions are the
    ``inner_per_fold`` training sessions following f cyclically; for each, an ACNN is trained on the
    remaining training sessions for ``max_epochs`` epochs and scored on the inner session after every
    epoch. Rows: outer_fold, inner_session, epoch (1-based), uar, loss.
    """
    key = config.protocol.within_corpus
    if key is None:
        raise BaselineError("protocol.within_corpus is not set: no folds to choose epochs on")
    config = resolve_implementation(config)[0]  # auto: the path of the output folder's runs
    data = load_labeled(config, key)
    folds_of = session_folds(data.session)
    sessions = sorted(set(folds_of.tolist()))
    rows = []
    for outer in within_folds(config):
        training = [s for s in sessions if s != outer]
        start = training.index(next((s for s in training if s > outer), training[0]))
        inner_sessions = [
            training[(start + i) % len(training)] for i in range(min(inner_per_fold, len(training)))
        ]
        for inner in inner_sessions:
            train = data.subset(np.flatnonzero((folds_of != outer) & (folds_of != inner)))
            valid = data.subset(np.flatnonzero(folds_of == inner))
            keras.utils.set_random_seed(seed)
            statistics = None
            if config.features.standardise_in_model:  # as runs.fit_predict: only where the model standardises
                statistics = normalisation.band_statistics(train.logmel, train.lengths)
            # the input shape of runs.fit_predict (log-Mel bands or eGeMAPS descriptors), not logmel.bands
            frames, values_per_frame = acnn_input_shape(config.features)
            model = acnn_reuse.fresh_acnn(
                config.acnn,
                frames,
                values_per_frame,
                band_statistics=statistics,
                standardise=config.features.standardise_in_model,
            )
            scores: list[float] = []
            began = time.perf_counter()
            history = acnn_feed.fit_acnn(
                model,
                train.inputs(),
                train.targets(),
                batch_size=config.acnn.batch_size,
                epochs=max_epochs,
                seed=seed,
                shuffle=config.acnn.shuffle,
                callbacks=[_ValidationUAR(valid.inputs(), valid.emotion, scores)],
            )
            log.info(
                "outer fold %d, inner session %d: best inner UAR %.3f at epoch %d (%.0f s)",
                outer,
                inner,
                max(scores),
                int(np.argmax(scores)) + 1,
                time.perf_counter() - began,
            )
            for epoch, (uar, loss) in enumerate(zip(scores, history.history["loss"], strict=True), start=1):
                rows.append(
                    {"outer_fold": outer, "inner_session": inner, "epoch": epoch, "uar": uar, "loss": loss}
                )
    return pd.DataFrame(rows, columns=["outer_fold", "inner_session", "epoch", "uar", "loss"])


def _ValidationUAR(inputs: dict[str, np.ndarray], labels: np.ndarray, scores: list[float]) -> Any:
    """A Keras callback appending the emotion UAR on (inputs, labels) to ``scores`` after every epoch."""

    class ValidationUAR(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            outputs = self.model.predict(inputs, batch_size=acnn.PREDICT_BATCH_SIZE, verbose=0)
            probabilities = outputs[0] if isinstance(outputs, list) else outputs["emotion"]
            scores.append(metrics.uar(labels, np.argmax(probabilities, axis=1)))

    return ValidationUAR()


def choose_epochs(curves: pd.DataFrame, window: int = 5, tolerance: float = 0.01) -> pd.DataFrame:
    """Per outer fold: the best epoch of its inner curve (mean over its inner splits, centred moving
    average over ``window`` epochs, as single epochs on ~70 utterances are noisy) and the first epoch
    whose smoothed inner UAR is within ``tolerance`` of that best (the start of the plateau)."""
    rows = []
    for outer, group in curves.groupby("outer_fold", sort=True):
        mean = group.groupby("epoch")["uar"].mean().sort_index()
        smooth = mean.rolling(window, center=True, min_periods=1).mean()
        best = int(smooth.idxmax())
        plateau = int(smooth.index[smooth >= smooth.loc[best] - tolerance][0])
        rows.append(
            {
                "outer_fold": int(outer),
                "best_epoch": best,
                "plateau_epoch": plateau,
                "smoothed_uar_at_best": float(smooth.loc[best]),
                "smoothed_uar_at_plateau": float(smooth.loc[plateau]),
                "smoothed_uar_at_last": float(smooth.iloc[-1]),
            }
        )
    return pd.DataFrame(rows)
