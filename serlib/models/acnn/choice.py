"""``acnn.implementation: auto``: fast or reference kernels, chosen by measuring them on this machine.

The two implementations compute the same function within float32 rounding, but which one is faster
depends on the CPU: the fast kernels (``serlib.models.acnn.kernels``) were 1.16x the reference on an AMD
EPYC and 0.86x on an Intel Xeon with AVX-512/AMX (docs/performance.md). ``auto`` resolves to one of
them per process, in this order:

1. ``SERLIB_ACNN_IMPLEMENTATION`` = ``fast`` or ``reference`` forces it (no calibration);
2. ``acnn.jit_compile``: ``reference`` (XLA builds the reference layers anyway);
3. this process's earlier answer for the same key;
4. the machine's cache file (``cache_file()``: ``$XDG_CACHE_HOME/serlib`` or ``~/.cache/serlib``), keyed by
   the CPU (model name and instruction sets), the versions that decide the speed (TensorFlow, Keras,
   NumPy, the kernels' source), TensorFlow's thread count and the model's shape: a machine keeps its
   choice, so its results do not move between the two paths' last float digits from run to run;
5. a calibration (``calibrate``): a few training batches of each path on random log-Mel-shaped inputs
   zero-padded after the training data's lengths (a protocol passes them; 40-100 % of the frames
   otherwise), trained by the runs' own function (``run.train``) and interleaved, compared by CPU
   seconds per utterance; the answer is written to the cache
   (atomically, under a lock), one per length profile, since the fast kernels gain with shorter
   utterances (on the Intel Xeon: 0.78x the reference at 40-100 % of the frames, 1.10x at 20-50 %).

Only a protocol calls ``resolve``: it resolves ``auto`` once per output folder and records the answer
there (``serlib.protocol.implementation``), so a grid or a resumed grid never changes path halfway. The
model builder never does (``model.build_acnn`` times nothing and writes nothing).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from serlib.base.config import ACNNConfig
from serlib.base.files import exclusive_lock, write_json

log = logging.getLogger(__name__)

VARIABLE = "SERLIB_ACNN_IMPLEMENTATION"
PATHS = ("fast", "reference")
ROUNDS = 3  # interleaved rounds; each times BATCHES_PER_ROUND batches of each path (order alternates)
BATCHES_PER_ROUND = 2
SHORTEST = 0.4  # calibration lengths: uniform between 40 % and 100 % of max_frames (turns of real corpora)
CACHE_FORMAT = 1

_memo: dict[str, Choice] = {}


class ImplementationError(ValueError):
    """``SERLIB_ACNN_IMPLEMENTATION`` or the cache file is unusable; the message names the fix."""


@dataclass(frozen=True)
class Choice:
    """The implementation ``auto`` resolved to and why (``source``: environment, jit_compile, cache,
    calibration, or the output folder's record), with the calibration's CPU seconds per utterance."""

    implementation: str
    source: str
    cpu_seconds_per_utterance: dict[str, float] = field(default_factory=dict)
    key: str = ""

    def record(self) -> dict[str, Any]:
        """What ``metrics.json`` and ``provenance.json`` hold about the choice."""
        return {k: v for k, v in asdict(self).items() if v not in ({}, "")}


def forced() -> str | None:
    """``SERLIB_ACNN_IMPLEMENTATION`` when set (``fast`` or ``reference``), else None."""
    value = os.environ.get(VARIABLE, "").strip().lower()
    if not value or value == "auto":
        return None
    if value not in PATHS:
        raise ImplementationError(
            f"{VARIABLE}={value!r}: use 'fast' or 'reference' (or unset it to let serlib measure)"
        )
    return value


def cache_file() -> Path:
    """The machine's cache of calibrations: ``$XDG_CACHE_HOME/serlib/acnn-implementation.json``."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "serlib" / "acnn-implementation.json"


def machine_key(acnn: ACNNConfig, frames: int, bands: int) -> dict[str, Any]:
    """Everything the speed ratio of the two paths depends on: CPU, versions, threads, model shape."""
    import keras  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415

    from serlib.base import provenance, runtime  # noqa: PLC0415
    from serlib.models.acnn import kernels as acnn_kernels  # noqa: PLC0415

    cpu = provenance.cpu_info()
    kernels = Path(acnn_kernels.__file__).read_bytes()
    shape = acnn.model_dump(
        include={"filters", "kernel_frames", "conv_stride", "pool_size", "pool_stride", "batch_size"}
    )
    return {
        "cpu": cpu["model"],
        "cpu_features": cpu["features"],
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "onednn": runtime.onednn_setting(),
        "kernels_sha256": hashlib.sha256(kernels).hexdigest()[:16],
        "threads": tf.config.threading.get_intra_op_parallelism_threads() or runtime.requested_threads(),
        "shape": {"frames": frames, "bands": bands, **shape},
    }


def key_digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def fill_profile(lengths: Any, frames: int) -> str:
    """The calibration's length profile: the mean share of ``frames`` the utterances fill, to 0.1
    (``"0.4-1.0"``, uniform lengths from 40 % to 100 %, when the data's lengths are not known)."""
    if lengths is None or len(lengths) == 0:
        return f"{SHORTEST}-1.0"
    return f"{float(np.mean(np.clip(np.asarray(lengths), 1, frames))) / frames:.1f}"


def resolve(acnn: ACNNConfig, frames: int, bands: int, lengths: Any = None) -> Choice:
    """The implementation to build: the configured one, or for ``auto`` the machine's (module doc).

    ``lengths``: the real frames of the training utterances, when known: the fast kernels' gain grows as
    utterances get shorter, so the calibration draws its batch's lengths from them and the cache keeps
    one answer per length profile (``fill_profile``)."""
    if acnn.implementation != "auto":
        return Choice(acnn.implementation, "config")
    value = forced()
    if value is not None:
        return Choice(value, "environment")
    if acnn.jit_compile:
        return Choice("reference", "jit_compile")
    key = machine_key(acnn, frames, bands) | {"fill": fill_profile(lengths, frames)}
    digest = key_digest(key)
    if digest in _memo:
        return _memo[digest]
    path = cache_file()
    entry = _read_cache(path).get(digest)
    if entry is not None and entry.get("implementation") in PATHS:
        choice = Choice(entry["implementation"], "cache", entry.get("cpu_seconds_per_utterance", {}), digest)
    else:
        seconds = calibrate(acnn, frames, bands, lengths)
        best = "fast" if seconds["fast"] <= seconds["reference"] else "reference"
        choice = Choice(best, "calibration", seconds, digest)
        log.info(
            "ACNN implementation auto: %s (CPU seconds per training utterance: fast %.2e, reference %.2e)",
            best,
            seconds["fast"],
            seconds["reference"],
        )
        _write_cache(path, digest, key, choice)
    _memo[digest] = choice
    return choice


def _read_cache(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        log.warning("%s is unreadable; it is measured again and rewritten", path)
        return {}
    if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT:
        return {}
    entries = data.get("entries")
    return entries if isinstance(entries, dict) else {}


def _write_cache(path: Path, digest: str, key: dict[str, Any], choice: Choice) -> None:
    """Add the choice to the cache file (atomic, under a lock); a cache that cannot be written is
    logged, and this process keeps its answer in memory."""
    try:
        with exclusive_lock(path.with_name(path.name + ".lock")):
            entries = _read_cache(path)
            entries[digest] = {
                "key": key,
                "implementation": choice.implementation,
                "cpu_seconds_per_utterance": choice.cpu_seconds_per_utterance,
                "measured": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            write_json({"format": CACHE_FORMAT, "entries": entries}, path)
    except OSError as error:
        log.warning(
            "cannot write the ACNN implementation cache %s (%s); kept for this process only", path, error
        )


def cpu_seconds(path: str, work: Callable[[], None]) -> float:
    """CPU seconds (all threads of this process) that ``work`` takes; ``path`` names what it trains.

    The calibration's only clock: tests replace this function to force either outcome."""
    start = time.process_time()
    work()
    return time.process_time() - start


@contextlib.contextmanager
def _caller_random_state() -> Iterator[None]:
    """Python's and NumPy's global random states kept across a calibration, whose runs seed them."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def calibration_batch(
    acnn: ACNNConfig, frames: int, bands: int, lengths: Any = None, seed: int = 0, count: int | None = None
) -> tuple[dict, dict]:
    """``count`` (default ``acnn.batch_size``) utterances of random log-Mel-shaped inputs, zero-padded
    after lengths drawn from ``lengths`` (uniform between 40 % and 100 % of ``frames`` without them)."""
    rng = np.random.default_rng([seed, 35])
    count = acnn.batch_size if count is None else int(count)
    logmel = rng.standard_normal((count, frames, bands), dtype=np.float32) - 10.0
    if lengths is None or len(lengths) == 0:
        lengths = rng.integers(round(SHORTEST * frames), frames + 1, count)
    else:
        lengths = np.clip(rng.choice(np.asarray(lengths), count), 1, frames)
    logmel[np.arange(frames)[None, :] >= lengths[:, None]] = 0.0
    targets = {
        "emotion": rng.integers(0, 4, count).astype(np.int32),
        "arousal": rng.integers(0, 3, count).astype(np.int32),
        "valence": rng.integers(0, 3, count).astype(np.int32),
    }
    return {"logmel": logmel}, targets


def calibrate(acnn: ACNNConfig, frames: int, bands: int, lengths: Any = None) -> dict[str, float]:
    """CPU seconds per training utterance of each path, trained as a protocol's run trains
    (``run.train``, one epoch of ``BATCHES_PER_ROUND`` batches): one untimed (tracing) run each, then
    ``ROUNDS`` interleaved timed runs each, the order alternating; only the training is timed."""
    from serlib.models.acnn import run as acnn_run  # noqa: PLC0415 - resolving from a record or cache needs no TensorFlow

    inputs, targets = calibration_batch(
        acnn, frames, bands, lengths, count=BATCHES_PER_ROUND * acnn.batch_size
    )
    real = (inputs["logmel"] != 0).any(axis=-1).sum(axis=1)
    paths = {path: acnn.model_copy(update={"implementation": path, "jit_compile": False}) for path in PATHS}

    def run(path: str, timed: bool) -> float:
        clock = functools.partial(cpu_seconds, path) if timed else acnn_run.wall_seconds
        trained = acnn_run.train(paths[path], inputs, targets, seed=0, lengths=real, epochs=1, clock=clock)
        return trained.seconds

    with _caller_random_state():
        for path in PATHS:
            run(path, timed=False)  # traces the model's training step
        seconds = dict.fromkeys(PATHS, 0.0)
        for round_index in range(ROUNDS):
            for path in PATHS if round_index % 2 == 0 else PATHS[::-1]:
                seconds[path] += run(path, timed=True)
    utterances = ROUNDS * BATCHES_PER_ROUND * acnn.batch_size
    return {path: seconds[path] / utterances for path in PATHS}
