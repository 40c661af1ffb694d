"""A seconds-scale end-to-end configuration shared by the reliability tests (issue 10).

Cross-corpus only (demo ``labeled`` -> demo ``cross``), the baseline and one autoencoder condition,
one seed, 1-2 epochs: enough to produce every kind of file the pipeline writes (feature stores, AE
checkpoints and model, representation stores, run results, ``model.keras`` + ``model.json``).
``finished_run`` runs it once per test process and folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from serlib import config as config_module

DEMO_SIZES = {
    "labeled_sessions": 2,
    "utterances_per_speaker_emotion": 2,
    "cross_sessions": 1,
    "cross_utterances_per_speaker_emotion": 2,
    "unlabeled_talks": 2,
    "unlabeled_utterances": 10,
    "books_readers": 1,
    "books_utterances": 2,
}


def tiny_config(out: Path, **changes: Any) -> config_module.Config:
    """The tiny configuration writing under ``out`` (dotted-key ``changes`` applied on top)."""
    root = str(out / "data")
    config = config_module.from_dict(
        {
            "name": "tiny",
            "output_dir": str(out),
            "figures_dir": str(out / "figures_dir"),
            "seed": 0,
            "corpora": {
                "emo": {"type": "demo", "root": root, "options": {"part": "labeled"}},
                "cross": {"type": "demo", "root": root, "options": {"part": "cross"}},
                "talks": {"type": "demo", "root": root, "options": {"part": "unlabeled"}},
            },
            "demo_corpus": {"seed": 0, **DEMO_SIZES},
            "features": {
                "n_jobs": 1,
                "logmel": {"max_frames": 300},
                "spectrogram": {"fixed_length_s": 1.0, "mel_bands": 32},
            },
            "autoencoder": {"layers": 1, "units": 8, "epochs": 2, "batch_size": 8},
            "acnn": {"filters": 8, "pool_size": 10, "epochs": 2, "batch_size": 8},
            "protocol": {
                "within_corpus": None,
                "cross_corpus_train": "emo",
                "cross_corpus_test": "cross",
                "seeds": [0],
                "conditions": [
                    {"name": "BL", "autoencoder_corpus": "none"},
                    {"name": "sT", "autoencoder_corpus": "talks"},
                ],
            },
        },
        "tiny pipeline",
    )
    return config_module.override(config, **changes) if changes else config


_FINISHED: dict[str, config_module.Config] = {}


def finished_run(out: Path) -> config_module.Config:
    """The tiny protocol run to completion under ``out`` (once per process and folder)."""
    key = str(out)
    if key not in _FINISHED:
        from serlib import experiments

        config = tiny_config(out)
        experiments.run_protocol(config, progress=False)
        _FINISHED[key] = config
    return _FINISHED[key]
