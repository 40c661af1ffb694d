"""The references of ``serlib check`` (``serlib/references/<name>.csv`` + ``<name>.json``) and the
comparison hash that says which reference a run belongs to.

A reference holds Table 1 of one configuration, UAR in %: per-seed values (``setting, condition, seed,
uar``: the demo's reference grid, the real-speech runs) or a summary over seeds (``setting, condition,
seeds, mean, min, max``: the paper's Table 1, whose sd is estimated from its range). Its JSON holds the
comparison hash, the configuration without the excluded keys, the conditions, seeds, machine,
versions, commit and the command that made it. ``Reference.cells`` gives every cell's value, seed
standard deviation and seed count, for the seed mean and the difference to BL.

Per-seed values carry the CPU family that computed them (column ``cpu_family``, e.g. ``Intel AVX-512``:
``cpu_family``): floats differ between CPU families, so a reference may hold the same seeds computed on
two families, each with its environment under the JSON's ``families``, and ``serlib check`` compares a
run with its own family's values where they exist (``serlib.evidence.check_seeds``). The spread of the
seeds (``cells``) comes from one family, the reference's first (``cpu_family`` in the JSON).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import integrate, stats

from serlib.base import config as config_module
from serlib.base import config_compat
from serlib.protocol.labeled import ProtocolError

REFERENCES_FOLDER = "references"  # inside the serlib package (package data)
# Parts of the configuration that cannot change a Table 1 value: where things are, how many workers,
# which seeds (the check compares seed spreads), the jit switches and the ACNN implementation (the same
# function within float32 rounding, like another CPU), and what Table 1 does not show.
COMPARISON_EXCLUDED = (
    "name",
    "output_dir",
    "cache_dir",
    "figures_dir",
    "corpora.*.root",
    "features.n_jobs",
    "autoencoder.encode_batch_size",
    "autoencoder.jit_compile",
    "autoencoder.mixed_precision",
    "autoencoder.distribution",
    "acnn.jit_compile",
    "acnn.implementation",
    "features.spectrogram.store_decimals",  # storage rounding (<= 1e-4 of the AE's input): not the experiment
    "protocol.seeds",
    "protocol.conditions",  # compared one by one (``condition_differences``): a run of some of them is comparable
    "protocol.n_jobs",
    "protocol.scheduler_address",
    "protocol.figure2_condition",
    "protocol.cross_corpus_matrix",
    "protocol.egemaps_svm",
    "tsne",
)


class ReferencesError(ProtocolError):
    """A reference cannot be read; the message names the file and the fix."""


FAMILY_COLUMN = "cpu_family"


# -- CPU families -----------------------------------------------------------------------------------
def cpu_family(model: str, features: list[str] | str | None = None) -> str:
    """The CPU family whose floats a run shares: the vendor and the widest vector instruction set
    (``Intel AVX-512``, ``AMD AVX2``), since oneDNN and OpenBLAS choose their kernels by both.
    ``features`` as ``provenance.cpu_info`` records them (a list, or one space-separated string)."""
    flags = set(features.split() if isinstance(features, str) else (features or []))
    lowered = model.lower()
    vendor = next(
        (name for key, name in (("intel", "Intel"), ("amd", "AMD"), ("apple", "Apple")) if key in lowered),
        (model.split() or ["unknown"])[0],
    )
    if not flags:  # a model name alone (a reference typed from a report): the ISA it names, if any
        flags = {isa for isa, text in (("avx512f", "avx-512"), ("avx2", "avx2")) if text in lowered}
    isa = next(
        (name for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX")) if flag in flags),
        "",
    )
    return f"{vendor} {isa}".strip()


def record_family(record: dict[str, Any]) -> str:
    """The CPU family of a provenance record (``provenance.json``)."""
    cpu = record.get("machine", {}).get("cpu", {})
    return cpu_family(str(cpu.get("model", "unknown")), cpu.get("features"))


# -- the comparison hash -------------------------------------------------------------------------------
def upgraded(data: dict[str, Any]) -> dict[str, Any]:
    """A configuration mapping (a whole one, or as a reference stores it) in the current key names, a copy
    (``config_compat.upgrade`` without its warnings: stored files are not the reader's to edit)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", config_compat.ConfigDeprecationWarning)
        return copy.deepcopy(config_compat.upgrade(data))


def comparison_config(config: config_module.Config | dict[str, Any]) -> dict[str, Any]:
    """The configuration as a plain dict without the ``COMPARISON_EXCLUDED`` keys."""
    # the current key names (a mapping with old keys is converted; references written before issue 43
    # hashed the old form and are rewritten by serlib migrate)
    data = upgraded(config) if isinstance(config, dict) else config.model_dump(mode="json")
    for dotted in COMPARISON_EXCLUDED:
        _drop(data, dotted.split("."))
    return data


def _drop(node: Any, parts: list[str]) -> None:
    if not isinstance(node, dict) or not parts:
        return
    head, rest = parts[0], parts[1:]
    children = list(node) if head == "*" else [head]
    for key in children:
        if key not in node:
            continue
        if rest:
            _drop(node[key], rest)
        else:
            del node[key]


def comparison_hash(config: config_module.Config | dict[str, Any]) -> str:
    """sha256 of ``comparison_config``: equal hashes, the same experiment up to seeds and machine."""
    text = json.dumps(comparison_config(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def config_differences(
    mine: dict[str, Any], theirs: dict[str, Any], prefix: str = ""
) -> list[tuple[str, Any, Any]]:
    """``(dotted key, mine, theirs)`` of every leaf that differs between two comparison configs."""
    changed: list[tuple[str, Any, Any]] = []
    for key in sorted(set(mine) | set(theirs)):
        a, b = mine.get(key, "absent"), theirs.get(key, "absent")
        if isinstance(a, dict) and isinstance(b, dict):
            changed += config_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            changed.append((f"{prefix}{key}", a, b))
    return changed


def _conditions(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in data.get("protocol", {}).get("conditions", [])}


def condition_differences(
    run_config: dict[str, Any], reference_conditions: list[dict[str, Any]]
) -> dict[str, str]:
    """``{condition: why}`` for the run's conditions that the reference lacks or defines otherwise."""
    theirs = {c["name"]: c for c in reference_conditions}
    why = {}
    for name, mine in _conditions(run_config).items():
        if name not in theirs:
            why[name] = "the reference has no such condition"
        elif mine != theirs[name]:
            why[name] = f"defined otherwise: yours {json.dumps(mine)}, reference {json.dumps(theirs[name])}"
    return why


def range_constant(n: int) -> float:
    """d2(n): the expected range of n independent standard normal draws (d2(10) = 3.0775)."""
    if n < 2:
        return math.nan

    def integrand(x: float) -> float:
        return float(1.0 - stats.norm.cdf(x) ** n - (1.0 - stats.norm.cdf(x)) ** n)

    return float(integrate.quad(integrand, -np.inf, np.inf)[0])


# -- references -------------------------------------------------------------------------------------
@dataclass
class Reference:
    """One shipped reference: its metadata (``<name>.json``) and values (``<name>.csv``, UAR in %)."""

    name: str
    meta: dict[str, Any]
    values: pd.DataFrame

    @property
    def per_seed(self) -> bool:
        return "seed" in self.values.columns

    @property
    def baseline(self) -> str:
        return str(self.meta.get("baseline", "BL"))

    @property
    def family(self) -> str:
        """The CPU family of the reference's first values (the one its seed spread comes from)."""
        if self.meta.get(FAMILY_COLUMN):
            return str(self.meta[FAMILY_COLUMN])
        machine = self.meta.get("machine", {})
        environment = self.meta.get("environment", {})
        model = environment.get("CPU") or machine.get("model") or "unknown"
        return cpu_family(str(model), environment.get("CPU instruction sets") or machine.get("features"))

    def family_environment(self, family: str) -> dict[str, str] | None:
        """The environment items (``provenance.environment_items``) under which ``family``'s values were
        computed; None when the reference does not record them (values typed from a report)."""
        record = self.meta.get("families", {}).get(family)
        if record is not None:
            return dict(record.get("environment") or {}) or None
        if family == self.family and self.meta.get("environment"):
            return dict(self.meta["environment"])
        return None

    def family_values(self, family: str | None = None) -> pd.DataFrame:
        """The per-seed values computed on ``family`` (default: the reference's own, ``family``)."""
        family = self.family if family is None else family
        return self.values[self.values[FAMILY_COLUMN] == family]

    def cells(self) -> pd.DataFrame:
        """One row per (setting, condition, quantity): value, sd, n, sd source (per-seed references:
        over the seeds of the reference's own CPU family)."""
        rows = []
        values = self.family_values() if self.per_seed else self.values
        for (setting, condition), group in values.groupby(["setting", "condition"], sort=False):
            base = values[(values["setting"] == setting) & (values["condition"] == self.baseline)]
            if self.per_seed:
                uar = group.set_index("seed")["uar"].astype(float)
                rows.append(_cell(setting, condition, "mean", uar.mean(), uar.std(ddof=1), len(uar), "seeds"))
                if condition != self.baseline and not base.empty:
                    diff = (uar - base.set_index("seed")["uar"].astype(float)).dropna()
                    rows.append(
                        _cell(
                            setting,
                            condition,
                            "delta",
                            diff.mean(),
                            diff.std(ddof=1),
                            len(diff),
                            "paired seeds",
                        )
                    )
                continue
            row = group.iloc[0]
            n = int(row["seeds"])
            sd, source = _summary_sd(row, n)
            rows.append(_cell(setting, condition, "mean", float(row["mean"]), sd, n, source))
            if condition != self.baseline and not base.empty:
                base_row = base.iloc[0]
                base_sd, _ = _summary_sd(base_row, int(base_row["seeds"]))
                rows.append(
                    _cell(
                        setting,
                        condition,
                        "delta",
                        float(row["mean"]) - float(base_row["mean"]),
                        math.hypot(sd, base_sd),
                        min(n, int(base_row["seeds"])),
                        "sqrt(sd² + sd_BL²), unpaired",
                    )
                )
        return pd.DataFrame(rows)


def _cell(setting: str, condition: str, quantity: str, value: float, sd: float, n: int, source: str) -> dict:
    return {
        "setting": setting,
        "condition": condition,
        "quantity": quantity,
        "value": float(value),
        "sd": float(sd),
        "n": int(n),
        "sd_source": source,
    }


def _summary_sd(row: pd.Series, n: int) -> tuple[float, str]:
    if "sd" in row and pd.notna(row["sd"]):
        return float(row["sd"]), "stated sd"
    return (float(row["max"]) - float(row["min"])) / range_constant(n), f"(max - min) / d2({n})"


def references_dir() -> Path:
    return Path(str(resources.files("serlib"))) / REFERENCES_FOLDER


def paper_table1() -> dict[str, dict[str, tuple[float, float, float]]]:
    """Neumann & Vu (2019), Table 1 (UAR %, mean/min/max over ten seeds) per condition and setting, read
    from the shipped ``paper`` reference: the one place the paper's results are written."""
    frame = pd.read_csv(references_dir() / "paper.csv")
    table: dict[str, dict[str, tuple[float, float, float]]] = {}
    for row in frame.itertuples(index=False):
        table.setdefault(str(row.condition), {})[str(row.setting)] = (
            float(row.mean),
            float(row.min),
            float(row.max),
        )
    return table


def reference_names(folder: Path | None = None) -> list[str]:
    folder = references_dir() if folder is None else folder
    return sorted(path.stem for path in folder.glob("*.json") if (folder / f"{path.stem}.csv").is_file())


def load_reference(name: str, folder: Path | None = None) -> Reference:
    """The reference ``name`` from ``folder`` (default: the package's ``serlib/references``)."""
    folder = references_dir() if folder is None else Path(folder)
    meta_path, values_path = folder / f"{name}.json", folder / f"{name}.csv"
    if not meta_path.is_file() or not values_path.is_file():
        known = ", ".join(reference_names(folder)) or "none"
        raise ReferencesError(
            f"no reference {name!r} in {folder} (needs {name}.json and {name}.csv; known: {known})"
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        values = pd.read_csv(values_path, comment="#")
    except (OSError, ValueError) as error:
        raise ReferencesError(f"reference {meta_path} / {values_path} cannot be read ({error})") from None
    needed = {"setting", "condition"} | (
        {"seed", "uar"} if "seed" in values.columns else {"seeds", "mean", "min", "max"}
    )
    if not needed <= set(values.columns):
        raise ReferencesError(f"{values_path} lacks the columns {sorted(needed - set(values.columns))}")
    reference = Reference(name, meta, values)
    if reference.per_seed and FAMILY_COLUMN not in values.columns:  # written before families were kept
        reference.values = values.assign(**{FAMILY_COLUMN: reference.family})
    return reference


def find_reference(key: str, folder: Path | None = None) -> Reference | None:
    """The reference whose comparison hash is ``key`` (None when no reference matches)."""
    for name in reference_names(folder):
        reference = load_reference(name, folder)
        if reference.meta.get("comparison_sha256") == key:
            return reference
    return None
