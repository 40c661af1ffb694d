"""Audio input: read any file libsndfile reads, optionally a segment, as 16 kHz mono float32.

Every feature extractor starts here, so that all corpora reach the features at one sample rate
(the paper's corpora are all 16 kHz; auDeep itself never resamples, which is equivalent for them).
"""

from __future__ import annotations

import errno
import math
import os
import re
import stat
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from serlib.base import paper_preset

TARGET_SAMPLE_RATE = paper_preset.value("audio.sample_rate")  # the paper preset's rate: load's default
MIN_DURATION_S = paper_preset.value("features.logmel.frame_s")  # one analysis frame of the paper's log-Mel
SEGMENT_END_TOLERANCE_S = 0.05  # label end times may overshoot the file end by a few ms (rounding)


class AudioError(ValueError):
    """An audio file cannot be used; the message names the file and the problem."""


def not_a_file(path: str | os.PathLike[str]) -> str:
    """What ``path`` is when it is not a regular file (for an error): a FIFO, a device, a socket, a
    symbolic-link loop, a link to nothing, a folder, or absent."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "a symbolic link loop (the link leads back to itself)"
        if path.is_symlink():
            return f"a symbolic link to a missing target ({os.readlink(path)})"
        return "no such file or folder"
    for test, kind in (
        (stat.S_ISFIFO, "a FIFO (named pipe), not a file"),
        (stat.S_ISCHR, "a character device, not a file"),
        (stat.S_ISBLK, "a block device, not a file"),
        (stat.S_ISSOCK, "a socket, not a file"),
        (stat.S_ISDIR, "a folder"),
    ):
        if test(mode):
            return kind
    return "a regular file" if stat.S_ISREG(mode) else "not a regular file"


def info(path: str | os.PathLike[str]) -> tuple[int, int, int]:
    """(native sample rate, frames, channels) of a file, raising AudioError when it is not audio."""
    try:
        header = sf.info(os.fsencode(path))  # bytes: a name that is not valid UTF-8 opens as well
    except (sf.LibsndfileError, RuntimeError, OSError, TypeError) as error:
        raise AudioError(f"{path}: cannot be read as audio ({_reason(error)})") from None
    _refuse_truncated(path, header.extra_info)
    return int(header.samplerate), int(header.frames), int(header.channels)


def _refuse_truncated(path: str | os.PathLike[str], log: str) -> None:
    """libsndfile reads a cut-off WAV silently up to its end; its log says "data : <declared> (should be <held>)"."""
    cut = re.search(r"^data : (\d+) \(should be (\d+)\)", log, re.MULTILINE)
    if cut and int(cut.group(2)) < int(cut.group(1)):
        raise AudioError(
            f"{path}: truncated (the header declares {cut.group(1)} bytes of audio, the file holds "
            f"{cut.group(2)}); copy or download the file again"
        )


def load(
    path: str | os.PathLike[str],
    start_s: float | None = None,
    end_s: float | None = None,
    sample_rate: int = TARGET_SAMPLE_RATE,
    max_duration_s: float | None = None,
) -> tuple[np.ndarray, int]:
    """Read ``[start_s, end_s)`` of a file as mono float32 at ``sample_rate`` Hz.

    Only the requested segment is read from disk (a 2-hour TED talk is not decoded whole); with
    ``max_duration_s`` at most that many seconds from the segment start are read (for features that
    cut longer turns anyway). Channels are averaged; the native rate is converted with soxr (high
    quality). Integer PCM arrives in [-1, 1) from soundfile; float files keep their values
    (resampling can overshoot 1 slightly).
    """
    path = Path(path)
    if not path.is_file():
        what = not_a_file(path)
        raise AudioError(f"{path}: {'file does not exist' if what == 'no such file or folder' else what}")
    try:
        with sf.SoundFile(os.fsencode(path)) as handle:
            native_rate, total_frames = int(handle.samplerate), int(handle.frames)
            _refuse_truncated(path, handle.extra_info)
            if total_frames <= 0:
                raise AudioError(f"{path}: empty audio (the header declares 0 samples)")
            start, stop = _segment_frames(path, start_s, end_s, native_rate, total_frames)
            if max_duration_s is not None:
                stop = min(stop, start + int(math.ceil(max_duration_s * native_rate)))
            if start:
                handle.seek(start)
            data = handle.read(stop - start, dtype="float32", always_2d=True)
    except AudioError:
        raise
    except (sf.LibsndfileError, RuntimeError, OSError, TypeError) as error:
        raise AudioError(f"{path}: cannot be read as audio ({_reason(error)})") from None
    if data.shape[0] == 0:
        raise AudioError(f"{path}: segment [{start_s}, {end_s}) holds no samples")
    signal = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    if not np.isfinite(signal).all():
        bad = int((~np.isfinite(signal)).sum())
        raise AudioError(f"{path}: {bad} samples are NaN or infinite; repair or remove the file")
    if native_rate != sample_rate:
        signal = soxr.resample(signal, native_rate, sample_rate, quality="HQ").astype(np.float32, copy=False)
    if signal.shape[0] < math.ceil(MIN_DURATION_S * sample_rate):
        seconds = signal.shape[0] / sample_rate
        raise AudioError(
            f"{path}: {'segment' if start_s is not None or end_s is not None else 'file'} is "
            f"{seconds * 1000:.1f} ms long, shorter than one {MIN_DURATION_S * 1000:g} ms analysis frame"
        )
    return np.ascontiguousarray(signal, dtype=np.float32), sample_rate


def duration(path: str | os.PathLike[str], start_s: float | None = None, end_s: float | None = None) -> float:
    """Seconds of audio that ``load`` would return (from the header; nothing is decoded)."""
    native_rate, total_frames, _ = info(path)
    start, stop = _segment_frames(Path(path), start_s, end_s, native_rate, total_frames)
    return (stop - start) / native_rate


def _segment_frames(
    path: Path, start_s: float | None, end_s: float | None, rate: int, total: int
) -> tuple[int, int]:
    """Native-rate sample indices [start, stop) of a segment, checked against the file length."""
    if total <= 0:
        raise AudioError(f"{path}: empty audio (the header declares 0 samples)")
    start_s = None if start_s is None or _isnan(start_s) else float(start_s)
    end_s = None if end_s is None or _isnan(end_s) else float(end_s)
    length_s = total / rate
    start = 0 if start_s is None else int(round(start_s * rate))
    stop = total if end_s is None else int(round(end_s * rate))
    if start < 0 or (end_s is not None and end_s < 0):
        raise AudioError(f"{path}: segment [{start_s}, {end_s}) has a negative time")
    if start >= total:
        raise AudioError(f"{path}: segment starts at {start_s} s, outside the file ({length_s:.3f} s long)")
    if end_s is not None and end_s > length_s + SEGMENT_END_TOLERANCE_S:
        raise AudioError(
            f"{path}: segment ends at {end_s} s, after the end of the file ({length_s:.3f} s long)"
        )
    stop = min(stop, total)
    if stop <= start:
        raise AudioError(f"{path}: segment [{start_s}, {end_s}) is empty")
    return start, stop


def _isnan(value: float) -> bool:
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return False


def _reason(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
