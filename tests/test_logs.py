"""Logs written to a file are readable: no progress-bar redraws, no ANSI escapes, one line per step."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys

import pytest
from tiny_pipeline import reference_run, tiny_config

from serlib.base import config_yaml, logs, progress


def test_evaluate_into_a_file_writes_plain_lines(tmp_path_factory, tmp_path):
    """``serlib evaluate ... > log.txt 2>&1``: the AE logs one line per epoch (Keras verbose=2), the
    protocol one line per finished run, and nothing carries a carriage return or an escape code."""
    reference, _ = reference_run(tmp_path_factory.getbasetemp() / "tiny_shared")
    config = tiny_config(tmp_path / "out", data=reference.corpus_root("emo"))
    path = config_yaml.save(config, tmp_path / "tiny.yaml")
    log = tmp_path / "log.txt"
    with log.open("w") as handle:
        done = subprocess.run(
            [sys.executable, "-m", "serlib", "evaluate", "--config", str(path)],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
            timeout=300,
        )
    text = log.read_text(encoding="utf-8")
    assert done.returncode == 0, text[-3000:]
    assert "\x1b" not in text and "\r" not in text
    lines = text.splitlines()
    epochs = [line for line in lines if line.startswith("Epoch ")]
    assert epochs == ["Epoch 1/2", "Epoch 2/2"], epochs  # one AE, 2 epochs
    runs = [line for line in lines if line.startswith("ACNN runs: ")]
    assert [line.split()[2] for line in runs] == ["1/2", "2/2"] and all("UAR" in line for line in runs)
    assert len(lines) < 60


def test_line_progress_writes_at_most_every_tenth():
    stream = io.StringIO()
    bar = progress.LineProgress(200, "extract", unit="utt", stream=stream)
    for _ in range(200):
        bar.update()
    bar.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 10 and lines[-1] == "extract: 200/200 utt (100 %)"
    assert not progress.interactive(io.StringIO())


def test_retracing_warning_is_dropped_and_other_tensorflow_warnings_kept(caplog):
    """Each protocol run traces a new model on purpose: TensorFlow's retracing warning would fill
    notebooks and run logs; ``runtime.configure`` filters exactly that message."""
    import tensorflow as tf

    from serlib.base import runtime

    runtime.configure()
    logger = tf.get_logger()
    with caplog.at_level(logging.WARNING, logger=logger.name):
        logger.warning(
            "5 out of the last 5 calls to <function f> triggered tf.function retracing. Tracing ..."
        )
        logger.warning("a different TensorFlow warning")
    messages = [record.getMessage() for record in caplog.records]
    assert messages == ["a different TensorFlow warning"]


# -- quiet by default (issue 32) -------------------------------------------------------------------------
@pytest.fixture
def serlib_logging():
    """Leaves the root logger as it found it: serlib's handlers removed, its level restored."""
    root = logging.getLogger()
    level = root.level
    yield
    logs.stop_file()
    for handler in [h for h in root.handlers if getattr(h, "_serlib", False)]:
        root.removeHandler(handler)
    root.setLevel(level)


def test_info_lines_go_to_the_log_file_steps_and_warnings_to_the_screen(
    tmp_path, capsys, monkeypatch, serlib_logging
):
    monkeypatch.delenv(logs.LEVEL_VARIABLE, raising=False)
    logs.configure(output_dir=tmp_path)
    log = logging.getLogger("serlib.test")
    log.info("a store was read")
    logs.step(log, "features: 240 utterances extracted (1.0 s)")
    log.warning("something to read")
    printed = capsys.readouterr()
    assert printed.out == "features: 240 utterances extracted (1.0 s)\n"
    assert printed.err == "WARNING serlib.test: something to read\n"
    lines = (tmp_path / "logs" / "serlib.log").read_text(encoding="utf-8").splitlines()
    assert [line.split(" ", 3)[3] for line in lines] == [
        "INFO serlib.test: a store was read",
        "STEP serlib.test: features: 240 utterances extracted (1.0 s)",
        "WARNING serlib.test: something to read",
    ]
    # SERLIB_LOG_LEVEL=INFO brings the INFO lines back to the screen
    monkeypatch.setenv(logs.LEVEL_VARIABLE, "INFO")
    logs.configure(output_dir=tmp_path)
    log.info("shown now")
    assert capsys.readouterr().err == "INFO serlib.test: shown now\n"
    with pytest.raises(logs.LogSettingsError, match="SERLIB_LOG_LEVEL"):
        logs.configure("LOUD")


def test_a_closed_stream_drops_records_instead_of_a_logging_error(capsys, serlib_logging, monkeypatch):
    """A kernel closes its streams at shutdown; asyncio's last messages must not print 'Logging error'."""
    logs.configure()
    closed = io.StringIO()
    closed.close()
    monkeypatch.setattr(sys, "stderr", closed)
    logging.getLogger("asyncio").error("Task was destroyed but it is pending!")
    monkeypatch.undo()
    assert "Logging error" not in capsys.readouterr().err


def test_tensorflow_start_up_lines_are_filtered_and_the_rest_passed_on(capfd, monkeypatch):
    from serlib.base import runtime

    monkeypatch.delenv(logs.LEVEL_VARIABLE, raising=False)
    with runtime.native_start_up_filtered():
        os.write(
            2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
        )
        os.write(2, b"I0000 00:00:1796457005.833353   12524 port.cc:153] oneDNN custom operations are on.\n")
        os.write(2, b"W0000 00:00:1796457005.9   12524 other.cc:1] a real warning\nplain line\n")
    err = capfd.readouterr().err
    assert err == "W0000 00:00:1796457005.9   12524 other.cc:1] a real warning\nplain line\n"
    monkeypatch.setenv(logs.LEVEL_VARIABLE, "INFO")  # asked for: nothing is filtered
    with runtime.native_start_up_filtered():
        os.write(2, b"I0000 00:00:1.0   1 port.cc:153] oneDNN custom operations are on.\n")
    assert "I0000" in capfd.readouterr().err


def test_importing_tensorflow_after_serlib_prints_no_start_up_lines():
    environment = {
        k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", logs.LEVEL_VARIABLE)
    }
    done = subprocess.run(
        [sys.executable, "-c", "import serlib, tensorflow as tf; print(int(tf.constant(1) + 1))"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )
    assert done.returncode == 0 and done.stdout == "2\n", done.stderr
    assert "I0000" not in done.stderr and "absl" not in done.stderr, done.stderr


def test_kernel_shutdown_finds_no_helper_process_left(tmp_path):
    """multiprocessing's resource tracker (started by Dask and process pools) ignores SIGTERM, so ipykernel's
    shutdown waited for it until jupyter_client terminated the kernel mid-shutdown (issue 32)."""
    from multiprocessing import resource_tracker

    import psutil

    from serlib.app import reproduce

    resource_tracker.ensure_running()
    pid = resource_tracker._resource_tracker._pid
    assert pid in [child.pid for child in psutil.Process().children()]
    reproduce.stop_helper_processes()
    assert pid not in [child.pid for child in psutil.Process().children()]
