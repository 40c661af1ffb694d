"""Feature store: one HDF5 file per (corpus, extractor, parameters, audio files), filled in parallel.

A store's file name carries a hash of every extractor parameter, the sample rate, the store format
version and each audio file's identity (path, size, mtime_ns, segment, utterance id), so a changed
parameter or file gives a new file and nothing stale is ever read. Files are written to a temp file
in the same folder and renamed when complete.

HDF5 layout (docs/architecture.md): datasets ``ids`` (UTF-8 strings, one per row; repeated per chunk
for chunked spectrograms), ``features`` float32 ``[N, frames, dims]``, ``lengths`` int32 ``[N]``
(true frames before padding), ``chunk_numbers`` int32 ``[N]``; attributes ``extractor``,
``parameters_json``, ``key`` (the full hash), ``skipped_json`` (list of [utterance_id, reason]),
``store_version``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import json
import logging
import math
import multiprocessing
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

STORE_VERSION = 1
EXTRACTORS = ("logmel", "spectrogram", "egemaps")
TASK_SIZE = 24  # utterances per worker task: amortises process hand-over and openSMILE set-up
READ_MARGIN_S = 0.1  # extra audio read beyond what a cut needs, so resampling edges do not reach it
_WRITE_ROWS = 256  # rows buffered before a write to the HDF5 file


class StoreError(ValueError):
    """Feature extraction or a store file failed; the message names the utterance/file and the fix."""


@dataclass
class FeatureSet:
    """Features of one corpus from one extractor (see module docstring for the HDF5 layout).

    ``features`` is read from ``path`` on first access (a store may be bigger than memory: use
    ``open_features(path)`` to stream it instead).
    """

    path: Path
    ids: list[str]
    lengths: np.ndarray
    chunk_numbers: np.ndarray
    skipped: list[tuple[str, str]] = field(default_factory=list)
    extractor: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    shape: tuple[int, ...] = ()
    _features: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def features(self) -> np.ndarray:
        """float32 ``[N, frames, dims]``, loaded from the store file once."""
        if self._features is None:
            with open_features(self.path) as handle:
                self._features = handle["features"][...]
        return self._features

    def __len__(self) -> int:
        return len(self.ids)


# -- public entry points ---------------------------------------------------------------------------
def extract_configured(config: Any, corpus_key: str, extractor: str, progress: bool = True) -> FeatureSet:
    """Features of the configured corpus ``corpus_key`` (manifest via ``corpora.load_configured``)."""
    from serlib import corpora

    manifest = corpora.load_configured(config, corpus_key)
    return extract(manifest, extractor, config, progress=progress, corpus_key=corpus_key)


def extract(
    manifest: pd.DataFrame,
    extractor: str,
    config: Any,
    progress: bool = True,
    corpus_key: str | None = None,
) -> FeatureSet:
    """Extract ``extractor`` features for every manifest row into the store, or return the stored ones.

    logmel: ``[N, max_frames, bands]`` cut/zero-padded (true lengths kept); spectrogram: auDeep
    layout ``[N * chunks, T, mel_bands]``, ids repeated per chunk with chunk_numbers; egemaps:
    ``[N, 1, 88]``. Unreadable files stop extraction with their id and reason unless
    ``config.features.allow_skip``; skipped rows are absent from the store and listed in ``skipped``.
    """
    if extractor not in EXTRACTORS:
        raise StoreError(f"unknown extractor {extractor!r}; choose one of {', '.join(EXTRACTORS)}")
    corpus_key = corpus_key or _corpus_name(manifest)
    parameters = extractor_parameters(config, extractor)
    rows = _rows(manifest)
    key = store_key(extractor, parameters, rows)
    path = store_path(config, corpus_key, extractor, key)
    stored = _read_if_valid(path, key)
    if stored is not None:
        log.info("%s %s: %d rows from the store %s", corpus_key, extractor, len(stored.ids), path)
        return stored
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_store(path, key, extractor, parameters, rows, config, progress, corpus_key)
    stored = _read_if_valid(path, key)
    if stored is None:  # pragma: no cover - the file was just written
        raise StoreError(f"{path}: the store just written cannot be read back")
    if stored.skipped:
        log.warning(
            "%s %s: skipped %d unreadable utterances (e.g. %s: %s)",
            corpus_key,
            extractor,
            len(stored.skipped),
            *stored.skipped[0],
        )
    return stored


@contextlib.contextmanager
def open_features(path: str | os.PathLike[str]) -> Iterator[h5py.File]:
    """Open a store read-only for streaming: ``handle["features"][i:j]`` reads only those rows."""
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"feature store {path} does not exist; run `serlib extract` first")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise StoreError(
            f"{path} is not a readable HDF5 feature store ({error}); delete it to recompute"
        ) from None
    try:
        yield handle
    finally:
        handle.close()


def save_arrays(
    path: str | os.PathLike[str],
    ids: list[str],
    attributes: dict[str, Any] | None = None,
    **arrays: np.ndarray,
) -> Path:
    """Write ``ids`` and same-length arrays to an HDF5 file atomically (temp file, then rename).

    ``attributes`` (str/number values, or JSON-serialisable values stored as JSON text) become file
    attributes. A small generic helper for stores of other products (e.g. AE representations).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        if name == "ids":
            raise ValueError("'ids' is reserved for the ids argument")
        if len(array) != len(ids):
            raise ValueError(f"array {name!r} has {len(array)} rows but there are {len(ids)} ids")
    tmp = _temp_path(path)
    try:
        with h5py.File(tmp, "w") as handle:
            handle.create_dataset("ids", data=np.array(ids, dtype=object), dtype=h5py.string_dtype("utf-8"))
            for name, array in arrays.items():
                handle.create_dataset(name, data=np.asarray(array))
            for name, value in (attributes or {}).items():
                handle.attrs[name] = (
                    value if isinstance(value, (str, int, float, np.number)) else json.dumps(value)
                )
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def load_arrays(path: str | os.PathLike[str]) -> tuple[list[str], dict[str, np.ndarray], dict[str, Any]]:
    """Read a file written by ``save_arrays``: (ids, {name: array}, {attribute: value})."""
    with open_features(path) as handle:
        ids = [
            value.decode("utf-8") if isinstance(value, bytes) else str(value) for value in handle["ids"][...]
        ]
        arrays = {name: handle[name][...] for name in handle if name != "ids"}
        attributes = {name: _attribute(value) for name, value in handle.attrs.items()}
    return ids, arrays, attributes


# -- keys and paths --------------------------------------------------------------------------------
def extractor_parameters(config: Any, extractor: str) -> dict[str, Any]:
    """Every parameter that changes the extractor's output (part of the store key)."""
    from serlib import features

    common = {"sample_rate": int(config.audio.sample_rate), "store_version": STORE_VERSION}
    if extractor == "logmel":
        conf = features.LOGMEL_CONFIG.read_bytes()
        return {
            **common,
            **config.features.logmel.model_dump(mode="json"),
            "opensmile_config_sha256": hashlib.sha256(conf).hexdigest(),
            "numpy_engine_version": 1,
            "opensmile_version": _opensmile_version(),
        }
    if extractor == "spectrogram":
        return {**common, **config.features.spectrogram.model_dump(mode="json"), "implementation": 1}
    if extractor == "egemaps":
        return {
            **common,
            "feature_set": "eGeMAPSv02",
            "level": "Functionals",
            "opensmile_version": _opensmile_version(),
        }
    raise StoreError(f"unknown extractor {extractor!r}; choose one of {', '.join(EXTRACTORS)}")


def store_key(extractor: str, parameters: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """sha256 over the extractor, its parameters and each file's identity (path, size, mtime_ns, ...)."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"extractor": extractor, "parameters": parameters}, sort_keys=True).encode())
    for row in rows:
        digest.update(json.dumps(_identity(row), sort_keys=True).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def store_path(config: Any, corpus_key: str, extractor: str, key: str) -> Path:
    return Path(config.cache_path) / "features" / f"{corpus_key}-{extractor}-{key[:16]}.h5"


def _identity(row: dict[str, Any]) -> dict[str, Any]:
    path = Path(row["path"])
    try:
        stat = path.stat()
        size, mtime = int(stat.st_size), int(stat.st_mtime_ns)
    except OSError:
        size, mtime = -1, -1  # a missing file is reported (or skipped) by extraction itself
    return {
        "utterance_id": row["utterance_id"],
        "path": str(path.resolve()),
        "size": size,
        "mtime_ns": mtime,
        "start_s": row["start_s"],
        "end_s": row["end_s"],
    }


def _rows(manifest: pd.DataFrame) -> list[dict[str, Any]]:
    missing = [c for c in ("utterance_id", "path", "start_s", "end_s") if c not in manifest.columns]
    if missing:
        raise StoreError(f"manifest lacks columns {missing}; build it with serlib.corpora.make_manifest")
    rows = []
    for utterance_id, path, start, end in manifest[["utterance_id", "path", "start_s", "end_s"]].itertuples(
        index=False
    ):
        rows.append(
            {
                "utterance_id": str(utterance_id),
                "path": str(path),
                "start_s": None if start is None or _isnan(start) else float(start),
                "end_s": None if end is None or _isnan(end) else float(end),
            }
        )
    return rows


def _corpus_name(manifest: pd.DataFrame) -> str:
    if "corpus" in manifest.columns and len(manifest) and manifest["corpus"].nunique() == 1:
        name = str(manifest["corpus"].iloc[0])
        if name:
            return name
    return "manifest"


# -- reading ---------------------------------------------------------------------------------------
def _read_if_valid(path: Path, key: str) -> FeatureSet | None:
    if not path.is_file():
        return None
    try:
        with h5py.File(path, "r") as handle:
            if handle.attrs.get("key") != key or int(handle.attrs.get("store_version", -1)) != STORE_VERSION:
                return None
            ids = [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in handle["ids"][...]]
            return FeatureSet(
                path=path,
                ids=ids,
                lengths=handle["lengths"][...].astype(np.int32),
                chunk_numbers=handle["chunk_numbers"][...].astype(np.int32),
                skipped=[(str(a), str(b)) for a, b in json.loads(handle.attrs["skipped_json"])],
                extractor=str(handle.attrs["extractor"]),
                parameters=json.loads(handle.attrs["parameters_json"]),
                shape=tuple(int(n) for n in handle["features"].shape),
            )
    except (OSError, KeyError, ValueError) as error:
        log.warning("ignoring unreadable feature store %s (%s); recomputing", path, error)
        return None


# -- writing ---------------------------------------------------------------------------------------
def _write_store(
    path: Path,
    key: str,
    extractor: str,
    parameters: dict[str, Any],
    rows: list[dict[str, Any]],
    config: Any,
    progress: bool,
    corpus_key: str,
) -> None:
    allow_skip = bool(config.features.allow_skip)
    tmp = _temp_path(path)
    skipped: list[tuple[str, str]] = []
    try:
        with h5py.File(tmp, "w") as handle:
            writer = _RowWriter(handle, extractor, parameters)
            for results in _run_tasks(extractor, parameters, rows, config, progress, corpus_key):
                for result in results:
                    if result["error"] is not None:
                        if not allow_skip:
                            raise StoreError(
                                f"utterance {result['utterance_id']} ({result['path']}): {result['error']}; "
                                "fix or remove the file, or set features.allow_skip: true to skip it"
                            )
                        skipped.append((result["utterance_id"], result["error"]))
                        continue
                    writer.add(result)
            writer.close()
            handle.attrs["extractor"] = extractor
            handle.attrs["parameters_json"] = json.dumps(parameters, sort_keys=True)
            handle.attrs["key"] = key
            handle.attrs["skipped_json"] = json.dumps(skipped)
            handle.attrs["store_version"] = STORE_VERSION
            handle.attrs["corpus"] = corpus_key
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


class _RowWriter:
    """Appends rows to resizable HDF5 datasets in buffered blocks (memory stays bounded)."""

    def __init__(self, handle: h5py.File, extractor: str, parameters: dict[str, Any]) -> None:
        self.handle = handle
        self.extractor = extractor
        self.parameters = parameters
        self.buffer: list[dict[str, Any]] = []
        self.count = 0
        self.shape: tuple[int, int] | None = None

    def add(self, result: dict[str, Any]) -> None:
        for chunk_number, chunk in enumerate(result["features"]):
            shape = (int(chunk.shape[0]), int(chunk.shape[1]))
            if self.shape is None:
                self._create(shape)
            elif shape != self.shape:
                raise StoreError(self._shape_message(result, shape))
            self.buffer.append(
                {
                    "id": result["utterance_id"],
                    "features": chunk,
                    "length": result["lengths"][chunk_number],
                    "chunk": chunk_number,
                }
            )
        if len(self.buffer) >= _WRITE_ROWS:
            self._flush()

    def close(self) -> None:
        if self.shape is None:
            dims = {
                "logmel": self.parameters.get("bands", 0),
                "spectrogram": self.parameters.get("mel_bands", 0),
            }
            frames = {"logmel": self.parameters.get("max_frames", 0), "egemaps": 1}
            self._create((int(frames.get(self.extractor, 0)), int(dims.get(self.extractor, 88))))
        self._flush()

    def _create(self, shape: tuple[int, int]) -> None:
        self.shape = shape
        rows_per_chunk = max(1, min(64, (1 << 20) // max(1, 4 * shape[0] * shape[1])))
        self.handle.create_dataset(
            "features",
            shape=(0, *shape),
            maxshape=(None, *shape),
            dtype="float32",
            chunks=(rows_per_chunk, *shape),
        )
        self.handle.create_dataset(
            "ids", shape=(0,), maxshape=(None,), dtype=h5py.string_dtype("utf-8"), chunks=(1024,)
        )
        for name in ("lengths", "chunk_numbers"):
            self.handle.create_dataset(name, shape=(0,), maxshape=(None,), dtype="int32", chunks=(1024,))

    def _flush(self) -> None:
        if not self.buffer:
            return
        start, stop = self.count, self.count + len(self.buffer)
        for name in ("features", "ids", "lengths", "chunk_numbers"):
            self.handle[name].resize(stop, axis=0)
        self.handle["features"][start:stop] = np.stack([row["features"] for row in self.buffer]).astype(
            np.float32
        )
        self.handle["ids"][start:stop] = np.array([row["id"] for row in self.buffer], dtype=object)
        self.handle["lengths"][start:stop] = np.array([row["length"] for row in self.buffer], dtype=np.int32)
        self.handle["chunk_numbers"][start:stop] = np.array(
            [row["chunk"] for row in self.buffer], dtype=np.int32
        )
        self.count = stop
        self.buffer = []

    def _shape_message(self, result: dict[str, Any], shape: tuple[int, int]) -> str:
        text = (
            f"utterance {result['utterance_id']} ({result['path']}) gives {self.extractor} features of shape "
            f"{shape}, but earlier rows have {self.shape}"
        )
        if self.extractor == "spectrogram":
            text += (
                ": auDeep needs one spectrogram length per data set, so variable-length corpora need "
                "features.spectrogram.fixed_length_s (or chunk_length_s/chunk_count that give equal chunks)"
            )
        return text


def _temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


# -- parallel extraction ---------------------------------------------------------------------------
def _workers(config: Any) -> int:
    requested = int(config.features.n_jobs)
    if requested > 0:
        return requested
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _run_tasks(
    extractor: str,
    parameters: dict[str, Any],
    rows: list[dict[str, Any]],
    config: Any,
    progress: bool,
    corpus_key: str,
) -> Iterator[list[dict[str, Any]]]:
    """Yield each task's results in manifest order, computed serially or by worker processes."""
    from serlib.progress import bar as progress_bar

    tasks = [rows[start : start + TASK_SIZE] for start in range(0, len(rows), TASK_SIZE)]
    if getattr(config.protocol, "scheduler_address", None):  # a Dask cluster: tasks go to its workers
        from serlib import cluster

        with progress_bar(len(rows), f"{corpus_key} {extractor}", unit="utt", enabled=progress) as bar:
            for task, results in zip(
                tasks, cluster.extract_tasks(extractor, parameters, tasks, config), strict=True
            ):
                bar.update(len(task))
                yield results
        return
    workers = min(_workers(config), len(tasks))
    if workers <= 1:
        with progress_bar(len(rows), f"{corpus_key} {extractor}", unit="utt", enabled=progress) as bar:
            for task in tasks:
                results = extract_task(extractor, parameters, task)
                bar.update(len(task))
                yield results
        return
    context = _process_context()
    if context.get_start_method() == "fork":
        _warm_up(extractor, parameters)  # children inherit the imported modules and openSMILE set-up
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        window = 3 * workers  # tasks in flight; results are yielded strictly in manifest order
        pending = {
            i: pool.submit(extract_task, extractor, parameters, tasks[i])
            for i in range(min(window, len(tasks)))
        }
        # the workers exist now (forked before tqdm starts its monitor thread)
        bar = progress_bar(len(rows), f"{corpus_key} {extractor}", unit="utt", enabled=progress)
        try:
            for index in range(len(tasks)):
                following = index + window
                if following < len(tasks):
                    pending[following] = pool.submit(extract_task, extractor, parameters, tasks[following])
                results = pending.pop(index).result()
                bar.update(len(tasks[index]))
                yield results
        finally:
            bar.close()
            for future in pending.values():
                future.cancel()


def _warm_up(extractor: str, parameters: dict[str, Any]) -> None:
    from serlib import features

    if extractor == "logmel":
        if parameters.get("engine") == "opensmile":
            keys = ("bands", "low_hz", "high_hz", "frame_s", "shift_s")
            features._logmel_smile(*(parameters[k] for k in keys))
    elif extractor == "egemaps":
        features._egemaps_smile()


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
    from serlib import audio, features

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
            matrices = list(features.logmel_many([signals[i] for i in order], sample_rate, **settings))
        except (ValueError, RuntimeError):  # find the culprit one by one
            matrices = []
            for i in order:
                try:
                    matrices.append(features.logmel(signals[i], sample_rate, **settings))
                except (ValueError, RuntimeError) as error:
                    results[i]["error"] = str(error)
                    matrices.append(None)
        for i, matrix in zip(order, matrices, strict=True):
            if matrix is None:
                continue
            fixed, true_frames = features.fix_length(matrix, parameters["max_frames"])
            results[i]["features"] = fixed[np.newaxis]
            results[i]["lengths"] = [true_frames]
    else:
        for i in sorted(signals):
            try:
                if extractor == "spectrogram":
                    results[i]["features"], results[i]["lengths"] = _spectrogram(
                        signals[i], sample_rate, parameters
                    )
                else:
                    results[i]["features"] = features.egemaps(signals[i], sample_rate)[
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
    from serlib import features

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
    chunks = features.audeep_chunks(signal, sample_rate, **options)
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


def _opensmile_version() -> str:
    try:
        from importlib.metadata import version

        return version("opensmile")
    except Exception:  # pragma: no cover
        return "unknown"


def _attribute(value: Any) -> Any:
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    if isinstance(value, np.generic):
        return value.item()
    return value


def _isnan(value: Any) -> bool:
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return False
