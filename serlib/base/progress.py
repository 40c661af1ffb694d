"""Progress for long work, shaped by where it is read: bars in terminals and notebooks, plain lines in logs.

A bar redraws itself with carriage returns and ANSI escapes; in a file (``serlib evaluate > log.txt``)
that becomes thousands of fragments. So when neither standard error is a terminal nor the code runs
in a Jupyter kernel, ``bar`` writes one plain line per step (or per tenth of the work, whichever is
rarer) and Keras trains with ``verbose=2`` (one line per epoch) instead of its progress bar.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from tqdm.auto import tqdm

LINE_FRACTION = 0.1  # a plain-line progress writes at most every tenth of the work ...
LINE_SECONDS = 30.0  # ... or when this much time has passed since its last line


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
    """Whether progress may be drawn as a bar: a terminal on ``stream`` (default stderr), or a notebook."""
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


class LineProgress:
    """The part of tqdm's interface serlib uses, writing plain lines: ``desc: 12/60 run (20 %) ...``."""

    def __init__(
        self, total: int | None, desc: str = "", unit: str = "it", stream: Any = None, every: bool = False
    ) -> None:
        self.total, self.desc, self.unit, self.every = total, desc, unit, every
        self.n = 0
        self.postfix = ""
        self.stream = sys.stderr if stream is None else stream
        self._last_n = 0
        self._last_time = time.monotonic()
        self._closed = False

    def update(self, count: int = 1) -> None:
        self.n += count
        step = 1 if self.every else max(1, round((self.total or 0) * LINE_FRACTION))
        if self.n - self._last_n >= step or time.monotonic() - self._last_time >= LINE_SECONDS:
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
    return LineProgress(total, desc, unit, every=every)
