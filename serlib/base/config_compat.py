"""Renamed configuration keys: old files still read; the old form for the migration of stored values.

Issue 37 gave the configuration one dropout convention and one normalisation setting:

- ``acnn.dropout_keep_probability`` (TF1 keep probability) became ``acnn.dropout`` (the Keras rate,
  ``1 - keep``), and ``acnn.dropout_keep_probability_cross`` became ``acnn.dropout_cross``;
- ``acnn.normalisation: standardise | none`` merged into ``features.normalisation``: ``none`` is the old
  ``acnn.normalisation: none`` (with the old ``features.normalisation: train``), ``train`` / ``corpus`` /
  ``speaker`` the old values with the in-model standardisation on.

``upgrade`` converts a configuration written with the old keys (one warning line per key, naming the
new one). ``stored_form`` is the reverse: the configuration as the code before the rename dumped it,
which fingerprints and config hashes were computed from until issue 43. They are now computed from the
current keys; ``stored_form`` serves only ``serlib.evidence.migration`` (``serlib migrate``), which
recomputes each stored value the old way before it replaces it (tests/test_fingerprint_stability.py).
``dumped_only_when_set`` does the same for a key added later with a None default
(``features.spectrogram.store_decimals``, issue 46): left at None, it is not dumped, so nothing changes.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from typing import Any

from pydantic import model_serializer

from serlib.base import paper_preset

RENAMED = {
    "acnn.dropout_keep_probability": "acnn.dropout",
    "acnn.dropout_keep_probability_cross": "acnn.dropout_cross",
    "acnn.normalisation": "features.normalisation",
}
"""Old dotted key -> the key that replaced it."""

_DIGITS = 12  # 1 - 0.8 is 0.19999999999999996 in binary floating point: round the conversion back to 0.2


class ConfigDeprecationWarning(FutureWarning):
    """A configuration uses a renamed key (shown by default, unlike DeprecationWarning)."""


def keep_to_rate(keep: float) -> float:
    """The Keras dropout rate of a TF1 keep probability (``1 - keep``, decimal-exact)."""
    return round(1.0 - float(keep), _DIGITS)


def _warn(old: str, new: str) -> None:
    warnings.warn(f"{old} is deprecated: write {new} instead", ConfigDeprecationWarning, stacklevel=4)


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of a configuration mapping with the old keys converted to the new ones (one warning each).

    Raises ValueError (turned into a ConfigError naming the file by the loader) when old and new keys
    are both given, or when the old settings combine in a way the single setting cannot express."""
    acnn = data.get("acnn")
    if not isinstance(acnn, dict) or not set(acnn) & {
        "dropout_keep_probability",
        "dropout_keep_probability_cross",
        "normalisation",
    }:
        return data
    data = copy.deepcopy(data)
    acnn = data["acnn"]
    for old, new in (
        ("dropout_keep_probability", "dropout"),
        ("dropout_keep_probability_cross", "dropout_cross"),
    ):
        if old not in acnn:
            continue
        keep = acnn.pop(old)
        if new in acnn:
            raise ValueError(
                f"acnn.{old} and acnn.{new} are both given: keep only acnn.{new} (the Keras rate)"
            )
        if not isinstance(keep, int | float) or isinstance(keep, bool) or not 0 < keep <= 1:
            raise ValueError(
                f"acnn.{old} must be a keep probability in (0, 1], got {keep!r}; write acnn.{new}"
            )
        acnn[new] = keep_to_rate(keep)
        _warn(f"acnn.{old}: {keep}", f"acnn.{new}: {acnn[new]} (the Keras rate, 1 - keep probability)")
    if "normalisation" in acnn:
        mode = acnn.pop("normalisation")
        features = data.setdefault("features", {})
        if not isinstance(features, dict):
            return data  # the schema reports the bad section
        current = features.get("normalisation", paper_preset.value("features.normalisation"))
        features["normalisation"] = normalisation_from_old(mode, current)
    return data


def normalisation_from_old(mode: Any, current: str) -> str:
    """``features.normalisation`` for the old ``acnn.normalisation: mode`` over the current
    ``features.normalisation``, with the warning; one rule for a file and a dotted override alike.

    ``none`` (no in-model standardisation) becomes ``none`` where the current mode is train (the old
    default) or none; ``standardise`` (the in-model standardisation on) keeps the current mode. Any other
    combination cannot be expressed in the one setting: a ValueError says what to write."""
    if mode == "none":
        if current not in ("train", "none"):
            raise ValueError(
                f"acnn.normalisation: none with features.normalisation: {current} cannot be expressed in "
                "the one setting features.normalisation (none | train | corpus | speaker): remove "
                "acnn.normalisation, and choose features.normalisation"
            )
        _warn("acnn.normalisation: none", "features.normalisation: none")
        return "none"
    if mode == "standardise":
        if current == "none":
            raise ValueError(
                "acnn.normalisation: standardise contradicts features.normalisation: none: remove "
                "acnn.normalisation and write features.normalisation: train (or corpus, speaker)"
            )
        _warn(
            "acnn.normalisation: standardise",
            f"features.normalisation: {current} (and no acnn.normalisation)",
        )
        return current
    raise ValueError(
        f"acnn.normalisation {mode!r} is neither standardise nor none; the setting is now "
        "features.normalisation: none | train | corpus | speaker"
    )


def upgrade_key(dotted: str, value: Any, current: dict[str, Any]) -> tuple[str, Any]:
    """A dotted override with an old key (``override(c, **{"acnn.dropout_keep_probability": 0.2})``, a
    sensitivity variant) as the new key and value, with the deprecation warning. ``current`` is the
    configuration being changed (its dump): ``acnn.normalisation`` is converted against its
    ``features.normalisation`` exactly as in a file (``normalisation_from_old``)."""
    if dotted in ("acnn.dropout_keep_probability", "acnn.dropout_keep_probability_cross"):
        new = RENAMED[dotted]
        if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value <= 1:
            raise ValueError(f"{dotted} must be a keep probability in (0, 1], got {value!r}; write {new}")
        rate = keep_to_rate(value)
        _warn(f"{dotted}: {value}", f"{new}: {rate} (the Keras rate, 1 - keep probability)")
        return new, rate
    if dotted == "acnn.normalisation":
        features = current.get("features", {})
        mode = features.get("normalisation", paper_preset.value("features.normalisation"))
        return "features.normalisation", normalisation_from_old(value, mode)
    return dotted, value


def stored_form(data: dict[str, Any]) -> dict[str, Any]:
    """A configuration mapping (new or old keys) in the form the code before issue 43 hashed (for the
    migration of stored values only): ``acnn.dropout_keep_probability[_cross]`` and ``acnn.normalisation`` with
    ``features.normalisation`` train/corpus/speaker. Idempotent; the input is not changed."""
    data = copy.deepcopy(data)
    acnn = data.get("acnn")
    features = data.get("features")
    if isinstance(acnn, dict):
        for new, old in (
            ("dropout", "dropout_keep_probability"),
            ("dropout_cross", "dropout_keep_probability_cross"),
        ):
            if new in acnn:
                acnn[old] = keep_to_rate(acnn.pop(new))  # 1 - rate, rounded as keep_to_rate
        if "normalisation" not in acnn and isinstance(features, dict):
            mode = features.get("normalisation", "train")
            acnn["normalisation"] = "none" if mode == "none" else "standardise"
            if mode == "none":
                features["normalisation"] = "train"
    return data


def dumped_only_when_set(*names: str) -> Any:
    """A pydantic wrap-serializer for keys added after runs were stored: dumped only when not None, so
    that a configuration leaving them at None (what every earlier configuration meant) dumps, hashes and
    fingerprints exactly as before the key existed. Assign it in the model's class body."""

    def serialise(self: Any, dump: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
        return {key: value for key, value in dump(self).items() if key not in names or value is not None}

    return model_serializer(mode="wrap")(serialise)
