"""The configuration's sections: one pydantic model per part of the pipeline, whose defaults are the
paper preset's values read from ``serlib/presets/paper.yaml`` (``serlib.base.paper_preset``).

The schema states types, ranges and what each key means; the values of the paper's experiment are
written once, in the preset, with their reasons. A default that is not the paper's value is a
compatibility default, named as such where it stands: what a stored configuration written before the
key existed meant (``store_decimals``), or an empty collection (corpora, conditions). ``serlib.base.config``
joins the sections into ``Config`` and reads files.
"""

from __future__ import annotations

import re
from typing import Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from serlib.base import config_compat
from serlib.base.paper_preset import reader

_audio = reader("audio")
_logmel = reader("features.logmel")
_spectrogram = reader("features.spectrogram")
_features = reader("features")
_autoencoder = reader("autoencoder")
_acnn = reader("acnn")
_protocol = reader("protocol")
_tsne = reader("tsne")

CONDITION_SOURCES_NONE = "none"
CONDITION_SOURCE_TARGET = "target"

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
        description="loader options, e.g. talks (TED-LIUM); every loader takes segment_s (split rows into pieces)",
    )

    @model_validator(mode="after")
    def _root_given(self) -> CorpusConfig:
        if self.type != "union" and not self.root:
            raise ValueError(f"root is required for a corpus of type {self.type!r}")
        return self


class AudioConfig(_Strict):
    sample_rate: int = Field(
        _audio("sample_rate"), gt=0, description="every file is resampled to this rate (soxr, high quality)"
    )


class LogMelConfig(_Strict):
    """ACNN input: openSMILE log-Mel filterbank energies (paper, Sec. 2)."""

    bands: int = Field(_logmel("bands"), gt=0)
    low_hz: float = Field(_logmel("low_hz"), ge=0)
    high_hz: float = Field(_logmel("high_hz"), gt=0)
    frame_s: float = Field(_logmel("frame_s"), gt=0)
    shift_s: float = Field(_logmel("shift_s"), gt=0)
    engine: Literal["numpy", "opensmile"] = Field(
        _logmel("engine"),
        description="numpy: openSMILE's definitions vectorised (docs/configuration.md#logmel-engine)",
    )
    max_frames: int = Field(
        _logmel("max_frames"),
        gt=0,
        description="frames (shift_s apart) every utterance's ACNN input is cut or zero-padded to (the paper's "
        "length rule, Sec. 3): log-Mel, and the eGeMAPS descriptors of acnn_input egemaps_lld alike "
        "(FeaturesConfig.input_frames; docs/configuration.md#acnn-input)",
    )


class SpectrogramConfig(_Strict):
    """AE input: auDeep-style mel spectrograms (paper, Sec. 2)."""

    window_s: float = Field(_spectrogram("window_s"), gt=0)
    overlap_s: float = Field(_spectrogram("overlap_s"), ge=0)
    mel_bands: int = Field(_spectrogram("mel_bands"), gt=0)
    clip_below_db: float | None = Field(
        _spectrogram("clip_below_db"),
        description="auDeep's tutorial value; not stated (docs/configuration.md#spectrogram-clip)",
    )
    clip_above_db: float | None = _spectrogram("clip_above_db")
    fixed_length_s: float | None = Field(
        _spectrogram("fixed_length_s"),
        description="auDeep needs one length per data set: the paper's length rule in seconds",
    )
    center_fixed: bool = _spectrogram("center_fixed")
    chunk_length_s: float | None = _spectrogram("chunk_length_s")
    chunk_count: int | None = _spectrogram("chunk_count")
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
        _features("normalisation"),
        description="how log-Mel and eGeMAPS features are standardised: none = as extracted; train = the "
        "training fold's per-band statistics, inside the ACNN; corpus / speaker = each corpus's / speaker's "
        "own before the model, then as train (transductive; serlib.features.normalisation; "
        "docs/configuration.md#normalisation)",
    )

    @property
    def input_frames(self) -> int:
        """The frames every ACNN input is cut or zero-padded to: ``logmel.max_frames``, for the log-Mel
        bands and for the eGeMAPS descriptors (``acnn_input: egemaps_lld``) alike (both at a 10 ms hop).
        One key for both, so that switching the input keeps the length rule (and stored runs their
        fingerprints); every reader of the eGeMAPS cut reads it by this name."""
        return self.logmel.max_frames

    @property
    def standardise_in_model(self) -> bool:
        """The ACNN standardises its input with the training fold's statistics (every mode but none)."""
        return self.normalisation != "none"

    acnn_input: Literal["logmel", "egemaps_lld"] = Field(
        _features("acnn_input"),
        description="logmel: the paper's log-Mel bands; egemaps_lld: the eGeMAPS frame-level descriptors "
        "(docs/configuration.md#acnn-input)",
    )
    n_jobs: int = Field(
        _features("n_jobs"), ge=0, description="worker processes for extraction; 0 = all cores"
    )
    allow_skip: bool = Field(
        _features("allow_skip"),
        description="skip unreadable files (logged with a count) instead of stopping at the first",
    )


class AutoencoderConfig(_Strict):
    """auDeep's time-recurrent autoencoder (paper, Sec. 4.2)."""

    cell: Literal["gru"] = _autoencoder("cell")
    gru_variant: Literal["reset_after", "reset_before"] = Field(
        _autoencoder("gru_variant"),
        description="reset_before = TF1's GRUCell as auDeep; reset_after = the cuDNN variant "
        "(docs/configuration.md#gru-variant)",
    )
    layers: int = Field(_autoencoder("layers"), gt=0)
    units: int = Field(_autoencoder("units"), gt=0)
    bidirectional_encoder: bool = _autoencoder("bidirectional_encoder")
    bidirectional_decoder: bool = _autoencoder("bidirectional_decoder")
    learning_rate: float = Field(_autoencoder("learning_rate"), gt=0)
    dropout: float = Field(
        _autoencoder("dropout"),
        ge=0,
        lt=1,
        description="Keras rate (1 - auDeep's keep_prob), on every cell's input and output",
    )
    gradient_clip_value: float = Field(
        _autoencoder("gradient_clip_value"), gt=0, description="element-wise clipping, as auDeep"
    )
    batch_size: int = Field(_autoencoder("batch_size"), gt=0)
    epochs: int = Field(
        _autoencoder("epochs"), gt=0, description="default; a condition may override it (autoencoder_epochs)"
    )
    encode_batch_size: int = Field(
        _autoencoder("encode_batch_size"), gt=0, description="auDeep's generation batch"
    )
    jit_compile: bool = _autoencoder("jit_compile")
    mixed_precision: bool = _autoencoder("mixed_precision")
    distribution: Literal["default", "mirrored", "multi_worker"] = _autoencoder("distribution")


class ACNNConfig(_Strict):
    """Attentive CNN with multi-view learning (paper, Sec. 2 and 4.2; Neumann & Vu 2017)."""

    filters: int = Field(_acnn("filters"), gt=0)
    kernel_frames: int = Field(
        _acnn("kernel_frames"), gt=0, description="the kernel is bands x kernel_frames"
    )
    conv_stride: int = Field(_acnn("conv_stride"), gt=0)
    pool_size: int = Field(_acnn("pool_size"), gt=0)
    pool_stride: int = Field(
        _acnn("pool_stride"), gt=0, description="not stated (docs/configuration.md#pool-stride)"
    )
    activation: Literal["relu", "linear", "tanh", "elu"] = Field(
        _acnn("activation"), description="not stated; ReLU"
    )
    dropout: float = Field(
        _acnn("dropout"),
        ge=0,
        lt=1,
        description="Keras rate before the softmax heads: the paper's 'dropout rate of 0.8' read as a keep "
        "probability (docs/configuration.md#dropout)",
    )
    dropout_cross: float = Field(
        _acnn("dropout_cross"),
        ge=0,
        lt=1,
        description="Keras rate of cross-corpus training (the paper's cross-corpus keep probability, as a rate)",
    )
    arousal_weight: float = Field(_acnn("arousal_weight"), ge=0, le=1)
    valence_weight: float = Field(_acnn("valence_weight"), ge=0, le=1)
    learning_rate: float = Field(_acnn("learning_rate"), gt=0, description="not stated; Adam's default")
    batch_size: int = Field(_acnn("batch_size"), gt=0, description="not stated")
    epochs: int = Field(
        _acnn("epochs"),
        gt=0,
        description="all trained, the last evaluated (docs/configuration.md#model-selection)",
    )
    model_selection: Literal["none", "held_out_session"] = Field(
        _acnn("model_selection"),
        description="none: the last epoch; held_out_session: the best epoch on one held-out training session "
        "(docs/configuration.md#model-selection)",
    )
    patience: int = Field(
        _acnn("patience"), gt=0, description="epochs without a better development UAR before stopping"
    )
    attention_masking: bool = Field(
        _acnn("attention_masking"),
        description="exclude pooled steps that see only zero padding from the attention softmax; the "
        "paper does not mask (False)",
    )
    implementation: Literal["auto", "fast", "reference"] = Field(
        _acnn("implementation"),
        description="fast (serlib.models.acnn.kernels) or reference (Keras layers), the same function; auto: "
        "the faster on this machine (docs/configuration.md#implementation)",
    )
    shuffle: Literal["every_epoch", "once"] = Field(
        _acnn("shuffle"),
        description="every_epoch: a new seeded batch order per epoch; once: one order repeated "
        "(docs/configuration.md#shuffle)",
    )
    jit_compile: bool = _acnn("jit_compile")

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
    within_corpus: str | None = Field(
        _protocol("within_corpus"), description="key of `corpora`: leave-one-session-out"
    )
    cross_corpus_train: str | None = _protocol("cross_corpus_train")
    cross_corpus_test: str | None = _protocol("cross_corpus_test")
    seeds: list[NonNegativeInt] = Field(
        default_factory=lambda: _protocol("seeds"), description="distinct, >= 0"
    )
    folds: list[int] | None = Field(
        _protocol("folds"), description="sessions to use as test folds; None = all"
    )
    conditions: list[ConditionConfig] = Field(default_factory=list)
    n_jobs: int = Field(
        _protocol("n_jobs"),
        ge=0,
        description="parallel runs (Dask worker processes); 0 = as many as the cores hold at SERLIB_TF_THREADS "
        "threads each",
    )
    figure2_condition: str | None = Field(
        _protocol("figure2_condition"),
        description="condition shown against BL in Figure 2; None = the best mean UAR among conditions whose "
        "AE never heard the test corpus (not C; ties to the first listed; serlib.evidence.best_condition)",
    )
    scheduler_address: str | None = Field(
        _protocol("scheduler_address"), description="dask.distributed scheduler; None = in-process"
    )
    cross_corpus_matrix: list[str] | None = Field(
        _protocol("cross_corpus_matrix"),
        description="corpus keys trained on and tested on each other, every ordered pair a cross-corpus "
        "protocol of its own (`serlib matrix`; serlib.evidence.matrix)",
    )
    egemaps_svm: bool = Field(
        _protocol("egemaps_svm"),
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
    perplexity: float = Field(_tsne("perplexity"), gt=0)
    seed: int = _tsne("seed")
    max_points: int = Field(_tsne("max_points"), gt=0)
