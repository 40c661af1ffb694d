"""One typed configuration object for the whole pipeline: its validation and YAML files.

``Config`` joins the sections of ``serlib.base.config_sections`` (pydantic models: types, ranges, short
descriptions; the defaults are the paper preset's values, read from ``serlib/presets/paper.yaml``, the
one place they are written). This module loads files with ``base:`` overlays and applies overrides.
The presets are hand-written YAML (``serlib/presets/paper.yaml``, ``demo.yaml``; ``configs/`` links to
them), the evidence behind each choice is in ``docs/configuration.md``, and renamed keys are converted
by ``config_compat``. Unknown keys and wrong types are errors that name the key, so a typo never
silently falls back to a default.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, NonNegativeInt, ValidationError, field_validator, model_validator

from serlib.base import config_compat, yaml_strict
from serlib.base.config_sections import (
    CONDITION_SOURCE_TARGET,
    CONDITION_SOURCES_NONE,
    ACNNConfig,
    AudioConfig,
    AutoencoderConfig,
    ConditionConfig,
    CorpusConfig,
    FeaturesConfig,
    LogMelConfig,
    ProtocolConfig,
    SpectrogramConfig,
    TSNEConfig,
    _folder_name,
    _Strict,
)
from serlib.base.paper_preset import PRESETS_DIR, reader

__all__ = [
    "CONDITION_SOURCES_NONE",
    "CONDITION_SOURCE_TARGET",
    "PRESETS",
    "PRESETS_DIR",
    "ACNNConfig",
    "AudioConfig",
    "AutoencoderConfig",
    "ConditionConfig",
    "Config",
    "ConfigError",
    "CorpusConfig",
    "FeaturesConfig",
    "LogMelConfig",
    "ProtocolConfig",
    "SensitivityPlan",
    "SpectrogramConfig",
    "TSNEConfig",
]

PRESETS = ("demo", "paper")
_paper = reader("")


class ConfigError(ValueError):
    """A configuration file or value is invalid; the message names the key and the fix."""


class Config(_Strict):
    """The whole pipeline: corpora, features, autoencoder, ACNN, protocol and output folder."""

    name: str = _paper("name")
    output_dir: str = _paper("output_dir")
    cache_dir: str | None = Field(
        _paper("cache_dir"), description="feature/representation stores; None = <output_dir>/cache"
    )
    figures_dir: str = _paper("figures_dir")
    seed: int = Field(_paper("seed"), description="global seed for generators, AE training and t-SNE")
    corpora: dict[str, CorpusConfig] = Field(
        default_factory=dict, description="none by default: the paper's are the preset's"
    )
    audio: AudioConfig = Field(default_factory=AudioConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    autoencoder: AutoencoderConfig = Field(default_factory=AutoencoderConfig)
    acnn: ACNNConfig = Field(default_factory=ACNNConfig)
    protocol: ProtocolConfig = Field(default_factory=ProtocolConfig)
    tsne: TSNEConfig = Field(default_factory=TSNEConfig)
    demo_corpus: dict[str, Any] = Field(
        default_factory=dict,
        description="options of serlib.data.demo.speech.generate for corpora of type demo",
    )

    @model_validator(mode="after")
    def _band_edges(self) -> Config:
        """``low_hz < high_hz <= sample_rate / 2``: a band edge beyond Nyquist holds no signal."""
        logmel, nyquist = self.features.logmel, self.audio.sample_rate / 2
        if not logmel.low_hz < logmel.high_hz <= nyquist:
            raise ValueError(
                f"features.logmel: low_hz ({logmel.low_hz}) < high_hz ({logmel.high_hz}) <= audio.sample_rate "
                f"/ 2 ({nyquist:g}) must hold"
            )
        return self

    @model_validator(mode="after")
    def _references(self) -> Config:
        keys = set(self.corpora)
        for key, corpus in self.corpora.items():
            if corpus.type != "union":
                continue
            parts = corpus.options.get("parts")
            if not isinstance(parts, list) or not parts:
                raise ValueError(f"corpora.{key}.options.parts must list the corpus keys the union joins")
            for part in parts:
                if part not in keys or self.corpora[part].type == "union" or part == key:
                    raise ValueError(
                        f"corpora.{key}.options.parts: {part!r} is not another configured corpus "
                        f"(known: {sorted(keys)}; a union cannot contain a union)"
                    )
        for field in ("within_corpus", "cross_corpus_train", "cross_corpus_test"):
            value = getattr(self.protocol, field)
            if value is not None and value not in keys:
                raise ValueError(f"protocol.{field} = {value!r} is not a key of corpora {sorted(keys)}")
        for condition in self.protocol.conditions:
            source = condition.autoencoder_corpus
            if source not in (CONDITION_SOURCES_NONE, CONDITION_SOURCE_TARGET) and source not in keys:
                raise ValueError(
                    f"protocol.conditions[{condition.name}].autoencoder_corpus = {source!r} is neither "
                    f"'none', 'target' nor a key of corpora {sorted(keys)}"
                )
        return self

    # -- derived paths ---------------------------------------------------------------------------
    @property
    def output_path(self) -> Path:
        return Path(self.output_dir)

    @property
    def cache_path(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir else self.output_path / "cache"

    def corpus_root(self, key: str) -> Path:
        """The corpus folder with ``${SERLIB_DATA}`` and ``${OUTPUT_DIR}`` expanded."""
        if key not in self.corpora:
            raise ConfigError(f"corpora.{key} is not configured (known: {sorted(self.corpora)})")
        return Path(expand(self.corpora[key].root, self))

    def condition(self, name: str) -> ConditionConfig:
        for condition in self.protocol.conditions:
            if condition.name == name:
                return condition
        raise ConfigError(f"no condition {name!r} in protocol.conditions")


class SensitivityPlan(_Strict):
    """A sensitivity file (``serlib sensitivity``; ``serlib.evidence.sensitivity``): a base configuration,
    the conditions and seeds to run, and named variants of dotted-key overrides."""

    base: str = Field(description="the configuration file, relative to the sensitivity file")
    conditions: list[str] | None = Field(None, min_length=1, description="None = all of the base's")
    seeds: list[NonNegativeInt] | None = Field(
        None, min_length=1, description="None = the base's protocol.seeds"
    )
    variants: dict[str, dict[str, Any]] = Field(min_length=1, description="name -> {dotted key: value}")
    output_dir: str | None = Field(None, description="None = the base's output_dir + '-sensitivity'")

    @field_validator("variants")
    @classmethod
    def _variant_names(cls, variants: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name in variants:
            _folder_name(name)
            if name == "reference":
                raise ValueError("'reference' names the unchanged configuration; rename that variant")
        return variants


def expand(value: str, config: Config | None = None) -> str:
    """Expand ``${SERLIB_DATA}``, ``${OUTPUT_DIR}`` and other environment variables in a path."""
    if "${SERLIB_DATA}" in value and not os.environ.get("SERLIB_DATA"):
        raise ConfigError(
            f"{value!r} uses ${{SERLIB_DATA}}, which is not set: export SERLIB_DATA=/path/to/data "
            "(the folder holding emodb/, ravdess/, librispeech/)"
        )
    if config is not None:
        value = value.replace("${OUTPUT_DIR}", config.output_dir)
    expanded = os.path.expandvars(value)
    unset = re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", expanded)
    if unset:
        raise ConfigError(
            f"{value!r} uses the environment variable {unset[0]}, which is not set: export {unset[0]}=<folder> "
            "or write the folder into the configuration"
        )
    return expanded


def format_errors(error: ValidationError, source: str, what: str = "configuration") -> str:
    """One line per invalid field, by dotted key, under a line naming the file."""
    lines = [f"invalid {what} in {source}:"]
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key (check its spelling against `serlib config show --preset paper`)"
        lines.append(f"  {key}: {message}")
    return "\n".join(lines)


def from_dict(data: dict[str, Any], source: str = "<dict>") -> Config:
    """Validate a plain dict into a Config, raising ConfigError that names every bad key. Renamed keys
    (``config_compat.RENAMED``) are converted, with a one-line warning naming the new key."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys, got {type(data).__name__}")
    try:
        data = config_compat.upgrade(data)
    except ValueError as error:
        raise ConfigError(f"invalid configuration in {source}: {error}") from None
    try:
        return Config.model_validate(data)
    except ValidationError as error:
        raise ConfigError(format_errors(error, source)) from None


# -- files: YAML, and overlays on a base file ----------------------------------------------------------
BASE_KEY = "base"
REPLACED = ("corpora",)
"""Mappings an overlay replaces whole (their keys are names, not settings); every other mapping merges."""


def read_yaml(path: Path) -> dict[str, Any]:
    """One YAML mapping, with errors that name the file."""
    try:
        data = yaml_strict.load(path.read_text(encoding="utf-8-sig"))
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, got {type(data).__name__}")
    return data


def merge(base: dict[str, Any], overlay: dict[str, Any], path: str = "") -> dict[str, Any]:
    """``overlay`` on ``base``: mappings merge key by key (except ``REPLACED``), other values replace."""
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and f"{path}{key}" not in REPLACED:
            merged[key] = merge(merged[key], value, f"{path}{key}.")
        else:
            merged[key] = value
    return merged


def read_config(path: Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A configuration file as a plain mapping, laid over its ``base:`` file (relative to it) if any."""
    if not path.is_file():
        raise ConfigError(f"configuration file {path} does not exist (presets: {', '.join(PRESETS)})")
    if path.resolve() in _seen:
        raise ConfigError(f"{path}: its base files lead back to it; remove one `base:` line")
    data = read_yaml(path)
    base = data.pop(BASE_KEY, None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise ConfigError(
            f"{path}: base must be a preset name ({', '.join(PRESETS)}) or a file name relative to it "
            f"(e.g. base: paper, base: my-lab.yaml), got {base!r}"
        )
    return merge(read_config(base_path(path, base), (*_seen, path.resolve())), data)


def base_path(path: Path, base: str) -> Path:
    """The file a ``base:`` line names: a file beside ``path`` when one exists (so a local copy of a
    preset wins), else a shipped preset named bare or with its file name (``paper``, ``paper.yaml``)."""
    beside = path.parent / base
    if beside.is_file():
        return beside
    name = base.removesuffix(".yaml").removesuffix(".yml")
    if name in PRESETS and "/" not in base:
        return preset_path(name)
    raise ConfigError(
        f"{path}: base: {base} is neither a preset ({', '.join(PRESETS)}) nor a file beside it "
        f"({beside} does not exist); write base: paper or the path of a configuration file"
    )


def load(path: str | os.PathLike[str]) -> Config:
    """Read and validate a YAML configuration file (an overlay on its ``base:`` file where it names one)."""
    path = Path(path)
    return from_dict(read_config(path), str(path))


def override(config: Config, **changes: Any) -> Config:
    """A copy with dotted-key changes, e.g. ``override(c, **{"acnn.epochs": 2})``, re-validated.
    Renamed keys are converted (``config_compat.upgrade_key``)."""
    data = config.model_dump(mode="json")
    for dotted, value in changes.items():
        try:
            dotted, value = config_compat.upgrade_key(dotted, value, data)
        except ValueError as error:
            raise ConfigError(f"override: {error}") from None
        node = data
        parts = dotted.split(".")
        for part in parts[:-1]:
            if part not in node or not isinstance(node[part], dict):
                raise ConfigError(f"override {dotted!r}: {part!r} is not a section of the configuration")
            node = node[part]
        node[parts[-1]] = value
    return from_dict(data, "override")


def keep_conditions(config: Config, names: list[str] | tuple[str, ...]) -> Config:
    """The configuration with only the named conditions, in their configured order; when Figure 2's
    condition is not among them, the last kept condition takes its place."""
    for name in names:
        config.condition(name)  # raises ConfigError when unknown
    kept = [c.model_dump(mode="json") for c in config.protocol.conditions if c.name in names]
    changes: dict[str, Any] = {"protocol.conditions": kept}
    if config.protocol.figure2_condition is not None and config.protocol.figure2_condition not in names:
        changes["protocol.figure2_condition"] = kept[-1]["name"]
    return override(config, **changes)


# -- presets: hand-written YAML files shipped in serlib/presets/ (PRESETS_DIR) ---------------------------


def preset_path(name: str) -> Path:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS_DIR / f"{name}.yaml"


def load_preset(name: str) -> Config:
    """The ``paper`` preset (every number of the paper) or the ``demo`` preset (minutes on 2 cores)."""
    return from_dict(read_config(preset_path(name)), f"preset {name} ({preset_path(name)})")


def resolve(preset: str | None = None, path: str | os.PathLike[str] | None = None) -> Config:
    """A config from a file if given, else from a preset (default: demo)."""
    if path is not None:
        return load(path)
    return load_preset(preset or "demo")
