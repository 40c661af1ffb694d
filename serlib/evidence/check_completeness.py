"""Is a run folder complete? What ``serlib check`` expects before it may say "agrees".

``results/protocol.json`` names the grid: settings with their folds, conditions and seeds. Every
(setting, condition, seed, fold) must have a finished run (``metrics.json`` with this protocol's
fingerprint; ``table1.collect_runs`` reads them) whose ``predictions.csv`` holds one row per test
utterance: as many as its ``metrics.json`` says (``n_test``) and as the other runs of the same fold
(every condition and seed tests the same utterances). A run folder short of any of these is
**incomplete**, which the check reports as such (exit status 1), never as agreeing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd


@dataclass
class Completeness:
    """``complete`` of ``expected`` runs are finished with full predictions; ``problems`` say what is not."""

    expected: int
    complete: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.complete == self.expected and not self.problems

    def text(self) -> str:
        return f"incomplete: {self.complete} of {self.expected} runs complete"


def _rows(path: Path) -> int | None:
    """The data rows of a predictions.csv; None when it cannot be read."""
    try:
        return len(pd.read_csv(path, usecols=["predicted"]))
    except (OSError, ValueError):
        return None


def count_runs(protocol: dict[str, Any], runs: pd.DataFrame, shown: int = 8) -> Completeness:
    """Count the runs ``protocol`` configures and those of ``runs`` (``collect_runs``) that are complete."""
    conditions = [c["name"] for c in protocol["conditions"]]
    seeds = [int(s) for s in protocol["seeds"]]
    expected_keys = [
        (setting, condition, seed, int(fold))
        for setting, description in protocol["settings"].items()
        for condition in conditions
        for seed in seeds
        for fold in description["folds"]
    ]
    found: dict[tuple[str, str, int, int], dict[str, Any]] = {
        (str(r["setting"]), str(r["condition"]), int(r["seed"]), int(r["fold"])): r
        for r in runs.to_dict("records")
    }
    problems: list[str] = []
    missing = [key for key in expected_keys if key not in found]
    if missing:
        listed = "; ".join(f"{s} {c} seed {seed} fold {fold}" for s, c, seed, fold in missing[:shown])
        more = f" and {len(missing) - shown} more" if len(missing) > shown else ""
        problems.append(
            f"{len(missing)} runs not finished (no metrics.json, or one computed with other parameters): "
            f"{listed}{more}"
        )
    counts = {key: _rows(Path(row["folder"]) / "predictions.csv") for key, row in found.items()}
    per_fold: dict[tuple[str, int], int] = {}
    for key, row in found.items():  # a fold's test set: the most rows any of its runs states or holds
        candidates = [n for n in (row.get("n_test"), counts[key]) if n is not None and n == n]
        fold_key = (key[0], key[3])
        per_fold[fold_key] = max([per_fold.get(fold_key, 0), *(int(n) for n in candidates)])
    short = []
    for key, row in found.items():
        rows, stated = counts[key], row.get("n_test")
        needed = per_fold[(key[0], key[3])]
        if rows is None or rows < needed or (stated is not None and stated == stated and rows != int(stated)):
            short.append(
                f"{row['folder']}/predictions.csv: {'unreadable' if rows is None else rows} of {needed} rows"
            )
    if short:
        more = f" and {len(short) - shown} more" if len(short) > shown else ""
        problems.append(
            f"{len(short)} runs with short or unreadable predictions: {'; '.join(short[:shown])}{more}"
        )
    complete = len(found) - len(short)
    return Completeness(len(expected_keys), complete, problems)
