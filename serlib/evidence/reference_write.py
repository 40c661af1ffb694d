"""Writing a per-seed reference of ``serlib check`` from a finished run folder, or adding to one the
values of the same seeds computed on another CPU family (``docs/probes/demo_reference.py``).

``<name>.csv`` holds ``setting, condition, seed, uar, cpu_family``; ``<name>.json`` the comparison hash,
configuration, commit, machine and versions of the reference's own values, ``cpu_family`` (theirs),
``families`` (per CPU family: the environment items that decide whether a run repeats its values
exactly, its seeds, commit and command) and ``tolerance`` (``check_seeds.derive_tolerance``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from serlib.base import config as config_module
from serlib.base import provenance
from serlib.base.files import write_csv, write_json
from serlib.evidence import check_seeds
from serlib.evidence.references import (
    FAMILY_COLUMN,
    ReferencesError,
    comparison_config,
    comparison_hash,
    load_reference,
    record_family,
    references_dir,
)

# The environment items kept per CPU family (the exact rule's, and what names the machine).
FAMILY_ITEMS = ("CPU", "CPU instruction sets", "GPUs", "Python", "BLAS", *check_seeds.EXACT_ITEMS)


def family_record(record: dict[str, Any], seeds: list[int], command: str, source: str) -> dict[str, Any]:
    """What a reference keeps about the machine and versions that computed one family's values."""
    environment = check_seeds.run_items(record)
    return {
        "environment": {label: environment.get(label, "absent") for label in FAMILY_ITEMS},
        "seeds": seeds,
        "commit": record.get("serlib", {}).get("commit"),
        "dirty": record.get("serlib", {}).get("dirty"),
        "written": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "source": source,
    }


def write_reference(
    run: Any,
    name: str,
    command: str,
    config: config_module.Config | None = None,
    references: Path | None = None,
    source: str = "",
    add_family: bool = False,
) -> list[Path]:
    """``<references>/<name>.csv`` (per-seed UARs of every Table 1 cell, with their CPU family) and
    ``<name>.json`` from a complete run folder's values (``run``: ``check.run_scores``; call it as
    ``check.write_reference(folder, ...)``); with ``add_family``, add this machine's CPU family's values
    to the existing reference ``name`` (same comparison hash; the reference's own family's are kept)."""
    data = config.model_dump(mode="json") if config is not None else run.config
    if data is None:
        raise ReferencesError(f"{run.root} holds no configuration; pass the one that produced it")
    if run.scores.empty:
        raise ReferencesError(f"{run.root} holds no finished runs to make a reference from")
    if run.completeness is not None and not run.completeness.ok:
        raise ReferencesError(
            f"{run.root} is {run.completeness.text()}: finish its runs before making a reference"
        )
    target = references_dir() if references is None else Path(references)
    record = provenance.load(run.root)
    if record.get("mixed_environments"):
        raise ReferencesError(
            f"{run.root} holds runs from more than one environment (serlib provenance {run.root}): their CPU "
            "family is not one; make the reference in a fresh folder"
        )
    family = record_family(record)
    seeds = sorted(int(s) for s in run.scores["seed"].unique())
    values = run.scores.sort_values(["setting", "condition", "seed"], key=_order(run.protocol))
    values = values.assign(**{FAMILY_COLUMN: family})
    this_family = family_record(record, seeds, command, source or f"runs of {run.root.name}")
    if add_family:
        meta, values = _added(name, target, data, family, values, this_family)
    else:
        meta = {
            "name": name,
            "preset": data.get("name"),
            "format": "per_seed",
            "baseline": run.protocol.get("baseline") or "BL",
            "comparison_sha256": comparison_hash(data),
            "config_sha256": provenance.config_hash(config_module.from_dict(data)),
            "config": comparison_config(data),
            "conditions": data["protocol"]["conditions"],
            "seeds": seeds,
            "commit": record.get("serlib", {}).get("commit"),
            "dirty": record.get("serlib", {}).get("dirty"),
            "command": command,
            "written": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": record.get("machine", {}).get("cpu", {}),
            "packages": record.get("packages", {}),
            "environment": provenance.environment_items(record),
            FAMILY_COLUMN: family,
            "families": {family: this_family},
            "tolerance": check_seeds.derive_tolerance(),
            "source": source or f"runs of {run.root.name} on the machine above",
            "notes": run.notes,
        }
    csv_path = write_csv(values, target / f"{name}.csv", float_format="%.4f")
    json_path = write_json(meta, target / f"{name}.json")
    return [csv_path, json_path]


def _added(
    name: str,
    target: Path,
    data: dict[str, Any],
    family: str,
    values: pd.DataFrame,
    this_family: dict[str, Any],
) -> tuple[dict[str, Any], pd.DataFrame]:
    existing = load_reference(name, target)
    if existing.meta.get("comparison_sha256") != comparison_hash(data):
        raise ReferencesError(
            f"{target / name}.json belongs to another configuration (comparison hash "
            f"{str(existing.meta.get('comparison_sha256'))[:12]}, the run's {comparison_hash(data)[:12]}): "
            "run the reference's own configuration"
        )
    if family == existing.family:
        raise ReferencesError(
            f"{target / name}.json was made on this CPU family ({family}): make it anew (without adding) "
            "to replace its values"
        )
    meta = dict(existing.meta)
    families = dict(meta.get("families") or {})
    if existing.family not in families:  # a reference written before families were kept
        families[existing.family] = {
            "environment": {
                label: meta.get("environment", {}).get(label, "absent") for label in FAMILY_ITEMS
            },
            "seeds": meta.get("seeds", []),
            "commit": meta.get("commit"),
            "written": meta.get("written"),
            "command": meta.get("command"),
        }
    families[family] = this_family
    meta.update({FAMILY_COLUMN: existing.family, "families": families})
    meta.setdefault("tolerance", check_seeds.derive_tolerance())
    kept = existing.values[existing.values[FAMILY_COLUMN] != family]
    return meta, pd.concat([kept, values], ignore_index=True)


def upgrade(name: str, references: Path | None = None) -> list[Path]:
    """Give a per-seed reference written before CPU families were kept its ``cpu_family`` column and
    its JSON's ``cpu_family``, ``families`` and ``tolerance`` (values unchanged; idempotent)."""
    target = references_dir() if references is None else Path(references)
    existing = load_reference(name, target)  # fills the column from the JSON's machine
    if not existing.per_seed:
        raise ReferencesError(f"{target / name}.csv holds no per-seed values: nothing to upgrade")
    meta = dict(existing.meta)
    meta[FAMILY_COLUMN] = existing.family
    if meta.get("environment") and existing.family not in meta.get("families", {}):
        meta["families"] = {existing.family: _own_family(meta)}
    meta.setdefault("tolerance", check_seeds.derive_tolerance())
    csv_path = write_csv(existing.values, target / f"{name}.csv", float_format="%.4f")
    return [csv_path, write_json(meta, target / f"{name}.json")]


def _own_family(meta: dict[str, Any]) -> dict[str, Any]:
    """The family record of a reference's own values, from its JSON's top level."""
    environment = meta.get("environment", {})
    return {
        "environment": {label: environment.get(label, "absent") for label in FAMILY_ITEMS},
        "seeds": meta.get("seeds", []),
        "commit": meta.get("commit"),
        "written": meta.get("written"),
        "command": meta.get("command"),
    }


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
