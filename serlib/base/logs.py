"""Where serlib's messages go: warnings and one-line step summaries on screen, everything in a file.

A notebook or terminal shows WARNING and above (on standard error) and serlib's *step summaries*
(level ``STEP``, between INFO and WARNING: what a long step computed or reused and how long it took) on
standard output, without a level prefix: in JupyterLab standard error is drawn on a pink background
that students read as "error". Every INFO line (which store was read, each finished run, ...) goes to
``<output_dir>/logs/serlib.log`` instead: plain text with time stamps, appended by every process of a
run (command line, notebook kernels, Dask workers). ``SERLIB_LOG_LEVEL=INFO`` (or DEBUG), or the
notebooks' ``log_level`` parameter, brings the INFO lines back to the screen, and with them
TensorFlow's C++ start-up lines (``serlib.base.runtime``).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

LEVEL_VARIABLE = "SERLIB_LOG_LEVEL"
LOG_FILE = Path("logs") / "serlib.log"  # under a run's output folder
STEP = 25  # one-line step summaries: shown on screen by default, above INFO and below WARNING
logging.addLevelName(STEP, "STEP")
SCREEN_FORMAT = "%(levelname)s %(name)s: %(message)s"
FILE_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"
# Libraries whose INFO/DEBUG lines say nothing to a serlib user, even in the log file.
QUIET_LIBRARIES = ("matplotlib", "PIL", "fontTools", "distributed", "h5py", "numba", "asyncio")


class LogSettingsError(ValueError):
    """A log setting is invalid; the message names it and the fix."""


def screen_level(level: str | int | None = None) -> int:
    """The level shown on screen: ``level`` if given, else ``SERLIB_LOG_LEVEL``, else WARNING."""
    value: str | int | None = level
    if value is None or value == "":
        value = os.environ.get(LEVEL_VARIABLE, "").strip() or None
    if value is None:
        return logging.WARNING
    if isinstance(value, int):
        return value
    number = logging.getLevelName(str(value).strip().upper())
    if not isinstance(number, int):
        raise LogSettingsError(
            f"log level {value!r} ({LEVEL_VARIABLE} or the notebook's log_level) is not a level; "
            "use DEBUG, INFO, WARNING or ERROR"
        )
    return number


def verbose(level: str | int | None = None) -> bool:
    """Whether INFO lines (and TensorFlow's C++ start-up lines) are asked for on screen."""
    try:
        return screen_level(level) <= logging.INFO
    except LogSettingsError:
        return False


def step(logger: logging.Logger, message: str, *args: Any) -> None:
    """A one-line step summary: on screen (standard output) by default, and in the log file."""
    logger.log(STEP, message, *args)


class _CurrentStream(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to ``sys.stdout``/``sys.stderr`` as they are at each record, not as they were at set-up.

    A Jupyter kernel replaces both with its own streams and closes them at shutdown; a handler holding
    the old object then fails with "Logging error ... I/O operation on closed file" on the last
    messages of the interpreter (asyncio's, at a kernel's shutdown). A closed stream drops the record.
    """

    def __init__(self, name: str) -> None:
        super().__init__()
        self._name = name

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return getattr(sys, self._name)

    @stream.setter
    def stream(self, value: Any) -> None:  # StreamHandler.__init__ assigns one; the current is used
        pass

    def emit(self, record: logging.LogRecord) -> None:
        stream = self.stream
        if stream is None or getattr(stream, "closed", False):
            return
        super().emit(record)


class _Only(logging.Filter):
    def __init__(self, step: bool) -> None:
        super().__init__()
        self.step = step

    def filter(self, record: logging.LogRecord) -> bool:
        return (record.levelno == STEP) == self.step


def _ours(handler: logging.Handler) -> bool:
    return bool(getattr(handler, "_serlib", False))


def _mark(handler: logging.Handler) -> logging.Handler:
    handler._serlib = True  # type: ignore[attr-defined]
    return handler


def configure(level: str | int | None = None, output_dir: str | os.PathLike[str] | None = None) -> int:
    """Set up the root logger of this process (again: earlier serlib handlers are replaced).

    Screen: step summaries on standard output, records of ``level`` (``screen_level``) and above on
    standard error. File: ``<output_dir>/logs/serlib.log`` at INFO (DEBUG when the screen shows DEBUG),
    when ``output_dir`` is given. Returns the screen level.
    """
    shown = screen_level(level)
    root = logging.getLogger()
    for handler in [h for h in root.handlers if _ours(h)]:
        root.removeHandler(handler)
        handler.close()
    steps = _CurrentStream("stdout")
    steps.setLevel(STEP)
    steps.addFilter(_Only(step=True))
    steps.setFormatter(logging.Formatter("%(message)s"))
    screen = _CurrentStream("stderr")
    screen.setLevel(shown)
    screen.addFilter(_Only(step=False))
    screen.setFormatter(logging.Formatter(SCREEN_FORMAT))
    root.addHandler(_mark(steps))
    root.addHandler(_mark(screen))
    root.setLevel(min(shown, STEP))
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
    if output_dir is not None:
        log_to_file(output_dir)
    return shown


def log_to_file(output_dir: str | os.PathLike[str]) -> Path:
    """Append this process's INFO lines (and above) to ``<output_dir>/logs/serlib.log``; replaces the
    file set earlier. Returns the file's path."""
    path = Path(output_dir) / LOG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    stop_file()
    root = logging.getLogger()
    level = min(logging.INFO, screen_level())
    handler = logging.FileHandler(path, mode="a", encoding="utf-8", delay=True)
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter(FILE_FORMAT, datefmt="%Y-%m-%d %H:%M:%S"))
    root.addHandler(_mark(handler))
    root.setLevel(min(root.level or logging.WARNING, level))
    return path


def stop_file() -> None:
    """Stop appending to the log file set by ``configure``/``log_to_file``."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if _ours(h) and isinstance(h, logging.FileHandler)]:
        root.removeHandler(handler)
        handler.close()


def current_file() -> str | None:
    """The log file this process appends to (set by ``configure``/``log_to_file``), else None."""
    for handler in logging.getLogger().handlers:
        if _ours(handler) and isinstance(handler, logging.FileHandler):
            return str(handler.baseFilename)
    return None


def configure_worker(log_file: str | None) -> None:
    """A worker process (Dask): warnings on its standard error, INFO lines appended to ``log_file``
    (the submitting process's, from ``current_file``); done once per file."""
    root = logging.getLogger()
    if any(_ours(h) for h in root.handlers) and current_file() == log_file:
        return
    configure()
    if log_file:
        log_to_file(Path(log_file).parent.parent)
