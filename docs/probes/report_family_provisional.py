"""PROVISIONAL: the report's confirmatory family and pooled estimate from the summaries it printed.

The run folders behind docs/results-real-speech.md (runs/nemo, runs/emodb, runs/emodb-replication)
were lost with the machine that made them. Until they are made again, this script applies the
report's statistical design (``serlib.protocol.confirmatory``: Holm over the declared family; the
DerSimonian-Laird pooling) to the numbers the report printed, each cited below. It is the one place
with typed-in numbers, and it says so in its output; once the runs exist,

    serlib pool runs/nemo runs/emodb runs/emodb-replication --config configs/nemo.yaml \
        --config configs/emodb.yaml --config configs/emodb-replication.yaml --pool-condition U --pool-condition U4h

replaces it with speaker-level numbers read from the predictions (Emo-DB's within-corpus unit then
becomes its 10 speakers instead of its 5 speaker-pair folds).

    python docs/probes/report_family_provisional.py
"""

from __future__ import annotations

import pandas as pd
from scipy import stats

from serlib.protocol import confirmatory

# (comparison, unit, pairs, Δ, 95 % CI low, high, two-sided t-test p): docs/results-real-speech.md
FAMILY = (
    ("nEMO U - BL, seeds 0-4", "9 speakers", 9, +0.63, -2.79, +4.05, 0.681),
    ("nEMO C - BL, seeds 3-4", "9 speakers", 9, +0.18, -5.42, +5.78, 0.943),
    ("Emo-DB U4h - BL within, seeds 0-9", "5 speaker-pair folds", 5, -0.58, -4.32, +3.16, 0.689),
    ("Emo-DB -> RAVDESS U4h - BL, seeds 10-19 (replication)", "10 seeds", 10, +1.88, -0.18, +3.93, 0.069),
)
POOLED = ("nEMO U - BL, seeds 0-4", "Emo-DB U4h - BL within, seeds 0-9")  # the within-corpus AE grids


def main() -> None:
    family = pd.DataFrame(FAMILY, columns=["comparison", "unit", "n", "mean", "ci_low", "ci_high", "p"])
    family["holm_p"] = confirmatory.holm(family["p"])
    # the standard deviation of the paired differences, from the printed t interval
    family["sd"] = (
        (family["ci_high"] - family["ci_low"]) / 2 / stats.t.ppf(0.975, family["n"] - 1) * family["n"] ** 0.5
    )
    print("PROVISIONAL (from the report's printed summaries; `serlib pool` on the stored runs replaces it)")
    print("| comparison | unit | Δ (UAR points) | 95 % CI | t-test p | Holm p |")
    print("|---|---|---:|---|---:|---:|")
    for row in family.itertuples():
        print(
            f"| {row.comparison} | {row.unit} | {row.mean:+.2f} "
            f"| [{row.ci_low:+.2f}, {row.ci_high:+.2f}] | {row.p:.3f} | {row.holm_p:.3f} |"
        )
    summaries = family.set_index("comparison").loc[list(POOLED), ["mean", "sd", "n"]]
    pooled = confirmatory.pooled_from_summaries(summaries)
    print(
        f"\nPooled AE - BL within corpus ({len(summaries)} corpora, DerSimonian-Laird): "
        f"{pooled['estimate']:+.2f} "
        f"[{pooled['ci_low']:+.2f}, {pooled['ci_high']:+.2f}], p {pooled['p']:.2f}, MDD {pooled['mdd']:.2f}; "
        f"tau² {pooled['tau2']:.2f}, I² {100 * pooled['i2']:.0f} %, "
        f"Q {pooled['q']:.2f} (df {pooled['q_df']}, p {pooled['q_p']:.2f})"
    )


if __name__ == "__main__":
    main()
