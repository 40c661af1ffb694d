"""Notebook 03: every condition's corpora encoded, the vectors' shapes and value ranges, a first look."""

from __future__ import annotations

import logging
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from serlib.analysis.autoencoders import autoencoder_model, largest_autoencoder_condition
from serlib.analysis.tsne import check_vectors
from serlib.data import loaders
from serlib.data.manifest import EMOTIONS
from serlib.models import autoencoder
from serlib.protocol import conditions
from serlib.protocol.conditions import corpora_of, settings_of

log = logging.getLogger(__name__)


def autoencoder_vectors(config: Any, condition: Any = None) -> tuple[list[str], np.ndarray, str]:
    """AE representations of the 4-class utterances of the within corpus: (ids, vectors, description).

    ``condition`` defaults to the one with the most unlabeled data; its AE is trained (or found in the
    cache) and the corpus encoded (or found) exactly as the protocol does it.
    """
    condition = condition or largest_autoencoder_condition(config)
    model, key = autoencoder_model(config, condition)
    target = corpora_of(config, settings_of(config)[0])[1]
    representations = autoencoder.encode_configured(config, model, target)
    manifest = loaders.load_configured(config, target)
    labeled = set(manifest.loc[manifest["emotion"].isin(EMOTIONS), "utterance_id"])
    keep = [i for i, utterance in enumerate(representations.ids) if utterance in labeled]
    ids = [representations.ids[i] for i in keep]
    description = f"the AE representation ({target}, AE of condition {condition.name} trained on {key})"
    return ids, check_vectors(representations.vectors[keep]).astype(np.float32), description


def encode_all(config: Any) -> pd.DataFrame:
    """Train (or find) every condition's AE and encode its training and test corpora, exactly as the
    protocol will (``conditions.prepare_sources``); one row per encoded corpus with the file path."""
    rows = []
    for setting in settings_of(config):
        for condition in config.protocol.conditions:
            sources = conditions.prepare_sources(config, setting, condition)
            if not sources.get("autoencoder_corpus"):
                continue
            for role in ("train", "test"):
                rows.append(
                    {
                        "condition": condition.name,
                        "setting": setting,
                        "AE trained on": sources["autoencoder_corpus"],
                        "role": role,
                        "encoded corpus": sources[f"{role}_corpus"],
                        "path": sources[f"{role}_representations"],
                    }
                )
    return pd.DataFrame(
        rows, columns=["condition", "setting", "AE trained on", "role", "encoded corpus", "path"]
    )


def representation_overview(encoded: pd.DataFrame) -> pd.DataFrame:
    """Shape and value statistics of each distinct representation file listed by ``encode_all``."""
    rows = []
    for entry in encoded.drop_duplicates("path").to_dict("records"):
        vectors = autoencoder.load_representations(entry["path"]).vectors
        rows.append(
            {
                "AE trained on": entry["AE trained on"],
                "encoded corpus": entry["encoded corpus"],
                "utterances": vectors.shape[0],
                "dimensions": vectors.shape[1],
                "min": float(vectors.min()),
                "max": float(vectors.max()),
                "mean |v|": float(np.abs(vectors).mean()),
                "saturated (|v| > 0.99)": float(np.mean(np.abs(vectors) > 0.99)),
                "finite": bool(np.isfinite(vectors).all()),
            }
        )
    return pd.DataFrame(rows)


def plot_vectors(
    vectors: np.ndarray, labels: pd.DataFrame, dimensions: int = 64, title: str = "", standardise: bool = True
) -> Any:
    """Two heat maps of the first ``dimensions`` dimensions, one row per utterance, grouped by emotion:
    the raw values, and (``standardise``) each dimension z-scored across utterances, which shows the
    small per-utterance differences that the raw values' large per-dimension offsets hide."""
    order = np.argsort([EMOTIONS.index(e) if e in EMOTIONS else 99 for e in labels["emotion"]], kind="stable")
    raw = np.asarray(vectors, dtype=np.float64)
    panels = [("Raw values (tanh output)", raw, -1.0, 1.0, "value")]
    if standardise:
        z = (raw - raw.mean(axis=0)) / np.maximum(raw.std(axis=0), 1e-12)
        panels.append(("Each dimension standardised across utterances", z, -2.5, 2.5, "z-score"))
    fig, axes = plt.subplots(
        1, len(panels), figsize=(7.5 * len(panels), 5), squeeze=False, layout="constrained"
    )
    emotions = labels["emotion"].to_numpy()[order]
    edges = [0] + [i for i in range(1, len(emotions)) if emotions[i] != emotions[i - 1]] + [len(emotions)]
    for axis, (name, data, low, high, unit) in zip(axes[0], panels, strict=True):
        shown = data[order][:, :dimensions]
        image = axis.imshow(shown, aspect="auto", cmap="RdBu_r", vmin=low, vmax=high, interpolation="nearest")
        fig.colorbar(image, ax=axis, label=unit)
        for start, end in zip(edges[:-1], edges[1:], strict=True):
            axis.axhline(start - 0.5, color="black", linewidth=0.8)
            axis.text(
                -0.8,
                (start + end) / 2,
                f"{emotions[start].capitalize()} ",
                ha="right",
                va="center",
                fontsize=9,
            )
        axis.set_yticks([])
        axis.set_xlabel(f"Dimension (first {shown.shape[1]} of {raw.shape[1]})")
        axis.set_ylabel("Utterances, grouped by emotion", labelpad=45)
        axis.set_title(name)
    fig.suptitle(title or "AE representations")
    return fig
