"""``acnn.implementation: auto`` for a protocol: one path per output folder, recorded, never re-decided.

The fast and reference ACNN differ in the last float digits, so every run of a grid (and of a grid
resumed later, or continued by another sitting in the same folder) must use the same path. ``resolve``
turns ``auto`` into ``fast`` or ``reference`` for the configuration's output folder, in this order:

1. ``SERLIB_ACNN_IMPLEMENTATION`` forces it (a user's decision, like editing the configuration: runs
   finished with the other path then no longer match their fingerprint and are trained again);
2. the folder's record ``results/acnn-implementation.json``, written when a grid first resolved ``auto``;
3. runs already finished in the folder (before ``auto`` existed, or copied by ``serlib sensitivity``):
   the path whose fingerprints they carry;
4. the machine's choice (``serlib.models.acnn.choice``: its cache, else a calibration).

The fingerprint of a run holds the *resolved* path: ``auto`` that resolved to ``fast`` hashes exactly as
an explicit ``implementation: fast`` (the same computation gives the same numbers), so the stored runs of
configurations that name ``fast`` or ``reference`` keep their fingerprints, and so do the runs made
when ``fast`` was the default.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from serlib.base.config import Config, override
from serlib.base.files import write_json
from serlib.models.acnn import choice as acnn_choice
from serlib.models.acnn.choice import Choice
from serlib.protocol import labeled

log = logging.getLogger(__name__)

RECORD = "acnn-implementation.json"


def record_path(output_dir: str | Path) -> Path:
    """The folder's record of the path its runs use."""
    return Path(output_dir) / "results" / RECORD


def with_implementation(config: Config, implementation: str) -> Config:
    return override(config, **{"acnn.implementation": implementation})


Fingerprints = Callable[[Config], dict[tuple[str, str], str]]
Lengths = Callable[[Config], Any]


def resolve(
    config: Config, fingerprints_of: Fingerprints, lengths_of: Lengths, write: bool = False
) -> tuple[Config, Choice]:
    """The configuration with ``acnn.implementation`` resolved for its output folder, and the choice.

    ``fingerprints_of(config)``: the fingerprint of each (setting, condition) of an explicit configuration;
    ``lengths_of(config)``: the frames of its training utterances, for the calibration
    (``conditions.resolve_implementation`` passes both). ``write`` records a new choice in the folder
    (``grid.run_protocol`` and ``runs.run_one`` do; a reader such as a fingerprint check does not)."""
    if config.acnn.implementation != "auto":
        return config, Choice(config.acnn.implementation, "config")
    path = record_path(config.output_dir)
    recorded = _recorded(path)
    value = acnn_choice.forced()
    if value is not None:
        choice = Choice(value, "environment")
        if recorded is not None and recorded.implementation != value:
            log.warning(
                "%s: this folder's runs used implementation %s; %s=%s trains them again with %s",
                path,
                recorded.implementation,
                acnn_choice.VARIABLE,
                value,
                value,
            )
    elif recorded is not None:
        choice = recorded
    else:
        choice = _from_finished_runs(config, fingerprints_of) or acnn_choice.resolve(
            config.acnn, *labeled.acnn_input_shape(config.features), lengths=lengths_of(config)
        )
    if write and (recorded is None or recorded.implementation != choice.implementation):
        write_json(choice.record(), path)
    return with_implementation(config, choice.implementation), choice


def _recorded(path: Path) -> Choice | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    if data.get("implementation") not in acnn_choice.PATHS:
        raise acnn_choice.ImplementationError(
            f"{path} does not name 'fast' or 'reference': delete it (the runs' path is then read from their "
            "fingerprints) or set acnn.implementation explicitly"
        )
    return Choice(data["implementation"], "output folder", data.get("cpu_seconds_per_utterance", {}))


def _from_finished_runs(config: Config, fingerprints_of: Fingerprints) -> Choice | None:
    """The path whose fingerprints most of the folder's finished runs carry, if any carries one."""
    results = Path(config.output_dir) / "results"
    stored: dict[tuple[str, str], set[str]] = {}
    for metrics in results.glob("*/*/seed*/fold*/metrics.json"):
        try:
            value = json.loads(metrics.read_text(encoding="utf-8")).get("fingerprint")
        except (OSError, ValueError, AttributeError):
            continue
        stored.setdefault((metrics.parts[-5], metrics.parts[-4]), set()).add(value)
    if not stored:
        return None
    counts = {}
    for implementation in acnn_choice.PATHS:
        expected = fingerprints_of(with_implementation(config, implementation))
        counts[implementation] = sum(expected.get(cell) in values for cell, values in stored.items())
    best = max(acnn_choice.PATHS, key=lambda p: counts[p])
    if counts[best] == 0:
        return None
    log.info("%s: its finished runs used implementation %s; auto keeps it", results, best)
    return Choice(best, "finished runs in the output folder")
