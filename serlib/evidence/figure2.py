"""Figure 2 of the paper: the mean row-normalised confusion matrix over seeds, BL against the AE
condition (the configured one, else ``best_condition``'s: the best whose AE never heard the tested corpus)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from serlib.base import metrics, plots
from serlib.base.files import write_csv
from serlib.data.manifest import EMOTIONS
from serlib.evidence.best_condition import RULE, best_ae_condition

log = logging.getLogger(__name__)

FIGURE2_STEM = "figure2_confusion"


def confusion_by_condition(
    protocol: dict[str, Any], runs: pd.DataFrame, setting: str
) -> dict[str, np.ndarray]:
    """Per condition the mean over seeds of the row-normalised confusion matrix of each seed's pooled
    test predictions (all folds of the seed) - the paper's Figure 2."""
    result = {}
    for condition in [c["name"] for c in protocol["conditions"]]:
        selected = runs[(runs["setting"] == setting) & (runs["condition"] == condition)]
        if selected.empty:
            continue
        matrices = []
        for _, group in selected.groupby("seed"):
            counts = np.zeros((len(EMOTIONS), len(EMOTIONS)), dtype=np.int64)
            for folder in group["folder"]:
                stored = json.loads((Path(folder) / "metrics.json").read_text(encoding="utf-8"))
                counts += np.asarray(stored["confusion"], dtype=np.int64)
            matrices.append(counts)
        result[condition] = metrics.mean_confusion(matrices)
    return result


def figure2(
    protocol: dict[str, Any], runs: pd.DataFrame, table: pd.DataFrame, folders: Iterable[str | Path]
) -> list[Path]:
    """Figure 2: BL vs the configured (else best) AE condition, mean confusion matrices over seeds."""
    setting = (
        "within" if "within" in protocol["settings"] and (runs["setting"] == "within").any() else "cross"
    )
    matrices = confusion_by_condition(protocol, runs, setting)
    if not matrices:
        return []
    baseline = protocol.get("baseline")
    chosen = protocol.get("figure2_condition")
    corpus = protocol["settings"][setting]["test_corpus"]
    if chosen is None or chosen not in matrices:
        chosen = _best(protocol, table, setting, list(matrices), corpus)
    panels = []
    for name, title in ((baseline, f"{baseline}: ACNN"), (chosen, f"{chosen}: ACNN + AE")):
        if name is not None and name in matrices:
            panels.append((title, matrices[name]))
    frame = pd.DataFrame(
        [
            {
                "condition": name,
                "true": EMOTIONS[i],
                **{EMOTIONS[j]: matrix[i, j] for j in range(len(EMOTIONS))},
            }
            for name, matrix in matrices.items()
            for i in range(len(EMOTIONS))
        ]
    )
    targets = [Path(f) for f in folders]
    for folder in targets:
        write_csv(frame, folder / f"{FIGURE2_STEM}.csv", float_format="%.4f")
    fig = plots.confusion_pair(
        panels,
        EMOTIONS,
        title=f"Figure 2: mean confusion over seeds, {corpus} "
        f"({'leave-one-session-out' if setting == 'within' else 'cross-corpus'})",
    )
    written = plots.save_figure(fig, FIGURE2_STEM, targets)
    plots.close(fig)
    return written


def _best(
    protocol: dict[str, Any], table: pd.DataFrame, setting: str, drawn: list[str], test_corpus: str
) -> str | None:
    """Figure 2's AE panel when none is configured: ``best_condition``'s rule on Table 1's means."""
    rows = table[table["condition"].isin(drawn)]
    scores = {str(r["condition"]): float(r[f"{setting}_mean"]) for _, r in rows.iterrows()}
    conditions = [(c["name"], c["autoencoder_corpus"]) for c in protocol["conditions"]]
    chosen = best_ae_condition(scores, conditions, test_corpus)
    if chosen is None and any(corpus != "none" for _, corpus in conditions):
        # AE conditions were run but each heard the test corpus: say why none is drawn
        log.warning(
            "Figure 2 shows the baseline alone: no AE condition qualifies (%s); set "
            "protocol.figure2_condition to draw one anyway",
            RULE,
        )
    elif chosen is None:
        log.info("Figure 2 shows the baseline alone: the grid has no AE condition")
    return chosen
