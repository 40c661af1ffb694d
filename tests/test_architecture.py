"""The package's shape: the layer contract and no import cycles (import-linter), and modules kept small."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LONGEST_MODULE = 620  # "under ~600 lines" (docs/architecture.md)


def _lint_imports() -> list[str]:
    executable = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if executable is None:
        pytest.fail("lint-imports (import-linter) is not installed in this environment; run make install")
    return [executable, "--config", str(ROOT / "pyproject.toml")]


def test_layers_and_no_cycles_hold():
    done = subprocess.run(_lint_imports(), capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "2 kept, 0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "upward", "chain"),
    [
        ("base/metrics.py", "serlib.protocol import grid", "serlib.base.metrics -> serlib.protocol.grid"),
        # the protocol trains and writes run folders; what reads them (Table 1) is the layer above
        (
            "protocol/grid.py",
            "serlib.evidence import table1",
            "serlib.protocol.grid -> serlib.evidence.table1",
        ),
        # the notebooks' helpers read runs through the evidence layer, never the other way round
        (
            "evidence/table1.py",
            "serlib.analysis import tsne",
            "serlib.evidence.table1 -> serlib.analysis.tsne",
        ),
    ],
)
def test_an_upward_import_breaks_the_contract(tmp_path, module, upward, chain):
    """The contract can fail: a copy of the package where a layer imports one above it."""
    copy = tmp_path / "serlib"
    shutil.copytree(ROOT / "serlib", copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / module).write_text((copy / module).read_text() + f"\nfrom {upward}  # upward\n")
    environment = {"PYTHONPATH": str(tmp_path), "PATH": str(Path(sys.executable).parent)}
    done = subprocess.run(
        _lint_imports()[:1] + ["--config", str(ROOT / "pyproject.toml")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=environment,
        timeout=120,
    )
    assert done.returncode != 0
    assert chain in done.stdout


def test_no_module_is_long_and_the_paper_s_autoencoder_reads_on_its_own():
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
        for path in (ROOT / "serlib").rglob("*.py")
    }
    long = {name: lines for name, lines in sizes.items() if lines > LONGEST_MODULE}
    assert not long, f"modules over {LONGEST_MODULE} lines: {long}"
    assert sizes["serlib/models/autoencoder/model.py"] < 300


# What notebook 01, notebook 05's results and the table commands import: reading data and results must
# not start TensorFlow (about 10 CPU-seconds per process on the development machine).
TENSORFLOW_FREE = (
    "serlib.analysis.data_overview",
    "serlib.analysis.results",
    "serlib.data.loaders",
    "serlib.evidence.comparisons",
    "serlib.evidence.svm_tables",
    "serlib.evidence.table1",
    "serlib.features.store",
    "serlib.protocol.run_files",
    "serlib.protocol.svm",
)


def test_reading_data_and_results_does_not_import_tensorflow():
    """Also a notebook's set-up cell: it leaves TensorFlow unimported, and a later import (here the
    ACNN runs' module; in the CLI loading a saved AE came first) still gets serlib's thread count before
    any op (``import serlib`` -> runtime.configure_when_tensorflow_loads)."""
    script = (
        "import importlib, sys\n"
        "from serlib.app import reproduce\n"
        "reproduce.setup_notebook('demo')\n"
        f"for name in {TENSORFLOW_FREE!r}:\n"
        "    importlib.import_module(name)\n"
        "    loaded = sorted(m for m in ('tensorflow', 'keras') if m in sys.modules)\n"
        "    assert not loaded, f'{name} imports {loaded}'\n"
        "import importlib.util\n"
        "assert importlib.util.find_spec('tensorflow') is not None  # a lookup, as libraries probe\n"
        "import serlib.protocol.runs\n"
        "assert 'keras' in sys.modules, 'the check sees a TensorFlow import'\n"
        "import tensorflow as tf\n"
        "threads = tf.config.threading\n"
        "assert (threads.get_intra_op_parallelism_threads(), threads.get_inter_op_parallelism_threads()) == (3, 3)\n"
    )
    # 3 threads: neither TensorFlow's default (0) nor what pytest-xdist gives a worker on a small machine
    environment = {**os.environ, "SERLIB_TF_THREADS": "3"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=environment
    )
    assert done.returncode == 0, done.stderr[-3000:]
