"""Training and inference throughput of the paper's ACNN: ``implementation: reference`` against ``fast``.

Run ``python -m benchmarks.bench_acnn [--quick | --smoke]``. The model is the paper preset's ACNN
(750 frames x 26 bands, 200 filters of 26x10, stride 3, pooling 30/3, attention, three softmax heads,
batch 32) on random log-Mel-shaped inputs (throughput does not depend on the values, only on where the
zero padding is). Everything is measured in two child processes started by this module, one with
TensorFlow's intra- and inter-op threads at 1 (``SERLIB_TF_THREADS=1``, read by
``serlib.base.runtime.configure``) and one at 2 (both cores of the development machines):

* with 1 thread, CPU time is the time of the work itself, so **utterances per CPU-second** (the
  throughput column of those rows) is what one worker per core achieves and other processes on the
  machine change it little; it is compared with the GEMM rate per CPU-second of one thread, measured
  in the same child;
* with 2 threads, wall-clock utterances per second (and per CPU-second in the notes) against the
  2-thread GEMM rate measured in that child: the rate of one run using the whole machine.

Training rows (``model.fit`` of the compiled model, one untimed warm-up epoch) for three length
profiles: ``full`` (every utterance 750 frames), ``realistic`` (lengths uniform between 40 % and
100 % of 750 frames, zero-padded, as turns of real corpora cut at 7.5 s) and, with 1 thread, ``short``
(20-50 %, like Emo-DB's 2.0 s clips in 4.0 s inputs). Each profile has a ``reference`` row (plain
Keras layers, ``acnn.implementation: reference``), a ``fast`` row (``serlib.models.acnn.kernels``) and
an ``auto`` row (the path ``acnn.implementation: auto`` calibrates for that profile's lengths from an
empty cache, as a new machine would; its note gives the calibration's answer and cost and its rate
against the better of the other two), the three measured interleaved epoch by epoch (median epoch);
every row's ratio is against the reference row of the same profile and thread count.
With 1 thread and full lengths four more rows keep earlier decisions measured: ``eager``
(``run_eagerly=True``), ``jit_compile`` (XLA; it builds the reference layers), ``Keras array feed``
(the fast model fed by Keras' own adapter of numpy arrays, ``acnn.shuffle: once``, instead of
``serlib.models.acnn.feed``'s ``tf.data`` feed with a new order every epoch, which every other row uses) and
``previous pooling`` (the fast model with the pooling gradient it had when issue 17 was filed, the
baseline of that issue's speed-up; the fast row's note gives the ratio).

Inference rows: ``acnn.analysis_model(...).predict`` (what ``acnn.predict_all`` runs) of the fast
model on realistic lengths at batch 32, 64, 128 and 256, ratio against batch 32;
``acnn.PREDICT_BATCH_SIZE`` is marked.

FLOPs are counted from the layer shapes (2 per multiply-add; training = 3x forward) over the real
frames only: a convolution step counts when it reads at least one real frame of the utterance; the
attention and the heads count in full. For ``full`` this is the paper model's nominal 77 MFLOP per
training utterance; for padded profiles it is the useful work, whatever the implementation computes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks import common  # noqa: E402

# name: (shortest, longest) utterance as a fraction of max_frames; uniform in between
LENGTH_PROFILES = {"full": (1.0, 1.0), "realistic": (0.4, 1.0), "short": (0.2, 0.5)}
PREDICT_BATCHES = (32, 64, 128, 256)
THREADS = (1, 2)


def flops_per_utterance(config: Any, external_dim: int = 0, frames: int | None = None) -> dict[str, float]:
    """Forward and training FLOPs of one utterance: convolution, attention scores and sum, heads.

    ``frames`` (default ``max_frames``): the utterance's real frames; only convolution steps that read
    at least one of them count (the rest see padding only and are constant).
    """
    import math

    from serlib.data.manifest import EMOTIONS, LEVELS
    from serlib.models.acnn import model as acnn

    a = config.acnn
    max_frames, bands = config.features.logmel.max_frames, config.features.logmel.bands
    steps = acnn.conv_steps(max_frames, a.kernel_frames, a.conv_stride)
    if frames is not None:
        steps = min(steps, math.ceil(int(frames) / a.conv_stride))
    pooled = acnn.pooled_steps(max_frames, a)
    macs = steps * a.filters * a.kernel_frames * bands  # convolution
    macs += 2 * pooled * a.filters  # attention scores W^T x_i and the weighted sum
    macs += (a.filters + external_dim) * (len(EMOTIONS) + 2 * len(LEVELS))  # three heads
    forward = 2.0 * macs
    return {"forward": forward, "training": 3.0 * forward}


def _lengths(config: Any, count: int, profile: str, seed: int = 0) -> np.ndarray:
    frames = config.features.logmel.max_frames
    low, high = LENGTH_PROFILES[profile]
    rng = np.random.default_rng([seed, 17])
    return rng.integers(round(low * frames), round(high * frames) + 1, count)


def _data(
    config: Any, count: int, profile: str = "full", seed: int = 0
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray]:
    """Random log-Mel-like inputs zero-padded after each utterance's length, targets, and the lengths."""
    rng = np.random.default_rng(seed)
    frames, bands = config.features.logmel.max_frames, config.features.logmel.bands
    logmel = rng.standard_normal((count, frames, bands), dtype=np.float32) - 10.0
    lengths = _lengths(config, count, profile, seed)
    logmel[np.arange(frames)[None, :] >= lengths[:, None]] = 0.0
    inputs = {"logmel": logmel}
    targets = {
        "emotion": rng.integers(0, 4, count).astype(np.int32),
        "arousal": rng.integers(-1, 3, count).astype(np.int32),
        "valence": rng.integers(-1, 3, count).astype(np.int32),
    }
    return inputs, targets, lengths


def _previous_pooling_layer() -> Any:
    """The fast pooling layer as it was before issue 17 (its gradient: autodiff of a block formulation
    compiled by XLA, ties split), kept here only as the baseline the issue's speed-up is measured against."""
    import functools

    import keras
    import tensorflow as tf

    @functools.lru_cache(maxsize=4)
    def functions(pool: int, stride: int) -> tuple[Any, Any]:
        width = pool // stride

        def blocks_max(x: Any) -> Any:
            outputs = (x.shape[1] - pool) // stride + 1
            blocks = outputs - 1 + width
            block = tf.reduce_max(
                tf.reshape(x[:, : blocks * stride], [-1, blocks, stride, x.shape[2]]), axis=2
            )
            result = block[:, :outputs]
            for offset in range(1, width):
                result = tf.maximum(result, block[:, offset : offset + outputs])
            return result

        def backward(x: Any, upstream: Any) -> Any:
            with tf.GradientTape() as tape:
                tape.watch(x)
                pooled = blocks_max(x)
            return tape.gradient(pooled, x, output_gradients=upstream)

        forward = tf.function(lambda x: tf.nn.max_pool1d(x, pool, stride, "VALID"))
        return forward, tf.function(backward, jit_compile=True)

    class PreviousFastMaxPooling1D(keras.layers.MaxPooling1D):
        def call(self, inputs: Any) -> Any:
            forward, backward = functions(self.pool_size[0], self.strides[0])

            @tf.custom_gradient
            def run(x: Any) -> Any:
                def grad(upstream: Any) -> Any:
                    return backward(tf.stop_gradient(x), tf.stop_gradient(upstream))

                return forward(tf.stop_gradient(x)), grad

            return run(inputs)

    return PreviousFastMaxPooling1D


def _model(config: Any, implementation: str, mode: str = "compiled") -> Any:
    import keras

    from serlib.base import config as config_module
    from serlib.models.acnn import model as acnn

    keras.utils.set_random_seed(0)
    chosen = config_module.override(
        config, **{"acnn.implementation": implementation, "acnn.jit_compile": mode == "jit_compile"}
    )
    if mode == "previous pooling":  # issue 17's baseline: the fast model with the old pooling gradient
        model = acnn.build_configured(chosen, max_pooling=_previous_pooling_layer())
    else:
        model = acnn.build_configured(chosen)
    if mode == "eager":
        model.run_eagerly = True  # read when fit builds its train function
    return model


def _train(config: Any, implementation: str, mode: str, inputs: Any, targets: Any, epochs: int) -> tuple:
    """(wall seconds, CPU seconds) of ``epochs`` epochs after one untimed warm-up epoch, fed as
    ``runs.fit_predict`` feeds the ACNN (``acnn_feed.fit_acnn``: a new order every epoch), or by
    Keras' own array feed (``acnn.shuffle: once``) in mode ``Keras array feed``."""
    from serlib.models.acnn import feed as acnn_feed

    model = _model(config, implementation, mode)
    shuffle = "once" if mode == "Keras array feed" else "every_epoch"

    def fit(count: int) -> None:
        acnn_feed.fit_acnn(
            model,
            inputs,
            targets,
            batch_size=config.acnn.batch_size,
            epochs=count,
            seed=0,
            shuffle=shuffle,
            callbacks=[],
        )

    fit(1)  # traces the step
    start, cpu = time.perf_counter(), common.cpu_seconds()
    fit(epochs)
    return time.perf_counter() - start, common.cpu_seconds() - cpu


def _train_interleaved(
    config: Any, implementations: dict[str, str], inputs: Any, targets: Any, epochs: int
) -> dict[str, tuple[float, float]]:
    """(wall seconds, CPU seconds) of ``epochs`` epochs of each row (``{row: implementation}``), measured
    interleaved: one untimed warm-up epoch each, then epoch by epoch in turn, the order reversed every
    other epoch, so that the machine's other load falls on every row alike. Each is ``epochs`` times
    its median epoch, so that one epoch hit by a burst of other processes does not decide a row."""
    from serlib.models.acnn import feed as acnn_feed

    models = {name: _model(config, implementation) for name, implementation in implementations.items()}

    def fit(name: str) -> None:
        acnn_feed.fit_acnn(
            models[name],
            inputs,
            targets,
            batch_size=config.acnn.batch_size,
            epochs=1,
            seed=0,
            shuffle="every_epoch",
            callbacks=[],
        )

    for name in implementations:
        fit(name)  # traces the step
    names = list(implementations)
    spent: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for epoch in range(epochs):
        for name in names if epoch % 2 == 0 else names[::-1]:
            start, cpu = time.perf_counter(), common.cpu_seconds()
            fit(name)
            spent[name].append((time.perf_counter() - start, common.cpu_seconds() - cpu))
    return {
        name: (
            epochs * float(np.median([wall for wall, _ in timings])),
            epochs * float(np.median([cpu for _, cpu in timings])),
        )
        for name, timings in spent.items()
    }


def _calibrate(config: Any, lengths: Any) -> dict[str, Any]:
    """``acnn.implementation: auto`` as a new machine meets it for training data of these ``lengths``
    (what a protocol passes): the calibration from an empty cache (a temporary ``XDG_CACHE_HOME``,
    ``SERLIB_ACNN_IMPLEMENTATION`` unset), its answer and its cost."""
    from serlib.models.acnn import choice as acnn_choice

    os.environ.pop(acnn_choice.VARIABLE, None)
    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="serlib-bench-acnn-cache-")
    acnn_choice._memo.clear()
    logmel = config.features.logmel
    start, cpu = time.perf_counter(), common.cpu_seconds()
    choice = acnn_choice.resolve(config.acnn, logmel.max_frames, logmel.bands, lengths=lengths)
    return {
        "implementation": choice.implementation,
        "source": choice.source,
        "per_utterance": choice.cpu_seconds_per_utterance,
        "wall_s": round(time.perf_counter() - start, 1),
        "cpu_s": round(common.cpu_seconds() - cpu, 1),
    }


def _predict(config: Any, inputs: Any, batch_size: int) -> tuple:
    """(wall seconds, CPU seconds) of ``acnn.analysis_model(...).predict`` after an untimed pass."""
    from serlib.models.acnn import model as acnn

    model = acnn.analysis_model(_model(config, "fast"))  # what acnn.predict_all runs
    model.predict(inputs, batch_size=batch_size, verbose=0)  # traces the predict step
    start, cpu = time.perf_counter(), common.cpu_seconds()
    model.predict(inputs, batch_size=batch_size, verbose=0)
    return time.perf_counter() - start, common.cpu_seconds() - cpu


def _conv_flops(config: Any, frames: int) -> float:
    """FLOPs of the convolution's forward pass and kernel gradient (2 x forward) for one utterance,
    counting the steps that read at least one of its ``frames`` real frames."""
    import math

    from serlib.models.acnn import model as acnn

    a = config.acnn
    steps = acnn.conv_steps(config.features.logmel.max_frames, a.kernel_frames, a.conv_stride)
    steps = min(steps, math.ceil(int(frames) / a.conv_stride))
    return 2 * 2.0 * steps * a.filters * a.kernel_frames * config.features.logmel.bands


def _layer_costs(config: Any, repeats: int) -> list[tuple[str, str, float, float, float]]:
    """(layer, lengths, wall and CPU seconds per batch, FLOPs per utterance) of one layer's forward pass
    plus its gradient, alone.

    The convolution on the batch's log-Mel (gradients of input-independent weights and bias), the
    max-pooling on that convolution's output (gradient to its input): where the training step's time
    goes, and what each fast kernel changes.
    """
    import keras
    import tensorflow as tf

    from serlib.models.acnn.kernels import FastMaxPooling1D, PaddingAwareConv1D

    a = config.acnn
    batch = config.acnn.batch_size
    options = {"strides": a.conv_stride, "padding": "valid", "activation": a.activation}
    keras.utils.set_random_seed(0)
    reference_conv = keras.layers.Conv1D(a.filters, a.kernel_frames, **options)
    fast_conv = PaddingAwareConv1D(a.filters, a.kernel_frames, **options)
    pools = {
        "max-pooling, Keras MaxPooling1D (TensorFlow's MaxPoolGrad)": keras.layers.MaxPooling1D(
            a.pool_size, strides=a.pool_stride, padding="valid"
        ),
        "max-pooling, FastMaxPooling1D (first-largest-step index, one segment sum)": FastMaxPooling1D(
            a.pool_size, strides=a.pool_stride, padding="valid"
        ),
    }
    data = {profile: _data(config, batch, profile) for profile in LENGTH_PROFILES}
    inputs = {profile: tf.constant(data[profile][0]["logmel"]) for profile in LENGTH_PROFILES}
    flops = {profile: float(np.mean([_conv_flops(config, n) for n in data[profile][2]])) for profile in data}
    reference_conv(inputs["full"])
    fast_conv(inputs["full"])
    fast_conv.set_weights(reference_conv.get_weights())
    conv_output = tf.constant(reference_conv(inputs["full"]))

    def timed(step: Any, x: Any) -> tuple[float, float]:
        step(x)[0].numpy()  # trace
        start, cpu = time.perf_counter(), common.cpu_seconds()
        for _ in range(repeats):
            step(x)[0].numpy()
        return (time.perf_counter() - start) / repeats, (common.cpu_seconds() - cpu) / repeats

    def conv_step(layer: Any) -> Any:
        @tf.function
        def step(x: Any) -> Any:
            with tf.GradientTape() as tape:
                y = layer(x)
            return tape.gradient(y, layer.trainable_variables, output_gradients=tf.ones_like(y))

        return step

    def pool_step(layer: Any) -> Any:
        @tf.function
        def step(x: Any) -> Any:
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = layer(x)
            return [tape.gradient(y, x, output_gradients=tf.ones_like(y))]

        return step

    costs = [
        (
            "convolution, Keras Conv1D",
            "full",
            *timed(conv_step(reference_conv), inputs["full"]),
            flops["full"],
        )
    ]
    for profile in LENGTH_PROFILES:
        timing = timed(conv_step(fast_conv), inputs[profile])
        costs.append(("convolution, PaddingAwareConv1D", profile, *timing, flops[profile]))
    for name, layer in pools.items():
        costs.append((name, "full", *timed(pool_step(layer), conv_output), 0.0))
    return costs


def _tf_gemm(repeats: int) -> dict[str, float]:
    """TensorFlow float32 2048^3 GEMM with this process's thread count: best wall GFLOP/s and GFLOP per
    CPU-second (numpy's BLAS is left out: its threads are not TensorFlow's)."""
    import tensorflow as tf

    size = common.GEMM_SIZE
    a = tf.random.uniform((size, size), seed=0)
    matmul = tf.function(lambda x: tf.reduce_sum(tf.linalg.matmul(x, x)))
    matmul(a).numpy()
    best, cpu_start = float("inf"), common.cpu_seconds()
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(a).numpy()
        best = min(best, time.perf_counter() - start)
    flops = 2.0 * size**3
    return {
        "wall": round(flops / best / 1e9, 1),
        "per_cpu_s": round(flops * repeats / (common.cpu_seconds() - cpu_start) / 1e9, 1),
    }


def _sizes(quick: bool, smoke: bool) -> dict[str, int]:
    if smoke:
        return {"count": 64, "epochs": 1, "eager": 32, "predict": 256}
    if quick:  # below ~500 utterances Keras' per-fit set-up shows in the rate
        return {"count": 512, "epochs": 2, "eager": 64, "predict": 1024}
    return {"count": 2048, "epochs": 3, "eager": 256, "predict": 2048}


def measure(threads: int, quick: bool = False, smoke: bool = False) -> list[dict[str, Any]]:
    """All rows of one thread count, measured in this process (call ``runtime.configure`` first)."""
    from serlib.base import config as config_module
    from serlib.base import runtime
    from serlib.models.acnn import model as acnn

    settings = runtime.configure(threads)
    config = config_module.load_preset("paper")
    sizes = _sizes(quick, smoke)
    batch = config.acnn.batch_size
    frames = config.features.logmel.max_frames
    nominal = flops_per_utterance(config)["training"]
    gemm_repeats = 2 if smoke else 5
    gemm = [_tf_gemm(gemm_repeats)]
    rows: list[dict[str, Any]] = []

    def add(
        stage: str, implementation: str, profile: str, work: str, utterances: int, timing: tuple, **extra
    ):
        wall, cpu = timing
        rows.append(
            {
                "benchmark": "acnn",
                "stage": stage,
                "implementation": implementation,
                "profile": profile,
                "threads": threads,
                "work": work,
                "utterances": utterances,
                "wall_s": round(wall, 3),
                "cpu_s": round(cpu, 3),
                "utt_per_s": round(utterances / wall, 1),
                "per_cpu_s": round(utterances / cpu, 1) if cpu > 0 else None,
                "load": round(common.load_average(), 2),
                **extra,
            }
        )

    training: list[tuple[str, str, str]] = []  # (profile, implementation, mode)
    profiles = ("full", "realistic", "short") if threads == 1 and not smoke else ("full", "realistic")
    for profile in profiles:
        training += [(profile, "reference, fast, auto", "interleaved")]
        if threads == 1 and profile == "full":
            training += [("full", "fast", "eager"), ("full", "reference", "jit_compile")]
            training += [("full", "fast", "Keras array feed"), ("full", "fast", "previous pooling")]
    data: dict[tuple[str, int], tuple] = {}
    for profile, implementation, mode in training:
        n = sizes["eager"] if mode == "eager" else sizes["count"]
        epochs = 1 if mode == "eager" else sizes["epochs"] * (3 if mode == "interleaved" else 1)
        if (profile, n) not in data:
            data[(profile, n)] = _data(config, n, profile)
        inputs, targets, lengths = data[(profile, n)]
        useful = float(
            np.mean([flops_per_utterance(config, frames=length)["training"] for length in lengths])
        )
        calibration = None
        with common.peak_memory() as peak:
            if (
                mode == "interleaved"
            ):  # `auto` as a protocol resolves it for these lengths, from an empty cache
                calibration = _calibrate(config, lengths)
                paths = {"reference": "reference", "fast": "fast", "auto": calibration["implementation"]}
                timings = _train_interleaved(config, paths, inputs, targets, epochs)
            else:
                timings = {implementation: _train(config, implementation, mode, inputs, targets, epochs)}
        low, high = (round(100 * f) for f in LENGTH_PROFILES[profile])
        lengths_text = f"{frames} frames" if low == high == 100 else f"{low}-{high} % of {frames} frames"
        for name, timing in timings.items():
            label = name if mode in ("compiled", "interleaved") else f"{name}, {mode}"
            if name == "auto" and calibration is not None:
                label = f"auto (calibrated: {calibration['implementation']})"
            add(
                "ACNN training",
                label,
                profile,
                f"{n} utt x {epochs} ep., batch {batch}, {lengths_text}, {threads} TF thread{'s' * (threads > 1)}"
                + (", interleaved, median epoch" if mode == "interleaved" else ""),
                n * epochs,
                timing,
                mode="compiled" if mode == "interleaved" else mode,
                interleaved=mode == "interleaved",
                implementation_key=name,
                flop_per_utt=useful,
                useful_share=round(useful / nominal, 3),
                peak_mib=round(peak.peak_mib, 0),
                calibration=calibration if name == "auto" else None,
            )

    if threads == 1:  # where the training step's time goes: each layer's forward + gradient alone
        layer_repeats = 3 if smoke else 20
        for layer, profile, wall, seconds, layer_flops in _layer_costs(config, layer_repeats):
            low, high = (round(100 * f) for f in LENGTH_PROFILES[profile])
            lengths_text = f"{frames} frames" if low == high == 100 else f"{low}-{high} % of {frames} frames"
            add(
                "ACNN layer cost",
                layer,
                profile,
                f"{layer_repeats} batches of {batch}, {lengths_text}, forward + gradient, 1 TF thread",
                batch * layer_repeats,
                (wall * layer_repeats, seconds * layer_repeats),
                mode="layer",
                flop_per_utt=layer_flops,
                useful_share=round(layer_flops / _conv_flops(config, frames), 3) if layer_flops else None,
                ms_per_batch=round(1e3 * seconds, 2),
            )

    inputs, _, lengths = _data(config, sizes["predict"], "realistic", seed=1)
    forward = float(np.mean([flops_per_utterance(config, frames=length)["forward"] for length in lengths]))
    for size in PREDICT_BATCHES[:2] if smoke else PREDICT_BATCHES:
        with common.peak_memory() as peak:
            timing = _predict(config, inputs, size)
        chosen = " (acnn.PREDICT_BATCH_SIZE)" if size == acnn.PREDICT_BATCH_SIZE else ""
        add(
            "ACNN inference",
            f"fast, predict batch {size}{chosen}",
            "realistic",
            f"{sizes['predict']} utt, 40-100 % of {frames} frames, {threads} TF thread{'s' * (threads > 1)}",
            sizes["predict"],
            timing,
            mode="predict",
            batch_size=size,
            flop_per_utt=forward,
            peak_mib=round(peak.peak_mib, 0),
        )
    gemm.append(_tf_gemm(gemm_repeats))
    ceiling_wall = max(g["wall"] for g in gemm)
    ceiling_cpu = max(g["per_cpu_s"] for g in gemm)
    _finish(rows, threads, ceiling_wall, ceiling_cpu)
    rows.insert(
        0,
        {
            "benchmark": "acnn",
            "stage": "GEMM ceiling",
            "implementation": f"TensorFlow float32 {common.GEMM_SIZE}^3, {threads} TF thread{'s' * (threads > 1)}",
            "threads": threads,
            "work": f"best of {gemm_repeats}, before and after the ACNN rows",
            "throughput": None,
            "gflops": ceiling_cpu if threads == 1 else ceiling_wall,
            "gemm_wall": ceiling_wall,
            "gemm_per_cpu_s": ceiling_cpu,
            "note": (
                f"{ceiling_cpu:,.1f} GFLOP per CPU-second, {ceiling_wall:,.1f} GFLOP/s wall "
                f"(before: {gemm[0]['per_cpu_s']} / {gemm[0]['wall']}, after: {gemm[1]['per_cpu_s']} / "
                f"{gemm[1]['wall']}); TF intra/inter-op threads {settings['intra_op_threads']}/"
                f"{settings['inter_op_threads']}"
            ),
        },
    )
    return rows


def _finish(rows: list[dict[str, Any]], threads: int, ceiling_wall: float, ceiling_cpu: float) -> None:
    """GFLOP/s, fraction of the GEMM ceiling, ratio to the reference row and the note of every row.

    With 1 thread the throughput and GFLOP/s columns are per CPU-second (against the 1-thread GEMM's
    GFLOP per CPU-second); with more threads they are wall-clock (against the GEMM's wall rate).
    """
    for row in rows:
        per_cpu = row["per_cpu_s"] or 0.0
        gflop_cpu = per_cpu * row["flop_per_utt"] / 1e9
        gflop_wall = row["utt_per_s"] * row["flop_per_utt"] / 1e9
        row["gemm_fraction_cpu"] = round(gflop_cpu / ceiling_cpu, 3)
        row["gemm_fraction_wall"] = round(gflop_wall / ceiling_wall, 3)
        if threads == 1:
            row["throughput"], row["throughput_unit"] = per_cpu, "utt/CPU-s"
            row["gflops"], row["gemm_fraction"] = round(gflop_cpu, 2), row["gemm_fraction_cpu"]
            other = f"{row['utt_per_s']:,.0f} utt/s wall"
        else:
            row["throughput"], row["throughput_unit"] = row["utt_per_s"], "utt/s"
            row["gflops"], row["gemm_fraction"] = round(gflop_wall, 2), row["gemm_fraction_wall"]
            other = f"{per_cpu:,.0f} utt per CPU-second ({100 * row['gemm_fraction_cpu']:.0f}% of GEMM's)"
        if row["stage"] == "ACNN layer cost":
            base = next(r for r in rows if r["stage"] == row["stage"])  # Keras Conv1D, full lengths
            reference = "Keras Conv1D (full)"
        elif row["stage"] == "ACNN training":
            base = next(
                r
                for r in rows
                if r["stage"] == row["stage"]
                and r["profile"] == row["profile"]
                and r["implementation"] == "reference"
            )
            reference = f"reference ({row['profile']})"
        else:
            base = next(
                r for r in rows if r["stage"] == row["stage"] and r["batch_size"] == PREDICT_BATCHES[0]
            )
            reference = f"batch {PREDICT_BATCHES[0]}"
        row["ratio_vs_reference"] = round(row["throughput"] / base["throughput"], 2)
        row["reference"] = reference
        useful = row.get("useful_share")
        flops_text = (
            f"; FLOPs of real frames only ({100 * useful:.0f}% of the {row['profile']} batch's nominal)"
            if useful is not None and useful < 1
            else ""
        )
        if row["stage"] == "ACNN layer cost":
            other = f"{row['ms_per_batch']:,.1f} CPU ms per batch of 32"
            if not row["flop_per_utt"]:
                row["gflops"] = row["gemm_fraction"] = None  # comparisons only: no multiply-adds
            else:
                other += "; GFLOP/s per CPU-second: forward and kernel gradient"
        elif threads == 1:
            other += f"; GFLOP/s per CPU-second, against the 1-thread GEMM's {ceiling_cpu:,.1f}"
        row["note"] = f"{other}; load {row['load']}{flops_text}"
    for row in rows:  # auto against the better of the two paths measured interleaved with it
        calibration = row.get("calibration")
        if row["stage"] != "ACNN training" or not calibration:
            continue
        paths = [
            r
            for r in rows
            if r.get("interleaved")
            and r["profile"] == row["profile"]
            and r["implementation_key"] in ("fast", "reference")
        ]
        best = max(paths, key=lambda r: r["throughput"])
        row["auto_vs_best"] = round(row["throughput"] / best["throughput"], 3)
        per_utterance = calibration["per_utterance"]
        row["note"] += (
            f"; x{row['auto_vs_best']:.3f} vs the better path measured with it ({best['implementation_key']}); "
            f"calibration from an empty cache: {calibration['implementation']} "
            f"(fast {1e3 * per_utterance.get('fast', float('nan')):.2f}, reference "
            f"{1e3 * per_utterance.get('reference', float('nan')):.2f} CPU ms per utterance), "
            f"{calibration['cpu_s']} CPU-s / {calibration['wall_s']} s wall once per machine and length profile"
        )
    previous = [r for r in rows if r.get("mode") == "previous pooling"]
    for row in rows:  # issue 17's speed-up: the fast model against its previous pooling gradient
        if previous and row["stage"] == "ACNN training" and row.get("mode") == "compiled":
            if row["implementation_key"] == "fast" and row["profile"] == previous[0]["profile"]:
                ratio = row["throughput"] / previous[0]["throughput"]
                row["note"] += f"; x{ratio:.2f} vs the previous pooling gradient (issue 17's baseline)"


# -- one child process per thread count -----------------------------------------------------------------
def run(quick: bool = False, smoke: bool = False) -> list[dict[str, Any]]:
    """One dict per row (used by ``python -m benchmarks``): a child process per TF thread count."""
    rows: list[dict[str, Any]] = []
    for threads in THREADS:
        with tempfile.TemporaryDirectory(prefix="serlib-bench-acnn-") as folder:
            output = Path(folder) / "rows.json"
            command = [sys.executable, "-m", "benchmarks.bench_acnn", "--threads", str(threads)]
            command += ["--json", str(output)] + (["--smoke"] if smoke else ["--quick"] if quick else [])
            environment = {**os.environ, "SERLIB_TF_THREADS": str(threads), "TF_CPP_MIN_LOG_LEVEL": "2"}
            result = subprocess.run(command, env=environment, capture_output=True, text=True)
            if result.returncode != 0 or not output.is_file():
                tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
                raise RuntimeError(f"ACNN benchmark with {threads} TF threads failed: {tail}")
            rows += json.loads(output.read_text(encoding="utf-8"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer utterances and epochs")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks that it runs, not speed")
    parser.add_argument("--threads", type=int, help="measure in this process with this many TF threads")
    parser.add_argument("--json", type=Path, help="with --threads: write the rows here")
    args = parser.parse_args()
    if args.threads:
        rows = measure(args.threads, quick=args.quick, smoke=args.smoke)
        if args.json:
            args.json.write_text(json.dumps(rows), encoding="utf-8")
            return
    else:
        rows = run(quick=args.quick, smoke=args.smoke)
    print(f"load average {common.load_average():.2f} on {common.cores()} cores")
    for row in rows:
        if row["stage"] == "GEMM ceiling":
            print(f"{row['implementation']}: {row['note']}")
            continue
        rate = (  # layer rows without a FLOP count (max-pooling) have no GEMM fraction
            f"{row['gflops']:>6.2f} GFLOP/s ({100 * row['gemm_fraction']:.0f}% of GEMM)"
            if row.get("gflops") is not None
            else f"{'':>6} GFLOP/s"
        )
        print(
            f"{row['stage']:<15} {row['implementation']:<42} {row['work']:<62} "
            f"{row['throughput']:>8,.1f} {row['throughput_unit']:<9} {rate}  "
            f"x{row['ratio_vs_reference']} vs {row['reference']}  {row['note']}"
        )


if __name__ == "__main__":
    main()
