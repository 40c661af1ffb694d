"""Tiny stored run folders, as ``serlib evaluate`` leaves them, for the statistics tests (no training).

``write_grid`` writes ``results/protocol.json`` and, per (setting, condition, seed, fold),
``predictions.csv`` and ``metrics.json`` with invented predictions: each speaker's files are right with
a chosen probability, so the speaker-level differences are known in advance. Folds may hold several
speakers (as Emo-DB's sessions and ASED's speaker groups do).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from serlib.base import metrics

CLASSES = ("angry", "happy", "neutral", "sad")


def write_grid(
    root: Path,
    name: str,
    folds: dict[int, list[str]],
    accuracy: dict[str, dict[str, float]],
    seeds: tuple[int, ...] = (0, 1),
    files_per_class: int = 8,
    lacking: dict[str, str] | None = None,
    conditions: tuple[tuple[str, str], ...] = (("BL", "none"), ("U", "other"), ("C", "target")),
    setting: str = "within",
    rng_seed: int = 0,
    subset_accuracy: dict[str, dict[str, float]] | None = None,
    without_common: tuple[str, ...] = (),
) -> pd.DataFrame:
    """A run folder under ``root``; returns its speaker table (``utterance_id``, ``speaker``).

    ``accuracy[condition][speaker]``: the probability a file is predicted right; ``lacking[speaker]``:
    a class that speaker never speaks. With ``subset_accuracy[subset][condition]`` the corpus has
    ASED's scoring subsets: each speaker's first half of files per class are ``common`` (none for the
    speakers in ``without_common``), the rest ``specific``; the predictions get the ``speaker`` and
    ``subset`` columns, and a subset's accuracy overrides the speaker's."""
    rng = np.random.default_rng(rng_seed)
    lacking = lacking or {}
    speakers = []
    for fold, members in folds.items():
        for speaker in members:
            for emotion in CLASSES:
                if lacking.get(speaker) == emotion:
                    continue
                for i in range(files_per_class):
                    common = i < files_per_class // 2 and speaker not in without_common
                    speakers.append(
                        {
                            "utterance_id": f"{name}_{speaker}_{emotion}_{i}",
                            "speaker": speaker,
                            "fold": fold,
                            "true": emotion,
                            "subset": "common" if common else "specific",
                        }
                    )
    table = pd.DataFrame(speakers)
    protocol = {
        "name": name,
        "conditions": [{"name": c, "autoencoder_corpus": s} for c, s in conditions],
        "baseline": "BL",
        "seeds": list(seeds),
        "settings": {setting: {"train_corpus": name, "test_corpus": name, "folds": sorted(folds)}},
        "fingerprints": {},
    }
    (root / "results").mkdir(parents=True, exist_ok=True)
    (root / "results" / "protocol.json").write_text(json.dumps(protocol), encoding="utf-8")
    for condition, _ in conditions:
        for seed in seeds:
            for fold in folds:
                rows = table[table["fold"] == fold]
                chance = rows["speaker"].map(accuracy[condition]).to_numpy()
                for subset, by_condition in (subset_accuracy or {}).items():
                    chance = np.where(rows["subset"] == subset, by_condition[condition], chance)
                right = rng.random(len(rows)) < chance
                wrong = [CLASSES[(CLASSES.index(t) + 1) % 4] for t in rows["true"]]
                predicted = np.where(right, rows["true"], wrong)
                folder = root / "results" / setting / condition / f"seed{seed}" / f"fold{fold}"
                folder.mkdir(parents=True, exist_ok=True)
                written = pd.DataFrame(
                    {
                        "utterance_id": rows["utterance_id"],
                        "fold": fold,
                        "seed": seed,
                        "condition": condition,
                        "true": rows["true"],
                        "predicted": predicted,
                    }
                )
                if subset_accuracy:
                    written = written.assign(speaker=rows["speaker"], subset=rows["subset"])
                written.to_csv(folder / "predictions.csv", index=False)
                result = {
                    "setting": setting,
                    "condition": condition,
                    "seed": seed,
                    "fold": fold,
                    "uar": metrics.uar(rows["true"].to_numpy(), predicted),
                }
                (folder / "metrics.json").write_text(json.dumps(result), encoding="utf-8")
    return table[["utterance_id", "speaker"]]


def write_matrix_cells(
    root: Path, u_gain: dict[str, float], conditions: tuple[str, ...] = ("BL", "U", "C")
) -> pd.DataFrame:
    """A cross-corpus matrix of one cell, x -> y, per normalisation in ``u_gain`` (``root/<mode>/x-to-y``):
    BL and C right half the time, U with that normalisation's gain; returns the speaker table."""
    sources = {"BL": "none", "U": "other", "C": "target"}
    speakers = []
    for mode, gain in u_gain.items():
        accuracy = {c: dict.fromkeys("ab", gain if c == "U" else 0.5) for c in conditions}
        speakers.append(
            write_grid(
                root / mode / "x-to-y",
                "xy",
                {1: ["a", "b"]},
                accuracy,
                conditions=tuple((c, sources[c]) for c in conditions),
                setting="cross",
            )
        )
    return pd.concat(speakers)
