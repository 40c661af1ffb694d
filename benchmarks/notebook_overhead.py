"""Notebook 04's overhead ratio (issue 44): its CPU seconds over the training steps it had to compute.

``python -m benchmarks.notebook_overhead RUN_FOLDER [ROUNDS]`` reads a finished reproduction (``make
demo`` writes ``runs/demo``): each notebook's wall and CPU seconds from ``reproduce.log`` (kernel, Dask
workers and the ``serlib reproduce`` process that hosts the scheduler) and, from the runs'
``metrics.json``, the utterance-epochs the ACNN runs trained and their own ``train_seconds``. It then
measures the *step compute* on this machine, now: a demo-shaped ACNN (the runs' implementation, input
shape and batch size, the training data's lengths) trained through ``run.train`` for the demo's epochs
in this process, one TensorFlow thread, and the CPU seconds of its epochs after the first (the first
traces) divided by the utterances they visit, the median over ``ROUNDS`` runs. The ratio is
notebook CPU / (utterance-epochs x that cost). For comparison it also prints the calibration of
``acnn.implementation: auto`` (``choice.calibrate``, one epoch of 2 batches per timed run, so its
number includes the per-run costs of a 64-utterance run and is higher than the steps alone).

Run it right after the reproduction: this VM's speed drifts by up to 2x within an hour
(docs/performance.md), so only a step cost measured in the same sitting makes the ratio meaningful.
Exploratory: not part of the suite; the numbers go to docs/performance.md and benchmarks/RESULTS.md.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import common
from benchmarks.profile_run import _EpochClock

os.environ["SERLIB_TF_THREADS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def notebook_lines(folder: Path) -> dict[str, dict[str, float]]:
    """The last logged line of each notebook in ``reproduce.log``: wall and CPU seconds."""
    lines: dict[str, dict[str, float]] = {}
    for line in (folder / "reproduce.log").read_text(encoding="utf-8").splitlines():
        fields = line.split("\t")
        if line.startswith("#") or len(fields) < 5:
            continue
        values = dict(field.split(" ", 1) for field in fields[1:] if " " in field)
        lines[fields[0].split("_")[0]] = {
            "seconds": float(values["seconds"]),
            "cpu": float(values["kernel_cpu_s"]),
        }
    return lines


def run_records(folder: Path) -> list[dict[str, Any]]:
    """Every ACNN run's ``metrics.json`` under ``results/``."""
    paths = sorted((folder / "results").glob("*/*/seed*/fold*/metrics.json"))
    return [json.loads(path.read_text(encoding="utf-8")) for path in paths]


def step_cpu_per_utterance(folder: Path, rounds: int) -> dict[str, Any]:
    """CPU seconds per utterance-epoch of the runs' training steps, measured now (see the module)."""
    from serlib.base import config as config_module
    from serlib.base import runtime

    runtime.configure(1)
    import numpy as np

    from serlib.models.acnn import choice as acnn_choice
    from serlib.models.acnn import run as acnn_run
    from serlib.protocol import conditions, labeled

    # the folder's configuration with its stores where they are now (its output_dir may be relative)
    config = config_module.override(config_module.load(folder / "config.yaml"), output_dir=str(folder))
    records = run_records(folder)
    implementation = records[0]["acnn_implementation"]["implementation"]
    acnn = config.acnn.model_copy(update={"implementation": implementation, "jit_compile": False})
    frames, bands = labeled.acnn_input_shape(config.features)
    keys = sorted({conditions.corpora_of(config, s)[0] for s in conditions.settings_of(config)})
    lengths = np.concatenate(
        [labeled.extract_features(config, key, config.features.acnn_input).lengths for key in keys]
    )
    count = int(statistics.median(record["n_train"] for record in records))
    inputs, targets = acnn_choice.calibration_batch(acnn, frames, bands, lengths, count=count)
    real = (inputs["logmel"] != 0).any(axis=-1).sum(axis=1)
    medians = []
    for seed in range(rounds):
        epoch_cpu: list[float] = []  # CPU seconds of each epoch; the first epoch of the first run traces
        acnn_run.train(acnn, inputs, targets, seed=seed, lengths=real, callbacks=[_EpochClock(epoch_cpu)])
        medians.append(statistics.median(epoch_cpu[1:]) / count)
    calibration = acnn_choice.calibrate(acnn, frames, bands, lengths)
    return {
        "implementation": implementation,
        "utterances": count,
        "per_utterance": statistics.median(medians),
        "rounds": medians,
        "calibration": calibration[implementation] if implementation in calibration else None,
    }


def report(folder: Path, rounds: int) -> str:
    notebooks = notebook_lines(folder)
    records = run_records(folder)
    utterance_epochs = sum(r["n_train"] * len(r["loss_history"]) for r in records)
    train_seconds = sum(r["train_seconds"] for r in records)
    start_load = os.getloadavg()[0]
    steps = step_cpu_per_utterance(folder, rounds)
    step_cpu = steps["per_utterance"] * utterance_epochs
    lines = [
        f"{common.cpu_model()}, {common.cores()} cores, 1-min load {start_load:.2f} -> "
        f"{os.getloadavg()[0]:.2f}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"{folder}: {len(records)} ACNN runs, {utterance_epochs:,} utterance-epochs, their train_seconds "
        f"summed {train_seconds:.1f} s",
        f"step compute ({steps['implementation']}, {steps['utterances']} utterances, epochs after the first, "
        f"median of {rounds}): {1000 * steps['per_utterance']:.3f} CPU ms per utterance-epoch "
        f"({', '.join(f'{1000 * x:.3f}' for x in steps['rounds'])}) -> {step_cpu:.1f} CPU-s",
    ]
    if steps["calibration"]:
        lines.append(
            f"calibration (choice.calibrate, for comparison): {1000 * steps['calibration']:.3f} CPU ms per "
            f"utterance -> {steps['calibration'] * utterance_epochs:.1f} CPU-s"
        )
    lines.append(f"runs' train_seconds / step compute: {train_seconds / step_cpu:.2f}")
    for name, line in notebooks.items():
        lines.append(f"notebook {name}: {line['seconds']:.1f} s wall, {line['cpu']:.1f} CPU-s")
    if "04" in notebooks:
        ratio = notebooks["04"]["cpu"] / step_cpu
        lines.append(f"notebook 04 CPU / step compute: {ratio:.2f}x (target: at most 2x)")
        lines.append(
            f"notebook 04 wall x 2 cores / step compute: {2 * notebooks['04']['seconds'] / step_cpu:.2f}x"
        )
    return "\n".join(lines)


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/demo")
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    print(report(folder, rounds), flush=True)


if __name__ == "__main__":
    main()
