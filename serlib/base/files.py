"""Writing files so that a reader never sees half of one: a temporary file in the same folder, renamed.

Every product of serlib (stores, models, tables, JSON records) is written this way; a killed process
leaves at most a hidden ``.<name>.tmp<pid>`` file, never a truncated file under the final name.
``exclusive_lock`` serialises processes that write a group of files which must agree with each other.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def temporary_path(path: Path) -> Path:
    """The hidden temporary name ``path`` is written under before the rename (one per process)."""
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


_TEMPORARY = re.compile(r"^\..+\.tmp(\d+)(\.[A-Za-z0-9]+)?$")


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, dead but not yet reaped, counts as gone; Linux /proc)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[-1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the ``.<name>.tmp<pid>`` files in ``folder`` whose process is gone (killed before its
    rename); returns them. A living writer's temporary file is kept."""
    removed = []
    for entry in Path(folder).glob(".*.tmp*") if Path(folder).is_dir() else ():
        match = _TEMPORARY.match(entry.name)
        if (
            match
            and entry.is_file()
            and int(match.group(1)) != os.getpid()
            and not process_alive(int(match.group(1)))
        ):
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
                removed.append(entry)
    return removed


def replace_folder(staging: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """Put the finished folder ``staging`` at ``target`` by two renames, removing an older ``target`` only
    after the swap: a reader sees the old folder or the new one, never a half-written one."""
    staging, target = Path(staging), Path(target)
    old = target.with_name(f".{target.name}.old{os.getpid()}")
    if target.exists():
        os.replace(target, old)
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def write_text(text: str, path: str | os.PathLike[str]) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically, creating its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def write_json(data: Any, path: str | os.PathLike[str], indent: int = 2) -> Path:
    """Write ``data`` as JSON (numpy numbers and arrays, paths allowed; NaN kept) atomically."""
    text = json.dumps(data, indent=indent, default=_json_default, allow_nan=True) + "\n"
    return write_text(text, path)


def write_csv(frame: pd.DataFrame, path: str | os.PathLike[str], **options: Any) -> Path:
    """Write a DataFrame as CSV without its index (``options`` go to ``to_csv``) atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    frame.to_csv(tmp, index=False, **options)
    os.replace(tmp, path)
    return path


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an inter-process lock on the file ``path`` (created if missing) for the ``with`` block.

    POSIX ``flock``: it ends with the process, so a killed holder never leaves a stale lock. Windows gets
    no lock; the atomic renames above still protect readers of each single file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl  # noqa: PLC0415 - POSIX only
    except ImportError:
        yield
        return
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
