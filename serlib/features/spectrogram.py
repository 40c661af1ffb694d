"""The autoencoder's input: auDeep-style mel spectrograms (paper, Sec. 2; as auDeep extracts them).

auDeep 0.9.4's ``preprocess`` pipeline, steps 1-9 of ``shared/specs/audeep-reference.md`` section 1.2
(written from that description, not from auDeep's code): optional fixed length, pre-emphasis 0.95,
Hann-windowed power spectra (the paper's 80 ms frames with 40 ms overlap and 128 mel bands: the settings of
``serlib/presets/paper.yaml``, the functions' defaults), dB relative to the
file's maximum, clipping, chunking and scaling to [-1, 1]. Matches the golden arrays exactly
(clipped) or within 1 float32 ulp (unclipped).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import scipy.sparse

from serlib.base.paper_preset import reader
from serlib.data.audio import AudioError

AUDEEP_PREEMPHASIS = 0.95
_PAPER = reader("features.spectrogram")  # the paper's settings: the functions' defaults (fixed length: none)


def audeep_fixed_length(
    signal: np.ndarray, sample_rate: int, fixed_length_s: float, center: bool = False
) -> np.ndarray:
    """Step 1: cut or zero-pad to int(L * fs) samples, at the end or (center) symmetrically."""
    target = int(fixed_length_s * sample_rate)
    n = signal.shape[0]
    if n > target:
        start = (n - target) // 2 if center else 0
        return signal[start : start + target]
    if n < target:
        before = (target - n) // 2 if center else 0
        return np.concatenate(
            [np.zeros(before, signal.dtype), signal, np.zeros(target - n - before, signal.dtype)]
        )
    return signal


def preemphasis(signal: np.ndarray, coefficient: float = AUDEEP_PREEMPHASIS) -> np.ndarray:
    """Step 3: y[0] = x[0], y[n] = x[n] - coefficient * x[n-1] (float64)."""
    x = np.asarray(signal, dtype=np.float64)
    return np.append(x[:1], x[1:] - coefficient * x[:-1])


def audeep_window_samples(
    sample_rate: int, samples: int, window_s: float, overlap_s: float, fixed_length_s: float | None
) -> tuple[int, int]:
    """Step 4: window W and overlap H in samples, with auDeep's overlap correction under fixed length.

    With a fixed length, auDeep compares int((L - overlap) / (width - overlap)) (seconds, float) with
    (n - H) // (W - H) and moves H by one sample when they differ (e.g. L = 1.2 s: H 640 -> 639).
    """
    width = int(sample_rate * window_s)
    overlap = int(sample_rate * overlap_s)
    if fixed_length_s is not None:
        expected = int((fixed_length_s - overlap_s) / (window_s - overlap_s))
        actual = (samples - overlap) // (width - overlap)
        if actual > expected:
            overlap -= 1
        elif actual < expected:
            overlap += 1
    return width, overlap


def power_spectrogram(signal: np.ndarray, sample_rate: int, width: int, overlap: int) -> np.ndarray:
    """Step 5: one-sided power spectrogram ``[W//2+1, T]`` (frequency x time), float64.

    Frames [k*step, k*step+W) without padding, each frame's mean removed, periodic Hann window,
    |rFFT|^2 / (fs * sum(w^2) * W) (SciPy's 'density' magnitude squared, divided by W as auDeep does).
    """
    x = np.asarray(signal, dtype=np.float64)
    step = width - overlap
    if x.shape[0] < width:
        raise AudioError(f"signal of {x.shape[0]} samples is shorter than one {width}-sample window")
    count = 1 + (x.shape[0] - width) // step
    frames = np.lib.stride_tricks.sliding_window_view(x, width)[::step][:count]
    frames = frames - frames.mean(axis=1, keepdims=True)
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(width) / width)
    spectrum = np.fft.rfft(frames * window, n=width, axis=1)
    power = (spectrum.real**2 + spectrum.imag**2) / (sample_rate * np.sum(window**2) * width)
    return power.T


def _hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


@functools.lru_cache(maxsize=16)
def audeep_mel_filterbank(sample_rate: int, width: int, bands: int) -> tuple[np.ndarray, np.ndarray]:
    """Step 6: auDeep's triangular mel filterbank ``[bands, W//2+1]`` and its centre frequencies (Hz).

    bands+2 points evenly spaced in HTK mel (2595 log10(1 + f/700)) from 0 to fs/2, mapped to bins
    floor((W+1) * hz / fs); triangles of peak 1 on integer bins, right end excluded, no normalisation.
    """
    points_hz = _mel_to_hz(np.linspace(0.0, float(_hz_to_mel(sample_rate / 2.0)), bands + 2))
    bins = np.floor((width + 1) * points_hz / sample_rate).astype(np.int64)
    bank = np.zeros((bands, width // 2 + 1), dtype=np.float64)
    for m in range(1, bands + 1):
        left, centre, right = bins[m - 1], bins[m], bins[m + 1]
        for k in range(left, centre):
            bank[m - 1, k] = (k - left) / (centre - left)
        for k in range(centre, right):
            bank[m - 1, k] = (right - k) / (right - centre)
    bank.setflags(write=False)
    return bank, points_hz[1:-1]


@functools.lru_cache(maxsize=16)
def _sparse_filterbank(sample_rate: int, width: int, bands: int) -> Any:
    """The filterbank as a CSR matrix: each FFT bin feeds at most two filters, so a sparse product
    is ~20x cheaper than a dense BLAS one (and uses no BLAS threads inside worker processes)."""
    return scipy.sparse.csr_array(audeep_mel_filterbank(sample_rate, width, bands)[0])


def power_to_db(
    power: np.ndarray, clip_below_db: float | None = None, clip_above_db: float | None = None
) -> np.ndarray:
    """Step 7: floor at the smallest positive value, dB relative to the maximum, then the clips."""
    positive = power[power > 0]
    if positive.size == 0:
        raise AudioError(
            "signal is digitally silent (no positive spectral power): auDeep's dB reference is undefined"
        )
    floor = positive.min()
    floored = np.where(power <= floor, floor, power)
    db = 10.0 * np.log10(floored / floored.max())
    if clip_below_db is not None:
        db = np.maximum(db, clip_below_db)
    if clip_above_db is not None:
        db = np.minimum(db, clip_above_db)
    return db


def audeep_chunk_split(db: np.ndarray, chunk_frames: int, chunk_count: int) -> list[np.ndarray]:
    """Step 8: split ``[M, T]`` along time into pieces of ``chunk_frames``; keep the first ``chunk_count``.

    auDeep's rule: if the last piece is shorter than the first and there are fewer than count+1
    pieces, extraction fails; otherwise the first ``count`` pieces are kept (which may be fewer than
    ``count`` when T is an exact multiple of the chunk length: auDeep's quirk, kept).
    """
    if chunk_frames <= 0:
        raise ValueError(
            f"chunk length of {chunk_frames} frames: choose a chunk_length_s of at least one hop"
        )
    pieces = [db[:, start : start + chunk_frames] for start in range(0, db.shape[1], chunk_frames)]
    if pieces[-1].shape[1] < pieces[0].shape[1] and len(pieces) < chunk_count + 1:
        raise AudioError(
            f"too few chunks: {db.shape[1]} frames give {len(pieces) - 1} full chunks of {chunk_frames} "
            f"frames, {chunk_count} requested (auDeep's rule); shorten chunk_length_s or chunk_count"
        )
    return pieces[:chunk_count]


def normalise_chunk(chunk: np.ndarray) -> np.ndarray:
    """Step 9: subtract the mean, then min-max scale to [-1, 1] (a constant chunk becomes zeros)."""
    centred = chunk - chunk.mean()
    low, high = centred.min(), centred.max()
    if high - low <= 1e-4:
        return centred - low
    return 2.0 * (centred - low) / (high - low) - 1.0


def audeep_chunks(
    signal: np.ndarray,
    sample_rate: int,
    window_s: float = _PAPER("window_s"),
    overlap_s: float = _PAPER("overlap_s"),
    mel_bands: int = _PAPER("mel_bands"),
    clip_below_db: float | None = _PAPER("clip_below_db"),
    clip_above_db: float | None = None,
    fixed_length_s: float | None = None,
    center_fixed: bool = False,
    chunk_length_s: float | None = None,
    chunk_count: int | None = None,
) -> np.ndarray:
    """auDeep ``preprocess`` for one mono signal: ``[chunks, frames, mel_bands]`` float32 in [-1, 1].

    Without chunking there is one chunk. Steps (as auDeep): fixed length on the raw samples,
    pre-emphasis 0.95, W/H with the overlap correction, float64 power STFT, mel filterbank, dB
    relative to the file's maximum with clips, chunking, per-chunk min-max normalisation, transpose.
    """
    if (chunk_length_s is None) != (chunk_count is None):
        raise ValueError("chunk_length_s and chunk_count must be given together or not at all (as in auDeep)")
    x = np.asarray(signal, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"expected a mono signal of shape [samples], got shape {x.shape}")
    if not np.isfinite(x).all():
        raise AudioError("signal holds NaN or infinite samples")
    if fixed_length_s is not None:
        x = audeep_fixed_length(x, sample_rate, fixed_length_s, center_fixed)
    emphasised = preemphasis(x)
    width, overlap = audeep_window_samples(sample_rate, x.shape[0], window_s, overlap_s, fixed_length_s)
    power = power_spectrogram(emphasised, sample_rate, width, overlap)
    db = power_to_db(_sparse_filterbank(sample_rate, width, mel_bands) @ power, clip_below_db, clip_above_db)
    if chunk_length_s is not None and chunk_count is not None:
        chunk_frames = int(sample_rate * chunk_length_s) // (width - overlap)
        pieces = audeep_chunk_split(db, chunk_frames, chunk_count)
    else:
        pieces = [db]
    return np.stack([normalise_chunk(piece).T for piece in pieces]).astype(np.float32)


def audeep_spectrogram(
    signal: np.ndarray,
    sample_rate: int,
    window_s: float = _PAPER("window_s"),
    overlap_s: float = _PAPER("overlap_s"),
    mel_bands: int = _PAPER("mel_bands"),
    clip_below_db: float | None = _PAPER("clip_below_db"),
    clip_above_db: float | None = None,
    fixed_length_s: float | None = None,
    center_fixed: bool = False,
    chunk_length_s: float | None = None,
    chunk_count: int | None = None,
) -> np.ndarray:
    """auDeep-style mel spectrogram, time first: ``[frames, mel_bands]`` without chunking, and
    ``[chunks, frames, mel_bands]`` when ``chunk_length_s``/``chunk_count`` are given (see
    ``audeep_chunks``, which always returns the 3-D form). float32 in [-1, 1]."""
    chunks = audeep_chunks(
        signal,
        sample_rate,
        window_s=window_s,
        overlap_s=overlap_s,
        mel_bands=mel_bands,
        clip_below_db=clip_below_db,
        clip_above_db=clip_above_db,
        fixed_length_s=fixed_length_s,
        center_fixed=center_fixed,
        chunk_length_s=chunk_length_s,
        chunk_count=chunk_count,
    )
    return chunks if chunk_length_s is not None else chunks[0]
