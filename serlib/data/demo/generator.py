"""Generating the demo corpus: four parts in serlib's on-disk layout, deterministic from a seed.

Four parts mimic the paper's corpora (``<part>/<session>/<speaker>/<id>.wav`` plus
``<part>/manifest.csv``): ``labeled`` (IEMOCAP-like), ``cross`` (MSP-IMPROV-like, other voices,
sentences and prosody mapping), ``unlabeled`` (TED-LIUM-like talks) and ``unlabeled_books``
(LibriSpeech-like reading). The audio is synthetic: numbers measured on it say nothing about real
emotion recognition. ``ensure`` regenerates only when the parameters change; every part is written
to a staging folder and renamed into place.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from serlib.base import logs
from serlib.base.files import exclusive_lock, replace_folder
from serlib.base.progress import bar as progress_bar
from serlib.data.demo.design import (
    MAX_SECONDS,
    STYLES,
    DemoCorpusError,
    Habit,
    Prosody,
    _habit,
    _items,
    _prosody,
)
from serlib.data.demo.speech import SAMPLE_RATE, _finish, _render, _trim, espeak_available
from serlib.data.manifest import CorpusError, make_manifest, read_manifest, write_manifest

log = logging.getLogger(__name__)


GENERATOR_VERSION = 1


PARTS = ("labeled", "cross", "unlabeled", "unlabeled_books")


ENGINES = ("auto", "espeak", "numpy")


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
    manifest = make_manifest(rows).sort_values("utterance_id").reset_index(drop=True)
    write_manifest(manifest, root / "manifest.csv", relative_to=root)
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


def _run_parts(folder: Path, seed: int, engine: str, sizes: dict[str, int]) -> None:
    """Generate all parts into ``folder``/<part>; with eSpeak in two fresh Python worker processes (fixed split).

    The workers are ``python -c`` processes that import serlib and drive libespeak-ng through ctypes (not the
    espeak-ng program); unlike multiprocessing they never re-import the caller's ``__main__``.
    """
    started = time.perf_counter()
    with progress_bar(len(PARTS), "demo corpus", unit="part") as progress:
        if engine == "numpy":
            for part in PARTS:
                _generate_part(part, str(folder / part), seed, engine, sizes)
                progress.update()
        else:
            environment = dict(os.environ)
            package_parent = str(Path(__file__).resolve().parents[3])  # the folder holding serlib/
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
    logs.step(
        log,
        "demo corpus (%s, seed %d): %d parts generated (%.1f s)",
        engine,
        seed,
        len(PARTS),
        time.perf_counter() - started,
    )


_WORKER_COMMAND = "import sys; from serlib.data.demo.generator import _worker; _worker(sys.argv[1])"


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
            replace_folder(staging / part, out / part)
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
    # two pipelines must not generate the same corpus at once
    with exclusive_lock(root.with_name(f".{root.name}.lock")):
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
            replace_folder(staging, root)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return paths


def _write_json(path: Path, value: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def load_demo(root: str | Path, part: str = "labeled", limit: int | None = None) -> pd.DataFrame:
    """One part of a generated demo corpus as a manifest; ``limit`` keeps N utterances balanced over speakers.

    The kept utterances are the first of a round robin over speakers (each speaker's in id order), so a
    smaller limit always gives a subset of a larger one.
    """
    if part not in PARTS:
        raise CorpusError(f"demo corpus part {part!r} is unknown; choose one of {', '.join(PARTS)}")
    manifest = read_manifest(Path(root) / part / "manifest.csv")
    manifest = manifest.sort_values("utterance_id", kind="stable").reset_index(drop=True)
    if limit is None:
        return manifest
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1:
        raise CorpusError(f"demo corpus option limit must be a positive integer, got {limit!r}")
    rank = manifest.groupby("speaker", sort=True).cumcount()
    order = pd.DataFrame({"rank": rank, "speaker": manifest["speaker"], "id": manifest["utterance_id"]})
    keep = order.sort_values(["rank", "speaker", "id"]).index[: int(limit)]
    return manifest.loc[sorted(keep)].reset_index(drop=True)
