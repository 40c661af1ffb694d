"""Diagnostic for docs/results-real-speech.md: the ACNN's cross-corpus UAR after every epoch.

Emo-DB <-> RAVDESS, condition BL, seeds 0-2, 40 epochs, for each log-Mel normalisation given on the
command line (``train``, ``corpus``, ``speaker``, and ``corpus+utterance_mean``: corpus statistics, then
each utterance's own per-band mean removed, as cepstral mean normalisation removes a channel). The
test corpus is scored after every epoch to see whether *any* number of epochs reaches 40 % UAR; it is
never used to choose anything. One JSON line per (normalisation, pair, seed).

    SERLIB_DATA=... SERLIB_TF_THREADS=1 python docs/probes/cross_corpus_epoch_curves.py \
        train corpus speaker corpus+utterance_mean
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from typing import Any

import keras
import numpy as np

from serlib.base import config as config_module
from serlib.base import metrics
from serlib.models.acnn import model as acnn
from serlib.protocol import labeled, runs

PAIRS = (("emodb", "ravdess"), ("ravdess", "emodb"))
SEEDS = (0, 1, 2)
EPOCHS = 40


def without_utterance_mean(data: labeled.LabeledData) -> labeled.LabeledData:
    """Each utterance's per-band mean over its real frames subtracted; padding stays zero."""
    values = np.zeros_like(data.logmel)
    for row, (frames, length) in enumerate(zip(data.logmel, data.lengths, strict=True)):
        n = int(min(length, len(frames)))
        values[row, :n] = frames[:n] - frames[:n].mean(axis=0)
    return replace(data, logmel=values)


class TestUARPerEpoch(keras.callbacks.Callback):
    """Scores the test corpus after every epoch (diagnostic only)."""

    def __init__(self, test: labeled.LabeledData) -> None:
        super().__init__()
        self.test, self.uars = test, []

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        predicted = acnn.predict_all(self.model, self.test.inputs())["emotion"].argmax(axis=1)
        self.uars.append(round(100 * metrics.uar(self.test.emotion, predicted), 1))


def main(modes: list[str]) -> None:
    for mode in modes:
        base = mode.split("+")[0]
        config = config_module.override(
            config_module.load("configs/cross-corpus.yaml"),
            **{"features.normalisation": base, "acnn.epochs": EPOCHS},
        )
        data = {key: labeled.load_labeled(config, key) for key in ("emodb", "ravdess")}
        if mode.endswith("+utterance_mean"):
            data = {key: without_utterance_mean(value) for key, value in data.items()}
        for train_key, test_key in PAIRS:
            for seed in SEEDS:
                curve = TestUARPerEpoch(data[test_key])
                runs.fit_predict(
                    config,
                    data[train_key],
                    data[test_key],
                    seed,
                    setting="cross",
                    progress=curve,
                )
                row = {
                    "mode": mode,
                    "pair": f"{train_key}->{test_key}",
                    "seed": seed,
                    "uar_by_epoch": curve.uars,
                }
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or ["train", "corpus", "speaker", "corpus+utterance_mean"])
