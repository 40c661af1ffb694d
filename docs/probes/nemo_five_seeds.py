"""nEMO BL against U over seeds 0-4, read from the stored runs, for docs/results-real-speech.md.

Reads ``<output>/results/within`` of ``configs/nemo.yaml``'s grid (every run of seeds 0-4 for BL and U;
fails naming the missing runs and the command that makes them). nEMO's folds are leave-one-speaker-out,
so a fold's UAR is its speaker's UAR; each speaker's UAR is averaged over the seeds, and the comparison
is serlib's paired test over the 9 speakers (``metrics.paired_comparison``: t-test, Wilcoxon, MDD). The
(speaker, seed) pairs are printed as the secondary reading. ``serlib pool runs/nemo --speakers
configs/nemo.yaml --out runs/pool/nemo`` gives the same speaker-level rows inside the report's
Holm-adjusted family.

    python docs/probes/nemo_five_seeds.py runs/nemo
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from serlib.base import metrics
from serlib.evidence import comparisons, table1
from serlib.evidence.speakers import MissingRunFolder, require_runs

SEEDS = (0, 1, 2, 3, 4)
SPEAKERS = 9
MAKE = "SERLIB_TF_THREADS=1 serlib evaluate --config configs/nemo.yaml --seed {seed} --condition {condition}"


def seed_by_speaker(output: Path, condition: str, seeds: tuple[int, ...] = SEEDS) -> pd.DataFrame:
    """UAR (%) per seed (rows) and speaker = fold (columns) of ``condition``, within nEMO; every cell
    must be stored."""
    root = require_runs(output, MAKE.format(seed=" --seed ".join(map(str, seeds)), condition=condition))
    _, runs = table1.collect_runs(root)
    here = runs[(runs["setting"] == "within") & (runs["condition"] == condition) & runs["seed"].isin(seeds)]
    table = 100 * here.pivot(index="seed", columns="fold", values="uar").reindex(
        index=list(seeds), columns=range(1, SPEAKERS + 1)
    )
    missing = [(int(s), int(f)) for s, f in zip(*np.where(table.isna()), strict=True)]
    if missing:
        lacking = sorted({seeds[s] for s, _ in missing})
        raise MissingRunFolder(
            f"{root}: {len(missing)} runs of {condition} are not stored (seeds {lacking}); make them with:\n"
            f"    {MAKE.format(seed=' --seed '.join(map(str, lacking)), condition=condition)}"
        )
    return table


def describe(name: str, result: dict[str, float], difference: str = "U - BL") -> str:
    return (
        f"{name}: {difference} {result['mean_difference']:+.2f} [{result['ci_low']:+.2f}, {result['ci_high']:+.2f}], "
        f"t-test p {result['t_p']:.3f}, Wilcoxon p {result['wilcoxon_p']:.3f}, "
        f"sd {result['sd']:.2f}, MDD {result['mdd']:.2f} ({result['n']} pairs)"
    )


def summary(condition: str, table: pd.DataFrame) -> str:
    seeds = table.mean(axis=1)
    low, high = stats.t.interval(0.95, len(seeds) - 1, loc=seeds.mean(), scale=stats.sem(seeds))
    return (
        f"{condition} seeds {table.index[0]}-{table.index[-1]}: mean {seeds.mean():.2f} (per seed "
        f"{' / '.join(f'{x:.2f}' for x in seeds)}), 95 % CI over seeds [{low:.2f}, {high:.2f}]; per speaker "
        f"{table.mean(axis=0).round(1).tolist()}"
    )


def compare(output: Path, condition: str) -> None:
    tables = {c: seed_by_speaker(output, c) for c in ("BL", condition)}
    for name, table in tables.items():
        print(summary(name, table))
    a, b = tables[condition], tables["BL"]
    label = f"{condition} - BL"
    print(
        describe(
            "speakers (seeds averaged; confirmatory)", metrics.paired_comparison(a.mean(0), b.mean(0)), label
        )
    )
    print(
        describe(
            "(speaker, seed) pairs (secondary: shares speakers)",
            metrics.paired_comparison(a.to_numpy().ravel(), b.to_numpy().ravel()),
            label,
        )
    )
    print(
        describe(
            "paired by seed (these 9 speakers only)", metrics.paired_comparison(a.mean(1), b.mean(1)), label
        )
    )
    root = require_runs(output, MAKE.format(seed=0, condition="BL"))
    protocol, _ = table1.collect_runs(root)
    svm = comparisons.svm_runs(root, protocol)
    if condition == "U" and len(svm) == SPEAKERS:
        ours = 100 * svm.set_index("fold")["uar"].reindex(range(1, SPEAKERS + 1))
        result = metrics.paired_comparison(ours.to_numpy(), b.mean(0).to_numpy())
        print(describe("eGeMAPS-SVM against the BL seed mean, speakers", result, "SVM - BL"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="nEMO U against BL over seeds 0-4 from the stored runs")
    parser.add_argument("output", type=Path, nargs="?", default=Path("runs/nemo"))
    try:
        compare(parser.parse_args().output, "U")
    except MissingRunFolder as error:
        sys.exit(f"{Path(__file__).name}: error: {error}")
