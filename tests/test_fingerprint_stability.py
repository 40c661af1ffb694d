"""Stored runs stay valid across the key renames of issue 37 (acnn.dropout, features.normalisation).

tests/fixtures/fingerprints.json was written on main b064531, before the rename, by
tests/fixtures/make_fingerprints.py: for each preset, configs/*.yaml and a few sensitivity readings, the
validated configuration (old keys) and the run fingerprints, SVM fingerprints and config hash its stored
runs carry. Today's code must give the same hashes for those configurations, read with the old keys
(converted, with a warning) and written with the new ones, so that no stored run is repeated and no
shipped reference stops matching its configuration.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest

from serlib.base import config as config_module
from serlib.base.config_compat import stored_form
from serlib.base.provenance import config_hash
from serlib.protocol import conditions, svm

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "fingerprints.json").read_text(encoding="utf-8"))
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


def _hashes(config: config_module.Config) -> dict[str, str]:
    fixed = config_module.override(config, **{"acnn.implementation": "reference"})
    out = {"config_hash": config_hash(config)}
    for setting in conditions.settings_of(fixed):
        for condition in fixed.protocol.conditions:
            out[f"{setting}/{condition.name}"] = conditions.fingerprint(fixed, setting, condition, IDENTITY)
        out[f"{setting}/svm"] = svm.fingerprint(fixed, setting)
    return out


@pytest.mark.parametrize("name", sorted(FIXTURE))
def test_old_and_new_keys_give_the_stored_fingerprints(name: str) -> None:
    stored = FIXTURE[name]
    with pytest.warns(config_module.config_compat.ConfigDeprecationWarning):
        old = config_module.from_dict(stored["config"], name)
    assert _hashes(old) == stored["fingerprints"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        new = config_module.from_dict(_with_new_keys(stored["config"]), name)
    assert _hashes(new) == stored["fingerprints"]
    assert stored_form(new.model_dump(mode="json")) == stored["config"]


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
    assert _hashes(loaded)["config_hash"] != FIXTURE[f"preset:{preset}"]["fingerprints"]["config_hash"] or (
        preset not in DELIBERATE_PRESET_CHANGES
    )
    undone = config_module.override(loaded, **DELIBERATE_PRESET_CHANGES.get(preset, {}))
    assert _hashes(undone) == FIXTURE[f"preset:{preset}"]["fingerprints"]


def test_the_sensitivity_readings_in_new_keys_keep_their_fingerprints() -> None:
    nemo = config_module.from_dict(_with_new_keys(FIXTURE["configs/nemo.yaml"]["config"]))
    rate = config_module.override(nemo, **{"acnn.dropout": 0.8})  # the literal reading of the paper
    assert _hashes(rate) == FIXTURE["nemo.yaml+dropout-rate-0.8"]["fingerprints"]
    none = config_module.override(nemo, **{"features.normalisation": "none"})
    assert _hashes(none) == FIXTURE["nemo.yaml+no-standardisation"]["fingerprints"]
