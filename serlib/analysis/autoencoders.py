"""Notebook 02: which autoencoders the protocol needs, their loss curves and reconstructions, and the
bidirectional decoder's target leakage (auDeep specification, section 2.4) measured."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import keras
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from serlib.analysis.tsne import AnalysisError
from serlib.data import loaders
from serlib.models import autoencoder
from serlib.protocol import conditions
from serlib.protocol.conditions import autoencoder_corpus, settings_of

log = logging.getLogger(__name__)


def autoencoder_jobs(config: Any) -> pd.DataFrame:
    """Each distinct autoencoder the protocol needs, once: corpus key, epochs and the conditions using it."""
    rows = [
        {"corpus": key, "epochs": epochs, "used_by": ", ".join(users)}
        for (key, epochs), users in conditions.autoencoder_jobs(config).items()
    ]
    return pd.DataFrame(rows, columns=["corpus", "epochs", "used_by"])


def largest_autoencoder_condition(config: Any) -> Any:
    """The condition whose AE saw the most unlabeled utterances (full TED-LIUM, fT, in the paper)."""
    setting = settings_of(config)[0] if settings_of(config) else "within"
    best, best_count = None, -1
    for condition in config.protocol.conditions:
        key = autoencoder_corpus(config, setting, condition)
        if key is None:
            continue
        count = len(loaders.load_configured(config, key))
        if count >= best_count:  # ties go to the later condition, as fT comes last in the paper
            best, best_count = condition, count
    if best is None:
        raise AnalysisError("no condition of protocol.conditions trains an autoencoder: nothing to show")
    return best


def autoencoder_model(config: Any, condition: Any = None) -> tuple[Path, str]:
    """The trained AE of ``condition`` (default: the most unlabeled data) for the within-corpus setting,
    trained now or found in the cache: (model path, corpus key it was trained on)."""
    condition = condition or largest_autoencoder_condition(config)
    setting = settings_of(config)[0]
    key = autoencoder_corpus(config, setting, condition)
    if key is None:
        raise AnalysisError(f"condition {condition.name} trains no autoencoder (autoencoder_corpus: none)")
    return autoencoder.train_configured(config, key, epochs=condition.autoencoder_epochs), key


def loss_history(model_path: str | os.PathLike[str]) -> list[float]:
    """Reconstruction RMSE per epoch stored next to a trained AE (``loss_history.csv``)."""
    path = Path(model_path).parent / autoencoder.HISTORY_CSV
    if not path.is_file():
        raise AnalysisError(
            f"{path} does not exist: was {model_path} trained by serlib.models.autoencoder (serlib train-ae)?"
        )
    return pd.read_csv(path)["loss"].astype(float).tolist()


def _decoder_model(model: Any) -> tuple[Any, Any]:
    """(spectrogram -> decoder input, [spectrogram, decoder input] -> reconstruction) from a trained AE."""
    decoder_input = model.get_layer("decoder_input").output
    return keras.Model(model.inputs[0], decoder_input), keras.Model(
        [model.inputs[0], decoder_input], model.outputs[0]
    )


def reconstruct(model: Any, spectrograms: np.ndarray) -> np.ndarray:
    """Reconstructions ``[n, T, F]`` in the input's time order (the AE itself outputs reversed time)."""
    x = np.asarray(spectrograms, dtype=np.float32)
    if x.ndim == 2:
        x = x[np.newaxis]
    return np.asarray(model(x, training=False))[:, ::-1]


def decoder_leakage(
    model: Any, spectrogram: np.ndarray, offsets: Iterable[int] = range(-3, 5)
) -> pd.DataFrame:
    """How much the reconstruction of each frame depends on each decoder input: the target-leakage test.

    The decoder reconstructs target frame t (the reversed input) from its inputs [0, target[0], ...],
    so in auDeep's bidirectional decoder, decoder input t+1 IS target[t], and the backward direction
    reads it ("target leakage"). For every offset k, decoder input t+k is blanked (set to 0,
    the middle of the [-1, 1] range) in copy t of the utterance, and output frame t is compared with
    the output when nothing is blanked. One row per offset: ``change`` (RMS change of output frame t:
    how much frame t depends on that input), ``rmse`` (reconstruction error of frame t with the input
    blanked) and ``baseline_rmse`` (nothing blanked). A causal decoder has ``change`` 0 for all k >= 1.
    """
    x = np.asarray(spectrogram, dtype=np.float32)
    if x.ndim != 2:
        raise AnalysisError(f"decoder_leakage takes one spectrogram [T, F], got shape {x.shape}")
    frames = len(x)
    inputs_of, decode_layer_layout = _decoder_model(model)
    # The AE may run time-major inside ([T, batch, F], auDeep's layout): the decoder-input layer then
    # holds time first, while the model's input and output stay batch-major.
    time_major = any(layer.name == "time_major" for layer in model.layers)

    def decode(arrays: list[np.ndarray], training: bool = False) -> Any:
        spectrograms, inputs = arrays
        if time_major:
            inputs = np.transpose(inputs, (1, 0, 2))
        return decode_layer_layout([spectrograms, inputs], training=training)

    decoder_inputs = np.asarray(inputs_of(x[np.newaxis]))
    decoder_inputs = decoder_inputs[:, 0] if time_major else decoder_inputs[0]
    target = x[::-1]
    baseline = np.asarray(decode([x[np.newaxis], decoder_inputs[np.newaxis]], training=False))[0]
    rows = []
    for offset in offsets:
        positions = [t for t in range(frames) if 0 <= t + offset < frames]
        if not positions:
            continue
        batch = np.repeat(decoder_inputs[np.newaxis], len(positions), axis=0)
        for row, t in enumerate(positions):
            batch[row, t + offset] = 0.0
        copies = np.repeat(x[np.newaxis], len(positions), axis=0)
        output = np.asarray(decode([copies, batch], training=False))
        frame_out = np.stack([output[row, t] for row, t in enumerate(positions)])
        rows.append(
            {
                "offset": int(offset),
                "change": float(np.sqrt(np.mean(np.square(frame_out - baseline[positions])))),
                "rmse": float(np.sqrt(np.mean(np.square(frame_out - target[positions])))),
                "baseline_rmse": float(np.sqrt(np.mean(np.square(baseline[positions] - target[positions])))),
            }
        )
    return pd.DataFrame(rows, columns=["offset", "change", "rmse", "baseline_rmse"])


def plot_leakage(table: pd.DataFrame, title: str = "") -> Any:
    """Bar chart of ``decoder_leakage``: how much output frame t changes when decoder input t+k is blanked."""
    fig, axis = plt.subplots(figsize=(8, 4.2), layout="constrained")
    offsets = table["offset"].to_numpy()
    colours = ["#d55e00" if k == 1 else ("#0173b2" if k <= 0 else "#949494") for k in offsets]
    axis.bar(offsets, table["change"], color=colours)
    axis.set_xticks(offsets, [f"{k:+d}" if k else "0" for k in offsets])
    axis.set_xlabel(
        "Blanked decoder input t+k (k <= 0: seen by teacher forcing; +1: the target frame itself)"
    )
    axis.set_ylabel("RMS change of output frame t")
    axis.set_title(title or "Which decoder inputs does the reconstruction of frame t use?")
    return fig


def plot_reconstruction(original: np.ndarray, reconstruction: np.ndarray, title: str = "") -> Any:
    """Original and reconstructed auDeep spectrogram one above the other, with their RMSE."""
    rmse = float(np.sqrt(np.mean(np.square(np.asarray(original) - np.asarray(reconstruction)))))
    fig, axes = plt.subplots(2, 1, figsize=(10, 6), sharex=True, layout="constrained")
    for axis, data, name in zip(
        axes, (original, reconstruction), ("Original", "Reconstruction"), strict=True
    ):
        image = axis.imshow(np.asarray(data).T, origin="lower", aspect="auto", cmap="magma", vmin=-1, vmax=1)
        axis.set_ylabel("Mel band")
        axis.set_title(name)
    axes[1].set_xlabel("Frame (40 ms hop)")
    fig.colorbar(image, ax=axes, label="normalised dB")
    fig.suptitle(f"{title} (RMSE {rmse:.3f})".strip())
    return fig
