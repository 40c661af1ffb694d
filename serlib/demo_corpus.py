"""The offline demo corpus: synthetic emotional and unlabeled speech, generated deterministically from a seed.

Four parts mimic the paper's corpora in serlib's on-disk layout (``<part>/<session>/<speaker>/<id>.wav`` plus
``<part>/manifest.csv``): ``labeled`` (IEMOCAP-like), ``cross`` (MSP-IMPROV-like, other voices, sentences and
prosody mapping), ``unlabeled`` (TED-LIUM-like talks) and ``unlabeled_books`` (LibriSpeech-like reading).
Speech comes from eSpeak NG (the ``espeakng-loader`` wheel, driven through ctypes) with emotion prosody after
the acoustic literature; without eSpeak NG a numpy source-filter synthesiser stands in. The audio is
synthetic: numbers measured on it say nothing about real emotion recognition.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import threading
import time
import wave
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from serlib import corpora

log = logging.getLogger(__name__)

GENERATOR_VERSION = 1
SAMPLE_RATE = 22_050  # eSpeak NG's native rate; kept so that serlib's resampling is exercised
PARTS = ("labeled", "cross", "unlabeled", "unlabeled_books")
ENGINES = ("auto", "espeak", "numpy")
MIN_SECONDS, MAX_SECONDS = 1.0, 4.0

DEFAULT_SIZES: dict[str, int] = {
    "labeled_sessions": 5,  # IEMOCAP: 5 sessions x (one female, one male speaker)
    "utterances_per_speaker_emotion": 6,  # 5 x 2 x 4 x 6 = 240 labeled utterances
    "cross_sessions": 3,
    "cross_utterances_per_speaker_emotion": 5,  # 3 x 2 x 4 x 5 = 120
    "unlabeled_talks": 12,
    "unlabeled_utterances": 240,
    "books_readers": 10,
    "books_utterances": 150,
}


class DemoCorpusError(corpora.CorpusError):
    """Bad demo-corpus parameters or an unusable output folder; the message names what to change."""


class EspeakUnavailable(RuntimeError):
    """libespeak-ng (from the espeakng-loader wheel) could not be loaded or initialised."""


# -- texts and voices --------------------------------------------------------------------------------------
# fmt: off
LABELED_SENTENCES = (
    "I told you the train leaves at seven.", "We have to talk about this right now.",
    "The letter arrived this morning.", "She said she would call me back.",
    "They moved the meeting to Friday.", "I can't believe you did that.", "Where did you put the keys?",
    "He is coming home tonight.", "That is not what I asked for.", "You never listen to a word I say.",
    "The results came in yesterday.", "I waited for you all afternoon.", "It is going to rain again.",
    "Look at what they sent us.", "We sold the house last week.", "My brother is getting married.",
    "Nobody answered the phone.", "Just sit down and tell me.", "I found your old photographs.",
    "The dog ran away again.", "They gave the job to someone else.", "This is the last time, I promise.",
    "I got the tickets for tonight.", "We are leaving in the morning.", "You knew about this the whole time.",
    "The car broke down on the highway.", "Do you remember that summer?", "Your mother called about dinner.",
    "I read the whole report.", "They closed the old bakery.", "It is finally over.",
    "I need you to come with me.", "The package was sitting by the door.", "We only have ten minutes left.",
    "He forgot about our anniversary.", "I passed the exam.", "Everything is exactly where you left it.",
    "She is not coming back.", "Can you hear the music outside?", "I made the decision myself.",
)
CROSS_SENTENCES = (
    "How did you get in here?", "I thought the concert was tomorrow.",
    "You should see the view from the roof.", "The bus was late again today.",
    "I lost my wallet at the station.", "We won the game last night.", "Did you finish the painting?",
    "My flight got cancelled.", "There is nothing left in the fridge.", "I talked to the manager about it.",
    "Your sister borrowed my jacket.", "The garden looks different now.", "I have to work this weekend.",
    "They are painting the kitchen blue.", "He sent me a message at midnight.", "We are out of coffee.",
    "I know exactly what happened.", "The neighbours are having a party.", "You took my seat.",
    "It was right here a minute ago.", "The doctor wants to see you.", "I can drive you to the airport.",
    "We never went back to that town.", "The water is cold this morning.", "She kept the ring.",
    "I think we missed the turn.", "Someone left the window open.", "The store closes at nine.",
    "He finally fixed the roof.", "We should have stayed at home.", "I got a letter from the school.",
    "They cancelled the whole trip.", "The cat is sleeping on my bed.", "You said you would be here.",
    "I will see you on Monday.", "That was my favourite cup.", "The phone has been ringing all day.",
    "We have a new teacher.", "I finished the book last night.", "This room is too small.",
)
TALK_SENTENCES = (
    "Today I want to talk about water.", "Imagine a city without cars.", "The data tells a different story.",
    "Most of us never think about it.", "Let me show you a picture.", "This changed how I see the world.",
    "We measured it in twelve countries.", "Here is the surprising part.",
    "Our brains are wired for stories.", "It started with a simple question.",
    "Ten years ago, this was impossible.", "The answer turned out to be simple.",
    "So what can we actually do?", "Think about the last time you were bored.",
    "Cells talk to each other all the time.", "This is a map of the ocean floor.",
    "We built a prototype in two weeks.", "Nobody believed it would work.",
    "The cost dropped by ninety percent.", "Children learn faster than we think.",
    "I grew up in a small village.", "Every design is a kind of promise.",
    "That is the power of small changes.", "The forest is a network.", "Energy is the hidden problem.",
    "We asked people a simple question.", "And the results were remarkable.",
    "This is where it gets interesting.", "Light travels incredibly fast.",
    "Failure taught me more than success.", "Music is older than language.", "We can see it from space.",
    "The robots learned to walk.", "Cities are growing every day.", "Curiosity is a renewable resource.",
    "Let us look at the numbers.", "Sleep is not a luxury.", "Bees are remarkable engineers.",
    "I want to leave you with one idea.", "The future is already here.", "Our planet is running a fever.",
    "Good questions matter more than answers.", "It takes courage to be honest.", "Trust is built slowly.",
    "The experiment ran for a year.", "Maps shape how we think.", "Thank you very much.",
    "We are all connected.",
)
BOOK_SENTENCES = (
    "The old man walked slowly along the shore.", "It was late in the autumn of that year.",
    "She opened the door and looked outside.", "The wind had risen during the night.",
    "He could hear the river below the hill.", "They travelled for many days without rest.",
    "The captain gave his orders quietly.", "A single candle burned upon the table.",
    "The village lay at the foot of the mountain.", "Her letters were full of news from home.",
    "The horses stood waiting in the yard.", "At last the carriage came into view.",
    "He had never seen so many books.", "The garden was silent in the moonlight.",
    "They sat together by the fire.", "Snow had covered the roads by morning.",
    "The ship sailed before the dawn.", "She read the note a second time.", "His voice was low and steady.",
    "The king listened without a word.", "Far away a bell began to ring.",
    "The path led down into the valley.", "Nobody spoke during the long supper.",
    "The children ran across the meadow.", "It was a cold and clear evening.",
    "The doctor arrived just after noon.", "A great storm was gathering in the west.",
    "The merchant counted his coins twice.", "We reached the town before nightfall.",
    "The lamp threw long shadows on the wall.", "Her brother had gone to sea.",
    "The forest grew darker as we walked.", "He folded the map and put it away.", "The clock struck eleven.",
    "There was no answer from the house.", "The bridge had been washed away.",
    "She smiled and shook her head.", "The soldiers marched through the gate.",
    "Spring came early that year.", "He wrote until the candle went out.",
)
# (female voice, male voice) per session; eSpeak NG voice names "<language>+<variant>".
LABELED_VOICES = (
    ("en+f1", "en+m1"), ("en-US+f2", "en-US+m2"), ("en+f3", "en+m3"), ("en-US+f4", "en-US+m4"),
    ("en+f5", "en+m5"), ("en-GB-x-rp+f2", "en-GB-x-rp+m3"), ("en-GB-scotland+f4", "en-GB-scotland+m4"),
    ("en-029+f1", "en-029+m5"),
)
CROSS_VOICES = (
    ("en-US+Annie", "en+m6"), ("en+Andrea", "en-US+m7"), ("en-GB-x-rp+steph", "en+Marco"),
    ("en-US+belinda", "en+travis"), ("en+linda", "en-US+Denis"), ("en-GB-x-rp+anika", "en+Storm"),
)
TALK_VOICES = (
    ("en-US+Michael", "male"), ("en+linda", "female"), ("en+Mike", "male"), ("en-US+aunty", "female"),
    ("en+Gene", "male"), ("en+anika", "female"), ("en-GB-scotland+iven", "male"), ("en-US+belinda", "female"),
    ("en+john", "male"), ("en+steph2", "female"), ("en-US+paul", "male"), ("en+robert", "male"),
    ("en-GB-x-rp+klatt", "male"), ("en-US+Alicia", "female"), ("en+Lee", "male"), ("en-US-nyc+f3", "female"),
)
BOOK_VOICES = (
    ("en+Alicia", "female"), ("en+quincy", "male"), ("en-US+steph3", "female"), ("en+Jacky", "male"),
    ("en+grandma", "female"), ("en-GB-x-rp+Lee", "male"), ("en-GB-scotland+f3", "female"),
    ("en-US-nyc+m8", "male"), ("en-029+f4", "female"), ("en+Andy", "male"), ("en-US+Andrea", "female"),
    ("en+rob", "male"),
)
# fmt: on

# Emotion-typical mean ratings (arousal, valence) on the 1-5 scale.
EMOTION_AV = {"angry": (4.2, 1.8), "happy": (3.8, 4.2), "neutral": (2.8, 3.0), "sad": (1.8, 1.8)}


@dataclass(frozen=True)
class Style:
    """How one corpus maps (arousal, valence) to prosody; ``cross`` differs so that it is a domain shift."""

    rate_arousal: float  # log-rate change per unit of scaled arousal
    pitch_arousal: float  # eSpeak pitch points (0-100 scale) per unit of scaled arousal
    pitch_valence: float
    range_arousal: float
    range_valence: float
    gain_arousal_db: float
    tilt_arousal: float  # spectral tilt (tense/lax voice) per unit of scaled arousal
    jitter: float  # scale of the per-utterance random variation
    noise_dbfs: tuple[float, float]  # background noise level range per session
    raters: int  # ratings averaged per utterance
    channel_lowpass_hz: float | None  # recording channel bandwidth (None: full band)


STYLES = {
    "labeled": Style(0.28, 16, 7, 22, 14, 6.0, 0.55, 1.0, (-62, -50), 3, None),
    "cross": Style(0.18, 22, 4, 14, 20, 4.0, 0.8, 1.3, (-56, -46), 5, 7000.0),
    "unlabeled": Style(0.25, 14, 6, 20, 12, 5.0, 0.5, 1.0, (-58, -46), 0, 8000.0),
    "unlabeled_books": Style(0.2, 10, 5, 14, 8, 4.0, 0.4, 0.8, (-66, -54), 0, None),
}


@dataclass(frozen=True)
class Prosody:
    rate_wpm: float
    pitch: float  # eSpeak 0-100, 50 = the voice's default
    pitch_range: float  # eSpeak 0-100, 50 = default, 0 = monotone
    word_gap: int  # extra pause between words, units of 10 ms
    gain_db: float  # level relative to the reference speech level
    tilt: float  # > 0 brighter (tense), < 0 darker (lax)


@dataclass(frozen=True)
class Item:
    """One utterance to synthesise."""

    utterance_id: str
    session: str
    speaker: str
    gender: str
    voice: str
    emotion: str
    arousal: float  # mean rating, NaN for unlabeled parts
    valence: float
    latent_arousal: float  # what drives the prosody (the raters see it through noise)
    latent_valence: float


# -- eSpeak NG through ctypes ------------------------------------------------------------------------------
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
            import espeakng_loader

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
                f"eSpeak NG has no voice {voice!r}; fix the voice tables of serlib.demo_corpus"
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


# -- numpy source-filter fallback --------------------------------------------------------------------------
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
    from scipy import signal

    window = np.hanning(max(3, int(seconds * SAMPLE_RATE)))
    half = len(window) // 2
    padded = np.pad(track, (half, len(window) - half - 1), mode="edge")
    return signal.fftconvolve(padded, window / window.sum(), mode="valid")


def _synthesize_numpy(
    text: str, voice: str, gender: str, prosody: Prosody, rng: np.random.Generator
) -> np.ndarray:
    """A glottal pulse train through time-varying formant resonators, one syllable per vowel group."""
    from scipy import signal  # only the fallback needs scipy; eSpeak workers start faster without it

    base_f0, formant_scale = _numpy_voice(voice, gender)
    base_f0 *= 2 ** ((prosody.pitch - 50) / 50 * 0.5)
    range_semitones = 1.0 + 6.0 * prosody.pitch_range / 50
    syllable_s = 60.0 / (prosody.rate_wpm * 1.5)
    # (kind, seconds, formant targets, accented) per segment
    segments: list[tuple[str, float, tuple[int, int, int], bool]] = []
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
        segments.append(
            (
                "pause",
                0.02 + 0.01 * prosody.word_gap + (0.12 if word[-1] in ",.?!" else 0.0),
                (500, 1500, 2500),
                False,
            )
        )
    counts = [
        max(1, int(round(seconds * SAMPLE_RATE * rng.uniform(0.85, 1.15)))) for _, seconds, _, _ in segments
    ]
    total = int(sum(counts))
    voicing, noise_level = np.zeros(total), np.zeros(total)
    formant_tracks = np.zeros((3, total))
    accents = np.zeros(total)
    position = 0
    for (kind, _, targets, accent), count in zip(segments, counts, strict=True):
        part = slice(position, position + count)
        formant_tracks[:, part] = np.array(targets)[:, None] * (formant_scale if kind != "fricative" else 1.0)
        voicing[part] = {
            "vowel": 1.0,
            "nasal": 0.35,
            "liquid": 0.55,
            "voiced_fricative": 0.3,
            "voiced_stop": 0.12,
        }.get(kind, 0.0)
        noise_level[part] = {"fricative": 0.25, "voiced_fricative": 0.12}.get(kind, 0.0)
        if kind in ("stop", "voiced_stop"):
            burst = min(count, int(0.015 * SAMPLE_RATE))
            noise_level[position + count - burst : position + count] = 0.35
        if accent:
            accents[position + count // 2] = 1.0
        position += count
    formant_tracks = np.stack([_smooth(track, 0.02) for track in formant_tracks])  # coarticulation
    voicing, noise_level = _smooth(voicing, 0.006), _smooth(noise_level, 0.006)
    # F0: declination, accent peaks, a final fall and slow random drift.
    time_axis = np.arange(total) / SAMPLE_RATE
    declination = np.linspace(1.5, -1.5, total) * range_semitones / 4
    peak = np.exp(-0.5 * (np.arange(int(0.3 * SAMPLE_RATE)) / (0.06 * SAMPLE_RATE) - 2.5) ** 2)
    accent_curve = (
        signal.fftconvolve(accents * rng.uniform(0.5, 1.0, total), peak, mode="same") * range_semitones
    )
    drift = np.interp(time_axis, np.linspace(0, time_axis[-1], 12), rng.normal(0, 0.4, 12))
    f0 = base_f0 * 2 ** ((declination + accent_curve + drift) / 12)
    phase = np.cumsum(f0 / SAMPLE_RATE) % 1.0
    pulse = np.where(
        phase < 0.4,
        0.5 * (1 - np.cos(np.pi * phase / 0.4)),
        np.where(phase < 0.56, np.cos(np.pi * (phase - 0.4) / 0.32), 0.0),
    )
    excitation = np.diff(pulse, prepend=0.0) * voicing * 8 + rng.standard_normal(total) * (
        noise_level + 0.01 * voicing
    )
    # Time-varying cascade of three resonators (one 6th-order filter), coefficients updated every 10 ms.
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
    output /= max(float(np.max(np.abs(output))), 1e-9)
    return (output * 20000).astype(np.int16)


# -- prosody, levels, noise --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Habit:
    """A speaker's own speaking habits, so that speakers differ beyond their voice."""

    log_rate: float
    pitch: float
    expressiveness: float  # scales the emotional pitch-range excursion
    level_db: float  # recording level of this speaker (microphone distance, gain)


def _habit(rng: np.random.Generator) -> Habit:
    return Habit(
        log_rate=float(rng.normal(0, 0.07)),
        pitch=float(rng.normal(0, 3.0)),
        expressiveness=float(np.exp(rng.normal(0, 0.2))),
        level_db=float(rng.uniform(-29, -23)),
    )


def _prosody(rng: np.random.Generator, item: Item, style: Style, habit: Habit, read_speech: bool) -> Prosody:
    """Emotion prosody as the literature describes it, driven by the utterance's latent arousal/valence."""
    a = (item.latent_arousal - 3.0) / 2.0
    v = (item.latent_valence - 3.0) / 2.0
    j = style.jitter
    log_rate = habit.log_rate + style.rate_arousal * a + rng.normal(0, 0.07 * j)
    rate = 170.0 * math.exp(log_rate) * (0.9 if read_speech else 1.0)
    pitch = 50 + habit.pitch + style.pitch_arousal * a + style.pitch_valence * v + rng.normal(0, 5 * j)
    excursion = habit.expressiveness * (style.range_arousal * a + style.range_valence * v)
    pitch_range = 50 + excursion + rng.normal(0, 7 * j)
    gain_db = style.gain_arousal_db * a + rng.normal(0, 2.0 * j)
    tilt = style.tilt_arousal * a + rng.normal(0, 0.15 * j)
    word_gap = 0
    if item.emotion == "angry":  # hot anger: wide, tense, loud, a little faster
        pitch_range += 10
        tilt += 0.25
        gain_db += 1.5
        rate *= 1.05
    elif item.emotion == "happy":  # high pitch, wide range
        pitch += 4
        pitch_range += 6
    elif item.emotion == "sad":  # slow, flat, quiet, lax, with pauses
        rate *= 0.92
        pitch_range -= 6
        tilt -= 0.2
        word_gap = int(rng.integers(1, 4))
    return Prosody(
        rate_wpm=float(np.clip(rate, 90, 320)),
        pitch=float(np.clip(pitch, 5, 95)),
        pitch_range=float(np.clip(pitch_range, 3, 100)),
        word_gap=word_gap,
        gain_db=float(np.clip(gain_db, -12, 10)),
        tilt=float(np.clip(tilt, -0.9, 0.9)),
    )


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


# -- what each part contains -------------------------------------------------------------------------------
def _ratings(rng: np.random.Generator, latent: float, raters: int) -> float:
    """Mean of integer 1-5 ratings of ``raters`` raters who see ``latent`` through noise."""
    scores = np.clip(np.round(latent + rng.normal(0, 0.6, raters)), 1, 5)
    return float(np.mean(scores))


def _labeled_items(rng: np.random.Generator, part: str, sessions: int, per_cell: int) -> list[Item]:
    voices = LABELED_VOICES if part == "labeled" else CROSS_VOICES
    if sessions > len(voices):
        key = "labeled_sessions" if part == "labeled" else "cross_sessions"
        raise DemoCorpusError(f"{key}={sessions}: at most {len(voices)} sessions have voices")
    style = STYLES[part]
    prefix = "Ses" if part == "labeled" else "MSP"
    items = []
    for session in range(1, sessions + 1):
        for gender, voice in zip(("female", "male"), voices[session - 1], strict=True):
            speaker = f"{session}{gender[0].upper()}"
            for emotion in corpora.EMOTIONS:
                mean_arousal, mean_valence = EMOTION_AV[emotion]
                for index in range(per_cell):
                    latent_a = float(np.clip(mean_arousal + rng.normal(0, 0.35), 1, 5))
                    latent_v = float(np.clip(mean_valence + rng.normal(0, 0.35), 1, 5))
                    items.append(
                        Item(
                            utterance_id=f"{prefix}{session:02d}{gender[0].upper()}_{emotion}_{index:03d}",
                            session=str(session),
                            speaker=speaker,
                            gender=gender,
                            voice=voice,
                            emotion=emotion,
                            arousal=_ratings(rng, latent_a, style.raters),
                            valence=_ratings(rng, latent_v, style.raters),
                            latent_arousal=latent_a,
                            latent_valence=latent_v,
                        )
                    )
    return items


def _unlabeled_items(rng: np.random.Generator, part: str, groups: int, utterances: int) -> list[Item]:
    voices = TALK_VOICES if part == "unlabeled" else BOOK_VOICES
    key = "unlabeled_talks" if part == "unlabeled" else "books_readers"
    if not 1 <= groups <= len(voices):
        raise DemoCorpusError(f"{key}={groups}: choose 1 to {len(voices)} (one voice each)")
    letter = "T" if part == "unlabeled" else "B"
    spread = 0.35 if part == "unlabeled" else 0.22
    centre = (3.2, 3.2) if part == "unlabeled" else (2.8, 3.0)
    items = []
    for index in range(utterances):
        group = index % groups  # round robin, so every talk/reader gets a near-equal share
        voice, gender = voices[group]
        number = index // groups
        speaker = f"{letter}{group + 1:02d}"
        latent_a = float(np.clip(centre[0] + rng.normal(0, spread), 1, 5))
        latent_v = float(np.clip(centre[1] + rng.normal(0, spread), 1, 5))
        items.append(
            Item(
                utterance_id=f"{speaker}_{number:04d}",
                session=speaker if part == "unlabeled" else f"{speaker}C1",
                speaker=speaker,
                gender=gender,
                voice=voice,
                emotion="",
                arousal=math.nan,
                valence=math.nan,
                latent_arousal=latent_a,
                latent_valence=latent_v,
            )
        )
    return items


def _items(part: str, rng: np.random.Generator, sizes: dict[str, int]) -> tuple[list[Item], tuple[str, ...]]:
    if part == "labeled":
        items = _labeled_items(rng, part, sizes["labeled_sessions"], sizes["utterances_per_speaker_emotion"])
        return items, LABELED_SENTENCES
    if part == "cross":
        items = _labeled_items(
            rng, part, sizes["cross_sessions"], sizes["cross_utterances_per_speaker_emotion"]
        )
        return items, CROSS_SENTENCES
    if part == "unlabeled":
        return _unlabeled_items(
            rng, part, sizes["unlabeled_talks"], sizes["unlabeled_utterances"]
        ), TALK_SENTENCES
    return _unlabeled_items(rng, part, sizes["books_readers"], sizes["books_utterances"]), BOOK_SENTENCES


def _render(
    item: Item, sentence: str, prosody: Prosody, engine: str, random_seed: int, rng: np.random.Generator
) -> np.ndarray:
    if engine == "espeak":
        with _ESPEAK_LOCK:
            return _espeak().synthesize(sentence, item.voice, prosody, random_seed)
    return _synthesize_numpy(sentence, item.voice, item.gender, prosody, rng)


def _generate_parts(
    parts: tuple[str, ...], folder: str, seed: int, engine: str, sizes: dict[str, int]
) -> None:
    """Write ``parts`` in this order under ``folder``; the eSpeak engine runs this in a fresh worker process.

    libespeak-ng keeps state between utterances that no API call resets (its pitch-flutter phase, even across
    espeak_Terminate/espeak_Initialize), so byte reproducibility needs the same sequence of calls from a
    freshly loaded library: each worker process starts fresh and always gets the same parts in the same order.
    """
    for part in parts:
        _generate_part(part, str(Path(folder) / part), seed, engine, sizes)


def _generate_part(part: str, folder: str, seed: int, engine: str, sizes: dict[str, int]) -> str:
    """Write one part (wav files, manifest.csv, utterances.csv) into ``folder``."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, PARTS.index(part), GENERATOR_VERSION]))
    style = STYLES[part]
    items, sentences = _items(part, rng, sizes)
    root = Path(folder)
    session_noise: dict[str, tuple[float, float]] = {}
    habits: dict[str, Habit] = {}
    rows, details = [], []
    for item in items:
        if item.session not in session_noise:
            session_noise[item.session] = (
                float(rng.uniform(*style.noise_dbfs)),
                float(rng.uniform(0.3, 0.9)),
            )
        if item.speaker not in habits:
            habits[item.speaker] = _habit(rng)
        habit = habits[item.speaker]
        prosody = _prosody(rng, item, style, habit, read_speech=part == "unlabeled_books")
        order = rng.permutation(len(sentences))
        speech = np.zeros(0, np.int16)
        sentence = ""
        for attempt, choice in enumerate(order[:8]):
            sentence = sentences[int(choice)]
            if item.emotion in ("angry", "happy") and sentence.endswith(".") and rng.random() < 0.4:
                sentence = sentence[:-1] + "!"
            tried = (
                prosody
                if attempt < 6
                else Prosody(**{**prosody.__dict__, "rate_wpm": prosody.rate_wpm * 1.25})
            )
            speech = _trim(_render(item, sentence, tried, engine, int(rng.integers(1, 2**31 - 1)), rng))
            if len(speech) <= (MAX_SECONDS - 0.45) * SAMPLE_RATE:
                prosody = tried
                break
        noise_dbfs, brown = session_noise[item.session]
        audio = _finish(
            speech,
            prosody,
            habit.level_db,
            noise_dbfs + rng.normal(0, 1.0),
            brown,
            style.channel_lowpass_hz,
            rng,
        )
        path = root / item.session / item.speaker / f"{item.utterance_id}.wav"
        _write_wav(path, audio)
        rows.append(
            {
                "utterance_id": item.utterance_id,
                "corpus": f"demo_{part}",
                "path": str(path),
                "speaker": item.speaker,
                "session": item.session,
                "gender": item.gender,
                "emotion": item.emotion,
                "arousal": item.arousal,
                "valence": item.valence,
            }
        )
        details.append(
            {
                "utterance_id": item.utterance_id,
                "text": sentence,
                "voice": item.voice,
                "engine": engine,
                "seconds": round(len(audio) / SAMPLE_RATE, 4),
                "speech_seconds": round(len(speech) / SAMPLE_RATE, 4),
                "latent_arousal": round(item.latent_arousal, 4),
                "latent_valence": round(item.latent_valence, 4),
                **{
                    key: (round(value, 4) if isinstance(value, float) else value)
                    for key, value in prosody.__dict__.items()
                },
            }
        )
    manifest = corpora.make_manifest(rows).sort_values("utterance_id").reset_index(drop=True)
    corpora.write_manifest(manifest, root / "manifest.csv", relative_to=root)
    pd.DataFrame(details).sort_values("utterance_id").to_csv(root / "utterances.csv", index=False)
    return str(root / "manifest.csv")


def _write_wav(path: Path, samples: np.ndarray) -> None:
    """16-bit mono PCM wav with a fixed header (the stdlib writer stores no timestamps)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(SAMPLE_RATE)
        handle.writeframes(np.ascontiguousarray(samples, dtype="<i2").tobytes())


# -- public API ----------------------------------------------------------------------------------------------
def _check(seed: int, engine: str, sizes: dict[str, Any]) -> dict[str, int]:
    unknown = sorted(set(sizes) - set(DEFAULT_SIZES))
    if unknown:
        raise DemoCorpusError(
            f"unknown demo corpus parameters {unknown} (config key demo_corpus); allowed: seed, engine, "
            + ", ".join(DEFAULT_SIZES)
        )
    if engine not in ENGINES:
        raise DemoCorpusError(f"demo corpus engine {engine!r} is not one of {', '.join(ENGINES)}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DemoCorpusError(f"demo corpus seed must be a non-negative integer, got {seed!r}")
    full = {**DEFAULT_SIZES, **sizes}
    for key, value in full.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise DemoCorpusError(f"demo corpus parameter {key} must be a positive integer, got {value!r}")
    return {key: int(value) for key, value in full.items()}


def _resolve_engine(engine: str) -> str:
    if engine == "numpy":
        return "numpy"
    if espeak_available():
        return "espeak"
    if engine == "espeak":
        raise DemoCorpusError(
            "engine='espeak' but libespeak-ng from espeakng-loader cannot be loaded; "
            "pip install espeakng-loader, or use engine='numpy' / 'auto'"
        )
    log.warning(
        "eSpeak NG (espeakng-loader) cannot be loaded: the demo corpus falls back to the numpy "
        "source-filter vowel synthesiser, which sounds much less like speech"
    )
    return "numpy"


def _parameters(seed: int, engine: str, sizes: dict[str, int]) -> dict[str, Any]:
    return {
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "engine": engine,
        "sample_rate": SAMPLE_RATE,
        "sizes": sizes,
    }


def _replace(source: Path, target: Path) -> None:
    """Move ``source`` into place at ``target``, removing an older ``target`` only after the swap."""
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    if target.exists():
        os.replace(target, old)
    os.replace(source, target)
    shutil.rmtree(old, ignore_errors=True)


def _run_parts(folder: Path, seed: int, engine: str, sizes: dict[str, int]) -> None:
    """Generate all parts into ``folder``/<part>; with eSpeak in two fresh Python worker processes (fixed split).

    The workers are ``python -c`` processes that import serlib and drive libespeak-ng through ctypes (not the
    espeak-ng program); unlike multiprocessing they never re-import the caller's ``__main__``.
    """
    from serlib.progress import bar as progress_bar

    started = time.perf_counter()
    with progress_bar(len(PARTS), "demo corpus", unit="part") as progress:
        if engine == "numpy":
            for part in PARTS:
                _generate_part(part, str(folder / part), seed, engine, sizes)
                progress.update()
        else:
            environment = dict(os.environ)
            package_parent = str(Path(__file__).resolve().parent.parent)
            environment["PYTHONPATH"] = os.pathsep.join(
                filter(None, [package_parent, os.environ.get("PYTHONPATH")])
            )
            workers = []
            for parts in _WORKER_PARTS:
                job = json.dumps(
                    {"parts": parts, "folder": str(folder), "seed": seed, "engine": engine, "sizes": sizes}
                )
                command = [sys.executable, "-c", _WORKER_COMMAND, job]
                workers.append(
                    subprocess.Popen(
                        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=environment
                    )
                )
            failures = []
            for worker, parts in zip(workers, _WORKER_PARTS, strict=True):
                _, errors = worker.communicate()
                if worker.returncode != 0:
                    failures.append(
                        f"parts {', '.join(parts)} (exit {worker.returncode}): {errors.strip()[-1500:]}"
                    )
                progress.update(len(parts))
            if failures:
                raise DemoCorpusError("demo corpus worker failed: " + " | ".join(failures))
    log.info(
        "demo corpus (%s, seed %d) generated in %.1f s under %s",
        engine,
        seed,
        time.perf_counter() - started,
        folder,
    )


_WORKER_COMMAND = "import sys; from serlib.demo_corpus import _worker; _worker(sys.argv[1])"


def _worker(job: str) -> None:
    """Entry point of a worker process: generate the parts that the JSON ``job`` names."""
    arguments = json.loads(job)
    _generate_parts(
        tuple(arguments["parts"]),
        arguments["folder"],
        int(arguments["seed"]),
        arguments["engine"],
        arguments["sizes"],
    )


# Which parts each eSpeak worker process generates, in order (fixed, so that bytes do not depend on cores).
_WORKER_PARTS = (("labeled", "unlabeled_books"), ("cross", "unlabeled"))


def generate(out: str | Path, seed: int = 0, engine: str = "auto", **sizes: int) -> dict[str, Path]:
    """Write the four parts under ``out`` and return {part: manifest path}; same seed and sizes, same bytes.

    ``engine``: ``auto`` (eSpeak NG, else the numpy fallback with a warning), ``espeak`` or ``numpy``.
    ``sizes``: keys of ``DEFAULT_SIZES``. Each part is written to a temporary sibling and renamed into place.
    """
    full = _check(seed, engine, sizes)
    resolved = _resolve_engine(engine)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    staging = out / f".staging-{os.getpid()}-{threading.get_ident()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        _run_parts(staging, int(seed), resolved, full)
        for part in PARTS:
            _replace(staging / part, out / part)
        _write_json(out / "parameters.json", _parameters(seed, resolved, full))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {part: out / part / "manifest.csv" for part in PARTS}


def ensure(root: str | Path, seed: int = 0, engine: str = "auto", **sizes: int) -> dict[str, Path]:
    """The demo corpus under ``root``, (re)generated only when seed, engine, sizes or generator version change.

    A new corpus is generated into a temporary sibling folder and renamed into place, so ``root`` is never
    half-written; ``root/parameters.json`` records what it was generated with.
    """
    full = _check(seed, engine, sizes)
    resolved = _resolve_engine(engine)
    root = Path(root)
    wanted = _parameters(seed, resolved, full)
    paths = {part: root / part / "manifest.csv" for part in PARTS}
    with _folder_lock(root):
        if _read_json(root / "parameters.json") == wanted and all(p.is_file() for p in paths.values()):
            return paths
        if root.exists() and any(root.iterdir()) and not (root / "parameters.json").is_file():
            raise DemoCorpusError(
                f"{root} exists and is not a serlib demo corpus (no parameters.json); "
                "point the demo corpus root to an empty or new folder"
            )
        log.info("generating the demo corpus under %s (parameters changed or corpus missing)", root)
        staging = root.with_name(f".{root.name}.tmp-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        try:
            generate(staging, seed=seed, engine=resolved, **full)
            _replace(staging, root)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return paths


@contextlib.contextmanager
def _folder_lock(root: Path) -> Iterator[None]:
    """An inter-process lock beside ``root`` so that two pipelines do not generate the same corpus at once."""
    root.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: no lock, the atomic rename still protects readers
        yield
        return
    with open(root.with_name(f".{root.name}.lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_json(path: Path, value: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@corpora.register("demo")
def load_demo(root: str | Path, part: str = "labeled", limit: int | None = None) -> pd.DataFrame:
    """One part of a generated demo corpus as a manifest; ``limit`` keeps N utterances balanced over speakers.

    The kept utterances are the first of a round robin over speakers (each speaker's in id order), so a
    smaller limit always gives a subset of a larger one.
    """
    if part not in PARTS:
        raise corpora.CorpusError(f"demo corpus part {part!r} is unknown; choose one of {', '.join(PARTS)}")
    manifest = corpora.read_manifest(Path(root) / part / "manifest.csv")
    manifest = manifest.sort_values("utterance_id", kind="stable").reset_index(drop=True)
    if limit is None:
        return manifest
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1:
        raise corpora.CorpusError(f"demo corpus option limit must be a positive integer, got {limit!r}")
    rank = manifest.groupby("speaker", sort=True).cumcount()
    order = pd.DataFrame({"rank": rank, "speaker": manifest["speaker"], "id": manifest["utterance_id"]})
    keep = order.sort_values(["rank", "speaker", "id"]).index[: int(limit)]
    return manifest.loc[sorted(keep)].reset_index(drop=True)
