"""Shared benchmark helpers: machine description, measured GEMM rate, timing, peak memory and tables.

The GEMM rate is the ceiling achieved FLOP/s are compared with: the best of numpy's BLAS and
TensorFlow's matmul on large float32 square matrices, measured in the same run as the benchmarks (so
the comparison sees the same load from other processes). Peak memory is the highest resident set size
of this process and its children (worker processes), sampled every few milliseconds while a block runs.
"""

from __future__ import annotations

import contextlib
import os
import platform
import resource
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

GEMM_SIZE = 2048
SAMPLE_INTERVAL_S = 0.01


def cores() -> int:
    """CPU cores available to this process."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def load_average() -> float:
    """The 1-minute load average (other processes competing for the cores)."""
    try:
        return float(os.getloadavg()[0])
    except OSError:  # pragma: no cover
        return float("nan")


def load_averages() -> str:
    """The 1-, 5- and 15-minute load averages, as ``uptime`` prints them ("5.87 / 4.99 / 4.98")."""
    try:
        return " / ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:  # pragma: no cover
        return "unknown"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gib() -> float:
    try:
        with open("/proc/meminfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return float("nan")


def blas() -> str:
    """numpy's BLAS library and version, e.g. 'scipy-openblas 0.3.31'."""
    try:
        info = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{info.get('name', '?')} {info.get('version', '')}".strip()
    except Exception:  # noqa: BLE001 - informational only
        return "unknown"


def describe_machine() -> dict[str, Any]:
    """CPU, cores, memory, library versions, BLAS, accelerators and the current load."""
    import keras
    import tensorflow as tf

    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    return {
        "cpu": cpu_model(),
        "cores": cores(),
        "memory_gib": round(memory_gib(), 1),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": blas(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on)"),
        "gpus": ", ".join(gpus) or "none",
        "load_average_1_5_15min": load_averages(),
    }


def best_time(function: Callable[[], Any], repeats: int = 3, warmup: int = 1) -> float:
    """The shortest wall time of ``repeats`` calls after ``warmup`` untimed ones (robust to load spikes)."""
    for _ in range(warmup):
        function()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def gemm_rates(size: int = GEMM_SIZE, repeats: int = 5) -> dict[str, float]:
    """Dense float32 matrix-multiply rate in GFLOP/s (2 n^3 FLOPs) of numpy and of TensorFlow."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    flops = 2.0 * size**3
    numpy_time = best_time(lambda: a @ b, repeats)
    ta, tb = tf.constant(a), tf.constant(b)
    matmul = tf.function(lambda x, y: tf.linalg.matmul(x, y))
    tf_time = best_time(lambda: matmul(ta, tb).numpy(), repeats)
    rates = {"numpy": flops / numpy_time / 1e9, "tensorflow": flops / tf_time / 1e9}
    rates["best"] = max(rates.values())
    return {k: round(v, 1) for k, v in rates.items()}


def gemm_per_cpu_second(size: int = GEMM_SIZE, repeats: int = 5) -> float:
    """TensorFlow float32 GEMM GFLOP per CPU-second of this process: the work-efficiency ceiling, which
    other processes taking whole cores change much less than the wall-clock rate."""
    import tensorflow as tf

    a = tf.random.uniform((size, size), seed=0)
    matmul = tf.function(lambda x: tf.reduce_sum(tf.linalg.matmul(x, x)))
    matmul(a).numpy()
    start = cpu_seconds()
    for _ in range(repeats):
        matmul(a).numpy()
    return 2.0 * size**3 * repeats / (cpu_seconds() - start) / 1e9


def _tree_rss(process: Any) -> int:
    import psutil

    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            total += member.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total


@dataclass
class PeakMemory:
    """Peak resident memory (MiB) of this process tree while a ``peak_memory()`` block ran."""

    start_mib: float = 0.0
    peak_mib: float = 0.0
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def increase_mib(self) -> float:
        return max(0.0, self.peak_mib - self.start_mib)


@contextmanager
def peak_memory(interval_s: float = SAMPLE_INTERVAL_S, pid: int | None = None) -> Iterator[PeakMemory]:
    """Sample the RSS of a process (default: this one) and its children in a thread; ``peak_mib`` is the
    highest sum.

    Sampling misses spikes shorter than ``interval_s``; ``ru_maxrss`` (``max_rss_mib``) does not, but
    it is a high-water mark of the process's whole life. Sampling another process (``pid``) keeps the
    sampler thread out of it (``serlib.features.store`` forks workers only from a single-threaded process).
    """
    import psutil

    me = psutil.Process(pid)
    result = PeakMemory(start_mib=_tree_rss(me) / 2**20)
    result.peak_mib = result.start_mib

    def sample() -> None:
        while not result._stop.wait(interval_s):
            try:
                result.peak_mib = max(result.peak_mib, _tree_rss(me) / 2**20)
            except psutil.NoSuchProcess:  # the sampled process has ended
                return
            result.samples += 1

    thread = threading.Thread(target=sample, name="peak-memory", daemon=True)
    thread.start()
    try:
        yield result
    finally:
        result._stop.set()
        thread.join()
        with contextlib.suppress(psutil.NoSuchProcess):
            result.peak_mib = max(result.peak_mib, _tree_rss(me) / 2**20)


def max_rss_mib() -> float:
    """``ru_maxrss`` of this process in MiB: its highest resident memory since it started."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def markdown_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """``rows`` as a Markdown table with one column per key in ``columns``; a missing or None value is an
    empty cell, so rows of different kinds can share one table."""
    lines = [" | ".join(columns), " | ".join("---" for _ in columns)]
    for row in rows:
        lines.append(" | ".join("" if row.get(column) is None else str(row[column]) for column in columns))
    return "\n".join(lines)
