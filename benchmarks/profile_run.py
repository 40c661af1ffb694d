"""Where one protocol run's time goes, phase by phase (issue 44): build, training (steps vs the rest),
predict (heads, hidden layer and attention in one pass), file writing; and a process' start-up.

``python -m benchmarks.profile_run [demo|paper] [compiled,keras] [runs]`` trains ``runs`` (default 6)
ACNN runs in one process, as a Dask worker of ``serlib reproduce`` does, through the library's own
``runs.fit_predict`` and ``run_files.write_run`` on random log-Mel-shaped inputs of the preset's sizes
(demo: 192 training utterances within, 240 cross; paper: 4,400; 25-100 % of ``max_frames`` filled),
alternating the conditions without and with the AE vector and the two settings, so that the first run of
each architecture traces and the later ones reuse (``models.acnn.reuse``). Each phase is timed in CPU
seconds of this process (``time.process_time``, one TensorFlow thread) and wall seconds. The steps'
own cost is the *calibrated step compute*: the calibration's CPU seconds per training utterance
(``models.acnn.choice``, this machine's cache) times the utterance-epochs; ``overhead`` is the training
phase's CPU seconds over it. ``start-up`` is a fresh interpreter importing what a worker imports.
Exploratory: not part of the suite; the numbers go to docs/performance.md and benchmarks/RESULTS.md.
"""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ["SERLIB_TF_THREADS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SIZES = {"demo": {"within": (192, 48), "cross": (240, 120)}, "paper": {"within": (4400, 1100)}}
PAPER_EPOCHS = 3  # of the paper's 100: the first traces, the later ones show the per-epoch cost


def startup_seconds() -> dict[str, float]:
    """CPU and wall seconds of a fresh Python importing a protocol run's modules (a Dask worker's start)."""
    code = "import serlib.protocol.runs, serlib.models.acnn.model"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=os.environ | {"PYTHONWARNINGS": "ignore"})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {"cpu": cpu, "wall": wall}


class Phases:
    """CPU and wall seconds per phase name, summed over the runs; phases may nest (``train`` in ``run``)."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = defaultdict(float)
        self.wall: dict[str, float] = defaultdict(float)

    @contextlib.contextmanager
    def timed(self, name: str) -> Iterator[None]:
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            yield
        finally:
            self.cpu[name] += time.process_time() - cpu
            self.wall[name] += time.perf_counter() - wall

    def wrap(self, module: Any, attribute: str, name: str) -> None:
        original = getattr(module, attribute)

        def timed_call(*args: Any, **kwargs: Any) -> Any:
            with self.timed(name):
                return original(*args, **kwargs)

        setattr(module, attribute, timed_call)


def _data(count: int, frames: int, bands: int, external_dim: int, seed: int) -> Any:
    import numpy as np

    from serlib.protocol.labeled import LabeledData

    rng = np.random.default_rng(seed)
    lengths = rng.integers(frames // 4, frames + 1, count)
    logmel = rng.standard_normal((count, frames, bands), dtype=np.float32) - 10.0
    logmel[np.arange(frames)[None, :] >= lengths[:, None]] = 0.0
    labels = rng.integers(-1, 3, (2, count)).astype(np.int32)
    return LabeledData(
        ids=np.array([f"u{seed}-{i}" for i in range(count)]),
        logmel=logmel,
        lengths=lengths,
        emotion=rng.integers(0, 4, count).astype(np.int32),
        arousal=labels[0],
        valence=labels[1],
        session=np.array(["s"] * count),
        speaker=np.array(["a"] * count),
        external=None if external_dim == 0 else rng.standard_normal((count, external_dim), dtype=np.float32),
    )


def profile(preset: str, loop: str, runs: int) -> dict[str, Any]:
    from serlib.base import runtime

    runtime.configure(1)
    from serlib.base import config as config_module
    from serlib.models import autoencoder
    from serlib.models.acnn import choice as acnn_choice
    from serlib.models.acnn import feed as acnn_feed
    from serlib.models.acnn import model as acnn
    from serlib.models.acnn import reuse as acnn_reuse
    from serlib.protocol import run_files
    from serlib.protocol import runs as protocol_runs

    config = config_module.load_preset(preset)
    if preset == "paper":
        config = config_module.override(config, **{"acnn.epochs": PAPER_EPOCHS})
    frames, bands = config.features.logmel.max_frames, config.features.logmel.bands
    external = autoencoder.representation_dim(config.autoencoder)
    phases = Phases()
    with phases.timed("calibration"):  # once per machine (cached): 0 when the cache has the answer
        choice = acnn_choice.resolve(config.acnn, frames, bands)
    config = config_module.override(config, **{"acnn.implementation": choice.implementation})
    acnn_reuse._traced().clear()  # every loop traces its own models
    phases.wrap(acnn_reuse, "fresh_acnn", "build")
    phases.wrap(acnn, "predict_all", "predict")
    original_fit = acnn_feed.fit_acnn
    phases.wrap(acnn_feed, "fit_acnn", "train")
    timed_fit = acnn_feed.fit_acnn
    epoch_cpu: list[list[float]] = []

    def fit(*args: Any, callbacks: list[Any], **kwargs: Any) -> Any:
        epoch_cpu.append([])
        return timed_fit(*args, callbacks=[*callbacks, _EpochClock(epoch_cpu[-1])], **kwargs, loop=loop)

    acnn_feed.fit_acnn = fit
    utterance_epochs = 0
    settings = list(SIZES[preset])
    folder = Path(tempfile.mkdtemp(prefix="serlib-profile-run-"))
    per_run: list[float] = []
    train_counts: list[int] = []
    for index in range(runs):
        setting = settings[(index // 2) % len(settings)]
        dim = external if index % 2 else 0
        train_count, test_count = SIZES[preset][setting]
        train = _data(train_count, frames, bands, dim, seed=2 * index)
        test = _data(test_count, frames, bands, dim, seed=2 * index + 1)
        cpu = time.process_time()
        with phases.timed("run"):
            trained = protocol_runs.fit_predict(config, train, test, seed=index, setting=setting)
            with phases.timed("write"):
                run_files.write_run(
                    folder / f"run{index}",
                    trained,
                    test,
                    setting=setting,
                    condition="BL" if dim == 0 else "C",
                    seed=index,
                    fold=0,
                    n_train=len(train),
                )
        per_run.append(time.process_time() - cpu)
        utterance_epochs += train_count * config.acnn.epochs
        train_counts.append(train_count)
    acnn_feed.fit_acnn = original_fit
    per_utterance = choice.cpu_seconds_per_utterance.get(choice.implementation)
    return {
        "preset": preset,
        "loop": loop,
        "runs": runs,
        "implementation": choice.implementation,
        "cpu": dict(phases.cpu),
        "wall": dict(phases.wall),
        "per_run_cpu": per_run,
        "epoch_cpu": epoch_cpu,
        "train_counts": train_counts,
        "utterance_epochs": utterance_epochs,
        "step_cpu": None if per_utterance is None else per_utterance * utterance_epochs,
        "cpu_per_utterance": per_utterance,
    }


def _EpochClock(record: list[float]) -> Any:  # noqa: N802 - a Keras callback class made on demand
    """A Keras callback appending each epoch's CPU seconds (this process) to ``record``."""
    import keras

    class EpochClock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.start = time.process_time()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            record.append(time.process_time() - self.start)

    return EpochClock()


def steady_epoch_ratio(result: dict[str, Any]) -> float | None:
    """Median over runs and epochs after the first of (epoch CPU-s) / (calibrated step compute of it)."""
    import numpy as np

    per_utterance = result["cpu_per_utterance"]
    if not per_utterance:
        return None
    ratios = [
        cpu / (per_utterance * count)
        for epochs, count in zip(result["epoch_cpu"], result["train_counts"], strict=True)
        for cpu in epochs[1:]
    ]
    return float(np.median(ratios)) if ratios else None


def steady_step_cpu(result: dict[str, Any]) -> float | None:
    """The runs' step compute measured in the runs themselves: per run, the median CPU seconds of its
    epochs after the first (no trace, no per-run set-up) times its epochs, summed. Unlike the
    calibration, it is measured at the same moment and load as the runs it divides."""
    import numpy as np

    totals = [float(np.median(epochs[1:])) * len(epochs) for epochs in result["epoch_cpu"] if len(epochs) > 1]
    return sum(totals) if totals else None


def report(result: dict[str, Any]) -> str:
    cpu, wall = result["cpu"], result["wall"]
    lines = [
        f"== {result['preset']}, loop {result['loop']}, {result['runs']} runs "
        f"({result['implementation']}): CPU-s / wall-s per phase, summed"
    ]
    rest = cpu["run"] - sum(cpu.get(k, 0.0) for k in ("build", "train", "predict", "write"))
    for name in ("calibration", "build", "train", "predict", "write"):
        lines.append(f"  {name:8s} {cpu.get(name, 0.0):7.2f} {wall.get(name, 0.0):7.2f}")
    lines.append(f"  {'other':8s} {rest:7.2f}")
    lines.append(f"  {'run':8s} {cpu['run']:7.2f} {wall['run']:7.2f}")
    lines.append("  per run CPU-s: " + " ".join(f"{x:.2f}" for x in result["per_run_cpu"]))
    if result["step_cpu"]:
        step = result["step_cpu"]
        lines.append(
            f"  calibrated step compute {step:.2f} CPU-s ({result['utterance_epochs']} utterance-epochs): "
            f"training / steps = {cpu['train'] / step:.2f}, whole runs / steps = {cpu['run'] / step:.2f}, "
            f"an epoch after the first / its steps = {steady_epoch_ratio(result):.2f} (median)"
        )
    steady = steady_step_cpu(result)
    if steady:
        lines.append(
            f"  step compute from the runs' own epochs after the first {steady:.2f} CPU-s: "
            f"training / steps = {cpu['train'] / steady:.2f}, whole runs / steps = {cpu['run'] / steady:.2f}"
        )
    return "\n".join(lines)


def main() -> None:
    preset = sys.argv[1] if len(sys.argv) > 1 else "demo"
    loops = sys.argv[2].split(",") if len(sys.argv) > 2 else ["compiled", "keras"]
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 6
    start = startup_seconds()
    print(f"start-up (fresh interpreter, imports): {start['cpu']:.2f} CPU-s, {start['wall']:.2f} s wall")
    for loop in loops:
        print(report(profile(preset, loop, runs)), flush=True)


if __name__ == "__main__":
    main()
