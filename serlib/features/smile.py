"""openSMILE inside this process: its library loaded safely beside TensorFlow, and signals handed to it.

The ``opensmile`` package computes the log-Mel reference engine and the eGeMAPS functionals.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from serlib.data.audio import AudioError

# The opensmile package hands openSMILE int16 samples (x * 32768, truncated); openSMILE's external
# source turns them back into floats dividing by 32767 (measured: with 32768 every numpy value sat
# 2 ln(32768/32767) = 6.1e-5 below openSMILE's; with 32767 the mean difference is 4e-8).
OPENSMILE_SAMPLE_DIVISOR = 32767.0


def _bind_opensmile_to_itself() -> None:
    """Load openSMILE's library with RTLD_DEEPBIND before ``import opensmile`` does (Linux/glibc).

    TensorFlow's libtensorflow_framework exports Ooura's FFT (``rdft``, ``cdft``, ... in double
    precision) under the names openSMILE's library uses for its own float FFT. Loaded after
    TensorFlow, openSMILE bound to TensorFlow's and corrupted memory ("malloc(): invalid size").
    DEEPBIND makes the library use its own symbols; opensmile's later load returns this handle.
    """
    deepbind = getattr(os, "RTLD_DEEPBIND", 0)
    spec = importlib.util.find_spec("opensmile")
    if not deepbind or spec is None or not spec.submodule_search_locations or platform.system() != "Linux":
        return
    root = Path(os.path.realpath(spec.submodule_search_locations[0])) / "core" / "bin"
    library = root / f"manylinux_2_17_{platform.machine().lower()}" / "libSMILEapi.so"
    if library.is_file():
        ctypes.CDLL(str(library), mode=os.RTLD_NOW | deepbind)


_bind_opensmile_to_itself()


def to_opensmile(signal: np.ndarray) -> np.ndarray:
    """[1, n] float32 clipped to the int16 range: opensmile multiplies by 32768 and casts to int16,
    which would wrap a sample of exactly +1.0 around to -1.0."""
    x = np.asarray(signal, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"expected a mono signal of shape [samples], got shape {x.shape}")
    if not np.isfinite(x).all():
        raise AudioError("signal holds NaN or infinite samples")
    return np.clip(x, -1.0, 32767.0 / 32768.0)[np.newaxis, :]


def opensmile_version() -> str:
    """The installed opensmile package's version (part of the feature store keys)."""
    try:
        return version("opensmile")
    except PackageNotFoundError:  # pragma: no cover
        return "unknown"
