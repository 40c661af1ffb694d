"""TensorFlow's numerical settings, set the same way in every process that trains or runs a model.

Floating-point sums come out in another order when TensorFlow (Eigen and oneDNN) splits an op over
another number of threads, so a run's numbers depend on the intra-op thread count as much as on its
seed. serlib therefore fixes that count explicitly, in every process it runs a model in: the command
line, a notebook kernel, a test session, a Dask worker (which gets the submitting process's count,
not its own core count). The contract (docs/reliability.md, section 3): same seed, same machine, same
settings -> byte-identical files, whichever process or path computed them.

``SERLIB_TF_THREADS`` chooses the count (default: the cores this process may use). Threads cannot
be changed once TensorFlow has run an op; a process whose TensorFlow was started before serlib could
set them keeps its own count, and ``configure`` says so in one warning.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from types import ModuleType
from typing import Any

log = logging.getLogger(__name__)

THREADS_VARIABLE = "SERLIB_TF_THREADS"
ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
TF_LOG_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
LOG_LEVEL_VARIABLE = "SERLIB_LOG_LEVEL"  # serlib.base.logs: INFO or DEBUG also shows TensorFlow's C++ lines
# What TensorFlow 2.21's C++ code writes to file descriptor 2 while it is imported, whatever
# TF_CPP_MIN_LOG_LEVEL says: absl's preamble and INFO lines ("I0000 00:00:... port.cc:153] oneDNN
# custom operations are on ..."), logged before anything has called absl::InitializeLog().
NATIVE_START_UP = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|I\d{4} [\d:.]+\s+\d+ [\w.\-]+:\d+\] .*)$"
)
_STATE: dict[str, Any] = {}


class RuntimeSettingsError(ValueError):
    """A runtime setting (environment variable) is invalid; the message names it and the fix."""


class _WithoutRetracingWarnings(logging.Filter):
    """Drops TensorFlow's "N out of the last N calls ... triggered tf.function retracing" warning.

    Every protocol run builds a new ACNN (a fresh model per fold and seed is the protocol), so Keras
    traces new train and predict functions on purpose; the warning would fill notebooks and logs.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask, not the machine's total)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def requested_threads() -> int:
    """The intra-op thread count serlib asks TensorFlow for: ``SERLIB_TF_THREADS`` or all cores."""
    text = os.environ.get(THREADS_VARIABLE, "").strip()
    if not text:
        return available_cores()
    try:
        threads = int(text)
    except ValueError:
        raise RuntimeSettingsError(
            f"{THREADS_VARIABLE}={text!r} is not a whole number; set it to the TensorFlow threads per "
            "process (e.g. 1) or unset it to use every core"
        ) from None
    if threads < 1:
        raise RuntimeSettingsError(f"{THREADS_VARIABLE}={threads} must be at least 1")
    return threads


def onednn_setting() -> str:
    """oneDNN's switch as TensorFlow reads it at import: ``on`` unless TF_ENABLE_ONEDNN_OPTS is 0."""
    value = os.environ.get(ONEDNN_VARIABLE, "").strip().lower()
    return "off" if value in ("0", "false") else "on"


def configure(threads: int | None = None) -> dict[str, Any]:
    """Set TensorFlow's intra- and inter-op threads to ``threads`` (default ``requested_threads()``);
    with a GPU visible, also switch op determinism on. Returns the settings in force (``settings()``).

    Call it before the first model is built. Repeated calls with the same count cost nothing; a
    different count after TensorFlow has started is refused by TensorFlow and logged once. On the CPU
    the kernels are deterministic for a fixed thread count, and op determinism stays off outside AE
    training (which switches it on itself): with it on, TensorFlow 2.21's input pipeline logs a
    spurious "NodeDef mentions attribute use_unbounded_threadpool" error line at every ACNN ``fit``.
    """
    wanted = requested_threads() if threads is None else int(threads)
    quiet_tensorflow_environment()
    import tensorflow as tf  # noqa: PLC0415 - the base layer stays light: TensorFlow only when used

    if not _STATE.get("filtered"):
        tf.get_logger().addFilter(_WithoutRetracingWarnings())
        _STATE["filtered"] = True

    current = tf.config.threading.get_intra_op_parallelism_threads()
    if current != wanted:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(wanted)
            tf.config.threading.set_inter_op_parallelism_threads(wanted)
        except RuntimeError:
            if _STATE.get("warned") != wanted:
                log.warning(
                    "TensorFlow started with %s intra-op threads before serlib could set %d; results "
                    "computed in this process can differ in the last digits from serlib runs elsewhere "
                    "(start serlib's work in a fresh process, or set %s)",
                    current or "its default number of",
                    wanted,
                    THREADS_VARIABLE,
                )
                _STATE["warned"] = wanted
    if tf.config.list_physical_devices("GPU"):
        tf.config.experimental.enable_op_determinism()  # cuDNN autotuning and atomics otherwise
    return settings()


def configure_when_tensorflow_loads() -> None:
    """``configure()`` now if TensorFlow is already imported, else the moment it is imported.

    ``import serlib`` calls it: a process that only reads data or results (notebook 01, ``serlib
    table``) never pays TensorFlow's import (~10 CPU-s), and one that loads or builds a model gets
    serlib's threads before its first op, wherever that op is (loading a saved AE runs ops too).
    """
    quiet_tensorflow_environment()  # read by TensorFlow when it is imported, so set before
    if "tensorflow" in sys.modules:
        configure()
    elif not any(isinstance(finder, _ConfigureAfterTensorFlowImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _ConfigureAfterTensorFlowImport())


class _ConfigureAfterTensorFlowImport(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` with the other finders and runs ``configure()`` right after its module has
    executed (before any caller can run an op); leaves ``sys.meta_path`` then. A mere lookup
    (``importlib.util.find_spec``) that does not import leaves it in place."""

    def __init__(self) -> None:
        self._finding = False

    def find_spec(self, name: str, path: Any = None, target: ModuleType | None = None) -> Any:
        if name != "tensorflow" or self._finding:
            return None
        self._finding = True
        try:
            spec = importlib.util.find_spec(name)  # the other finders, as without this one
        finally:
            self._finding = False
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def load_then_configure(module: ModuleType) -> None:
            with native_start_up_filtered():
                load(module)
            if self in sys.meta_path:
                sys.meta_path.remove(self)
            configure()

        spec.loader.exec_module = load_then_configure  # type: ignore[method-assign]
        return spec


def _native_logs_wanted() -> bool:
    return os.environ.get(LOG_LEVEL_VARIABLE, "").strip().upper() in ("DEBUG", "INFO", "NOTSET")


def quiet_tensorflow_environment() -> None:
    """``TF_CPP_MIN_LOG_LEVEL=2`` (TensorFlow's own C++ INFO and WARNING lines off) unless it is set or
    ``SERLIB_LOG_LEVEL`` asks for INFO lines. TensorFlow reads it once, when it is imported; child
    processes started later (notebook kernels, Dask workers) inherit it."""
    if not _native_logs_wanted():
        os.environ.setdefault(TF_LOG_VARIABLE, "2")


@contextlib.contextmanager
def native_start_up_filtered() -> Iterator[None]:
    """Drop TensorFlow's C++ start-up lines (``NATIVE_START_UP``) written to file descriptor 2 inside the
    block; everything else written there is passed on to ``sys.stderr`` at the end.

    TF_CPP_MIN_LOG_LEVEL does not reach them: TensorFlow 2.21 logs them through absl before absl's
    log is initialised, straight to the process's standard error, so in a notebook they become red
    stderr output. ``SERLIB_LOG_LEVEL=INFO`` keeps them.
    """
    if _native_logs_wanted():
        yield
        return
    try:
        sys.stderr.flush()
    except (AttributeError, ValueError):
        pass
    try:
        saved = os.dup(2)
    except OSError:  # no file descriptor 2 (a detached process): nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf-8", errors="replace")
            kept = [
                line
                for line in text.splitlines(keepends=True)
                if not NATIVE_START_UP.match(line.rstrip("\n"))
            ]
            if kept:
                try:
                    sys.stderr.write("".join(kept))
                    sys.stderr.flush()
                except (AttributeError, ValueError):
                    pass


def settings() -> dict[str, Any]:
    """The numerical settings of this process, as recorded in every run's ``metrics.json``.

    ``intra_op_threads`` is 0 when TensorFlow chose its own count (it was started before
    ``configure``); the other keys: ``inter_op_threads``, ``onednn`` (on/off), ``op_determinism``.
    """
    import tensorflow as tf  # noqa: PLC0415 - the base layer stays light: TensorFlow only when used
    from tensorflow.python.framework import config as tf_config  # noqa: PLC0415 - (not public API)

    return {
        "intra_op_threads": int(tf.config.threading.get_intra_op_parallelism_threads()),
        "inter_op_threads": int(tf.config.threading.get_inter_op_parallelism_threads()),
        "onednn": onednn_setting(),
        "op_determinism": bool(tf_config.is_op_determinism_enabled()),
    }
