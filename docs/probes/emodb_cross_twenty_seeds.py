"""Emo-DB -> RAVDESS, BL against U4h: the first ten seeds, the ten-seed replication, all twenty.

Seeds 0-9 come from ``serlib evaluate --config configs/emodb.yaml --condition BL --condition U4h``;
seeds 10-19 from the same command on ``configs/emodb-replication.yaml`` (seeds 10-19, cross-corpus runs
only, the same U4h AE). Seeds 10-19 were chosen after seeing seeds 0-9: the replication alone is the
confirmatory test; seeds 0-9 and all twenty pooled are exploratory. The comparison is serlib's paired
test over seeds (``metrics.paired_comparison``); it varies the ACNN seed only (one AE, one training
set, one test set). ``serlib pool`` gives the speaker-level reading (RAVDESS' 8 test speakers).

    python docs/probes/emodb_cross_twenty_seeds.py runs/emodb runs/emodb-replication
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from serlib.base import metrics
from serlib.evidence import table1
from serlib.evidence.speakers import MissingRunFolder, require_runs

MAKE = {
    "first": "SERLIB_TF_THREADS=1 serlib evaluate --config configs/emodb.yaml --condition BL --condition U4h",
    "replication": (
        "SERLIB_TF_THREADS=1 serlib evaluate --config configs/emodb-replication.yaml"
        " --condition BL --condition U4h"
    ),
}


def cross_uars(folder: Path) -> pd.DataFrame:
    """Cross-corpus UAR per seed (rows) and condition (columns), read as ``serlib table`` reads it:
    unrounded fractions from each run's metrics.json (rounding or scaling first would change which
    differences tie, and with them the Wilcoxon test's p)."""
    _, runs = table1.collect_runs(folder)
    cross = runs[runs["setting"] == "cross"]
    return cross.pivot(index="seed", columns="condition", values="uar")


def describe(name: str, table: pd.DataFrame) -> str:
    result = metrics.paired_comparison(table["U4h"], table["BL"])
    result.update({key: 100 * result[key] for key in ("mean_difference", "ci_low", "ci_high", "mdd")})
    higher = int((table["U4h"] > table["BL"]).sum())
    return (
        f"| {name} | {len(table)} | {100 * table['BL'].mean():.2f} | {100 * table['U4h'].mean():.2f} | "
        f"{result['mean_difference']:+.2f} [{result['ci_low']:+.2f}, {result['ci_high']:+.2f}] | "
        f"{result['t_p']:.3f} | {result['wilcoxon_p']:.3f} | {result['mdd']:.2f} | {higher} of {len(table)} |"
    )


def main(first: Path, replication: Path) -> None:
    first = require_runs(first, MAKE["first"])
    replication = require_runs(replication, MAKE["replication"])
    tables = {
        "seeds 0-9 (exploratory)": cross_uars(first),
        "seeds 10-19 (replication: confirmatory)": cross_uars(replication),
    }
    tables["seeds 0-19 (exploratory)"] = pd.concat(tables.values())
    print("| seeds | n | BL | U4h | Δ U4h - BL [95 % CI] | t-test p | Wilcoxon p | MDD | U4h higher |")
    print("|---|---:|---:|---:|---|---:|---:|---:|---:|")
    for name, table in tables.items():
        print(describe(name, table))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Emo-DB -> RAVDESS, BL against U4h over seeds 0-19")
    parser.add_argument("first", type=Path, nargs="?", default=Path("runs/emodb"))
    parser.add_argument("replication", type=Path, nargs="?", default=Path("runs/emodb-replication"))
    arguments = parser.parse_args()
    try:
        main(arguments.first, arguments.replication)
    except MissingRunFolder as error:
        sys.exit(f"{Path(__file__).name}: error: {error}")
