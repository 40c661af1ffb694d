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

import functools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from serlib.base import config as config_module
from serlib.base import metrics, provenance, run_schemas
from serlib.evidence import check_power, check_seeds, check_text, reference_write
from serlib.evidence.check_completeness import Completeness, count_runs
from serlib.evidence.references import (
    Reference,
    comparison_config,
    comparison_hash,
    condition_differences,
    config_differences,
    find_reference,
    load_reference,
    record_family,
    reference_names,
)
from serlib.evidence.table1 import collect_runs, results_root
from serlib.protocol.labeled import ProtocolError

FAMILY_ALPHA = check_seeds.FAMILY_ALPHA
AGREES = "agrees"
OUTSIDE = "outside the expected spread"
NOT_SAME = check_seeds.NOT_SAME
NOT_COMPARABLE = "not comparable"
SEED_BY_SEED, INTERVAL = check_seeds.SEED_BY_SEED, check_seeds.INTERVAL
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
    completeness: Completeness | None = None


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
        for folder_name, stored in zip(group["folder"], group["uar"], strict=True):
            path = Path(folder_name) / "predictions.csv"  # validated; a short one: count_runs' incomplete
            predictions = run_schemas.read_predictions(path)
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
    return RunScores(root, protocol, run_config(root, protocol), scores, notes, count_runs(protocol, runs))


# -- the check ----------------------------------------------------------------------------------------
@dataclass
class CheckResult:
    """The verdict of one run against one reference (``cells`` empty when not comparable): one row per
    (setting, condition, quantity, rule), the per-seed comparisons behind the seed-by-seed rows
    (``seeds``), and the completeness of the run folder."""

    run: Path
    reference: str | None
    comparable: bool
    cells: pd.DataFrame
    level: float
    notes: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)
    seeds: pd.DataFrame = field(default_factory=pd.DataFrame)
    completeness: Completeness | None = None
    power: dict[str, Any] = field(default_factory=dict)

    @property
    def outside(self) -> pd.DataFrame:
        return self.cells[self.cells["verdict"].isin([OUTSIDE, NOT_SAME])] if len(self.cells) else self.cells

    @property
    def incomplete(self) -> bool:
        return self.completeness is not None and not self.completeness.ok

    @property
    def exit_status(self) -> int:
        if not self.comparable:
            return EXIT_NOT_COMPARABLE
        if len(self.outside) or self.incomplete:
            return EXIT_OUTSIDE
        partly = self.cells["verdict"].str.startswith(NOT_COMPARABLE).any() if len(self.cells) else False
        return EXIT_NOT_COMPARABLE if partly else EXIT_AGREES

    @property
    def verdict(self) -> str:
        if not self.comparable:
            return NOT_COMPARABLE
        checked = self.cells[self.cells["verdict"].isin([AGREES, OUTSIDE, NOT_SAME])]
        parts = [self.completeness.text()] if self.incomplete and self.completeness is not None else []
        not_same = int((self.cells["verdict"] == NOT_SAME).sum()) if len(self.cells) else 0
        if not_same:
            parts.append(f"{NOT_SAME}: {not_same} of {len(checked)} rows differ from the reference's values")
        outside = len(self.outside) - not_same
        if outside:
            parts.append(f"{outside} of {len(checked)} rows {OUTSIDE}")
        if parts:
            return "; ".join(parts)
        if checked.empty:
            return "nothing to check: no cell of the run has a reference value"
        cells = len(checked.drop_duplicates(["setting", "condition", "quantity"]))
        others = len(self.cells) - len(checked) - int(self.cells["verdict"].str.startswith("n/a").sum())
        return f"all {cells} cells agree{self._how()}" + (
            f" ({others} not checked: see the table)" if others else ""
        )

    def _how(self) -> str:
        """How the cells were compared: which seeds exactly, within the tolerance, by the interval."""
        parts = []
        if len(self.seeds):
            for (rule, family), group in self.seeds.groupby(["rule", "family"], sort=False):
                how = "exactly" if rule == check_seeds.EXACT else f"within ±{group['allowed'].max():.2f}"
                parts.append(f"seed by seed, seeds {_seeds(set(group['seed']))} {how} ({family} values)")
        interval = self.cells[(self.cells["rule"] == INTERVAL) & self.cells["verdict"].isin([AGREES])]
        if len(interval):
            parts.append(f"{int(interval['n_yours'].max())} new seeds by the prediction interval")
        return f": {'; '.join(parts)}" if parts else ""


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


def _new_seed_scores(scores: pd.DataFrame, reference: Reference) -> pd.DataFrame:
    """The run's (setting, condition, seed) values whose seed the reference lacks for that cell."""
    if not reference.per_seed or scores.empty:
        return scores
    known = set(
        zip(reference.values["setting"], reference.values["condition"], reference.values["seed"], strict=True)
    )
    keys = zip(scores["setting"], scores["condition"], scores["seed"], strict=True)
    return scores[[key not in known for key in keys]]


def check_run(
    folder: str | Path,
    reference: str | None = None,
    references: Path | None = None,
    alpha: float = FAMILY_ALPHA,
) -> CheckResult:
    """Check the run folder against the reference with its comparison hash (or the one named): its
    seeds that the reference has seed by seed (``check_seeds``), its other seeds by the prediction
    interval; completeness first (``check_completeness``)."""
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
    record = _provenance(run.root)
    per_seed, seed_notes = check_seeds.compare_seeds(run.scores, chosen, record)
    new_scores = _new_seed_scores(run.scores, chosen)
    ref_cells = chosen.cells()
    mine = _run_cells(new_scores, chosen.baseline)
    conditions = [c["name"] for c in run.protocol["conditions"]]
    settings = [s for s in ("within", "cross") if s in run.protocol["settings"]]
    rows = []
    for setting in settings:
        for quantity in QUANTITIES:
            for condition in conditions:
                rows += _rows(setting, condition, quantity, mine, ref_cells, per_seed, chosen.baseline)
    cells = pd.DataFrame(rows)
    differing = condition_differences(run.config, chosen.meta.get("conditions", []))
    for index, row in cells.iterrows():
        culprit = next((c for c in (row["condition"], chosen.baseline) if c in differing), None)
        if culprit is not None and (culprit == row["condition"] or row["quantity"] == "delta"):
            cells.loc[index, "verdict"] = f"{NOT_COMPARABLE} ({culprit} {differing[culprit]})"
    checkable = int(((cells["verdict"] == "pending") & (cells["rule"] == INTERVAL)).sum())
    level = 1.0 - alpha / max(checkable, 1)
    _judge(cells, per_seed, level, check_seeds.reference_tolerance(chosen))
    your_seeds = sorted(int(s) for s in run.scores["seed"].unique())
    result = CheckResult(run.root, chosen.name, True, cells, level, notes + seed_notes)
    result.seeds, result.completeness = per_seed, run.completeness
    result.power = _power_summary(cells, chosen.baseline) | {
        "tolerance": check_seeds.reference_tolerance(chosen)
    }
    if len(result.outside):
        result.differences = _what_differs(run, chosen, your_seeds)
    return result


def _provenance(root: Path) -> dict[str, Any] | None:
    try:
        return provenance.load(root)
    except provenance.ProvenanceError:
        return None


def _rows(
    setting: str,
    condition: str,
    quantity: str,
    mine: dict[tuple[str, str, str], tuple[float, int]],
    ref_cells: pd.DataFrame,
    per_seed: pd.DataFrame,
    baseline: str,
) -> list[dict[str, Any]]:
    """The cell's rows: seed by seed (the seeds the reference has) and the interval (new seeds)."""
    compared = (
        per_seed[
            (per_seed["setting"] == setting)
            & (per_seed["condition"] == condition)
            & (per_seed["quantity"] == quantity)
        ]
        if len(per_seed)
        else per_seed
    )
    rows = []
    if len(compared):
        row = _empty_row(setting, condition, quantity, SEED_BY_SEED)
        row.update(
            yours=float(compared["yours"].mean()),
            n_yours=len(compared),
            reference=float(compared["reference"].mean()),
            n_reference=len(compared),
            seeds=", ".join(str(s) for s in compared["seed"]),
            max_difference=float(compared["difference"].abs().max()),
            sd_source=" + ".join(sorted(set(compared["family"]))),
        )
        rows.append(row)
    interval = _row(setting, condition, quantity, mine, ref_cells, baseline)
    if interval["verdict"] != "not in your run" or not rows:
        rows.append(interval)
    return rows


def _empty_row(setting: str, condition: str, quantity: str, rule: str) -> dict[str, Any]:
    return {
        "setting": setting,
        "condition": condition,
        "quantity": quantity,
        "rule": rule,
        "yours": math.nan,
        "n_yours": 0,
        "reference": math.nan,
        "sd": math.nan,
        "n_reference": 0,
        "sd_source": "",
        "seeds": "",
        "max_difference": math.nan,
        "allowed": "",
        "low": math.nan,
        "high": math.nan,
        "shift_80": math.nan,
        "verdict": "pending",
    }


def _row(
    setting: str,
    condition: str,
    quantity: str,
    mine: dict[tuple[str, str, str], tuple[float, int]],
    ref_cells: pd.DataFrame,
    baseline: str,
) -> dict[str, Any]:
    row = _empty_row(setting, condition, quantity, INTERVAL)
    if quantity == "delta" and condition == baseline:
        row["verdict"], row["rule"] = "n/a (the baseline)", "–"
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


def _judge(cells: pd.DataFrame, per_seed: pd.DataFrame, level: float, tolerance: dict[str, Any]) -> None:
    """Each pending row's verdict, allowed range and power (the shift flagged with 80 % probability)."""
    for index, row in cells[cells["verdict"] == "pending"].iterrows():
        if row["rule"] == SEED_BY_SEED:
            compared = per_seed[
                (per_seed["setting"] == row["setting"])
                & (per_seed["condition"] == row["condition"])
                & (per_seed["quantity"] == row["quantity"])
            ]
            exact = compared[compared["rule"] == check_seeds.EXACT]
            loose = compared[compared["rule"] == check_seeds.TOLERANCE]
            failed = compared[~compared["ok"]]
            verdict = (
                AGREES
                if failed.empty
                else (NOT_SAME if (failed["rule"] == check_seeds.EXACT).any() else OUTSIDE)
            )
            allowed = []
            if len(exact):
                allowed.append(f"{len(exact)} equal to 0.01")
            if len(loose):
                allowed.append(f"{len(loose)} within ±{loose['allowed'].iloc[0]:.2f}")
            cells.loc[index, ["verdict", "allowed"]] = [verdict, ", ".join(allowed)]
            cells.loc[index, "shift_80"] = _seed_shift(len(exact), len(loose), row["quantity"], tolerance)
            continue
        low, high = expected_range(
            row["reference"], row["sd"], int(row["n_reference"]), int(row["n_yours"]), level
        )
        cells.loc[index, ["low", "high"]] = [low, high]
        if math.isnan(low):
            cells.loc[index, "verdict"] = "no spread known"
            continue
        cells.loc[index, "verdict"] = AGREES if low <= row["yours"] <= high else OUTSIDE
        sd, n_ref, n_yours = float(row["sd"]), int(row["n_reference"]), int(row["n_yours"])
        cells.loc[index, "shift_80"] = check_power.shift_for(
            [
                functools.partial(
                    check_power.interval_power, sd=sd, n_reference=n_ref, n_yours=n_yours, level=level
                )
            ]
        )


def _seed_shift(exact: int, loose: int, quantity: str, tolerance: dict[str, Any]) -> float:
    if exact:
        return check_power.PRINTED_STEP
    key = "uar" if quantity == "mean" else "delta"
    tol, sd = float(tolerance[key]), float(tolerance[f"drift_sd_{key}"])
    return check_power.shift_for([lambda d: check_power.tolerance_power(d, tol, sd, loose)])


def _power_summary(cells: pd.DataFrame, baseline: str) -> dict[str, Any]:
    """Per cell (setting x condition) the smallest shift flagged with 80 % probability: the least over
    the rows the shift moves (its mean and difference to BL; for BL every difference of its setting),
    each row's own power being a lower bound on the cell's; and the largest and smallest over cells."""
    if cells.empty or cells["shift_80"].isna().all():
        return {"cells": {}}
    per_cell = {}
    for (setting, condition), group in cells.groupby(["setting", "condition"], sort=False):
        moved = group if condition != baseline else cells[(cells["setting"] == setting)]
        moved = moved[(moved["condition"] == condition) | (moved["quantity"] == "delta")]
        if moved["shift_80"].notna().any():
            per_cell[(setting, condition)] = float(moved["shift_80"].min())
    worst = max(per_cell, key=lambda k: per_cell[k])
    best = min(per_cell, key=lambda k: per_cell[k])
    return {"cells": per_cell, "worst": (worst, per_cell[worst]), "best": (best, per_cell[best])}


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
    family = record_family(record)
    full = family == reference.family or family not in meta.get("families", {})
    recorded = reference.family_environment(reference.family if full else family) or {}
    theirs = {**meta.get("environment", {}), **recorded} if full else recorded
    if not theirs:
        lines.append(f"the reference records no environment ({meta.get('source', 'no source given')})")
        return lines
    mine = check_seeds.run_items(record)
    decisive = [
        label
        for label in (
            "CPU",
            "CPU instruction sets",
            "GPUs",
            check_seeds.IMPLEMENTATION,
            "oneDNN",
            "TensorFlow threads",
            *provenance.DECISIVE,
        )
    ]
    labels = set(mine) | set(theirs) if full else set(theirs)  # another family's: the items it records
    changed = [label for label in sorted(labels) if mine.get(label, "absent") != theirs.get(label, "absent")]
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
def check_markdown(result: CheckResult) -> str:
    """The check as Markdown (``serlib.evidence.check_text``): verdict, power, cells, seeds, notes."""
    return check_text.markdown(result)


# -- writing a reference ----------------------------------------------------------------------------
def write_reference(folder: str | Path, name: str, command: str, **options: Any) -> list[Path]:
    """``<references>/<name>.csv`` + ``.json`` from a finished run folder, or (``add_family=True``) its CPU
    family's values added to an existing reference (``serlib.evidence.reference_write``)."""
    return reference_write.write_reference(run_scores(folder), name, command, **options)
