"""Logs written to a file are readable: no progress-bar redraws, no ANSI escapes, one line per step."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys

from tiny_pipeline import reference_run, tiny_config

from serlib.base import config_yaml, progress


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
