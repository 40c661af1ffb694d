"""Notebooks 04 and 05: the stored runs read back, the last hidden layer of one ACNN (Figure 3's vectors),
and every run's UAR in one picture."""

from __future__ import annotations

import logging
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from serlib.analysis.tsne import AnalysisError, check_vectors
from serlib.protocol.run_files import read_hidden

log = logging.getLogger(__name__)


def finished_hidden_runs(config: Any, setting: str = "within") -> pd.DataFrame:
    """Finished ACNN runs (``metrics.json`` present) that stored a ``hidden.h5``: condition, seed, fold, path."""
    root = config.output_path / "results" / setting
    rows = []
    for path in sorted(root.glob("*/seed*/fold*/hidden.h5")):
        if not (path.parent / "metrics.json").is_file():
            continue
        condition, seed, fold = path.parts[-4], path.parts[-3], path.parts[-2]
        rows.append(
            {
                "condition": condition,
                "seed": int(seed.removeprefix("seed")),
                "fold": int(fold.removeprefix("fold")),
                "path": path,
            }
        )
    return pd.DataFrame(rows, columns=["condition", "seed", "fold", "path"])


def baseline_condition(config: Any) -> str:
    """The condition whose ACNN has no AE vector (BL in the paper): the ACNN alone, as in Figure 3."""
    for condition in config.protocol.conditions:
        if condition.autoencoder_corpus == "none":
            return condition.name
    if not config.protocol.conditions:
        raise AnalysisError("protocol.conditions is empty: configure at least one condition")
    return config.protocol.conditions[0].name


def acnn_hidden(
    config: Any,
    setting: str = "within",
    condition: str | None = None,
    seed: int | None = None,
    fold: int | None = None,
) -> tuple[list[str], np.ndarray, str]:
    """Last-hidden-layer vectors of ONE trained ACNN for its test utterances: (ids, vectors, description).

    Each fold trains its own ACNN, and the hidden spaces of two models are not aligned (their units are
    permuted and scaled differently), so the vectors of several folds must not share one picture. By
    default: the baseline condition, the lowest seed, and the fold with the most test utterances.
    """
    runs = finished_hidden_runs(config, setting)
    condition = condition or baseline_condition(config)
    runs = runs[runs["condition"] == condition]
    if seed is not None:
        runs = runs[runs["seed"] == seed]
    if fold is not None:
        runs = runs[runs["fold"] == fold]
    if runs.empty:
        raise AnalysisError(
            f"no finished ACNN run with hidden.h5 under {config.output_path / 'results' / setting}/{condition}: "
            "run notebook 04 (run_protocol) with this configuration first"
        )
    runs = runs[runs["seed"] == runs["seed"].min()].sort_values("fold")
    loaded = [(read_hidden(path), int(f)) for path, f in zip(runs["path"], runs["fold"], strict=True)]
    # The largest test fold; the first such fold on ties (max keeps the first maximum).
    (ids, vectors), chosen = max(loaded, key=lambda item: len(item[0][0]))
    corpus = config.protocol.within_corpus if setting == "within" else config.protocol.cross_corpus_test
    test = f"test session {chosen}" if setting == "within" else "all test utterances"
    seed = int(runs["seed"].min())
    description = f"the ACNN's last hidden layer ({corpus}, condition {condition}, seed {seed}, {test})"
    return list(ids), check_vectors(vectors, f"hidden layer of {condition}").astype(np.float32), description


def plot_uar(runs: pd.DataFrame, chance: float = 0.25) -> Any:
    """UAR of every run per condition and setting (each dot is one seed's fold or cross-corpus run)."""
    if runs.empty:
        raise AnalysisError("no finished runs to plot: run run_protocol first")
    frame = runs.assign(UAR=100.0 * runs["uar"].astype(float))
    fig, axis = plt.subplots(figsize=(8, 4.2), layout="constrained")
    sns.stripplot(
        data=frame,
        x="condition",
        y="UAR",
        hue="setting",
        dodge=True,
        palette="colorblind",
        ax=axis,
        jitter=0.15,
        size=6,
        alpha=0.8,
    )
    axis.axhline(100.0 * chance, color="grey", linestyle=":", label=f"chance ({100 * chance:.0f} %)")
    axis.set_xlabel("Condition")
    axis.set_ylabel("UAR (%) per run")
    axis.set_title("Every ACNN run: unweighted average recall on its test data")
    axis.legend(frameon=False, title="Setting", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig
