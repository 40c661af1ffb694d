"""The labelled data of the protocol: a corpus' four-class utterances as aligned arrays.

``load_labeled`` joins a corpus' manifest with its log-Mel store (standardised per corpus or speaker
first when ``features.normalisation`` asks for it); ``with_representations`` attaches the autoencoder
vector of each utterance. The arrays are kept in memory per process for the many runs that use them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from serlib.base.config import Config, FeaturesConfig
from serlib.data import loaders
from serlib.data.manifest import EMOTIONS, LEVELS, SUBSET_COLUMN
from serlib.features import normalisation, store
from serlib.features.egemaps import EGEMAPS_LLD_DIMS
from serlib.models.acnn import LOGMEL_INPUT, REPRESENTATION_INPUT

log = logging.getLogger(__name__)


class ProtocolError(ValueError):
    """The protocol cannot run as configured; the message names the key, file or corpus and the fix."""


@dataclass(frozen=True)
class LabeledData:
    """Aligned arrays of one labeled corpus: log-Mel inputs, labels, groups and an optional AE vector.
    (With ``features.acnn_input: egemaps_lld`` the ``logmel`` array holds the 25 eGeMAPS descriptors
    per frame instead: the ACNN's input keeps its name, whatever it reads.)"""

    ids: np.ndarray  # [N] str
    logmel: np.ndarray  # [N, frames, bands] float32, zero-padded
    lengths: np.ndarray  # [N] true frames
    emotion: np.ndarray  # [N] int index into EMOTIONS
    arousal: np.ndarray  # [N] int index into LEVELS, -1 where unrated
    valence: np.ndarray  # [N] int index into LEVELS, -1 where unrated
    session: np.ndarray  # [N] str
    speaker: np.ndarray  # [N] str
    external: np.ndarray | None = None  # [N, D] float32 AE representation
    score_subset: np.ndarray | None = None  # [N] str scoring subset (manifest column SUBSET_COLUMN), if any

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, index: np.ndarray) -> LabeledData:
        return LabeledData(
            self.ids[index],
            self.logmel[index],
            self.lengths[index],
            self.emotion[index],
            self.arousal[index],
            self.valence[index],
            self.session[index],
            self.speaker[index],
            None if self.external is None else self.external[index],
            None if self.score_subset is None else self.score_subset[index],
        )

    def inputs(self) -> dict[str, np.ndarray]:
        feeds = {LOGMEL_INPUT: self.logmel}
        if self.external is not None:
            feeds[REPRESENTATION_INPUT] = self.external
        return feeds

    def targets(self) -> dict[str, np.ndarray]:
        return {"emotion": self.emotion, "arousal": self.arousal, "valence": self.valence}


def _class_index(values: Iterable[str], classes: tuple[str, ...], missing: int | None) -> np.ndarray:
    lookup = {name: i for i, name in enumerate(classes)}
    out = []
    for value in values:
        if value in lookup:
            out.append(lookup[value])
        elif missing is not None and value in ("", "nan"):
            out.append(missing)
        else:
            raise ProtocolError(f"label {value!r} is not one of {classes}")
    return np.asarray(out, dtype=np.int32)


def labeled_data(
    manifest: pd.DataFrame,
    ids: Iterable[str],
    features: np.ndarray,
    lengths: np.ndarray,
    source: str = "corpus",
    skipped: Iterable[str] = (),
) -> LabeledData:
    """Align a manifest's 4-class utterances with their log-Mel features by utterance id.

    Utterances without an emotion of ``EMOTIONS`` are left out; an utterance whose features are missing
    is an error unless the feature store reported it as skipped. A manifest column ``SUBSET_COLUMN``
    becomes ``score_subset`` (each utterance's scoring subset).
    """
    labeled = manifest[manifest["emotion"].isin(EMOTIONS)]
    if labeled.empty:
        raise ProtocolError(f"{source}: no utterance with an emotion of {EMOTIONS}; is it a labeled corpus?")
    position = {utterance: i for i, utterance in enumerate(ids)}
    skipped = set(skipped)
    present = labeled["utterance_id"].isin(position)
    absent = labeled.loc[~present, "utterance_id"].tolist()
    unexplained = [u for u in absent if u not in skipped]
    if unexplained:
        raise ProtocolError(
            f"{source}: {len(unexplained)} labeled utterances have no log-Mel features (e.g. {unexplained[:3]}); "
            "re-run `serlib extract` for this corpus"
        )
    if absent:
        log.warning("%s: %d labeled utterances were skipped by feature extraction", source, len(absent))
    labeled = labeled[present]
    rows = np.asarray([position[u] for u in labeled["utterance_id"]], dtype=np.int64)
    return LabeledData(
        ids=labeled["utterance_id"].astype(str).to_numpy(),
        logmel=np.asarray(features[rows], dtype=np.float32),
        lengths=np.asarray(lengths, dtype=np.int32)[rows],
        emotion=_class_index(labeled["emotion"], EMOTIONS, None),
        arousal=_class_index(labeled["arousal_class"].astype(str), LEVELS, -1),
        valence=_class_index(labeled["valence_class"].astype(str), LEVELS, -1),
        session=labeled["session"].astype(str).to_numpy(),
        speaker=labeled["speaker"].astype(str).to_numpy(),
        score_subset=labeled[SUBSET_COLUMN].astype(str).to_numpy()
        if SUBSET_COLUMN in labeled.columns
        else None,
    )


def with_representations(
    data: LabeledData, ids: Iterable[str], vectors: np.ndarray, source: str
) -> LabeledData:
    """``data`` with the AE vector of each utterance attached (aligned by utterance id)."""
    position = {str(utterance): i for i, utterance in enumerate(ids)}
    missing = [u for u in data.ids if u not in position]
    if missing:
        raise ProtocolError(
            f"{source}: {len(missing)} utterances have no autoencoder representation (e.g. {missing[:3]}); "
            "re-run `serlib encode` for this corpus"
        )
    rows = np.asarray([position[u] for u in data.ids], dtype=np.int64)
    return replace(data, external=np.asarray(vectors, dtype=np.float32)[rows])


def read_representations(path: str | Path) -> tuple[list[str], np.ndarray]:
    """Utterance ids and vectors of a representation HDF5 file (datasets ``ids`` and ``vectors``)."""
    path = Path(path)
    if not path.is_file():
        raise ProtocolError(f"representation file {path} does not exist; re-run `serlib encode`")
    with h5py.File(path, "r") as handle:
        if "ids" not in handle or "vectors" not in handle:
            raise ProtocolError(f"{path} lacks the datasets 'ids' and 'vectors' of a representation store")
        return [str(x) for x in handle["ids"].asstr()[...]], np.asarray(
            handle["vectors"][...], dtype=np.float32
        )


# corpus key -> (store file, its mtime, arrays); at most two corpora (a cross pair) stay in memory
_DATA_CACHE: dict[str, tuple[Path, int, LabeledData]] = {}


def extract_features(config: Config, key: str, extractor: str = "logmel") -> Any:
    """The FeatureSet of corpus ``key`` (``store.extract_configured``; cached on disk, loaded lazily)."""
    return store.extract_configured(config, key, extractor)


def acnn_input_shape(features: FeaturesConfig) -> tuple[int, int]:
    """[frames, values per frame] of what the ACNN reads (``features.acnn_input``): the log-Mel bands
    or the 25 eGeMAPS descriptors, both at a 10 ms hop and cut or padded to ``features.input_frames``
    (``logmel.max_frames``)."""
    if features.acnn_input == "egemaps_lld":
        return features.input_frames, EGEMAPS_LLD_DIMS
    return features.input_frames, features.logmel.bands


def labeled_manifest(config: Config, key: str) -> pd.DataFrame:
    """The manifest of corpus ``key`` restricted to the four emotion classes."""
    manifest = loaders.load_configured(config, key)
    return manifest[manifest["emotion"].isin(EMOTIONS)]


def _stamp(path: Path) -> int:
    return path.stat().st_mtime_ns if path.exists() else 0


def load_labeled(config: Config, key: str, store_name: str | None = None) -> LabeledData:
    """The 4-class labeled utterances of corpus ``key`` with the ACNN's input features (feature store:
    log-Mel, or eGeMAPS descriptors with ``features.acnn_input: egemaps_lld``).

    With ``features.normalisation`` ``corpus`` or ``speaker``, the features are first standardised with
    the statistics of every utterance of the corpus (or of the speaker) in the store, whatever its label
    (``serlib.features.normalisation``). Kept in memory per process; with ``store_name`` (the store file of
    ``data_identity``) a kept copy of that unchanged file is returned without asking the store again.
    """
    mode = config.features.normalisation
    extractor = config.features.acnn_input
    cache_key = f"{key}/{extractor}/{mode}"
    cached = _DATA_CACHE.get(cache_key)
    if cached is not None and store_name == cached[0].name and _stamp(cached[0]) == cached[1]:
        return cached[2]
    features = extract_features(config, key, extractor)
    path = Path(features.path)
    if cached is not None and cached[0] == path and cached[1] == _stamp(path):
        return cached[2]
    manifest = labeled_manifest(config, key)
    expected = acnn_input_shape(config.features)
    if tuple(features.features.shape[1:]) != expected:
        raise ProtocolError(
            f"{extractor} store {features.path} holds [frames, values] = {tuple(features.features.shape[1:])}, "
            f"the configuration asks for {expected}; re-run `serlib extract`"
        )
    values = features.features
    if mode in normalisation.GROUPED:
        speakers = loaders.load_configured(config, key).set_index("utterance_id")["speaker"]
        groups = normalisation.groups_for(mode, speakers.reindex(features.ids).fillna("").to_numpy(), key)
        values = normalisation.standardise_frames(values, features.lengths, groups)
    data = labeled_data(
        manifest,
        features.ids,
        values,
        features.lengths,
        source=f"corpora.{key}",
        skipped=[item[0] for item in getattr(features, "skipped", [])],
    )
    _DATA_CACHE.pop(cache_key, None)
    while len(_DATA_CACHE) >= 2:
        _DATA_CACHE.pop(next(iter(_DATA_CACHE)))
    _DATA_CACHE[cache_key] = (path, _stamp(path), data)
    return data
