"""Feature store: one HDF5 file per (corpus, extractor, parameters, audio files), filled in parallel.

A store's file name carries a hash of every extractor parameter, the sample rate, the store format
version and each audio file's identity (utterance id, size, sha256 of its bytes, segment), so a changed
parameter or file gives a new file and nothing stale is ever read, while a copy of the same audio
elsewhere or with new modification times (a re-materialised data folder) finds its features again.
Files are written to a temp file in the same folder and renamed when complete.

HDF5 layout (docs/architecture.md): datasets ``ids`` (UTF-8 strings, one per row; repeated per chunk
for chunked spectrograms), ``features`` float32 ``[N, frames, dims]`` (padded as the models read it,
stored gzip-compressed: ``COMPRESSION``; spectrograms to ``features.spectrogram.store_decimals`` decimals
when set), ``lengths`` int32 ``[N]``
(true frames before padding), ``chunk_numbers`` int32 ``[N]``; attributes ``extractor``,
``parameters_json``, ``key`` (the full hash), ``skipped_json`` (list of [utterance_id, reason]),
``store_version``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from serlib.base import logs
from serlib.base.config import Config, FeaturesConfig
from serlib.base.files import remove_stale_temporaries, temporary_path
from serlib.data import loaders
from serlib.features import extraction, logmel
from serlib.features.egemaps import EGEMAPS_LLD_DIMS
from serlib.features.smile import opensmile_version

log = logging.getLogger(__name__)

STORE_VERSION = 2
"""1: uncompressed ``features`` in chunks of up to 1 MB; 2: the same values compressed (``COMPRESSION``),
one row per chunk. A version-1 store of the same audio and parameters is migrated (``_migrate``)."""
COMPRESSION: dict[str, Any] = {"compression": "gzip", "compression_opts": 4, "shuffle": True}
"""Lossless: byte-shuffled gzip (level 4) reads back bit for bit. Zero padding, auDeep's clipped -1
values and the float32 exponents compress: 1.3-2.8x for log-Mel, 1.6-4.6x for spectrograms on real
speech (docs/performance.md#feature-stores). One row per chunk, so that the autoencoder's random row
reads decompress only the rows they read. ``features.spectrogram.store_decimals`` adds HDF5's scale-offset
filter (lossy: values rounded to that many decimals; part of the store key)."""
EXTRACTORS = ("logmel", "spectrogram", "egemaps", "egemaps_lld")
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
def extract_configured(
    config: Config, corpus_key: str, extractor: str, progress: bool = True, client: Any = None
) -> FeatureSet:
    """Features of the configured corpus ``corpus_key`` (its manifest from ``loaders.load_configured``)."""
    manifest = loaders.load_configured(config, corpus_key)
    return extract_manifest(
        manifest, extractor, config, progress=progress, corpus_key=corpus_key, client=client
    )


def extract_manifest(
    manifest: pd.DataFrame,
    extractor: str,
    config: Config,
    progress: bool = True,
    corpus_key: str | None = None,
    client: Any = None,
) -> FeatureSet:
    """``extract`` with the parameters, cache folder and worker settings of ``config``."""
    parameters = extractor_parameters(extractor, config.audio.sample_rate, config.features)
    return extract(
        manifest,
        extractor,
        parameters,
        config.cache_path,
        corpus_key=corpus_key,
        n_jobs=config.features.n_jobs,
        allow_skip=config.features.allow_skip,
        client=client,
        progress=progress,
    )


def extract(
    manifest: pd.DataFrame,
    extractor: str,
    parameters: dict[str, Any],
    cache_dir: str | os.PathLike[str],
    corpus_key: str | None = None,
    n_jobs: int = 0,
    allow_skip: bool = False,
    client: Any = None,
    progress: bool = True,
) -> FeatureSet:
    """Extract ``extractor`` features for every manifest row into the store, or return the stored ones.

    logmel: ``[N, max_frames, bands]`` cut/zero-padded (true lengths kept); spectrogram: auDeep
    layout ``[N * chunks, T, mel_bands]``, ids repeated per chunk with chunk_numbers; egemaps:
    ``[N, 1, 88]``; egemaps_lld: ``[N, max_frames, 25]``, cut/zero-padded as log-Mel. ``parameters``
    come from ``extractor_parameters``; the store is a file under ``cache_dir/features``. Tasks run on
    the Dask ``client``'s workers when one is given, else in ``n_jobs`` local processes. Unreadable files
    stop extraction with their id and reason unless ``allow_skip``; skipped rows are absent from the
    store and listed in ``skipped``.
    """
    if extractor not in EXTRACTORS:
        raise StoreError(f"unknown extractor {extractor!r}; choose one of {', '.join(EXTRACTORS)}")
    corpus_key = corpus_key or _corpus_name(manifest)
    rows = _rows(manifest)
    key = store_key(extractor, parameters, rows)
    path = store_path(cache_dir, corpus_key, extractor, key)
    stored = _read_if_valid(path, key) or _migrate(cache_dir, corpus_key, extractor, parameters, rows, key)
    if stored is not None:
        log.info("%s %s: %d rows from the store %s", corpus_key, extractor, len(stored.ids), path)
        return stored
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in remove_stale_temporaries(path.parent):  # left by a killed extraction
        log.info("removed %s: the temporary file of a process that no longer runs", stale)
    started = time.perf_counter()
    results = extraction.run_tasks(
        extractor, parameters, rows, n_jobs, client, progress, description=f"{corpus_key} {extractor}"
    )
    _write_store(path, key, extractor, parameters, results, allow_skip, corpus_key)
    stored = _read_if_valid(path, key)
    if stored is None:  # pragma: no cover - the file was just written
        raise StoreError(f"{path}: the store just written cannot be read back")
    logs.step(
        log,
        "%s %s: %d utterances extracted into %s (%.1f s)",
        corpus_key,
        extractor,
        len(stored.ids),
        path.name,
        time.perf_counter() - started,
    )
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
    tmp = temporary_path(path)
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
def extractor_parameters(extractor: str, sample_rate: int, features: FeaturesConfig) -> dict[str, Any]:
    """Every parameter that changes the extractor's output (part of the store key)."""
    common = {"sample_rate": int(sample_rate), "store_version": STORE_VERSION}
    if extractor == "logmel":
        conf = logmel.LOGMEL_CONFIG.read_bytes()
        return {
            **common,
            **features.logmel.model_dump(mode="json"),
            "opensmile_config_sha256": hashlib.sha256(conf).hexdigest(),
            "numpy_engine_version": 1,
            "opensmile_version": opensmile_version(),
        }
    if extractor == "spectrogram":
        return {**common, **features.spectrogram.model_dump(mode="json"), "implementation": 1}
    if extractor == "egemaps":
        return {
            **common,
            "feature_set": "eGeMAPSv02",
            "level": "Functionals",
            "opensmile_version": opensmile_version(),
        }
    if extractor == "egemaps_lld":
        return {
            **common,
            "feature_set": "eGeMAPSv02",
            "level": "LowLevelDescriptors",
            "max_frames": features.input_frames,  # the ACNN input's length (logmel.max_frames)
            "opensmile_version": opensmile_version(),
        }
    raise StoreError(f"unknown extractor {extractor!r}; choose one of {', '.join(EXTRACTORS)}")


def store_key(extractor: str, parameters: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """sha256 over the extractor, its parameters and each file's identity (utterance id, size, content
    digest, segment)."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"extractor": extractor, "parameters": parameters}, sort_keys=True).encode())
    for row in rows:
        digest.update(json.dumps(_identity(row), sort_keys=True).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def store_path(cache_dir: str | os.PathLike[str], corpus_key: str, extractor: str, key: str) -> Path:
    """The store file of one corpus, extractor and key under ``cache_dir/features``."""
    return Path(cache_dir) / "features" / f"{corpus_key}-{extractor}-{key[:16]}.h5"


def _identity(row: dict[str, Any]) -> dict[str, Any]:
    path = Path(row["path"])
    try:
        stat = path.stat()
        size, digest = int(stat.st_size), content_digest(path, stat.st_size, stat.st_mtime_ns, stat.st_ino)
    except OSError:
        size, digest = -1, ""  # a missing file is reported (or skipped) by extraction itself
    return {
        "utterance_id": row["utterance_id"],
        "size": size,
        "sha256": digest,
        "start_s": row["start_s"],
        "end_s": row["end_s"],
    }


@functools.lru_cache(maxsize=65536)
def _digest_of(path: Path, size: int, mtime_ns: int, inode: int) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def content_digest(path: Path, size: int, mtime_ns: int, inode: int) -> str:
    """sha256 of a file's bytes, hashed once per process for each (path, size, mtime, inode): a store
    key must not depend on when a file was copied, and hashing is cheap (all 260 MB of the shared
    corpora, 5,869 files: 0.55 CPU-s)."""
    return _digest_of(path.resolve(), int(size), int(mtime_ns), int(inode))


def _rows(manifest: pd.DataFrame) -> list[dict[str, Any]]:
    missing = [c for c in ("utterance_id", "path", "start_s", "end_s") if c not in manifest.columns]
    if missing:
        raise StoreError(
            f"manifest lacks columns {missing}; build it with serlib.data.manifest.make_manifest"
        )
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


def _migrate(
    cache_dir: str | os.PathLike[str],
    corpus_key: str,
    extractor: str,
    parameters: dict[str, Any],
    rows: list[dict[str, Any]],
    key: str,
) -> FeatureSet | None:
    """An older store of the same audio and parameters (found by its fingerprint: version 1, or the
    lossless layout of a store with ``store_decimals``), rewritten in the current layout without extracting
    again, the old file then removed; None when there is none. The values are copied unchanged, or
    rounded by the scale-offset filter exactly as a fresh extraction's would be."""
    if parameters.get("store_version") != STORE_VERSION or STORE_VERSION != 2:
        return None
    lossless = {name: value for name, value in parameters.items() if name != "store_decimals"}
    older = [(lossless, 2)] if lossless != parameters else []
    for old_parameters, version in [*older, ({**lossless, "store_version": 1}, 1)]:
        old_key = store_key(extractor, old_parameters, rows)
        old = store_path(cache_dir, corpus_key, extractor, old_key)
        if old.is_file():
            path = store_path(cache_dir, corpus_key, extractor, key)
            return _rewrite(old, (old_key, version), path, key, parameters)
    return None


def _rewrite(
    old: Path, old_identity: tuple[str, int], path: Path, key: str, parameters: dict[str, Any]
) -> FeatureSet | None:
    """``_migrate``'s copy of the store ``old`` (its (key, store version) checked) into ``path``."""
    old_key, version = old_identity
    tmp = temporary_path(path)
    try:
        with h5py.File(old, "r") as source, h5py.File(tmp, "w") as target:
            if source.attrs.get("key") != old_key or int(source.attrs.get("store_version", -1)) != version:
                return None
            data = source["features"]
            copied = create_features(
                target, tuple(data.shape[1:]), rows=len(data), decimals=parameters.get("store_decimals")
            )
            for start in range(0, len(data), _WRITE_ROWS):
                copied[start : start + _WRITE_ROWS] = data[start : start + _WRITE_ROWS]
            for name in ("ids", "lengths", "chunk_numbers"):
                source.copy(source[name], target, name)
            for name, value in source.attrs.items():
                target.attrs[name] = value
            target.attrs.update(
                key=key, store_version=STORE_VERSION, parameters_json=json.dumps(parameters, sort_keys=True)
            )
        os.replace(tmp, path)
    except (OSError, KeyError, ValueError) as error:
        log.warning("cannot migrate the feature store %s (%s); extracting again", old, error)
        return None
    finally:
        if tmp.exists():
            tmp.unlink()
    old.unlink()
    log.info("migrated the feature store %s to the current layout %s", old.name, path.name)
    return _read_if_valid(path, key)


# -- writing ---------------------------------------------------------------------------------------
def _write_store(
    path: Path,
    key: str,
    extractor: str,
    parameters: dict[str, Any],
    results_of_tasks: Iterator[list[dict[str, Any]]],
    allow_skip: bool,
    corpus_key: str,
) -> None:
    tmp = temporary_path(path)
    skipped: list[tuple[str, str]] = []
    try:
        with h5py.File(tmp, "w") as handle:
            writer = _RowWriter(handle, extractor, parameters)
            for results in results_of_tasks:
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
                "egemaps_lld": EGEMAPS_LLD_DIMS,
            }
            frames = {
                "logmel": self.parameters.get("max_frames", 0),
                "egemaps": 1,
                "egemaps_lld": self.parameters.get("max_frames", 0),
            }
            self._create((int(frames.get(self.extractor, 0)), int(dims.get(self.extractor, 88))))
        self._flush()

    def _create(self, shape: tuple[int, int]) -> None:
        self.shape = shape
        create_features(self.handle, shape, decimals=self.parameters.get("store_decimals"))
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


def create_features(
    handle: h5py.File, shape: tuple[int, int], rows: int = 0, decimals: int | None = None
) -> h5py.Dataset:
    """The resizable float32 ``features`` dataset ``[rows, frames, dims]`` of the current layout; with
    ``decimals``, HDF5's scale-offset filter keeps that many decimals (lossy; before gzip)."""
    lossy = {} if decimals is None else {"scaleoffset": int(decimals)}
    return handle.create_dataset(
        "features",
        shape=(rows, *shape),
        maxshape=(None, *shape),
        dtype="float32",
        chunks=(1, *(max(1, n) for n in shape)),
        **COMPRESSION,
        **lossy,
    )


# -- parallel extraction ---------------------------------------------------------------------------


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
