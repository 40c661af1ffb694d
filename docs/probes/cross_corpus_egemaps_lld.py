"""Diagnostic for docs/results-real-speech.md: the ACNN on eGeMAPS' frame-level descriptors.

The eGeMAPS + SVM transfers between Emo-DB and RAVDESS once each corpus or speaker is standardised
(43-52 % UAR); the log-Mel ACNN does not (22-32 %). This probe asks whether the ACNN transfers when it
reads the 25 frame-level descriptors (LLDs) those functionals summarise: pitch, jitter, shimmer,
loudness, formants, spectral slopes, MFCC 1-4; openSMILE eGeMAPSv02, 10 ms hop. Everything else is
the matrix cell's setting (BL, 20 epochs, dropout keep 0.7, 4.0 s, ``acnn.normalisation: standardise``
with the training corpus' statistics); the conv kernel spans all 25 descriptors instead of 26 bands.
Per mode, the descriptors are first standardised per corpus or per speaker (labels unused), as
``features.normalisation`` does to log-Mel. The test corpus is scored once, after the last epoch.
One JSON line per (mode, pair, seed).

    SERLIB_DATA=... SERLIB_TF_THREADS=1 python docs/probes/cross_corpus_egemaps_lld.py train corpus speaker
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from serlib.base import config as config_module
from serlib.base import metrics
from serlib.data import audio, loaders
from serlib.features import normalisation
from serlib.features import smile as opensmile_binding  # noqa: F401 - binds openSMILE's library first
from serlib.features.logmel import fix_length
from serlib.protocol import labeled, runs

PAIRS = (("emodb", "ravdess"), ("ravdess", "emodb"))
SEEDS = (0, 1, 2)
CACHE = Path("runs/cross-corpus-lld")  # the descriptors, computed once


def _lld_extractor():
    """openSMILE's eGeMAPSv02 frame-level descriptors (imported after ``serlib.features.smile`` bound
    openSMILE's own library, as ``serlib.features.egemaps`` does)."""
    import opensmile  # noqa: PLC0415

    return opensmile.Smile(
        feature_set=opensmile.FeatureSet.eGeMAPSv02,
        feature_level=opensmile.FeatureLevel.LowLevelDescriptors,
        loglevel=0,
    )


def descriptors(config: config_module.Config, key: str, data: labeled.LabeledData, frames: int) -> tuple:
    """[N, frames, 25] zero-padded eGeMAPS LLDs in ``data``'s order, and the true frame counts."""
    path = CACHE / f"{key}-lld-{frames}.npz"
    if path.is_file():
        stored = np.load(path, allow_pickle=False)
        if list(stored["ids"]) == list(data.ids):
            return stored["values"], stored["lengths"]
    manifest = loaders.load_configured(config, key).set_index("utterance_id")
    extractor = _lld_extractor()
    values, lengths = [], []
    for index, utterance in enumerate(data.ids):
        row = manifest.loc[utterance]
        signal, rate = audio.load(row["path"], sample_rate=config.audio.sample_rate)
        lld = np.asarray(extractor.process_signal(signal, rate), dtype=np.float32)  # [T, 25]
        padded, length = fix_length(lld, frames)
        values.append(padded)
        lengths.append(length)
        if index % 100 == 0:
            print(f"{key}: {index}/{len(data.ids)} files", file=sys.stderr, flush=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    result = np.stack(values), np.asarray(lengths)
    np.savez(path, ids=np.asarray(data.ids, dtype=str), values=result[0], lengths=result[1])
    return result


def main(modes: list[str]) -> None:
    base = config_module.load("configs/cross-corpus.yaml")
    frames = base.features.logmel.max_frames
    data = {key: labeled.load_labeled(base, key) for key in ("emodb", "ravdess")}
    lld = {key: descriptors(base, key, value, frames) for key, value in data.items()}
    bands = lld["emodb"][0].shape[2]
    print(f"eGeMAPS LLDs: {bands} per frame", file=sys.stderr)
    config = config_module.override(base, **{"features.logmel.bands": bands})
    for mode in modes:
        features = {}
        for key, (values, lengths) in lld.items():
            if mode != "train":
                groups = normalisation.groups_for(mode, data[key].speaker, key)
                values = normalisation.standardise_frames(values, lengths, groups)
            features[key] = replace(data[key], logmel=values, lengths=lengths)
        for train_key, test_key in PAIRS:
            for seed in SEEDS:
                trained = runs.fit_predict(
                    config,
                    features[train_key],
                    features[test_key],
                    seed,
                    setting="cross",
                )
                predicted = trained.probabilities["emotion"].argmax(axis=1)
                truth = features[test_key].emotion
                row = {
                    "mode": mode,
                    "pair": f"{train_key}->{test_key}",
                    "seed": seed,
                    "uar": round(100 * metrics.uar(truth, predicted), 2),
                    "predicted_counts": np.bincount(predicted, minlength=4).tolist(),
                }
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or ["train", "corpus", "speaker"])
