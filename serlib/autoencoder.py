"""auDeep's time-recurrent autoencoder (spec sections 2-3) re-implemented in TF2 / Keras 3.

The model is a functional Keras model of GRU (``AudeepGRU``, a ``keras.layers.GRU`` subclass),
Dropout and Dense layers plus three tiny registered layers (time reversal, time shift, state split),
so it saves as ``.keras`` and loads with ``safe_mode=True``. The model takes and returns batch-major
[batch, T, F] and runs time-major inside, as auDeep (same maths). Faithful to the spec:

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

import csv
import functools
import hashlib
import io
import json
import logging
import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import keras
import numpy as np
import tensorflow as tf
from keras import ops

from serlib import runtime
from serlib.audeep_files import fuse_chunks
from serlib.progress import bar as progress_bar
from serlib.progress import keras_verbose

log = logging.getLogger(__name__)

__all__ = [
    "AutoencoderError",
    "RepresentationSet",
    "build_autoencoder",
    "encode",
    "encode_configured",
    "flops_per_utterance",
    "fuse_chunks",
    "load_model",
    "load_representations",
    "representation_dim",
    "representation_model",
    "train",
    "train_configured",
]

MODEL_FILE = "autoencoder.keras"
STATE_FILE = "training_state.json"
HISTORY_CSV = "loss_history.csv"
HISTORY_PNG = "loss_history.png"
PREFETCH_BATCHES = 4


class AutoencoderError(ValueError):
    """Autoencoder inputs, files or training state are inconsistent; the message names what and the fix."""


# -- registered building blocks -----------------------------------------------------------------------
@keras.saving.register_keras_serializable(package="serlib")
class ReverseTime(keras.layers.Layer):
    """Reverses the time axis (``axis``: 1 for [batch, T, F], 0 for time-major [T, batch, F])."""

    def __init__(self, axis: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.axis = int(axis)

    def call(self, inputs: Any) -> Any:
        return ops.flip(inputs, axis=self.axis)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis}


@keras.saving.register_keras_serializable(package="serlib")
class SwapBatchTime(keras.layers.Layer):
    """[batch, T, F] <-> [T, batch, F]: the model runs time-major inside, as auDeep, without per-layer transposes."""

    def call(self, inputs: Any) -> Any:
        return ops.transpose(inputs, (1, 0, 2))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[1], input_shape[0], *input_shape[2:])


@keras.saving.register_keras_serializable(package="serlib")
class ShiftTime(keras.layers.Layer):
    """Delays a sequence by ``steps`` frames: ``steps`` zero frames first, the last ``steps`` frames dropped."""

    def __init__(self, steps: int = 1, axis: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.steps = int(steps)
        self.axis = int(axis)

    def call(self, inputs: Any) -> Any:
        head = [slice(None)] * self.axis + [slice(None, self.steps)]
        body = [slice(None)] * self.axis + [slice(None, -self.steps)]
        zeros = ops.zeros_like(inputs[tuple(head)])
        return ops.concatenate([zeros, inputs[tuple(body)]], axis=self.axis)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "steps": self.steps, "axis": self.axis}


@keras.saving.register_keras_serializable(package="serlib")
class SplitState(keras.layers.Layer):
    """Splits the representation into ``blocks`` equal initial states, in auDeep's block order."""

    def __init__(self, blocks: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.blocks = int(blocks)

    def call(self, inputs: Any) -> Any:
        return ops.split(inputs, self.blocks, axis=-1)

    def compute_output_shape(self, input_shape: tuple) -> list[tuple]:
        size = None if input_shape[-1] is None else input_shape[-1] // self.blocks
        return [(*input_shape[:-1], size)] * self.blocks

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "blocks": self.blocks}


@keras.saving.register_keras_serializable(package="serlib")
class TF1GRUKernel(keras.initializers.Initializer):
    """TF1 GRUCell's Glorot-uniform: gates over [(F_in+U), 2U], candidate over [(F_in+U), U].

    Applied to Keras' split kernels (input [F_in, 3U] and recurrent [U, 3U], columns [z, r, h]), it
    draws every element from the same distribution as TF1's concatenated matrices.
    """

    def __init__(self, input_dim: int, units: int, seed: int | None = None) -> None:
        self.input_dim = int(input_dim)
        self.units = int(units)
        self.seed = seed

    def __call__(self, shape: Sequence[int], dtype: Any = None) -> Any:
        fan = self.input_dim + self.units
        gate = math.sqrt(6.0 / (fan + 2 * self.units))
        candidate = math.sqrt(6.0 / (fan + self.units))
        limits = np.concatenate([np.full(2 * self.units, gate), np.full(self.units, candidate)])
        if shape[-1] != 3 * self.units:
            raise AutoencoderError(
                f"TF1GRUKernel: expected {3 * self.units} columns, got shape {tuple(shape)}"
            )
        unit = keras.random.uniform(shape, -1.0, 1.0, dtype=dtype, seed=self.seed)
        return unit * ops.cast(limits, unit.dtype)

    def get_config(self) -> dict[str, Any]:
        return {"input_dim": self.input_dim, "units": self.units, "seed": self.seed}


@keras.saving.register_keras_serializable(package="serlib")
class GRUGateBias(keras.initializers.Initializer):
    """TF1 GRUCell bias: 1.0 for the update and reset gates, 0 for the candidate (Keras order z, r, h).

    For ``reset_after`` (bias shape [2, 3U]) the input bias carries the 1.0 and the recurrent bias is 0,
    so the gates start with the same total bias.
    """

    def __call__(self, shape: Sequence[int], dtype: Any = None) -> Any:
        units = shape[-1] // 3
        row = np.concatenate([np.ones(2 * units), np.zeros(units)])
        value = row if len(shape) == 1 else np.stack([row] + [np.zeros_like(row)] * (shape[0] - 1))
        return ops.cast(value, dtype or "float32")

    def get_config(self) -> dict[str, Any]:
        return {}


@keras.saving.register_keras_serializable(package="serlib")
class ReconstructionRMSE(keras.losses.Loss):
    """auDeep's loss: one root-mean-square error over every element of the batch (spec 2.4 item 8)."""

    def __init__(self, name: str = "reconstruction_rmse", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        y_pred = ops.cast(y_pred, "float32")
        y_true = ops.cast(y_true, "float32")
        return ops.sqrt(ops.mean(ops.square(y_true - y_pred)))


# -- fused GRU -------------------------------------------------------------------------------------


@tf.autograph.experimental.do_not_convert
def fused_gru(
    x: Any,
    h0: Any,
    kernel: Any,
    recurrent_kernel: Any,
    bias: Any,
    reset_after: bool,
    time_major: bool = False,
) -> tuple[Any, Any]:
    """A GRU layer's forward pass with hand-written backpropagation through time (Keras gate order z, r, h).

    x [B, T, F] (or [T, B, F] with ``time_major``), h0 [B, U] -> (outputs in the layout of x, last state
    [B, U]); ``bias`` is [3U] (reset_before, TF1's GRUCell) or [2, 3U] (reset_after: input and recurrent
    bias). The input projection of all frames is one matrix product before the loop and the weight
    gradients are single products after the backward loop, so only the unavoidable [B, U] x [U, 3U]
    products run per time step. Same maths as Keras' GRU (tested against it).
    """
    units = recurrent_kernel.shape[0]
    convert = tf.convert_to_tensor
    x = convert(x)
    if not time_major:
        x = tf.transpose(x, [1, 0, 2])
    outputs, last = _fused_gru(
        x, convert(h0), convert(kernel), convert(recurrent_kernel), convert(bias), units, reset_after
    )
    return (outputs if time_major else tf.transpose(outputs, [1, 0, 2])), last


# The two time loops of a fused GRU layer are compiled with XLA, which fuses each step's gate
# arithmetic into a few kernels: these steps are small ([B, U] x [U, 3U] products plus ten elementwise
# ops), and TensorFlow's own tanh/sigmoid kernels cost 3-4x XLA's on them. Measured on 2 CPU cores
# (paper AE, batch 64): 1.14-1.17x faster training (docs/performance.md); whole-model XLA
# (``jit_compile``) is slower, because XLA's CPU matrix products lose to oneDNN on the big projections.
COMPILE_LOOPS = True


@functools.lru_cache(maxsize=8)
def _loops(units: int, reset_after: bool, compiled: bool) -> tuple[Any, Any]:
    """The forward and backward time loops of a fused GRU layer as (optionally XLA-compiled) functions."""

    def forward(gx_zr: Any, gx_n: Any, h0: Any, recurrent_kernel: Any, bias: Any) -> Any:
        steps = tf.shape(gx_zr)[0]
        dtype = gx_zr.dtype
        rk_zr, rk_n = recurrent_kernel[:, : 2 * units], recurrent_kernel[:, 2 * units :]

        def step(t: Any, h: Any, states: Any, zr_a: Any, n_a: Any, aux_a: Any) -> Any:
            if reset_after:
                gh = tf.nn.bias_add(tf.matmul(h, recurrent_kernel), bias[1])
                gh_zr, gh_n = tf.split(gh, [2 * units, units], axis=1)
                zr = tf.sigmoid(gx_zr[t] + gh_zr)
                z, r = tf.split(zr, 2, axis=1)
                aux = gh_n
                n = tf.tanh(gx_n[t] + r * gh_n)
            else:
                zr = tf.sigmoid(gx_zr[t] + tf.matmul(h, rk_zr))
                z, r = tf.split(zr, 2, axis=1)
                aux = r * h
                n = tf.tanh(gx_n[t] + tf.matmul(aux, rk_n))
            new = n + z * (h - n)
            return t + 1, new, states.write(t, new), zr_a.write(t, zr), n_a.write(t, n), aux_a.write(t, aux)

        arrays = [tf.TensorArray(dtype, size=steps) for _ in range(4)]
        _, last, *arrays = tf.while_loop(
            lambda t, *_: t < steps, step, (tf.constant(0), h0, *arrays), parallel_iterations=1
        )
        return (last, *(a.stack() for a in arrays))

    def backward(
        d_outputs: Any,
        carry: Any,
        previous: Any,
        zr_all: Any,
        n_all: Any,
        aux_all: Any,
        recurrent_kernel: Any,
    ) -> Any:
        steps = tf.shape(d_outputs)[0]
        dtype = d_outputs.dtype
        rk_zr, rk_n = recurrent_kernel[:, : 2 * units], recurrent_kernel[:, 2 * units :]

        def step(i: Any, carry: Any, d_zr_a: Any, d_n_a: Any, d_gh_a: Any) -> Any:
            t = steps - 1 - i
            zr, n, aux, h_prev = zr_all[t], n_all[t], aux_all[t], previous[t]
            z, r = tf.split(zr, 2, axis=1)
            dh = d_outputs[t] + carry
            dh_z = dh * z
            # TanhGrad(y, dy) = dy * (1 - y^2), SigmoidGrad(y, dy) = dy * y * (1 - y): one pass each.
            d_n = tf.raw_ops.TanhGrad(y=n, dy=dh - dh_z)
            d_z = dh * (h_prev - n)
            if reset_after:
                d_zr = tf.raw_ops.SigmoidGrad(y=zr, dy=tf.concat([d_z, d_n * aux], axis=1))
                d_gh = tf.concat([d_zr, d_n * r], axis=1)
                carry = dh_z + tf.matmul(d_gh, recurrent_kernel, transpose_b=True)
                d_gh_a = d_gh_a.write(t, d_gh)
            else:
                d_aux = tf.matmul(d_n, rk_n, transpose_b=True)
                d_zr = tf.raw_ops.SigmoidGrad(y=zr, dy=tf.concat([d_z, d_aux * h_prev], axis=1))
                carry = dh_z + d_aux * r + tf.matmul(d_zr, rk_zr, transpose_b=True)
            return i + 1, carry, d_zr_a.write(t, d_zr), d_n_a.write(t, d_n), d_gh_a

        sizes = (steps, steps, steps if reset_after else 0)
        arrays = [tf.TensorArray(dtype, size=size) for size in sizes]
        _, d_h0, *arrays = tf.while_loop(
            lambda i, *_: i < steps, step, (tf.constant(0), carry, *arrays), parallel_iterations=1
        )
        return (d_h0, *(a.stack() for a in arrays[:2])) + ((arrays[2].stack(),) if reset_after else ())

    if not compiled:
        return forward, backward
    return tf.function(forward, jit_compile=True), tf.function(backward, jit_compile=True)


def _fused_gru(
    x: Any, h0: Any, kernel: Any, recurrent_kernel: Any, bias: Any, units: int, reset_after: bool
) -> Any:
    forward_loop, backward_loop = _loops(units, reset_after, COMPILE_LOOPS)

    @tf.custom_gradient
    def run(x: Any, h0: Any, kernel: Any, recurrent_kernel: Any, bias: Any) -> Any:
        shape = tf.shape(x)  # time-major [T, B, F]
        steps, batch = shape[0], shape[1]
        features = x.shape[-1]
        dtype = x.dtype
        x2 = tf.reshape(x, [-1, features])  # time-major rows
        input_bias = bias[0] if reset_after else bias
        k_zr, k_n = kernel[:, : 2 * units], kernel[:, 2 * units :]
        # Input projections of all frames, one product per gate group (contiguous per-step reads).
        gx_zr = tf.reshape(tf.matmul(x2, k_zr) + input_bias[: 2 * units], [steps, batch, 2 * units])
        gx_n = tf.reshape(tf.matmul(x2, k_n) + input_bias[2 * units :], [steps, batch, units])
        # The loops' inputs are cut from any recording tape: ``grad`` below is their gradient (a taped
        # call of a compiled function would also make TensorFlow build its own, uncompilable one).
        last, outputs_t, zr_all, n_all, aux_all = forward_loop(
            *(tf.stop_gradient(v) for v in (gx_zr, gx_n, h0, recurrent_kernel, bias))
        )
        previous = tf.concat([h0[tf.newaxis], outputs_t[:-1]], axis=0)  # h0 .. h_{T-1}

        def grad(d_outputs: Any, d_last: Any) -> Any:
            d_out_t = tf.zeros_like(outputs_t) if d_outputs is None else d_outputs
            carry0 = tf.zeros_like(h0) if d_last is None else d_last
            d_h0, d_zr_all, d_n_all, *d_gh_all = backward_loop(
                *(
                    tf.stop_gradient(v)
                    for v in (d_out_t, carry0, previous, zr_all, n_all, aux_all, recurrent_kernel)
                )
            )
            rows = steps * batch
            d_zr = tf.reshape(d_zr_all, [rows, 2 * units])
            d_n = tf.reshape(d_n_all, [rows, units])
            h_prev = tf.reshape(previous, [rows, units])

            d_kernel = tf.concat(
                [tf.matmul(x2, d_zr, transpose_a=True), tf.matmul(x2, d_n, transpose_a=True)], axis=1
            )
            d_x2 = tf.matmul(d_zr, k_zr, transpose_b=True) + tf.matmul(d_n, k_n, transpose_b=True)
            d_x = tf.reshape(d_x2, [steps, batch, features])
            ones = tf.ones([1, rows], dtype)  # column sums as products: faster than reduce_sum here
            d_input_bias = tf.concat([tf.matmul(ones, d_zr)[0], tf.matmul(ones, d_n)[0]], axis=0)
            if reset_after:
                d_gh = tf.reshape(d_gh_all[0], [rows, 3 * units])
                d_recurrent = tf.matmul(h_prev, d_gh, transpose_a=True)
                d_bias = tf.stack([d_input_bias, tf.matmul(ones, d_gh)[0]])
            else:
                aux = tf.reshape(aux_all, [rows, units])
                d_recurrent = tf.concat(
                    [tf.matmul(h_prev, d_zr, transpose_a=True), tf.matmul(aux, d_n, transpose_a=True)], axis=1
                )
                d_bias = d_input_bias
            return d_x, d_h0, d_kernel, d_recurrent, d_bias

        return (outputs_t, last), grad

    return run(x, h0, kernel, recurrent_kernel, bias)


@keras.saving.register_keras_serializable(package="serlib")
class AudeepGRU(keras.layers.GRU):
    """Keras' GRU (same weights, config and cuDNN path) with a faster loop where cuDNN does not apply.

    On a GPU with ``reset_after=True`` the stock cuDNN kernel runs; elsewhere (CPU, or the TF1
    ``reset_after=False`` variant) ``fused_gru`` replaces Keras' per-step cell calls, which repeat the
    input projection at every step and leave gradients to automatic differentiation of the loop.
    ``time_major=True`` takes and returns [T, batch, F] (auDeep's layout), saving two transposes per
    layer and direction in a stack. ``batch_shards=2`` runs the two halves of the batch as separate
    loops that TensorFlow schedules on different cores (same maths): used for stacks that have no
    concurrent sibling (the unidirectional encoder), ~6% faster training on 2 cores.
    """

    def __init__(self, units: int, time_major: bool = False, batch_shards: int = 1, **kwargs: Any) -> None:
        super().__init__(units, **kwargs)
        self.time_major = bool(time_major)
        self.batch_shards = int(batch_shards)
        if self.time_major and (self.stateful or self.go_backwards):
            raise AutoencoderError("AudeepGRU(time_major=True) supports neither stateful nor go_backwards")
        if self.batch_shards < 1:
            raise AutoencoderError(f"AudeepGRU batch_shards must be >= 1, got {batch_shards}")

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "time_major": self.time_major, "batch_shards": self.batch_shards}

    def _fused(self, mask: Any) -> bool:
        cell = self.cell
        standard = (
            mask is None
            and not self.go_backwards
            and not self.unroll
            and cell.use_bias
            and not cell.dropout
            and not cell.recurrent_dropout
            and cell.activation is keras.activations.tanh
            and cell.recurrent_activation is keras.activations.sigmoid
        )
        cudnn = cell.reset_after and bool(tf.config.list_logical_devices("GPU"))
        return standard and not cudnn and keras.backend.backend() == "tensorflow"

    def _run_fused(self, sequences: Any, state: Any, time_major: bool) -> tuple[Any, Any]:
        cell = self.cell
        dtype = sequences.dtype
        weights = [ops.cast(w, dtype) for w in (cell.kernel, cell.recurrent_kernel, cell.bias)]
        state = ops.cast(state, dtype)
        if self.batch_shards == 1:
            return fused_gru(sequences, state, *weights, cell.reset_after, time_major=time_major)
        axis = 1 if time_major else 0
        batch = tf.shape(state)[0]
        sizes = [batch // self.batch_shards] * (self.batch_shards - 1)
        sizes.append(batch - sum(sizes))  # any batch size, also odd or smaller than the shard count
        results = [
            fused_gru(x, h, *weights, cell.reset_after, time_major=time_major)
            for x, h in zip(
                tf.split(sequences, sizes, axis=axis), tf.split(state, sizes, axis=0), strict=True
            )
        ]
        return tf.concat([r[0] for r in results], axis=axis), tf.concat([r[1] for r in results], axis=0)

    def inner_loop(self, sequences: Any, initial_state: Any, mask: Any, training: bool = False) -> Any:
        if not self._fused(mask):
            return super().inner_loop(sequences, initial_state, mask, training=training)
        state = initial_state[0] if isinstance(initial_state, list | tuple) else initial_state
        outputs, last = self._run_fused(sequences, state, time_major=False)
        return last, outputs, [last]

    def call(
        self, sequences: Any, initial_state: Any = None, mask: Any = None, training: bool = False
    ) -> Any:
        if not self.time_major:
            return super().call(sequences, initial_state=initial_state, mask=mask, training=training)
        if isinstance(initial_state, list | tuple):
            initial_state = initial_state[0] if initial_state else None
        if self._fused(mask):
            if initial_state is None:
                initial_state = ops.zeros(
                    (ops.shape(sequences)[1], self.cell.units), dtype=self.compute_dtype
                )
            outputs, last = self._run_fused(sequences, initial_state, time_major=True)
            outputs, last = ops.cast(outputs, self.compute_dtype), ops.cast(last, self.compute_dtype)
        else:  # e.g. cuDNN: Keras' own path in batch-major layout
            batch_major = ops.transpose(sequences, (1, 0, 2))
            states = None if initial_state is None else [initial_state]
            result = super().call(batch_major, initial_state=states, mask=mask, training=training)
            outputs, last = (result[0], result[1]) if self.return_state else (result, None)
            if self.return_sequences:
                outputs = ops.transpose(outputs, (1, 0, 2))
            if not self.return_state:
                return outputs
            return outputs, last
        output = outputs if self.return_sequences else last
        return (output, last) if self.return_state else output

    def compute_output_shape(self, sequences_shape: tuple, initial_state_shape: Any = None) -> Any:
        if not self.time_major:
            return super().compute_output_shape(sequences_shape, initial_state_shape)
        steps, batch = sequences_shape[0], sequences_shape[1]
        output = (steps, batch, self.cell.units) if self.return_sequences else (batch, self.cell.units)
        return (output, (batch, self.cell.units)) if self.return_state else output


# -- architecture -----------------------------------------------------------------------------------
def representation_dim(config: Any) -> int:
    """Size of the representation = the decoder's state size, layers * units * (2 if bidirectional decoder)."""
    ae = config.autoencoder
    return ae.layers * ae.units * (2 if ae.bidirectional_decoder else 1)


def flops_per_utterance(config: Any, frames: int) -> dict[str, float]:
    """Matrix-multiply FLOPs of one utterance (2 per multiply-add): forward, and training ~ 3x forward.

    Counts every GEMM (GRU input and recurrent kernels, representation, reconstruction and, for a
    unidirectional decoder, the inner projection); element-wise work is left out.
    """
    ae = config.autoencoder
    features = config.features.spectrogram.mel_bands
    units, layers = ae.units, ae.layers

    def stack_macs() -> int:
        return sum(3 * units * ((features if layer == 0 else units) + units) for layer in range(layers))

    encoder = stack_macs() * (2 if ae.bidirectional_encoder else 1)
    if ae.bidirectional_decoder:
        decoder = 2 * stack_macs() + 2 * units * features
    else:
        decoder = stack_macs() + units * features + features * features
    state = layers * units * (2 if ae.bidirectional_encoder else 1)
    forward = 2.0 * (frames * (encoder + decoder) + state * representation_dim(config))
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
    config: Any,
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
    ae = config.autoencoder
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
    # i.e. uniform in +-sqrt(3/n) (spec 2.5); Keras' GlorotUniform computes the same fans.
    return keras.initializers.GlorotUniform(seed=seeds.next())


def _strategy(config: Any) -> tf.distribute.Strategy:
    from serlib.cluster import distribution_strategy  # one per process; checks TF_CONFIG for multi_worker

    return distribution_strategy(config)


def build_autoencoder(
    config: Any,
    seed: int | None = None,
    compile: bool = True,
    gru_class: type[keras.layers.GRU] | None = None,
) -> keras.Model:
    """The trainable autoencoder: input [batch, T, F] (any T), output the reconstruction of the reversed input.

    Output frame t reconstructs input frame T-1-t (auDeep's target order); train with targets
    ``x[:, ::-1]``. Compiled with the RMSE loss and Adam(epsilon=1e-8, clipvalue) unless ``compile=False``.
    ``gru_class`` (default ``AudeepGRU``) exists for benchmarks against the stock ``keras.layers.GRU``.
    """
    ae = config.autoencoder
    seeds = _Seeds(config.seed if seed is None else seed, gru_class)
    features = config.features.spectrogram.mel_bands
    dtype = "mixed_float16" if ae.mixed_precision else None
    directions_dec = 2 if ae.bidirectional_decoder else 1
    with _strategy(config).scope():
        inputs = keras.Input((None, features), name="spectrogram")
        axis = seeds.time_axis
        x = SwapBatchTime(name="time_major", dtype=dtype)(inputs) if seeds.time_major else inputs
        # Encoder over x[0..T-1] from zero states; the states of all layers form s_enc.
        shards = 1 if ae.bidirectional_encoder else 2
        _, forward_states = _stack(x, None, "encoder_fw", config, seeds, False, False, dtype, shards)
        if ae.bidirectional_encoder:
            _, backward_states = _stack(x, None, "encoder_bw", config, seeds, True, False, dtype)
            final = [s for pair in zip(forward_states, backward_states, strict=True) for s in pair]
        else:
            final = forward_states
        encoder_state = (
            keras.layers.Concatenate(name="encoder_state", dtype=dtype)(final) if len(final) > 1 else final[0]
        )
        representation = keras.layers.Dense(
            representation_dim(config),
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
            fw, _ = _stack(decoder_input, fw_states, "decoder_fw", config, seeds, False, True, dtype)
            bw, _ = _stack(decoder_input, bw_states, "decoder_bw", config, seeds, True, True, dtype)
            decoder_output = keras.layers.Concatenate(name="decoder_output", dtype=dtype)([fw, bw])
        else:
            # auDeep's unidirectional step loop feeds decoder-input[t-1] at step t (zero at t=0): with
            # feed-previous off this is a plain GRU over the decoder input shifted a second time.
            decoder_input = ShiftTime(2, axis, name="decoder_input", dtype=dtype)(reversed_input)
            top, _ = _stack(decoder_input, states, "decoder_fw", config, seeds, False, True, dtype, 2)
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
            _compile(model, config)
    return model


def _compile(model: keras.Model, config: Any) -> None:
    ae = config.autoencoder
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


# -- encoding ----------------------------------------------------------------------------------------
def representation_model(model: keras.Model) -> keras.Model:
    """The encoder part: spectrograms [batch, T, F] -> representation [batch, D] (the 'representation' layer)."""
    return keras.Model(model.input, model.get_layer("representation").output, name="audeep_encoder")


def encode(
    model: keras.Model, spectrograms: Any, batch_size: int = 500, progress: bool = False
) -> np.ndarray:
    """Representations [n, D] of spectrograms [n, T, F] (array or h5py dataset), in batches, without dropout.

    Deterministic for given weights and batch size (auDeep's generation; spec 3.1).
    """
    runtime.configure()
    encoder = representation_model(model)
    features = encoder.inputs[0].shape[-1]
    dimension = encoder.outputs[0].shape[-1]
    shape = tuple(getattr(spectrograms, "shape", np.shape(spectrograms)))
    if len(shape) != 3 or shape[-1] != features:
        raise AutoencoderError(f"spectrograms must be [n, T, {features}] for this model, got shape {shape}")
    call = tf.function(
        lambda batch: encoder(batch, training=False),
        input_signature=[tf.TensorSpec((None, None, features), tf.float32)],
    )
    total = shape[0]
    vectors = np.empty((total, dimension), np.float32)
    bar = _progress(total, progress, "encode")
    for start in range(0, total, max(1, int(batch_size))):
        batch = np.asarray(spectrograms[start : start + batch_size], dtype=np.float32)
        vectors[start : start + len(batch)] = np.asarray(call(batch), dtype=np.float32)
        if bar is not None:
            bar.update(len(batch))
    if bar is not None:
        bar.close()
    return vectors


def _progress(total: int, enabled: bool, description: str) -> Any:
    return progress_bar(total, description, unit="utt") if enabled else None


# -- training ----------------------------------------------------------------------------------------
class _Source:
    """Instances [N, T, F] from an array or an HDF5 store (dataset ``features``), read by index batches."""

    def __init__(self, data: Any) -> None:
        self.path: Path | None = None
        self.array: np.ndarray | None = None
        if isinstance(data, str | os.PathLike):
            self.path = Path(data)
            if not self.path.is_file():
                raise AutoencoderError(
                    f"spectrogram store {self.path} does not exist; run `serlib extract` first"
                )
            with h5py.File(self.path, "r") as handle:
                if "features" not in handle:
                    raise AutoencoderError(
                        f"{self.path} has no 'features' dataset (not a serlib feature store)"
                    )
                self.shape = tuple(int(s) for s in handle["features"].shape)
        else:
            self.array = np.asarray(data, dtype=np.float32)
            self.shape = tuple(self.array.shape)
        if len(self.shape) != 3 or self.shape[0] == 0:
            raise AutoencoderError(
                f"spectrograms must be a non-empty [N, T, F] array, got shape {self.shape}"
            )

    @contextmanager
    def reader(self) -> Iterator[Any]:
        if self.array is not None:
            yield self.array
            return
        with h5py.File(self.path, "r") as handle:
            yield handle["features"]

    @staticmethod
    def read(data: Any, indices: np.ndarray) -> np.ndarray:
        if isinstance(data, np.ndarray):
            return np.asarray(data[indices], dtype=np.float32)
        # One read per row, in drawn order: h5py's fancy indexing (a point selection) reads ~1,100
        # rows/s of 186 x 128, row-by-row read_direct ~6,800 (docs/performance.md).
        batch = np.empty((len(indices), *data.shape[1:]), dtype=np.float32)
        for row, index in enumerate(indices):
            data.read_direct(batch, np.s_[int(index)], np.s_[row])
        return batch


def epoch_batches(instances: int, batch_size: int, seed: int, epoch: int) -> np.ndarray:
    """Index batches [ceil(N/B), B] of one epoch: a seeded permutation, the last batch filled from its start.

    auDeep's queue cycles endlessly, so every batch has exactly B instances and an epoch is ceil(N/B)
    batches (spec 2.7); the order depends only on (seed, epoch), so a resumed run sees the same batches.
    """
    order = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(epoch)]).permutation(instances)
    steps = math.ceil(instances / batch_size)
    needed = steps * batch_size
    cycled = np.resize(order, needed)  # repeats the permutation from its start
    return cycled.reshape(steps, batch_size)


def _dataset(
    source: _Source, batch_size: int, seed: int, first_epoch: int, last_epoch: int
) -> tf.data.Dataset:
    instances, frames, features = source.shape

    def generate() -> Iterator[np.ndarray]:
        with source.reader() as data:
            for epoch in range(first_epoch, last_epoch):
                for indices in epoch_batches(instances, batch_size, seed, epoch):
                    yield source.read(data, indices)

    dataset = tf.data.Dataset.from_generator(
        generate, output_signature=tf.TensorSpec((batch_size, frames, features), tf.float32)
    )
    dataset = dataset.map(lambda x: (x, tf.reverse(x, axis=[1])))
    return dataset.prefetch(PREFETCH_BATCHES)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _save_model(model: keras.Model, path: Path) -> None:
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.keras")
    model.save(tmp)
    os.replace(tmp, path)


def _write_history(model_dir: Path, losses: Sequence[float]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["epoch", "loss"])
    writer.writerows([epoch + 1, repr(float(loss))] for epoch, loss in enumerate(losses))
    _atomic_write_text(model_dir / HISTORY_CSV, buffer.getvalue())
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5, 3.2))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.plot(range(1, len(losses) + 1), losses, marker="o")
    axes.set_xlabel("epoch")
    axes.set_ylabel("reconstruction RMSE")
    axes.set_title("autoencoder training loss")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    tmp = model_dir / f".{HISTORY_PNG}.tmp{os.getpid()}.png"
    figure.savefig(tmp, dpi=100)
    os.replace(tmp, model_dir / HISTORY_PNG)


def _reseed_dropout(model: keras.Model, seed: int, epoch: int) -> None:
    """Dropout masks depend only on (seed, epoch, layer): a resumed run draws the same masks."""
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(epoch), 0xD0])
    for layer in model.layers:
        generator = getattr(layer, "seed_generator", None)
        if isinstance(layer, keras.layers.Dropout) and generator is not None:
            state = generator.state
            value = np.array([int(rng.integers(0, 2**31 - 1)), 0])
            state.assign(ops.cast(value, state.dtype))


class _Checkpoint(keras.callbacks.Callback):
    """After every epoch: checkpoint .keras (temp + rename), then the JSON state naming it, then the loss files."""

    def __init__(self, model_dir: Path, state: dict[str, Any], seed: int) -> None:
        super().__init__()
        self.model_dir = model_dir
        self.state = state
        self.seed = seed

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        _reseed_dropout(self.model, self.seed, epoch)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        loss = float((logs or {})["loss"])
        if not math.isfinite(loss):
            raise AutoencoderError(
                f"autoencoder loss became {loss} in epoch {epoch + 1} ({self.model_dir}); lower the learning rate"
            )
        name = f"checkpoint-epoch{epoch + 1:04d}.keras"
        _save_model(self.model, self.model_dir / name)
        previous = self.state.get("checkpoint")
        self.state.update(epoch=epoch + 1, checkpoint=name, loss=[*self.state["loss"], loss])
        _atomic_write_text(self.model_dir / STATE_FILE, json.dumps(self.state, indent=1))
        if previous and previous != name:
            (self.model_dir / previous).unlink(missing_ok=True)
        _write_history(self.model_dir, self.state["loss"])


def _fingerprint(config: Any, shape: tuple[int, ...], seed: int) -> dict[str, Any]:
    parameters = config.autoencoder.model_dump(mode="json")
    parameters.pop("encode_batch_size", None)
    parameters.pop("epochs", None)
    return {"autoencoder": parameters, "shape": list(shape), "seed": int(seed)}


@contextmanager
def _determinism(enabled: bool) -> Iterator[None]:
    """Deterministic TF kernels for the duration of training, restoring the previous setting afterwards."""
    from tensorflow.python.framework import config as tf_config  # the switch's state is not public API

    before = tf_config.is_op_determinism_enabled()
    if enabled and not before:
        tf_config.enable_op_determinism()
    try:
        yield
    finally:
        if enabled and not before:
            tf_config.disable_op_determinism()


def train(
    config: Any,
    spectrograms: Any,
    model_dir: str | os.PathLike[str],
    epochs: int | None = None,
    seed: int | None = None,
    progress: bool = True,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    deterministic: bool = True,
) -> Path:
    """Train the autoencoder on spectrograms [N, T, F] (array, or path of an HDF5 store) into ``model_dir``.

    Streams shuffled batches of ``config.autoencoder.batch_size`` (memory independent of N), writes a
    checkpoint and the loss history (CSV + PNG) after every epoch, resumes from the last checkpoint when
    re-run, and returns the final ``autoencoder.keras``. Same seed, same machine: same weights.
    ``callbacks`` are extra Keras callbacks (run after the checkpoint of each epoch); ``deterministic``
    turns on TensorFlow's op determinism while training (no measurable cost on CPU).
    """
    runtime.configure()
    ae = config.autoencoder
    epochs = int(epochs or ae.epochs)
    seed = int(config.seed if seed is None else seed)
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    source = _Source(spectrograms)
    if source.shape[-1] != config.features.spectrogram.mel_bands:
        raise AutoencoderError(
            f"spectrograms have {source.shape[-1]} bands but features.spectrogram.mel_bands is "
            f"{config.features.spectrogram.mel_bands}"
        )
    fingerprint = _fingerprint(config, source.shape, seed)
    state_path = model_dir / STATE_FILE
    final_path = model_dir / MODEL_FILE
    state: dict[str, Any] = {"fingerprint": fingerprint, "epoch": 0, "checkpoint": None, "loss": []}
    if state_path.is_file():
        state = json.loads(state_path.read_text(encoding="utf-8"))
        if state.get("fingerprint") != fingerprint:
            raise AutoencoderError(
                f"{model_dir} holds training of a different autoencoder/data/seed; choose another model_dir "
                "or delete it"
            )
    if state["epoch"] >= epochs and final_path.is_file() and state.get("final_epochs") == epochs:
        return final_path
    if state["epoch"] > epochs:
        raise AutoencoderError(f"{model_dir} is already trained for {state['epoch']} > {epochs} epochs")
    keras.utils.set_random_seed(seed)
    steps = math.ceil(source.shape[0] / ae.batch_size)
    with _determinism(deterministic):
        if state["checkpoint"]:
            log.info("resuming %s from epoch %d", model_dir, state["epoch"])
            with _strategy(config).scope():
                model = load_model(model_dir / state["checkpoint"])
        else:
            model = build_autoencoder(config, seed=seed)
        if state["epoch"] < epochs:
            dataset = _dataset(source, ae.batch_size, seed, state["epoch"], epochs)
            model.fit(
                dataset,
                epochs=epochs,
                initial_epoch=state["epoch"],
                steps_per_epoch=steps,
                verbose=keras_verbose(progress),
                shuffle=False,
                callbacks=[_Checkpoint(model_dir, state, seed), *callbacks],
            )
        _save_model(model, final_path)
    state["final_epochs"] = epochs
    _atomic_write_text(state_path, json.dumps(state, indent=1))
    return final_path


def _digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _store_identity(path: Path) -> dict[str, Any]:
    """What identifies a feature store file: its cache key attribute, else its name, size and mtime."""
    with h5py.File(path, "r") as handle:
        key = handle.attrs.get("key")
        parameters = handle.attrs.get("parameters_json")
    if key is not None:
        return {"key": str(key), "parameters": None if parameters is None else str(parameters)}
    stat = path.stat()
    return {"name": path.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def train_configured(config: Any, corpus_key: str, epochs: int | None = None, progress: bool = True) -> Path:
    """Train (or find) the autoencoder of a configured corpus; returns ``.../autoencoders/<key>-<hash>/autoencoder.keras``."""
    from serlib import store

    epochs = int(epochs or config.autoencoder.epochs)
    features = store.extract_configured(config, corpus_key, "spectrogram")
    parameters = config.autoencoder.model_dump(mode="json")
    parameters.pop("encode_batch_size", None)
    parameters["epochs"] = epochs
    identity = {"autoencoder": parameters, "store": _store_identity(Path(features.path)), "seed": config.seed}
    model_dir = config.cache_path / "autoencoders" / f"{corpus_key}-{_digest(identity)}"
    final_path = model_dir / MODEL_FILE
    if final_path.is_file():
        return final_path
    model_dir.mkdir(parents=True, exist_ok=True)
    _atomic_write_text(model_dir / "identity.json", json.dumps(identity, indent=1, default=str))
    return train(config, features.path, model_dir, epochs=epochs, seed=config.seed, progress=progress)


# -- representation store ---------------------------------------------------------------------------------
@dataclass
class RepresentationSet:
    """Representations of one corpus: ``vectors[i]`` belongs to ``ids[i]`` (HDF5 file at ``path``)."""

    path: Path
    ids: list[str]
    vectors: np.ndarray


def load_representations(path: str | os.PathLike[str]) -> RepresentationSet:
    """Read a representation store written by ``encode_configured``."""
    path = Path(path)
    with h5py.File(path, "r") as handle:
        ids = [str(i) for i in handle["ids"].asstr()[:]]
        vectors = np.asarray(handle["vectors"][:], dtype=np.float32)
    return RepresentationSet(path, ids, vectors)


def _write_representations(
    path: Path, ids: Sequence[str], vectors: np.ndarray, attrs: dict[str, str]
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with h5py.File(tmp, "w") as handle:
        handle.create_dataset("ids", data=np.array(ids, dtype=object), dtype=h5py.string_dtype("utf-8"))
        handle.create_dataset("vectors", data=vectors.astype(np.float32))
        for name, value in attrs.items():
            handle.attrs[name] = value
    os.replace(tmp, path)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def encode_configured(
    config: Any, model_path: str | os.PathLike[str], corpus_key: str, progress: bool = True
) -> RepresentationSet:
    """One representation per utterance of a configured corpus (chunks fused in order), cached in HDF5.

    Spectrograms come from the feature store with the configured fixed length (every corpus, labeled or
    not, uses the same T; auDeep requires the model's T); they are streamed in batches of
    ``config.autoencoder.encode_batch_size``. Ids follow the feature store (the manifest order).
    """
    from serlib import store

    model_path = Path(model_path)
    if not model_path.is_file():
        raise AutoencoderError(
            f"autoencoder model {model_path} does not exist; train one with `serlib train-ae`"
        )
    features = store.extract_configured(config, corpus_key, "spectrogram")
    store_path = Path(features.path)
    model_sha = _sha256(model_path)
    parameters = {"model_sha256": model_sha, "store": _store_identity(store_path), "corpus": corpus_key}
    out = config.cache_path / "representations" / f"{corpus_key}-{_digest(parameters)}.h5"
    if out.is_file():
        return load_representations(out)
    model = load_model(model_path, compile=False)
    state_path = model_path.parent / STATE_FILE
    if state_path.is_file():
        trained_shape = json.loads(state_path.read_text(encoding="utf-8"))["fingerprint"]["shape"]
        with h5py.File(store_path, "r") as handle:
            shape = handle["features"].shape
        if list(shape[1:]) != list(trained_shape[1:]):
            raise AutoencoderError(
                f"{model_path} was trained on [T, F] = {trained_shape[1:]} but {corpus_key} spectrograms are "
                f"{list(shape[1:])}; use the same features.spectrogram settings (fixed_length_s) for both"
            )
    with store.open_features(store_path) as handle:
        vectors = encode(model, handle["features"], config.autoencoder.encode_batch_size, progress=progress)
        ids = [str(i) for i in handle["ids"].asstr()[:]]
        chunks = (
            np.asarray(handle["chunk_numbers"][:]) if "chunk_numbers" in handle else np.zeros(len(ids), int)
        )
    ids, vectors = fuse_chunks(ids, chunks, vectors)
    if not np.all(np.isfinite(vectors)):
        raise AutoencoderError(f"{model_path} produced non-finite representations for {corpus_key}")
    attrs = {
        "model_sha256": model_sha,
        "parameters_json": json.dumps(parameters, sort_keys=True, default=str),
    }
    _write_representations(out, ids, vectors, attrs)
    return RepresentationSet(out, list(ids), vectors)
