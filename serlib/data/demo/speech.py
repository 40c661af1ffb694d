"""Turning the demo corpus' sentences into audio: eSpeak NG through ctypes, or a numpy stand-in.

eSpeak NG comes with the ``espeakng-loader`` wheel (no system package needed) and is driven through its
C API with the prosody of each utterance; without it a numpy source-filter synthesiser (vowel formants,
noise bursts for consonants) stands in, with a warning. Both add room noise and fades (``_finish``).
"""

from __future__ import annotations

import ctypes
import logging
import math
import threading
import zlib
from typing import Any

import numpy as np

from serlib.data.demo.design import MAX_SECONDS, MIN_SECONDS, DemoCorpusError, Item, Prosody

log = logging.getLogger(__name__)

SAMPLE_RATE = 22_050  # eSpeak NG's native rate; kept so that serlib's resampling is exercised


class EspeakUnavailable(RuntimeError):
    """libespeak-ng (from the espeakng-loader wheel) could not be loaded or initialised."""


_AUDIO_OUTPUT_SYNCHRONOUS = 2


_POS_CHARACTER = 1


_CHARS_UTF8 = 1


_PARAMETER = {"rate": 1, "volume": 2, "pitch": 3, "range": 4, "wordgap": 7}


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


_ESPEAK_LOCK = threading.Lock()


_ESPEAK: _Espeak | None = None


class _Espeak:
    """libespeak-ng in synchronous mode; the synthesis callback collects int16 chunks at 22,050 Hz."""

    def __init__(self) -> None:
        try:
            import espeakng_loader  # noqa: PLC0415 - optional: the numpy voice stands in without it

            library = ctypes.CDLL(espeakng_loader.get_library_path())
            data_path = espeakng_loader.get_data_path()
        except (ImportError, OSError, RuntimeError, AttributeError) as error:
            raise EspeakUnavailable(f"cannot load libespeak-ng from espeakng-loader: {error}") from error
        library.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        library.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        library.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        library.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        rate = library.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(), 0)
        if rate != SAMPLE_RATE:
            raise EspeakUnavailable(
                f"espeak_Initialize with data {data_path} returned {rate}, not {SAMPLE_RATE}"
            )
        self.library = library
        self.chunks: list[np.ndarray] = []
        self.callback = _CALLBACK(self._collect)  # keep a reference: ctypes must not free it
        library.espeak_SetSynthCallback(self.callback)
        try:  # eSpeak's noise generators use the C library's rand()
            self.libc: Any = ctypes.CDLL(None)
        except (OSError, TypeError):  # Windows: no process-wide C library handle
            self.libc = None
        self.set_random_seed = getattr(library, "espeak_ng_SetRandSeed", None)  # newer libespeak-ng only

    def _collect(self, samples: Any, count: int, events: Any) -> int:
        if count > 0:
            self.chunks.append(np.ctypeslib.as_array(samples, shape=(count,)).copy())
        return 0

    def synthesize(self, text: str, voice: str, prosody: Prosody, random_seed: int) -> np.ndarray:
        """int16 samples of ``text`` in ``voice``; eSpeak's own noise generators are seeded first."""
        if self.library.espeak_SetVoiceByName(voice.encode()) != 0:
            raise DemoCorpusError(
                f"eSpeak NG has no voice {voice!r}; fix the voice tables of serlib.data.demo.speech"
            )
        settings = {
            "rate": round(prosody.rate_wpm),
            "volume": 100,
            "pitch": round(prosody.pitch),
            "range": round(prosody.pitch_range),
            "wordgap": prosody.word_gap,
        }
        for name, value in settings.items():
            self.library.espeak_SetParameter(_PARAMETER[name], int(value), 0)
        if self.libc is not None:
            self.libc.srand(random_seed)
        if self.set_random_seed is not None:
            self.set_random_seed(random_seed)
        self.chunks = []
        encoded = text.encode("utf-8") + b"\0"
        status = self.library.espeak_Synth(
            encoded, len(encoded), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
        )
        self.library.espeak_Synchronize()
        if status != 0 or not self.chunks:
            raise DemoCorpusError(f"eSpeak NG failed (status {status}) on {text!r} with voice {voice}")
        return np.concatenate(self.chunks)


def _espeak() -> _Espeak:
    global _ESPEAK
    if _ESPEAK is None:
        _ESPEAK = _Espeak()
    return _ESPEAK


def espeak_available() -> bool:
    """Whether libespeak-ng and its voice data from ``espeakng-loader`` load and initialise in this process."""
    try:
        with _ESPEAK_LOCK:
            _espeak()
        return True
    except EspeakUnavailable as error:
        log.debug("eSpeak NG unavailable: %s", error)
        return False


_VOWELS = {
    "a": (730, 1090, 2440),
    "e": (530, 1840, 2480),
    "i": (390, 1990, 2550),
    "o": (570, 840, 2410),
    "u": (440, 1020, 2240),
    "y": (400, 1900, 2500),
}


_CONSONANTS = {  # class, formants
    **{c: ("nasal", (250, 1200, 2300)) for c in "mn"},
    **{c: ("liquid", (350, 1000, 2200)) for c in "lrw"},
    **{c: ("fricative", (2500, 4500, 6500)) for c in "sfhcx"},
    **{c: ("voiced_fricative", (1800, 3800, 5800)) for c in "zvj"},
    **{c: ("stop", (1500, 2500, 3500)) for c in "ptkq"},
    **{c: ("voiced_stop", (400, 1500, 2500)) for c in "bdg"},
}


def _numpy_voice(voice: str, gender: str) -> tuple[float, float]:
    """(base F0 in Hz, formant scale) of a fallback voice, varied deterministically by the voice name."""
    offset = (zlib.crc32(voice.encode()) % 1000) / 1000.0 - 0.5
    if gender == "female":
        return 205.0 * (1 + 0.18 * offset), 1.16 + 0.08 * offset
    return 112.0 * (1 + 0.2 * offset), 1.0 + 0.08 * offset


def _smooth(track: np.ndarray, seconds: float) -> np.ndarray:
    """Moving Hann-window average that holds the edge values (no fall towards zero at the ends)."""
    from scipy import signal  # noqa: PLC0415 - only the numpy voice needs scipy

    window = np.hanning(max(3, int(seconds * SAMPLE_RATE)))
    half = len(window) // 2
    padded = np.pad(track, (half, len(window) - half - 1), mode="edge")
    return signal.fftconvolve(padded, window / window.sum(), mode="valid")


_Segment = tuple[str, float, tuple[int, int, int], bool]
"""(kind, seconds, formant targets in Hz, accented) of one stretch of the numpy voice."""


_VOICING = {"vowel": 1.0, "nasal": 0.35, "liquid": 0.55, "voiced_fricative": 0.3, "voiced_stop": 0.12}
"""How much of the glottal pulse each segment kind lets through (the rest of the kinds: none)."""


_NOISE = {"fricative": 0.25, "voiced_fricative": 0.12}
"""The noise level of the fricatives (stops add a burst at their end)."""


def _synthesize_numpy(
    text: str, voice: str, gender: str, prosody: Prosody, rng: np.random.Generator
) -> np.ndarray:
    """A glottal pulse train through time-varying formant resonators, one syllable per vowel group."""
    base_f0, formant_scale = _numpy_voice(voice, gender)
    base_f0 *= 2 ** ((prosody.pitch - 50) / 50 * 0.5)
    range_semitones = 1.0 + 6.0 * prosody.pitch_range / 50
    segments = _segments(text, prosody)
    counts = [
        max(1, int(round(seconds * SAMPLE_RATE * rng.uniform(0.85, 1.15)))) for _, seconds, _, _ in segments
    ]
    formant_tracks, voicing, noise_level, accents = _tracks(segments, counts, formant_scale)
    f0 = _f0_contour(accents, base_f0, range_semitones, rng)
    excitation = _excitation(f0, voicing, noise_level, rng)
    output = _formant_filter(excitation, formant_tracks)
    output /= max(float(np.max(np.abs(output))), 1e-9)
    return (output * 20000).astype(np.int16)


def _segments(text: str, prosody: Prosody) -> list[_Segment]:
    """The text as segments: one nucleus per vowel group (longer when it is a long word's first), one
    segment per consonant letter, and a pause after each word (longer after punctuation)."""
    syllable_s = 60.0 / (prosody.rate_wpm * 1.5)
    segments: list[_Segment] = []
    for word in text.lower().split():
        letters = [c for c in word if c.isalpha()]
        first_vowel = True
        for index, letter in enumerate(letters):
            if letter in _VOWELS:
                if index > 0 and letters[index - 1] in _VOWELS:
                    continue  # a vowel group is one nucleus
                accent = first_vowel and len(letters) > 3
                segments.append(("vowel", syllable_s * (0.62 if accent else 0.45), _VOWELS[letter], accent))
                first_vowel = False
            elif letter in _CONSONANTS:
                kind, formants = _CONSONANTS[letter]
                segments.append((kind, syllable_s * 0.22, formants, False))
        pause = 0.02 + 0.01 * prosody.word_gap + (0.12 if word[-1] in ",.?!" else 0.0)
        segments.append(("pause", pause, (500, 1500, 2500), False))
    return segments


def _tracks(
    segments: list[_Segment], counts: list[int], formant_scale: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-sample formant targets (3 x n), voicing, noise level and accent marks of the segments, each
    ``counts`` samples long; formants, voicing and noise smoothed across the joins (coarticulation)."""
    total = int(sum(counts))
    voicing, noise_level = np.zeros(total), np.zeros(total)
    formant_tracks = np.zeros((3, total))
    accents = np.zeros(total)
    position = 0
    for (kind, _, targets, accent), count in zip(segments, counts, strict=True):
        part = slice(position, position + count)
        formant_tracks[:, part] = np.array(targets)[:, None] * (formant_scale if kind != "fricative" else 1.0)
        voicing[part] = _VOICING.get(kind, 0.0)
        noise_level[part] = _NOISE.get(kind, 0.0)
        if kind in ("stop", "voiced_stop"):
            burst = min(count, int(0.015 * SAMPLE_RATE))
            noise_level[position + count - burst : position + count] = 0.35
        if accent:
            accents[position + count // 2] = 1.0
        position += count
    formant_tracks = np.stack([_smooth(track, 0.02) for track in formant_tracks])  # coarticulation
    return formant_tracks, _smooth(voicing, 0.006), _smooth(noise_level, 0.006), accents


def _f0_contour(
    accents: np.ndarray, base_f0: float, range_semitones: float, rng: np.random.Generator
) -> np.ndarray:
    """F0 in Hz per sample: declination, a peak at each accent mark and a slow random drift."""
    from scipy import signal  # noqa: PLC0415 - only the fallback needs scipy; eSpeak workers start faster

    total = len(accents)
    time_axis = np.arange(total) / SAMPLE_RATE
    declination = np.linspace(1.5, -1.5, total) * range_semitones / 4
    peak = np.exp(-0.5 * (np.arange(int(0.3 * SAMPLE_RATE)) / (0.06 * SAMPLE_RATE) - 2.5) ** 2)
    accent_curve = (
        signal.fftconvolve(accents * rng.uniform(0.5, 1.0, total), peak, mode="same") * range_semitones
    )
    drift = np.interp(time_axis, np.linspace(0, time_axis[-1], 12), rng.normal(0, 0.4, 12))
    return base_f0 * 2 ** ((declination + accent_curve + drift) / 12)


def _excitation(
    f0: np.ndarray, voicing: np.ndarray, noise_level: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """The source: the derivative of a Rosenberg-like glottal pulse at ``f0`` where voiced, plus noise."""
    phase = np.cumsum(f0 / SAMPLE_RATE) % 1.0
    pulse = np.where(
        phase < 0.4,
        0.5 * (1 - np.cos(np.pi * phase / 0.4)),
        np.where(phase < 0.56, np.cos(np.pi * (phase - 0.4) / 0.32), 0.0),
    )
    return np.diff(pulse, prepend=0.0) * voicing * 8 + rng.standard_normal(len(f0)) * (
        noise_level + 0.01 * voicing
    )


def _formant_filter(excitation: np.ndarray, formant_tracks: np.ndarray) -> np.ndarray:
    """A time-varying cascade of three resonators (one 6th-order filter), coefficients updated every 10 ms."""
    from scipy import signal  # noqa: PLC0415 - only the fallback needs scipy; eSpeak workers start faster

    total = len(excitation)
    hop = int(0.01 * SAMPLE_RATE)
    output = np.zeros(total)
    state = np.zeros(6)
    radii = np.exp(-np.pi * np.array([80.0, 110.0, 160.0]) / SAMPLE_RATE)
    for start in range(0, total, hop):
        frequencies = np.minimum(formant_tracks[:, start], 0.45 * SAMPLE_RATE)
        denominator = np.array([1.0])
        for radius, frequency in zip(radii, frequencies, strict=True):
            pole_pair = [1.0, -2 * radius * math.cos(2 * math.pi * frequency / SAMPLE_RATE), radius * radius]
            denominator = np.convolve(denominator, pole_pair)
        numerator = [float(np.prod(1 - radii))]
        output[start : start + hop], state = signal.lfilter(
            numerator, denominator, excitation[start : start + hop], zi=state
        )
    return output


def _trim(samples: np.ndarray) -> np.ndarray:
    """Drop leading and trailing silence (10 ms frames below 2% of the peak)."""
    frame = int(0.01 * SAMPLE_RATE)
    count = len(samples) // frame
    if count == 0:
        return samples
    energy = np.abs(samples[: count * frame].astype(np.float64)).reshape(count, frame).max(axis=1)
    active = np.flatnonzero(energy > 0.02 * max(float(energy.max()), 1.0))
    if len(active) == 0:
        return samples
    return samples[active[0] * frame : (active[-1] + 1) * frame]


def _one_pole(x: np.ndarray, pole: float) -> np.ndarray:
    """Unit-gain one-pole lowpass y[n] = (1 - pole) x[n] + pole y[n-1], as a truncated FIR (numpy only)."""
    taps = max(1, int(math.log(1e-6) / math.log(pole))) if pole > 0 else 1
    response = (1 - pole) * pole ** np.arange(taps)
    return np.convolve(x, response)[: len(x)]


def _colour(rng: np.random.Generator, count: int, brown: float) -> np.ndarray:
    """Unit-RMS background noise between white (0) and brown (1): room hum and hiss."""
    white = rng.standard_normal(count + 200)
    coloured = _one_pole(white, 0.97 * brown)[200:]
    return coloured / max(float(np.sqrt(np.mean(coloured**2))), 1e-9)


def _finish(
    speech: np.ndarray,
    prosody: Prosody,
    level_db: float,
    noise_dbfs: float,
    brown: float,
    lowpass_hz: float | None,
    rng: np.random.Generator,
) -> np.ndarray:
    """Tilt, level, silent margins, background noise, channel; returns int16 of 1-4 s."""
    x = speech.astype(np.float64)
    high = x - _one_pole(x, 0.75)  # the band above ~1 kHz
    x = x + prosody.tilt * high
    active = x[np.abs(x) > 0.05 * np.max(np.abs(x))]
    rms = float(np.sqrt(np.mean(active**2))) if len(active) else 1.0
    x *= 10 ** ((level_db + prosody.gain_db) / 20) / rms
    lead = int(rng.uniform(0.08, 0.3) * SAMPLE_RATE)
    tail = int(rng.uniform(0.1, 0.4) * SAMPLE_RATE)
    total = max(len(x) + lead + tail, int(MIN_SECONDS * SAMPLE_RATE) + 1)
    total = min(total, int(MAX_SECONDS * SAMPLE_RATE))
    lead = min(lead, max(0, total - len(x)))
    out = np.zeros(total)
    out[lead : lead + len(x)] = x[: total - lead]
    out += _colour(rng, total, brown) * 10 ** (noise_dbfs / 20)
    if lowpass_hz is not None:
        spectrum = np.fft.rfft(out)
        frequencies = np.fft.rfftfreq(len(out), 1 / SAMPLE_RATE)
        out = np.fft.irfft(
            spectrum / (1 + (frequencies / lowpass_hz) ** 8), n=len(out)
        )  # zero-phase Butterworth
    out = np.tanh(out / 0.95) * 0.95 if np.max(np.abs(out)) > 0.9 else out  # soft limit rare peaks
    return np.round(out * 32767).astype(np.int16)


def _render(
    item: Item, sentence: str, prosody: Prosody, engine: str, random_seed: int, rng: np.random.Generator
) -> np.ndarray:
    if engine == "espeak":
        with _ESPEAK_LOCK:
            return _espeak().synthesize(sentence, item.voice, prosody, random_seed)
    return _synthesize_numpy(sentence, item.voice, item.gender, prosody, rng)
