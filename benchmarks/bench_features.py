"""Real-time factor (seconds of audio per wall-clock second) of serlib's feature extractors.

Run ``python -m benchmarks.bench_features [--quick]``. Speech comes from ``$SERLIB_DATA/ravdess`` (480
files, 30 min, 16 kHz) or, when that is absent, from the demo corpus (generated under /tmp). Rows:

* ``compute``: the extractor on signals already in memory, one process (log-Mel: serlib's numpy
  engine, openSMILE with serlib's batching, and one openSMILE run per utterance; auDeep
  spectrogram); the numpy engine's row also gives its largest difference from openSMILE's values
  on the same files;
* ``store``: the whole store path (decode, resample, extract, write HDF5) with 1 process and all
  cores, into a fresh cache folder (log-Mel with either engine);
* ``librosa``: the same quantity computed with librosa, one process, for comparison.

The paper's preset is used (750 frames, 7.5 s fixed length); RAVDESS turns are all shorter than
7.5 s, so no audio is skipped by the cut and the store rows count every second of audio.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks import common
from serlib.base import config as config_module
from serlib.data import audio, loaders
from serlib.data import manifest as manifests
from serlib.features import egemaps, extraction, logmel, spectrogram, store

QUICK_FILES = 60
SMOKE_FILES = 8


def _speech(quick: bool, limit: int = QUICK_FILES) -> tuple[pd.DataFrame, str]:
    """A manifest of real speech (RAVDESS) or of the demo corpus when SERLIB_DATA is not set."""
    root = os.environ.get("SERLIB_DATA")
    if root and (Path(root) / "ravdess").is_dir():
        paths = sorted((Path(root) / "ravdess").rglob("*.wav"))
        source = "RAVDESS (SERLIB_DATA)"
        rows = [{"utterance_id": p.stem, "corpus": "ravdess", "path": str(p)} for p in paths]
        manifest = manifests.make_manifest(rows)
    else:
        from serlib.data.demo import generator

        folder = Path(tempfile.gettempdir()) / "serlib-bench-demo"
        generator.ensure(folder)
        manifest = loaders.load("demo", folder, part="labeled")
        source = "demo corpus (synthetic)"
    if quick:
        manifest = manifest.iloc[:limit].reset_index(drop=True)
    return manifest, source


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (worker processes)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _timed(function: Any, repeats: int) -> tuple[float, float]:
    """Best wall time and the CPU time of that repeat (CPU time is robust to other load on the host)."""
    best = (float("inf"), float("inf"))
    for _ in range(repeats):
        start, cpu = time.perf_counter(), _cpu_seconds()
        function()
        best = min(best, (time.perf_counter() - start, _cpu_seconds() - cpu))
    return best


def _librosa_logmel(signals: list[np.ndarray]) -> None:
    import librosa

    for signal in signals:
        emphasised = librosa.effects.preemphasis(signal, coef=0.97)
        power = librosa.feature.melspectrogram(
            y=emphasised, sr=16000, n_fft=512, win_length=400, hop_length=160, window="hamming",
            center=False, power=2.0, n_mels=26, fmin=0.0, fmax=6500.0, htk=True, norm=None,
        )  # fmt: skip
        np.log(np.maximum(power, 1e-10))


def _librosa_spectrogram(signals: list[np.ndarray]) -> None:
    import librosa

    for signal in signals:
        fixed = librosa.util.fix_length(signal.astype(np.float64), size=int(7.5 * 16000))
        emphasised = librosa.effects.preemphasis(fixed, coef=0.95)
        power = librosa.feature.melspectrogram(
            y=emphasised, sr=16000, n_fft=1280, hop_length=640, window="hann", center=False,
            power=2.0, n_mels=128, htk=True, norm=None,
        )  # fmt: skip
        db = np.maximum(librosa.power_to_db(power, ref=np.max, top_db=None), -60.0)
        (2 * (db - db.min()) / max(db.max() - db.min(), 1e-4) - 1).T.astype(np.float32)


def _store_rate(
    manifest: pd.DataFrame, extractor: str, jobs: int, engine: str = "numpy"
) -> tuple[tuple[float, float], int]:
    with tempfile.TemporaryDirectory(prefix="serlib-bench-") as folder:
        settings = {"features.n_jobs": jobs, "features.logmel.engine": engine}
        config = config_module.override(config_module.load_preset("paper"), output_dir=folder, **settings)
        workers = extraction.worker_processes(config.features.n_jobs)
        start, cpu = time.perf_counter(), _cpu_seconds()
        store.extract_manifest(manifest, extractor, config, progress=False, corpus_key="bench")
        return (time.perf_counter() - start, _cpu_seconds() - cpu), workers


def run(quick: bool = False, smoke: bool = False) -> list[dict[str, Any]]:
    """Measure every row of the table; returns one dict per row (used by ``python -m benchmarks``).

    ``smoke``: quick mode on only the first ``SMOKE_FILES`` files (checks that it runs, not its speed).
    """
    quick = quick or smoke
    manifest, source = _speech(quick, SMOKE_FILES if smoke else QUICK_FILES)
    signals = [audio.load(path)[0] for path in manifest["path"]]
    seconds = sum(len(s) for s in signals) / 16000
    repeats = 1 if quick else 2
    rows: list[dict[str, Any]] = []

    def add(
        extractor: str, implementation: str, processes: int, timing: tuple[float, float], note: str = ""
    ) -> None:
        wall, cpu = timing
        rows.append(
            {
                "benchmark": "features",
                "extractor": extractor,
                "implementation": implementation,
                "processes": processes,
                "files": len(signals),
                "audio_s": round(seconds, 1),
                "wall_s": round(wall, 3),
                "realtime_factor": round(seconds / wall, 1),
                "cpu_s": round(cpu, 3),
                "realtime_factor_per_cpu_s": round(seconds / cpu, 1),
                "source": source,
                "note": note,
            }
        )

    # Outside the timing: build the openSMILE object, import librosa and compile its numba kernels.
    logmel.logmel(signals[0], 16000, engine="opensmile")
    _librosa_logmel(signals[:1])
    _librosa_spectrogram(signals[:1])
    fast = logmel.logmel_many(signals, 16000, engine="numpy")
    reference = logmel.logmel_many(signals, 16000, engine="opensmile")
    difference = np.concatenate([(a - b).ravel() for a, b in zip(fast, reference, strict=True)])
    add(
        "logmel",
        "serlib numpy engine (compute)",
        1,
        _timed(lambda: logmel.logmel_many(signals, 16000, engine="numpy"), repeats),
        f"vs openSMILE: max |diff| {np.abs(difference).max():.1e}, mean |diff| "
        f"{np.abs(difference).mean():.1e} ln units",
    )
    add(
        "logmel",
        "openSMILE, batched (compute)",
        1,
        _timed(lambda: logmel.logmel_many(signals, 16000, engine="opensmile"), repeats),
    )
    add(
        "logmel",
        "openSMILE, one run per utterance (compute)",
        1,
        _timed(lambda: [logmel.logmel(s, 16000, engine="opensmile") for s in signals], repeats),
    )
    add("logmel", "librosa (compute)", 1, _timed(lambda: _librosa_logmel(signals), repeats))
    for engine, jobs_list in (("numpy", (1, 0)), ("opensmile", (0,))):
        for jobs in jobs_list:
            timing, workers = _store_rate(manifest, "logmel", jobs, engine)
            add("logmel", f"serlib store, {engine} engine (decode+extract+HDF5)", workers, timing)

    def spectrograms() -> None:
        for signal in signals:
            spectrogram.audeep_spectrogram(signal, 16000, fixed_length_s=7.5)

    add("spectrogram", "serlib auDeep (compute)", 1, _timed(spectrograms, repeats))
    add("spectrogram", "librosa (compute)", 1, _timed(lambda: _librosa_spectrogram(signals), repeats))
    for jobs in (1, 0):
        timing, workers = _store_rate(manifest, "spectrogram", jobs)
        add("spectrogram", "serlib store (decode+extract+HDF5)", workers, timing)
    if not quick:
        add(
            "egemaps",
            "openSMILE eGeMAPSv02 (compute)",
            1,
            _timed(lambda: [egemaps.egemaps(s, 16000) for s in signals], 1),
        )

    for row in rows:
        reference = next(
            (
                r
                for r in rows
                if r["extractor"] == row["extractor"] and r["implementation"].startswith("librosa")
            ),
            None,
        )
        row["ratio_vs_librosa"] = (
            round(row["realtime_factor"] / reference["realtime_factor"], 2) if reference else None
        )
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    header = [
        "extractor",
        "implementation",
        "processes",
        "audio_s",
        "wall_s",
        "realtime_factor",
        "ratio_vs_librosa",
        "cpu_s",
        "realtime_factor_per_cpu_s",
    ]
    return common.markdown_table(rows, header)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help=f"only the first {QUICK_FILES} files, one repeat"
    )
    parser.add_argument("--smoke", action="store_true", help=f"only {SMOKE_FILES} files: checks that it runs")
    args = parser.parse_args()
    rows = run(quick=args.quick, smoke=args.smoke)
    load = os.getloadavg()[0]
    print(f"speech: {rows[0]['source']}, {rows[0]['files']} files, {rows[0]['audio_s']} s")
    print(f"CPU cores: {os.cpu_count()}; 1-minute load average at the end: {load:.2f}")
    print(format_table(rows))


if __name__ == "__main__":
    main()
