"""Shared fixtures: where the real public speech is (SERLIB_DATA) and the auDeep golden arrays."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# make test's distribution over test processes (pytest-xdist): whole modules and groups of modules
from xdist_groups import pytest_collection_modifyitems, pytest_xdist_make_scheduler  # noqa: F401

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

# Property tests (hypothesis) draw the same examples on every run and machine, so that a test run does
# not pass or fail by the luck of a draw (a too-tight 8-bit tolerance once failed one CI run in many).
# HYPOTHESIS_PROFILE=explore draws new examples each run, to look for such cases on purpose.
settings.register_profile("reproducible", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "reproducible"))


def pytest_configure(config: pytest.Config) -> None:
    """TensorFlow's threads and op determinism fixed before any test runs a model (serlib.runtime),
    so every in-process result is computed with the settings a Dask worker or a child process uses;
    under pytest-xdist each test process gets its share of the cores. They are set the moment
    TensorFlow is imported, so a process that runs no model (xdist's controller) never imports it
    (~8 CPU-s before the test processes start)."""
    from serlib.base import runtime

    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1 and not os.environ.get(runtime.THREADS_VARIABLE):
        # pytest-xdist (make test: -n logical): the cores are shared out between the test processes, and
        # the child processes and Dask workers a test starts inherit the same count.
        os.environ[runtime.THREADS_VARIABLE] = str(max(1, runtime.available_cores() // workers))
    runtime.configure_when_tensorflow_loads()
    # acnn.implementation auto would time both ACNN paths on the test machine and pick by speed: tests never
    # depend on timings, so the suite uses the fast kernels (the default before auto); the tests of auto
    # (tests/test_acnn_choice.py) unset this and force each outcome through a fake clock.
    os.environ.setdefault("SERLIB_ACNN_IMPLEMENTATION", "fast")


def _folder(variable: str) -> Path | None:
    value = os.environ.get(variable)
    if not value:
        return None
    path = Path(value)
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real speech (emodb/, ravdess/, librispeech/, formats/); skips when absent."""
    path = _folder("SERLIB_DATA")
    if path is None:
        pytest.skip("SERLIB_DATA is not set to the shared real-speech folder")
    return path


@pytest.fixture(scope="session")
def golden_audeep() -> Path:
    """The auDeep golden arrays (spectrograms.npz); skips when absent."""
    path = _folder("SERLIB_GOLDEN")
    if path is None or not (path / "audeep" / "spectrograms.npz").is_file():
        pytest.skip("SERLIB_GOLDEN is not set to the shared golden folder")
    return path / "audeep"
