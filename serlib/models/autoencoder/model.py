"""The paper's autoencoder: auDeep's time-recurrent sequence-to-sequence model in Keras 3.

The model is a functional Keras model of GRU, Dropout and Dense layers plus three tiny registered layers
(time reversal, time shift, state split), so it saves as ``.keras`` and loads with ``safe_mode=True``.
``build_autoencoder`` makes its GRU layers with Keras' own ``keras.layers.GRU`` unless it is handed
another ``GRUKernel``: training passes the speed kernel (``fused_gru.FUSED_GRU``: ``AudeepGRU``, a
``keras.layers.GRU`` subclass with the same function, run time-major inside, as auDeep, with the two
axes swapped once at the model's input and output). Faithful to auDeep:

* encoder: a deep GRU stack over x[0..T-1] (bidirectional = two independent stacks); the
  representation is tanh(Dense(S_dec)) on the final states of all encoder layers, S_dec =
  layers * units * (2 if bidirectional decoder) = 1024 for the paper;
* decoder initial states are the representation split [l1fw | l1bw | l2fw | l2bw]; its input is a zero
  frame followed by the reversed input shifted by one; targets are the reversed input; a bidirectional
  decoder is two independent stacks (the backward one on the time-reversed input, re-reversed), joined
  only at the output, so its backward direction sees the frame it reconstructs (auDeep's leakage);
  the unidirectional decoder reproduces auDeep's step loop, which shifts the decoder input a second time,
  and its extra inner tanh projection (feed-previous is not offered: auDeep's default 0);
* output tanh(Dense(F)); loss one RMSE over the batch; Adam(epsilon=1e-8) with element-wise clipping;
  dropout as separate layers with a fresh mask per element and step: p on each stack's input,
  1-(1-p)^2 between layers, p on the decoder's top outputs; TF1 initialisation (Glorot-uniform GRU
  kernels per gate group, gate bias 1, random +-sqrt(3/n) dense biases).

Fixed length: auDeep trains and encodes one T per data set; serlib uses the configured
``features.spectrogram.fixed_length_s`` for every corpus (paper preset 7.5 s -> 186 frames, for the
labeled corpora and the unlabeled ones alike; longer unlabeled segments are cut at the end, shorter ones
zero-padded, as auDeep's ``--fixed-length``). With chunking each chunk is one training instance and
the chunk vectors of an utterance are concatenated in chunk order (``audeep fuse chunks``).

Training streams shuffled batches from the HDF5 feature store through ``tf.data``; a checkpoint is
written after every epoch and a re-run resumes from the last one with the same result as an
uninterrupted run (batch order and dropout masks depend only on seed and epoch).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from serlib.base.config import AutoencoderConfig, Config
from serlib.models.autoencoder.layers import (
    KERAS_GRU,
    AutoencoderError,
    GRUGateBias,
    GRUKernel,
    ReconstructionRMSE,
    ReverseTime,
    ShiftTime,
    SplitState,
    SwapBatchTime,
    TF1GRUKernel,
)

MODEL_FILE = "autoencoder.keras"


def representation_dim(ae: AutoencoderConfig) -> int:
    """Size of the representation = the decoder's state size, layers * units * (2 if bidirectional decoder)."""
    return ae.layers * ae.units * (2 if ae.bidirectional_decoder else 1)


def flops_per_utterance(ae: AutoencoderConfig, features: int, frames: int) -> dict[str, float]:
    """Matrix-multiply FLOPs of one utterance (2 per multiply-add): forward, and training ~ 3x forward.

    Counts every GEMM (GRU input and recurrent kernels, representation, reconstruction and, for a
    unidirectional decoder, the inner projection); element-wise work is left out.
    """
    units, layers = ae.units, ae.layers

    def stack_macs() -> int:
        return sum(3 * units * ((features if layer == 0 else units) + units) for layer in range(layers))

    encoder = stack_macs() * (2 if ae.bidirectional_encoder else 1)
    if ae.bidirectional_decoder:
        decoder = 2 * stack_macs() + 2 * units * features
    else:
        decoder = stack_macs() + units * features + features * features
    state = layers * units * (2 if ae.bidirectional_encoder else 1)
    forward = 2.0 * (frames * (encoder + decoder) + state * representation_dim(ae))
    return {"forward": forward, "training": 3.0 * forward}


class _Seeds:
    """Distinct, reproducible integer seeds for the initialisers and dropout layers of one model."""

    def __init__(self, seed: int) -> None:
        self._rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0xAE])

    def next(self) -> int:
        return int(self._rng.integers(0, 2**31 - 1))


@dataclass(frozen=True)
class _Parts:
    """What every layer of one model is made with: the settings, the seeds, the GRU kernel and the
    compute dtype (``mixed_float16`` with ``autoencoder.mixed_precision``, else Keras' default)."""

    ae: AutoencoderConfig
    seeds: _Seeds
    gru: GRUKernel
    dtype: Any

    @property
    def time_axis(self) -> int:
        """The time axis of the sequences between the model's input and output layers."""
        return 0 if self.gru.time_major else 1

    def dense(self, units: int, name: str, dtype: Any = None) -> keras.layers.Dense:
        """A tanh Dense layer with TF1's initialisation: Glorot-uniform kernel, random +-sqrt(3/n) bias
        (TF1's default on a 1-D bias [n], auDeep's; Keras' GlorotUniform computes the same fans)."""
        return keras.layers.Dense(
            units,
            activation="tanh",
            kernel_initializer=keras.initializers.GlorotUniform(seed=self.seeds.next()),
            bias_initializer=keras.initializers.GlorotUniform(seed=self.seeds.next()),
            name=name,
            dtype=self.dtype if dtype is None else dtype,
        )


def _gru(parts: _Parts, input_dim: int, name: str, *, alone: bool) -> keras.layers.GRU:
    """One GRU layer with auDeep's TF1 initialisation (default activations, no recurrent dropout, no
    unroll: eligible for the fused cuDNN kernel when reset_after=True)."""
    ae, seeds = parts.ae, parts.seeds
    return parts.gru.layer(
        ae.units,
        alone=alone,
        return_sequences=True,
        return_state=True,
        reset_after=ae.gru_variant == "reset_after",
        kernel_initializer=TF1GRUKernel(input_dim, ae.units, seeds.next()),
        recurrent_initializer=TF1GRUKernel(input_dim, ae.units, seeds.next()),
        bias_initializer=GRUGateBias(),
        name=name,
        dtype=parts.dtype,
    )


def _stack(
    inputs: Any,
    parts: _Parts,
    prefix: str,
    *,
    initial_states: Sequence[Any] | None = None,
    backward: bool = False,
    top_dropout: bool = False,
    alone: bool = False,
) -> tuple[Any, list[Any]]:
    """One deep GRU stack with auDeep's per-step dropout placement; returns (top outputs, final states).

    Dropout: rate p on the stack's input, 1-(1-p)^2 between layers (the lower cell's output drop and
    the upper cell's input drop), p on the top output when it feeds the reconstruction (``top_dropout``).
    A ``backward`` stack runs on the time-reversed sequence and its outputs are reversed back. ``alone``:
    no sibling direction runs beside this stack (the GRU kernel may spread its batch over cores).
    """
    rate, axis, dtype = parts.ae.dropout, parts.time_axis, parts.dtype
    x = ReverseTime(axis, name=f"{prefix}_reverse_input", dtype=dtype)(inputs) if backward else inputs
    input_dim = inputs.shape[-1]
    states = []
    for layer in range(parts.ae.layers):
        layer_rate = rate if layer == 0 else 1.0 - (1.0 - rate) ** 2
        if layer_rate > 0:
            x = keras.layers.Dropout(
                layer_rate, seed=parts.seeds.next(), name=f"{prefix}_dropout_{layer + 1}", dtype=dtype
            )(x)
        gru = _gru(
            parts, input_dim if layer == 0 else parts.ae.units, f"{prefix}_gru_{layer + 1}", alone=alone
        )
        initial = None if initial_states is None else [initial_states[layer]]
        x, state = gru(x, initial_state=initial)
        states.append(state)
    if top_dropout and rate > 0:
        x = keras.layers.Dropout(rate, seed=parts.seeds.next(), name=f"{prefix}_dropout_top", dtype=dtype)(x)
    if backward:
        x = ReverseTime(axis, name=f"{prefix}_reverse_output", dtype=dtype)(x)
    return x, states


def build_autoencoder(
    ae: AutoencoderConfig,
    features: int,
    *,
    seed: int = 0,
    compile: bool = True,
    gru: GRUKernel = KERAS_GRU,
    strategy: Any = None,
) -> keras.Model:
    """The trainable autoencoder of ``features`` mel bands: input [batch, T, F] (any T), output the
    reconstruction of the reversed input.

    Output frame t reconstructs input frame T-1-t (auDeep's target order); train with targets
    ``x[:, ::-1]``. Compiled with the RMSE loss and Adam(epsilon=1e-8, clipvalue) unless ``compile=False``.
    ``gru``: how the GRU layers are made, Keras' own ``keras.layers.GRU`` by default (the paper's network
    in plain Keras); training passes the speed kernel ``fused_gru.FUSED_GRU`` (the same function).
    ``strategy``: a ``tf.distribute`` strategy to build in (default: the current one).
    """
    parts = _Parts(ae, _Seeds(seed), gru, "mixed_float16" if ae.mixed_precision else None)
    output_dtype = "float32" if ae.mixed_precision else None
    with (strategy or tf.distribute.get_strategy()).scope():
        inputs = keras.Input((None, features), name="spectrogram")
        x = SwapBatchTime(name="time_major", dtype=parts.dtype)(inputs) if gru.time_major else inputs
        representation = _encoder(x, parts)
        decoder_output = _decoder(x, representation, parts, features)
        reconstruction = parts.dense(features, "reconstruction", dtype=output_dtype)(decoder_output)
        if gru.time_major:
            reconstruction = SwapBatchTime(name="batch_major", dtype=output_dtype)(reconstruction)
        model = keras.Model(inputs, reconstruction, name="audeep_autoencoder")
        if compile:
            _compile(model, ae)
    return model


def _encoder(x: Any, parts: _Parts) -> Any:
    """The representation: tanh(Dense) on the final states of every encoder layer and direction, the
    encoder running over x[0..T-1] from zero states."""
    ae = parts.ae
    _, forward_states = _stack(x, parts, "encoder_fw", alone=not ae.bidirectional_encoder)
    final = forward_states
    if ae.bidirectional_encoder:
        _, backward_states = _stack(x, parts, "encoder_bw", backward=True)
        final = [s for pair in zip(forward_states, backward_states, strict=True) for s in pair]
    encoder_state = (
        keras.layers.Concatenate(name="encoder_state", dtype=parts.dtype)(final)
        if len(final) > 1
        else final[0]
    )
    return parts.dense(representation_dim(ae), "representation")(encoder_state)


def _decoder(x: Any, representation: Any, parts: _Parts, features: int) -> Any:
    """The decoder's top outputs, before the reconstruction layer: its initial states are the
    representation split per layer and direction, its input a zero frame then the reversed input."""
    ae, axis, dtype = parts.ae, parts.time_axis, parts.dtype
    directions = 2 if ae.bidirectional_decoder else 1
    states = SplitState(ae.layers * directions, name="decoder_initial_states", dtype=dtype)(representation)
    states = states if isinstance(states, list | tuple) else [states]
    # Decoder input: a zero frame, then the reversed input shifted by one: [0, x[T-1], ..., x[1]].
    reversed_input = ReverseTime(axis, name="target_order", dtype=dtype)(x)
    if ae.bidirectional_decoder:
        decoder_input = ShiftTime(1, axis, name="decoder_input", dtype=dtype)(reversed_input)
        fw_states = [states[directions * layer] for layer in range(ae.layers)]
        bw_states = [states[directions * layer + 1] for layer in range(ae.layers)]
        fw, _ = _stack(decoder_input, parts, "decoder_fw", initial_states=fw_states, top_dropout=True)
        bw, _ = _stack(
            decoder_input, parts, "decoder_bw", initial_states=bw_states, backward=True, top_dropout=True
        )
        return keras.layers.Concatenate(name="decoder_output", dtype=dtype)([fw, bw])
    # auDeep's unidirectional step loop feeds decoder-input[t-1] at step t (zero at t=0): with
    # feed-previous off this is a plain GRU over the decoder input shifted a second time.
    decoder_input = ShiftTime(2, axis, name="decoder_input", dtype=dtype)(reversed_input)
    top, _ = _stack(decoder_input, parts, "decoder_fw", initial_states=states, top_dropout=True, alone=True)
    return parts.dense(features, "decoder_projection")(top)


def build_configured(config: Config, seed: int | None = None, **options: Any) -> keras.Model:
    """``build_autoencoder`` with the configuration's autoencoder settings, mel bands and seed."""
    chosen = config.seed if seed is None else seed
    return build_autoencoder(
        config.autoencoder, config.features.spectrogram.mel_bands, seed=chosen, **options
    )


def _compile(model: keras.Model, ae: AutoencoderConfig) -> None:
    optimizer: keras.optimizers.Optimizer = keras.optimizers.Adam(
        learning_rate=ae.learning_rate,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        clipvalue=ae.gradient_clip_value,
    )
    if ae.mixed_precision:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    model.compile(optimizer=optimizer, loss=ReconstructionRMSE(), jit_compile=bool(ae.jit_compile))


def load_model(path: str | os.PathLike[str], compile: bool = True) -> keras.Model:
    """Load a saved autoencoder with Keras' safe mode on (no Lambda layers, no pickled code)."""
    path = Path(path)
    if not path.is_file():
        raise AutoencoderError(f"autoencoder model {path} does not exist; train one with `serlib train-ae`")
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=compile)
    except (ValueError, TypeError, KeyError, OSError) as error:  # refused (code in it) or damaged
        raise AutoencoderError(
            f"{path}: refused or unreadable in Keras safe mode ({' '.join(str(error).split())[:200]}); "
            "use an autoencoder trained and saved by serlib"
        ) from None


def representation_model(model: keras.Model) -> keras.Model:
    """The encoder part: spectrograms [batch, T, F] -> representation [batch, D] (the 'representation' layer)."""
    return keras.Model(model.input, model.get_layer("representation").output, name="audeep_encoder")
