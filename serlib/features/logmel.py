"""The ACNN's input: openSMILE log-Mel filterbank energies (paper, Sec. 2), two engines, one definition.

Log-Mel filterbank energies (the paper's 26 bands, 0-6.5 kHz, 25 ms frames every 10 ms: the settings
of ``serlib/presets/paper.yaml``, ``features.logmel``, which are the functions' defaults), as openSMILE
computes them with the custom config ``serlib/features/logmel.conf``, whose comments state every
setting: per-frame pre-emphasis 0.97, symmetric Hamming, 512-point FFT, power, HTK mel, triangles linear in mel,
``htkcompatible=0`` so values are ln of the power of int16 samples / 32767 (HTK mode would add
ln(32767^2) = 20.79 to every value), floor ln(1e-10). Two engines give the same numbers:
``opensmile`` (the ``opensmile`` package running logmel.conf: the reference) and ``numpy`` (the same
definitions, vectorised over all frames; equal to openSMILE within float32 rounding: mean
|difference| 4e-7, max 3e-4 ln units on all of Emo-DB, tested). ``fix_length`` then applies the
paper's cut/zero-pad rule (``max_frames``) to the unpadded frames. serlib passes every setting to
openSMILE; logmel.conf's own defaults are checked against the preset (tests/test_paper_facts.py), not
generated from it, because the file's bytes are part of every log-Mel store's key.

Checked against an independent numpy/librosa computation of the same quantity on real speech
(tests/test_features.py): correlation per band > 0.999; the one systematic difference is that
librosa's triangles are linear in Hz, openSMILE's in mel, which moves band means by at most ~0.015 ln
units. librosa's own ``melspectrogram`` frames differently (a 400-sample window centred in a
512-sample frame, i.e. 56 samples later) and pre-emphasises the whole signal, so it agrees less
(per-band correlation 0.92-0.98).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.fft
from threadpoolctl import ThreadpoolController

from serlib.base.paper_preset import reader
from serlib.data.audio import AudioError
from serlib.features.smile import OPENSMILE_SAMPLE_DIVISOR, to_opensmile

LOGMEL_CONFIG = Path(__file__).parent / "logmel.conf"


LOGMEL_LEVEL = "logmel"  # the openSMILE data-memory level the sink reads (see logmel.conf)


LOGMEL_FLOOR = math.log(1e-10)  # value of digital silence (logfloor in logmel.conf)


LOGMEL_ENGINES = ("numpy", "opensmile")


LogMelEngine = Literal["numpy", "opensmile"]


LOGMEL_PREEMPHASIS = 0.97  # k of logmel.conf's cVectorPreemphasis


# The numpy engine transforms at most this many frames of a signal at once (1.6 MB of input).
_NUMPY_BLOCK_FRAMES = 1024


_PAPER = reader("features.logmel")  # the paper's settings: the functions' defaults
_PAPER_ENGINE: LogMelEngine = _PAPER("engine")


# openSMILE delivers frames to Python in blocks of this many (one callback per block instead of
# per frame: about 25% faster); see _logmel_smile.
_SINK_BLOCK = 100


# Signals are concatenated into one openSMILE run until it holds this many samples (amortises the
# per-run set-up of a few ms on short utterances; see logmel_many).
_BATCH_SAMPLES = 16000 * 120


@functools.lru_cache(maxsize=8)
def _logmel_smile(bands: int, low_hz: float, high_hz: float, frame_s: float, shift_s: float):
    """One opensmile.Smile per parameter set and process (built once: parsing the config costs ms)."""
    import opensmile  # noqa: PLC0415 - only after features.smile bound openSMILE's library (module docstring)

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


def logmel_frames(
    samples: int, sample_rate: int, frame_s: float = _PAPER("frame_s"), shift_s: float = _PAPER("shift_s")
) -> int:
    """Frames openSMILE gives for ``samples`` samples: no padding, floor((n - frame) / shift) + 1."""
    frame, shift = round(frame_s * sample_rate), round(shift_s * sample_rate)
    return 0 if samples < frame else (samples - frame) // shift + 1


def logmel(
    signal: np.ndarray,
    sample_rate: int,
    bands: int = _PAPER("bands"),
    low_hz: float = _PAPER("low_hz"),
    high_hz: float = _PAPER("high_hz"),
    frame_s: float = _PAPER("frame_s"),
    shift_s: float = _PAPER("shift_s"),
    engine: LogMelEngine = _PAPER_ENGINE,
) -> np.ndarray:
    """Log-Mel filterbank energies ``[frames, bands]`` float32 (openSMILE's; settings in logmel.conf).

    Frames are not padded: with 25 ms frames every 10 ms a 2.0 s signal gives 198 frames (use ``fix_length``).
    Values are ln of the mel-weighted power spectrum of int16 samples / 32767, floored at ln(1e-10).
    ``engine``: ``numpy`` (fast) or ``opensmile`` (the reference); both give the same values.
    """
    return logmel_many([signal], sample_rate, bands, low_hz, high_hz, frame_s, shift_s, engine)[0]


def logmel_many(
    signals: Sequence[np.ndarray],
    sample_rate: int,
    bands: int = _PAPER("bands"),
    low_hz: float = _PAPER("low_hz"),
    high_hz: float = _PAPER("high_hz"),
    frame_s: float = _PAPER("frame_s"),
    shift_s: float = _PAPER("shift_s"),
    engine: LogMelEngine = _PAPER_ENGINE,
) -> list[np.ndarray]:
    """``logmel`` of many signals at once (same values as one call each, faster).

    The ``numpy`` engine needs whole-sample frame and shift lengths; for other rates (e.g. 22.05 kHz,
    where 10 ms is 220.5 samples) openSMILE computes the frames instead.
    """
    if engine not in LOGMEL_ENGINES:
        raise ValueError(f"unknown log-Mel engine {engine!r}: use one of {', '.join(LOGMEL_ENGINES)}")
    prepared = [to_opensmile(s) for s in signals]
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
    return ThreadpoolController()


def _one_blas_thread() -> Any:
    """Context manager holding BLAS to one thread (a few microseconds to enter)."""
    return _blas_controller().limit(limits=1, user_api="blas")


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


def fix_length(x: np.ndarray, frames: int) -> tuple[np.ndarray, int]:
    """Cut ``x [T, dims]`` to ``frames`` rows or zero-pad it at the end; also return the true length.

    The paper's rule (Sec. 3): longer turns are cut, shorter ones padded with zeros. It is applied to
    openSMILE's frames: ``frames`` frame starts one shift apart (``features.logmel.max_frames``).
    openSMILE does not pad, so with 25 ms frames every 10 ms a turn of exactly ``frames`` x 10 ms has 2
    true frames fewer than ``frames`` (2 zero rows). The returned true length is min(T, frames).
    """
    x = np.asarray(x)
    true_frames = min(int(x.shape[0]), int(frames))
    fixed = np.zeros((int(frames),) + x.shape[1:], dtype=x.dtype)
    fixed[:true_frames] = x[:true_frames]
    return fixed, true_frames
