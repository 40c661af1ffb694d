"""What rounding the spectrogram store (``features.spectrogram.store_decimals``) does to the autoencoder.

Run ``python -m benchmarks.bench_store_rounding`` (prints Markdown tables). Speech: with ``SERLIB_DATA``,
the LibriSpeech train-clean-100 excerpts (251 files, the AE corpora's long utterances), else the
LibriSpeech-like length corpus of ``serlib.data.demo.lengths``. The paper preset's spectrograms (186 x
128) are extracted once losslessly and once rounded, each into its own cache, and a small autoencoder
(the paper's layout with ``--units`` units per layer, ``--epochs`` epochs, batch 64) is trained on each
from the same seed, plus once more on the lossless store from another seed for scale. Reported: the
largest change of a stored value, the training losses (reconstruction RMSE) per epoch, and the
representations of the same utterances: rounded vs lossless training (same seed), and the lossless
model encoding rounded vs lossless inputs (the input change alone).
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import common
from serlib.base import config as config_module
from serlib.data import loaders
from serlib.data.demo import lengths
from serlib.features import store
from serlib.models.autoencoder import encoding, model, training


def _manifest(folder: Path) -> tuple[Any, str]:
    data = os.environ.get("SERLIB_DATA")
    if data and (Path(data) / "librispeech").is_dir():
        root = Path(data) / "librispeech" / "LibriSpeech"
        return loaders.load("librispeech", root, subsets=["train-clean-100"]), "LibriSpeech excerpts"
    corpus = lengths.write_corpus(folder / "librispeech", "librispeech", 60)
    return loaders.load("manifest", corpus), "LibriSpeech-like length corpus"


def _losses(model_dir: Path) -> list[float]:
    with (model_dir / training.HISTORY_CSV).open(encoding="utf-8") as handle:
        return [float(row["loss"]) for row in csv.DictReader(handle)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=4)
    arguments = parser.parse_args()
    before = common.load_averages()
    paper = config_module.load_preset("paper")
    decimals = paper.features.spectrogram.store_decimals
    ae = paper.autoencoder.model_copy(update={"units": arguments.units, "batch_size": 64})
    with tempfile.TemporaryDirectory(prefix="bench-rounding-") as name:
        folder = Path(name)
        manifest, corpus = _manifest(folder)
        stores = {}
        for label, value in (("lossless", None), ("rounded", decimals)):
            config = config_module.override(
                paper, **{"features.n_jobs": 1, "features.spectrogram.store_decimals": value}
            )
            parameters = store.extractor_parameters("spectrogram", 16000, config.features)
            stores[label] = store.extract(
                manifest, "spectrogram", parameters, folder / label, n_jobs=1, progress=False
            )
        lossless, rounded = stores["lossless"].features, stores["rounded"].features
        trained = {}
        for label, source, seed in (
            ("lossless", "lossless", 0),
            ("rounded", "rounded", 0),
            ("seed 1", "lossless", 1),
        ):
            path = training.train(
                ae,
                stores[source].path,
                folder / f"ae-{label}",
                epochs=arguments.epochs,
                seed=seed,
                progress=False,
            )
            trained[label] = (model.load_model(path, compile=False), _losses(path.parent))
        codes = {label: encoding.encode(m, lossless, ae.batch_size) for label, (m, _) in trained.items()}
        input_only = encoding.encode(trained["lossless"][0], rounded, ae.batch_size)
    spread = float(codes["lossless"].std())
    print(
        f"{corpus}: {len(lossless)} spectrograms {lossless.shape[1:]}; store_decimals {decimals}; AE units "
        f"{arguments.units}, {arguments.epochs} epochs, batch 64\n"
    )
    print(
        f"largest change of a stored value: {np.abs(rounded - lossless).max():.3g}; values changed: "
        f"{(rounded != lossless).mean():.1%}\n"
    )
    rows = [
        {"AE": label, **{f"loss epoch {i + 1}": f"{loss:.6f}" for i, loss in enumerate(losses)}}
        for label, (_, losses) in trained.items()
    ]
    print(common.markdown_table(rows, list(rows[0])))
    print()
    compared = [
        ("rounded vs lossless training (seed 0), lossless inputs", codes["rounded"] - codes["lossless"]),
        ("lossless model: rounded vs lossless inputs", input_only - codes["lossless"]),
    ]
    table = [
        {
            "representations compared": label,
            "max abs difference": f"{np.abs(delta).max():.3g}",
            "mean abs difference": f"{np.abs(delta).mean():.3g}",
            "relative to the representations' sd": f"{np.abs(delta).mean() / spread:.2g}",
        }
        for label, delta in compared
    ]
    print(common.markdown_table(table, list(table[0])))
    print(f"\nrepresentations' sd (lossless, seed 0): {spread:.3g}")
    print(f"CPU: {common.cpu_model()}; load before / after: {before} / {common.load_averages()}")


if __name__ == "__main__":
    main()
