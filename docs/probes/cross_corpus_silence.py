"""The silence reading of the Emo-DB <-> RAVDESS shift, tested (docs/results-real-speech.md, "Cross-corpus").

RECONSTRUCTED from the report's description: the one-off script of 2026-12-01 (commit ``0385bb0``) was
not committed. The reading: RAVDESS files carry ~1 s of silence around the sentence, Emo-DB's are mostly
speech, so RAVDESS' per-band statistics are inflated by the silence/speech contrast. The probe
standardises each corpus' log-Mel (``features.normalisation: corpus``, labels unused) with statistics

* ``all``: over all real frames (as the matrix does);
* ``voiced``: over "voiced" frames only, those whose mean log-Mel lies within ``DB`` dB of the
  utterance's loudest frame (log-Mel is ln power: 10 dB = ln 10);
* ``cut``: over all frames after each utterance is cut to its voiced span (first to last voiced frame);

and trains the matrix cell's ACNN (BL, seed 0, ``configs/cross-corpus.yaml``: 20 epochs, dropout keep
0.7 for cross-corpus training) on one corpus and scores the other once, after the last epoch. A linear
check: a logistic regression (scikit-learn, C = 0.1) on each utterance's per-band log-Mel mean and
standard deviation over voiced frames at 20, 30, 40 and 60 dB, corpus-standardised. One JSON line per
row. The report's numbers came from the original script; this reconstruction has not been run on the
real corpora (see "What was not run").

    SERLIB_DATA=... SERLIB_TF_THREADS=1 python docs/probes/cross_corpus_silence.py all voiced cut logistic
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import replace

import numpy as np

PAIRS = (("emodb", "ravdess"), ("ravdess", "emodb"))
DB = 30.0
LOGISTIC_DB = (20.0, 30.0, 40.0, 60.0)
SEED = 0


def voiced_mask(logmel: np.ndarray, lengths: np.ndarray, db: float = DB) -> np.ndarray:
    """[N, T] True for real frames whose mean ln-power log-Mel lies within ``db`` dB of the utterance's
    loudest real frame."""
    frames = np.asarray(logmel, dtype=np.float64).mean(axis=2)
    real = np.arange(frames.shape[1])[None, :] < np.asarray(lengths)[:, None]
    loudest = np.where(real, frames, -np.inf).max(axis=1, keepdims=True)
    return real & (frames >= loudest - db * math.log(10.0) / 10.0)


def standardise_by(logmel: np.ndarray, lengths: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Real frames standardised by the per-band mean and standard deviation over the ``mask`` frames
    of the whole corpus; padded frames stay zero."""
    values = np.asarray(logmel, dtype=np.float32)
    chosen = values[mask]
    mean, std = chosen.mean(axis=0), np.maximum(chosen.std(axis=0), 1e-6)
    real = np.arange(values.shape[1])[None, :] < np.asarray(lengths)[:, None]
    return np.where(real[:, :, None], (values - mean) / std, 0.0).astype(np.float32)


def cut_to_voiced(logmel: np.ndarray, lengths: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each utterance cut to its voiced span (first to last voiced frame), moved to the start and
    zero-padded to the same frame count; the new lengths."""
    result = np.zeros_like(logmel)
    new_lengths = np.zeros(len(logmel), dtype=np.int64)
    for i, row in enumerate(mask):
        voiced = np.flatnonzero(row)
        if voiced.size == 0:
            new_lengths[i] = lengths[i]
            result[i] = logmel[i]
            continue
        span = logmel[i, voiced[0] : voiced[-1] + 1]
        result[i, : len(span)] = span
        new_lengths[i] = len(span)
    return result, new_lengths


def voiced_statistics(
    logmel: np.ndarray, lengths: np.ndarray, dbs: tuple[float, ...] = LOGISTIC_DB
) -> np.ndarray:
    """[N, 2 x bands x len(dbs)]: each utterance's per-band mean and standard deviation over its voiced
    frames at each threshold."""
    parts = []
    for db in dbs:
        mask = voiced_mask(logmel, lengths, db)[:, :, None]
        count = np.maximum(mask.sum(axis=1), 1)
        mean = (logmel * mask).sum(axis=1) / count
        std = np.sqrt(((logmel - mean[:, None, :]) ** 2 * mask).sum(axis=1) / count)
        parts += [mean, std]
    return np.concatenate(parts, axis=1)


def main(modes: list[str]) -> None:
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415 - the probe's heavy imports
    from sklearn.preprocessing import StandardScaler  # noqa: PLC0415

    from serlib.base import config as config_module  # noqa: PLC0415
    from serlib.base import metrics  # noqa: PLC0415
    from serlib.protocol import labeled, runs  # noqa: PLC0415

    config = config_module.load("configs/cross-corpus.yaml")
    data = {key: labeled.load_labeled(config, key) for key in ("emodb", "ravdess")}
    for mode in modes:
        if mode == "logistic":
            vectors = {
                k: StandardScaler().fit_transform(voiced_statistics(d.logmel, d.lengths))
                for k, d in data.items()
            }
            for train_key, test_key in PAIRS:
                model = LogisticRegression(C=0.1, max_iter=5000).fit(
                    vectors[train_key], data[train_key].emotion
                )
                predicted = model.predict(vectors[test_key])
                uar = metrics.uar(data[test_key].emotion, predicted)
                print(
                    json.dumps({"mode": mode, "pair": f"{train_key}->{test_key}", "uar": round(100 * uar, 2)})
                )
            continue
        features = {}
        for key, d in data.items():
            mask = voiced_mask(d.logmel, d.lengths)
            if mode == "all":
                values, lengths = (
                    standardise_by(
                        d.logmel, d.lengths, np.arange(d.logmel.shape[1])[None, :] < d.lengths[:, None]
                    ),
                    d.lengths,
                )
            elif mode == "voiced":
                values, lengths = standardise_by(d.logmel, d.lengths, mask), d.lengths
            elif mode == "cut":
                cut, lengths = cut_to_voiced(d.logmel, d.lengths, mask)
                values = standardise_by(cut, lengths, np.arange(cut.shape[1])[None, :] < lengths[:, None])
            else:
                raise SystemExit(f"unknown mode {mode!r}: all, voiced, cut or logistic")
            print(json.dumps({"corpus": key, "voiced_share": round(float(mask.sum() / d.lengths.sum()), 3)}))
            features[key] = replace(d, logmel=values, lengths=lengths)
        for train_key, test_key in PAIRS:
            trained = runs.fit_predict(
                config,
                features[train_key],
                features[test_key],
                SEED,
                setting="cross",
            )
            predicted = trained.probabilities["emotion"].argmax(axis=1)
            uar = metrics.uar(features[test_key].emotion, predicted)
            print(
                json.dumps(
                    {
                        "mode": mode,
                        "pair": f"{train_key}->{test_key}",
                        "seed": SEED,
                        "uar": round(100 * uar, 2),
                    }
                )
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="the silence reading of the Emo-DB <-> RAVDESS shift")
    parser.add_argument("modes", nargs="*", default=["all", "voiced", "cut", "logistic"])
    main(parser.parse_args().modes)
