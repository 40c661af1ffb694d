"""Speed kernels of the ACNN, kept apart from the model so that ``acnn.py`` reads like the paper.

``acnn.build_acnn`` uses these layers when ``acnn.implementation`` is ``fast`` (the default) and
plain Keras layers when it is ``reference``; both compute the same function, and
``tests/test_acnn.py`` checks that predictions, losses and gradients agree within float32 rounding.

**Convolution over zero padding.** Utterances shorter than ``max_frames`` are zero-padded (after the
band standardisation, padded frames are exactly zero), and a convolution step that sees only padding
outputs ``activation(bias)`` exactly. ``PaddingAwareConv1D`` convolves only up to the last step that
touches a real frame of any utterance in the batch (rounded up to ``STEP_ROUNDING`` steps, which
bounds the number of distinct shapes) and fills the remaining steps with that constant. The outputs
are the same; the kernel's gradient loses only products with zeros; the bias gradient keeps every
step. On Emo-DB's 2.0 s clips in 4.0 s inputs this halves the convolution's work.

**Max-pooling over time.** The paper pools 30 conv steps with stride 3, so every step sits in ten
windows. TensorFlow's CPU gradient of such overlapping pooling (``MaxPoolGrad``) costs more than the
convolution itself (31 vs 23 ms per batch of 32 x 750 frames on 2 cores, measured by
``benchmarks/bench_acnn.py``). ``max_pool_1d`` computes the same maximum with TensorFlow's pooling op
and its gradient from an equivalent formulation compiled by XLA: the maximum of each block of
``stride`` steps, then the maximum of ``pool / stride`` consecutive blocks. The outputs are identical;
the gradient reaching the layer below is identical wherever a window has one largest value, and
where several steps share it (e.g. zero-padded frames, whose convolution is the same constant) it is
split between them instead of given to one - the same total, so the gradients of the weights agree
within float32 rounding (``tests/test_acnn.py``).
"""

from __future__ import annotations

import functools
from typing import Any

import keras
import tensorflow as tf


def fast_pooling_applies(pool_size: int, strides: int, padding: str) -> bool:
    """The block formulation needs windows made of whole stride blocks and no padding."""
    return padding == "valid" and pool_size >= strides and pool_size % strides == 0


@functools.lru_cache(maxsize=16)
def _functions(pool_size: int, strides: int) -> tuple[Any, Any]:
    width = pool_size // strides

    def blocks_max(x: Any) -> Any:
        steps = x.shape[1]
        outputs = (steps - pool_size) // strides + 1
        blocks = outputs - 1 + width
        grouped = tf.reshape(x[:, : blocks * strides], [-1, blocks, strides, x.shape[2]])
        block = tf.reduce_max(grouped, axis=2)
        result = block[:, :outputs]
        for offset in range(1, width):
            result = tf.maximum(result, block[:, offset : offset + outputs])
        return result

    def forward(x: Any) -> Any:
        return tf.nn.max_pool1d(x, pool_size, strides, "VALID")

    def backward(x: Any, upstream: Any) -> Any:
        with tf.GradientTape() as tape:
            tape.watch(x)
            pooled = blocks_max(x)
        return tape.gradient(pooled, x, output_gradients=upstream)

    return tf.function(forward), tf.function(backward, jit_compile=True)


def max_pool_1d(x: Any, pool_size: int, strides: int) -> Any:
    """``tf.nn.max_pool1d(x, pool_size, strides, "VALID")`` for ``[batch, steps, channels]`` with the
    fast gradient described above (``pool_size`` a multiple of ``strides``)."""
    forward, backward = _functions(int(pool_size), int(strides))

    @tf.custom_gradient
    def run(x: Any) -> Any:
        # The compiled functions see inputs cut from the tape: ``grad`` is their gradient.
        pooled = forward(tf.stop_gradient(x))

        def grad(upstream: Any) -> Any:
            return backward(tf.stop_gradient(x), tf.stop_gradient(upstream))

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
        if self.data_format == "channels_last" and fast_pooling_applies(pool, stride, self.padding):
            return max_pool_1d(inputs, pool, stride)
        return super().call(inputs)
