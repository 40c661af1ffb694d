"""The autoencoder's small building blocks: time reversal and shift, state splitting, TF1 initialisers,
the RMSE loss, and ``GRUKernel`` (how the model's GRU layers are made). Each layer, initialiser and
loss is registered with Keras, so a saved ``.keras`` model loads with ``safe_mode=True`` (no Lambda
layers, no pickled code).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops


class AutoencoderError(ValueError):
    """Autoencoder inputs, files or training state are inconsistent; the message names what and the fix."""


class GRUKernel:
    """How the autoencoder's GRU layers are made: Keras' own ``keras.layers.GRU`` on batch-major
    [batch, T, F] sequences, the paper's recurrent layer in plain Keras (``build_autoencoder``'s default).

    A speed kernel (``fused_gru.FUSED_GRU``) overrides ``layer``, and with ``time_major`` its layers take
    [T, batch, F] (the model then swaps the two axes once at its input and once at its output).
    """

    time_major = False

    def layer(self, units: int, *, alone: bool, **options: Any) -> keras.layers.GRU:
        """One GRU layer of ``units`` with Keras' GRU ``options``; ``alone``: its stack runs without a
        concurrent sibling direction (a kernel may then spread the batch over cores; Keras' GRU does not)."""
        return keras.layers.GRU(units, **options)


KERAS_GRU = GRUKernel()


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
    """auDeep's loss: one root-mean-square error over every element of the batch."""

    def __init__(self, name: str = "reconstruction_rmse", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        y_pred = ops.cast(y_pred, "float32")
        y_true = ops.cast(y_true, "float32")
        return ops.sqrt(ops.mean(ops.square(y_true - y_pred)))
