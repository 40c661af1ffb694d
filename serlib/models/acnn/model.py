"""The attentive CNN with multi-view learning (Neumann & Vu 2017; ICASSP 2019, Sec. 2 and 4.2).

Log-Mel ``[frames, bands]`` -> (optional per-band standardisation) -> one convolution spanning all bands
(a ``bands x kernel_frames`` 2-D kernel is a Conv1D over time with ``bands`` input channels) -> max-pooling
over time -> attention ``alpha_i = softmax_i(W^T x_i)`` returning the weighted sum -> concatenation with
the fixed autoencoder vector -> dropout -> three softmax heads (emotion, arousal, valence). The loss is
``(1-a-b) L_emo + a L_aro + b L_val``. Every layer is a built-in or a registered serlib layer, so the
saved ``.keras`` file loads with ``safe_mode=True``.

``build_acnn`` builds the paper's network from Keras' plain layers; it takes the convolution and pooling
classes as arguments, so that a run can hand it the speed kernels (``kernels.layers_for``). It times
nothing and writes nothing: ``acnn.implementation: auto`` is resolved by a protocol before it builds.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from serlib.base.config import ACNNConfig, Config
from serlib.data.manifest import EMOTIONS, LEVELS
from serlib.models.acnn import LOGMEL_INPUT, REPRESENTATION_INPUT
from serlib.models.acnn import kernels as acnn_kernels
from serlib.models.acnn import loop as acnn_loop

HEADS = {"emotion": len(EMOTIONS), "arousal": len(LEVELS), "valence": len(LEVELS)}
MISSING_LABEL = -1  # arousal/valence class of an utterance without ratings: ignored by the loss
HIDDEN_LAYER = "hidden"
STEPS_PER_EXECUTION = 8  # train steps per compiled call: amortises Keras' per-step launch (same numbers)
PREDICT_BATCH_SIZE = 32  # measured (make bench): 32 beats 64-256 on CPU (activations leave the caches)


@keras.saving.register_keras_serializable(package="serlib")
class NonPaddingFrames(keras.layers.Layer):
    """1.0 for frames with any non-zero value, 0.0 for all-zero (padding) frames: ``[B, T, F] -> [B, T, 1]``."""

    def call(self, inputs: Any) -> Any:
        return ops.cast(ops.any(ops.not_equal(inputs, 0.0), axis=-1, keepdims=True), inputs.dtype)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (*input_shape[:-1], 1)


@keras.saving.register_keras_serializable(package="serlib")
class BandStandardisation(keras.layers.Layer):
    """``(x - mean) / std`` per band on real frames; all-zero padding frames stay zero (the training mean).

    The statistics are non-trainable weights saved with the model, so a loaded model takes raw log-Mel.
    """

    def __init__(self, bands: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bands = bands
        self.mean = self.add_weight(shape=(bands,), initializer="zeros", trainable=False, name="mean")
        self.std = self.add_weight(shape=(bands,), initializer="ones", trainable=False, name="std")

    def set_statistics(self, mean: np.ndarray, std: np.ndarray) -> None:
        self.mean.assign(np.asarray(mean, dtype="float32"))
        self.std.assign(np.asarray(std, dtype="float32"))

    def call(self, inputs: Any) -> Any:
        real = ops.cast(ops.any(ops.not_equal(inputs, 0.0), axis=-1, keepdims=True), inputs.dtype)
        return (inputs - self.mean) / self.std * real  # padding frames: times 0 (cheaper than a select)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "bands": self.bands}


@keras.saving.register_keras_serializable(package="serlib")
class AttentionPooling(keras.layers.Layer):
    """``alpha_i = softmax_i(W^T x_i)`` over time steps; returns ``sum_i alpha_i x_i`` (paper, Eq. 1).

    ``W`` is one vector of ``channels`` weights without bias (a bias cancels in the softmax). Called on
    ``[sequence, step_valid]`` it gives padded steps (``step_valid == 0``) zero weight. Returns
    ``(pooled [B, channels], alpha [B, steps])`` so the weights can be read from a saved model.
    """

    def build(self, input_shape: Any) -> None:
        sequence_shape = (
            input_shape[0]
            if isinstance(input_shape, list | tuple) and isinstance(input_shape[0], list | tuple)
            else input_shape
        )
        self.kernel = self.add_weight(
            shape=(int(sequence_shape[-1]), 1), initializer="glorot_uniform", trainable=True, name="kernel"
        )

    def weights_of(self, sequence: Any, step_valid: Any = None) -> Any:
        """The attention weights ``alpha`` ``[B, steps]`` (they sum to 1 per utterance)."""
        scores = ops.squeeze(ops.matmul(sequence, self.kernel), axis=-1)
        if step_valid is None:
            return ops.softmax(scores, axis=-1)
        valid = ops.squeeze(step_valid, axis=-1) > 0
        # An utterance with no valid step (cannot happen with real audio) falls back to uniform weights.
        any_valid = ops.any(valid, axis=-1, keepdims=True)
        valid = ops.logical_or(valid, ops.logical_not(any_valid))
        scores = ops.where(valid, scores, ops.full_like(scores, -1e9))
        return ops.softmax(scores, axis=-1)

    def call(self, inputs: Any) -> Any:
        if isinstance(inputs, list | tuple):
            sequence, step_valid = inputs
        else:
            sequence, step_valid = inputs, None
        alpha = self.weights_of(sequence, step_valid)
        pooled = ops.sum(sequence * ops.expand_dims(alpha, -1), axis=1)
        return pooled, alpha

    def compute_output_shape(self, input_shape: Any) -> Any:
        sequence_shape = input_shape[0] if isinstance(input_shape[0], list | tuple) else input_shape
        return (sequence_shape[0], sequence_shape[-1]), (sequence_shape[0], sequence_shape[1])


def conv_steps(frames: int, kernel_frames: int, conv_stride: int) -> int:
    """Time steps after the convolution ('valid' padding): 247 for 750 frames, kernel 10, stride 3."""
    return (frames - kernel_frames) // conv_stride + 1


def pooled_steps(frames: int, acnn: ACNNConfig) -> int:
    """Attention steps after pooling: 73 with pool 30 / stride 3 on 247 steps, 8 with stride 30."""
    return (conv_steps(frames, acnn.kernel_frames, acnn.conv_stride) - acnn.pool_size) // acnn.pool_stride + 1


class ACNNError(ValueError):
    """The ACNN cannot be built for these settings; the message names the setting and the fix."""


def build_acnn(
    acnn: ACNNConfig,
    frames: int,
    bands: int,
    *,
    external_dim: int = 0,
    setting: str = "within",
    band_statistics: tuple[np.ndarray, np.ndarray] | None = None,
    standardise: bool = True,
    convolution: type[keras.layers.Conv1D] = keras.layers.Conv1D,
    max_pooling: type[keras.layers.MaxPooling1D] = keras.layers.MaxPooling1D,
) -> keras.Model:
    """The compiled ACNN for inputs of ``frames`` x ``bands`` log-Mel: inputs ``logmel`` and, if
    ``external_dim > 0``, ``representation``; outputs ``emotion``, ``arousal``, ``valence``.

    ``setting`` (within or cross) chooses the dropout rate (``acnn.dropout_for``). With ``standardise``
    (``features.normalisation`` other than none: ``build_configured`` passes it) the input goes through
    the in-model standardisation, whose per-band (mean, std) ``band_statistics`` sets (identity
    statistics when not given). ``convolution`` and ``max_pooling``: the layer classes of those two
    steps, Keras' own by default (``kernels.layers_for`` gives the speed kernels of ``fast``, the same
    function); ``acnn.implementation`` is not read here.
    """
    if conv_steps(frames, acnn.kernel_frames, acnn.conv_stride) < acnn.pool_size:
        raise ACNNError(
            f"features.logmel.max_frames = {frames} is too short for acnn.kernel_frames = {acnn.kernel_frames}, "
            f"conv_stride = {acnn.conv_stride} and pool_size = {acnn.pool_size}: raise max_frames or lower pool_size"
        )
    logmel = keras.Input(shape=(frames, bands), name=LOGMEL_INPUT)
    inputs = [logmel]
    x = logmel
    if standardise:
        standardisation = BandStandardisation(bands, name="standardise")
        x = standardisation(x)
        if band_statistics is not None:
            standardisation.set_statistics(*band_statistics)
    x = convolution(
        acnn.filters,
        acnn.kernel_frames,
        strides=acnn.conv_stride,
        padding="valid",
        activation=acnn.activation,
        kernel_initializer="glorot_uniform",
        name="conv",
    )(x)
    x = max_pooling(acnn.pool_size, strides=acnn.pool_stride, padding="valid", name="pool")(x)
    attended = _attention(x, logmel, acnn)
    if external_dim > 0:
        representation = keras.Input(shape=(external_dim,), name=REPRESENTATION_INPUT)
        inputs.append(representation)
        hidden = keras.layers.Concatenate(name=HIDDEN_LAYER)([attended, representation])
    else:
        hidden = keras.layers.Identity(name=HIDDEN_LAYER)(attended)
    dropped = keras.layers.Dropout(acnn.dropout_for(setting), name="dropout")(hidden)
    outputs = [keras.layers.Dense(n, activation="softmax", name=name)(dropped) for name, n in HEADS.items()]
    model = keras.Model(inputs, outputs, name="acnn")
    compile_acnn(model, acnn)
    return model


def _attention(pooled: Any, logmel: Any, acnn: ACNNConfig) -> Any:
    """The attention-weighted sum of the pooled steps; with ``acnn.attention_masking`` the steps that see
    only zero padding get no weight."""
    if not acnn.attention_masking:
        attended, _ = AttentionPooling(name="attention")(pooled)
        return attended
    valid = NonPaddingFrames(name="frame_valid")(logmel)
    valid = keras.layers.MaxPooling1D(acnn.kernel_frames, strides=acnn.conv_stride, name="conv_valid")(valid)
    valid = keras.layers.MaxPooling1D(acnn.pool_size, strides=acnn.pool_stride, name="pool_valid")(valid)
    attended, _ = AttentionPooling(name="attention")([pooled, valid])
    return attended


def build_configured(config: Config, **options: Any) -> keras.Model:
    """``build_acnn`` with the configuration's ACNN settings and log-Mel input shape, and the layers of
    its ``acnn.implementation`` (``kernels.layers_for``) unless ``options`` name them; ``auto``, which only
    a protocol resolves (it may time both paths), builds Keras' plain layers here."""
    logmel = config.features.logmel
    options.setdefault("standardise", config.features.standardise_in_model)
    if config.acnn.implementation != "auto":
        options = acnn_kernels.layers_for(config.acnn) | options
    return build_acnn(config.acnn, logmel.max_frames, logmel.bands, **options)


def compile_acnn(model: keras.Model, acnn: ACNNConfig) -> None:
    """Adam and the multi-view loss ``(1-a-b) L_emo + a L_aro + b L_val`` (paper, Eq. 2).

    Arousal/valence labels equal to ``MISSING_LABEL`` (-1) are left out of their loss term.
    """
    a, b = acnn.arousal_weight, acnn.valence_weight
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=acnn.learning_rate),
        loss={
            "emotion": keras.losses.SparseCategoricalCrossentropy(),
            "arousal": keras.losses.SparseCategoricalCrossentropy(ignore_class=MISSING_LABEL),
            "valence": keras.losses.SparseCategoricalCrossentropy(ignore_class=MISSING_LABEL),
        },
        loss_weights={"emotion": 1.0 - a - b, "arousal": a, "valence": b},
        jit_compile=acnn.jit_compile,
        steps_per_execution=STEPS_PER_EXECUTION,
    )


def hidden_model(model: keras.Model) -> keras.Model:
    """A model from the ACNN's inputs to its last hidden layer (attention output, concatenated with the
    AE vector when present; before dropout and softmax) - the representation of the paper's Fig. 3."""
    return keras.Model(model.inputs, model.get_layer(HIDDEN_LAYER).output, name="acnn_hidden")


def analysis_model(model: keras.Model) -> keras.Model:
    """One model giving, in a single pass, the three heads, the last hidden layer and the attention
    weights (outputs as a dict: emotion, arousal, valence, hidden, attention)."""
    outputs = {name: model.get_layer(name).output for name in HEADS}
    outputs[HIDDEN_LAYER] = model.get_layer(HIDDEN_LAYER).output
    outputs["attention"] = model.get_layer("attention").output[1]
    return keras.Model(model.inputs, outputs, name="acnn_analysis")


def predict_all(
    model: keras.Model,
    inputs: dict[str, np.ndarray],
    batch_size: int = PREDICT_BATCH_SIZE,
    compiled: bool = True,
) -> dict[str, np.ndarray]:
    """Head probabilities, last hidden layer and attention weights of ``inputs`` in one pass
    (``compiled=False``: through Keras' ``predict``, which gives the same numbers more slowly)."""
    feeds = {tensor.name: np.asarray(inputs[tensor.name]) for tensor in model.inputs}
    # built once per model (it shares the model's layers), so its prediction graph is traced once
    analysis = getattr(model, "_serlib_analysis_model", None)
    if analysis is None:
        analysis = model._serlib_analysis_model = analysis_model(model)
    if not compiled:
        outputs = analysis.predict(feeds, batch_size=batch_size, verbose=0)
        return {name: np.asarray(value) for name, value in outputs.items()}
    # the same batches through one traced call each, without predict's per-call set-up (same numbers)
    return acnn_loop.predict_batches(analysis, feeds, batch_size)


def attention_weights(
    model: keras.Model, inputs: dict[str, np.ndarray], batch_size: int = PREDICT_BATCH_SIZE
) -> np.ndarray:
    """The attention weights ``alpha`` ``[N, pooled_steps]`` of each utterance (each row sums to 1)."""
    return predict_all(model, inputs, batch_size)["attention"]


def load_acnn(path: Any) -> keras.Model:
    """Load a saved ACNN ``.keras`` file with Keras' safe mode on (no code is deserialised)."""
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except (ValueError, TypeError, KeyError, OSError) as error:  # refused (code in it) or damaged
        raise ACNNError(
            f"{path}: refused or unreadable in Keras safe mode ({' '.join(str(error).split())[:200]}); "
            "use an ACNN trained and saved by serlib"
        ) from None
