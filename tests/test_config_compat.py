"""Renamed configuration keys (issue 37): old files still read, converted, with a warning naming the
new key; the one dropout convention (the Keras rate) and the one normalisation setting."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import yaml

from serlib.base import config, config_compat


def _demo() -> dict:
    return config.load_preset("demo").model_dump(mode="json")


@pytest.mark.parametrize(
    ("old", "value", "new", "expected"),
    [
        ("dropout_keep_probability", 0.7, "dropout", 0.3),
        ("dropout_keep_probability", 0.2, "dropout", 0.8),
        ("dropout_keep_probability_cross", 0.7, "dropout_cross", 0.3),
    ],
)
def test_old_dropout_keys_convert_and_warn(tmp_path: Path, old: str, value: float, new: str, expected: float):
    data = _demo()
    del data["acnn"][new]
    data["acnn"][old] = value
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.warns(
        config_compat.ConfigDeprecationWarning, match=rf"acnn\.{old}.*write acnn\.{new}: {expected}"
    ):
        loaded = config.load(path)
    assert getattr(loaded.acnn, new) == expected


def test_the_new_key_is_the_keras_rate() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new keys warn about nothing
        paper = config.override(config.load_preset("paper"), **{"acnn.dropout": 0.5})
    assert paper.acnn.dropout == 0.5 and paper.acnn.dropout_for("within") == 0.5
    assert paper.acnn.dropout_for("cross") == paper.acnn.dropout_cross == 0.3


def test_old_normalisation_key_merges_into_features_normalisation() -> None:
    demo = config.load_preset("demo")
    with pytest.warns(config_compat.ConfigDeprecationWarning, match="write features.normalisation: none"):
        none = config.override(demo, **{"acnn.normalisation": "none"})
    assert none.features.normalisation == "none" and not none.features.standardise_in_model
    data = _demo()
    data["acnn"]["normalisation"] = "standardise"
    data["features"]["normalisation"] = "speaker"
    with pytest.warns(config_compat.ConfigDeprecationWarning, match="acnn.normalisation"):
        speaker = config.from_dict(data)
    assert speaker.features.normalisation == "speaker" and speaker.features.standardise_in_model


def test_old_normalisation_key_means_the_same_in_a_file_and_in_a_dotted_override() -> None:
    """``acnn.normalisation: standardise`` keeps the current mode, and contradicts ``none``, whether it
    is written in a file or given as a dotted override (an override once turned speaker into train)."""
    for mode in ("train", "corpus", "speaker"):
        data = _demo()
        data["features"]["normalisation"] = mode
        data["acnn"]["normalisation"] = "standardise"
        with pytest.warns(config_compat.ConfigDeprecationWarning, match=f"features.normalisation: {mode}"):
            from_file = config.from_dict(data, "mine.yaml")
        base = config.override(config.load_preset("demo"), **{"features.normalisation": mode})
        with pytest.warns(config_compat.ConfigDeprecationWarning, match=f"features.normalisation: {mode}"):
            overridden = config.override(base, **{"acnn.normalisation": "standardise"})
        assert from_file.features.normalisation == overridden.features.normalisation == mode
    none = config.override(config.load_preset("demo"), **{"features.normalisation": "none"})
    with pytest.raises(config.ConfigError, match="contradicts features.normalisation: none"):
        config.override(none, **{"acnn.normalisation": "standardise"})
    data = _demo()
    data["features"]["normalisation"], data["acnn"]["normalisation"] = "none", "standardise"
    with pytest.raises(config.ConfigError, match="contradicts features.normalisation: none"):
        config.from_dict(data, "mine.yaml")
    speaker = config.override(config.load_preset("demo"), **{"features.normalisation": "speaker"})
    with pytest.raises(config.ConfigError, match="cannot be expressed"):
        config.override(speaker, **{"acnn.normalisation": "none"})


def test_old_and_new_keys_together_or_inexpressible_combinations_are_errors() -> None:
    data = _demo()
    data["acnn"]["dropout_keep_probability"] = 0.8
    with pytest.raises(config.ConfigError, match="both given: keep only acnn.dropout"):
        config.from_dict(data, "mine.yaml")
    data = _demo()
    data["acnn"]["normalisation"] = "none"
    data["features"]["normalisation"] = "corpus"
    with pytest.raises(config.ConfigError, match=r"mine.yaml.*cannot be expressed"):
        config.from_dict(data, "mine.yaml")
    data = _demo()
    data["acnn"]["dropout_keep_probability_cross"] = 1.5
    del data["acnn"]["dropout_cross"]
    with pytest.raises(config.ConfigError, match="keep probability in"):
        config.from_dict(data)


def test_stored_form_round_trips_the_old_representation() -> None:
    for keep in (0.8, 0.7, 0.2, 0.5, 0.65, 1.0):
        rate = config_compat.keep_to_rate(keep)
        stored = config_compat.stored_form({"acnn": {"dropout": rate, "dropout_cross": rate}, "features": {}})
        assert stored["acnn"]["dropout_keep_probability"] == keep


# -- condition names and the sensitivity plan: validated by the configuration's pydantic models ------------
def test_condition_names_are_validated_in_the_config_model() -> None:
    data = _demo()
    data["protocol"]["conditions"][1]["name"] = "../escape"
    with pytest.raises(
        config.ConfigError, match=r"mine\.yaml(.|\n)*protocol\.conditions\.1\.name: .*results folder"
    ):
        config.from_dict(data, "mine.yaml")


def test_sensitivity_plan_errors_name_the_bad_field(tmp_path: Path) -> None:
    from serlib.evidence import sensitivity

    (tmp_path / "base.yaml").write_text("base: " + str(config.PRESETS_DIR / "demo.yaml") + "\n")
    plan = tmp_path / "plan.yaml"
    cases = {
        "base: base.yaml\nvariants: {}\n": r"plan\.yaml(.|\n)*variants: ",
        "base: base.yaml\nseeds: []\nvariants: {a: {acnn.epochs: 2}}\n": r"seeds: ",
        "base: base.yaml\nvariantz: {a: {}}\n": r"variantz: unknown key",
        "base: base.yaml\nvariants: {reference: {acnn.epochs: 2}}\n": r"variants: .*rename that variant",
        "base: base.yaml\nvariants: {'a b': {acnn.epochs: 2}}\n": r"variants: .*results folder",
        "base: base.yaml\nvariants: {fast: {acnn.epochz: 2}}\n": r"variants\.fast: (.|\n)*acnn\.epochz: unknown key",
        "variants: {a: {acnn.epochs: 2}}\n": r"base: Field required",
    }
    for text, message in cases.items():
        plan.write_text(text)
        with pytest.raises(config.ConfigError, match=message):
            sensitivity.load_plan(plan)
    plan.write_text(
        "base: base.yaml\nconditions: [BL]\nseeds: [0]\nvariants: {rate-0.5: {acnn.dropout: 0.5}}\n"
    )
    reference, variants, output = sensitivity.load_plan(plan)
    assert [c.name for c in reference.protocol.conditions] == ["BL"] and variants == {
        "rate-0.5": {"acnn.dropout": 0.5}
    }
