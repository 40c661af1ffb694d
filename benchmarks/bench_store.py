"""Feature-store size per hour of audio and read speed: the uncompressed layout (store version 1)
against the compressed one (version 2, ``serlib.features.store.COMPRESSION``) and the paper preset's
spectrograms rounded to ``features.spectrogram.store_decimals`` (written by ``store.create_features``),
and the paper-scale estimate of every store the paper preset writes.

Run ``python -m benchmarks.bench_store`` (prints a Markdown table and the estimate). Speech: with
``SERLIB_DATA``, the LibriSpeech train-clean-100 excerpts (251 files, 52 min, 1.7-22.8 s: the long
utterances of the AE corpora) and RAVDESS (3-5 s: the short turns of the emotional corpora); without
it, the length corpora of ``serlib.data.demo.lengths``. The lossless layouts hold the same values
(asserted); the rounded one differs by at most 10^-decimals (asserted, the largest difference printed).
Read rates: ``whole`` = the ACNN's read of a whole store (``FeatureSet.features``), MB of float32 per
CPU-second; ``rows`` = the autoencoder's random row reads (``read_direct`` per row, permuted order, as
``serlib.models.autoencoder.training``), rows per CPU-second.

The paper-scale estimate multiplies the compressed bytes per utterance measured here (short turns for
IEMOCAP and MSP-IMPROV, long utterances for TED-LIUM and LibriSpeech) by the paper's utterance counts
(the loaders' constants); the uncompressed size is exact (N x frames x dims x 4 bytes).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import soundfile

from benchmarks import common
from serlib.base import config as config_module
from serlib.data import loaders
from serlib.data.corpora import iemocap, librispeech, msp_improv, tedlium
from serlib.data.demo import lengths
from serlib.features import store

DECIMALS = int(config_module.load_preset("paper").features.spectrogram.store_decimals or 0)
LAYOUTS: dict[str, tuple[dict[str, Any] | None, str, int | None]] = {
    "v1: none, 1 MB chunks": ({}, "mb", None),
    "v2: gzip 4 + shuffle, 1 row": (None, "row", None),
    "lzf + shuffle, 1 row": ({"compression": "lzf", "shuffle": True}, "row", None),
    f"v2 + store_decimals {DECIMALS}: scale-offset + gzip 4 + shuffle, 1 row": (None, "row", DECIMALS),
}
"""(h5py options, or None for the store's own ``create_features``; chunking; decimals kept)."""
PAPER_PRESET = {"logmel": "v2: gzip 4 + shuffle, 1 row", "spectrogram": list(LAYOUTS)[-1]}
"""The layout of each store the paper preset writes (log-Mel lossless, spectrograms rounded)."""


def corpora(folder: Path) -> dict[str, Any]:
    """(manifest, kind) per corpus: 'long' as the AE corpora, 'short' as the emotional ones."""
    data = os.environ.get("SERLIB_DATA")
    if data and (Path(data) / "librispeech").is_dir():
        long = loaders.load(
            "librispeech", Path(data) / "librispeech" / "LibriSpeech", subsets=["train-clean-100"]
        )
        short = loaders.load("ravdess", Path(data) / "ravdess")
        return {"librispeech excerpts": (long, "long"), "ravdess": (short, "short")}
    made = {
        name: loaders.load("manifest", lengths.write_corpus(folder / name, name, count))
        for name, count in (("iemocap", 120), ("librispeech", 60))
    }
    return {"iemocap-like": (made["iemocap"], "short"), "librispeech-like": (made["librispeech"], "long")}


def write(path: Path, data: np.ndarray, layout: tuple[dict[str, Any] | None, str, int | None]) -> None:
    options, chunking, decimals = layout
    rows = max(1, min(64, (1 << 20) // (4 * data.shape[1] * data.shape[2]))) if chunking == "mb" else 1
    with h5py.File(path, "w") as handle:
        if options is None:  # the store's layout, as serlib writes it
            store.create_features(handle, data.shape[1:], rows=len(data), decimals=decimals)[...] = data
        else:
            handle.create_dataset("features", data=data, chunks=(rows, *data.shape[1:]), **options)


def read_rates(path: Path, data: np.ndarray, decimals: int | None) -> tuple[float, float, float]:
    start = time.process_time()
    with h5py.File(path, "r") as handle:
        back = handle["features"][...]
    whole = time.process_time() - start
    error = float(np.abs(back - data).max())
    assert error <= (0 if decimals is None else 10.0**-decimals), (path, error)
    order = np.random.default_rng(0).permutation(len(data))
    batch = np.empty((1, *data.shape[1:]), np.float32)
    start = time.process_time()
    with h5py.File(path, "r") as handle:
        features = handle["features"]
        for index in order:
            features.read_direct(batch, np.s_[int(index)], np.s_[0])
    rows = time.process_time() - start
    return data.nbytes / 1e6 / max(whole, 1e-9), len(data) / max(rows, 1e-9), error


def measure(folder: Path) -> list[dict[str, Any]]:
    lossless = {"features.n_jobs": 1, "features.spectrogram.store_decimals": None}  # the layouts round
    config = config_module.override(config_module.load_preset("paper"), **lossless)
    rows = []
    for name, (manifest, kind) in corpora(folder).items():
        hours = sum(soundfile.info(p).duration for p in manifest["path"]) / 3600
        for extractor in ("logmel", "spectrogram"):
            parameters = store.extractor_parameters(extractor, 16000, config.features)
            data = store.extract(
                manifest, extractor, parameters, folder / "cache", n_jobs=1, progress=False
            ).features
            for number, (layout, spec) in enumerate(LAYOUTS.items()):
                path = folder / f"{name}-{extractor}-{number}.h5"
                write(path, data, spec)
                whole, random_rows, error = read_rates(path, data, spec[2])
                size = path.stat().st_size
                rows.append(
                    {
                        "corpus": name,
                        "kind": kind,
                        "extractor": extractor,
                        "layout": layout,
                        "utterances": len(data),
                        "hours": round(hours, 3),
                        "MB": round(size / 1e6, 2),
                        "MB/hour": round(size / 1e6 / hours, 1),
                        "KB/utterance": round(size / 1e3 / len(data), 1),
                        "ratio": round(data.nbytes / size, 2),
                        "whole read MB/CPU-s": round(whole),
                        "row reads/CPU-s": round(random_rows),
                        "max error": error,
                    }
                )
    return rows


def paper_scale(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """GB of every store the paper preset writes, per layout: the paper's counts x KB per utterance."""
    emotional = sum(iemocap.IEMOCAP_PAPER_COUNTS.values()) + sum(msp_improv.MSP_IMPROV_PAPER_COUNTS.values())
    unlabeled = (
        tedlium.TEDLIUM2_PAPER["segments"]
        + tedlium.TEDLIUM2_PAPER["subset_segments"]
        + librispeech.LIBRISPEECH_PAPER["utterances"]
    )
    stores = [
        ("short", "logmel", emotional),
        ("short", "spectrogram", emotional),
        ("long", "spectrogram", unlabeled),
    ]
    choices = {layout: dict.fromkeys(("logmel", "spectrogram"), layout) for layout in LAYOUTS}
    choices["paper preset: log-Mel v2, spectrograms rounded"] = PAPER_PRESET
    estimate = []
    for name, layouts in choices.items():
        total = 0.0
        for kind, extractor, count in stores:
            (row,) = [
                r
                for r in rows
                if (r["kind"], r["extractor"], r["layout"]) == (kind, extractor, layouts[extractor])
            ]
            total += count * row["KB/utterance"] / 1e6
        estimate.append({"layout": name, "paper-scale GB": round(total, 1)})
    return estimate


def main() -> None:
    before = common.load_averages()
    with tempfile.TemporaryDirectory(prefix="bench-store-") as folder:
        rows = measure(Path(folder))
    columns = list(rows[0])
    print(common.markdown_table(rows, columns))
    print()
    print(common.markdown_table(paper_scale(rows), ["layout", "paper-scale GB"]))
    print(f"\nCPU: {common.cpu_model()}; load before / after: {before} / {common.load_averages()}")


if __name__ == "__main__":
    main()
