"""Did a reproduction work? Table 1 of a run folder against a shipped reference and its seed spread.

A reference (``serlib/references/<name>.csv`` + ``<name>.json``) holds Table 1 of one configuration:
per-seed UARs (the demo's reference grid, the real-speech runs) or mean/min/max over seeds (the
paper's Table 1). ``check_run`` finds the reference whose *comparison hash* equals the run's (the
configuration without what cannot change a result: seeds, paths, worker counts, t-SNE; see
``references.COMPARISON_EXCLUDED``), recomputes every run's UAR from its ``predictions.csv`` and, for each Table 1
cell (setting x condition; the seed mean and the paired difference to BL), says whether the run's
value lies in the range expected for its number of seeds:

    reference mean ± t_{1-a/2, n_ref-1} · sd_ref · sqrt(1/n_yours + 1/n_ref)

the prediction interval for the mean of ``n_yours`` new seeds when ``n_ref`` seeds gave mean and
standard deviation sd_ref (normal seeds, the user's seed spread equal to the reference's). ``a`` is
0.05 divided by the number of cells checked (Bonferroni), so that a correct reproduction is flagged
outside in any of its cells with probability at most 5 %, however many cells the table has.

A reference without per-seed values (the paper) gives min and max over n seeds: its sd is estimated
as (max - min) / d2(n), the expected range of n normal draws in units of sd (d2(10) = 3.078), and the
sd of a difference as sqrt(sd_condition² + sd_BL²) (the paper pairs no seeds).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from serlib.base import config as config_module
from serlib.base import metrics, provenance, run_schemas
from serlib.base.files import write_csv, write_json
from serlib.protocol.labeled import ProtocolError
from serlib.protocol.references import (
    Reference,
    comparison_config,
    comparison_hash,
    condition_differences,
    config_differences,
    find_reference,
    load_reference,
    reference_names,
    references_dir,
)
from serlib.protocol.table1 import collect_runs, results_root

FAMILY_ALPHA = 0.05
AGREES = "agrees"
OUTSIDE = "outside the expected spread"
NOT_COMPARABLE = "not comparable"
# Exit statuses of `serlib check` (2 is the CLI's own: an error before any check).
EXIT_AGREES, EXIT_OUTSIDE, EXIT_NOT_COMPARABLE = 0, 1, 3
QUANTITIES = ("mean", "delta")


class CheckError(ProtocolError):
    """A run folder or reference cannot be checked; the message names the file and the fix."""


# -- the expected range --------------------------------------------------------------------------------
def expected_range(
    mean: float, sd: float, n_reference: int, n_yours: int, level: float = 0.95, df: float | None = None
) -> tuple[float, float]:
    """The ``level`` prediction interval of the mean of ``n_yours`` seeds, from a reference of
    ``n_reference`` seeds with ``mean`` and standard deviation ``sd``:
    mean ± t_{(1+level)/2, df} · sd · sqrt(1/n_yours + 1/n_reference), df = n_reference - 1 by default."""
    if n_yours < 1 or n_reference < 2 or not math.isfinite(sd):
        return (math.nan, math.nan)
    t = float(stats.t.ppf(0.5 + level / 2.0, n_reference - 1 if df is None else df))
    half = t * sd * math.sqrt(1.0 / n_yours + 1.0 / n_reference)
    return (mean - half, mean + half)


# -- a run's values ---------------------------------------------------------------------------------
@dataclass
class RunScores:
    """A run folder's per-seed UARs (%, recomputed from predictions.csv) and what was noticed reading it."""

    root: Path
    protocol: dict[str, Any]
    config: dict[str, Any] | None
    scores: pd.DataFrame  # setting, condition, seed, uar
    notes: list[str] = field(default_factory=list)


def run_config(root: Path, protocol: dict[str, Any]) -> dict[str, Any] | None:
    """The run's configuration: ``results/protocol.json``'s copy (``serlib evaluate``), else the
    ``config.yaml`` that ``serlib reproduce`` writes; None when neither is there."""
    if isinstance(protocol.get("config"), dict):
        return dict(protocol["config"])
    path = root / "config.yaml"
    if path.is_file():
        return config_module.load(path).model_dump(mode="json")
    return None


def run_scores(folder: str | Path) -> RunScores:
    """Per (setting, condition, seed): the mean over the seed's folds of the UARs recomputed from each
    run's predictions (seeds missing a fold are left out, with a note)."""
    root = results_root(folder)
    try:
        protocol, runs = collect_runs(root)
    except (KeyError, TypeError) as error:
        raise CheckError(
            f"{root / 'results' / 'protocol.json'} lacks {error} (not written by this serlib's protocol): "
            "re-run `serlib evaluate` for this folder"
        ) from None
    notes: list[str] = []
    rows = []
    mismatched = 0
    for (setting, condition, seed), group in runs.groupby(["setting", "condition", "seed"], sort=False):
        expected = len(protocol["settings"][setting]["folds"])
        if len(group) < expected:
            notes.append(
                f"{setting} {condition} seed {seed}: {len(group)} of {expected} folds finished, left out"
            )
            continue
        uars = []
        for folder_name, stored, n_test in zip(group["folder"], group["uar"], group["n_test"], strict=True):
            path = Path(folder_name) / "predictions.csv"  # validated, row count against metrics.json
            predictions = run_schemas.read_predictions(path, None if pd.isna(n_test) else int(n_test))
            value = metrics.uar(predictions["true"], predictions["predicted"])
            mismatched += int(stored is not None and abs(float(stored) - value) > 1e-6)
            uars.append(value)
        rows.append(
            {
                "setting": setting,
                "condition": condition,
                "seed": int(seed),
                "uar": 100.0 * float(np.mean(uars)),
            }
        )
    if mismatched:
        notes.append(
            f"{mismatched} runs' metrics.json UAR differs from their predictions.csv (the check uses the predictions)"
        )
    scores = pd.DataFrame(rows, columns=["setting", "condition", "seed", "uar"])
    return RunScores(root, protocol, run_config(root, protocol), scores, notes)


# -- the check ----------------------------------------------------------------------------------------
@dataclass
class CheckResult:
    """The verdict of one run against one reference (``cells`` empty when not comparable)."""

    run: Path
    reference: str | None
    comparable: bool
    cells: pd.DataFrame
    level: float
    notes: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)

    @property
    def outside(self) -> pd.DataFrame:
        return self.cells[self.cells["verdict"] == OUTSIDE] if len(self.cells) else self.cells

    @property
    def exit_status(self) -> int:
        if not self.comparable:
            return EXIT_NOT_COMPARABLE
        if len(self.outside):
            return EXIT_OUTSIDE
        partly = self.cells["verdict"].str.startswith(NOT_COMPARABLE).any() if len(self.cells) else False
        return EXIT_NOT_COMPARABLE if partly else EXIT_AGREES

    @property
    def verdict(self) -> str:
        if not self.comparable:
            return NOT_COMPARABLE
        checked = self.cells[self.cells["verdict"].isin([AGREES, OUTSIDE])]
        if len(self.outside):
            return f"{len(self.outside)} of {len(checked)} cells {OUTSIDE}"
        if checked.empty:
            return "nothing to check: no cell of the run has a reference value"
        others = len(self.cells) - len(checked) - int(self.cells["verdict"].str.startswith("n/a").sum())
        return f"all {len(checked)} cells agree" + (
            f" ({others} not checked: see the table)" if others else ""
        )


def _run_cells(scores: pd.DataFrame, baseline: str) -> dict[tuple[str, str, str], tuple[float, int]]:
    cells: dict[tuple[str, str, str], tuple[float, int]] = {}
    for (setting, condition), group in scores.groupby(["setting", "condition"], sort=False):
        uar = group.set_index("seed")["uar"]
        cells[(setting, condition, "mean")] = (float(uar.mean()), len(uar))
        base = scores[(scores["setting"] == setting) & (scores["condition"] == baseline)]
        if condition != baseline and not base.empty:
            diff = (uar - base.set_index("seed")["uar"]).dropna()
            if len(diff):
                cells[(setting, condition, "delta")] = (float(diff.mean()), len(diff))
    return cells


def check_run(
    folder: str | Path,
    reference: str | None = None,
    references: Path | None = None,
    alpha: float = FAMILY_ALPHA,
) -> CheckResult:
    """Check the run folder against the reference with its comparison hash (or the one named)."""
    run = run_scores(folder)
    notes = list(run.notes)
    if run.config is None:
        raise CheckError(
            f"{run.root} holds no configuration (neither results/protocol.json's 'config' nor config.yaml): "
            "re-run `serlib evaluate` with this serlib to record it"
        )
    key = comparison_hash(run.config)
    if reference is None:
        chosen = find_reference(key, references)
    else:
        chosen = load_reference(reference, references)
    if chosen is None or chosen.meta.get("comparison_sha256") != key:
        return _not_comparable(run, key, chosen, references, notes)
    ref_cells = chosen.cells()
    mine = _run_cells(run.scores, chosen.baseline)
    conditions = [c["name"] for c in run.protocol["conditions"]]
    settings = [s for s in ("within", "cross") if s in run.protocol["settings"]]
    rows = []
    for setting in settings:
        for quantity in QUANTITIES:
            for condition in conditions:
                rows.append(_row(setting, condition, quantity, mine, ref_cells, chosen.baseline))
    cells = pd.DataFrame(rows)
    differing = condition_differences(run.config, chosen.meta.get("conditions", []))
    for index, row in cells.iterrows():
        culprit = next((c for c in (row["condition"], chosen.baseline) if c in differing), None)
        if culprit is not None and (culprit == row["condition"] or row["quantity"] == "delta"):
            cells.loc[index, "verdict"] = f"{NOT_COMPARABLE} ({culprit} {differing[culprit]})"
    checkable = int((cells["verdict"] == "pending").sum())
    level = 1.0 - alpha / max(checkable, 1)
    for index, row in cells[cells["verdict"] == "pending"].iterrows():
        low, high = expected_range(
            row["reference"], row["sd"], int(row["n_reference"]), int(row["n_yours"]), level
        )
        cells.loc[index, ["low", "high"]] = [low, high]
        if math.isnan(low):
            cells.loc[index, "verdict"] = "no spread known"
        else:
            cells.loc[index, "verdict"] = AGREES if low <= row["yours"] <= high else OUTSIDE
    reference_seeds = sorted(int(s) for s in chosen.values["seed"].unique()) if chosen.per_seed else None
    your_seeds = sorted(int(s) for s in run.scores["seed"].unique())
    if reference_seeds is not None and set(your_seeds) & set(reference_seeds):
        notes.append(
            f"your seeds {_seeds(your_seeds)} include the reference's "
            f"{_seeds(sorted(set(your_seeds) & set(reference_seeds)))}: "
            "on the reference's machine and versions they repeat its values"
        )
    result = CheckResult(run.root, chosen.name, True, cells, level, notes)
    if len(result.outside):
        result.differences = _what_differs(run, chosen, your_seeds)
    return result


def _row(
    setting: str,
    condition: str,
    quantity: str,
    mine: dict[tuple[str, str, str], tuple[float, int]],
    ref_cells: pd.DataFrame,
    baseline: str,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "setting": setting,
        "condition": condition,
        "quantity": quantity,
        "yours": math.nan,
        "n_yours": 0,
        "reference": math.nan,
        "sd": math.nan,
        "n_reference": 0,
        "sd_source": "",
        "low": math.nan,
        "high": math.nan,
        "verdict": "pending",
    }
    if quantity == "delta" and condition == baseline:
        row["verdict"] = "n/a (the baseline)"
        return row
    match = (
        ref_cells[
            (ref_cells["setting"] == setting)
            & (ref_cells["condition"] == condition)
            & (ref_cells["quantity"] == quantity)
        ]
        if len(ref_cells)
        else ref_cells
    )
    if (setting, condition, quantity) in mine:
        row["yours"], row["n_yours"] = mine[(setting, condition, quantity)]
    if len(match):
        ref = match.iloc[0]
        row.update(
            reference=ref["value"], sd=ref["sd"], n_reference=int(ref["n"]), sd_source=ref["sd_source"]
        )
    if math.isnan(row["yours"]):
        row["verdict"] = "not in your run"
    elif math.isnan(row["reference"]):
        row["verdict"] = "not in the reference"
    return row


def _not_comparable(
    run: RunScores, key: str, chosen: Reference | None, references: Path | None, notes: list[str]
) -> CheckResult:
    assert run.config is not None
    name = run.config.get("name")
    if chosen is None:  # the reference for the same preset name, to say what differs from it
        candidates = [load_reference(n, references) for n in reference_names(references)]
        chosen = next((r for r in candidates if r.meta.get("preset") == name), None)
    differences = [f"comparison hash {key[:12]} (your run)"]
    if chosen is None:
        differences.append(f"no shipped reference has this hash or the name {name!r}")
    else:
        differences[0] += (
            f" against {str(chosen.meta.get('comparison_sha256'))[:12]} (reference {chosen.name})"
        )
        for dotted, mine, theirs in config_differences(
            comparison_config(run.config), chosen.meta.get("config", {})
        )[:12]:
            differences.append(f"{dotted}: yours {json.dumps(mine)}, reference {json.dumps(theirs)}")
    result = CheckResult(run.root, chosen.name if chosen else None, False, pd.DataFrame(), math.nan, notes)
    result.differences = differences
    return result


def _what_differs(run: RunScores, reference: Reference, your_seeds: list[int]) -> list[str]:
    """What separates the run from the reference: preset, full config hash, seeds, commit, environment."""
    lines = []
    assert run.config is not None
    meta = reference.meta
    lines.append(f"preset: yours {run.config.get('name')!r}, reference {meta.get('preset')!r}")
    lines.append(
        f"config sha256 (all keys): yours {provenance.config_hash(config_module.from_dict(run.config))[:12]}, "
        f"reference {str(meta.get('config_sha256'))[:12]}"
    )
    lines.append(f"seeds: yours {_seeds(your_seeds)}, reference {_seeds(meta.get('seeds', []))}")
    try:
        record = provenance.load(run.root)
    except provenance.ProvenanceError as error:
        lines.append(f"environment unknown: {error}")
        return lines
    commit = record.get("serlib", {}).get("commit")
    lines.append(f"commit: yours {str(commit)[:12]}, reference {str(meta.get('commit'))[:12]}")
    theirs = meta.get("environment")
    if not theirs:
        lines.append(f"the reference records no environment ({meta.get('source', 'no source given')})")
        return lines
    mine = provenance.environment_items(record)
    decisive = [
        label
        for label in (
            "CPU",
            "CPU instruction sets",
            "GPUs",
            "oneDNN",
            "TensorFlow threads",
            *provenance.DECISIVE,
        )
    ]
    changed = [
        label
        for label in sorted(set(mine) | set(theirs))
        if mine.get(label, "absent") != theirs.get(label, "absent")
    ]
    ordered = [label for label in decisive if label in changed] + [
        label for label in changed if label not in decisive
    ]
    for label in ordered[:12]:
        lines.append(f"{label}: yours {mine.get(label, 'absent')}, reference {theirs.get(label, 'absent')}")
    if len(ordered) > 12:
        lines.append(f"... and {len(ordered) - 12} more environment items (serlib provenance {run.root})")
    if not ordered:
        lines.append("environment: identical to the reference's (CPU, packages, threads, oneDNN)")
    return lines


def _seeds(seeds: Any) -> str:
    values = sorted(int(s) for s in seeds)
    if len(values) > 2 and values == list(range(values[0], values[-1] + 1)):
        return f"{values[0]}-{values[-1]}"
    return ", ".join(map(str, values)) or "none"


# -- text -------------------------------------------------------------------------------------------
def _n(value: Any, sign: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:+.2f}" if sign else f"{value:.2f}"


def check_markdown(result: CheckResult) -> str:
    """The check as Markdown: the verdict, the rule, one table row per cell, what differs, notes."""
    lines = [f"serlib check {result.run}: **{result.verdict}**"]
    if not result.comparable:
        lines += [
            "",
            f"The run's configuration is not the reference's{f' ({result.reference})' if result.reference else ''}: "
            "its numbers cannot be compared (exit status 3). What differs:",
            "",
            *[f"- {line}" for line in result.differences],
        ]
        return "\n".join(lines + _notes(result.notes)) + "\n"
    lines += [
        "",
        f"Reference: {result.reference}. Expected range: reference mean ± t_(n_ref-1) · sd_ref · "
        f"sqrt(1/n_yours + 1/n_ref) at {100 * result.level:.2f} % per cell "
        f"({100 * (1 - FAMILY_ALPHA):.0f} % for all cells together, Bonferroni); UAR in %, "
        "Δ = condition - BL paired by seed.",
        "",
        "| setting | condition | quantity | yours (seeds) | reference (seeds) | ref. sd | expected range | verdict |",
        "|---|---|---|---:|---:|---:|---|---|",
    ]
    for row in result.cells.to_dict("records"):
        delta = row["quantity"] == "delta"
        interval = "–" if math.isnan(row["low"]) else f"[{_n(row['low'], delta)}, {_n(row['high'], delta)}]"
        lines.append(
            f"| {row['setting']} | {row['condition']} | {'Δ vs BL' if delta else 'mean'} | "
            f"{_n(row['yours'], delta)} ({row['n_yours']}) | {_n(row['reference'], delta)} ({row['n_reference']}) | "
            f"{_n(row['sd'])} | {interval} | {row['verdict']} |"
        )
    if result.differences:
        lines += ["", "What differs between your run and the reference:", ""]
        lines += [f"- {line}" for line in result.differences]
    return "\n".join(lines + _notes(result.notes)) + "\n"


def _notes(notes: list[str]) -> list[str]:
    return ["", *[f"Note: {note}" for note in notes]] if notes else []


# -- writing a reference ----------------------------------------------------------------------------
def write_reference(
    folder: str | Path,
    name: str,
    command: str,
    config: config_module.Config | None = None,
    references: Path | None = None,
    source: str = "",
) -> list[Path]:
    """``<references>/<name>.csv`` (per-seed UARs of every Table 1 cell) and ``<name>.json`` (machine,
    versions, config hashes, commit, seeds and ``command``) from a finished run folder."""
    run = run_scores(folder)
    data = config.model_dump(mode="json") if config is not None else run.config
    if data is None:
        raise CheckError(f"{run.root} holds no configuration; pass the one that produced it")
    if run.scores.empty:
        raise CheckError(f"{run.root} holds no finished runs to make a reference from")
    target = references_dir() if references is None else Path(references)
    record = provenance.load(run.root)
    meta = {
        "name": name,
        "preset": data.get("name"),
        "format": "per_seed",
        "baseline": run.protocol.get("baseline") or "BL",
        "comparison_sha256": comparison_hash(data),
        "config_sha256": provenance.config_hash(config_module.from_dict(data)),
        "config": comparison_config(data),
        "conditions": data["protocol"]["conditions"],
        "seeds": sorted(int(s) for s in run.scores["seed"].unique()),
        "commit": record.get("serlib", {}).get("commit"),
        "dirty": record.get("serlib", {}).get("dirty"),
        "command": command,
        "written": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": record.get("machine", {}).get("cpu", {}),
        "packages": record.get("packages", {}),
        "environment": provenance.environment_items(record),
        "source": source or f"runs of {run.root.name} on the machine above",
        "notes": run.notes,
    }
    values = run.scores.sort_values(["setting", "condition", "seed"], key=_order(run.protocol))
    csv_path = write_csv(values, target / f"{name}.csv", float_format="%.4f")
    json_path = write_json(meta, target / f"{name}.json")
    return [csv_path, json_path]


def _order(protocol: dict[str, Any]) -> Any:
    conditions = [c["name"] for c in protocol["conditions"]]
    settings = ["within", "cross"]

    def key(column: pd.Series) -> pd.Series:
        if column.name == "setting":
            return column.map(settings.index)
        if column.name == "condition":
            return column.map(conditions.index)
        return column

    return key
