"""Training and inference throughput of the paper's ACNN (utterances per second), three ways.

Run ``python -m benchmarks.bench_acnn [--quick]``. The model is the paper preset's ACNN (750 frames x 26
bands, 200 filters of 26x10, stride 3, pooling 30/3, attention, three softmax heads, batch 32) on
random log-Mel-shaped inputs (throughput does not depend on the values). Rows:

* ``eager``: the same model with ``run_eagerly=True`` - no ``tf.function`` graph (the reference);
* ``compiled``: Keras' default ``tf.function`` train step (what ``experiments`` uses);
* ``jit_compile``: the train step compiled by XLA (``acnn.jit_compile: true``);
* ``tf.data``: the compiled step fed by a cached, shuffled, prefetched ``tf.data`` pipeline instead of
  numpy arrays through Keras' adapter;
* ``predict``: inference of heads, hidden layer and attention in one pass (``acnn.predict_all``'s
  model), at the training batch size (32) and at 256 (large-batch inference).

FLOPs are counted from the layer shapes (2 per multiply-add; training = 3x forward).
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks import common  # noqa: E402


def flops_per_utterance(config: Any, external_dim: int = 0) -> dict[str, float]:
    """Forward and training FLOPs of one utterance: convolution, attention scores and sum, heads."""
    from serlib.data.manifest import EMOTIONS, LEVELS
    from serlib.models import acnn

    a = config.acnn
    frames, bands = config.features.logmel.max_frames, config.features.logmel.bands
    steps = acnn.conv_steps(frames, a.kernel_frames, a.conv_stride)
    pooled = acnn.pooled_steps(frames, a)
    macs = steps * a.filters * a.kernel_frames * bands  # convolution
    macs += 2 * pooled * a.filters  # attention scores W^T x_i and the weighted sum
    macs += (a.filters + external_dim) * (len(EMOTIONS) + 2 * len(LEVELS))  # three heads
    forward = 2.0 * macs
    return {"forward": forward, "training": 3.0 * forward}


def _data(config: Any, count: int, seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    frames, bands = config.features.logmel.max_frames, config.features.logmel.bands
    inputs = {"logmel": rng.standard_normal((count, frames, bands), dtype=np.float32) - 10.0}
    targets = {
        "emotion": rng.integers(0, 4, count).astype(np.int32),
        "arousal": rng.integers(-1, 3, count).astype(np.int32),
        "valence": rng.integers(-1, 3, count).astype(np.int32),
    }
    return inputs, targets


def _model(config: Any, mode: str) -> Any:
    import keras

    from serlib.base import config as config_module
    from serlib.models import acnn

    keras.utils.set_random_seed(0)
    chosen = config_module.override(config, **{"acnn.jit_compile": mode == "jit_compile"})
    model = acnn.build_configured(chosen)
    if mode == "eager":
        model.run_eagerly = True  # read when fit builds its train function
    return model


def _train_rate(config: Any, mode: str, count: int, epochs: int) -> tuple[float, float, float]:
    """(utterances per second, wall seconds, CPU seconds) of ``epochs`` epochs after one warm-up epoch."""
    import tensorflow as tf

    model = _model(config, mode)
    inputs, targets = _data(config, count)
    batch = config.acnn.batch_size
    if mode == "tf.data":
        dataset = (
            tf.data.Dataset.from_tensor_slices((inputs, targets))
            .cache()
            .shuffle(count, seed=0, reshuffle_each_iteration=True)
            .batch(batch)
            .prefetch(tf.data.AUTOTUNE)
        )
        model.fit(dataset, epochs=1, shuffle=False, verbose=0)  # traces the step, fills the cache
        start, cpu = time.perf_counter(), common.cpu_seconds()
        model.fit(dataset, epochs=epochs, shuffle=False, verbose=0)
    else:
        model.fit(inputs, targets, batch_size=batch, epochs=1, shuffle=True, verbose=0)
        start, cpu = time.perf_counter(), common.cpu_seconds()
        model.fit(inputs, targets, batch_size=batch, epochs=epochs, shuffle=True, verbose=0)
    wall = time.perf_counter() - start
    return count * epochs / wall, wall, common.cpu_seconds() - cpu


def _predict_rate(config: Any, count: int, batch_size: int) -> tuple[float, float, float]:
    """(utterances per second, wall seconds, CPU seconds) of ``acnn.analysis_model(...).predict``."""
    from serlib.models import acnn

    model = acnn.analysis_model(_model(config, "compiled"))  # what acnn.predict_all runs
    inputs, _ = _data(config, count)
    model.predict(inputs, batch_size=batch_size, verbose=0)  # traces the predict step
    start, cpu = time.perf_counter(), common.cpu_seconds()
    model.predict(inputs, batch_size=batch_size, verbose=0)
    wall = time.perf_counter() - start
    return count / wall, wall, common.cpu_seconds() - cpu


def run(quick: bool = False) -> list[dict[str, Any]]:
    """One dict per row (used by ``python -m benchmarks``)."""
    from serlib.base import config as config_module

    config = config_module.load_preset("paper")
    gemm_before = common.gemm_rates()
    flops = flops_per_utterance(config)
    count = 512 if quick else 2048  # below ~500 utterances Keras' per-fit set-up shows in the rate
    epochs = 2 if quick else 3
    eager_count = 64 if quick else 256
    rows: list[dict[str, Any]] = []

    def add(
        stage: str, implementation: str, work: str, utterances: int, timing: tuple, peak: Any, per: float
    ) -> None:
        rate, wall, cpu = timing
        rows.append(
            {
                "benchmark": "acnn",
                "stage": stage,
                "implementation": implementation,
                "work": work,
                "utterances": utterances,
                "wall_s": round(wall, 3),
                "cpu_s": round(cpu, 3),
                "throughput": round(rate, 1),
                "throughput_unit": "utt/s",
                "per_cpu_s": round(utterances / cpu, 1) if cpu > 0 else None,
                "peak_mib": round(peak.peak_mib, 0),
                "gflops": round(rate * per / 1e9, 2),
                "note": f"{utterances / cpu:,.0f} utt per CPU-second" if cpu > 0 else "",
            }
        )

    for mode in ("eager", "compiled", "jit_compile", "tf.data"):
        n = eager_count if mode == "eager" else count
        ep = 1 if mode == "eager" else epochs
        with common.peak_memory() as peak:
            timing = _train_rate(config, mode, n, ep)
        work = f"{n} utt x {ep} epochs, batch {config.acnn.batch_size}"
        add("ACNN training", mode, work, n * ep, timing, peak, flops["training"])
    for batch_size in (config.acnn.batch_size, 256):
        with common.peak_memory() as peak:
            timing = _predict_rate(config, count * 2, batch_size)
        add(
            "ACNN inference",
            f"predict, batch {batch_size}",
            f"{count * 2} utt",
            count * 2,
            timing,
            peak,
            flops["forward"],
        )
    gemm_after = common.gemm_rates()
    ceiling = max(gemm_before["best"], gemm_after["best"])
    gemm_cpu = common.gemm_per_cpu_second()
    references = {
        "ACNN training": ("eager", "eager (run_eagerly=True)"),
        "ACNN inference": (f"predict, batch {config.acnn.batch_size}", f"batch {config.acnn.batch_size}"),
    }
    for row in rows:
        row["gemm_gflops"] = ceiling
        row["gemm_fraction"] = round(row["gflops"] / ceiling, 3)
        per_cpu = row["gflops"] * row["wall_s"] / row["cpu_s"] if row["cpu_s"] > 0 else 0.0
        row["gemm_fraction_cpu"] = round(per_cpu / gemm_cpu, 3)
        row["note"] += f"; per CPU-second {100 * row['gemm_fraction_cpu']:.0f}% of GEMM's"
        implementation, name = references[row["stage"]]
        base = next(r for r in rows if r["stage"] == row["stage"] and r["implementation"] == implementation)
        row["ratio_vs_reference"] = round(row["throughput"] / base["throughput"], 2)
        row["reference"] = name
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer utterances and epochs")
    args = parser.parse_args()
    rows = run(quick=args.quick)
    print(f"load average {common.load_average():.2f} on {common.cores()} cores")
    for row in rows:
        print(
            f"{row['implementation']:>12}  {row['work']:<34} {row['throughput']:>8.1f} utt/s  "
            f"{row['gflops']:>6.2f} GFLOP/s ({100 * row['gemm_fraction']:.0f}% of GEMM {row['gemm_gflops']})  "
            f"x{row['ratio_vs_reference']:<6} peak {row['peak_mib']:.0f} MiB  {row['note']}"
        )


if __name__ == "__main__":
    main()
