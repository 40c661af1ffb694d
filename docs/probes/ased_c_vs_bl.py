"""ASED: the control C against BL per speaker (seeds averaged per speaker), on all test files and on the
`common` sentences (the lexically fair score), with the MDD over speakers.

The declared family (configs/ased.yaml) has four members (U and C against BL, each on `common` and on
all files); U is not trained yet, so the family's Holm adjustment cannot be completed. Holm's adjusted p
never exceeds m * p (Bonferroni), so a C p-value below 0.05 / 4 is significant whatever U gives; the
printout states that bound, not a completed Holm adjustment.

    python docs/probes/ased_c_vs_bl.py RUN_DIR    # RUN_DIR: serlib evaluate --config configs/ased.yaml --out RUN_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
from scipy import stats
from statsmodels.stats.power import TTestPower

from serlib.evidence import results_folder, subsets

FAMILY_SIZE = 4  # configs/ased.yaml: {U, C} vs BL x {common, all}


def main(folder: str) -> int:
    if results_folder.is_results_folder(folder):  # serlib export's folder: the speaker means recomputed
        folder = str(subsets.write_speaker_scores(folder).parent)
    path = Path(folder) / "speaker_means.csv"
    if not path.is_file():
        print(
            f"{path} does not exist: run `serlib evaluate --config configs/ased.yaml --out {folder} "
            "--condition BL --condition C`, then serlib.evidence.subsets.write_speaker_scores",
            file=sys.stderr,
        )
        return 2
    means = pd.read_csv(path)
    means = means[means["setting"] == "within"]
    print("| score | speakers | BL | C | Δ C - BL | 95 % CI | p | Bonferroni bound of Holm p (m=4) | MDD |")
    print("|---|---:|---:|---:|---:|---|---:|---:|---:|")
    for score in ("common", "all"):
        here = means[means["score"] == score].pivot(index="speaker", columns="condition", values="uar")
        here = here.dropna(subset=["BL", "C"]) * 100
        difference = here["C"] - here["BL"]
        test = stats.ttest_1samp(difference, 0.0)
        low, high = test.confidence_interval(0.95)
        sd = float(difference.std(ddof=1))
        effect = TTestPower().solve_power(
            nobs=len(difference), alpha=0.05, power=0.8, alternative="two-sided"
        )
        print(
            f"| {score} | {len(difference)} | {here['BL'].mean():.2f} | {here['C'].mean():.2f} | "
            f"{difference.mean():+.2f} | [{low:+.2f}, {high:+.2f}] | {test.pvalue:.2g} | "
            f"{min(1.0, FAMILY_SIZE * test.pvalue):.2g} | {effect * sd:.2f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1] if len(sys.argv) > 1 else "runs/ased"))
