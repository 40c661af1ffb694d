"""One typed configuration object for the whole pipeline: its schema, validation and YAML files.

The schema only: pydantic models (types, ranges, short descriptions; the defaults are the paper
preset's values), loading files with ``base:`` overlays, and overrides. The presets are hand-written
YAML (``serlib/presets/paper.yaml``, ``demo.yaml``; ``configs/`` links to them), the evidence behind
each choice is in ``docs/configuration.md``, and renamed keys are converted by ``config_compat``.
Unknown keys and wrong types are errors that name the key, so a typo never silently falls back to a
default.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from serlib.base import config_compat, yaml_strict

PRESETS = ("demo", "paper")
CONDITION_SOURCES_NONE = "none"
CONDITION_SOURCE_TARGET = "target"


class ConfigError(ValueError):
    """A configuration file or value is invalid; the message names the key and the fix."""


_NAME = re.compile(r"^[A-Za-z0-9_.+-]+$")


def _folder_name(name: str) -> str:
    """A condition or variant name names a results folder: letters, digits, '_', '-', '.', '+' only."""
    if not _NAME.match(name):
        raise ValueError(
            f"{name!r} must be letters, digits, '_', '-', '.' or '+' (it names a results folder)"
        )
    return name


class _Strict(BaseModel):
    # allow_inf_nan=False: `.inf` or `.nan` for any float is an error (learning_rate: .inf trains to NaN)
    model_config = ConfigDict(extra="forbid", validate_assignment=True, strict=False, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_boolean_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """Lax mode would read ``epochs: yes`` as 1; a boolean is only accepted where one is expected."""
        annotation = cls.model_fields[info.field_name].annotation if info.field_name else None
        if (
            isinstance(value, bool)
            and annotation is not Any
            and bool not in (annotation, *get_args(annotation))
        ):
            raise ValueError("expected a number or text, got a boolean (true/false/yes/no)")
        return value


class CorpusConfig(_Strict):
    """Where one corpus lives and how to read it (see ``serlib.data.loaders.load``)."""

    type: Literal[
        "iemocap",
        "msp_improv",
        "tedlium2",
        "librispeech",
        "emodb",
        "ravdess",
        "nemo",
        "ased",
        "manifest",
        "demo",
        "union",
    ] = Field(description="loader name; 'union' joins other configured corpora (options.parts)")
    root: str = Field(
        "",
        description="corpus folder (or manifest CSV for type 'manifest'; none for 'union'); "
        "'${SERLIB_DATA}' and '${OUTPUT_DIR}' are expanded",
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="loader options, e.g. talks: 400; every loader takes segment_s (split rows into pieces)",
    )

    @model_validator(mode="after")
    def _root_given(self) -> CorpusConfig:
        if self.type != "union" and not self.root:
            raise ValueError(f"root is required for a corpus of type {self.type!r}")
        return self


class AudioConfig(_Strict):
    sample_rate: int = Field(
        16000, gt=0, description="every file is resampled to this rate (soxr, high quality)"
    )


class LogMelConfig(_Strict):
    """ACNN input: openSMILE log-Mel filterbank energies (paper, Sec. 2)."""

    bands: int = Field(26, gt=0)
    low_hz: float = Field(0.0, ge=0)
    high_hz: float = Field(6500.0, gt=0)
    frame_s: float = Field(0.025, gt=0)
    shift_s: float = Field(0.010, gt=0)
    engine: Literal["numpy", "opensmile"] = Field(
        "numpy", description="numpy: openSMILE's definitions vectorised (docs/configuration.md#logmel-engine)"
    )
    max_frames: int = Field(
        750,
        gt=0,
        description="7.5 s at 10 ms: longer turns are cut, shorter ones zero-padded (paper, Sec. 3)",
    )


class SpectrogramConfig(_Strict):
    """AE input: auDeep-style mel spectrograms (paper, Sec. 2)."""

    window_s: float = Field(0.08, gt=0)
    overlap_s: float = Field(0.04, ge=0)
    mel_bands: int = Field(128, gt=0)
    clip_below_db: float | None = Field(
        -60.0, description="auDeep's tutorial value; not stated (docs/configuration.md#spectrogram-clip)"
    )
    clip_above_db: float | None = None
    fixed_length_s: float | None = Field(
        7.5,
        description="auDeep needs one length per data set: the paper's 7.5 s rule, 186 frames",
    )
    center_fixed: bool = False
    chunk_length_s: float | None = None
    chunk_count: int | None = None
    store_decimals: int | None = Field(None, ge=1, le=7, description="None: lossless; docs/configuration.md")
    _hashes_unchanged_when_none = config_compat.dumped_only_when_set("store_decimals")

    @model_validator(mode="after")
    def _chunks_together(self) -> SpectrogramConfig:
        if (self.chunk_length_s is None) != (self.chunk_count is None):
            raise ValueError(
                "chunk_length_s and chunk_count must be given together or not at all (as in auDeep)"
            )
        if self.overlap_s >= self.window_s:
            raise ValueError("overlap_s must be smaller than window_s")
        return self


class FeaturesConfig(_Strict):
    logmel: LogMelConfig = Field(default_factory=LogMelConfig)
    spectrogram: SpectrogramConfig = Field(default_factory=SpectrogramConfig)
    normalisation: Literal["none", "train", "corpus", "speaker"] = Field(
        "train",
        description="how log-Mel and eGeMAPS features are standardised: none = as extracted; train = the "
        "training fold's per-band statistics, inside the ACNN; corpus / speaker = each corpus's / speaker's "
        "own before the model, then as train (transductive; serlib.features.normalisation; "
        "docs/configuration.md#normalisation)",
    )

    @property
    def standardise_in_model(self) -> bool:
        """The ACNN standardises its input with the training fold's statistics (every mode but none)."""
        return self.normalisation != "none"

    acnn_input: Literal["logmel", "egemaps_lld"] = Field(
        "logmel",
        description="logmel: the paper's 26 bands; egemaps_lld: 25 eGeMAPS frame-level descriptors "
        "(docs/configuration.md#acnn-input)",
    )
    n_jobs: int = Field(0, ge=0, description="worker processes for extraction; 0 = all cores")
    allow_skip: bool = Field(
        False, description="skip unreadable files (logged with a count) instead of stopping at the first"
    )


class AutoencoderConfig(_Strict):
    """auDeep's time-recurrent autoencoder (paper, Sec. 4.2)."""

    cell: Literal["gru"] = "gru"
    gru_variant: Literal["reset_after", "reset_before"] = Field(
        "reset_before",
        description="reset_before = TF1's GRUCell as auDeep; reset_after = the cuDNN variant "
        "(docs/configuration.md#gru-variant)",
    )
    layers: int = Field(2, gt=0)
    units: int = Field(256, gt=0)
    bidirectional_encoder: bool = False
    bidirectional_decoder: bool = True
    learning_rate: float = Field(0.001, gt=0)
    dropout: float = Field(
        0.2, ge=0, lt=1, description="Keras rate (auDeep's keep_prob 0.8), on every cell's input and output"
    )
    gradient_clip_value: float = Field(2.0, gt=0, description="element-wise clipping, as auDeep")
    batch_size: int = Field(64, gt=0)
    epochs: int = Field(64, gt=0, description="default; a condition may override (full TED-LIUM: 32)")
    encode_batch_size: int = Field(500, gt=0, description="auDeep's generation batch")
    jit_compile: bool = False
    mixed_precision: bool = False
    distribution: Literal["default", "mirrored", "multi_worker"] = "default"


class ACNNConfig(_Strict):
    """Attentive CNN with multi-view learning (paper, Sec. 2 and 4.2; Neumann & Vu 2017)."""

    filters: int = Field(200, gt=0)
    kernel_frames: int = Field(10, gt=0, description="kernel is bands x kernel_frames (26x10)")
    conv_stride: int = Field(3, gt=0)
    pool_size: int = Field(30, gt=0)
    pool_stride: int = Field(3, gt=0, description="not stated (docs/configuration.md#pool-stride)")
    activation: Literal["relu", "linear", "tanh", "elu"] = Field("relu", description="not stated; ReLU")
    dropout: float = Field(
        0.2,
        ge=0,
        lt=1,
        description="Keras rate before the softmax heads: the paper's 'dropout rate of 0.8' read as a keep "
        "probability (docs/configuration.md#dropout)",
    )
    dropout_cross: float = Field(
        0.3, ge=0, lt=1, description="Keras rate of cross-corpus training (the paper's keep probability 0.7)"
    )
    arousal_weight: float = Field(0.2, ge=0, le=1)
    valence_weight: float = Field(0.2, ge=0, le=1)
    learning_rate: float = Field(0.001, gt=0, description="not stated; Adam's default")
    batch_size: int = Field(32, gt=0, description="not stated; 32")
    epochs: int = Field(
        100, gt=0, description="all trained, the last evaluated (docs/configuration.md#model-selection)"
    )
    model_selection: Literal["none", "held_out_session"] = Field(
        "none",
        description="none: the last epoch; held_out_session: the best epoch on one held-out training session "
        "(docs/configuration.md#model-selection)",
    )
    patience: int = Field(10, gt=0, description="epochs without a better development UAR before stopping")
    attention_masking: bool = Field(
        False,
        description="exclude pooled steps that see only zero padding from the attention softmax; the "
        "paper does not mask (False)",
    )
    implementation: Literal["auto", "fast", "reference"] = Field(
        "auto",
        description="fast (serlib.models.acnn.kernels) or reference (Keras layers), the same function; auto: "
        "the faster on this machine (docs/configuration.md#implementation)",
    )
    shuffle: Literal["every_epoch", "once"] = Field(
        "every_epoch",
        description="every_epoch: a new seeded batch order per epoch; once: one order repeated "
        "(docs/configuration.md#shuffle)",
    )
    jit_compile: bool = False

    def dropout_for(self, setting: str) -> float:
        """The Keras dropout rate of a run: ``dropout_cross`` for cross-corpus training, else ``dropout``
        (the one place the rate is chosen)."""
        return self.dropout_cross if setting == "cross" else self.dropout

    @model_validator(mode="after")
    def _weights(self) -> ACNNConfig:
        if self.arousal_weight + self.valence_weight >= 1:
            raise ValueError(
                "arousal_weight + valence_weight must be below 1 (loss weight of emotion is 1-a-b)"
            )
        return self


class ConditionConfig(_Strict):
    """One row of Table 1: which unlabeled corpus trains the AE whose vectors join the ACNN."""

    name: str
    autoencoder_corpus: str = Field(
        CONDITION_SOURCES_NONE,
        description="'none' (BL), 'target' (control C: the corpus being tested), or a key of `corpora`",
    )
    autoencoder_epochs: int | None = Field(None, gt=0, description="overrides autoencoder.epochs")

    @field_validator("name")
    @classmethod
    def _folder_name(cls, name: str) -> str:
        return _folder_name(name)


class ProtocolConfig(_Strict):
    within_corpus: str | None = Field("iemocap", description="key of `corpora`: leave-one-session-out")
    cross_corpus_train: str | None = "iemocap"
    cross_corpus_test: str | None = "msp_improv"
    seeds: list[NonNegativeInt] = Field(default_factory=lambda: list(range(10)), description="distinct, >= 0")
    folds: list[int] | None = Field(None, description="sessions to use as test folds; None = all")
    conditions: list[ConditionConfig] = Field(default_factory=list)
    n_jobs: int = Field(
        1,
        ge=0,
        description="parallel runs (Dask worker processes); 0 = as many as the cores hold at SERLIB_TF_THREADS "
        "threads each",
    )
    figure2_condition: str | None = Field(
        None,
        description="condition shown against BL in Figure 2; None = the best mean UAR among conditions whose "
        "AE never heard the test corpus (not C; ties to the first listed; serlib.evidence.best_condition)",
    )
    scheduler_address: str | None = Field(None, description="dask.distributed scheduler; None = in-process")
    cross_corpus_matrix: list[str] | None = Field(
        None,
        description="corpus keys trained on and tested on each other, every ordered pair a cross-corpus "
        "protocol of its own (`serlib matrix`; serlib.evidence.matrix)",
    )
    egemaps_svm: bool = Field(
        False,
        description="also run the classic eGeMAPS functionals + linear SVM reference on the same folds "
        "(an extra Table 1 row; serlib.protocol.svm)",
    )

    @model_validator(mode="after")
    def _unique_conditions(self) -> ProtocolConfig:
        names = [c.name for c in self.conditions]
        if len(set(names)) != len(names):
            raise ValueError(f"condition names must be unique, got {names}")
        if not self.seeds:
            raise ValueError("seeds must not be empty")
        _unique("seeds", self.seeds)
        if self.folds is not None:
            _unique("folds", self.folds)
        return self


def _unique(name: str, values: list[Any]) -> None:
    """A list whose entries name runs or folders must not repeat one (seeds [0, 0] ran every run twice)."""
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"{name} must be distinct, got {values} ({repeated} repeated)")


class TSNEConfig(_Strict):
    perplexity: float = Field(30.0, gt=0)
    seed: int = 0
    max_points: int = Field(2000, gt=0)


class Config(_Strict):
    """The whole pipeline: corpora, features, autoencoder, ACNN, protocol and output folder."""

    name: str = "paper"
    output_dir: str = "runs/paper"
    cache_dir: str | None = Field(
        None, description="feature/representation stores; None = <output_dir>/cache"
    )
    figures_dir: str = "figures"
    seed: int = Field(0, description="global seed for generators, AE training and t-SNE")
    corpora: dict[str, CorpusConfig] = Field(default_factory=dict)
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
            dotted, value = config_compat.upgrade_key(dotted, value)
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


# -- presets: hand-written YAML files shipped in serlib/presets/ ----------------------------------------
PRESETS_DIR = Path(__file__).resolve().parent.parent / "presets"
"""``paper.yaml`` (the paper's experiment, every hyperparameter with its reason) and ``demo.yaml`` (an
overlay on it); ``configs/paper.yaml`` and ``configs/demo.yaml`` are links to them."""


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
