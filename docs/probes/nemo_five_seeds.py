"""nEMO BL against U over seeds 0-4, for docs/results-real-speech.md.

Seeds 0-2 were run on 2026-11-30 and 12-01; their run folders are gone with that machine, and the
report keeps their per-speaker means over the three seeds (one decimal) and their per-seed means.
Seeds 3-4 are read from ``<output>/results/within`` (``serlib evaluate --config configs/nemo.yaml
--seed 3 --seed 4 --condition BL --condition U``). Per speaker, the five-seed mean is
(3 x the seeds-0-2 mean + seed 3 + seed 4) / 5, and the comparison is serlib's own paired test over
the 9 speakers (``metrics.paired_comparison``).

    python docs/probes/nemo_five_seeds.py runs/nemo
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from scipy import stats

from serlib.base import metrics

SPEAKERS = 9
NEW_SEEDS = (3, 4)
# docs/results-real-speech.md, "Table 1 on nEMO": per test speaker (fold 1-9), mean over seeds 0-2
EARLIER_PER_SPEAKER = {
    "BL": [48.7, 40.9, 50.1, 49.7, 36.4, 58.5, 58.7, 68.1, 27.9],
    "U": [51.0, 43.1, 54.7, 43.7, 37.5, 60.8, 47.3, 72.2, 30.1],
}
EARLIER_PER_SEED = {"BL": [46.16, 49.35, 50.81], "U": [47.25, 48.97, 50.59]}  # the same table, per seed


def new_runs(output: Path, condition: str) -> np.ndarray:
    """UAR (%) of seeds 3-4 x the 9 speakers."""
    root = output / "results" / "within" / condition
    return np.array(
        [
            [
                100 * json.loads((root / f"seed{seed}" / f"fold{fold}" / "metrics.json").read_text())["uar"]
                for fold in range(1, SPEAKERS + 1)
            ]
            for seed in NEW_SEEDS
        ]
    )


def describe(name: str, result: dict[str, float], difference: str = "U - BL") -> str:
    return (
        f"{name}: {difference} {result['mean_difference']:+.2f} [{result['ci_low']:+.2f}, {result['ci_high']:+.2f}], "
        f"t-test p {result['t_p']:.3f}, Wilcoxon p {result['wilcoxon_p']:.3f}, "
        f"sd {result['sd']:.2f}, MDD {result['mdd']:.2f} ({result['n']} pairs)"
    )


def main(output: Path) -> None:
    new = {condition: new_runs(output, condition) for condition in ("BL", "U")}
    for condition, values in new.items():
        per_seed = " / ".join(f"{x:.2f}" for x in values.mean(axis=1))
        print(
            f"{condition} seeds 3-4: per seed {per_seed}; per speaker {values.mean(axis=0).round(1).tolist()}"
        )
    print(describe("seeds 3-4, speakers", metrics.paired_comparison(new["U"].mean(0), new["BL"].mean(0))))
    print(
        describe("seeds 3-4, (speaker, seed)", metrics.paired_comparison(new["U"].ravel(), new["BL"].ravel()))
    )
    within_speaker = (new["U"] - new["BL"])[0] - (new["U"] - new["BL"])[1]
    print(
        f"seed-to-seed sd of the difference within a speaker (seeds 3 vs 4): {within_speaker.std(ddof=1) / np.sqrt(2):.2f}"
    )
    five = {c: (3 * np.array(EARLIER_PER_SPEAKER[c]) + new[c].sum(axis=0)) / 5 for c in ("BL", "U")}
    for condition in ("BL", "U"):
        seeds = np.array(EARLIER_PER_SEED[condition] + new[condition].mean(axis=1).tolist())
        low, high = stats.t.interval(0.95, len(seeds) - 1, loc=seeds.mean(), scale=stats.sem(seeds))
        print(
            f"{condition} seeds 0-4: mean {seeds.mean():.2f} (per seed {' / '.join(f'{x:.2f}' for x in seeds)}), "
            f"95 % CI over seeds [{low:.2f}, {high:.2f}]; per speaker {five[condition].round(1).tolist()}"
        )
    print(describe("seeds 0-4, speakers", metrics.paired_comparison(five["U"], five["BL"])))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/nemo"))
