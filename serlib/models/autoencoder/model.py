"""The paper's autoencoder: auDeep's time-recurrent sequence-to-sequence model in Keras 3.

The model is a functional Keras model of GRU (``AudeepGRU``, a ``keras.layers.GRU`` subclass),
Dropout and Dense layers plus three tiny registered layers (time reversal, time shift, state split),
so it saves as ``.keras`` and loads with ``safe_mode=True``. The model takes and returns batch-major
[batch, T, F] and runs time-major inside, as auDeep (same maths). Faithful to auDeep:

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
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from serlib.base.config import AutoencoderConfig, Config
from serlib.models.autoencoder.fused_gru import AudeepGRU
from serlib.models.autoencoder.layers import (
    AutoencoderError,
    GRUGateBias,
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
    """Distinct, reproducible integer seeds for the initialisers and dropout layers of one model.

    Also carries the GRU layer class, so the benchmark can build the same graph with stock Keras GRUs.
    """

    def __init__(self, seed: int, gru_class: type[keras.layers.GRU] | None = None) -> None:
        self._rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0xAE])
        self.gru_class = gru_class or AudeepGRU
        # AudeepGRU runs time-major (auDeep's layout) between the model's two transposes.
        self.time_major = issubclass(self.gru_class, AudeepGRU)
        self.time_axis = 0 if self.time_major else 1

    def next(self) -> int:
        return int(self._rng.integers(0, 2**31 - 1))


def _gru(
    units: int, input_dim: int, variant: str, seeds: _Seeds, name: str, dtype: Any, shards: int
) -> keras.layers.GRU:
    # Default activations, no recurrent dropout, no unroll: eligible for the fused cuDNN kernel when
    # reset_after=True (Keras' default GRU path otherwise).
    layout: dict[str, Any] = {"time_major": True, "batch_shards": shards} if seeds.time_major else {}
    return seeds.gru_class(
        units,
        return_sequences=True,
        return_state=True,
        reset_after=variant == "reset_after",
        kernel_initializer=TF1GRUKernel(input_dim, units, seeds.next()),
        recurrent_initializer=TF1GRUKernel(input_dim, units, seeds.next()),
        bias_initializer=GRUGateBias(),
        name=name,
        dtype=dtype,
        **layout,
    )


def _stack(
    inputs: Any,
    initial_states: Sequence[Any] | None,
    prefix: str,
    ae: AutoencoderConfig,
    seeds: _Seeds,
    backward: bool,
    top_dropout: bool,
    dtype: Any,
    shards: int = 1,
) -> tuple[Any, list[Any]]:
    """One deep GRU stack with auDeep's per-step dropout placement; returns (top outputs, final states).

    Dropout: rate p on the stack's input, 1-(1-p)^2 between layers (the lower cell's output drop and
    the upper cell's input drop), p on the top output when it feeds the reconstruction. A backward
    stack runs on the time-reversed sequence and its outputs are reversed back. ``shards``: see
    ``AudeepGRU.batch_shards`` (2 for a stack without a concurrent sibling direction).
    """
    rate = ae.dropout
    axis = seeds.time_axis
    x = ReverseTime(axis, name=f"{prefix}_reverse_input", dtype=dtype)(inputs) if backward else inputs
    input_dim = inputs.shape[-1]
    states = []
    for layer in range(ae.layers):
        layer_rate = rate if layer == 0 else 1.0 - (1.0 - rate) ** 2
        if layer_rate > 0:
            x = keras.layers.Dropout(
                layer_rate, seed=seeds.next(), name=f"{prefix}_dropout_{layer + 1}", dtype=dtype
            )(x)
        gru = _gru(
            ae.units,
            input_dim if layer == 0 else ae.units,
            ae.gru_variant,
            seeds,
            f"{prefix}_gru_{layer + 1}",
            dtype,
            shards,
        )
        initial = None if initial_states is None else [initial_states[layer]]
        x, state = gru(x, initial_state=initial)
        states.append(state)
    if top_dropout and rate > 0:
        x = keras.layers.Dropout(rate, seed=seeds.next(), name=f"{prefix}_dropout_top", dtype=dtype)(x)
    if backward:
        x = ReverseTime(axis, name=f"{prefix}_reverse_output", dtype=dtype)(x)
    return x, states


def _random_bias(seeds: _Seeds) -> keras.initializers.Initializer:
    # TF1's default initialiser on a 1-D bias [n] is Glorot-uniform with fan_in = fan_out = n,
    # i.e. uniform in +-sqrt(3/n) (auDeep's initialiser); Keras' GlorotUniform computes the same fans.
    return keras.initializers.GlorotUniform(seed=seeds.next())


def build_autoencoder(
    ae: AutoencoderConfig,
    features: int,
    seed: int = 0,
    compile: bool = True,
    gru_class: type[keras.layers.GRU] | None = None,
    strategy: Any = None,
) -> keras.Model:
    """The trainable autoencoder of ``features`` mel bands: input [batch, T, F] (any T), output the
    reconstruction of the reversed input.

    Output frame t reconstructs input frame T-1-t (auDeep's target order); train with targets
    ``x[:, ::-1]``. Compiled with the RMSE loss and Adam(epsilon=1e-8, clipvalue) unless ``compile=False``.
    ``strategy``: a ``tf.distribute`` strategy to build in (default: the current one). ``gru_class``
    (default ``AudeepGRU``) exists for benchmarks against the stock ``keras.layers.GRU``.
    """
    seeds = _Seeds(seed, gru_class)
    dtype = "mixed_float16" if ae.mixed_precision else None
    directions_dec = 2 if ae.bidirectional_decoder else 1
    with (strategy or tf.distribute.get_strategy()).scope():
        inputs = keras.Input((None, features), name="spectrogram")
        axis = seeds.time_axis
        x = SwapBatchTime(name="time_major", dtype=dtype)(inputs) if seeds.time_major else inputs
        # Encoder over x[0..T-1] from zero states; the states of all layers form s_enc.
        shards = 1 if ae.bidirectional_encoder else 2
        _, forward_states = _stack(x, None, "encoder_fw", ae, seeds, False, False, dtype, shards)
        if ae.bidirectional_encoder:
            _, backward_states = _stack(x, None, "encoder_bw", ae, seeds, True, False, dtype)
            final = [s for pair in zip(forward_states, backward_states, strict=True) for s in pair]
        else:
            final = forward_states
        encoder_state = (
            keras.layers.Concatenate(name="encoder_state", dtype=dtype)(final) if len(final) > 1 else final[0]
        )
        representation = keras.layers.Dense(
            representation_dim(ae),
            activation="tanh",
            kernel_initializer=keras.initializers.GlorotUniform(seed=seeds.next()),
            bias_initializer=_random_bias(seeds),
            name="representation",
            dtype=dtype,
        )(encoder_state)
        blocks = ae.layers * directions_dec
        states = SplitState(blocks, name="decoder_initial_states", dtype=dtype)(representation)
        states = states if isinstance(states, list | tuple) else [states]
        # Decoder input: a zero frame, then the reversed input shifted by one: [0, x[T-1], ..., x[1]].
        reversed_input = ReverseTime(axis, name="target_order", dtype=dtype)(x)
        if ae.bidirectional_decoder:
            decoder_input = ShiftTime(1, axis, name="decoder_input", dtype=dtype)(reversed_input)
            fw_states = [states[directions_dec * layer] for layer in range(ae.layers)]
            bw_states = [states[directions_dec * layer + 1] for layer in range(ae.layers)]
            fw, _ = _stack(decoder_input, fw_states, "decoder_fw", ae, seeds, False, True, dtype)
            bw, _ = _stack(decoder_input, bw_states, "decoder_bw", ae, seeds, True, True, dtype)
            decoder_output = keras.layers.Concatenate(name="decoder_output", dtype=dtype)([fw, bw])
        else:
            # auDeep's unidirectional step loop feeds decoder-input[t-1] at step t (zero at t=0): with
            # feed-previous off this is a plain GRU over the decoder input shifted a second time.
            decoder_input = ShiftTime(2, axis, name="decoder_input", dtype=dtype)(reversed_input)
            top, _ = _stack(decoder_input, states, "decoder_fw", ae, seeds, False, True, dtype, 2)
            decoder_output = keras.layers.Dense(
                features,
                activation="tanh",
                kernel_initializer=keras.initializers.GlorotUniform(seed=seeds.next()),
                bias_initializer=_random_bias(seeds),
                name="decoder_projection",
                dtype=dtype,
            )(top)
        reconstruction = keras.layers.Dense(
            features,
            activation="tanh",
            kernel_initializer=keras.initializers.GlorotUniform(seed=seeds.next()),
            bias_initializer=_random_bias(seeds),
            name="reconstruction",
            dtype="float32" if ae.mixed_precision else None,
        )(decoder_output)
        if seeds.time_major:
            reconstruction = SwapBatchTime(
                name="batch_major", dtype="float32" if ae.mixed_precision else None
            )(reconstruction)
        model = keras.Model(inputs, reconstruction, name="audeep_autoencoder")
        if compile:
            _compile(model, ae)
    return model


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
