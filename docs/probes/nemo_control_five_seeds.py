"""nEMO's control C (AE on all 4,481 nEMO files, labels unused) against BL over seeds 0-4, for
docs/results-real-speech.md.

Seeds 0-2 of C were run on 2026-12-01 morning; their run folders are gone with that machine, and the
report keeps only their per-seed means (the 9 speakers' mean UAR per seed). Seeds 3-4 are read from
``<output>/results/within`` (``serlib evaluate --config configs/nemo.yaml --seed 3 --seed 4
--condition C``; BL's seeds 3-4 are there too). Printed, with serlib's own
``metrics.paired_comparison``:

* seeds 3-4 over the 9 speakers (seeds averaged per speaker: the honest unit) and over the 18
  (speaker, seed) pairs;
* seeds 0-4 paired by seed (each seed's mean over the 9 speakers), the only five-seed pairing the
  kept numbers allow.

    python docs/probes/nemo_control_five_seeds.py runs/nemo
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from nemo_five_seeds import describe, new_runs  # the same folder: run as a script from the repository root
from scipy import stats

from serlib.base import metrics

# docs/results-real-speech.md, "The control C ... seeds 0-2": per seed, mean of the 9 speakers
EARLIER_PER_SEED = {"BL": [46.16, 49.35, 50.81], "C": [47.10, 48.64, 50.33]}


def main(output: Path) -> None:
    new = {condition: new_runs(output, condition) for condition in ("BL", "C")}
    for condition, values in new.items():
        per_seed = " / ".join(f"{x:.2f}" for x in values.mean(axis=1))
        print(
            f"{condition} seeds 3-4: per seed {per_seed}; per speaker {values.mean(axis=0).round(1).tolist()}"
        )
    print(
        describe(
            "seeds 3-4, speakers", metrics.paired_comparison(new["C"].mean(0), new["BL"].mean(0)), "C - BL"
        )
    )
    print(
        describe(
            "seeds 3-4, (speaker, seed)",
            metrics.paired_comparison(new["C"].ravel(), new["BL"].ravel()),
            "C - BL",
        )
    )
    seeds = {c: np.array(EARLIER_PER_SEED[c] + new[c].mean(axis=1).round(2).tolist()) for c in ("BL", "C")}
    for condition, values in seeds.items():
        low, high = stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
        print(
            f"{condition} seeds 0-4: mean {values.mean():.2f} (per seed {' / '.join(f'{x:.2f}' for x in values)}), "
            f"95 % CI over seeds [{low:.2f}, {high:.2f}]"
        )
    print(describe("seeds 0-4, paired by seed", metrics.paired_comparison(seeds["C"], seeds["BL"]), "C - BL"))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/nemo"))
