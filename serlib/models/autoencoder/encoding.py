"""Step 2 of the paper: one fixed vector per utterance from a trained autoencoder's encoder, cached.

Spectrograms of a corpus are streamed from the feature store in batches through the encoder (no
dropout), the chunk vectors of an utterance are concatenated in chunk order (auDeep's ``fuse``), and
the vectors are kept in an HDF5 file keyed by the model's checksum and the store.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import keras
import numpy as np
import tensorflow as tf

from serlib.base import runtime
from serlib.base.config import Config
from serlib.base.files import temporary_path
from serlib.base.progress import bar as progress_bar
from serlib.features import store
from serlib.models.autoencoder.audeep_files import fuse_chunks
from serlib.models.autoencoder.model import AutoencoderError, load_model, representation_model
from serlib.models.autoencoder.training import STATE_FILE, _digest, _store_identity


def encode(model: keras.Model, spectrograms: Any, batch_size: int, progress: bool = False) -> np.ndarray:
    """Representations [n, D] of spectrograms [n, T, F] (array or h5py dataset), in batches, without dropout.

    Deterministic for given weights and batch size (auDeep's generation).
    """
    runtime.configure()
    encoder = representation_model(model)
    features = encoder.inputs[0].shape[-1]
    dimension = encoder.outputs[0].shape[-1]
    shape = tuple(getattr(spectrograms, "shape", np.shape(spectrograms)))
    if len(shape) != 3 or shape[-1] != features:
        raise AutoencoderError(f"spectrograms must be [n, T, {features}] for this model, got shape {shape}")
    call = tf.function(
        lambda batch: encoder(batch, training=False),
        input_signature=[tf.TensorSpec((None, None, features), tf.float32)],
    )
    total = shape[0]
    vectors = np.empty((total, dimension), np.float32)
    bar = _progress(total, progress, "encode")
    for start in range(0, total, max(1, int(batch_size))):
        batch = np.asarray(spectrograms[start : start + batch_size], dtype=np.float32)
        vectors[start : start + len(batch)] = np.asarray(call(batch), dtype=np.float32)
        if bar is not None:
            bar.update(len(batch))
    if bar is not None:
        bar.close()
    return vectors


def _progress(total: int, enabled: bool, description: str) -> Any:
    return progress_bar(total, description, unit="utt") if enabled else None


@dataclass
class RepresentationSet:
    """Representations of one corpus: ``vectors[i]`` belongs to ``ids[i]`` (HDF5 file at ``path``)."""

    path: Path
    ids: list[str]
    vectors: np.ndarray


def load_representations(path: str | os.PathLike[str]) -> RepresentationSet:
    """Read a representation store written by ``encode_configured``."""
    path = Path(path)
    with h5py.File(path, "r") as handle:
        ids = [str(i) for i in handle["ids"].asstr()[:]]
        vectors = np.asarray(handle["vectors"][:], dtype=np.float32)
    return RepresentationSet(path, ids, vectors)


def _write_representations(
    path: Path, ids: Sequence[str], vectors: np.ndarray, attrs: dict[str, str]
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    with h5py.File(tmp, "w") as handle:
        handle.create_dataset("ids", data=np.array(ids, dtype=object), dtype=h5py.string_dtype("utf-8"))
        handle.create_dataset("vectors", data=vectors.astype(np.float32))
        for name, value in attrs.items():
            handle.attrs[name] = value
    os.replace(tmp, path)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def encode_configured(
    config: Config, model_path: str | os.PathLike[str], corpus_key: str, progress: bool = True
) -> RepresentationSet:
    """One representation per utterance of a configured corpus (chunks fused in order), cached in HDF5.

    Spectrograms come from the feature store with the configured fixed length (every corpus, labeled or
    not, uses the same T; auDeep requires the model's T); they are streamed in batches of
    ``config.autoencoder.encode_batch_size``. Ids follow the feature store (the manifest order).
    """
    model_path = Path(model_path)
    if not model_path.is_file():
        raise AutoencoderError(
            f"autoencoder model {model_path} does not exist; train one with `serlib train-ae`"
        )
    features = store.extract_configured(config, corpus_key, "spectrogram")
    store_path = Path(features.path)
    model_sha = _sha256(model_path)
    parameters = {"model_sha256": model_sha, "store": _store_identity(store_path), "corpus": corpus_key}
    out = config.cache_path / "representations" / f"{corpus_key}-{_digest(parameters)}.h5"
    if out.is_file():
        return load_representations(out)
    model = load_model(model_path, compile=False)
    state_path = model_path.parent / STATE_FILE
    if state_path.is_file():
        trained_shape = json.loads(state_path.read_text(encoding="utf-8"))["fingerprint"]["shape"]
        with h5py.File(store_path, "r") as handle:
            shape = handle["features"].shape
        if list(shape[1:]) != list(trained_shape[1:]):
            raise AutoencoderError(
                f"{model_path} was trained on [T, F] = {trained_shape[1:]} but {corpus_key} spectrograms are "
                f"{list(shape[1:])}; use the same features.spectrogram settings (fixed_length_s) for both"
            )
    with store.open_features(store_path) as handle:
        vectors = encode(model, handle["features"], config.autoencoder.encode_batch_size, progress=progress)
        ids = [str(i) for i in handle["ids"].asstr()[:]]
        chunks = (
            np.asarray(handle["chunk_numbers"][:]) if "chunk_numbers" in handle else np.zeros(len(ids), int)
        )
    ids, vectors = fuse_chunks(ids, chunks, vectors)
    if not np.all(np.isfinite(vectors)):
        raise AutoencoderError(f"{model_path} produced non-finite representations for {corpus_key}")
    attrs = {
        "model_sha256": model_sha,
        "parameters_json": json.dumps(parameters, sort_keys=True, default=str),
    }
    _write_representations(out, ids, vectors, attrs)
    return RepresentationSet(out, list(ids), vectors)
