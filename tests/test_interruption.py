"""Interruption: stages killed with SIGKILL at seeded random points, or stopped with Ctrl-C, then re-run.

After every kill no half-written file is readable under a final name (temporary files start with a
dot and are never read), and the re-run ends with exactly the results of an uninterrupted run:
feature stores, autoencoder losses and representations, ACNN predictions, metrics and Table 1.
``serlib reproduce`` (papermill) is not killed here: it only chains these stages (too slow for the
budget); its notebooks call the same resumable functions.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from tiny_pipeline import assert_no_pickle_files, assert_plain_hdf5, reference_run, run_child, tiny_config

from serlib.app import cli, predict
from serlib.base import config as config_module
from serlib.base import config_yaml
from serlib.data import loaders
from serlib.features import store

SEED = 20190512  # the kill points are random but reproducible
TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


def _visible_files(root: Path) -> list[Path]:
    """Files under final names: not temporary (a dot name or inside a dot folder), not the demo audio."""
    files = []
    for path in sorted(root.rglob("*")):
        parts = path.relative_to(root).parts
        if path.is_file() and not any(part.startswith(".") for part in parts) and path.suffix != ".wav":
            files.append(path)
    return files


def assert_final_files_valid(root: Path) -> None:
    """Every file under a final name is complete: HDF5 opens and is plain, .keras loads in safe mode,
    JSON/CSV parse; a finished run (metrics.json) has all its files; a checkpoint named by the AE's
    training state exists."""

    for path in _visible_files(root):
        if path.suffix == ".h5":
            assert_plain_hdf5(path)
        elif path.suffix == ".keras":
            predict.safe_load_model(path)
        elif path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
        elif path.suffix == ".csv":
            pd.read_csv(path)
        if path.name == "metrics.json":
            for sibling in ("predictions.csv", "hidden.h5"):
                assert (path.parent / sibling).is_file(), f"{path} without {sibling}"
            if "cross" in path.parts:
                assert (path.parent / "model.keras").is_file() and (path.parent / "model.json").is_file()
        if path.name == "training_state.json":
            state = json.loads(path.read_text(encoding="utf-8"))
            if state.get("checkpoint"):
                assert (path.parent / state["checkpoint"]).is_file(), f"{path} names a missing checkpoint"
    assert_no_pickle_files(root)


# -- feature extraction ----------------------------------------------------------------------------------
_EXTRACT_CHILD = """
import signal, sys, time
# As started from a terminal: Ctrl-C raises KeyboardInterrupt (a process started by a pytest-xdist
# worker inherits SIGINT ignored, and Python then installs no handler of its own).
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.path[:0] = [{tests!r}, {root!r}]
from tiny_pipeline import tiny_config
from pathlib import Path
from serlib.app import cli
from serlib.features import extraction, store
extraction.TASK_SIZE = 2
task = extraction.extract_task
marks = 0
def marked(*args, **kwargs):
    global marks
    results = task(*args, **kwargs)
    marks += 1
    print("MARK store", flush=True)
    if marks == {hold_at}:
        time.sleep(120)  # held here until the parent's signal: it cannot finish first, whatever the load
    return results
extraction.extract_task = marked
mode = sys.argv[1]
if mode == "cli":
    sys.exit(cli.main(["extract", "--config", sys.argv[2], "--corpus", "emo", "--extractor", "logmel"]))
config = tiny_config(Path(sys.argv[2]), Path(sys.argv[3]))
for extractor in ("logmel", "spectrogram"):
    store.extract_configured(config, "emo", extractor, progress=False)
print("MARK done", flush=True)
"""


def _extraction_child(mode: str, target: str, data: Path, hold_at: int = 0) -> subprocess.Popen:
    """The extraction in a child process that prints a mark after each task; with ``hold_at`` > 0 it
    stops after that many marks and waits (up to 2 minutes) for the test's signal."""
    code = _EXTRACT_CHILD.format(tests=str(TESTS), root=str(ROOT), hold_at=hold_at)
    return subprocess.Popen(
        [sys.executable, "-c", code, mode, target, str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _wait_for_marks(child: subprocess.Popen, count: int) -> int:
    seen = 0
    assert child.stdout is not None
    for line in child.stdout:
        if line.startswith("MARK store"):
            seen += 1
            if seen == count:
                break
    return seen


def _stores(config: config_module.Config, corpus: str = "emo") -> dict[str, dict[str, np.ndarray]]:
    arrays = {}
    for extractor in ("logmel", "spectrogram"):
        features = store.extract_configured(config, corpus, extractor, progress=False)
        with h5py.File(features.path, "r") as handle:
            arrays[extractor] = {name: handle[name][...] for name in ("features", "lengths", "chunk_numbers")}
            arrays[extractor]["ids"] = np.asarray(features.ids)
    return arrays


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory) -> Path:
    """One tiny demo corpus for the extraction tests (each test has its own cache)."""
    data = tmp_path_factory.mktemp("interruption_data") / "data"
    loaders.load_configured(tiny_config(data.parent), "emo")
    return data


@pytest.fixture(scope="module")
def reference_stores(tmp_path_factory, demo_data):
    return _stores(tiny_config(tmp_path_factory.mktemp("extract_reference"), demo_data))


def _assert_same_stores(got: dict, expected: dict) -> None:
    for extractor, arrays in expected.items():
        for name, values in arrays.items():
            np.testing.assert_array_equal(got[extractor][name], values, err_msg=f"{extractor} {name}")


def test_extraction_killed_at_a_random_task_then_rerun(tmp_path, demo_data, reference_stores):
    config = tiny_config(tmp_path, demo_data)
    manifest = loaders.load_configured(config, "emo")
    tasks = 2 * math.ceil(len(manifest) / 2)  # logmel then spectrogram, 2 utterances per task
    rng = random.Random(SEED)
    kill_at = rng.randint(1, tasks - 1)
    child = _extraction_child("kill", str(tmp_path), demo_data)
    assert _wait_for_marks(child, kill_at) == kill_at
    time.sleep(rng.uniform(0.0, 0.05))
    child.send_signal(signal.SIGKILL)
    assert child.wait(timeout=60) == -signal.SIGKILL
    assert_final_files_valid(tmp_path)
    leftovers = [p.name for p in (tmp_path / "cache" / "features").iterdir() if p.name.startswith(".")]
    _assert_same_stores(_stores(config), reference_stores)  # the re-run ignores the leftover temp files
    assert all(not name.endswith(".h5") for name in leftovers), leftovers


def test_damaged_store_file_is_recomputed(tmp_path, demo_data, reference_stores):
    """A final store file damaged after the fact (disk full, copy cut off) is not read but recomputed."""
    config = tiny_config(tmp_path, demo_data)
    path = store.extract_configured(config, "emo", "logmel", progress=False).path
    data = path.read_bytes()
    for damaged in (data[: len(data) // 2], b"\x89HDF\r\n\x1a\n" + bytes(500), b""):
        path.write_bytes(damaged)
        _assert_same_stores(_stores(config), reference_stores)


def test_ctrl_c_exits_130_and_leaves_no_partial_files(tmp_path, demo_data, reference_stores):
    config = tiny_config(tmp_path, demo_data)
    config_path = config_yaml.save(config, tmp_path / "tiny.yaml")
    child = _extraction_child("cli", str(config_path), demo_data, hold_at=2)
    assert _wait_for_marks(child, 2) == 2
    child.send_signal(signal.SIGINT)
    code = child.wait(timeout=60)
    stderr = child.stderr.read() if child.stderr else ""
    assert code == 130, stderr
    assert "interrupted; re-run the same command to resume" in stderr and "Traceback" not in stderr
    features = tmp_path / "cache" / "features"
    assert not features.exists() or not any(features.iterdir()), list(features.iterdir())
    assert not [p for p in tmp_path.rglob(".*tmp*")], "temporary files were left behind"

    assert cli.main(["extract", "--config", str(config_path), "--corpus", "emo"]) == 0
    _assert_same_stores(_stores(config), reference_stores)


# -- the whole protocol: AE training and ACNN runs --------------------------------------------------------
EARLY = ("fit-batch audeep", "fit-epoch audeep")  # autoencoder training (extraction: the tests above)
LATE = ("fit-batch acnn", "fit-epoch acnn", "run-")  # ACNN runs and their result files


def _metrics(path: Path) -> dict:
    metrics = json.loads(path.read_text(encoding="utf-8"))
    for volatile in ("train_seconds", "autoencoder_model", "fingerprint"):  # timing and paths
        metrics.pop(volatile, None)
    return metrics


def _store_files(folder: Path, kind: str) -> dict[str, Path]:
    """Store files by name. A feature store's name hashes its parameters and the audio's bytes, so it is
    the same in both runs; a representation store's hashes the AE file, whose zip entries carry the time
    it was saved, so those are matched by corpus (the name without the hash)."""
    paths = sorted((folder / "cache" / kind).glob("*.h5"))
    if kind == "representations":
        return {path.name.rsplit("-", 1)[0]: path for path in paths}
    return {path.name: path for path in paths}


def assert_same_results(reference: Path, other: Path) -> None:
    runs = sorted(p.relative_to(reference) for p in (reference / "results").rglob("metrics.json"))
    assert runs and runs == sorted(p.relative_to(other) for p in (other / "results").rglob("metrics.json"))
    for run in runs:
        folder = run.parent
        pd.testing.assert_frame_equal(
            pd.read_csv(reference / folder / "predictions.csv"),
            pd.read_csv(other / folder / "predictions.csv"),
        )
        assert _metrics(reference / run) == _metrics(other / run)
        with (
            h5py.File(reference / folder / "hidden.h5", "r") as a,
            h5py.File(other / folder / "hidden.h5", "r") as b,
        ):
            np.testing.assert_array_equal(a["hidden"][...], b["hidden"][...])
    for kind in ("features", "representations"):
        expected, got = _store_files(reference, kind), _store_files(other, kind)
        assert expected.keys() == got.keys()
        for name, path in expected.items():
            with h5py.File(path, "r") as a, h5py.File(got[name], "r") as b:
                for dataset in a:
                    np.testing.assert_array_equal(
                        a[dataset][...], b[dataset][...], err_msg=f"{name}/{dataset}"
                    )
    states = [
        sorted((root / "cache" / "autoencoders").glob("*/training_state.json")) for root in (reference, other)
    ]
    assert len(states[0]) == len(states[1]) == 1
    losses = [json.loads(path.read_text())["loss"] for path in (states[0][0], states[1][0])]
    assert losses[0] == losses[1]
    pd.testing.assert_frame_equal(pd.read_csv(reference / "table1.csv"), pd.read_csv(other / "table1.csv"))


@pytest.mark.slow
def test_protocol_killed_during_the_acnn_runs_then_resumed_matches_an_uninterrupted_run(
    tmp_path, tmp_path_factory
):
    """One kill during the ACNN runs (after the stores and the AE are complete), then run to the end.

    One kill, not two: a kill during AE training is tested by
    ``tests/test_autoencoder.py::test_kill_and_resume_gives_the_uninterrupted_result`` (SIGKILL in another
    process right after an epoch's checkpoint; the resumed losses, weights and vectors equal the
    uninterrupted ones). A kill at a random batch leaves the same files as that one: checkpoints are written
    only at epoch ends, after which the marks come. What only the whole protocol shows is kept here: the
    run files of a run killed while training or writing, the re-run skipping finished runs and finding the
    stores and the AE complete (an AE cached under a key that changed between processes would be trained
    again and fail the marks' check), and the result equal to an uninterrupted run's."""
    reference, kinds = reference_run(tmp_path_factory.getbasetemp() / "tiny_shared")
    rng = random.Random(SEED)
    early = sum(kind.startswith(EARLY) for kind in kinds)
    late = sum(kind.startswith(LATE) for kind in kinds)
    # kill points: the ACNN's epochs (its compiled loop has no per-batch hooks) and its run files
    assert early >= 4 and late >= 6, kinds
    out = tmp_path / "interrupted"
    # The reference's demo corpus: the same audio, not generated again (the kill comes in the ACNN runs).
    data = reference.corpus_root("emo")

    kill = (LATE, rng.randint(1, late - 1))
    code, seen, errors = run_child(out, kill, delay_s=rng.uniform(0.0, 0.1), data=data)
    assert code == -signal.SIGKILL, f"not killed at {kill}: {seen[-3:]}\n{errors[-2000:]}"
    assert any(kind.startswith(EARLY) for kind in seen)  # the AE was trained in the killed process
    assert_final_files_valid(out)
    finished_before = len(list((out / "results").rglob("metrics.json")))

    code, seen, errors = run_child(out, data=data)
    assert code == 0, errors[-3000:]
    assert seen.count("run-written") == 2 - finished_before  # finished runs are not repeated
    assert not any(kind.startswith(("store", *EARLY)) for kind in seen)  # stores and the AE were complete
    assert_final_files_valid(out)
    assert_same_results(Path(reference.output_dir), out)
