"""Training the autoencoder: shuffled batches streamed from the feature store, a checkpoint per epoch,
and resuming with exactly the result of an uninterrupted run.

The batch order and the dropout masks depend only on (seed, epoch), so a run killed after epoch k and
re-run continues from the checkpoint of epoch k with the same batches and masks. Every
file is written to a temporary name and renamed; the JSON state names the checkpoint it belongs to.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import h5py
import keras
import numpy as np
import tensorflow as tf
from keras import ops
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from tensorflow.python.framework import config as tf_config  # op determinism's state is not public API

from serlib.base import cluster, runtime
from serlib.base.config import AutoencoderConfig, Config
from serlib.base.files import write_text
from serlib.base.progress import keras_progress
from serlib.features import store
from serlib.models.autoencoder.fused_gru import FUSED_GRU
from serlib.models.autoencoder.model import MODEL_FILE, AutoencoderError, build_autoencoder, load_model

log = logging.getLogger(__name__)


def write_text_at(path: Path, text: str) -> None:
    """``write_text`` with the path first (the order the checkpoint code reads best in)."""
    write_text(text, path)


STATE_FILE = "training_state.json"


HISTORY_CSV = "loss_history.csv"


HISTORY_PNG = "loss_history.png"
HISTORY_PNG_INTERVAL_S = 60.0  # a long training's plot stays at most this old while it runs


PREFETCH_BATCHES = 4


IN_MEMORY_SHARE = 0.4
"""A compressed store (store version 2) whose values take at most this share of the available memory
is decompressed into memory once: random row reads of compressed rows run at 1,100-1,300 rows per
CPU-second (docs/performance.md#feature-stores), below a GPU's AE rate; a larger one is streamed."""


def _fits_in_memory(nbytes: int) -> bool:
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not Linux
        return False
    return nbytes <= IN_MEMORY_SHARE * available


class _Source:
    """Instances [N, T, F] from an array or an HDF5 store (dataset ``features``), read by index batches."""

    def __init__(self, data: Any) -> None:
        self.path: Path | None = None
        self.array: np.ndarray | None = None
        if isinstance(data, str | os.PathLike):
            self.path = Path(data)
            if not self.path.is_file():
                raise AutoencoderError(
                    f"spectrogram store {self.path} does not exist; run `serlib extract` first"
                )
            with h5py.File(self.path, "r") as handle:
                if "features" not in handle:
                    raise AutoencoderError(
                        f"{self.path} has no 'features' dataset (not a serlib feature store)"
                    )
                self.shape = tuple(int(s) for s in handle["features"].shape)
                if handle["features"].compression is not None and _fits_in_memory(handle["features"].nbytes):
                    self.array = handle["features"][...]
        else:
            self.array = np.asarray(data, dtype=np.float32)
            self.shape = tuple(self.array.shape)
        if len(self.shape) != 3 or self.shape[0] == 0:
            raise AutoencoderError(
                f"spectrograms must be a non-empty [N, T, F] array, got shape {self.shape}"
            )

    @contextmanager
    def reader(self) -> Iterator[Any]:
        if self.array is not None:
            yield self.array
            return
        with h5py.File(self.path, "r") as handle:
            yield handle["features"]

    @staticmethod
    def read(data: Any, indices: np.ndarray) -> np.ndarray:
        if isinstance(data, np.ndarray):
            return np.asarray(data[indices], dtype=np.float32)
        # One read per row, in drawn order: h5py's fancy indexing (a point selection) reads ~1,100
        # rows/s of 186 x 128, row-by-row read_direct ~6,800 (docs/performance.md).
        batch = np.empty((len(indices), *data.shape[1:]), dtype=np.float32)
        for row, index in enumerate(indices):
            data.read_direct(batch, np.s_[int(index)], np.s_[row])
        return batch


def epoch_batches(instances: int, batch_size: int, seed: int, epoch: int) -> np.ndarray:
    """Index batches [ceil(N/B), B] of one epoch: a seeded permutation, the last batch filled from its start.

    auDeep's queue cycles endlessly, so every batch has exactly B instances and an epoch is ceil(N/B)
    batches; the order depends only on (seed, epoch), so a resumed run sees the same batches.
    """
    order = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(epoch)]).permutation(instances)
    steps = math.ceil(instances / batch_size)
    needed = steps * batch_size
    cycled = np.resize(order, needed)  # repeats the permutation from its start
    return cycled.reshape(steps, batch_size)


def _dataset(
    source: _Source, batch_size: int, seed: int, first_epoch: int, last_epoch: int
) -> tf.data.Dataset:
    instances, frames, features = source.shape

    def generate() -> Iterator[np.ndarray]:
        with source.reader() as data:
            for epoch in range(first_epoch, last_epoch):
                for indices in epoch_batches(instances, batch_size, seed, epoch):
                    yield source.read(data, indices)

    dataset = tf.data.Dataset.from_generator(
        generate, output_signature=tf.TensorSpec((batch_size, frames, features), tf.float32)
    )
    dataset = dataset.map(lambda x: (x, tf.reverse(x, axis=[1])))
    return dataset.prefetch(PREFETCH_BATCHES)


def _save_model(model: keras.Model, path: Path) -> None:
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.keras")
    model.save(tmp)
    os.replace(tmp, path)


def _write_history(model_dir: Path, losses: Sequence[float]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["epoch", "loss"])
    writer.writerows([epoch + 1, repr(float(loss))] for epoch, loss in enumerate(losses))
    write_text_at(model_dir / HISTORY_CSV, buffer.getvalue())


def _plot_history(model_dir: Path, losses: Sequence[float]) -> None:
    figure = Figure(figsize=(5, 3.2))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.plot(range(1, len(losses) + 1), losses, marker="o")
    axes.set_xlabel("epoch")
    axes.set_ylabel("reconstruction RMSE")
    axes.set_title("autoencoder training loss")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    tmp = model_dir / f".{HISTORY_PNG}.tmp{os.getpid()}.png"
    figure.savefig(tmp, dpi=100)
    os.replace(tmp, model_dir / HISTORY_PNG)


def _reseed_dropout(model: keras.Model, seed: int, epoch: int) -> None:
    """Dropout masks depend only on (seed, epoch, layer): a resumed run draws the same masks."""
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(epoch), 0xD0])
    for layer in model.layers:
        generator = getattr(layer, "seed_generator", None)
        if isinstance(layer, keras.layers.Dropout) and generator is not None:
            state = generator.state
            value = np.array([int(rng.integers(0, 2**31 - 1)), 0])
            state.assign(ops.cast(value, state.dtype))


class _Checkpoint(keras.callbacks.Callback):
    """After every epoch: checkpoint .keras (temp + rename), then the JSON state naming it, then the loss
    CSV; the loss plot at most every ``HISTORY_PNG_INTERVAL_S`` and when training ends (a plot per epoch
    cost a demo AE about a tenth of its training, docs/performance.md)."""

    def __init__(self, model_dir: Path, state: dict[str, Any], seed: int) -> None:
        super().__init__()
        self.model_dir = model_dir
        self.state = state
        self.seed = seed
        self.plotted = time.monotonic()

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        _reseed_dropout(self.model, self.seed, epoch)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        loss = float((logs or {})["loss"])
        if not math.isfinite(loss):
            raise AutoencoderError(
                f"autoencoder loss became {loss} in epoch {epoch + 1} ({self.model_dir}); lower the learning rate"
            )
        name = f"checkpoint-epoch{epoch + 1:04d}.keras"
        _save_model(self.model, self.model_dir / name)
        previous = self.state.get("checkpoint")
        self.state.update(epoch=epoch + 1, checkpoint=name, loss=[*self.state["loss"], loss])
        write_text_at(self.model_dir / STATE_FILE, json.dumps(self.state, indent=1))
        if previous and previous != name:
            (self.model_dir / previous).unlink(missing_ok=True)
        _write_history(self.model_dir, self.state["loss"])
        if time.monotonic() - self.plotted >= HISTORY_PNG_INTERVAL_S:
            self.on_train_end()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.state["loss"]:
            _plot_history(self.model_dir, self.state["loss"])
            self.plotted = time.monotonic()


def _fingerprint(ae: AutoencoderConfig, shape: tuple[int, ...], seed: int) -> dict[str, Any]:
    parameters = ae.model_dump(mode="json")
    parameters.pop("encode_batch_size", None)
    parameters.pop("epochs", None)
    return {"autoencoder": parameters, "shape": list(shape), "seed": int(seed)}


@contextmanager
def _determinism(enabled: bool) -> Iterator[None]:
    """Deterministic TF kernels for the duration of training, restoring the previous setting afterwards."""
    before = tf_config.is_op_determinism_enabled()
    if enabled and not before:
        tf_config.enable_op_determinism()
    try:
        yield
    finally:
        if enabled and not before:
            tf_config.disable_op_determinism()


def train(
    ae: AutoencoderConfig,
    spectrograms: Any,
    model_dir: str | os.PathLike[str],
    epochs: int | None = None,
    seed: int = 0,
    progress: bool = True,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    deterministic: bool = True,
    strategy: Any = None,
) -> Path:
    """Train the autoencoder on spectrograms [N, T, F] (array, or path of an HDF5 store) into ``model_dir``.

    Streams shuffled batches of ``ae.batch_size`` (memory independent of N), writes a checkpoint and
    the loss history (CSV) after every epoch and its plot (PNG) every minute and at the end, resumes
    from the last checkpoint when re-run, and returns the final ``autoencoder.keras``. Same seed, same
    machine: same weights. ``callbacks`` are extra Keras callbacks (run after the checkpoint of each
    epoch); ``deterministic`` turns on TensorFlow's op determinism while training (no measurable cost
    on CPU); ``strategy`` is the ``tf.distribute`` strategy to train under
    (``serlib.base.cluster.distribution_strategy``).
    """
    runtime.configure()
    epochs = int(epochs or ae.epochs)
    seed = int(seed)
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    source = _Source(spectrograms)
    fingerprint = _fingerprint(ae, source.shape, seed)
    state_path = model_dir / STATE_FILE
    final_path = model_dir / MODEL_FILE
    state: dict[str, Any] = {"fingerprint": fingerprint, "epoch": 0, "checkpoint": None, "loss": []}
    if state_path.is_file():
        state = json.loads(state_path.read_text(encoding="utf-8"))
        if state.get("fingerprint") != fingerprint:
            raise AutoencoderError(
                f"{model_dir} holds training of a different autoencoder/data/seed; choose another model_dir "
                "or delete it"
            )
    if state["epoch"] >= epochs and final_path.is_file() and state.get("final_epochs") == epochs:
        return final_path
    if state["epoch"] > epochs:
        raise AutoencoderError(f"{model_dir} is already trained for {state['epoch']} > {epochs} epochs")
    keras.utils.set_random_seed(seed)
    steps = math.ceil(source.shape[0] / ae.batch_size)
    with _determinism(deterministic):
        if state["checkpoint"]:
            log.info("resuming %s from epoch %d", model_dir, state["epoch"])
            with (strategy or tf.distribute.get_strategy()).scope():
                model = load_model(model_dir / state["checkpoint"])
        else:
            model = build_autoencoder(ae, source.shape[-1], seed=seed, gru=FUSED_GRU, strategy=strategy)
        if state["epoch"] < epochs:
            dataset = _dataset(source, ae.batch_size, seed, state["epoch"], epochs)
            verbose, bars = keras_progress(progress, epochs, f"autoencoder {model_dir.name}", state["epoch"])
            model.fit(
                dataset,
                epochs=epochs,
                initial_epoch=state["epoch"],
                steps_per_epoch=steps,
                verbose=verbose,
                shuffle=False,
                callbacks=[_Checkpoint(model_dir, state, seed), *callbacks, *bars],
            )
        _save_model(model, final_path)
    state["final_epochs"] = epochs
    write_text_at(state_path, json.dumps(state, indent=1))
    return final_path


def _digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _store_identity(path: Path) -> dict[str, Any]:
    """What identifies a feature store file: its cache key attribute, else its name, size and mtime."""
    with h5py.File(path, "r") as handle:
        key = handle.attrs.get("key")
        parameters = handle.attrs.get("parameters_json")
    if key is not None:
        return {"key": str(key), "parameters": None if parameters is None else str(parameters)}
    stat = path.stat()
    return {"name": path.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def train_configured(
    config: Config, corpus_key: str, epochs: int | None = None, progress: bool = True
) -> Path:
    """Train (or find) the autoencoder of a configured corpus; returns
    ``.../autoencoders/<key>-<hash>/autoencoder.keras``.

    Its spectrograms come from the feature store; the configuration's ``autoencoder`` settings, seed
    and ``autoencoder.distribution`` strategy are handed to ``train``.
    """
    epochs = int(epochs or config.autoencoder.epochs)
    features = store.extract_configured(config, corpus_key, "spectrogram")
    parameters = config.autoencoder.model_dump(mode="json")
    parameters.pop("encode_batch_size", None)
    parameters["epochs"] = epochs
    identity = {"autoencoder": parameters, "store": _store_identity(Path(features.path)), "seed": config.seed}
    model_dir = config.cache_path / "autoencoders" / f"{corpus_key}-{_digest(identity)}"
    final_path = model_dir / MODEL_FILE
    if final_path.is_file():
        return final_path
    model_dir.mkdir(parents=True, exist_ok=True)
    write_text_at(model_dir / "identity.json", json.dumps(identity, indent=1, default=str))
    strategy = cluster.distribution_strategy(config.autoencoder.distribution)
    return train(
        config.autoencoder,
        features.path,
        model_dir,
        epochs=epochs,
        seed=config.seed,
        progress=progress,
        strategy=strategy,
    )
