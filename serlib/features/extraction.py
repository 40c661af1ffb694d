"""Computing features for many utterances: one task per few files, in worker processes or on Dask.

A task (``extract_task``) reads a few utterances with ``serlib.data.audio`` and runs one extractor on
them; its results (features, true lengths, or a per-file error) come back in manifest order, so the
store can write them as they arrive. Locally a process pool runs the tasks; with a Dask client
(passed in by the caller: ``protocol.scheduler_address``) the cluster's workers do.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from serlib.base import cluster
from serlib.base.files import process_alive
from serlib.base.progress import bar as progress_bar
from serlib.data import audio
from serlib.features import egemaps, logmel, spectrogram

TASK_SIZE = 24  # utterances per worker task: amortises process hand-over and openSMILE set-up


READ_MARGIN_S = 0.1  # extra audio read beyond what a cut needs, so resampling edges do not reach it


def worker_processes(n_jobs: int) -> int:
    """Worker processes for ``features.n_jobs`` (0 = one per core this process may use)."""
    if n_jobs > 0:
        return int(n_jobs)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def run_tasks(
    extractor: str,
    parameters: dict[str, Any],
    rows: list[dict[str, Any]],
    n_jobs: int = 0,
    client: Any = None,
    progress: bool = True,
    description: str = "",
) -> Iterator[list[dict[str, Any]]]:
    """Yield each task's results in manifest order: on the Dask ``client``'s workers when one is given,
    else serially or in ``worker_processes(n_jobs)`` local processes."""
    tasks = [rows[start : start + TASK_SIZE] for start in range(0, len(rows), TASK_SIZE)]
    description = description or extractor
    if client is not None:  # a Dask cluster: tasks go to its workers
        arguments = [(extractor, parameters, task) for task in tasks]
        with progress_bar(len(rows), description, unit="utt", enabled=progress) as bar:
            for task, results in zip(
                tasks, cluster.map_in_order(client, extract_task, arguments), strict=True
            ):
                bar.update(len(task))
                yield results
        return
    workers = min(worker_processes(n_jobs), len(tasks))
    if workers <= 1:
        with progress_bar(len(rows), description, unit="utt", enabled=progress) as bar:
            for task in tasks:
                results = extract_task(extractor, parameters, task)
                bar.update(len(task))
                yield results
        return
    context = _process_context()
    if context.get_start_method() == "fork":
        _warm_up(extractor, parameters)  # children inherit the imported modules and openSMILE set-up
    with concurrent.futures.ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_worker_start, initargs=(os.getpid(),)
    ) as pool:
        window = 3 * workers  # tasks in flight; results are yielded strictly in manifest order
        pending = {
            i: pool.submit(extract_task, extractor, parameters, tasks[i])
            for i in range(min(window, len(tasks)))
        }
        # the workers exist now (forked before tqdm starts its monitor thread)
        bar = progress_bar(len(rows), description, unit="utt", enabled=progress)
        completed = False
        try:
            for index in range(len(tasks)):
                following = index + window
                if following < len(tasks):
                    pending[following] = pool.submit(extract_task, extractor, parameters, tasks[following])
                results = pending.pop(index).result()
                bar.update(len(tasks[index]))
                yield results
            completed = True
        finally:
            bar.close()
            if not completed:  # Ctrl-C or an error: queued tasks dropped, running ones stopped
                _stop_workers(pool)


def _stop_workers(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    """Cancel the queued tasks and terminate the workers: their results would be thrown away, and a
    worker ignores Ctrl-C (``_worker_start``), so waiting for it could take a whole task."""
    processes = list(getattr(pool, "_processes", {}).values())  # Python < 3.14 has no terminate_workers()
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()


PARENT_POLL_S = 0.5


def _worker_start(parent: int) -> None:
    """A worker ignores Ctrl-C (sent to the whole process group, it would print each worker's traceback;
    the parent stops the pool and prints one line) and exits within ``PARENT_POLL_S`` of its parent's
    death (a SIGKILLed parent cannot stop its pool; the workers would otherwise live on, holding memory)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while process_alive(parent):
            time.sleep(PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="serlib-parent-watch", daemon=True).start()


def _warm_up(extractor: str, parameters: dict[str, Any]) -> None:
    if extractor == "logmel":
        if parameters.get("engine") == "opensmile":
            keys = ("bands", "low_hz", "high_hz", "frame_s", "shift_s")
            logmel._logmel_smile(*(parameters[k] for k in keys))
    elif extractor == "egemaps":
        egemaps.egemaps_smile(egemaps.FUNCTIONALS)
    elif extractor == "egemaps_lld":
        egemaps.egemaps_smile(egemaps.DESCRIPTORS)


def _process_context() -> Any:
    """'fork' when it is safe (one thread, no TensorFlow loaded): fast, and scripts need no
    ``if __name__ == "__main__"`` guard; otherwise 'forkserver' (POSIX) or 'spawn'."""
    others = [
        t for t in threading.enumerate() if t is not threading.main_thread() and t.name != "tqdm_monitor"
    ]
    if os.name == "posix" and not others and "tensorflow" not in sys.modules:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("forkserver" if os.name == "posix" else "spawn")


def extract_task(
    extractor: str, parameters: dict[str, Any], rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Worker: load and extract a few utterances; each result holds features, lengths or an error."""
    sample_rate = int(parameters["sample_rate"])
    results: list[dict[str, Any]] = []
    signals: dict[int, np.ndarray] = {}
    needed = _needed_seconds(extractor, parameters)
    for index, row in enumerate(rows):
        result = {"utterance_id": row["utterance_id"], "path": row["path"], "error": None}
        results.append(result)
        try:
            signal, _ = audio.load(
                row["path"], row["start_s"], row["end_s"], sample_rate=sample_rate, max_duration_s=needed
            )
            signals[index] = signal
            result["samples"] = int(signal.shape[0])
        except (ValueError, OSError, RuntimeError) as error:
            result["error"] = str(error)
    if extractor == "logmel":
        order = sorted(signals)
        names = ("bands", "low_hz", "high_hz", "frame_s", "shift_s", "engine")
        settings = {name: parameters[name] for name in names if name in parameters}
        matrices: list[np.ndarray | None]
        try:
            matrices = list(logmel.logmel_many([signals[i] for i in order], sample_rate, **settings))
        except (ValueError, RuntimeError):  # find the culprit one by one
            matrices = []
            for i in order:
                try:
                    matrices.append(logmel.logmel(signals[i], sample_rate, **settings))
                except (ValueError, RuntimeError) as error:
                    results[i]["error"] = str(error)
                    matrices.append(None)
        for i, matrix in zip(order, matrices, strict=True):
            if matrix is None:
                continue
            fixed, true_frames = logmel.fix_length(matrix, parameters["max_frames"])
            results[i]["features"] = fixed[np.newaxis]
            results[i]["lengths"] = [true_frames]
    else:
        for i in sorted(signals):
            try:
                if extractor == "spectrogram":
                    results[i]["features"], results[i]["lengths"] = _spectrogram(
                        signals[i], sample_rate, parameters
                    )
                elif extractor == "egemaps_lld":  # cut or zero-padded to features.input_frames, as log-Mel
                    fixed, true_frames = logmel.fix_length(
                        egemaps.egemaps_lld(signals[i], sample_rate), parameters["max_frames"]
                    )
                    results[i]["features"], results[i]["lengths"] = fixed[np.newaxis], [true_frames]
                else:
                    results[i]["features"] = egemaps.egemaps(signals[i], sample_rate)[
                        np.newaxis, np.newaxis, :
                    ]
                    results[i]["lengths"] = [1]
            except (ValueError, RuntimeError) as error:
                results[i]["error"] = str(error)
    for result in results:
        result.pop("samples", None)
        if result["error"] is not None:
            result["error"] = result["error"].replace(f"{result['path']}: ", "")
    return results


def _spectrogram(
    signal: np.ndarray, sample_rate: int, parameters: dict[str, Any]
) -> tuple[np.ndarray, list[int]]:
    options = {
        name: parameters[name]
        for name in (
            "window_s",
            "overlap_s",
            "mel_bands",
            "clip_below_db",
            "clip_above_db",
            "fixed_length_s",
            "center_fixed",
            "chunk_length_s",
            "chunk_count",
        )
    }
    chunks = spectrogram.audeep_chunks(signal, sample_rate, **options)
    frames = chunks.shape[1]
    lengths = [frames] * chunks.shape[0]
    fixed = parameters["fixed_length_s"]
    if fixed is not None and not parameters["center_fixed"] and parameters["chunk_length_s"] is None:
        # frames that start inside the real audio, before auDeep's zero padding of the raw samples
        width = int(sample_rate * parameters["window_s"])
        step = width - int(sample_rate * parameters["overlap_s"])
        with_audio = 1 + max(0, signal.shape[0] - width) // step
        lengths = [min(frames, with_audio)]
    return chunks, lengths


def _needed_seconds(extractor: str, parameters: dict[str, Any]) -> float | None:
    """Seconds of audio from the segment start that can reach the output (a cut ignores the rest)."""
    if extractor == "logmel":
        return (parameters["max_frames"] - 1) * parameters["shift_s"] + parameters["frame_s"] + READ_MARGIN_S
    if extractor == "spectrogram":
        if parameters["fixed_length_s"] is not None and not parameters["center_fixed"]:
            return parameters["fixed_length_s"] + READ_MARGIN_S
    return None
