"""Conditions against the baseline with the power to see a difference: paired over (fold, seed) runs.

Table 1 compares seed means, the paper's unit. With n folds and s seeds there are n x s matched runs
(the same test speakers, the same seed for both conditions), and the paired differences of their UARs
say how large an effect the experiment could have seen: ``minimal_detectable_difference`` at alpha
0.05 and power 0.8 from their measured spread. The (fold, seed) pairs share test speakers within a
fold, so the same comparison is also given over folds (each fold's difference averaged over seeds):
fewer, independent pairs, the conservative reading.

These tables are descriptive. The report's confirmatory tests pair each **speaker** (seeds averaged),
Holm-adjust the declared family and pool the corpora: ``serlib.evidence.confirmatory`` (``serlib
pool``). Here the (fold, seed) rows are labelled secondary, and a fold is a speaker only where each
fold holds one.

The eGeMAPS + SVM reference has one run per fold; it is compared with the baseline's fold UARs
averaged over seeds. ``comparisons_markdown`` renders both tables; ``write_comparisons`` keeps them as
``comparisons.csv`` and ``comparisons.md`` beside Table 1.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from serlib.base import metrics
from serlib.base.files import write_csv, write_text
from serlib.evidence.table1 import collect_runs, results_root

COLUMNS = (
    "setting",
    "condition",
    "pairs_over",
    "pairs",
    "mean_difference",
    "ci_low",
    "ci_high",
    "t_p",
    "wilcoxon_p",
    "sd",
    "mdd",
    "condition_mean",
    "baseline_mean",
)
SVM_CONDITION = "eGeMAPS-SVM"


def _row(setting: str, condition: str, over: str, a: pd.Series, b: pd.Series) -> dict[str, Any]:
    test = metrics.paired_comparison(a, b)
    scaled = {key: 100.0 * test[key] for key in ("mean_difference", "ci_low", "ci_high", "sd", "mdd")}
    return {
        "setting": setting,
        "condition": condition,
        "pairs_over": over,
        "pairs": test["n"],
        **scaled,
        "t_p": test["t_p"],
        "wilcoxon_p": test["wilcoxon_p"],
        "condition_mean": 100.0 * float(a.mean()),
        "baseline_mean": 100.0 * float(b.mean()),
    }


def paired_comparisons(runs: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """One row per (setting, condition, pairing): pairs over ``fold x seed`` and over ``fold``.

    ``runs`` holds one row per run (``setting, condition, seed, fold, uar``), as ``collect_runs``
    gives it; the SVM (one seed) is paired over folds with the baseline averaged over seeds.
    """
    rows = []
    for setting, in_setting in runs.groupby("setting", sort=False):
        base = in_setting[in_setting["condition"] == baseline]
        if base.empty:
            continue
        base_by_run = base.set_index(["fold", "seed"])["uar"]
        base_by_fold = base.groupby("fold")["uar"].mean()
        for condition, group in in_setting.groupby("condition", sort=False):
            if condition == baseline:
                continue
            if group["seed"].nunique() > 1 or condition != SVM_CONDITION:
                joined = pd.concat(
                    [group.set_index(["fold", "seed"])["uar"], base_by_run], axis=1, keys=["a", "b"]
                )
                joined = joined.dropna()
                if len(joined):
                    rows.append(_row(setting, condition, "fold x seed", joined["a"], joined["b"]))
            by_fold = group.groupby("fold")["uar"].mean()
            joined = pd.concat([by_fold, base_by_fold], axis=1, keys=["a", "b"]).dropna()
            if len(joined) >= 2:
                rows.append(_row(setting, condition, "fold", joined["a"], joined["b"]))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def svm_runs(root: Path, protocol: dict[str, Any]) -> pd.DataFrame:
    """The eGeMAPS + SVM reference's finished runs of a protocol folder (empty when it has none)."""
    rows = []
    for setting, description in protocol["settings"].items():
        for fold in description["folds"]:
            path = root / "results" / setting / SVM_CONDITION / "seed0" / f"fold{fold}" / "metrics.json"
            if path.is_file():
                stored = pd.read_json(path, typ="series")
                rows.append(
                    {
                        "setting": setting,
                        "condition": SVM_CONDITION,
                        "seed": 0,
                        "fold": fold,
                        "uar": stored["uar"],
                    }
                )
    return pd.DataFrame(rows, columns=["setting", "condition", "seed", "fold", "uar"])


def comparisons_of(output_dir: str | Path) -> pd.DataFrame:
    """``paired_comparisons`` of the finished runs (and the SVM's, if any) of a protocol folder."""
    root = results_root(output_dir)
    protocol, runs = collect_runs(root)
    svm = svm_runs(root, protocol)
    everything = pd.concat([runs[["setting", "condition", "seed", "fold", "uar"]], svm], ignore_index=True)
    return paired_comparisons(everything, protocol.get("baseline") or "BL")


def format_number(value: float, digits: int = 2, sign: bool = False) -> str:
    """A table cell: ``–`` for a missing value, else ``digits`` decimals (with a sign where asked)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def format_p(value: float) -> str:
    """A p-value cell: ``–`` when missing, ``<0.001`` below it, else three decimals."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _over(pairs_over: str) -> str:
    return f"{pairs_over} (secondary)" if pairs_over == "fold x seed" else pairs_over


def comparisons_markdown(table: pd.DataFrame, baseline: str = "BL") -> str:
    """The comparisons as a Markdown table (UAR points), with what the minimal detectable difference means."""
    lines = [
        f"Paired comparisons with {baseline} (UAR points): mean difference and its 95 % interval, paired "
        "t-test and Wilcoxon signed-rank p, and the minimal detectable difference (MDD: the smallest true "
        "difference this test finds with probability 0.8 at alpha 0.05, from the pairs' spread). The fold x seed "
        "rows are secondary: seeds share a fold's test speakers and overstate power. Speaker-level tests, "
        "Holm-adjusted over the report's family: `serlib pool`.",
        "",
        "| setting | condition | pairs over | pairs | Δ vs "
        + baseline
        + " | 95 % CI | t-test p | Wilcoxon p | MDD |",
        "|---|---|---|---:|---:|---|---:|---:|---:|",
    ]
    for row in table.to_dict("records"):
        interval = f"[{format_number(row['ci_low'], sign=True)}, {format_number(row['ci_high'], sign=True)}]"
        lines.append(
            f"| {row['setting']} | {row['condition']} | {_over(row['pairs_over'])} | {row['pairs']} | "
            f"{format_number(row['mean_difference'], sign=True)} | {interval} | {format_p(row['t_p'])} | "
            f"{format_p(row['wilcoxon_p'])} | {format_number(row['mdd'])} |"
        )
    return "\n".join(lines) + "\n"


def write_comparisons(output_dir: str | Path) -> pd.DataFrame:
    """``comparisons.csv`` and ``comparisons.md`` beside Table 1 of a protocol folder; returns the table."""
    root = results_root(output_dir)
    table = comparisons_of(root)
    protocol, _ = collect_runs(root)
    write_csv(table, root / "comparisons.csv", float_format="%.4f")
    write_text(comparisons_markdown(table, protocol.get("baseline") or "BL"), root / "comparisons.md")
    return table
