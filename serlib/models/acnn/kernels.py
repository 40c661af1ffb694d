"""Speed kernels of the ACNN, kept apart from the model so that ``model.py`` reads like the paper.

``acnn.model.build_acnn`` builds plain Keras layers unless it is handed these (its ``convolution`` and
``max_pooling`` arguments); ``layers_for`` gives the layers of a resolved ``acnn.implementation``: these
for ``fast``, Keras' own for ``reference``. ``auto`` is resolved before, by a protocol
(``serlib.protocol.conditions.resolve_implementation``, which may time the two paths:
``serlib.models.acnn.choice``). Both compute the same function, and ``tests/test_acnn.py`` checks that
predictions, losses and gradients agree within float32 rounding.

**Convolution over zero padding.** Utterances shorter than ``max_frames`` are zero-padded (after the
band standardisation, padded frames are exactly zero), and a convolution step that sees only padding
outputs ``activation(bias)`` exactly. ``PaddingAwareConv1D`` convolves only up to the last step that
touches a real frame of any utterance in the batch (rounded up to ``STEP_ROUNDING`` steps, which
bounds the number of distinct shapes) and fills the remaining steps with that constant. The outputs
are the same; the kernel's gradient loses only products with zeros; the bias gradient keeps every
step. On Emo-DB's 2.0 s clips in 4.0 s inputs this halves the convolution's work.

**Max-pooling over time.** The paper pools 30 conv steps with stride 3, so every step sits in ten
windows. TensorFlow's CPU gradient of such overlapping pooling (``MaxPoolGrad``) scans every window
again and costs as much as the convolution (49-59 vs 53 CPU ms per batch of 32 x 247 steps x 200
filters on one AMD EPYC thread, measured by ``benchmarks/bench_acnn.py``). ``max_pool_1d`` keeps
TensorFlow's pooling op for the outputs and computes the same gradient from blocks of ``stride``
steps: each block's maximum, the first block of each window that holds the window's maximum, and the
first step of that block that holds it (elementwise comparisons that XLA compiles into one pass, once
per batch size, ~0.4 CPU-s), then one ``unsorted_segment_sum`` of the upstream gradient into those
steps (10 CPU ms for the same batch). The gradient goes to the first largest step of each window, as
``MaxPoolGrad`` gives it, so the two agree within float32 rounding of the sums, ties (e.g. the
constant steps over zero padding) included (``tests/test_acnn.py``). With a GPU visible the layer
uses TensorFlow's own gradient (cuDNN's is fast, and ``unsorted_segment_sum`` is not deterministic
there).
"""

from __future__ import annotations

import functools
from typing import Any

import keras
import tensorflow as tf

from serlib.base.config import ACNNConfig


def fast_pooling_applies(pool_size: int, strides: int, padding: str) -> bool:
    """The block formulation needs windows made of whole stride blocks and no padding."""
    return padding == "valid" and pool_size >= strides and pool_size % strides == 0


def _first_match(candidates: list[Any], target: Any) -> Any:
    """Index of the first of ``candidates`` equal to ``target`` elementwise (the last one otherwise)."""
    index = tf.fill(tf.shape(target), len(candidates) - 1)
    for position in range(len(candidates) - 2, -1, -1):
        index = tf.where(tf.equal(candidates[position], target), position, index)
    return index


@functools.lru_cache(maxsize=16)
def _functions(pool_size: int, strides: int) -> tuple[Any, Any]:
    width = pool_size // strides  # blocks per window

    def forward(x: Any) -> Any:
        return tf.nn.max_pool1d(x, pool_size, strides, "VALID")

    def winners(x: Any, pooled: Any) -> Any:
        """The flat index into ``x`` of the first largest step of every window (XLA fuses the
        comparisons into one pass; TensorFlow's own kernels would make ~30 passes)."""
        steps, channels, outputs = x.shape[1], x.shape[2], pooled.shape[1]
        blocks = outputs - 1 + width
        grouped = tf.reshape(x[:, : blocks * strides], [-1, blocks, strides, channels])
        block_max = tf.reduce_max(grouped, axis=2)  # [batch, blocks, channels]
        in_block = _first_match([grouped[:, :, p] for p in range(strides)], block_max)
        offset = _first_match([block_max[:, k : k + outputs] for k in range(width)], pooled)
        step_in_block = in_block[:, width - 1 : width - 1 + outputs]
        for k in range(width - 2, -1, -1):  # the winning block's first largest step
            step_in_block = tf.where(tf.equal(offset, k), in_block[:, k : k + outputs], step_in_block)
        step = (offset + tf.range(outputs)[tf.newaxis, :, tf.newaxis]) * strides + step_in_block
        utterance = tf.range(tf.shape(x)[0])[:, tf.newaxis, tf.newaxis]
        return (utterance * steps + step) * channels + tf.range(channels)[tf.newaxis, tf.newaxis, :]

    compiled_winners = tf.function(winners, jit_compile=True)

    def backward(x: Any, pooled: Any, upstream: Any) -> Any:
        index = compiled_winners(x, pooled)
        summed = tf.math.unsorted_segment_sum(tf.reshape(upstream, [-1]), tf.reshape(index, [-1]), tf.size(x))
        return tf.reshape(summed, tf.shape(x))

    return tf.function(forward), tf.function(backward)


def max_pool_1d(x: Any, pool_size: int, strides: int) -> Any:
    """``tf.nn.max_pool1d(x, pool_size, strides, "VALID")`` for ``[batch, steps, channels]`` with the
    block gradient described above (``pool_size`` a multiple of ``strides``)."""
    forward, backward = _functions(int(pool_size), int(strides))

    @tf.custom_gradient
    def run(x: Any) -> Any:
        # The functions see inputs cut from the tape: ``grad`` is their gradient.
        pooled = forward(tf.stop_gradient(x))

        def grad(upstream: Any) -> Any:
            return backward(tf.stop_gradient(x), tf.stop_gradient(pooled), tf.stop_gradient(upstream))

        return pooled, grad

    return run(x)


STEP_ROUNDING = 8


@keras.saving.register_keras_serializable(package="serlib")
class PaddingAwareConv1D(keras.layers.Conv1D):
    """``keras.layers.Conv1D`` (same weights, settings and outputs) that skips all-padding steps."""

    def call(self, inputs: Any) -> Any:
        kernel_frames, stride = self.kernel_size[0], self.strides[0]
        frames = inputs.shape[1]
        plain = (
            self.padding != "valid"
            or self.data_format != "channels_last"
            or self.dilation_rate[0] != 1
            or self.groups != 1
            or frames is None
        )
        if plain:
            return super().call(inputs)
        total = (frames - kernel_frames) // stride + 1
        real = tf.reduce_any(tf.not_equal(inputs, 0.0), axis=-1)  # [batch, frames]
        positions = tf.range(1, frames + 1, dtype=tf.int32)
        last = tf.reduce_max(tf.where(real, positions[tf.newaxis, :], 0))  # last real frame, 1-based
        needed = (last + stride - 1) // stride  # steps whose first frame is a real one's or earlier
        needed = tf.clip_by_value((needed + STEP_ROUNDING - 1) // STEP_ROUNDING * STEP_ROUNDING, 1, total)
        head = super().call(inputs[:, : (needed - 1) * stride + kernel_frames])
        constant = self.bias if self.use_bias else tf.zeros([self.filters], head.dtype)
        if self.activation is not None:
            constant = self.activation(constant)
        tail = tf.broadcast_to(
            tf.cast(constant, head.dtype), [tf.shape(inputs)[0], total - needed, self.filters]
        )
        outputs = tf.concat([head, tail], axis=1)
        outputs.set_shape([inputs.shape[0], total, self.filters])
        return outputs


@keras.saving.register_keras_serializable(package="serlib")
class FastMaxPooling1D(keras.layers.MaxPooling1D):
    """``keras.layers.MaxPooling1D`` (same settings and outputs) with ``max_pool_1d``'s gradient."""

    def call(self, inputs: Any) -> Any:
        pool, stride = self.pool_size[0], self.strides[0]
        if (
            self.data_format == "channels_last"
            and fast_pooling_applies(pool, stride, self.padding)
            and not tf.config.list_logical_devices("GPU")
        ):
            return max_pool_1d(inputs, pool, stride)
        return super().call(inputs)


class ImplementationNotResolved(ValueError):
    """``acnn.implementation: auto`` reached a model builder; the message names where it is resolved."""


def layers_for(acnn: ACNNConfig) -> dict[str, type]:
    """``build_acnn``'s ``convolution`` and ``max_pooling`` for a resolved ``acnn.implementation``: these
    kernels for ``fast`` (Keras' own under ``jit_compile``, where XLA compiles the plain layers anyway),
    Keras' own for ``reference``. ``auto`` is refused: only a protocol resolves it (it may time both)."""
    if acnn.implementation == "auto":
        raise ImplementationNotResolved(
            "acnn.implementation is auto: resolve it first with serlib.protocol.conditions."
            "resolve_implementation(config) (it may time both paths once per machine), or set fast or reference"
        )
    if acnn.implementation == "fast" and not acnn.jit_compile:
        return {"convolution": PaddingAwareConv1D, "max_pooling": FastMaxPooling1D}
    return {"convolution": keras.layers.Conv1D, "max_pooling": keras.layers.MaxPooling1D}
