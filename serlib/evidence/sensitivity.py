"""The paper's ambiguities as sensitivity runs: one reading changed at a time, against today's reading.

A sensitivity file (YAML) names a base configuration, the conditions and seeds to run, and variants,
each a set of dotted-key overrides::

    base: nemo.yaml              # relative to this file
    conditions: [BL]
    seeds: [0, 1, 2]
    variants:
      dropout-rate-0.8: {acnn.dropout: 0.8}
      pool-stride-30: {acnn.pool_stride: 30}

The reference (the base configuration as it is) and every variant run the within-corpus protocol in
``<output_dir>/<name>/`` (``output_dir`` defaults to the base's plus ``-sensitivity``) with the base's
cache. Finished runs of the base's own output folder with the same fingerprint are copied into the
reference folder instead of being trained again. ``sensitivity.csv``/``.md`` compare each variant
with the reference, paired over (fold, seed), with the minimal detectable difference.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from pydantic import ValidationError

from serlib.base import yaml_strict
from serlib.base.config import (
    Config,
    ConfigError,
    SensitivityPlan,
    format_errors,
    keep_conditions,
    load,
    override,
)
from serlib.base.files import write_csv, write_text
from serlib.evidence.comparisons import comparisons_markdown, paired_comparisons
from serlib.evidence.summaries import evaluate
from serlib.evidence.table1 import collect_runs
from serlib.protocol.run_files import run_folder

log = logging.getLogger(__name__)

REFERENCE = "reference"


def load_plan(path: str | Path) -> tuple[Config, dict[str, dict[str, Any]], Path]:
    """(reference configuration, {variant: overrides}, output folder) of a sensitivity file, validated by
    ``config.SensitivityPlan``; every variant's overrides are applied once here, so a bad key is named
    before any run."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"sensitivity file {path} does not exist")
    try:
        data = yaml_strict.load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from None
    try:
        plan = SensitivityPlan.model_validate(data)
    except ValidationError as error:
        raise ConfigError(format_errors(error, str(path), "sensitivity file")) from None
    base = load(path.parent / plan.base)
    changes: dict[str, Any] = {"protocol.cross_corpus_train": None, "protocol.cross_corpus_test": None}
    if plan.seeds is not None:
        changes["protocol.seeds"] = list(plan.seeds)
    if plan.conditions is not None:
        base = keep_conditions(base, plan.conditions)
    reference = override(base, **changes)
    output = Path(plan.output_dir or f"{base.output_dir}-sensitivity")
    for name, values in plan.variants.items():
        try:
            override(reference, **values)
        except ConfigError as error:
            raise ConfigError(f"{path}: variants.{name}: {error}") from None
    return reference, dict(plan.variants), output


def _cell(reference: Config, output: Path, name: str, changes: dict[str, Any]) -> Config:
    folder = output / name
    return override(
        reference,
        output_dir=str(folder),
        cache_dir=str(reference.cache_path),
        figures_dir=str(folder / "figures"),
        **changes,
    )


def _reuse_finished_runs(base_output: Path, cell: Config) -> int:
    """Copy the base folder's finished runs of the cell's grid (checked by fingerprint when it runs)."""
    copied = 0
    for condition in cell.protocol.conditions:
        for seed in cell.protocol.seeds:
            source_seed = run_folder(base_output, "within", condition.name, seed, 0).parent
            if not source_seed.is_dir():
                continue
            for source in sorted(source_seed.glob("fold*")):
                target = run_folder(cell.output_dir, "within", condition.name, seed, int(source.name[4:]))
                if (source / "metrics.json").is_file() and not target.exists():
                    shutil.copytree(source, target)
                    copied += 1
    return copied


def run_sensitivity(path: str | Path, progress: bool = True) -> pd.DataFrame:
    """Run the reference and every variant (finished runs reused), then write the comparison."""
    reference, variants, output = load_plan(path)
    base_output = Path(reference.output_dir)
    cells = {REFERENCE: _cell(reference, output, REFERENCE, {})}
    cells |= {name: _cell(reference, output, name, changes) for name, changes in variants.items()}
    copied = _reuse_finished_runs(base_output, cells[REFERENCE])
    if copied:
        log.info("sensitivity: %d finished runs copied from %s", copied, base_output)
    for name, cell in cells.items():
        log.info("sensitivity: %s", name)
        evaluate(cell, progress=progress)
    return write_sensitivity(output, list(cells))


def write_sensitivity(output: Path, names: list[str]) -> pd.DataFrame:
    """``sensitivity.csv`` and ``sensitivity.md``: every variant against the reference, per condition."""
    frames = []
    for name in names:
        _, runs = collect_runs(output / name)
        frames.append(runs.assign(variant=name))
    runs = pd.concat(frames, ignore_index=True)
    rows = []
    for condition, group in runs.groupby("condition", sort=False):
        renamed = group.assign(condition=group["variant"])
        table = paired_comparisons(renamed, REFERENCE)
        rows.append(table.rename(columns={"condition": "variant"}).assign(condition=condition))
    table = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    write_csv(table, output / "sensitivity.csv", float_format="%.4f")
    shown = table.assign(variant=table["variant"] + " (" + table["condition"] + ")") if len(table) else table
    text = comparisons_markdown(
        shown.drop(columns="condition").rename(columns={"variant": "condition"}), REFERENCE
    )
    write_text(text, output / "sensitivity.md")
    return table
