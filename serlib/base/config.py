"""One typed configuration object for the whole pipeline: its schema, validation and YAML files.

Every hyper-parameter of the paper lives here; the ones the paper leaves open carry a documented
choice in the field's description (``serlib config show --preset paper`` prints them with comments;
the commented YAML files are written by ``serlib.base.config_yaml``). Unknown keys and wrong types are errors that
name the key, so a typo never silently falls back to a default.
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
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

PRESETS = ("demo", "paper")
CONDITION_SOURCES_NONE = "none"
CONDITION_SOURCE_TARGET = "target"


class ConfigError(ValueError):
    """A configuration file or value is invalid; the message names the key and the fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, strict=False)

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
        "numpy",
        description="numpy: openSMILE's log-Mel definitions vectorised, equal to openSMILE within float32 "
        "rounding (max 6e-4 ln units) and about 10x faster; opensmile: the opensmile package itself",
    )
    max_frames: int = Field(
        750,
        gt=0,
        description="7.5 s at 10 ms: longer turns are cut, shorter ones zero-padded (paper, Sec. 3)",
    )


class SpectrogramConfig(_Strict):
    """AE input: auDeep-style mel spectrograms (paper, Sec. 2; spec section 1)."""

    window_s: float = Field(0.08, gt=0)
    overlap_s: float = Field(0.04, ge=0)
    mel_bands: int = Field(128, gt=0)
    clip_below_db: float | None = Field(
        -60.0, description="auDeep tutorial value; the paper does not state one (spec 4.2)"
    )
    clip_above_db: float | None = None
    fixed_length_s: float | None = Field(
        7.5,
        description="auDeep needs one length per data set: the paper's 7.5 s rule, 186 frames (spec 1.2 step 10)",
    )
    center_fixed: bool = False
    chunk_length_s: float | None = None
    chunk_count: int | None = None

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
    normalisation: Literal["train", "corpus", "speaker"] = Field(
        "train",
        description="whose statistics standardise log-Mel and eGeMAPS features: train = the training fold's, "
        "inside the ACNN (serlib's reading: the paper names no normalisation); corpus / speaker = each "
        "corpus's / speaker's own, labels unused but test audio and speaker identities used (transductive; "
        "serlib.features.normalisation; the unsupervised cross-corpus remedy)",
    )
    acnn_input: Literal["logmel", "egemaps_lld"] = Field(
        "logmel",
        description="what the ACNN reads per frame: logmel = the paper's 26 log-Mel bands; egemaps_lld = "
        "openSMILE's 25 eGeMAPSv02 frame-level descriptors (same hop and max_frames), which transfer across "
        "corpora where log-Mel does not (docs/results-real-speech.md)",
    )
    n_jobs: int = Field(0, ge=0, description="worker processes for extraction; 0 = all cores")
    allow_skip: bool = Field(
        False, description="skip unreadable files (logged with a count) instead of stopping at the first"
    )


class AutoencoderConfig(_Strict):
    """auDeep's time-recurrent autoencoder (paper, Sec. 4.2; spec section 2)."""

    cell: Literal["gru"] = "gru"
    gru_variant: Literal["reset_after", "reset_before"] = Field(
        "reset_before",
        description="reset_before = TF1 GRUCell exactly as auDeep (2,659,968 parameters in the paper setting); "
        "reset_after = the cuDNN variant, 3U more biases per layer. reset_before: faithful, and on CPU "
        "serlib's fused loop trains it as fast as reset_after (benchmarks/bench_autoencoder.py: 1.02-1.09 "
        "vs 1.08-1.11 s per paper batch on 2 cores); on a GPU choose reset_after for cuDNN",
    )
    layers: int = Field(2, gt=0)
    units: int = Field(256, gt=0)
    bidirectional_encoder: bool = False
    bidirectional_decoder: bool = True
    learning_rate: float = Field(0.001, gt=0)
    dropout: float = Field(
        0.2, ge=0, lt=1, description="auDeep keep_prob 0.8: on every cell's input and output"
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
    pool_stride: int = Field(
        3,
        gt=0,
        description="not stated in the paper; 3 (the paper's one stated stride) gives 73 attention steps "
        "from 247, pool_size would give 8. nEMO sensitivity run (docs/results-real-speech.md, 'Sensitivity'): "
        "stride 30 gave 45.8 against 46.8 % UAR (-1.0 points, p 0.69)",
    )
    activation: Literal["relu", "linear", "tanh", "elu"] = Field("relu", description="not stated; ReLU")
    dropout_keep_probability: float = Field(
        0.8,
        gt=0,
        le=1,
        description="paper's 'dropout rate of 0.8' read as TF1 keep_prob (the lab's code used keep_prob): "
        "Keras rate 0.2. nEMO sensitivity runs (docs/results-real-speech.md, 'Sensitivity'): the literal rate "
        "0.8 gave 42.0 against 46.3 % UAR (-4.3 points, p 0.13, 9 speakers x seeds 0 and 3)",
    )
    dropout_keep_probability_cross: float = Field(
        0.7, gt=0, le=1, description="paper's 0.7 for MSP-IMPROV, used for cross-corpus training"
    )
    arousal_weight: float = Field(0.2, ge=0, le=1)
    valence_weight: float = Field(0.2, ge=0, le=1)
    learning_rate: float = Field(0.001, gt=0, description="not stated; Adam's default")
    batch_size: int = Field(32, gt=0, description="not stated; 32")
    epochs: int = Field(
        100,
        gt=0,
        description="fixed number of epochs; the paper names a development set but no early stopping or "
        "model selection, so serlib trains all epochs and evaluates the last one (no development split)",
    )
    model_selection: Literal["none", "held_out_session"] = Field(
        "none",
        description="none: train all epochs and evaluate the last (the paper names train and development sets "
        "but no selection rule); held_out_session: hold out one training session (speaker) as development "
        "set, keep the weights of the epoch with the best development UAR, stop after `patience` epochs "
        "without improvement. nEMO sensitivity runs (docs/results-real-speech.md, 'Sensitivity'): "
        "held_out_session (up to 60 epochs, patience 10) gave 42.6 against 46.3 % UAR (-3.7 points, p 0.031, "
        "9 speakers x seeds 0 and 3): one held-out speaker's UAR picked epochs 1-40 (median 6)",
    )
    patience: int = Field(10, gt=0, description="epochs without a better development UAR before stopping")
    normalisation: Literal["standardise", "none"] = Field(
        "standardise",
        description="per-band mean/std from the training fold's unpadded frames, applied inside the model; "
        "zero-padded frames stay zero (= the training mean); the paper names none. nEMO sensitivity run "
        "(docs/results-real-speech.md, 'Sensitivity'): none gave 47.9 against 46.8 % UAR (+1.0 points, p 0.70)",
    )
    attention_masking: bool = Field(
        False,
        description="exclude pooled steps that see only zero padding from the attention softmax; the "
        "paper does not mask (False)",
    )
    implementation: Literal["auto", "fast", "reference"] = Field(
        "auto",
        description="fast: serlib.models.acnn_kernels (convolution that skips all-padding steps, max-pooling whose "
        "gradient finds each window's first largest step in one pass); reference: plain Keras layers. The same "
        "function within float32 rounding (tests/test_acnn.py); which is faster depends on the CPU (AMD EPYC: "
        "fast 1.2x, Intel Xeon AVX-512: 0.86x; docs/performance.md). auto: the one a short calibration on this "
        "machine finds faster, cached per CPU and versions, kept per output folder and recorded in each run "
        "(serlib.models.acnn_choice; SERLIB_ACNN_IMPLEMENTATION=fast|reference forces it)",
    )
    shuffle: Literal["every_epoch", "once"] = Field(
        "every_epoch",
        description="order of the training batches: every_epoch = a new seeded permutation per epoch, as "
        "stochastic gradient descent (and the Keras 2 of the paper's time) draws them; once = one seeded "
        "permutation repeated in every epoch, what Keras 3's own feed of arrays does under a global seed, "
        "kept because the stored real-speech results were trained so (serlib.models.acnn_feed)",
    )
    jit_compile: bool = False

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


class ProtocolConfig(_Strict):
    within_corpus: str | None = Field("iemocap", description="key of `corpora`: leave-one-session-out")
    cross_corpus_train: str | None = "iemocap"
    cross_corpus_test: str | None = "msp_improv"
    seeds: list[int] = Field(default_factory=lambda: list(range(10)))
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
        "AE saw other speech than the target corpus (not C)",
    )
    scheduler_address: str | None = Field(None, description="dask.distributed scheduler; None = in-process")
    cross_corpus_matrix: list[str] | None = Field(
        None,
        description="corpus keys trained on and tested on each other, every ordered pair a cross-corpus "
        "protocol of its own (`serlib matrix`; serlib.protocol.matrix)",
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
        return self


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


def _format_errors(error: ValidationError, source: str) -> str:
    lines = [f"invalid configuration in {source}:"]
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key (check its spelling against `serlib config show --preset paper`)"
        lines.append(f"  {key}: {message}")
    return "\n".join(lines)


def from_dict(data: dict[str, Any], source: str = "<dict>") -> Config:
    """Validate a plain dict into a Config, raising ConfigError that names every bad key."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys, got {type(data).__name__}")
    try:
        return Config.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_format_errors(error, source)) from None


def load(path: str | os.PathLike[str]) -> Config:
    """Read and validate a YAML configuration file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"configuration file {path} does not exist (presets: {', '.join(PRESETS)})")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from None
    return from_dict(data or {}, str(path))


def override(config: Config, **changes: Any) -> Config:
    """A copy with dotted-key changes, e.g. ``override(c, **{"acnn.epochs": 2})``, re-validated."""
    data = config.model_dump(mode="json")
    for dotted, value in changes.items():
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


# -- presets: the paper's values, and the demo's departures with their reasons -----------------------
def _table1_conditions(
    small_talks: str, books: str, all_talks: str, all_talks_epochs: int
) -> list[dict[str, Any]]:
    """Table 1's five conditions, BL, C, sT, Li and fT, over the given autoencoder corpora (both presets
    run the same protocol; the demo's corpora stand in for the paper's)."""
    return [
        {"name": "BL", "autoencoder_corpus": CONDITION_SOURCES_NONE},
        {"name": "C", "autoencoder_corpus": CONDITION_SOURCE_TARGET},
        {"name": "sT", "autoencoder_corpus": small_talks},
        {"name": "Li", "autoencoder_corpus": books},
        {"name": "fT", "autoencoder_corpus": all_talks, "autoencoder_epochs": all_talks_epochs},
    ]


def _paper() -> dict[str, Any]:
    return {
        "name": "paper",
        "output_dir": "runs/paper",
        "corpora": {
            "iemocap": {"type": "iemocap", "root": "${IEMOCAP_ROOT}"},
            "msp_improv": {"type": "msp_improv", "root": "${MSP_IMPROV_ROOT}"},
            "tedlium_small": {"type": "tedlium2", "root": "${TEDLIUM_ROOT}", "options": {"talks": 400}},
            "tedlium_full": {"type": "tedlium2", "root": "${TEDLIUM_ROOT}"},
            "librispeech_100h": {
                "type": "librispeech",
                "root": "${LIBRISPEECH_ROOT}",
                "options": {"subsets": ["train-clean-100"]},
            },
        },
        "protocol": {
            "within_corpus": "iemocap",
            "cross_corpus_train": "iemocap",
            "cross_corpus_test": "msp_improv",
            "seeds": list(range(10)),
            "conditions": _table1_conditions(
                small_talks="tedlium_small",
                books="librispeech_100h",
                all_talks="tedlium_full",
                all_talks_epochs=32,
            ),
        },
    }


def _demo() -> dict[str, Any]:
    root = "${OUTPUT_DIR}/data/demo"
    return {
        "name": "demo",
        "output_dir": "runs/demo",
        "corpora": {
            "demo_emotion": {"type": "demo", "root": root, "options": {"part": "labeled"}},
            "demo_cross": {"type": "demo", "root": root, "options": {"part": "cross"}},
            "demo_talks_small": {
                "type": "demo",
                "root": root,
                "options": {"part": "unlabeled", "limit": 120},
            },
            "demo_talks": {"type": "demo", "root": root, "options": {"part": "unlabeled"}},
            "demo_books": {"type": "demo", "root": root, "options": {"part": "unlabeled_books"}},
        },
        "features": {"logmel": {"max_frames": 400}, "spectrogram": {"fixed_length_s": 4.0}},
        "autoencoder": {"layers": 2, "units": 64, "epochs": 8, "batch_size": 32},
        "acnn": {"filters": 64, "epochs": 15, "batch_size": 32, "learning_rate": 0.002},
        "protocol": {
            "within_corpus": "demo_emotion",
            "cross_corpus_train": "demo_emotion",
            "cross_corpus_test": "demo_cross",
            "seeds": [0, 1],
            "n_jobs": 0,
            "conditions": _table1_conditions(
                small_talks="demo_talks_small", books="demo_books", all_talks="demo_talks", all_talks_epochs=6
            ),
        },
        "tsne": {"perplexity": 20.0},
        "demo_corpus": {"seed": 0},
    }


DEPARTURES: dict[str, dict[str, str]] = {
    "demo": {
        "name": "the demo preset",
        "output_dir": "the demo's own run folder",
        "corpora": "generated offline: eSpeak NG voices as speakers (serlib.data.demo.speech)",
        "features.logmel.max_frames": "4.0 s: the demo's sentences last 1-4 s",
        "features.spectrogram.fixed_length_s": "4.0 s, as the log-Mel input: the demo's sentences last 1-4 s",
        "autoencoder.units": "64 units instead of 256: minutes, not hours, on 2 cores",
        "autoencoder.epochs": "8 epochs, for minutes on 2 cores (the demo shows the pipeline, not the result)",
        "autoencoder.batch_size": "32: the demo corpora hold a few hundred utterances",
        "acnn.filters": "64 filters instead of 200, for speed on 2 cores",
        "acnn.epochs": "15 epochs, for minutes on 2 cores",
        "acnn.learning_rate": "twice Adam's default, so that the short demo training gets further",
        "protocol.within_corpus": "the demo's labeled corpus stands in for IEMOCAP",
        "protocol.cross_corpus_train": "the demo's labeled corpus stands in for IEMOCAP",
        "protocol.cross_corpus_test": "the demo's cross corpus (other voices) stands in for MSP-IMPROV",
        "protocol.seeds": "2 seeds, for minutes on 2 cores (no confidence interval below 3)",
        "protocol.n_jobs": "0: as many Dask workers (for the ACNN runs and notebook 02's AEs) as the "
        "cores hold at SERLIB_TF_THREADS threads each; `make demo` sets SERLIB_TF_THREADS=1, i.e. one "
        "worker per core, because the demo's small models use one core poorly at 2 threads "
        "(docs/performance.md)",
        "protocol.conditions": "Table 1's five conditions, over the demo's unlabeled corpora",
        "tsne.perplexity": "20: the demo has a few hundred points, not thousands",
        "demo_corpus": "the generator's seed",
    },
}
"""Why each preset departs from the paper preset, by dotted key (printed in its generated YAML)."""


def load_preset(name: str) -> Config:
    """The ``paper`` preset (every number of the paper) or the ``demo`` preset (minutes on 2 cores)."""
    builders = {"paper": _paper, "demo": _demo}
    if name not in builders:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return from_dict(builders[name](), f"preset {name}")


def resolve(preset: str | None = None, path: str | os.PathLike[str] | None = None) -> Config:
    """A config from a file if given, else from a preset (default: demo)."""
    if path is not None:
        return load(path)
    return load_preset(preset or "demo")
