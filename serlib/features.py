"""Feature extractors: openSMILE log-Mel (ACNN input), auDeep-style spectrograms (AE input), eGeMAPS.

* ``logmel``: 26 log-Mel filterbank energies, 0-6.5 kHz, 25 ms frames every 10 ms, as openSMILE
  computes them with the custom config ``serlib/data/logmel.conf``, whose comments state every
  setting: per-frame pre-emphasis 0.97, symmetric Hamming, 512-point FFT, power, HTK mel,
  triangles linear in mel, ``htkcompatible=0`` so values are ln of the power of int16 samples / 32767
  (HTK mode would add ln(32767^2) = 20.79 to every value), floor ln(1e-10). Two engines give the
  same numbers: ``opensmile`` (the ``opensmile`` package running logmel.conf: the reference) and
  ``numpy`` (the same definitions, vectorised over all frames: about 4x faster per CPU-second; equal
  to openSMILE within float32 rounding: mean |difference| 4e-7, max 3e-4 ln units on all of
  Emo-DB, tested). ``fix_length`` then applies the paper's 7.5 s = 750-frame cut/zero-pad rule to
  the unpadded frames.
  Checked against an independent numpy/librosa computation of the same quantity on real speech
  (tests/test_features.py): correlation per band > 0.999; the one systematic difference is that
  librosa's triangles are linear in Hz, openSMILE's in mel, which moves band means by at most
  ~0.015 ln units. librosa's own ``melspectrogram`` frames differently (a 400-sample window centred
  in a 512-sample frame, i.e. 56 samples later) and pre-emphasises the whole signal, so it agrees
  less (per-band correlation 0.92-0.98).
* ``audeep_spectrogram`` / ``audeep_chunks``: auDeep 0.9.4's ``preprocess`` pipeline, steps 1-9 of
  ``shared/specs/audeep-reference.md`` section 1.2 (written from that description, not from auDeep);
  matches the golden arrays exactly (clipped) or within 1 float32 ulp (unclipped).
* ``egemaps``: the 88 eGeMAPSv02 functionals (classic baseline).

All functions take a mono float signal and its sample rate (``serlib.audio.load`` gives 16 kHz;
auDeep itself never resamples, which is equivalent for the paper's 16 kHz corpora).
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from serlib.audio import AudioError

LOGMEL_CONFIG = Path(__file__).parent / "data" / "logmel.conf"
LOGMEL_LEVEL = "logmel"  # the openSMILE data-memory level the sink reads (see logmel.conf)
LOGMEL_FLOOR = math.log(1e-10)  # value of digital silence (logfloor in logmel.conf)
LOGMEL_ENGINES = ("numpy", "opensmile")
LogMelEngine = Literal["numpy", "opensmile"]
# The opensmile package hands openSMILE int16 samples (x * 32768, truncated); openSMILE's external
# source turns them back into floats dividing by 32767 (measured: with 32768 every numpy value sat
# 2 ln(32768/32767) = 6.1e-5 below openSMILE's; with 32767 the mean difference is 4e-8).
OPENSMILE_SAMPLE_DIVISOR = 32767.0
LOGMEL_PREEMPHASIS = 0.97  # k of logmel.conf's cVectorPreemphasis
# The numpy engine transforms at most this many frames of a signal at once (1.6 MB of input).
_NUMPY_BLOCK_FRAMES = 1024
MAX_FRAMES = 750  # the paper's 7.5 s at 10 ms
EGEMAPS_DIMS = 88
# openSMILE delivers frames to Python in blocks of this many (one callback per block instead of
# per frame: about 25% faster); see _logmel_smile.
_SINK_BLOCK = 100
# Signals are concatenated into one openSMILE run until it holds this many samples (amortises the
# per-run set-up of a few ms on short utterances; see logmel_many).
_BATCH_SAMPLES = 16000 * 120


def _bind_opensmile_to_itself() -> None:
    """Load openSMILE's library with RTLD_DEEPBIND before ``import opensmile`` does (Linux/glibc).

    TensorFlow's libtensorflow_framework exports Ooura's FFT (``rdft``, ``cdft``, ... in double
    precision) under the names openSMILE's library uses for its own float FFT. Loaded after
    TensorFlow, openSMILE bound to TensorFlow's and corrupted memory ("malloc(): invalid size").
    DEEPBIND makes the library use its own symbols; opensmile's later load returns this handle.
    """
    import ctypes
    import importlib.util
    import os
    import platform

    deepbind = getattr(os, "RTLD_DEEPBIND", 0)
    spec = importlib.util.find_spec("opensmile")
    if not deepbind or spec is None or not spec.submodule_search_locations or platform.system() != "Linux":
        return
    root = Path(os.path.realpath(spec.submodule_search_locations[0])) / "core" / "bin"
    library = root / f"manylinux_2_17_{platform.machine().lower()}" / "libSMILEapi.so"
    if library.is_file():
        ctypes.CDLL(str(library), mode=os.RTLD_NOW | deepbind)


_bind_opensmile_to_itself()


# -- log-Mel (openSMILE) ---------------------------------------------------------------------------
@functools.lru_cache(maxsize=8)
def _logmel_smile(bands: int, low_hz: float, high_hz: float, frame_s: float, shift_s: float):
    """One opensmile.Smile per parameter set and process (built once: parsing the config costs ms)."""
    import opensmile

    options = {
        "nBands": int(bands),
        "lofreq": float(low_hz),
        "hifreq": float(high_hz),
        "frameSize": float(frame_s),
        "frameStep": float(shift_s),
        "blockSize": _SINK_BLOCK,
    }
    return opensmile.Smile(
        feature_set=str(LOGMEL_CONFIG), feature_level=LOGMEL_LEVEL, options=options, loglevel=0
    )


def _to_opensmile(signal: np.ndarray) -> np.ndarray:
    """[1, n] float32 clipped to the int16 range: opensmile multiplies by 32768 and casts to int16,
    which would wrap a sample of exactly +1.0 around to -1.0."""
    x = np.asarray(signal, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"expected a mono signal of shape [samples], got shape {x.shape}")
    if not np.isfinite(x).all():
        raise AudioError("signal holds NaN or infinite samples")
    return np.clip(x, -1.0, 32767.0 / 32768.0)[np.newaxis, :]


def logmel_frames(samples: int, sample_rate: int, frame_s: float = 0.025, shift_s: float = 0.010) -> int:
    """Frames openSMILE gives for ``samples`` samples: no padding, floor((n - frame) / shift) + 1."""
    frame, shift = round(frame_s * sample_rate), round(shift_s * sample_rate)
    return 0 if samples < frame else (samples - frame) // shift + 1


def logmel(
    signal: np.ndarray,
    sample_rate: int,
    bands: int = 26,
    low_hz: float = 0.0,
    high_hz: float = 6500.0,
    frame_s: float = 0.025,
    shift_s: float = 0.010,
    engine: LogMelEngine = "numpy",
) -> np.ndarray:
    """Log-Mel filterbank energies ``[frames, bands]`` float32 (openSMILE's; settings in logmel.conf).

    Frames are not padded: a 2.0 s signal gives 198 frames, 7.5 s gives 748 (use ``fix_length``).
    Values are ln of the mel-weighted power spectrum of int16 samples / 32767, floored at ln(1e-10).
    ``engine``: ``numpy`` (fast) or ``opensmile`` (the reference); both give the same values.
    """
    return logmel_many([signal], sample_rate, bands, low_hz, high_hz, frame_s, shift_s, engine)[0]


def logmel_many(
    signals: Sequence[np.ndarray],
    sample_rate: int,
    bands: int = 26,
    low_hz: float = 0.0,
    high_hz: float = 6500.0,
    frame_s: float = 0.025,
    shift_s: float = 0.010,
    engine: LogMelEngine = "numpy",
) -> list[np.ndarray]:
    """``logmel`` of many signals at once (same values as one call each, faster).

    The ``numpy`` engine needs whole-sample frame and shift lengths; for other rates (e.g. 22.05 kHz,
    where 10 ms is 220.5 samples) openSMILE computes the frames instead.
    """
    if engine not in LOGMEL_ENGINES:
        raise ValueError(f"unknown log-Mel engine {engine!r}: use one of {', '.join(LOGMEL_ENGINES)}")
    prepared = [_to_opensmile(s) for s in signals]
    frame = round(frame_s * sample_rate)
    for x in prepared:
        if x.shape[1] < frame:
            raise AudioError(
                f"signal of {x.shape[1]} samples is shorter than one {frame_s * 1000:g} ms frame ({frame} samples)"
            )
    if engine == "numpy" and _whole_samples(frame_s * sample_rate) and _whole_samples(shift_s * sample_rate):
        return _logmel_numpy(
            prepared, sample_rate, bands, low_hz, high_hz, frame, round(shift_s * sample_rate)
        )
    return _logmel_opensmile(prepared, sample_rate, bands, low_hz, high_hz, frame_s, shift_s)


def _whole_samples(samples: float) -> bool:
    return abs(samples - round(samples)) <= 1e-9


# -- log-Mel, numpy engine -------------------------------------------------------------------------
def _mel(hz: np.ndarray | np.floating | float) -> np.ndarray:
    """openSMILE's mel scale (specScale=mel): 1127 ln(1 + f/700), in float64, rounded to float32."""
    return (1127.0 * np.log(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)).astype(np.float32)


@functools.lru_cache(maxsize=16)
def opensmile_mel_filterbank(
    sample_rate: int, fft_size: int, bands: int, low_hz: float, high_hz: float
) -> np.ndarray:
    """cMelspec's filterbank as a matrix ``[fft_size // 2 + 1, bands]`` float32 (power in, bands out).

    HTK's construction, in openSMILE's float32 arithmetic: bands + 2 edge/centre points equally
    spaced in mel from low_hz to high_hz; FFT bin n (at n * fs / fft_size Hz) lying in
    (centre[k], centre[k+1]] in mel gives weight w = (centre[k+1] - mel(n)) / (centre[k+1] - centre[k])
    to the band whose peak is centre[k] and 1 - w to the band whose peak is centre[k+1]; only bins
    strictly between round(low_hz / bin width) and round(high_hz / bin width) count. Edges outside
    [0, fs/2] are moved to 0 and fs/2, as openSMILE does.
    """
    f32 = np.float32
    bin_hz = f32(sample_rate / fft_size)  # openSMILE: 1 / (FFT frame length in seconds)
    low, high = f32(low_hz), f32(high_hz)
    nyquist = f32(sample_rate) / f32(2.0)
    if low < 0 or low > nyquist or low > high:
        low = f32(0.0)
    if high < low or high > nyquist or high <= 0:
        high = nyquist
    low_mel, high_mel = _mel(low), _mel(high)
    half_band = f32((high_mel - low_mel) / f32(bands + 1))
    centres = np.array([f32(low_mel + f32(m) * half_band) for m in range(bands + 2)], dtype=f32)
    bins = fft_size // 2 + 1
    first = min(max(round(float(low / bin_hz)), 0), bins)
    last = min(max(round(float(high / bin_hz)), 0), bins)
    bank = np.zeros((bins, bands), dtype=f32)
    for n in range(first + 1, last):
        bin_mel = _mel(f32(n) * bin_hz)
        upper = int(np.searchsorted(centres, bin_mel, side="left"))  # first centre >= mel(n)
        if upper == 0 or upper > bands + 1:
            continue
        weight = f32((centres[upper] - bin_mel) / (centres[upper] - centres[upper - 1]))
        if upper - 2 >= 0:
            bank[n, upper - 2] += weight  # falling edge of the band peaking at centres[upper - 1]
        if upper - 1 <= bands - 1:
            bank[n, upper - 1] += f32(1.0) - weight  # rising edge of the band peaking at centres[upper]
    return bank


@functools.lru_cache(maxsize=16)
def _emphasised_window(frame: int) -> tuple[np.ndarray, np.ndarray]:
    """openSMILE's symmetric Hamming window, and the same window times -k shifted by one sample.

    Per-frame pre-emphasis then window, y[n] = w[n] (x[n] - k x[n-1]) with y[0] = w[0] (1 - k) x[0],
    becomes x * window + x[shifted] * lagged: two multiply-adds over the frame matrix.
    """
    window = (0.54 - 0.46 * np.cos(2.0 * np.pi * np.arange(frame) / (frame - 1))).astype(np.float32)
    k = np.float32(LOGMEL_PREEMPHASIS)
    scaled = window.copy()
    scaled[0] *= np.float32(1.0) - k
    lagged = -k * window[1:]
    return scaled, lagged


def _logmel_numpy(
    prepared: list[np.ndarray],
    sample_rate: int,
    bands: int,
    low_hz: float,
    high_hz: float,
    frame: int,
    shift: int,
) -> list[np.ndarray]:
    """The numpy engine: int16 rounding as opensmile does it, frames (a strided view, no copy),
    pre-emphasis and window, float32 FFT, power, filterbank, ln with the floor.

    Blocks of at most ``_NUMPY_BLOCK_FRAMES`` frames of one signal stay in the CPU cache (joining
    many signals into big blocks was 2x slower), and BLAS is held to one thread: its threads cost
    more CPU time than the small filterbank product they share (5,500x vs 2,500x real time per
    CPU-second on RAVDESS); serlib parallelises over files with processes instead.
    """
    import scipy.fft

    fft_size = 1 << (frame - 1).bit_length()  # cTransformFFT pads to the next power of two
    bank = opensmile_mel_filterbank(sample_rate, fft_size, bands, float(low_hz), float(high_hz))
    scaled, lagged = _emphasised_window(frame)
    floor = np.float32(1e-10)
    outputs: list[np.ndarray] = []
    with _one_blas_thread():
        for x in prepared:
            samples = ((x[0] * np.float32(32768.0)).astype(np.int16)).astype(np.float32)
            samples /= np.float32(OPENSMILE_SAMPLE_DIVISOR)
            count = (samples.shape[0] - frame) // shift + 1
            frames = np.lib.stride_tricks.sliding_window_view(samples, frame)[::shift][:count]
            energies = np.empty((count, bands), dtype=np.float32)
            for start in range(0, count, _NUMPY_BLOCK_FRAMES):
                block = frames[start : start + _NUMPY_BLOCK_FRAMES]
                windowed = block * scaled
                windowed[:, 1:] += block[:, :-1] * lagged
                spectrum = scipy.fft.rfft(windowed, n=fft_size, axis=1)
                power = spectrum.real**2 + spectrum.imag**2
                np.log(np.maximum(power @ bank, floor), out=energies[start : start + block.shape[0]])
            outputs.append(energies)
    return outputs


@functools.lru_cache(maxsize=1)
def _blas_controller() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _one_blas_thread() -> Any:
    """Context manager holding BLAS to one thread (a few microseconds to enter)."""
    return _blas_controller().limit(limits=1, user_api="blas")


# -- log-Mel, openSMILE engine ---------------------------------------------------------------------
def _logmel_opensmile(
    prepared: list[np.ndarray],
    sample_rate: int,
    bands: int,
    low_hz: float,
    high_hz: float,
    frame_s: float,
    shift_s: float,
) -> list[np.ndarray]:
    """The opensmile engine: signals concatenated into few openSMILE runs.

    Each signal starts at a multiple of the frame shift in the concatenation. Every processing step
    of logmel.conf works inside one frame (per-frame pre-emphasis, window, FFT, mel, log), so the
    frames that lie wholly inside a signal are exactly the frames of that signal alone; the frames
    straddling two signals are dropped.
    """
    shift = shift_s * sample_rate
    frame = round(frame_s * sample_rate)
    smile = _logmel_smile(bands, low_hz, high_hz, frame_s, shift_s)
    if not _whole_samples(shift):  # no common frame grid: one run per signal
        return [_run_logmel(smile, x, sample_rate, bands) for x in prepared]
    shift = round(shift)
    results: list[np.ndarray] = []
    batch: list[np.ndarray] = []
    size = 0
    for x in prepared:
        if batch and size + x.shape[1] > _BATCH_SAMPLES:
            results.extend(_run_batch(smile, batch, sample_rate, bands, frame, shift))
            batch, size = [], 0
        batch.append(x)
        size += -(-x.shape[1] // shift) * shift
    if batch:
        results.extend(_run_batch(smile, batch, sample_rate, bands, frame, shift))
    return results


def _run_logmel(smile, x: np.ndarray, sample_rate: int, bands: int) -> np.ndarray:
    """One openSMILE run through ``Smile.__call__`` (the signal path): [1, n] -> [frames, bands]."""
    output = smile(x, sample_rate)  # [channels=1, bands, frames]
    if output.shape[1] != bands:
        raise RuntimeError(f"openSMILE returned {output.shape[1]} bands instead of {bands}")
    return np.ascontiguousarray(output[0].T, dtype=np.float32)


def _run_batch(smile, batch: list[np.ndarray], sample_rate: int, bands: int, frame: int, shift: int):
    if len(batch) == 1:
        return [_run_logmel(smile, batch[0], sample_rate, bands)]
    offsets, counts, position = [], [], 0
    for x in batch:
        offsets.append(position)
        counts.append((x.shape[1] - frame) // shift + 1)
        position += -(-x.shape[1] // shift) * shift
    joined = np.zeros((1, position), dtype=np.float32)
    for x, offset in zip(batch, offsets, strict=True):
        joined[0, offset : offset + x.shape[1]] = x[0]
    features = _run_logmel(smile, joined, sample_rate, bands)
    expected = (position - frame) // shift + 1
    if features.shape[0] != expected:
        raise RuntimeError(
            f"openSMILE returned {features.shape[0]} frames for {position} samples, expected {expected}"
        )
    return [features[o // shift : o // shift + c].copy() for o, c in zip(offsets, counts, strict=True)]


def fix_length(x: np.ndarray, frames: int = MAX_FRAMES) -> tuple[np.ndarray, int]:
    """Cut ``x [T, dims]`` to ``frames`` rows or zero-pad it at the end; also return the true length.

    The paper's rule (Sec. 3): longer turns are cut at 7.5 s, shorter ones padded with zeros. It is
    applied to openSMILE's frames: ``frames`` = 750 frame starts 10 ms apart. openSMILE does not pad,
    so a 7.50 s turn has 748 true frames plus 2 zero rows, and a turn reaches 750 true frames at
    7.515 s (749 shifts + one 25 ms frame). The returned true length is min(T, frames).
    """
    x = np.asarray(x)
    true_frames = min(int(x.shape[0]), int(frames))
    fixed = np.zeros((int(frames),) + x.shape[1:], dtype=x.dtype)
    fixed[:true_frames] = x[:true_frames]
    return fixed, true_frames


# -- auDeep spectrograms ---------------------------------------------------------------------------
AUDEEP_PREEMPHASIS = 0.95


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
    import scipy.sparse

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
    window_s: float = 0.08,
    overlap_s: float = 0.04,
    mel_bands: int = 128,
    clip_below_db: float | None = -60.0,
    clip_above_db: float | None = None,
    fixed_length_s: float | None = None,
    center_fixed: bool = False,
    chunk_length_s: float | None = None,
    chunk_count: int | None = None,
) -> np.ndarray:
    """auDeep ``preprocess`` for one mono signal: ``[chunks, frames, mel_bands]`` float32 in [-1, 1].

    Without chunking there is one chunk. Steps (spec 1.2): fixed length on the raw samples,
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
    window_s: float = 0.08,
    overlap_s: float = 0.04,
    mel_bands: int = 128,
    clip_below_db: float | None = -60.0,
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


# -- eGeMAPS ---------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _egemaps_smile():
    import opensmile

    return opensmile.Smile(
        feature_set=opensmile.FeatureSet.eGeMAPSv02,
        feature_level=opensmile.FeatureLevel.Functionals,
        loglevel=0,
    )


def egemaps_names() -> list[str]:
    """The 88 eGeMAPSv02 functional names, in the order of ``egemaps``."""
    return list(_egemaps_smile().feature_names)


def egemaps(signal: np.ndarray, sample_rate: int) -> np.ndarray:
    """The 88 eGeMAPSv02 functionals of one utterance (openSMILE, one call), float32 ``[88]``."""
    x = _to_opensmile(signal)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Segment too short")  # turned into an error below
        output = _egemaps_smile()(x, sample_rate)  # [1, 88, 1]
    values = np.asarray(output, dtype=np.float32).reshape(-1)
    if values.shape[0] != EGEMAPS_DIMS:
        raise RuntimeError(f"openSMILE returned {values.shape[0]} eGeMAPS values instead of {EGEMAPS_DIMS}")
    if not np.isfinite(values).all():
        raise AudioError(
            f"signal of {x.shape[1] / sample_rate * 1000:.0f} ms is too short for eGeMAPS (openSMILE gives no "
            "values below about 60 ms)"
        )
    return values
