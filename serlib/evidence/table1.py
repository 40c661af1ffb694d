"""Table 1 and its statistics: per condition and setting the mean, min and max UAR over seeds (the
paper's numbers), a 95 % interval and paired tests against the baseline, from the stored runs.

A seed's within-corpus UAR is the mean of its fold UARs (as the paper; the UAR of the seed's pooled
predictions is kept as ``*_pooled_mean``). ``summarise`` writes ``runs.csv``, ``table1.csv``,
``table1.md`` and Figure 2; ``render_table`` re-renders them from an output folder.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from serlib.base import metrics, provenance, run_schemas
from serlib.base.files import exclusive_lock, write_csv, write_text
from serlib.evidence import results_folder
from serlib.evidence.figure2 import figure2
from serlib.protocol.folds import SETTINGS
from serlib.protocol.labeled import ProtocolError
from serlib.protocol.run_files import protocol_lock, run_folder

RUN_COLUMNS = (
    "setting",
    "condition",
    "seed",
    "fold",
    "uar",
    "accuracy",
    "arousal_uar",
    "valence_uar",
    "n_train",
    "n_test",
    "epochs",
    "final_loss",
    "train_seconds",
)


def results_root(path: str | Path) -> Path:
    """The run folder of ``path`` (its ``results/protocol.json``); a results folder of ``serlib export``
    is read through its run-folder copy (``results_folder.resolve``), so every reader takes either."""
    path = results_folder.resolve(path)
    if (path / "results" / "protocol.json").is_file():
        return path
    if (path / "protocol.json").is_file() and path.name == "results":
        return path.parent
    raise ProtocolError(
        f"{path} holds no protocol results (expected {path}/results/protocol.json); "
        "give the output folder of `serlib evaluate`"
    )


def collect_runs(output_dir: str | Path) -> tuple[dict[str, Any], pd.DataFrame]:
    """The protocol description and one row per finished run of the configured grid. Every file is
    validated on read (``run_schemas``): a damaged ``protocol.json`` or ``metrics.json``, or one that
    describes another run than its folder's, is a RunFileError naming it."""
    root = results_root(output_dir)
    protocol = run_schemas.read_protocol(root / "results" / "protocol.json")
    rows = []
    names = [c["name"] for c in protocol["conditions"]]
    for setting, description in protocol["settings"].items():
        for condition in names:
            expected = protocol.get("fingerprints", {}).get(f"{setting}/{condition}")
            for seed in protocol["seeds"]:
                for fold in description["folds"]:
                    path = run_folder(root, setting, condition, seed, fold) / "metrics.json"
                    if not path.is_file():
                        continue
                    stored = run_schemas.read_metrics(path)
                    if expected is not None and stored.get("fingerprint") != expected:
                        continue  # computed with other parameters: not part of this protocol's results
                    _same_run(
                        path, stored, {"setting": setting, "condition": condition, "seed": seed, "fold": fold}
                    )
                    rows.append(
                        {column: stored.get(column) for column in RUN_COLUMNS} | {"folder": str(path.parent)}
                    )
    frame = pd.DataFrame(rows, columns=[*RUN_COLUMNS, "folder"])
    return protocol, frame


def _same_run(path: Path, stored: dict[str, Any], key: dict[str, Any]) -> None:
    """A metrics.json copied into another run's folder would be counted as that run: refuse it."""
    for field, value in key.items():
        if stored[field] != value:
            run_schemas.fail(path, field, f"{stored[field]!r}, but the folder is that of {field} {value!r}")


def _keys(runs: pd.DataFrame) -> set[tuple[str, str, int, int]]:
    return {(str(r.setting), str(r.condition), int(r.seed), int(r.fold)) for r in runs.itertuples()}


def completeness(protocol: dict[str, Any], runs: pd.DataFrame) -> tuple[int, int]:
    """(distinct finished runs in ``runs``, runs of the complete grid of ``protocol``); ``runs`` has the
    columns setting, condition, seed, fold (``collect_runs``' rows, or predictions)."""
    folds = sum(len(setting["folds"]) for setting in protocol["settings"].values())
    return len(_keys(runs)), len(protocol["conditions"]) * len(protocol["seeds"]) * folds


def incomplete_note(protocol: dict[str, Any], runs: pd.DataFrame) -> str:
    """ "incomplete: N of M runs finished (missing: ...)", or "" for a complete grid."""
    found, expected = completeness(protocol, runs)
    if found >= expected:
        return ""
    have = _keys(runs)
    missing = [
        f"{setting} {c['name']} seed {seed} fold {fold}"
        for setting, description in protocol["settings"].items()
        for c in protocol["conditions"]
        for seed in protocol["seeds"]
        for fold in description["folds"]
        if (setting, c["name"], seed, fold) not in have
    ]
    more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
    return f"incomplete: {found} of {expected} runs finished (missing: {', '.join(missing[:3])}{more})"


def _seed_scores(runs: pd.DataFrame) -> pd.DataFrame:
    """Per seed: mean fold UAR (the paper's), pooled UAR over the seed's folds, and the fold count."""
    rows = []
    for seed, group in runs.groupby("seed", sort=True):
        predictions = pd.concat(
            [
                run_schemas.read_predictions(Path(f) / "predictions.csv", None if pd.isna(n) else int(n))
                for f, n in zip(group["folder"], group["n_test"], strict=True)
            ]
        )
        rows.append(
            {
                "seed": int(seed),
                "uar": float(group["uar"].mean()),
                "pooled_uar": metrics.uar(predictions["true"], predictions["predicted"]),
                "folds": len(group),
            }
        )
    return pd.DataFrame(rows, columns=["seed", "uar", "pooled_uar", "folds"])


def table1(protocol: dict[str, Any], runs: pd.DataFrame) -> pd.DataFrame:
    """Table 1 (UAR in %): one row per configured condition; per setting mean/min/max over seeds, the
    pooled alternative, std, 95 % CI, seed and fold counts, and the paired test against BL."""
    baseline = protocol.get("baseline")
    names = [c["name"] for c in protocol["conditions"]]
    sources = {c["name"]: c["autoencoder_corpus"] for c in protocol["conditions"]}
    scores = {
        (setting, name): _seed_scores(runs[(runs["setting"] == setting) & (runs["condition"] == name)])
        for setting in protocol["settings"]
        for name in names
    }
    rows = []
    for name in names:
        row: dict[str, Any] = {"condition": name, "autoencoder_corpus": sources[name]}
        for setting in SETTINGS:
            per_seed = scores.get((setting, name))
            prefix = f"{setting}_"
            if per_seed is None or per_seed.empty:
                row.update({prefix + k: math.nan for k in ("mean", "min", "max", "std", "ci_low", "ci_high")})
                row.update({prefix + "pooled_mean": math.nan, prefix + "seeds": 0, prefix + "folds": 0})
                row.update({prefix + k: math.nan for k in ("delta_vs_bl", "t_p", "wilcoxon_p")})
                continue
            summary = metrics.summarise(per_seed["uar"])
            for k in ("mean", "min", "max", "std", "ci_low", "ci_high"):
                row[prefix + k] = 100.0 * summary[k]
            row[prefix + "pooled_mean"] = 100.0 * float(per_seed["pooled_uar"].mean())
            row[prefix + "seeds"] = int(len(per_seed))
            row[prefix + "folds"] = int(per_seed["folds"].min())
            row.update(_against_baseline(per_seed, scores.get((setting, baseline)), name == baseline, prefix))
        rows.append(row)
    return pd.DataFrame(rows)


def _against_baseline(
    per_seed: pd.DataFrame, base: pd.DataFrame | None, is_baseline: bool, prefix: str
) -> dict[str, float]:
    empty = {prefix + "delta_vs_bl": math.nan, prefix + "t_p": math.nan, prefix + "wilcoxon_p": math.nan}
    if is_baseline or base is None or base.empty:
        return empty
    paired = per_seed.merge(base, on="seed", suffixes=("", "_bl"))
    if paired.empty:
        return empty
    test = metrics.paired_test(paired["uar"], paired["uar_bl"])
    return {
        prefix + "delta_vs_bl": 100.0 * test["mean_difference"],
        prefix + "t_p": test["t_p"],
        prefix + "wilcoxon_p": test["wilcoxon_p"],
    }


def _number(value: Any, digits: int = 2) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _p_value(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def table_markdown(protocol: dict[str, Any], table: pd.DataFrame, runs: pd.DataFrame | None = None) -> str:
    """Table 1 in the paper's layout (Markdown), followed by the confidence intervals and paired tests;
    with ``runs``, a first line "incomplete: N of M runs finished" where runs of the grid are missing."""
    settings = protocol["settings"]
    heads = []
    for setting in SETTINGS:
        if setting in settings:
            corpus = settings[setting]["test_corpus"]
            heads.append(
                f"{corpus} (within, LOSO)"
                if setting == "within"
                else f"{corpus} (cross, from {settings[setting]['train_corpus']})"
            )
        else:
            heads.append(f"{setting} (not run)")
    stamp = provenance.stamp_text(protocol.get("provenance"))
    note = incomplete_note(protocol, runs) if runs is not None else ""
    lines = [f"**{note}**", ""] if note else []
    lines += [
        f"Table 1: UAR (%) of protocol '{protocol.get('name', '')}', mean/min/max over seeds "
        f"(a seed's within-corpus UAR is the mean over its folds){'; ' + stamp if stamp else ''}.",
        "",
        f"| Condition | {heads[0]} μ | min | max | {heads[1]} μ | min | max |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in table.to_dict("records"):
        cells = [row["condition"]]
        for setting in SETTINGS:
            cells += [_number(row[f"{setting}_{k}"]) for k in ("mean", "min", "max")]
        lines.append("| " + " | ".join(cells) + " |")
    baseline = protocol.get("baseline") or "BL"
    lines += [
        "",
        f"Beyond the paper: 95 % t confidence interval of the mean over seeds, difference to {baseline} and "
        f"paired tests against {baseline} over seeds (t-test; Wilcoxon signed-rank), pooled-prediction UAR.",
        "",
        "| Condition | Setting | seeds | folds | 95 % CI | Δ vs BL | t-test p | Wilcoxon p | pooled UAR |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    for row in table.to_dict("records"):
        for setting in SETTINGS:
            if setting not in settings:
                continue
            interval = metrics.interval_text(
                row[f"{setting}_ci_low"], row[f"{setting}_ci_high"], int(row[f"{setting}_seeds"] or 0)
            )
            delta = row[f"{setting}_delta_vs_bl"]
            lines.append(
                f"| {row['condition']} | {setting} | {row[f'{setting}_seeds']} | "
                f"{row[f'{setting}_folds']} | {interval} | "
                f"{'–' if isinstance(delta, float) and math.isnan(delta) else f'{delta:+.2f}'} | "
                f"{_p_value(row[f'{setting}_t_p'])} | {_p_value(row[f'{setting}_wilcoxon_p'])} | "
                f"{_number(row[f'{setting}_pooled_mean'])} |"
            )
    return "\n".join(lines) + "\n"


def summarise(
    output_dir: str | Path, write_figures: bool = True, figure_folders: Iterable[str | Path] | None = None
) -> pd.DataFrame:
    """Write runs.csv, table1.csv, table1.md (and Figure 2) from the stored runs; returns Table 1."""
    root = results_root(output_dir)
    protocol, runs = collect_runs(root)
    write_csv(runs.drop(columns=["folder"]), root / "runs.csv", float_format="%.6f")
    table = table1(protocol, runs)
    write_csv(table, root / "table1.csv", float_format="%.4f")
    write_text(table_markdown(protocol, table, runs), root / "table1.md")
    if write_figures and not runs.empty:
        figure2(protocol, runs, table, figure_folders or [root / "figures"])
    return table


def render_table(results_dir: str | Path) -> str:
    """Re-render Table 1 (Markdown) from the stored runs of an output folder, without training; also
    rewrites runs.csv, table1.csv and table1.md there."""
    root = results_root(results_dir)
    with exclusive_lock(protocol_lock(root)):
        summarise(root, write_figures=False)
        return (root / "table1.md").read_text(encoding="utf-8")


def written_table(output_dir: str | Path) -> str:
    """Table 1 (Markdown) as the last finished sitting in ``output_dir`` wrote it."""
    with exclusive_lock(protocol_lock(output_dir)):
        return (Path(output_dir) / "table1.md").read_text(encoding="utf-8")
