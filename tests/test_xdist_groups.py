"""make test's grouping holds under pytest-xdist: a module, and the modules of one shared group, run
whole in one test process (tests/xdist_groups.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import xdist_groups

TESTS = Path(__file__).parent
RECORDING_TEST = """
import os
from pathlib import Path
import pytest

@pytest.mark.parametrize("case", range({cases}))
def test_case(case):
    name = Path(__file__).stem
    line = f"{{name}} {{case}} {{os.environ['PYTEST_XDIST_WORKER']}}\\n"
    with open(os.environ["GROUPS_RECORD"], "a") as record:
        record.write(line)
"""


def test_group_of_names_the_shared_group_or_the_module():
    assert xdist_groups.group_of("tests/test_logs.py::test_x[1]") == "tiny_reference"
    assert xdist_groups.group_of("tests/test_predict.py::test_y") == "tiny_reference"
    assert xdist_groups.group_of("tests/test_acnn.py::TestA::test_z") == "test_acnn"


def test_modules_of_one_group_run_in_one_process_under_xdist(tmp_path: Path):
    # Two modules of the shared tiny_reference group (6 tests each) and three modules of their own with
    # more tests (20 each): xdist's own scheduler would start those first (it sorts groups by their
    # number of tests); LONGEST_FIRST names tiny_reference, so it must be the first group its process runs.
    suite = tmp_path / "suite"
    suite.mkdir()
    cases = {"test_logs": 6, "test_predict": 6, "test_alpha": 20, "test_beta": 20, "test_gamma": 20}
    for name, count in cases.items():
        (suite / f"{name}.py").write_text(RECORDING_TEST.format(cases=count), encoding="utf-8")
    (suite / "conftest.py").write_text(
        "from xdist_groups import pytest_collection_modifyitems, pytest_xdist_make_scheduler  # noqa: F401\n",
        encoding="utf-8",
    )
    record = tmp_path / "record.txt"
    environment = {**os.environ, "GROUPS_RECORD": str(record), "PYTHONPATH": str(TESTS)}
    command = [sys.executable, "-m", "pytest", *"-q -p no:cacheprovider -n 2 --dist loadgroup".split()]
    result = subprocess.run(
        [*command, "--rootdir", str(suite), str(suite)],
        cwd=suite,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr

    workers: dict[str, set[str]] = defaultdict(set)
    order: dict[str, list[str]] = defaultdict(list)  # each process's modules in the order it ran them
    for line in record.read_text(encoding="utf-8").splitlines():
        module, _, worker = line.split()
        workers[module].add(worker)
        if module not in order[worker]:
            order[worker].append(module)
    assert sorted(workers) == sorted(cases)
    assert all(len(used) == 1 for used in workers.values()), dict(workers)  # each module in one process
    assert workers["test_logs"] == workers["test_predict"], dict(workers)  # the shared group together
    (worker,) = workers["test_logs"]
    assert set(order[worker][:2]) == {"test_logs", "test_predict"}, dict(order)  # the longest group first
