"""How ``make test`` (pytest-xdist, 2 processes) shares the test modules out, as hooks that
``conftest.py`` imports.

Each test module runs whole in one test process, so its module fixtures are built once; modules that
share one expensive result form one group (the tiny protocol run of ``tiny_pipeline.reference_run``
serves three); the longest groups start first, so that no process idles at the end while the other
finishes a long module.

The grouping is a scheduler of our own (``pytest_xdist_make_scheduler``) that reads the module from
each test's node ID. It replaces xdist's ``xdist_group`` marks, which pytest 9.2 silently ignores:
xdist 3.8 writes the group into the node ID's legacy field, which pytest 9.2 no longer reads
(pytest-xdist issue #1386), so until 2026-12-01 every module here was spread over both processes and
the tiny reference run was computed twice. ``tests/test_xdist_groups.py`` runs a small suite under
``-n 2`` and checks that the grouping holds.
"""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

SHARED_GROUPS = {
    "test_interruption": "tiny_reference",
    "test_logs": "tiny_reference",
    "test_predict": "tiny_reference",
    "test_listening": "tiny_reference",  # its slow test reads the tiny protocol run
    "test_notebooks": "tiny_notebooks",  # the tiny reproduction of the five notebooks (tiny_reproduction)
    "test_browser": "tiny_notebooks",
}
# Group sums of the longest tests of a fresh-clone CI run (2026-12-07, --durations=30, the 2-core CI machine:
# tiny_notebooks ~190 s, tiny_reference ~90 s, test_check ~60 s, test_cluster ~54 s, test_autoencoder
# ~48 s, Emo-DB 39 s, test_memory 23 s, ASED 20 s; the rest from the 2026-12-01 table); only the order
# matters. xdist hands each free process the next group in this order (pytest_xdist_make_scheduler).
LONGEST_FIRST = (
    "tiny_notebooks",
    "tiny_reference",
    "test_check",
    "test_cluster",
    "test_autoencoder",
    "test_emodb_validation",
    "test_experiments",
    "test_memory",
    "test_ased",
    "test_acnn",
    "test_features",
    "test_real_speech_configs",
    "test_determinism",
    "test_demo_corpus",
    "test_analysis",
)


def group_of(nodeid: str) -> str:
    """The group of a test: its module's shared group, else the module itself."""
    module = PurePosixPath(nodeid.split("::", 1)[0]).stem
    return SHARED_GROUPS.get(module, module)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The longest groups first (xdist hands out groups in collection order)."""
    rank = {name: position for position, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(group_of(item.nodeid), len(rank)))


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """Under ``--dist loadgroup`` (make test): whole groups to one process each, by ``group_of``."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling  # noqa: PLC0415 - only with pytest-xdist running

    # xdist's scope scheduler re-sorts the groups by their number of tests (--loadscope-reorder, on by
    # default), which undid LONGEST_FIRST: the long groups with few tests (test_cluster, Emo-DB) started
    # last, and one process finished them alone. Keep the collection order.
    config.option.loadscopereorder = False

    class ModuleGroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid)

    return ModuleGroupScheduling(config, log)
