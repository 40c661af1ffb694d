"""Progress for long work, shaped by where it is read: bars in terminals and notebooks, plain lines in logs.

A bar redraws itself with carriage returns and ANSI escapes; in a file (``serlib evaluate > log.txt``)
that becomes thousands of fragments. So when neither standard error is a terminal nor the code runs
in a Jupyter kernel, ``bar`` writes one plain line per step (or per tenth of the work, whichever is
rarer) and Keras trains with ``verbose=2`` (one line per epoch) instead of its progress bar.

In JupyterLab the bar is an ipywidgets progress bar (tqdm.auto), updated in place; Keras' epochs are
one such bar too. A notebook executed headlessly (``serlib reproduce`` sets ``SERLIB_PROGRESS=lines``
for its papermill kernels) has no one to draw a widget for: it gets plain lines on standard output
(a notebook shows standard error on a red background), one when a step ends and one every
``LINE_SECONDS`` while it runs, so that an executed notebook is not a wall of counters.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from tqdm.auto import tqdm

LINE_FRACTION = 0.1  # a plain-line progress writes at most every tenth of the work ...
LINE_SECONDS = 30.0  # ... or when this much time has passed since its last line
PROGRESS_VARIABLE = "SERLIB_PROGRESS"  # "lines": plain lines even in a terminal or notebook


def lines_requested() -> bool:
    """Whether ``SERLIB_PROGRESS=lines`` asks for plain lines instead of bars."""
    return os.environ.get(PROGRESS_VARIABLE, "").strip().lower() == "lines"


def in_notebook() -> bool:
    """True inside a Jupyter kernel (JupyterLab, papermill), where tqdm draws its own widget or text bar."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ipython = shell.get_ipython()  # type: ignore[attr-defined]
    except AttributeError:
        return False
    return ipython is not None and hasattr(ipython, "kernel")


def interactive(stream: Any = None) -> bool:
    """Whether progress may be drawn as a bar: a terminal on ``stream`` (default stderr), or a notebook,
    unless ``SERLIB_PROGRESS=lines``."""
    if lines_requested():
        return False
    stream = sys.stderr if stream is None else stream
    try:
        terminal = bool(stream.isatty())
    except (AttributeError, ValueError):
        terminal = False
    return terminal or in_notebook()


def keras_verbose(enabled: bool = True) -> int:
    """Keras' ``verbose`` for ``fit``: the bar (1) where it can be drawn, one line per epoch (2) elsewhere."""
    if not enabled:
        return 0
    return 1 if interactive(sys.stdout) else 2


def keras_progress(enabled: bool, epochs: int, description: str, initial: int = 0) -> tuple[int, list[Any]]:
    """Keras' ``verbose`` and extra callbacks for ``fit`` over ``epochs`` (from ``initial``): in a notebook
    one bar over the epochs (a widget in JupyterLab) instead of Keras' text bar per epoch; elsewhere
    ``keras_verbose``."""
    if enabled and in_notebook() and interactive(sys.stdout):
        return 0, [epoch_callback(epochs, description, initial)]
    return keras_verbose(enabled), []


def epoch_callback(epochs: int, description: str, initial: int = 0) -> Any:
    """A Keras callback that advances one ``bar`` per finished epoch, with the loss beside it."""
    import keras  # noqa: PLC0415 - the base layer stays light: Keras only when a model trains

    class EpochBar(keras.callbacks.Callback):  # type: ignore[misc]
        def on_train_begin(self, logs: Any = None) -> None:
            self.bar = bar(epochs, description, unit="epoch")
            if initial:
                self.bar.update(initial)

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if logs and "loss" in logs:
                self.bar.set_postfix(loss=f"{float(logs['loss']):.4f}")
            self.bar.update(1)

        def on_train_end(self, logs: Any = None) -> None:
            self.bar.close()

    return EpochBar()


class LineProgress:
    """The part of tqdm's interface serlib uses, writing plain lines: ``desc: 12/60 run (20 %) ...``."""

    def __init__(
        self,
        total: int | None,
        desc: str = "",
        unit: str = "it",
        stream: Any = None,
        every: bool = False,
        timed_only: bool = False,
    ) -> None:
        self.total, self.desc, self.unit, self.every = total, desc, unit, every
        self.timed_only = timed_only  # a line every LINE_SECONDS and at the end, not per step or tenth
        self.n = 0
        self.postfix = ""
        self.stream = stream if stream is not None else sys.stdout if in_notebook() else sys.stderr
        self._last_n = 0
        self._last_time = time.monotonic()
        self._closed = False

    def update(self, count: int = 1) -> None:
        self.n += count
        step = 1 if self.every else max(1, round((self.total or 0) * LINE_FRACTION))
        if (
            not self.timed_only and self.n - self._last_n >= step
        ) or time.monotonic() - self._last_time >= LINE_SECONDS:
            self._write()

    def set_postfix(self, **values: Any) -> None:
        self.postfix = ", ".join(f"{key}={value}" for key, value in values.items())

    def set_description(self, desc: str) -> None:
        self.desc = desc

    def _write(self) -> None:
        share = f" ({100 * self.n / self.total:.0f} %)" if self.total else ""
        total = f"/{self.total}" if self.total else ""
        extra = f" {self.postfix}" if self.postfix else ""
        print(f"{self.desc}: {self.n}{total} {self.unit}{share}{extra}", file=self.stream, flush=True)
        self._last_n, self._last_time = self.n, time.monotonic()

    def close(self) -> None:
        if not self._closed and self.n != self._last_n:
            self._write()
        self._closed = True

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class _Silent(LineProgress):
    def _write(self) -> None:
        self._last_n, self._last_time = self.n, time.monotonic()


def bar(
    total: int | None,
    desc: str,
    unit: str = "it",
    enabled: bool = True,
    leave: bool = True,
    every: bool = False,
) -> Any:
    """A progress bar (tqdm) in terminals and notebooks, ``LineProgress`` elsewhere (a line per step with
    ``every``, else per tenth of the work), silence when not ``enabled``."""
    if not enabled:
        return _Silent(total, desc, unit)
    if interactive():
        return tqdm(total=total, desc=desc, unit=unit, leave=leave)
    if in_notebook():  # executed headlessly (papermill): the outcome and, for long steps, a line per 30 s
        return LineProgress(total, desc, unit, timed_only=True)
    return LineProgress(total, desc, unit, every=every)
