"""One run of the protocol: train a fresh ACNN for (setting, condition, seed, fold), evaluate it, keep it.

A run seeds Python, NumPy and TensorFlow with its seed, records the TensorFlow settings it ran with
(docs/reliability.md) and writes its files with ``run_files`` (where their layout is described); a
finished run with the same fingerprint is skipped.
"""

from __future__ import annotations

import logging
from typing import Any

import keras
import numpy as np

from serlib.base import metrics, runtime
from serlib.base.config import Config, from_dict
from serlib.base.progress import bar as progress_bar
from serlib.base.progress import interactive
from serlib.data.manifest import EMOTIONS, LEVELS
from serlib.models.acnn import model as acnn
from serlib.models.acnn import run as acnn_run
from serlib.protocol import conditions, labeled
from serlib.protocol.conditions import fingerprint, run_data
from serlib.protocol.folds import SETTINGS, development_split
from serlib.protocol.labeled import LabeledData, ProtocolError
from serlib.protocol.run_files import RunKey, TrainedRun, finished, run_folder, write_run

log = logging.getLogger(__name__)


def train_acnn(
    config: Config,
    train: LabeledData,
    *,
    seed: int,
    setting: str = "within",
    epochs: int | None = None,
    callbacks: list[Any] | None = None,
) -> acnn_run.TrainedACNN:
    """The protocol's one ACNN training (``acnn_run.train``), shared by the grid's runs and ``serlib
    epochs``: ``auto`` resolved for the output folder, the configured input checked against the data
    (``labeled.acnn_input_shape``: log-Mel bands or eGeMAPS descriptors), the run's seed and settings."""
    if config.acnn.implementation == "auto":  # the path this output folder's runs use (implementation.py)
        config = conditions.resolve_implementation(config)[0]
    expected = labeled.acnn_input_shape(config.features)
    if tuple(train.logmel.shape[1:]) != expected:
        raise ProtocolError(
            f"the ACNN's training data hold {tuple(train.logmel.shape[1:])} values per utterance where "
            f"features.acnn_input {config.features.acnn_input} gives {expected}: extract the features again"
        )
    return acnn_run.train(
        config.acnn,
        train.inputs(),
        train.targets(),
        seed=int(seed),
        lengths=train.lengths,
        setting=setting,
        epochs=epochs,
        standardise=config.features.standardise_in_model,
        callbacks=callbacks or [],
    )


def fit_predict(
    config: Config,
    train: LabeledData,
    test: LabeledData,
    seed: int,
    setting: str = "within",
    progress: Any = None,
    development: LabeledData | None = None,
) -> TrainedRun:
    """Train a fresh ACNN on ``train`` for ``acnn.epochs`` epochs (seeded) and predict ``test``.

    With ``development`` data, the weights of the epoch with the best development UAR are kept and
    training stops after ``acnn.patience`` epochs without a better one (``acnn.model_selection``).
    """
    if (train.external is None) != (test.external is None):
        raise ProtocolError("train and test data must both have or both lack the AE representation")
    tensorflow_settings = runtime.configure()
    # a non-finite loss stops training at that epoch's end; write_run then refuses the run (check_health)
    callbacks = [_StopOnNonFinite(), *([progress] if progress is not None else [])]
    selection = None
    if development is not None:
        selection = _DevelopmentSelection(development, config.acnn.patience)
        callbacks.insert(0, selection.callback())
    trained = train_acnn(config, train, seed=seed, setting=setting, callbacks=callbacks)
    model, history_values = trained.model, trained.history
    if selection is not None:
        model.set_weights(selection.best_weights)
        history_values["development_uar"] = selection.scores
    outputs = acnn.predict_all(model, test.inputs())
    probabilities = {name: outputs[name] for name in acnn.HEADS}
    hidden, attention = outputs[acnn.HIDDEN_LAYER], outputs["attention"]
    return TrainedRun(
        model=model,
        probabilities=probabilities,
        hidden=np.asarray(hidden, dtype=np.float32),
        attention=np.asarray(attention, dtype=np.float32),
        history=history_values,
        seconds=trained.seconds,
        band_statistics=trained.statistics,
        tensorflow=tensorflow_settings,
        selected_epoch=None if selection is None else selection.best_epoch,
    )


class _StopOnNonFinite(keras.callbacks.Callback):
    """Stop at the end of an epoch whose loss is not finite (an epoch hook: no per-batch sync)."""

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if logs and "loss" in logs and not np.isfinite(float(logs["loss"])):
            self.model.stop_training = True


class _DevelopmentSelection:
    """Development UAR after every epoch; the best epoch's weights; early stop after ``patience``."""

    def __init__(self, development: LabeledData, patience: int) -> None:
        self.development, self.patience = development, patience
        self.scores: list[float] = []
        self.best_epoch = 0
        self.best_weights: list[np.ndarray] = []

    def callback(self) -> Any:
        selection = self

        class DevelopmentUAR(keras.callbacks.Callback):
            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                outputs = acnn.predict_all(self.model, selection.development.inputs())
                score = metrics.uar(selection.development.emotion, outputs["emotion"].argmax(axis=1))
                selection.scores.append(score)
                if not selection.best_weights or score > max(selection.scores[:-1]):
                    selection.best_epoch, selection.best_weights = epoch + 1, self.model.get_weights()
                elif epoch + 1 - selection.best_epoch >= selection.patience:
                    self.model.stop_training = True

        return DevelopmentUAR()


def _epoch_bar(total: int, description: str) -> Any:
    """A Keras callback showing progress over a run's epochs (a bar, or a line per tenth in a log)."""

    class EpochBar(keras.callbacks.Callback):
        def on_train_begin(self, logs: Any = None) -> None:
            self.bar = progress_bar(total, description, unit="epoch", leave=False)

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.bar.update(1)
            if logs and "loss" in logs:
                self.bar.set_postfix(loss=f"{float(logs['loss']):.3f}")

        def on_train_end(self, logs: Any = None) -> None:
            self.bar.close()

    return EpochBar()


def run_one(
    config: Config,
    setting: str,
    condition: str,
    seed: int,
    fold: int,
    sources: dict[str, Any] | None = None,
    epoch_progress: bool = False,
) -> dict[str, Any]:
    """Train and evaluate one ACNN (setting, condition, seed, fold); skipped when already finished.

    ``sources`` are the AE/representation paths from ``prepare_sources`` plus the run's ``fingerprint``
    (computed here when omitted). Returns the run's metrics (the content of its ``metrics.json``).
    """
    if setting not in SETTINGS:
        raise ProtocolError(f"unknown setting {setting!r}; use one of {SETTINGS}")
    key = RunKey(setting, condition, int(seed), int(fold))
    condition_config = config.condition(condition)
    chosen = (sources or {}).get("acnn_implementation")  # resolved by grid.run_protocol
    if chosen is None or config.acnn.implementation == "auto":
        config, choice = conditions.resolve_implementation(config, write=True)
        chosen = choice.record()
    expected = (sources or {}).get("fingerprint") or fingerprint(config, setting, condition_config)
    done = finished(config, key, expected)
    if done is not None:
        return done
    if sources is None:
        sources = conditions.prepare_sources(config, setting, condition_config)
    train, test = run_data(config, setting, key.fold, sources)
    label = f"{setting} {condition} seed {seed} fold {fold}"
    development = None
    if config.acnn.model_selection == "held_out_session":
        train, development = development_split(train, test if setting == "within" else None)
    # epochs as a bar in terminals and notebooks; a log gets one line per finished run instead
    bar = _epoch_bar(config.acnn.epochs, label) if epoch_progress and interactive() else None
    trained = fit_predict(
        config, train, test, key.seed, setting=setting, progress=bar, development=development
    )
    extra = {
        "fingerprint": expected,
        "acnn_implementation": chosen,
        "dropout": config.acnn.dropout_for(setting),
        "external_dim": 0 if train.external is None else int(train.external.shape[1]),
        "train_corpus": sources["train_corpus"],
        "test_corpus": sources["test_corpus"],
        "autoencoder_corpus": sources.get("autoencoder_corpus"),
        "autoencoder_model": sources.get("autoencoder_model"),
    }
    if development is not None:
        extra["development_session"] = str(development.session[0])
        extra["selected_epoch"] = trained.selected_epoch
        extra["development_uar"] = trained.history.get("development_uar", [])
    model_metadata = None
    if setting == "cross":
        model_metadata = _model_metadata(config, sources, trained, condition, key.seed)
    folder = run_folder(config.output_dir, setting, condition, key.seed, key.fold)
    result = write_run(
        folder,
        trained,
        test,
        setting=setting,
        condition=condition,
        seed=key.seed,
        fold=key.fold,
        n_train=len(train),
        extra=extra,
        model_metadata=model_metadata,
    )
    log.info("%s: UAR %.4f (%d test utterances, %.1f s)", label, result["uar"], len(test), trained.seconds)
    return result


def _model_metadata(
    config: Config, sources: dict[str, Any], trained: TrainedRun, condition: str, seed: int
) -> dict[str, Any]:
    """What ``serlib predict`` needs besides model.keras: feature and AE parameters and the class names."""
    ae = None
    if sources.get("autoencoder_corpus"):
        ae = {
            "corpus": sources["autoencoder_corpus"],
            "model": sources.get("autoencoder_model"),
            "epochs": sources.get("autoencoder_epochs"),
            "parameters": config.autoencoder.model_dump(mode="json"),
            "spectrogram": config.features.spectrogram.model_dump(mode="json"),
        }
    return {
        "format": "serlib-acnn-1",
        "condition": condition,
        "seed": seed,
        "train_corpus": sources["train_corpus"],
        "classes": {"emotion": list(EMOTIONS), "arousal": list(LEVELS), "valence": list(LEVELS)},
        "inputs": {"logmel": list(labeled.acnn_input_shape(config.features))}
        | ({"representation": int(trained.hidden.shape[1] - config.acnn.filters)} if ae else {}),
        "audio": config.audio.model_dump(mode="json"),
        "logmel": config.features.logmel.model_dump(mode="json"),
        "acnn_input": config.features.acnn_input,
        "acnn": config.acnn.model_dump(mode="json"),
        "dropout": config.acnn.dropout_cross,
        # one key: the mode (features.normalisation) and the in-model standardisation's band statistics
        # (written before issue 43 as feature_normalisation and normalisation; model_folder reads both)
        "normalisation": {
            "mode": config.features.normalisation,
            "band_statistics": None
            if trained.band_statistics is None
            else {"mean": trained.band_statistics[0].tolist(), "std": trained.band_statistics[1].tolist()},
            "in_model": trained.band_statistics is not None,
        },
        "autoencoder": ae,
    }


def run_task(config_data: dict[str, Any], key: tuple[str, str, int, int], sources: dict[str, Any]) -> Any:
    """One run as a Dask task: the configuration arrives as plain data (``Config.model_dump``)."""
    setting, condition, seed, fold = key
    return run_one(from_dict(config_data, "dask worker"), setting, condition, seed, fold, sources=sources)
