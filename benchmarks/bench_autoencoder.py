"""Training throughput of auDeep's autoencoder (paper architecture) against this machine's GEMM rate.

Run ``python -m benchmarks.bench_autoencoder [--quick]``. The paper's architecture (T = 186 frames,
F = 128 bands, GRU 2 x 256, unidirectional encoder, bidirectional decoder) is trained on random
batches of 64 (the paper's batch size) with ``train_on_batch``. Rows:

* ``gemm``: dense float32 matrix-multiply rate of numpy and TensorFlow (2048^2), the ceiling;
* ``train``: serlib's model (``AudeepGRU``: fused input projection, hand-written BPTT, time loops
  compiled with XLA) for both ``gru_variant`` values, once with the loops left to TensorFlow's
  executor (what XLA buys), and the same graph built from stock ``keras.layers.GRU`` ("plain Keras":
  Keras' per-step cell loop with automatic differentiation) for comparison; with op determinism on
  (as ``autoencoder.train`` runs) and, for the fused reset_after model, off;
* ``encode``: inference throughput of ``autoencoder.encode`` (batch 500, auDeep's generation batch);
* ``pipeline``: the ``tf.data`` reader alone (shuffled batches streamed from an HDF5 store).

FLOPs per utterance count the GEMMs only (``autoencoder.flops_per_utterance``): forward
2 * T * sum(3U(F_in + U)) over GRU layers and directions plus the dense layers; training = 3 x forward
(backward = 2 x forward). ``fraction_of_gemm`` = achieved FLOP/s / the best measured GEMM rate (wall
clock: meaningful only on an otherwise idle machine); ``fraction_of_gemm_cpu`` = FLOPs per CPU-second of
the training step / TensorFlow GEMM FLOPs per CPU-second (work efficiency, less sensitive to load).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import common

FRAMES, BANDS, BATCH = 186, 128, 64


def _paper_config(variant: str) -> Any:
    from serlib.base import config as config_module

    return config_module.override(
        config_module.load_preset("paper"),
        **{"autoencoder.gru_variant": variant, "features.spectrogram.mel_bands": BANDS},
    )


def _gemm_per_cpu_second(size: int = common.GEMM_SIZE, repeats: int = 5) -> float:
    """TensorFlow float32 GEMM GFLOP per CPU-second of this process (less sensitive to other processes)."""
    import tensorflow as tf

    a = tf.random.uniform((size, size))
    matmul = tf.function(lambda x: tf.reduce_sum(tf.linalg.matmul(x, x)))
    matmul(a).numpy()
    start = common.cpu_seconds()
    for _ in range(repeats):
        matmul(a).numpy()
    return 2.0 * size**3 * repeats / (common.cpu_seconds() - start) / 1e9


def _batch(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (BATCH, FRAMES, BANDS)).astype(np.float32)


def _train_row(variant: str, implementation: str, batches: int, deterministic: bool) -> dict[str, Any]:
    import keras
    from tensorflow.python.framework import config as tf_config

    from serlib.models import autoencoder
    from serlib.models.autoencoder import fused_gru

    config = _paper_config(variant)
    gru_class = keras.layers.GRU if implementation == "plain Keras GRU" else None
    compiled_before = fused_gru.COMPILE_LOOPS
    fused_gru.COMPILE_LOOPS = "not XLA-compiled" not in implementation
    keras.utils.set_random_seed(0)
    before = tf_config.is_op_determinism_enabled()
    if deterministic:
        tf_config.enable_op_determinism()
    else:
        tf_config.disable_op_determinism()
    try:
        model = autoencoder.build_configured(config, gru_class=gru_class)
        x = _batch()
        y = np.ascontiguousarray(x[:, ::-1])
        start = time.perf_counter()
        model.train_on_batch(x, y)  # trace + first step
        first_s = time.perf_counter() - start
        times = []
        cpu_start = common.cpu_seconds()
        for _ in range(batches):
            start = time.perf_counter()
            model.train_on_batch(x, y)
            times.append(time.perf_counter() - start)
        cpu_per_batch = (common.cpu_seconds() - cpu_start) / batches
    finally:
        (tf_config.enable_op_determinism if before else tf_config.disable_op_determinism)()
        fused_gru.COMPILE_LOOPS = compiled_before
    per_batch = float(np.median(times))
    flops = autoencoder.flops_per_utterance(config.autoencoder, config.features.spectrogram.mel_bands, FRAMES)
    utterances = BATCH / per_batch
    return {
        "row": "train",
        "implementation": implementation,
        "gru_variant": variant,
        "deterministic": deterministic,
        "parameters": model.count_params(),
        "batches": batches,
        "first_batch_s": round(first_s, 2),
        "s_per_batch_median": round(per_batch, 3),
        "s_per_batch_best": round(min(times), 3),
        "cpu_s_per_batch": round(cpu_per_batch, 3),
        "utterances_per_s": round(utterances, 1),
        "frames_per_s": round(utterances * FRAMES, 0),
        "training_gflop_per_utterance": round(flops["training"] / 1e9, 3),
        "achieved_gflops": round(utterances * flops["training"] / 1e9, 1),
        "gflop_per_cpu_s": round(BATCH * flops["training"] / cpu_per_batch / 1e9, 1),
    }


def _encode_row(count: int) -> dict[str, Any]:
    from serlib.models import autoencoder

    config = _paper_config("reset_after")
    model = autoencoder.build_configured(config, compile=False)
    data = np.random.default_rng(1).uniform(-1, 1, (count, FRAMES, BANDS)).astype(np.float32)
    autoencoder.encode(model, data[:8], batch_size=8)  # trace
    start = time.perf_counter()
    autoencoder.encode(model, data, batch_size=500)
    seconds = time.perf_counter() - start
    forward = autoencoder.flops_per_utterance(
        config.autoencoder, config.features.spectrogram.mel_bands, FRAMES
    )["forward"]
    encoder_share = 1 / 3  # encoder GRUs are ~1/3 of the forward GEMMs (1 of 3 stacks)
    return {
        "row": "encode",
        "implementation": "AudeepGRU",
        "gru_variant": "reset_after",
        "utterances": count,
        "seconds": round(seconds, 2),
        "utterances_per_s": round(count / seconds, 1),
        "achieved_gflops": round(count * forward * encoder_share / seconds / 1e9, 1),
    }


def _pipeline_row(count: int, batches: int) -> dict[str, Any]:
    import h5py

    from serlib.models.autoencoder import training

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "store.h5"
        with h5py.File(path, "w") as handle:
            handle.create_dataset(
                "features", shape=(count, FRAMES, BANDS), dtype="float32", chunks=(4, FRAMES, BANDS)
            )
            for start in range(0, count, BATCH):
                stop = min(count, start + BATCH)
                handle["features"][start:stop] = _batch(start)[: stop - start]
        source = training._Source(path)
        dataset = training._dataset(source, BATCH, seed=0, first_epoch=0, last_epoch=1000)
        iterator = iter(dataset)
        next(iterator)
        with common.peak_memory() as memory:
            start = time.perf_counter()
            for _ in range(batches):
                next(iterator)
            seconds = time.perf_counter() - start
    return {
        "row": "pipeline",
        "implementation": "tf.data from HDF5 (shuffled index batches)",
        "utterances": count,
        "batches": batches,
        "utterances_per_s": round(batches * BATCH / seconds, 1),
        "peak_memory_increase_mib": round(memory.increase_mib, 1),
    }


def run(quick: bool = False) -> list[dict[str, Any]]:
    """All rows; ``quick`` times 2 batches per training configuration instead of 5."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    batches = 2 if quick else 5
    rows: list[dict[str, Any]] = []
    gemm = common.gemm_rates()
    gemm_cpu = _gemm_per_cpu_second()
    rows.append(
        {
            "row": "gemm",
            "implementation": "numpy / TensorFlow float32 2048^2",
            **gemm,
            "gflop_per_cpu_s": round(gemm_cpu, 1),
        }
    )
    configurations = [
        ("reset_after", "AudeepGRU", True),
        ("reset_before", "AudeepGRU", True),
        ("reset_before", "AudeepGRU, loops not XLA-compiled", True),
        ("reset_after", "AudeepGRU", False),
        ("reset_after", "plain Keras GRU", True),
        ("reset_before", "plain Keras GRU", True),
    ]
    for variant, implementation, deterministic in configurations:
        rows.append(_train_row(variant, implementation, batches, deterministic))
    gemm_after = common.gemm_rates()
    rows.append({"row": "gemm", "implementation": "numpy / TensorFlow float32 2048^2 (after)", **gemm_after})
    ceiling = max(gemm["best"], gemm_after["best"])
    for row in rows:
        if "achieved_gflops" in row:
            row["fraction_of_gemm"] = round(row["achieved_gflops"] / ceiling, 3)
        if row["row"] == "train":
            # Work efficiency: FLOPs per CPU-second against the GEMM's; robust to other processes taking
            # whole cores, though spinning worker threads still count as CPU time under heavy load.
            row["fraction_of_gemm_cpu"] = round(row["gflop_per_cpu_s"] / gemm_cpu, 3)
    rows.append(_encode_row(128 if quick else 500))
    rows.append(_pipeline_row(512 if quick else 2048, 8 if quick else 32))
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    columns = [
        "row",
        "implementation",
        "gru_variant",
        "deterministic",
        "s_per_batch_median",
        "cpu_s_per_batch",
        "utterances_per_s",
        "frames_per_s",
        "achieved_gflops",
        "fraction_of_gemm",
        "gflop_per_cpu_s",
        "fraction_of_gemm_cpu",
        "numpy",
        "tensorflow",
    ]
    return common.markdown_table(rows, columns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 timed batches per configuration instead of 5")
    args = parser.parse_args()
    machine = common.describe_machine()
    rows = run(quick=args.quick)
    print(", ".join(f"{k}: {v}" for k, v in machine.items()))
    print(f"1-minute load average at the end: {common.load_average():.2f}")
    train = next(r for r in rows if r["row"] == "train")
    print(
        f"paper architecture: T={FRAMES}, F={BANDS}, batch {BATCH}, {train['training_gflop_per_utterance']} GFLOP/utterance (training)"
    )
    print(format_table(rows))


if __name__ == "__main__":
    main()
