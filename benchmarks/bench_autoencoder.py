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
* ``chain``: the ceiling of the recurrence: only the dependent per-step products a GRU step cannot
  parallelise over time ([B, U] x [U, 3U] forward and its transpose backward; for ``reset_before`` the
  two dependent products [B, U] x [U, 2U] and [B, U] x [U, U] of TF1's cell), T steps per layer and
  direction, in the model's order and concurrency (encoder layers as two batch shards, decoder layers
  as two directions at a time; forward, then backward in reverse), with no input projection, weight
  gradient or gate arithmetic. Timed as XLA-compiled loops (as the model's) and as TensorFlow graph
  loops; the faster is the ceiling. Every training row gives its FLOP rate as a fraction of this
  chain's (the recurrence is ~37 % of the FLOPs but runs far below GEMM speed, so a model made only of
  these products could not be faster) and of the GEMM rate;
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


def chain_schedule(config: Any, batch: int = BATCH) -> list[list[int]]:
    """The forward stages of the model's recurrence: per GRU layer, the batch sizes of the loops that
    run concurrently (a unidirectional stack: two batch shards; a bidirectional one: two directions)."""
    ae = config.autoencoder
    encoder = [batch, batch] if ae.bidirectional_encoder else [batch // 2, batch - batch // 2]
    decoder = [batch, batch] if ae.bidirectional_decoder else [batch // 2, batch - batch // 2]
    return [encoder] * ae.layers + [decoder] * ae.layers


def _orthogonal(rng: np.random.Generator, units: int) -> np.ndarray:
    q, _ = np.linalg.qr(rng.standard_normal((units, units)))
    return q.astype(np.float32)


def _chain_functions(variant: str, units: int, steps: int, compiled: bool) -> tuple[Any, Any]:
    """One layer-direction's forward and backward chain: ``steps`` dependent products and nothing else.

    The weights keep the state's norm (orthogonal blocks), so no value overflows or turns denormal.
    """
    import tensorflow as tf

    def loop(step: Any, h0: Any) -> Any:
        return tf.while_loop(
            lambda t, h: t < steps, lambda t, h: (t + 1, step(h)), (tf.constant(0), h0), parallel_iterations=1
        )[1]

    def forward(h0: Any, w: Any, w_n: Any) -> Any:
        if variant == "reset_after":  # h W_h, [B, U] x [U, 3U]
            return loop(lambda h: tf.matmul(h, w)[:, :units], h0)
        # TF1's cell: h W_zr, then (r * h) W_n depends on it
        return loop(lambda h: tf.matmul(tf.matmul(h, w[:, : 2 * units])[:, :units], w_n), h0)

    def backward(c0: Any, w: Any, w_n: Any) -> Any:
        if variant == "reset_after":  # d_gh W_h^T, [B, 3U] x [3U, U]
            return loop(lambda c: tf.matmul(tf.concat([c, c, c], axis=1), w, transpose_b=True), c0)
        # d_n W_n^T, then d_zr W_zr^T depends on it
        return loop(
            lambda c: tf.matmul(
                tf.concat([tf.matmul(c, w_n, transpose_b=True)] * 2, axis=1),
                w[:, : 2 * units],
                transpose_b=True,
            ),
            c0,
        )

    return tf.function(forward, jit_compile=compiled), tf.function(backward, jit_compile=compiled)


def _chain_row(variant: str, batches: int) -> dict[str, Any]:
    """Seconds per training batch of the recurrent product chain alone, as XLA and as graph loops."""
    import tensorflow as tf

    config = _paper_config(variant)
    units = config.autoencoder.units
    stages = chain_schedule(config)
    rng = np.random.default_rng(3)
    q, q_n = _orthogonal(rng, units), _orthogonal(rng, units)
    # Forward weights [Q | noise] (the next state is the first U columns); backward weights repeat Q so
    # that the concatenated copies sum back to c Q^T.
    noise = rng.standard_normal((units, 2 * units)).astype(np.float32) / np.float32(np.sqrt(units))
    w_forward = tf.constant(np.concatenate([q, noise], axis=1))
    parts = 3 if variant == "reset_after" else 2
    w_backward = tf.constant(np.concatenate([q / parts] * parts + [noise[:, : (3 - parts) * units]], axis=1))
    w_n = tf.constant(q_n)
    states = [tf.constant(rng.standard_normal((size, units)).astype(np.float32)) for size in sum(stages, [])]

    def schedule(functions: tuple[Any, Any]) -> Any:
        forward, backward = functions

        @tf.function
        def run() -> Any:
            # Each stage waits for the previous one (a zero-valued token), its loops run concurrently.
            token, index = tf.constant(0.0), 0
            for sizes in stages:
                outputs = []
                for _ in sizes:
                    outputs.append(forward(states[index] + token, w_forward, w_n))
                    index += 1
                token = tf.add_n([o[0, 0] for o in outputs]) * 0.0
            for sizes in reversed(stages):
                outputs = []
                for _ in sizes:
                    index -= 1
                    outputs.append(backward(states[index] + token, w_backward, w_n))
                token = tf.add_n([o[0, 0] for o in outputs]) * 0.0
            return token

        return run

    timings = {}
    for name, compiled in (("XLA", True), ("graph", False)):
        run = schedule(_chain_functions(variant, units, FRAMES, compiled))
        run().numpy()  # trace and compile
        times, cpu_start = [], common.cpu_seconds()
        for _ in range(batches):
            start = time.perf_counter()
            run().numpy()
            times.append(time.perf_counter() - start)
        timings[name] = (float(np.median(times)), (common.cpu_seconds() - cpu_start) / batches)
    best = min(timings, key=lambda name: timings[name][0])
    per_batch, cpu_per_batch = timings[best]
    rows_total = sum(sum(sizes) for sizes in stages)
    flops = (
        2 * 2.0 * FRAMES * rows_total * units * 3 * units
    )  # forward + backward, 3U^2 MACs per row and step
    return {
        "row": "chain",
        "implementation": f"recurrent products alone ({best} loops)",
        "gru_variant": variant,
        "stages": stages,
        "batches": batches,
        "s_per_batch_median": round(per_batch, 3),
        "cpu_s_per_batch": round(cpu_per_batch, 3),
        "s_per_batch_xla": round(timings["XLA"][0], 3),
        "s_per_batch_graph": round(timings["graph"][0], 3),
        "chain_gflop_per_batch": round(flops / 1e9, 2),
        "achieved_gflops": round(flops / per_batch / 1e9, 1),
        "gflop_per_cpu_s": round(flops / cpu_per_batch / 1e9, 1),
        "load": round(common.load_average(), 2),
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


def run(quick: bool = False, smoke: bool = False) -> list[dict[str, Any]]:
    """All rows; ``quick`` times 2 batches per training configuration instead of 5; ``smoke`` 1 batch of
    only the paper's variant (checks that the module runs, not its speed)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    batches = 1 if smoke else 2 if quick else 5
    rows: list[dict[str, Any]] = []
    gemm = common.gemm_rates(repeats=2 if smoke else 5)
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
    if smoke:
        configurations = [c for c in configurations if c[0] == "reset_before" and c[2]][::2]
    variants = sorted({variant for variant, _, _ in configurations})
    for variant in variants:
        rows.append(_chain_row(variant, max(batches, 3)))
    for variant, implementation, deterministic in configurations:
        rows.append(_train_row(variant, implementation, batches, deterministic))
    gemm_after = common.gemm_rates(repeats=2 if smoke else 5)
    rows.append({"row": "gemm", "implementation": "numpy / TensorFlow float32 2048^2 (after)", **gemm_after})
    ceiling = max(gemm["best"], gemm_after["best"])
    chains = {row["gru_variant"]: row for row in rows if row["row"] == "chain"}
    for row in rows:
        if "achieved_gflops" in row:
            row["fraction_of_gemm"] = round(row["achieved_gflops"] / ceiling, 3)
        if row["row"] in ("train", "chain"):
            # Work efficiency: FLOPs per CPU-second against the GEMM's; robust to other processes taking
            # whole cores, though spinning worker threads still count as CPU time under heavy load.
            row["fraction_of_gemm_cpu"] = round(row["gflop_per_cpu_s"] / gemm_cpu, 3)
        chain = chains.get(row.get("gru_variant"))
        if row["row"] == "train" and chain is not None:
            # The training FLOP rate against the rate of its recurrence alone (same variant, same run),
            # and the share of the training step that the chain alone takes.
            row["fraction_of_chain"] = round(row["achieved_gflops"] / chain["achieved_gflops"], 3)
            row["fraction_of_chain_cpu"] = round(row["gflop_per_cpu_s"] / chain["gflop_per_cpu_s"], 3)
            row["chain_share_of_step"] = round(chain["s_per_batch_median"] / row["s_per_batch_median"], 3)
    rows.append(_encode_row(16 if smoke else 128 if quick else 500))
    rows.append(_pipeline_row(128 if smoke else 512 if quick else 2048, 2 if smoke else 8 if quick else 32))
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
        "fraction_of_chain",
        "chain_share_of_step",
        "numpy",
        "tensorflow",
    ]
    return common.markdown_table(rows, columns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 timed batches per configuration instead of 5")
    parser.add_argument(
        "--smoke", action="store_true", help="1 batch, paper variant only: checks that it runs"
    )
    args = parser.parse_args()
    machine = common.describe_machine()
    rows = run(quick=args.quick, smoke=args.smoke)
    print(", ".join(f"{k}: {v}" for k, v in machine.items()))
    print(f"1-minute load average at the end: {common.load_average():.2f}")
    train = next(r for r in rows if r["row"] == "train")
    print(
        f"paper architecture: T={FRAMES}, F={BANDS}, batch {BATCH}, "
        f"{train['training_gflop_per_utterance']} GFLOP/utterance (training)"
    )
    print(format_table(rows))


if __name__ == "__main__":
    main()
