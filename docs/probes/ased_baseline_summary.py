"""Summary for docs/results-real-speech.md (ASED): BL and the eGeMAPS SVM on all, `common` and `specific`
test files, and a projection of the primary test's MDD from BL's seed-to-seed noise (not confirmatory).

Reads the run folders of ``serlib evaluate/svm --config configs/ased.yaml --out <folder>``,
writes the speaker tables there (``serlib.evidence.subsets``) and prints:
- per condition and score: the mean over seeds of the fold-mean UAR, and the pooled UAR over all folds;
- BL - SVM per speaker (seeds averaged), paired over speakers (descriptive);
- the MDD projection: the SD of a difference between two independent 5-seed BL means of one speaker
  (seed noise only) = sd_within * sqrt(2/5); with it, (t_0.975 + t_0.8) * sd / sqrt(n) over the n
  speakers of each score. Seed noise is only part of a U - BL difference's spread (speakers also
  differ in their true effect), so this is a LOWER bound on the MDD of the declared test.

    python docs/probes/ased_baseline_summary.py /work/runs-ased
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from serlib.base import metrics
from serlib.evidence import subsets, table1


def run_table(root: Path) -> pd.DataFrame:
    rows = []
    for path in sorted((root / "results" / "within").glob("*/seed*/fold*/metrics.json")):
        stored = json.loads(path.read_text(encoding="utf-8"))
        predictions = pd.read_csv(path.parent / "predictions.csv", dtype={"speaker": str})
        row = {"condition": stored["condition"], "seed": stored["seed"], "fold": stored["fold"]}
        row["all"] = stored["uar"]
        row |= {name: stored["subset_uar"][name] for name in stored["subset_uar"]}
        rows.append(row | {"folder": str(path.parent), "n": len(predictions)})
    return pd.DataFrame(rows)


def main(folder: str) -> None:
    root = table1.results_root(
        folder
    )  # a run folder, or serlib export's results folder (its run-folder copy)
    runs = run_table(root)
    print("runs per condition:", runs.groupby("condition").size().to_dict())
    for condition, own in runs.groupby("condition"):
        per_seed = own.groupby("seed")[["all", "common", "specific"]].mean()
        pooled = {}
        for score in ("all", "common", "specific"):
            values = []
            for _seed, seed_runs in own.groupby("seed"):
                frame = pd.concat([pd.read_csv(Path(f) / "predictions.csv") for f in seed_runs["folder"]])
                if score != "all":
                    frame = frame[frame["subset"] == score]
                values.append(metrics.uar(frame["true"], frame["predicted"]))
            pooled[score] = 100 * float(np.mean(values))
        means = (100 * per_seed.mean()).round(2).to_dict()
        spread = (100 * per_seed.std(ddof=1)).round(2).to_dict() if len(per_seed) > 1 else {}
        print(
            f"{condition}: seeds {len(per_seed)} folds/seed {own.groupby('seed').size().min()} "
            f"fold-mean UAR {means} (sd over seeds {spread}); pooled { ({k: round(v, 2) for k, v in pooled.items()}) }"
        )
    subsets.write_speaker_scores(root)
    scores = pd.read_csv(root / "speaker_scores.csv", dtype={"speaker": str})
    means = pd.read_csv(root / "speaker_means.csv", dtype={"speaker": str})
    for score in ("all", "common"):
        wide = means[means["score"] == score].pivot(index="speaker", columns="condition", values="uar")
        if {"BL", "eGeMAPS-SVM"} <= set(wide.columns):
            difference = 100 * (wide["BL"] - wide["eGeMAPS-SVM"]).dropna()
            test = stats.ttest_1samp(difference, 0.0)
            print(
                f"BL - SVM per speaker ({score}): n {len(difference)} mean {difference.mean():+.2f} "
                f"sd {difference.std(ddof=1):.2f} t-test p {test.pvalue:.3g} (descriptive)"
            )
        bl = scores[(scores["condition"] == "BL") & (scores["score"] == score)]
        seeds = bl.groupby("speaker")["seed"].nunique()
        if seeds.min() < 2:
            continue
        within = 100 * np.sqrt(bl.groupby("speaker")["uar"].var(ddof=1).mean())
        k, n = int(seeds.min()), len(seeds)
        sd_difference = within * np.sqrt(2 / k)
        factor = stats.t.ppf(0.975, n - 1) + stats.t.ppf(0.8, n - 1)
        print(
            f"MDD projection ({score}): {n} speakers, {k} seeds, BL seed-to-seed sd within a speaker "
            f"{within:.2f} -> sd of a seed-noise-only difference {sd_difference:.2f} -> MDD >= "
            f"{factor * sd_difference / np.sqrt(n):.2f} points (lower bound)"
        )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/work/runs-ased")
