"""A seconds-scale end-to-end configuration shared by the reliability tests (issue 10).

Cross-corpus only (demo ``labeled`` -> demo ``cross``), the baseline and one autoencoder condition,
one seed, 1-2 epochs: enough to produce every kind of file the pipeline writes (feature stores, AE
checkpoints and model, representation stores, run results, ``model.keras`` + ``model.json``).
``reference_run`` runs it once per test session in a clean child process (shared by the predict and
interruption tests); ``run_child`` runs it with progress markers and can SIGKILL it at one of them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from serlib.base import config as config_module
from serlib.features import extraction

# serlib.protocol (and with it TensorFlow) is imported where it is used: the extraction children of
# tests/test_interruption.py import tiny_config without it, as `serlib extract` runs without it.

DEMO_SIZES = {
    "labeled_sessions": 2,
    "utterances_per_speaker_emotion": 2,
    "cross_sessions": 1,
    "cross_utterances_per_speaker_emotion": 2,
    "unlabeled_talks": 2,
    "unlabeled_utterances": 10,
    "books_readers": 1,
    "books_utterances": 2,
}


def tiny_config(out: Path, data: Path | None = None, **changes: Any) -> config_module.Config:
    """The tiny configuration writing under ``out`` (demo corpus in ``data``, default ``out/data``;
    dotted-key ``changes`` applied on top)."""
    root = str(data if data is not None else out / "data")
    config = config_module.from_dict(
        {
            "name": "tiny",
            "output_dir": str(out),
            "figures_dir": str(out / "figures_dir"),
            "seed": 0,
            "corpora": {
                "emo": {"type": "demo", "root": root, "options": {"part": "labeled"}},
                "cross": {"type": "demo", "root": root, "options": {"part": "cross"}},
                "talks": {"type": "demo", "root": root, "options": {"part": "unlabeled"}},
            },
            "demo_corpus": {"seed": 0, **DEMO_SIZES},
            "features": {
                "n_jobs": 1,
                "logmel": {"max_frames": 300},
                "spectrogram": {"fixed_length_s": 1.0, "mel_bands": 32},
            },
            "autoencoder": {"layers": 1, "units": 8, "epochs": 2, "batch_size": 8},
            "acnn": {"filters": 8, "pool_size": 10, "epochs": 2, "batch_size": 8},
            "protocol": {
                "within_corpus": None,
                "cross_corpus_train": "emo",
                "cross_corpus_test": "cross",
                "seeds": [0],
                "conditions": [
                    {"name": "BL", "autoencoder_corpus": "none"},
                    {"name": "sT", "autoencoder_corpus": "talks"},
                ],
            },
        },
        "tiny pipeline",
    )
    return config_module.override(config, **changes) if changes else config


# -- file checks shared by the safe-files and interruption tests -----------------------------------------
def assert_plain_hdf5(path: Path) -> None:
    """Every dataset is numeric or UTF-8/ASCII text, every attribute a string or number: nothing pickled."""

    def check(name: str, item) -> None:
        if isinstance(item, h5py.Dataset):
            dtype = item.dtype
            assert dtype.kind in "fiub" or h5py.check_string_dtype(dtype) is not None, (
                f"{path}:{name} has {dtype}"
            )
            assert dtype.fields is None and h5py.check_vlen_dtype(dtype) in (None, str, bytes), (
                f"{path}:{name}"
            )
        for key, value in item.attrs.items():
            assert isinstance(value, (str, bytes, int, float, np.number, np.ndarray)), f"{path}:{name}@{key}"
            if isinstance(value, np.ndarray):
                assert value.dtype.kind in "fiubSU", f"{path}:{name}@{key} has {value.dtype}"

    with h5py.File(path, "r") as handle:
        check("/", handle)
        handle.visititems(check)


PICKLE_MAGIC = re.compile(rb"^\x80[\x02-\x05]")


def assert_no_pickle_files(root: Path) -> list[Path]:
    """No file under ``root`` is a pickle (by name or by its first bytes); returns the files seen."""
    files = [p for p in root.rglob("*") if p.is_file()]
    for path in files:
        assert path.suffix not in {".pkl", ".pickle", ".joblib"}, f"{path} is a pickle by name"
        with path.open("rb") as handle:
            assert not PICKLE_MAGIC.match(handle.read(2)), f"{path} starts like a pickle"
        if path.suffix in {".npy", ".npz"}:
            np.load(path, allow_pickle=False)  # raises for object arrays
    return files


# -- the protocol in a child process, printing progress markers ---------------------------------------
MARKER = "MARK"
_THIS = Path(__file__).resolve()


def _install_markers() -> None:
    """Print a ``MARK <kind>`` line after every store task, fit batch/epoch and written run (kill points)."""
    import keras

    from serlib.protocol import runs

    def mark(kind: str) -> None:
        print(f"{MARKER} {kind}", flush=True)

    extraction.TASK_SIZE = 4  # more tasks, more points to be killed at
    extract_task = extraction.extract_task

    def marked_task(*args: Any, **kwargs: Any) -> Any:
        results = extract_task(*args, **kwargs)
        mark("store")
        return results

    extraction.extract_task = marked_task

    class Marks(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            mark(f"fit-batch {self.model.name}")

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            mark(f"fit-epoch {self.model.name}")

    fit = keras.Model.fit

    def marked_fit(self: Any, *args: Any, callbacks: Any = None, **kwargs: Any) -> Any:
        return fit(self, *args, callbacks=[*(callbacks or []), Marks()], **kwargs)

    keras.Model.fit = marked_fit
    # the ACNN trains by serlib's compiled epoch loop (no per-batch hooks): its epochs are marked there
    from serlib.models.acnn import loop

    fit_epochs = loop.fit_epochs

    def marked_fit_epochs(model: Any, *args: Any, callbacks: Any = None, **kwargs: Any) -> Any:
        return fit_epochs(model, *args, callbacks=[*(callbacks or []), Marks()], **kwargs)

    loop.fit_epochs = marked_fit_epochs
    write_run = runs.write_run

    def marked_write_run(*args: Any, **kwargs: Any) -> Any:
        mark("run-writing")
        result = write_run(*args, **kwargs)
        mark("run-written")
        return result

    runs.write_run = marked_write_run


def run_child(
    out: Path,
    kill_after: tuple[str | tuple[str, ...], int] | None = None,
    delay_s: float = 0.0,
    timeout_s: float = 300.0,
    data: Path | None = None,
):
    """Run the tiny protocol in a fresh process (demo corpus in ``data``, default ``out/data``, generated
    there when missing); with ``kill_after=(prefix, n)`` SIGKILL it ``delay_s`` after the n-th marker
    whose kind starts with ``prefix``. Returns (return code, marker kinds, stderr)."""
    import os
    import signal
    import subprocess
    import sys
    import tempfile
    import time

    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    with tempfile.TemporaryFile("w+") as errors:
        child = subprocess.Popen(
            [sys.executable, str(_THIS), str(out), *([str(data)] if data is not None else [])],
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            env=environment,
        )
        kinds: list[str] = []
        seen = 0
        started = time.monotonic()
        assert child.stdout is not None
        for line in child.stdout:
            position = line.find(f"{MARKER} ")  # Keras progress bars may precede it on the line
            if position < 0:
                continue
            kinds.append(line[position + len(MARKER) + 1 :].strip())
            if kill_after is not None and kinds[-1].startswith(kill_after[0]):
                seen += 1
                if seen == kill_after[1]:
                    time.sleep(delay_s)
                    child.send_signal(signal.SIGKILL)
                    break
            if time.monotonic() - started > timeout_s:
                child.kill()
                break
        code = child.wait(timeout=timeout_s)
        child.stdout.close()
        errors.seek(0)
        return code, kinds, errors.read()


_REFERENCE: dict[str, tuple[config_module.Config, list[str]]] = {}


def reference_run(base: Path) -> tuple[config_module.Config, list[str]]:
    """The tiny protocol run uninterrupted in a clean child process under ``base/reference`` (once per
    process; pass the session's base temp folder to share it): its config and the markers it printed."""
    out = base / "reference"
    if str(out) not in _REFERENCE:
        code, kinds, errors = run_child(out)
        assert code == 0, f"the tiny reference run failed:\n{errors[-3000:]}"
        _REFERENCE[str(out)] = (tiny_config(out), kinds)
    return _REFERENCE[str(out)]


if __name__ == "__main__":
    import os
    import sys

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from serlib.evidence import summaries

    _install_markers()
    data = Path(sys.argv[2]) if len(sys.argv) > 2 else None
    summaries.evaluate(tiny_config(Path(sys.argv[1]), data), progress=False)
    print(f"{MARKER} done", flush=True)
