"""The speed kernel of the autoencoder: a GRU layer whose time loops run fused, with their own gradient.

``AudeepGRU`` is Keras' GRU (same weights, configuration, cuDNN path and TF1 ``reset_before`` cell when
asked) with a faster loop where cuDNN does not apply (the CPU): the input projections of all frames in
one matrix product, the two time loops (forward, and the hand-written backward pass through time)
compiled with XLA, and the weight gradients as large products. Tested against ``keras.layers.GRU``
for both cell variants and both loop paths (tests/test_autoencoder.py). ``model.py`` builds the
paper's architecture from Keras' own GRU and knows nothing of this layer: ``FUSED_GRU`` (a
``layers.GRUKernel``) hands it these layers in auDeep's time-major layout, as ``training.py`` does.
"""

from __future__ import annotations

import functools
from typing import Any

import keras
import tensorflow as tf
from keras import ops

from serlib.models.autoencoder.layers import AutoencoderError, GRUKernel


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


class FusedGRUKernel(GRUKernel):
    """``AudeepGRU`` layers on time-major [T, batch, F] sequences; a stack that runs alone (no concurrent
    sibling direction) splits its batch into two loops (``batch_shards=2``), which TensorFlow runs on
    two cores. The same function as ``layers.KERAS_GRU`` (tests/test_autoencoder.py)."""

    time_major = True

    def layer(self, units: int, *, alone: bool, **options: Any) -> keras.layers.GRU:
        return AudeepGRU(units, time_major=True, batch_shards=2 if alone else 1, **options)


FUSED_GRU = FusedGRUKernel()
