"""Emo-DB -> RAVDESS, BL against U4h: the first ten seeds, the ten-seed replication, all twenty.

Seeds 0-9 come from ``serlib evaluate --config configs/emodb.yaml --condition BL --condition U4h``;
seeds 10-19 from the same command on a copy of the config with ``protocol.seeds: [10, ..., 19]`` and
``protocol.within_corpus: null`` (cross-corpus runs only), both with the same U4h AE. Seeds 10-19 were
chosen after seeing seeds 0-9 and test that result afresh. The comparison is serlib's own paired test
over seeds (``metrics.paired_comparison``).

    python docs/probes/emodb_cross_twenty_seeds.py runs/emodb runs/emodb-replication
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from serlib.base import metrics
from serlib.protocol import table1


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
    tables = {"seeds 0-9": cross_uars(first), "seeds 10-19 (replication)": cross_uars(replication)}
    tables["seeds 0-19"] = pd.concat(tables.values())
    print("| seeds | n | BL | U4h | Δ U4h - BL [95 % CI] | t-test p | Wilcoxon p | MDD | U4h higher |")
    print("|---|---:|---:|---:|---|---:|---:|---:|---:|")
    for name, table in tables.items():
        print(describe(name, table))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
