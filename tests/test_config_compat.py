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
    with pytest.warns(config_compat.ConfigDeprecationWarning, match=rf"acnn\.{old}.*write acnn\.{new}: {expected}"):
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
