"""What the Emo-DB -> RAVDESS gain of U4h is made of: the confusion of BL and U4h, all seeds pooled.

Reads ``results/cross/{BL,U4h}/seed*/fold0/predictions.csv`` of the run folders given (default
``runs/emodb``, seeds 0-9), pools every seed's 224 RAVDESS predictions and prints the row-normalised
confusion (% of each true class) in the report's layout. Fails naming the missing folder and the command.

    python docs/probes/u4h_cross_confusion.py runs/emodb
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from serlib.base import metrics
from serlib.data.manifest import EMOTIONS
from serlib.evidence import table1
from serlib.evidence.speakers import MissingRunFolder, require_runs

CONDITIONS = ("BL", "U4h")
MAKE = "SERLIB_TF_THREADS=1 serlib evaluate --config configs/emodb.yaml --condition BL --condition U4h"


def pooled_confusion(folders: list[Path]) -> dict[str, pd.DataFrame]:
    """Per condition the row-normalised confusion (%) of the cross-corpus predictions of every seed."""
    frames: dict[str, list[pd.DataFrame]] = {c: [] for c in CONDITIONS}
    for folder in folders:
        _, runs = table1.collect_runs(require_runs(folder, MAKE))
        for condition in CONDITIONS:
            for run in runs[(runs["setting"] == "cross") & (runs["condition"] == condition)].itertuples():
                frames[condition].append(pd.read_csv(Path(run.folder) / "predictions.csv", dtype=str))
    result = {}
    for condition, parts in frames.items():
        if not parts:
            raise MissingRunFolder(
                f"{', '.join(map(str, folders))}: no cross-corpus {condition} runs; make them with:\n    {MAKE}"
            )
        pooled = pd.concat(parts)
        counts = metrics.confusion(pooled["true"], pooled["predicted"], EMOTIONS)
        result[condition] = pd.DataFrame(
            100 * metrics.row_normalise(counts), index=EMOTIONS, columns=EMOTIONS
        )
    return result


def markdown(tables: dict[str, pd.DataFrame]) -> str:
    head = " | ".join(f"{c}: {e}" if i == 0 else e for c in CONDITIONS for i, e in enumerate(EMOTIONS))
    lines = [f"| true \\ predicted | {head} |", "|---|" + "---:|" * (len(EMOTIONS) * len(CONDITIONS))]
    for emotion in EMOTIONS:
        cells = " | ".join(f"{tables[c].loc[emotion, e]:.0f}" for c in CONDITIONS for e in EMOTIONS)
        lines.append(f"| {emotion} | {cells} |")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="BL and U4h confusion, Emo-DB -> RAVDESS, seeds pooled")
    parser.add_argument("folders", type=Path, nargs="*", default=[Path("runs/emodb")])
    try:
        print(markdown(pooled_confusion(parser.parse_args().folders)))
    except MissingRunFolder as error:
        sys.exit(f"{Path(__file__).name}: error: {error}")
