"""Stored runs stay valid across the key renames (issue 37) and the current names as the hashed form
(issue 43): no stored run is repeated, no shipped reference stops matching.

tests/fixtures/fingerprints.json was written on main b064531, before the rename, by
tests/fixtures/make_fingerprints.py: for each preset, configs/*.yaml and a few sensitivity readings, the
validated configuration (old keys) and the run fingerprints, SVM fingerprints and config hash its stored
runs carry. Since issue 43 the hashes are computed from the configuration in its current key names, and
``serlib migrate`` (``serlib.evidence.migration``) rewrites stored values once: it recomputes each the old
way, and replaces it only where it matches. tests/fixtures/fingerprints-migrated.json holds the
migrated values of the same configurations (written once, by ``main`` below, from the fixture: every
value in it was reached from a verified old value).
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from serlib.base import config as config_module
from serlib.base.config_compat import stored_form
from serlib.base.provenance import config_hash
from serlib.evidence import migration
from serlib.protocol import conditions, svm

FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE = json.loads((FIXTURES / "fingerprints.json").read_text(encoding="utf-8"))
MIGRATED_PATH = FIXTURES / "fingerprints-migrated.json"
IDENTITY = {"stand-in/logmel": "stand-in-0123456789abcdef.h5"}  # as make_fingerprints.py


def _with_new_keys(old: dict[str, Any]) -> dict[str, Any]:
    """The stored (old-key) configuration written by hand with the new keys."""
    data = json.loads(json.dumps(old))
    acnn, features = data["acnn"], data["features"]
    acnn["dropout"] = round(1 - acnn.pop("dropout_keep_probability"), 12)
    acnn["dropout_cross"] = round(1 - acnn.pop("dropout_keep_probability_cross"), 12)
    if acnn.pop("normalisation") == "none":
        features["normalisation"] = "none"
    return data


def _hashes(config: config_module.Config, old: bool = False) -> dict[str, str]:
    """The config hash, run and SVM fingerprints of a configuration: today's, or (``old``) as the code
    before issue 43 computed them (``migration.old_*``)."""
    fixed = config_module.override(config, **{"acnn.implementation": "reference"})
    data = config.model_dump(mode="json")
    out = {"config_hash": migration.old_config_hash(data) if old else config_hash(config)}
    for setting in conditions.settings_of(fixed):
        for condition in fixed.protocol.conditions:
            compute = migration.old_fingerprint if old else conditions.fingerprint
            out[f"{setting}/{condition.name}"] = compute(fixed, setting, condition, IDENTITY)
        out[f"{setting}/svm"] = svm.fingerprint(fixed, setting)
    return out


def _migrated(name: str) -> dict[str, str]:
    return json.loads(MIGRATED_PATH.read_text(encoding="utf-8"))[name]


@pytest.mark.parametrize("name", sorted(FIXTURE))
def test_old_and_new_keys_give_the_stored_and_the_migrated_fingerprints(name: str) -> None:
    stored = FIXTURE[name]
    with pytest.warns(config_module.config_compat.ConfigDeprecationWarning):
        old = config_module.from_dict(stored["config"], name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        new = config_module.from_dict(_with_new_keys(stored["config"]), name)
    assert stored_form(new.model_dump(mode="json")) == stored["config"]
    for config in (old, new):
        assert _hashes(config, old=True) == stored["fingerprints"]  # the migration recognises them
        assert _hashes(config) == _migrated(name)  # and today's code gives what it writes


@pytest.mark.parametrize("name", sorted(FIXTURE))
def test_the_migration_maps_each_stored_fingerprint_to_the_current_one(name: str, monkeypatch) -> None:
    # the fixture's data identity is one stand-in store for every run (make_fingerprints.py)
    monkeypatch.setattr(conditions, "identity_keys", lambda *_: list(IDENTITY))
    config = config_module.from_dict(_with_new_keys(FIXTURE[name]["config"]), name)
    fixed = config_module.override(config, **{"acnn.implementation": "reference"})
    names = {label: [file] for label, file in IDENTITY.items()}
    for setting in conditions.settings_of(fixed):
        for condition in fixed.protocol.conditions:
            recorded = FIXTURE[name]["fingerprints"][f"{setting}/{condition.name}"]
            new = _migrated(name)[f"{setting}/{condition.name}"]
            assert migration.current_fingerprint(fixed, setting, condition, recorded, names) == new
            assert migration.current_fingerprint(fixed, setting, condition, new, names) == new  # idempotent
            assert migration.current_fingerprint(fixed, setting, condition, "0" * 16, names) is None


# Deliberate changes to a preset since b064531, undone before comparing: each with its reason.
DELIBERATE_PRESET_CHANGES = {
    # the demo pins the fast ACNN kernels (auto's calibration under load could pick the reference
    # kernels and move a label; serlib check compares the demo's seeds to the digit)
    "demo": {"acnn.implementation": "auto"},
    # the paper's spectrogram stores rounded to 4 decimals to fit the disks (issue 46,
    # docs/configuration.md#spectrogram-store-decimals): its AE conditions' inputs change, so they retrain
    "paper": {"features.spectrogram.store_decimals": None},
}


@pytest.mark.parametrize("preset", config_module.PRESETS)
def test_the_presets_are_unchanged(preset: str) -> None:
    """The hand-written presets mean exactly what the Python presets of b064531 meant, apart from the
    deliberate changes listed above (run fingerprints exclude acnn.implementation, so no run retrains)."""
    loaded = config_module.load_preset(preset)
    assert _hashes(loaded)["config_hash"] != _migrated(f"preset:{preset}")["config_hash"] or (
        preset not in DELIBERATE_PRESET_CHANGES
    )
    undone = config_module.override(loaded, **DELIBERATE_PRESET_CHANGES.get(preset, {}))
    assert _hashes(undone, old=True) == FIXTURE[f"preset:{preset}"]["fingerprints"]
    assert _hashes(undone) == _migrated(f"preset:{preset}")


def test_the_sensitivity_readings_in_new_keys_keep_their_fingerprints() -> None:
    nemo = config_module.from_dict(_with_new_keys(FIXTURE["configs/nemo.yaml"]["config"]))
    rate = config_module.override(nemo, **{"acnn.dropout": 0.8})  # the literal reading of the paper
    assert _hashes(rate) == _migrated("nemo.yaml+dropout-rate-0.8")
    none = config_module.override(nemo, **{"features.normalisation": "none"})
    assert _hashes(none) == _migrated("nemo.yaml+no-standardisation")


def main() -> None:
    """Write fingerprints-migrated.json: each fixture entry's values, each migrated from its verified
    old value (run once, when issue 43 changed the hashed form)."""
    result = {}
    for name, stored in sorted(FIXTURE.items()):
        config = config_module.from_dict(_with_new_keys(stored["config"]), name)
        assert _hashes(config, old=True) == stored["fingerprints"], name
        result[name] = _hashes(config)
    text = json.dumps(result, indent=None, sort_keys=True, separators=(",", ":")) + "\n"
    MIGRATED_PATH.write_text(text, encoding="utf-8")
    print(f"wrote {MIGRATED_PATH} ({len(result)} entries)", file=sys.stderr)


if __name__ == "__main__":
    main()
