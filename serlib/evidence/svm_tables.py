"""Table 1 with the eGeMAPS + SVM reference as an extra row, its chosen C per fold, and the confusion
matrices with it: read from the SVM's run folders (``serlib.protocol.svm`` trains them).

The SVM is deterministic, so it has one "seed" (min = max = mean; no interval over seeds); its delta is
against the baseline condition's mean over seeds, and its p-values come from a paired test over folds.
Command line: ``serlib svm --config configs/emodb.yaml`` (after training) and ``serlib table --svm``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from serlib.base import metrics, run_schemas
from serlib.base.files import write_csv, write_text
from serlib.data.manifest import EMOTIONS
from serlib.evidence.figure2 import confusion_by_condition
from serlib.evidence.table1 import RUN_COLUMNS, collect_runs, results_root, table1, table_markdown
from serlib.protocol.run_files import run_folder
from serlib.protocol.svm import CONDITION, SEED, BaselineError


def baseline_runs(output_dir: str | Path, protocol: dict[str, Any]) -> pd.DataFrame:
    """The SVM's finished runs in ``collect_runs``' row format."""
    rows = []
    for setting, description in protocol["settings"].items():
        for fold in description["folds"]:
            folder = run_folder(output_dir, setting, CONDITION, SEED, fold)
            path = folder / "metrics.json"
            if path.is_file():
                stored = run_schemas.read_metrics(path)
                rows.append({c: stored.get(c) for c in RUN_COLUMNS} | {"folder": str(folder)})
    return pd.DataFrame(rows, columns=[*RUN_COLUMNS, "folder"])


def table_with_baseline(output_dir: str | Path) -> str:
    """Table 1 (Markdown) of the stored ACNN runs plus the eGeMAPS-SVM row; also written to
    ``<output_dir>/table1_with_svm.md`` and ``.csv``."""
    root = results_root(output_dir)
    protocol, runs = collect_runs(root)
    svm = baseline_runs(root, protocol)
    if svm.empty:
        raise BaselineError(f"{root} holds no {CONDITION} runs; run `serlib svm` first")
    protocol = dict(protocol)
    protocol["conditions"] = [*protocol["conditions"], {"name": CONDITION, "autoencoder_corpus": "none"}]
    combined = pd.concat([runs, svm], ignore_index=True) if not runs.empty else svm
    table = table1(protocol, combined)
    baseline = protocol.get("baseline")
    lines = []
    for setting in protocol["settings"]:
        # The SVM has one run, so the paired test over seeds does not apply: its Δ is against BL's
        # mean over seeds, and within-corpus it is tested over folds (SVM fold UAR vs BL's fold UAR
        # averaged over seeds).
        row = table.index[table["condition"] == CONDITION][0]
        base = table.loc[table["condition"] == baseline, f"{setting}_mean"]
        delta = float(table.loc[row, f"{setting}_mean"] - base.iloc[0]) if len(base) else math.nan
        table.loc[row, [f"{setting}_delta_vs_bl", f"{setting}_t_p", f"{setting}_wilcoxon_p"]] = [
            delta,
            math.nan,
            math.nan,
        ]
        ours = svm[svm["setting"] == setting].set_index("fold")["uar"]
        theirs = (
            runs[(runs["setting"] == setting) & (runs["condition"] == baseline)].groupby("fold")["uar"].mean()
        )
        paired = pd.concat([ours, theirs], axis=1, keys=["svm", "bl"]).dropna()
        if len(paired) >= 2:
            test = metrics.paired_test(paired["svm"], paired["bl"])
            table.loc[row, [f"{setting}_t_p", f"{setting}_wilcoxon_p"]] = [test["t_p"], test["wilcoxon_p"]]
            lines.append(
                f"{CONDITION} vs {baseline}, {setting}: paired over {len(paired)} folds (BL averaged over seeds per "
                f"fold): mean difference {100 * test['mean_difference']:+.2f} points, t-test p "
                f"{test['t_p']:.3f}, Wilcoxon p {test['wilcoxon_p']:.3f}."
            )
    text = table_markdown(protocol, table)
    text += "\n" + c_markdown(root, protocol)
    text += (
        f"\n{CONDITION}: eGeMAPSv02 functionals (88) + standardised linear SVM, C tuned by GroupKFold over the "
        f"training sessions; deterministic, so one run per fold (no interval over seeds); its Δ is against "
        f"{baseline}'s mean over seeds, and its p-values (where given) come from a paired test over folds.\n"
    )
    if lines:
        text += "\n" + "\n".join(lines) + "\n"
    write_csv(table, root / "table1_with_svm.csv", float_format="%.4f")
    write_text(text, root / "table1_with_svm.md")
    return text


def c_markdown(output_dir: str | Path, protocol: dict[str, Any]) -> str:
    """Per SVM run: the chosen C, its inner-CV UAR and the inner-CV curve (UAR % by C), from each
    run's ``metrics.json``, so the tuning is visible in the report."""
    rows = []
    for setting, description in protocol["settings"].items():
        for fold in description["folds"]:
            path = run_folder(output_dir, setting, CONDITION, SEED, fold) / "metrics.json"
            if path.is_file():
                stored = run_schemas.read_metrics(path)
                rows.append((setting, fold, stored))
    if not rows:
        return ""
    grid = list(rows[0][2].get("inner_cv_uar_by_c", {}))
    lines = [
        f"{CONDITION}: chosen C per fold and the inner-CV UAR (%, GroupKFold over the training sessions) by C:",
        "",
        "| setting | fold | test UAR | chosen C | inner UAR at C | "
        + " | ".join(f"C={float(c):g}" for c in grid)
        + " |",
        "|---|---:|---:|---:|---:|" + "---:|" * len(grid),
    ]
    for setting, fold, stored in rows:
        curve = stored.get("inner_cv_uar_by_c", {})
        lines.append(
            f"| {setting} | {fold} | {100 * stored['uar']:.2f} | {stored.get('best_c', math.nan):g} | "
            f"{100 * stored.get('inner_cv_uar', math.nan):.2f} | "
            + " | ".join(f"{100 * curve[c]:.1f}" if c in curve else "–" for c in grid)
            + " |"
        )
    return "\n".join(lines) + "\n"


def confusion_markdown(output_dir: str | Path) -> str:
    """Mean row-normalised confusion matrices (%, rows = true class) per setting and condition, the
    eGeMAPS-SVM included: per seed, the counts pooled over its folds; then the mean over seeds."""
    root = results_root(output_dir)
    protocol, runs = collect_runs(root)
    svm = baseline_runs(root, protocol)
    protocol = dict(protocol)
    if not svm.empty:
        protocol["conditions"] = [*protocol["conditions"], {"name": CONDITION, "autoencoder_corpus": "none"}]
        runs = pd.concat([runs, svm], ignore_index=True) if not runs.empty else svm
    lines = []
    for setting, description in protocol["settings"].items():
        matrices = confusion_by_condition(protocol, runs, setting)
        corpus = description["test_corpus"]
        for condition, matrix in matrices.items():
            lines += [
                f"{setting} ({corpus}), {condition}: rows true, columns predicted, % of the true class",
                "",
                "| true \\ predicted | " + " | ".join(EMOTIONS) + " |",
                "|---|" + "---:|" * len(EMOTIONS),
            ]
            for i, name in enumerate(EMOTIONS):
                lines.append(f"| {name} | " + " | ".join(f"{100 * v:.1f}" for v in matrix[i]) + " |")
            lines.append("")
    return "\n".join(lines)
