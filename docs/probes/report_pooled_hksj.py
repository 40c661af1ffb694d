"""PROVISIONAL: the pooled AE - BL of docs/results-real-speech.md with the small-sample (HKSJ) interval,
from the family rows the report printed on 2026-12-05 (``serlib pool``'s output; the run folders are
not on this machine and not yet exported to results/).

Applies ``serlib.evidence.confirmatory.pooled_from_summaries`` (DerSimonian-Laird and Hartung-Knapp-
Sidik-Jonkman, t with k - 1 df, and both MDDs) to each corpus' speaker-level mean difference, its
95 % t interval and its speaker count, as printed in the family table (2 decimals, so the results
here are good to about 0.01). Once results/ holds the grids,

    serlib pool --family results/family.yaml --out runs/pool/family

prints the same rows from the stored predictions, and the report's blocks are generated
(``serlib evidence``); this script is then superseded.

    python docs/probes/report_pooled_hksj.py
"""

from __future__ import annotations

import pandas as pd
from scipy import stats

from serlib.evidence import confirmatory
from serlib.evidence.comparisons import format_number as f
from serlib.evidence.comparisons import format_p as p

# corpus (comparison, score): speakers, Δ, 95 % CI low, high: the family table of 2026-12-05
ROWS = {
    "nEMO (U - BL, all)": (9, +1.35, -1.73, +4.42),
    "Emo-DB (U4h - BL, all)": (10, -0.65, -3.88, +2.58),
    "RAVDESS (U4h - BL, all)": (8, +2.58, -3.56, +8.71),
    "ASED (U - BL, common)": (45, +4.23, +0.16, +8.30),
    "ASED (U - BL, all files)": (64, +5.68, +3.50, +7.86),
}
SELECTIONS = {
    "with ASED (`common`)": [
        "nEMO (U - BL, all)",
        "Emo-DB (U4h - BL, all)",
        "RAVDESS (U4h - BL, all)",
        "ASED (U - BL, common)",
    ],
    "without ASED": ["nEMO (U - BL, all)", "Emo-DB (U4h - BL, all)", "RAVDESS (U4h - BL, all)"],
    "with ASED (all files; secondary)": [
        "nEMO (U - BL, all)",
        "Emo-DB (U4h - BL, all)",
        "RAVDESS (U4h - BL, all)",
        "ASED (U - BL, all files)",
    ],
}


def summaries(names: list[str]) -> pd.DataFrame:
    """Mean, sd over speakers (from the printed t interval) and speakers of each named row."""
    rows = [ROWS[name] for name in names]
    return pd.DataFrame(
        {
            "mean": [r[1] for r in rows],
            "sd": [(r[3] - r[2]) / 2 / stats.t.isf(0.025, r[0] - 1) * r[0] ** 0.5 for r in rows],
            "n": [r[0] for r in rows],
        },
        index=names,
    )


def main() -> None:
    print("PROVISIONAL (from the family rows printed on 2026-12-05, not from stored runs)\n")
    print(
        "| pooled | corpora | estimate | 95 % CI (DL, normal) | MDD (DL) | 95 % CI (HKSJ, t k-1 df) | HKSJ p "
        "| MDD (HKSJ) | verdict interval |"
    )
    print("|---|---:|---:|---|---:|---|---:|---:|---|")
    for label, names in SELECTIONS.items():
        r = confirmatory.pooled_from_summaries(summaries(names))
        print(
            f"| {label} | {r['corpora']} | {f(r['estimate'], sign=True)} | [{f(r['ci_low'], sign=True)}, "
            f"{f(r['ci_high'], sign=True)}] | {f(r['mdd'])} | [{f(r['hksj_ci_low'], sign=True)}, "
            f"{f(r['hksj_ci_high'], sign=True)}] | {p(r['hksj_p'])} | {f(r['hksj_mdd'])} | {r['verdict_interval']} |"
        )


if __name__ == "__main__":
    main()
