"""Corpora with realistic utterance lengths: IEMOCAP's (mean about 4.5 s, a tail past the ACNN's 7.5 s
cut) and LibriSpeech's (about 12.7 s, nearly all past the AE's fixed 7.5 s), for tests and benchmarks.

The demo corpus keeps its utterances between 1 and 4 s so that it runs in minutes; at those lengths
every ACNN input is mostly padding and nothing is ever cut. These corpora exercise the cut, the
padding, the fast kernels' skipping of padded steps and the calibration's length profile at the
lengths the paper's corpora have. The audio is a cheap speech-like signal (a voiced source with
gliding pitch, formant-like harmonics and syllable-rate envelopes, over a quiet noise floor, so no
file is digitally silent); only its length and non-silence matter. Lengths are the quantiles of the
profile's distribution at (i + 0.5) / n, shuffled by the seed: even 20 files have the profile's mean
and its tail.

Profiles (``PROFILES``): ``iemocap`` is lognormal with mean 4.5 s and sigma 0.6 (about 12 % of the
turns over 7.5 s), within 0.6-30 s; ``librispeech`` mixes 85 % normal(13.8 s, 1.5 s) with 15 %
uniform(1.5 s, 12 s) (mean about 12.7 s; train-clean-100 is mostly 12-16 s), within 1.4-24.5 s.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile

from serlib.data.manifest import EMOTIONS, make_manifest, write_manifest

SAMPLE_RATE = 16_000
_DRAWS = 200_000  # samples of the profile whose quantiles give the lengths


@dataclass(frozen=True)
class LengthProfile:
    """How long a corpus's utterances are: a sampler and the range they are clipped to."""

    name: str
    min_s: float
    max_s: float

    def draw(self, rng: np.random.Generator, count: int) -> np.ndarray:
        if self.name == "iemocap":
            sigma = 0.6
            return rng.lognormal(np.log(4.5) - sigma**2 / 2, sigma, count)
        mixed = rng.random(count) < 0.85
        return np.where(mixed, rng.normal(13.8, 1.5, count), rng.uniform(1.5, 12.0, count))

    def durations(self, count: int, seed: int = 0) -> np.ndarray:
        """``count`` lengths in seconds: the profile's quantiles at (i + 0.5) / count, shuffled."""
        sample = np.sort(
            np.clip(self.draw(np.random.default_rng([seed, 46]), _DRAWS), self.min_s, self.max_s)
        )
        quantiles = np.quantile(sample, (np.arange(count) + 0.5) / count)
        return np.random.default_rng([seed, 47]).permutation(np.round(quantiles, 3))


PROFILES = {
    "iemocap": LengthProfile("iemocap", 0.6, 30.0),
    "librispeech": LengthProfile("librispeech", 1.4, 24.5),
}


def speech_like(seconds: float, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A float32 signal of ``seconds``: harmonics of a gliding pitch under syllable-rate envelopes with
    short pauses, over noise at about -60 dBFS (never digitally silent)."""
    n = max(1, int(round(seconds * sample_rate)))
    t = np.arange(n) / sample_rate
    f0 = rng.uniform(100, 220) * (
        1 + 0.15 * np.sin(2 * np.pi * rng.uniform(0.2, 0.6) * t + rng.uniform(0, 6))
    )
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    formant = rng.uniform(500, 900)
    voiced = sum(np.sin(k * phase) / k * np.exp(-(((k * f0) - formant) ** 2) / 2e5) for k in range(1, 16))
    syllables = np.clip(np.sin(2 * np.pi * rng.uniform(3, 5) * t), 0, None) ** 0.7
    pauses = np.sin(2 * np.pi * rng.uniform(0.15, 0.3) * t + rng.uniform(0, 6)) > -0.8
    signal = 0.3 * voiced * syllables * pauses + 0.001 * rng.standard_normal(n)
    return signal.astype(np.float32)


def write_corpus(
    folder: str | Path, profile: str, count: int, seed: int = 0, labeled: bool | None = None
) -> Path:
    """Write ``count`` wav files with ``profile``'s lengths and a manifest CSV; returns the CSV's path.

    Labeled (default for ``iemocap``): the four emotions in turn, arousal/valence ratings, 5 sessions of
    a female and a male speaker, as IEMOCAP; unlabeled (``librispeech``): one speaker per 5 files.
    """
    chosen = PROFILES[profile]
    labeled = profile == "iemocap" if labeled is None else labeled
    folder = Path(folder)
    (folder / "wav").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 48])
    rows = []
    for index, seconds in enumerate(chosen.durations(count, seed)):
        utterance = f"{profile}_{index:04d}"
        path = folder / "wav" / f"{utterance}.wav"
        soundfile.write(path, speech_like(float(seconds), rng), SAMPLE_RATE, subtype="PCM_16")
        session = str(index % 5 + 1)
        speaker = f"{session}{'FM'[index // 5 % 2]}" if labeled else f"reader{index // 5}"
        row: dict[str, object] = {"utterance_id": utterance, "corpus": profile, "path": str(path)}
        row["speaker"] = speaker
        row["session"] = session if labeled else speaker
        if labeled:
            row.update(emotion=EMOTIONS[index % 4], arousal=1.0 + index % 5, valence=5.0 - index % 5)
        rows.append(row)
    return write_manifest(make_manifest(pd.DataFrame(rows)), folder / "manifest.csv", relative_to=folder)
