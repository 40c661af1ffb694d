"""The paper's settings, read from the one file that writes them: ``serlib/presets/paper.yaml``.

Every number of the paper's experiment is written once, in the hand-written preset (each with its
reason). The schema's defaults (``serlib.base.config_sections``) and the defaults of the lower layers'
functions (``features.logmel.logmel``, ``features.spectrogram.audeep_chunks``, ...) read their values
from here, so that a changed preset value changes them all and no copy can drift
(tests/test_paper_facts.py fails where a paper setting is written a second time).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from serlib.base import yaml_strict

PRESETS_DIR = Path(__file__).resolve().parent.parent / "presets"
"""``paper.yaml`` (the paper's experiment, every hyperparameter with its reason) and ``demo.yaml`` (an
overlay on it); ``configs/paper.yaml`` and ``configs/demo.yaml`` are links to them."""
PAPER_PRESET = PRESETS_DIR / "paper.yaml"


class PaperPresetError(LookupError):
    """A setting is read from the paper preset that the preset does not write."""


@functools.cache
def _values() -> dict[str, Any]:
    data = yaml_strict.load(PAPER_PRESET.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise PaperPresetError(f"{PAPER_PRESET}: the top level must be a mapping of keys")
    return data


def value(dotted: str) -> Any:
    """The paper preset's value of a dotted key (``"features.logmel.bands"``; ``""`` is the whole
    preset), a copy. Raises ``PaperPresetError`` naming the file when the preset lacks the key."""
    node: Any = _values()
    for part in dotted.split(".") if dotted else ():
        if not isinstance(node, dict) or part not in node:
            raise PaperPresetError(
                f"{PAPER_PRESET} has no key {dotted!r}: the schema and the functions read the paper's "
                "settings from it; add the key there (with its reason)"
            )
        node = node[part]
    return copy.deepcopy(node)


def reader(section: str) -> Callable[[str], Any]:
    """``value`` of keys under one section: ``logmel = reader("features.logmel"); logmel("bands")``."""
    return lambda key: value(f"{section}.{key}" if section else key)
