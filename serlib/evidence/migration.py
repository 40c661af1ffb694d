"""A one-time migration of stored results to the current key names (issue 43, item 3): ``serlib migrate``.

Before issue 43, run fingerprints, configuration hashes and the shipped references' comparison hashes
were computed from the configuration in its old key form (``acnn.dropout_keep_probability[_cross]``,
``acnn.normalisation``: ``config_compat.stored_form``). Since then they are computed from the
configuration as it is written (``acnn.dropout``, ``acnn.dropout_cross``, ``features.normalisation``),
and the old form lives only here. ``migrate`` rewrites what was stored in the old form, each value
only after computing it the old way and finding it equal (a value that does not verify is left as it
is and reported), so that a folder means exactly what it meant:

* a run folder (``results/protocol.json`` and every run's ``metrics.json``): the ACNN run
  fingerprints, whose feature-store names (the data identity they hash) are found in the folder's cache
  (``<folder>/cache/features``, or ``stores``) and checked against the old fingerprint; the configuration
  hash of ``protocol.json`` and ``provenance.json``. The eGeMAPS + SVM fingerprints hash no renamed key
  and do not change;
* an exported results folder (``serlib export``; ``export.json``): the same in ``protocol.json``,
  ``runs.csv`` and ``provenance.json`` (the fingerprints only with ``stores``, the run folder's cache:
  an export holds no feature stores), then ``export.json``'s content hash and sizes;
* a references folder (``serlib/references/*.json``): each reference's configuration in the current keys
  and its comparison hash (``config_sha256``, a hash of a full configuration the reference does not
  hold, stays as written).

Values are replaced as text (a fingerprint or hash is a unique hexadecimal string), so every other byte
of a file stays as it was. Idempotent: a value already in the current form is recognised and kept.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from serlib.base import config_compat, files, provenance
from serlib.base.config import ConditionConfig, Config, from_dict, override
from serlib.evidence import results_folder as rf
from serlib.protocol import conditions

MAX_IDENTITIES = 512  # candidate store-name combinations tried per (setting, condition)


class MigrationError(ValueError):
    """A folder cannot be migrated; the message names the file and what to do."""


@dataclass
class Migration:
    """What ``migrate`` did to one folder: the replaced values (old -> new) and what it kept, and why."""

    folder: Path
    kind: str
    replaced: dict[str, str] = field(default_factory=dict)
    kept: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        head = f"{self.folder} ({self.kind}): {len(self.replaced)} value(s) rewritten in {len(self.files)} file(s)"
        if not self.replaced and not self.kept:
            head += " (already in the current form)"
        kept = [f"  kept: {reason}" for reason in self.kept]
        return [head, *kept, *(f"  note: {note}" for note in self.notes)]


# -- the old form (before issue 43) -------------------------------------------------------------------
def old_fingerprint(
    config: Config, setting: str, condition: ConditionConfig, identity: dict[str, str]
) -> str:
    """The run fingerprint as the code before issue 43 computed it: the ACNN settings and the
    normalisation in the old key form (``config_compat.stored_form``), everything else as today."""
    parts = conditions.fingerprint_parts(config, setting, condition, identity)
    stored = config_compat.stored_form(config.model_dump(mode="json"))
    parts["acnn"] = conditions.acnn_parameters(stored["acnn"])
    parts["normalisation"] = stored["features"]["normalisation"]
    return conditions.hash_parts(parts)


def old_config_hash(data: dict[str, Any]) -> str:
    """``provenance.config_hash`` as computed before issue 43 (the old key form)."""
    return provenance.hash_config_data(config_compat.stored_form(data))


def old_comparison_hash(data: dict[str, Any]) -> str:
    """A reference's comparison hash as computed before issue 43, of its stored configuration."""
    return _sha256(config_compat.stored_form(data))


def current_keys(data: dict[str, Any]) -> dict[str, Any]:
    """A configuration mapping (possibly partial, as a reference stores it) in the current keys."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", config_compat.ConfigDeprecationWarning)
        return config_compat.upgrade(data)


def _sha256(data: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


# -- fingerprints: the data identity found among the stores -------------------------------------------
def store_names(stores: Path) -> dict[str, list[str]]:
    """``{"<corpus key>/<extractor>": [file names]}`` of the feature stores under ``stores`` (a cache
    folder, or its ``features/`` folder), as ``store.store_path`` names them."""
    folder = stores / "features" if (stores / "features").is_dir() else stores
    names: dict[str, list[str]] = {}
    for path in sorted(folder.glob("*.h5")):
        parts = path.name.removesuffix(".h5").rsplit("-", 2)
        if len(parts) == 3:
            names.setdefault(f"{parts[0]}/{parts[1]}", []).append(path.name)
    return names


def _implementations(config: Config) -> list[Config]:
    """The configuration with its ACNN path resolved: as stored, or both paths where it says auto."""
    if config.acnn.implementation != "auto":
        return [config]
    return [override(config, **{"acnn.implementation": path}) for path in ("fast", "reference")]


def current_fingerprint(
    config: Config, setting: str, condition: ConditionConfig, recorded: str, names: dict[str, list[str]]
) -> str | None:
    """The current fingerprint of the runs that carry ``recorded``: the identity (one store name per
    input) is the one whose old fingerprint, or current one, equals ``recorded``; None when none does."""
    needed = conditions.identity_keys(config, setting, condition)
    choices = [names.get(key, []) for key in needed]
    combinations = itertools.islice(itertools.product(*choices), MAX_IDENTITIES)
    for chosen in combinations:
        identity = dict(zip(needed, chosen, strict=True))
        for resolved in _implementations(config):
            new = conditions.fingerprint(resolved, setting, condition, identity)
            if recorded == new:
                return new
            if recorded == old_fingerprint(resolved, setting, condition, identity):
                return new
    return None


def _fingerprints(protocol: dict[str, Any], stores: Path | None, result: Migration) -> None:
    """Add the fingerprints of ``protocol.json`` to ``result.replaced`` (old -> new)."""
    config = _protocol_config(protocol)
    recorded = protocol.get("fingerprints", {})
    if not recorded:
        return
    names = store_names(stores) if stores is not None and stores.is_dir() else {}
    if not names:
        result.kept.append(
            "the run fingerprints: no feature stores to find their data identity (pass the run folder's "
            "cache: serlib migrate FOLDER --stores RUN_FOLDER/cache)"
        )
        return
    for label, value in recorded.items():
        setting, name = label.split("/", 1)
        new = current_fingerprint(config, setting, config.condition(name), value, names)
        if new is None:
            result.kept.append(f"fingerprint {label} {value}: no store combination in {stores} gives it")
        elif new != value:
            result.replaced[value] = new


def _protocol_config(protocol: dict[str, Any]) -> Config:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", config_compat.ConfigDeprecationWarning)
        return from_dict(protocol["config"], "protocol.json")


# -- configuration hashes --------------------------------------------------------------------------------
def _config_hashes(
    protocol: dict[str, Any], recorded: Iterable[str], earlier: Iterable[str], result: Migration
) -> None:
    """Add each recorded configuration hash that is the old hash of the protocol's configuration (as
    stored, or before its ``auto`` ACNN path was resolved) to ``result.replaced``. A hash of
    ``provenance.json``'s earlier records may be of another configuration, which the folder does not
    hold: kept, with a note."""
    data = protocol["config"]
    candidates = [data]
    if data.get("acnn", {}).get("implementation") != "auto":
        candidates.append({**data, "acnn": {**data["acnn"], "implementation": "auto"}})
    known = {
        old_config_hash(c): provenance.config_hash(from_dict(current_keys(c), "protocol.json"))
        for c in candidates
    }
    recorded, earlier = set(recorded), set(earlier)
    for value in sorted(recorded | earlier):
        if value in known and known[value] != value:
            result.replaced[value] = known[value]
        elif value in known.values() or value in result.replaced:
            continue
        elif value in recorded:
            result.kept.append(
                f"configuration hash {value[:12]}: not a hash of protocol.json's configuration"
            )
        else:
            result.notes.append(
                f"configuration hash {value[:12]} of an earlier provenance record: another configuration, kept"
            )


def _recorded_config_hashes(folder: Path, protocol: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The configuration hashes of ``protocol.json`` and ``provenance.json``, and those of the latter's
    earlier records (the folder reused under another environment or configuration)."""
    values, earlier = [protocol.get("provenance", {}).get("config_sha256", "")], []
    path = folder / "provenance.json"
    if path.is_file():
        record = json.loads(path.read_text(encoding="utf-8"))
        values.append(record.get("config", {}).get("sha256", ""))
        earlier = [entry.get("config", {}).get("sha256", "") for entry in record.get("earlier", [])]
    return [v for v in values if v], [v for v in earlier if v]


# -- the three kinds of folder ----------------------------------------------------------------------------
def _replace_in(paths: Iterable[Path], replaced: dict[str, str], result: Migration) -> None:
    """Replace every old value by its new one in the text of ``paths`` (written atomically)."""
    for path in paths:
        text = path.read_text(encoding="utf-8")
        new_text = text
        for old, new in replaced.items():
            new_text = new_text.replace(old, new)
        if new_text != text:
            files.write_text(new_text, path)
            result.files.append(str(path))


def migrate_run_folder(folder: Path, stores: Path | None = None) -> Migration:
    """A run folder's fingerprints and configuration hashes in the current form (module docstring)."""
    protocol_path = folder / "results" / "protocol.json"
    protocol = json.loads(protocol_path.read_text(encoding="utf-8"))
    result = Migration(folder, "run folder")
    _fingerprints(protocol, stores if stores is not None else folder / "cache", result)
    _config_hashes(protocol, *_recorded_config_hashes(folder, protocol), result)
    if result.replaced:
        metrics = sorted((folder / "results").glob("*/*/seed*/fold*/metrics.json"))
        others = [folder / "provenance.json", folder / "table1.md", folder / "table1.csv"]
        _replace_in([protocol_path, *metrics, *(p for p in others if p.is_file())], result.replaced, result)
    return result


def migrate_results_folder(folder: Path, stores: Path | None = None) -> Migration:
    """An exported results folder's fingerprints and hashes in the current form, and its
    ``export.json`` (content hash, sizes) for the rewritten files."""
    protocol_path = folder / "protocol.json"
    protocol = json.loads(protocol_path.read_text(encoding="utf-8"))
    result = Migration(folder, "results folder")
    _fingerprints(protocol, stores, result)
    _config_hashes(protocol, *_recorded_config_hashes(folder, protocol), result)
    if result.replaced:
        targets = [protocol_path, folder / "runs.csv", folder / "provenance.json"]
        _replace_in([p for p in targets if p.is_file()], result.replaced, result)
        record_path = folder / rf.EXPORT_FILE
        record = json.loads(record_path.read_text(encoding="utf-8"))
        record["sha256"] = rf.content_hash(folder)
        record["bytes"] = {name: (folder / name).stat().st_size for name in record.get("bytes", {})}
        files.write_json(record, record_path)
        result.files.append(str(record_path))
    return result


def migrate_references(folder: Path) -> Migration:
    """Every reference of ``folder``: its configuration in the current keys, its comparison hash the
    current one (each checked against the old hash first)."""
    result = Migration(folder, "references")
    for path in sorted(folder.glob("*.json")):
        meta = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(meta, dict) or "comparison_sha256" not in meta or "config" not in meta:
            continue
        stored, recorded = meta["config"], meta["comparison_sha256"]
        current = current_keys(stored)
        if recorded == _sha256(current) and current == stored:
            continue  # already migrated
        if recorded != old_comparison_hash(stored):
            result.kept.append(f"{path.name}: its comparison_sha256 is not the hash of its configuration")
            continue
        meta["config"] = current
        meta["comparison_sha256"] = _sha256(current)
        result.replaced[recorded] = meta["comparison_sha256"]
        files.write_json(meta, path)
        result.files.append(str(path))
    return result


def kind_of(folder: Path) -> str:
    """``run``, ``results`` or ``references``; a MigrationError names what the folder lacks."""
    if rf.is_results_folder(folder):
        return "results"
    if (folder / "results" / "protocol.json").is_file():
        return "run"
    if any(folder.glob("*.json")) and any(folder.glob("*.csv")):
        return "references"
    raise MigrationError(
        f"{folder} is neither a run folder (results/protocol.json), an exported results folder "
        "(export.json) nor a references folder (*.json with *.csv): nothing to migrate"
    )


def migrate(folder: str | Path, stores: str | Path | None = None) -> Migration:
    """Migrate one folder of any of the three kinds (module docstring); idempotent."""
    folder = Path(folder)
    stores_path = None if stores is None else Path(stores)
    kind = kind_of(folder)
    if kind == "results":
        return migrate_results_folder(folder, stores_path)
    if kind == "run":
        return migrate_run_folder(folder, stores_path)
    return migrate_references(folder)
