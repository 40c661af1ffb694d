"""Feature normalisation: per band over real frames, for the training data or per corpus or speaker.

``features.normalisation`` chooses whose statistics standardise the features:

* ``none``: the ACNN reads the features as extracted (the paper names no normalisation; the eGeMAPS
  SVM still standardises within its training fold, as ``train``);
* ``train`` (serlib's reading of the paper): the ACNN's in-model standardisation uses the training fold's per-band mean
  and standard deviation, and applies them to every test utterance (``acnn.BandStandardisation``);
* ``corpus``: every corpus is first standardised with its own statistics (all its utterances, four
  classes or not: no label is looked at), so a test corpus recorded louder, with another microphone
  or language, arrives on the training corpus' scale. The standard unsupervised remedy for
  cross-corpus shifts (e.g. Schuller et al., "Cross-corpus acoustic emotion recognition", IEEE TAC
  2010);
* ``speaker``: the same per speaker, which also removes much of each voice's own colour.

Statistics come from the test corpus (or speaker) itself and never from the training corpus; labels
are never used. Zero-padded frames stay zero, so the model still tells padding from speech.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.preprocessing import StandardScaler

MODES = ("none", "train", "corpus", "speaker")
GROUPED = ("corpus", "speaker")  # the modes that standardise before the model, per corpus or speaker
_CHUNK = 512  # utterances per block: the statistics never hold a float64 copy of a whole corpus


class NormalisationError(ValueError):
    """Features cannot be normalised as asked; the message says why and what to do."""


def band_statistics(features: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-band mean and standard deviation over the real (unpadded) frames of ``features`` [N, T, F]."""
    features = np.asarray(features)
    lengths = np.minimum(np.asarray(lengths, dtype=np.int64), features.shape[1])
    mask = np.arange(features.shape[1])[None, :] < lengths[:, None]
    count = int(mask.sum())
    if count == 0:
        raise NormalisationError("no real frames to compute the band statistics from (all lengths are 0)")
    total = np.zeros(features.shape[2], dtype=np.float64)
    squares = np.zeros(features.shape[2], dtype=np.float64)
    for start in range(0, len(features), _CHUNK):
        chunk = features[start : start + _CHUNK].astype(np.float64)
        chunk_mask = mask[start : start + _CHUNK, :, None]
        total += (chunk * chunk_mask).sum(axis=(0, 1))
        squares += (chunk**2 * chunk_mask).sum(axis=(0, 1))
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
    std = np.where(std > 1e-6, std, 1.0)
    return mean.astype(np.float32), std.astype(np.float32)


def standardise_frames(
    features: np.ndarray, lengths: np.ndarray, groups: Sequence[Any] | np.ndarray
) -> np.ndarray:
    """A copy of ``features`` [N, T, F] with each group's real frames standardised by that group's own
    per-band statistics (``band_statistics``); padded frames stay exactly zero."""
    features = np.asarray(features, dtype=np.float32)
    lengths = np.minimum(np.asarray(lengths, dtype=np.int64), features.shape[1])
    groups = np.asarray([str(g) for g in groups])
    if len(groups) != len(features) or len(lengths) != len(features):
        raise NormalisationError(
            f"{len(features)} utterances but {len(lengths)} lengths and {len(groups)} group labels"
        )
    result = np.zeros_like(features)
    real = np.arange(features.shape[1])[None, :] < lengths[:, None]
    for group in sorted(set(groups.tolist())):
        rows = np.flatnonzero(groups == group)
        mean, std = band_statistics(features[rows], lengths[rows])
        block = (features[rows] - mean) / std
        result[rows] = np.where(real[rows, :, None], block, 0.0)
    return result


def standardise_vectors(vectors: np.ndarray, groups: Sequence[Any] | np.ndarray) -> np.ndarray:
    """Each group's rows of ``vectors`` [N, D] (e.g. eGeMAPS functionals) standardised by that group's
    own column means and standard deviations (scikit-learn's ``StandardScaler`` per group)."""
    vectors = np.asarray(vectors, dtype=np.float64)
    groups = np.asarray([str(g) for g in groups])
    if len(groups) != len(vectors):
        raise NormalisationError(f"{len(vectors)} rows but {len(groups)} group labels")
    result = np.empty_like(vectors)
    for group in sorted(set(groups.tolist())):
        rows = np.flatnonzero(groups == group)
        result[rows] = StandardScaler().fit_transform(vectors[rows])
    return result


def groups_for(mode: str, speakers: Sequence[Any] | np.ndarray, corpus: str) -> np.ndarray:
    """The group of each utterance under ``mode``: the corpus key for ``corpus``, the speaker for
    ``speaker`` (prefixed with the corpus, so two corpora's speaker 01 stay apart)."""
    if mode == "corpus":
        return np.full(len(speakers), corpus, dtype=object)
    if mode == "speaker":
        return np.asarray([f"{corpus}/{speaker}" for speaker in speakers], dtype=object)
    raise NormalisationError(f"features.normalisation {mode!r} has no groups; choose one of {GROUPED}")
