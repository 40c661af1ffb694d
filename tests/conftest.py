"""Shared fixtures: where the real public speech is (SERLIB_DATA) and the auDeep golden arrays."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

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
    under pytest-xdist each test process gets its share of the cores."""
    from serlib.base import runtime

    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1 and not os.environ.get(runtime.THREADS_VARIABLE):
        # pytest-xdist (make test: -n logical): the cores are shared out between the test processes, and
        # the child processes and Dask workers a test starts inherit the same count.
        os.environ[runtime.THREADS_VARIABLE] = str(max(1, runtime.available_cores() // workers))
    runtime.configure()


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


# -- distribution over test processes (make test: pytest-xdist, --dist loadgroup) ------------------------
# Modules that share one expensive result run in the same test process, so it is computed once: the
# tiny protocol run of tiny_pipeline.reference_run serves these three.
SHARED_GROUPS = {
    "test_interruption": "tiny_reference",
    "test_logs": "tiny_reference",
    "test_predict": "tiny_reference",
}
# The longest groups start first, so that no process idles at the end while another finishes a long
# module (measured with the --durations table that make test prints; only the order depends on it).
LONGEST_FIRST = (
    "tiny_reference",
    "test_notebooks",
    "test_experiments",
    "test_autoencoder",
    "test_emodb_validation",
    "test_cluster",
    "test_browser",
    "test_memory",
    "test_real_speech_configs",
    "test_features",
    "test_determinism",
    "test_acnn",
)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Each module is one xdist group (its module fixtures are built once), the tiny-reference modules
    share one, and the longest groups come first."""
    rank = {name: position for position, name in enumerate(LONGEST_FIRST)}

    def group(item: pytest.Item) -> str:
        module = Path(str(item.fspath)).stem
        return SHARED_GROUPS.get(module, module)

    for item in items:
        item.add_marker(pytest.mark.xdist_group(group(item)))
    items.sort(key=lambda item: rank.get(group(item), len(rank)))
